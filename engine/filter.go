package engine

import (
	"fmt"
	"net/netip"

	xbpf "golang.org/x/net/bpf"

	"github.com/pktengine/pktengine/bpf"
)

// buildFilter returns the program of the engine's receive rings
// (bpf.ServeFilter): UDP to the engine's addresses, to its IPv4 prefixes'
// directed broadcasts and to any group, narrowed by expr if set; ARP, NDP
// and pings as its owned and shared addresses call for; IGMP and MLD;
// whole for the VLAN served (vlan, 0: untagged), cut short for any other.
// kernel (false only where x/net/bpf's VM runs the program) adds the
// tests of Linux ancillary data: nothing the host sends, and the VLAN tag
// the kernel moved into metadata.
func buildFilter(addrs *addrSet, expr string, vlan uint16, kernel bool) ([]xbpf.RawInstruction, error) {
	return buildServeFilter(addrs, &bpf.ServeSpec{Expr: expr, IgnoreOutgoing: kernel, VLANID: vlan, VLANAncillary: kernel})
}

// buildFilterVM returns the program the AF_XDP backend's workers run in
// x/net/bpf's VM for Config.Filter: the receive rings' program without
// the tests of ancillary data (none in the VM, and AF_XDP receives
// nothing the host sends), with VLAN tags in the frame.
func buildFilterVM(addrs *addrSet, expr string, vlan uint16) (*xbpf.VM, error) {
	raw, err := buildServeFilter(addrs, &bpf.ServeSpec{Expr: expr, VLAN: bpf.VLANInPacket, VLANID: vlan})
	if err != nil {
		return nil, err
	}
	insns, ok := xbpf.Disassemble(raw)
	if !ok {
		return nil, fmt.Errorf("engine: filter %q: the program has instructions x/net/bpf cannot run", expr)
	}
	vm, err := xbpf.NewVM(insns)
	if err != nil {
		return nil, fmt.Errorf("engine: filter %q: %w", expr, err)
	}
	return vm, nil
}

func buildServeFilter(addrs *addrSet, spec *bpf.ServeSpec) ([]xbpf.RawInstruction, error) {
	spec.Netmask = addrs.netmask4()
	for _, la := range addrs.list {
		spec.Addrs = append(spec.Addrs, bpf.ServeAddr{Addr: la.addr, Owned: la.owned})
		if la.bcast.IsValid() {
			spec.Broadcasts = append(spec.Broadcasts, la.bcast)
		}
	}
	prog, err := bpf.ServeFilter(spec)
	if err != nil {
		return nil, fmt.Errorf("engine: %w", err)
	}
	return prog, nil
}

// netmask4 is the netmask of the first IPv4 address, which "ip
// broadcast" in a filter expression needs (tcpdump takes the capture
// interface's, from its first IPv4 address too), or the zero Addr.
func (s *addrSet) netmask4() netip.Addr {
	for _, la := range s.list {
		if la.addr.Is4() {
			m := ^uint32(0) << (32 - la.prefix.Bits())
			if la.prefix.Bits() == 0 {
				m = 0
			}
			return netip.AddrFrom4([4]byte{byte(m >> 24), byte(m >> 16), byte(m >> 8), byte(m)})
		}
	}
	return netip.Addr{}
}
