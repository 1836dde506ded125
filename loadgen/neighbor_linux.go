//go:build linux

package loadgen

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/pktengine/pktengine/frame"
)

// LookupNeighbor returns the link-layer address of addr from the kernel's
// neighbour table (ARP for IPv4, NDP for IPv6) of the calling thread's
// network namespace, on ifi if it is not nil. Only usable entries count:
// reachable, stale, delay, probe, permanent or noarp. It does not resolve:
// if addr is missing, ping it first or give the MAC.
func LookupNeighbor(ifi *net.Interface, addr netip.Addr) (frame.MAC, error) {
	fam := unix.AF_INET
	if addr.Is6() {
		fam = unix.AF_INET6
	}
	rib, err := syscall.NetlinkRIB(unix.RTM_GETNEIGH, fam)
	if err != nil {
		return frame.MAC{}, os.NewSyscallError("netlink RTM_GETNEIGH", err)
	}
	msgs, err := syscall.ParseNetlinkMessage(rib)
	if err != nil {
		return frame.MAC{}, os.NewSyscallError("netlink RTM_GETNEIGH", err)
	}
	const usable = unix.NUD_REACHABLE | unix.NUD_STALE | unix.NUD_DELAY | unix.NUD_PROBE | unix.NUD_PERMANENT | unix.NUD_NOARP
	for _, m := range msgs {
		if m.Header.Type != unix.RTM_NEWNEIGH || len(m.Data) < unix.SizeofNdMsg {
			continue
		}
		ifindex := int(int32(binary.NativeEndian.Uint32(m.Data[4:])))
		state := binary.NativeEndian.Uint16(m.Data[8:])
		if ifi != nil && ifindex != ifi.Index || state&usable == 0 {
			continue
		}
		var dst netip.Addr
		var ll []byte
		for a := m.Data[unix.SizeofNdMsg:]; len(a) >= unix.SizeofRtAttr; {
			l := int(binary.NativeEndian.Uint16(a[0:]))
			typ := binary.NativeEndian.Uint16(a[2:])
			if l < unix.SizeofRtAttr || l > len(a) {
				break
			}
			v := a[unix.SizeofRtAttr:l]
			switch typ {
			case unix.NDA_DST:
				dst, _ = netip.AddrFromSlice(v)
			case unix.NDA_LLADDR:
				ll = v
			}
			a = a[min(len(a), (l+unix.RTA_ALIGNTO-1)&^(unix.RTA_ALIGNTO-1)):]
		}
		if dst.Unmap() == addr.Unmap() && len(ll) == 6 {
			return frame.MAC(ll), nil
		}
	}
	return frame.MAC{}, fmt.Errorf("loadgen: %v is not in the neighbour table; ping it first or give its MAC", addr)
}
