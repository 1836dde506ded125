//go:build !linux

package loadgen

import "github.com/pktengine/pktengine/ring"

type netns struct{}

func currentNetns() (*netns, error) { return nil, ring.ErrUnsupported }
func (n *netns) enter() error       { return ring.ErrUnsupported }
func (n *netns) close() error       { return nil }
