package bpf

import (
	"errors"
	"fmt"
	"net/netip"

	xbpf "golang.org/x/net/bpf"

	"github.com/pktengine/pktengine/frame"
	"github.com/pktengine/pktengine/proto"
)

// ServeSpec says what the engine's receive rings must see (ServeFilter).
type ServeSpec struct {
	// Addrs are the engine's IPv4 and IPv6 addresses, tested in this
	// order.
	Addrs []ServeAddr
	// Broadcasts are the IPv4 directed broadcast addresses of the
	// engine's prefixes, on which it receives UDP too.
	Broadcasts []netip.Addr
	// Expr, if set, is a tcpdump expression (Compile) that UDP must also
	// match; it does not apply to ARP, ICMP and NDP.
	Expr string
	// IgnoreOutgoing drops frames the host sends itself, by their packet
	// type in Linux ancillary data. x/net/bpf's VM cannot run that test,
	// so tests that run the program there leave it false.
	IgnoreOutgoing bool
	// VLAN is how Expr's "vlan" keyword finds a tag: VLANAncillary (the
	// default) on an AF_PACKET socket, VLANInPacket where frames keep
	// their tags (AF_XDP, whose frames the engine filters in x/net/bpf's
	// VM).
	VLAN VLANMode
}

// ServeAddr is one of the engine's addresses.
type ServeAddr struct {
	Addr netip.Addr
	// Owned is true for an address the kernel does not have: the engine
	// answers ARP, Neighbor Solicitations and pings for it. The kernel
	// answers those for a shared address.
	Owned bool
}

