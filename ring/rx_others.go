//go:build !linux

package ring

import (
	"net"

	xbpf "golang.org/x/net/bpf"
)

func (r *RX) open(ifi *net.Interface, _ *RXConfig, _ *rxGeom) error {
	return &net.OpError{Op: "listen", Net: "packet", Addr: addrOf(ifi), Err: ErrUnsupported}
}

func (r *RX) setFilter([]xbpf.RawInstruction) error { return ErrUnsupported }

func unmap([]byte) error { return nil }
