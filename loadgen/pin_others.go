//go:build !linux

package loadgen

import "github.com/pktengine/pktengine/ring"

func pinThread(cpu int) error { return ring.ErrUnsupported }