// ServeFilter returns the classic BPF program of the engine's receive
// rings. It accepts
//
//   - UDP (IPv4, or IPv6 with UDP or a Fragment header after the fixed
//     header and any Hop-by-Hop, Routing and Destination Options headers:
//     see walkIPv6) to any of the addresses, to a broadcast address and to
//     any multicast group, on every port: the engine must see unbound
//     ports to count them and answer with ICMP; with Expr, these must also
//     match it;
//   - ARP whose target is one of the addresses: requests to answer (owned)
//     and replies to learn from (owned or shared);
//   - Neighbor Solicitations whose target is an owned address, Neighbor
//     Advertisements to any of the addresses;
//   - ICMP and ICMPv6 echo requests (and other ICMPv4) to owned addresses,
//
// all of them untagged or with one VLAN tag left in the frame (the kernel
// has already moved the outermost one into metadata), and, with
// IgnoreOutgoing, nothing the host sends itself. Accepted frames are kept
// whole (DefaultSnapLen).
func ServeFilter(s *ServeSpec) ([]xbpf.RawInstruction, error) {
	var user []xbpf.Instruction
	if s.Expr != "" {
		var err error
		user, err = Compile(s.Expr, &Options{SnapLen: DefaultSnapLen, VLAN: s.VLAN})
		if err != nil {
			return nil, fmt.Errorf("filter %q: %w", s.Expr, err)
		}
	}
	var all4, owned4, udp4, all6, owned6 []netip.Addr
	for _, sa := range s.Addrs {
		a := sa.Addr.Unmap()
		switch {
		case a.Is4():
			all4 = append(all4, a)
			if sa.Owned {
				owned4 = append(owned4, a)
			}
		case a.Is6():
			all6 = append(all6, a)
			if sa.Owned {
				owned6 = append(owned6, a)
			}
		default:
			return nil, errors.New("bpf: ServeFilter: invalid address")
		}
	}
	udp4 = append(udp4, all4...)
	for _, b := range s.Broadcasts {
		if !b.Unmap().Is4() {
			return nil, fmt.Errorf("bpf: ServeFilter: broadcast address %v is not IPv4", b)
		}
		udp4 = append(udp4, b.Unmap())
	}

	a := newAssembler()
	// dst4 jumps to hit if A is one of addrs.
	dst4 := func(addrs []netip.Addr, hit string) {
		for _, ip := range addrs {
			b := ip.As4()
			a.jeq(be32(b[:]), hit)
		}
	}
	if s.IgnoreOutgoing {
		a.emit(xbpf.LoadExtension{Num: xbpf.ExtType})
		a.jeq(packetOutgoing, "drop")
	}
	a.emit(xbpf.LoadAbsolute{Off: 12, Size: 2})
	a.jeq(uint32(proto.EtherTypeVLAN), "tagged")
	a.jeq(uint32(proto.EtherTypeQinQ), "tagged")
	// body tests the packet after a link-layer header of l2 bytes, with
	// the EtherType in A. Its labels end in l2.
	body := func(l2 uint32) {
		l := func(s string) string { return fmt.Sprintf("%s%d", s, l2) }
		a.jeq(uint32(proto.EtherTypeIPv4), l("ipv4"))
		a.jeq(uint32(proto.EtherTypeIPv6), l("ipv6"))
		a.jeq(uint32(proto.EtherTypeARP), l("arp"))
		a.ja("drop")

		a.label(l("ipv4"))
		a.emit(xbpf.LoadAbsolute{Off: l2 + 9, Size: 1})
		a.jeq(uint32(proto.IPProtoUDP), l("udp4"))
		a.jeq(uint32(proto.IPProtoICMP), l("icmp4"))
		a.ja("drop")

		a.label(l("udp4"))
		a.emit(xbpf.LoadAbsolute{Off: l2 + 16, Size: 4})
		dst4(udp4, "udp")
		a.jeq(0xffffffff, "udp")
		a.emit(xbpf.ALUOpConstant{Op: xbpf.ALUOpAnd, Val: 0xf0000000})
		a.jeq(0xe0000000, "udp") // 224.0.0.0/4
		a.ja("drop")

		a.label(l("icmp4"))
		a.emit(xbpf.LoadAbsolute{Off: l2 + 16, Size: 4})
		dst4(owned4, "accept")
		a.ja("drop")

		a.label(l("arp"))
		a.emit(xbpf.LoadAbsolute{Off: l2 + 24, Size: 4}) // target protocol address
		dst4(all4, "accept")
		a.ja("drop")

		a.label(l("ipv6"))
		a.emit(xbpf.LoadAbsolute{Off: l2 + 6, Size: 1})
		a.jeq(uint32(proto.IPProtoICMPv6), l("icmp6"))
		walkIPv6(a, l2, l("udp6"), l("ext"))

		a.label(l("udp6"))
		match6(a, l2+24, all6, "udp", l("u6"))
		a.emit(xbpf.LoadAbsolute{Off: l2 + 24, Size: 1})
		a.jeq(0xff, "udp") // ff00::/8
		a.ja("drop")

		a.label(l("icmp6"))
		a.emit(xbpf.LoadAbsolute{Off: l2 + 40, Size: 1})
		a.jeq(uint32(frame.ICMPv6NeighborSolicitation), l("ns"))
		a.jeq(uint32(frame.ICMPv6NeighborAdvertisement), l("na"))
		a.jeq(uint32(frame.ICMPv6EchoRequest), l("echo6"))
		a.ja("drop")

		a.label(l("ns"))
		match6(a, l2+48, owned6, "accept", l("ns"))
		a.ja("drop")
		a.label(l("na"))
		match6(a, l2+24, all6, "accept", l("na"))
		a.ja("drop")
		a.label(l("echo6"))
		match6(a, l2+24, owned6, "accept", l("echo6"))
		a.ja("drop")
	}
	body(frame.EthernetHeaderLen)
	a.label("tagged")
	a.emit(xbpf.LoadAbsolute{Off: frame.EthernetHeaderLen + frame.VLANTagLen - 2, Size: 2}) // the EtherType after the tag
	body(frame.EthernetHeaderLen + frame.VLANTagLen)

	a.label("accept")
	a.emit(xbpf.RetConstant{Val: DefaultSnapLen})
	a.label("drop")
	a.emit(xbpf.RetConstant{Val: 0})
	a.label("udp")
	if len(user) == 0 {
		a.emit(xbpf.RetConstant{Val: DefaultSnapLen})
	} else {
		// The user's program runs as the tail: its jumps are relative
		// and every path through it ends in a return.
		a.emit(user...)
	}
	return a.assemble()
}

