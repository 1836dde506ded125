package engine

import (
	"fmt"

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
	spec := &bpf.ServeSpec{Expr: expr, IgnoreOutgoing: kernel, VLAN: vlan, VLANAncillary: kernel}
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
