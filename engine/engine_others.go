//go:build !linux

package engine

import (
	"net"
	"net/netip"

	xbpf "golang.org/x/net/bpf"

	"github.com/pktengine/pktengine/ring"
)

func kernelAddrs(ifi *net.Interface) (onIface, all []netip.Prefix, err error) {
	return nil, nil, ring.ErrUnsupported
}

func (e *Engine) openPlatform(prog []xbpf.RawInstruction) error { return ring.ErrUnsupported }