// walkIPv6 follows the Next Header chain of an IPv6 packet, whose fixed
// header's Next Header is in A, and jumps to udp if it reaches UDP or a
// Fragment header, else to drop. Hop-by-Hop, Routing and Destination
// Options headers are walked, each (Hdr Ext Len + 1) * 8 bytes long (RFC
// 8200 section 4), up to frame.MaxIPv6ExtHeaders of them; a chain that
// still goes on after that many is passed too, for frame's Decode to count
// as ipv6-too-many-ext-headers. A Fragment header ends the walk: fragments
// are counted, never reassembled, and what follows the header of a later
// fragment is data. A chain whose next header lies past the end of the
// frame makes a load fail, which drops the frame (the kernel returns 0),
// as with any truncated header; a last header that claims more than the
// frame holds but names UDP passes, for Decode to count. Anything else
// (ICMPv6 behind Hop-by-Hop, as MLD is sent; TCP; an Authentication
// Header) is dropped: the engine has no use for it. X holds the offset of
// the header whose type is in A.
//
// Classic BPF jumps only forward, so the loop is unrolled.
func walkIPv6(a *assembler, l2 uint32, udp, prefix string) {
	walked := []uint8{proto.IPProtoHopByHop, proto.IPProtoRouting, proto.IPProtoDstOpts}
	a.emit(xbpf.LoadConstant{Dst: xbpf.RegX, Val: l2 + frame.IPv6HeaderLen})
	for i := 0; ; i++ {
		next := fmt.Sprintf("%s%d", prefix, i)
		a.jeq(uint32(proto.IPProtoUDP), udp)
		a.jeq(uint32(proto.IPProtoFragment), udp)
		if i == frame.MaxIPv6ExtHeaders {
			// One more extension header than Decode walks: let
			// Decode say so.
			for _, h := range walked {
				a.jeq(uint32(h), udp)
			}
			a.ja("drop")
			return
		}
		for _, h := range walked {
			a.jeq(uint32(h), next)
		}
		a.ja("drop")
		a.label(next)
		// A = the header's Next Header, X = the offset after it.
		a.emit(
			xbpf.LoadIndirect{Off: 0, Size: 1},
			xbpf.StoreScratch{Src: xbpf.RegA, N: 0},
			xbpf.LoadIndirect{Off: 1, Size: 1},
			xbpf.ALUOpConstant{Op: xbpf.ALUOpAdd, Val: 1},
			xbpf.ALUOpConstant{Op: xbpf.ALUOpShiftLeft, Val: 3},
			xbpf.ALUOpX{Op: xbpf.ALUOpAdd},
			xbpf.TAX{},
			xbpf.LoadScratch{Dst: xbpf.RegA, N: 0},
		)
	}
}

// match6 jumps to hit if the 16 bytes at off equal one of addrs, and
// falls through otherwise. Its labels start with prefix.
func match6(a *assembler, off uint32, addrs []netip.Addr, hit, prefix string) {
	for i, ip := range addrs {
		b := ip.As16()
		miss := fmt.Sprintf("%s-miss%d", prefix, i)
		for w := range uint32(4) {
			a.emit(xbpf.LoadAbsolute{Off: off + 4*w, Size: 4})
			if k := be32(b[4*w:]); w < 3 {
				a.jump(xbpf.JumpEqual, k, "", miss)
			} else {
				a.jumpFar(xbpf.JumpEqual, k, hit)
			}
		}
		a.label(miss)
	}
}
