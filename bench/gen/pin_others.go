//go:build !linux

package gen

import "github.com/pktengine/pktengine/ring"

func pinThread(cpu int) error { return ring.ErrUnsupported }
