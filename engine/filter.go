package engine

import (
	"fmt"

	xbpf "golang.org/x/net/bpf"

	"github.com/pktengine/pktengine/bpf"
)

// buildFilter returns the program of the engine's receive rings
// (bpf.ServeFilter): UDP to the engine's addresses, to its IPv4 prefixes'
// directed broadcasts and to any group, narrowed by expr if set; ARP, NDP
// and pings as its owned and shared addresses call for; with
// ignoreOutgoing (false only where x/net/bpf's VM runs it), nothing the
// host sends.
func buildFilter(addrs *addrSet, expr string, ignoreOutgoing bool) ([]xbpf.RawInstruction, error) {
	return buildServeFilter(addrs, &bpf.ServeSpec{Expr: expr, IgnoreOutgoing: ignoreOutgoing})
}

// buildFilterVM returns the program the AF_XDP backend's workers run in
// x/net/bpf's VM for Config.Filter: the receive rings' program without
// the outgoing test (no ancillary data in the VM, and AF_XDP receives
// nothing the host sends), with VLAN tags in the frame.
func buildFilterVM(addrs *addrSet, expr string) (*xbpf.VM, error) {
	raw, err := buildServeFilter(addrs, &bpf.ServeSpec{Expr: expr, VLAN: bpf.VLANInPacket})
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
