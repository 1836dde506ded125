package bpf

import (
	"errors"
	"fmt"
	"net/netip"

	xbpf "golang.org/x/net/bpf"

	"github.com/pktengine/pktengine/frame"
	"github.com/pktengine/pktengine/proto"
)

// NeighborFilter returns the classic BPF program of a packet socket that
// sees only what a host learns its neighbours from, about addrs: ARP
// messages whose target protocol address is one of the IPv4 addresses,
// and IPv6 Neighbor Advertisements sent to one of the IPv6 addresses;
// untagged or with one VLAN tag left in the frame, kept whole.
//
// The engine's AF_XDP backend listens with it beside its XDP program on
// the addresses it shares with the kernel: the program leaves their ARP
// and NDP to the kernel (the kernel owns them), so without this tap the
// engine would never learn a next hop's MAC address from an answer to
// its own solicitation, and Port.Send from such an address could not
// resolve.
func NeighborFilter(addrs []netip.Addr) ([]xbpf.RawInstruction, error) {
	var v4, v6 []netip.Addr
	for _, ip := range addrs {
		switch ip = ip.Unmap(); {
		case ip.Is4():
			v4 = append(v4, ip)
		case ip.Is6():
			v6 = append(v6, ip)
		default:
			return nil, errors.New("bpf: NeighborFilter: invalid address")
		}
	}
	a := newAssembler()
	untaggedAndTagged(a, func(l2 uint32) {
		l := func(s string) string { return fmt.Sprintf("%s%d", s, l2) }
		a.jeq(uint32(proto.EtherTypeARP), l("arp"))
		a.jeq(uint32(proto.EtherTypeIPv6), l("ipv6"))
		a.ja("drop")

		a.label(l("arp"))
		acceptARP(a, l2, v4)

		// An advertisement is ICMPv6 right after the fixed header: RFC
		// 4861 messages carry no extension headers worth walking.
		a.label(l("ipv6"))
		a.emit(xbpf.LoadAbsolute{Off: l2 + 6, Size: 1})
		a.jumpFar(xbpf.JumpNotEqual, uint32(proto.IPProtoICMPv6), "drop")
		a.emit(xbpf.LoadAbsolute{Off: l2 + frame.IPv6HeaderLen, Size: 1})
		a.jumpFar(xbpf.JumpNotEqual, uint32(frame.ICMPv6NeighborAdvertisement), "drop")
		match6(a, l2+24, v6, "accept", l("na"))
		a.ja("drop")
	})
	a.label("accept")
	a.emit(xbpf.RetConstant{Val: DefaultSnapLen})
	a.label("drop")
	a.emit(xbpf.RetConstant{Val: 0})
	return a.assemble()
}
