//go:build !linux

package loadgen

import (
	"net"
	"net/netip"

	"github.com/pktengine/pktengine/frame"
	"github.com/pktengine/pktengine/ring"
)

// LookupNeighbor returns the link-layer address of addr from the kernel's
// neighbour table. It is only implemented on Linux.
func LookupNeighbor(ifi *net.Interface, addr netip.Addr) (frame.MAC, error) {
	return frame.MAC{}, ring.ErrUnsupported
}
