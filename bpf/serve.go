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
	// Netmask is the netmask "ip broadcast" in Expr tests with (tcpdump
	// takes its interface's); the zero Addr leaves it unknown.
	Netmask netip.Addr
	// IgnoreOutgoing drops frames the host sends itself, by their packet
	// type in Linux ancillary data. x/net/bpf's VM cannot run that test,
	// so tests that run the program there leave it false.
	IgnoreOutgoing bool

	// VLANID is the one VLAN whose frames the program accepts whole: 0
	// means untagged frames (and priority-tagged ones, VLAN ID 0), which
	// is what the kernel's base interface receives; 1 to 4094 means
	// frames with exactly one tag, of that ID. A frame of any other VLAN
	// that the program would otherwise accept passes with only
	// OtherVLANSnapLen bytes: enough for the engine to count it, without
	// the kernel copying it whole.
	VLANID uint16
	// VLANAncillary makes the program read the tag the kernel moved out
	// of the frame into metadata (SKF_AD_VLAN_TAG_PRESENT,
	// SKF_AD_VLAN_TAG): on a packet socket the outermost tag is always
	// there by the time a filter runs. x/net/bpf's VM cannot run those
	// loads, so tests that run the program there leave it false, and then
	// only tags in the frame count.
	VLANAncillary bool
	// VLAN is how Expr's "vlan" keyword finds a tag: VLANAncillary (the
	// default) on an AF_PACKET socket, VLANInPacket where frames keep
	// their tags (AF_XDP, whose frames the engine filters in x/net/bpf's
	// VM).
	VLAN VLANMode
}

// OtherVLANSnapLen is how much of a frame of another VLAN ServeFilter
// passes: its link-layer header and then some, for the engine to count.
const OtherVLANSnapLen = 64

// MaxVLANID is the largest VLAN ID (IEEE 802.1Q: 4095 is reserved).
const MaxVLANID = 4094

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
//     and ICMP and ICMPv6 errors (destination unreachable, packet too big,
//     time exceeded, parameter problem) to any of the addresses;
//   - IGMP membership queries and IGMPv1/v2 reports (the reports of
//     other hosts, which an IGMPv1/v2 host listens to so as not to repeat
//     them), and MLD queries and MLDv1 reports behind extension headers
//     (MLD messages carry a Hop-by-Hop header with a Router Alert
//     option), whatever their destination: a group, or any of the
//     host's addresses (RFC 3376 section 4.1.12, RFC 3810 section
//     5.1.15), which the engine checks; they cost no instruction per
//     address,
//
// all of them untagged or with one VLAN tag left in the frame (the kernel
// has already moved the outermost one into metadata), and, with
// IgnoreOutgoing, nothing the host sends itself. Frames of the VLAN the
// spec serves are kept whole (DefaultSnapLen), those of another VLAN cut
// to OtherVLANSnapLen (see ServeSpec.VLANID).
func ServeFilter(s *ServeSpec) ([]xbpf.RawInstruction, error) {
	var user []xbpf.Instruction
	if s.Expr != "" {
		var err error
		user, err = Compile(s.Expr, &Options{SnapLen: DefaultSnapLen, Netmask: s.Netmask, VLAN: s.VLAN})
		if err != nil {
			return nil, fmt.Errorf("filter %q: %w", s.Expr, err)
		}
	}
	if s.VLANID > MaxVLANID {
		return nil, fmt.Errorf("bpf: ServeFilter: VLAN %d out of range 0-%d", s.VLANID, MaxVLANID)
	}
	var all4, owned4, shared4, udp4, all6, owned6 []netip.Addr
	for _, sa := range s.Addrs {
		a := sa.Addr.Unmap()
		switch {
		case a.Is4():
			all4 = append(all4, a)
			if sa.Owned {
				owned4 = append(owned4, a)
			} else {
				shared4 = append(shared4, a)
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
	if s.IgnoreOutgoing {
		a.emit(xbpf.LoadExtension{Num: xbpf.ExtType})
		a.jeq(packetOutgoing, "drop")
	}
	serveVLAN(a, s.VLANID, s.VLANAncillary)
	// The tests behind the link-layer header: their labels end in l2.
	untaggedAndTagged(a, func(l2 uint32) {
		l := func(s string) string { return fmt.Sprintf("%s%d", s, l2) }
		a.jeq(uint32(proto.EtherTypeIPv4), l("ipv4"))
		a.jeq(uint32(proto.EtherTypeIPv6), l("ipv6"))
		a.jeq(uint32(proto.EtherTypeARP), l("arp"))
		a.ja("drop")

		a.label(l("ipv4"))
		a.emit(xbpf.LoadAbsolute{Off: l2 + 9, Size: 1})
		a.jeq(uint32(proto.IPProtoUDP), l("udp4"))
		a.jeq(uint32(proto.IPProtoICMP), l("icmp4"))
		a.jeq(uint32(proto.IPProtoIGMP), l("igmp"))
		a.ja("drop")

		a.label(l("udp4"))
		a.emit(xbpf.LoadAbsolute{Off: l2 + 16, Size: 4})
		match4(a, udp4, "udp")
		a.jeq(0xffffffff, "udp")
		a.emit(xbpf.ALUOpConstant{Op: xbpf.ALUOpAnd, Val: 0xf0000000})
		a.jeq(0xe0000000, "udp") // 224.0.0.0/4
		a.ja("drop")

		a.label(l("icmp4"))
		a.emit(xbpf.LoadAbsolute{Off: l2 + 16, Size: 4})
		match4(a, owned4, "accept")
		// udp-frag: ICMP errors (destination unreachable, time
		// exceeded, parameter problem) to a shared address too, for
		// the port that sent the datagram they quote.
		match4(a, shared4, l("icmperr4"))
		a.ja("drop")
		a.label(l("icmperr4"))
		a.emit(xbpf.LoadMemShift{Off: l2}, xbpf.LoadIndirect{Off: l2, Size: 1})
		a.jeq(uint32(frame.ICMPv4DestUnreachable), "accept")
		a.jeq(uint32(frame.ICMPv4TimeExceeded), "accept")
		a.jeq(uint32(frame.ICMPv4ParameterProblem), "accept")
		a.ja("drop")

		// IGMP: the message type after the IPv4 header and its options
		// (a Router Alert, as every IGMPv2 and v3 message carries).
		// The destination, a group or one of the engine's addresses,
		// is the engine's to check: testing every address here would
		// cost instructions per address for rare frames.
		a.label(l("igmp"))
		a.emit(
			xbpf.LoadMemShift{Off: l2},
			xbpf.LoadIndirect{Off: l2, Size: 1},
		)
		a.jeq(uint32(frame.IGMPMembershipQuery), "accept")
		a.jeq(uint32(frame.IGMPv1MembershipReport), "accept")
		a.jeq(uint32(frame.IGMPv2MembershipReport), "accept")
		a.ja("drop")

		a.label(l("arp"))
		acceptARP(a, l2, all4)

		a.label(l("ipv6"))
		a.emit(xbpf.LoadAbsolute{Off: l2 + 6, Size: 1})
		a.jeq(uint32(proto.IPProtoICMPv6), l("icmp6"))
		walkIPv6(a, l2, l("udp6"), l("mld"), l("ext"))

		a.label(l("udp6"))
		match6(a, l2+24, all6, "udp", l("u6"))
		a.emit(xbpf.LoadAbsolute{Off: l2 + 24, Size: 1})
		a.jeq(0xff, "udp") // ff00::/8
		a.ja("drop")

		// MLD: X is the offset of the ICMPv6 header behind the
		// extension headers.
		a.label(l("mld"))
		a.emit(xbpf.LoadIndirect{Off: 0, Size: 1})
		a.jeq(uint32(frame.MLDQuery), "accept")
		a.jeq(uint32(frame.MLDv1Report), "accept")
		a.ja("drop")

		a.label(l("icmp6"))
		a.emit(xbpf.LoadAbsolute{Off: l2 + 40, Size: 1})
		a.jeq(uint32(frame.ICMPv6NeighborSolicitation), l("ns"))
		a.jeq(uint32(frame.ICMPv6NeighborAdvertisement), l("na"))
		a.jeq(uint32(frame.ICMPv6EchoRequest), l("echo6"))
		// udp-frag: ICMPv6 errors (types 1-4) to any of the addresses,
		// for the port that sent the datagram they quote; the test is
		// the advertisements' (destination is one of the addresses).
		a.jeq(uint32(frame.ICMPv6DestUnreachable), l("na"))
		a.jeq(uint32(frame.ICMPv6PacketTooBig), l("na"))
		a.jeq(uint32(frame.ICMPv6TimeExceeded), l("na"))
		a.jeq(uint32(frame.ICMPv6ParameterProblem), l("na"))
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
	})

	// Accepted: as much as serveVLAN decided, the whole frame or the
	// head of one of another VLAN.
	a.label("accept")
	a.emit(xbpf.LoadScratch{Dst: xbpf.RegA, N: snapScratch}, xbpf.RetA{})
	a.label("udp")
	if len(user) == 0 {
		a.emit(xbpf.LoadScratch{Dst: xbpf.RegA, N: snapScratch}, xbpf.RetA{})
	} else {
		// A datagram of another VLAN is counted, not matched. The
		// user's program runs as the tail: its jumps are relative and
		// every path through it ends in a return.
		a.emit(xbpf.LoadScratch{Dst: xbpf.RegA, N: snapScratch})
		a.jump(xbpf.JumpEqual, DefaultSnapLen, "user", "")
		a.emit(xbpf.RetA{})
		a.label("user")
		a.emit(user...)
	}
	// Last: the kernel's checker lets the state of scratch memory flow
	// through a return into the next instruction, and the outgoing test
	// jumps here before snapScratch is written.
	a.label("drop")
	a.emit(xbpf.RetConstant{Val: 0})
	return a.assemble()
}

// snapScratch is the scratch memory word that holds how much of the frame
// an accepting path returns (serveVLAN); walkIPv6 uses word 0.
const snapScratch = 1

// serveVLAN writes the program's first test: is the frame of the VLAN the
// engine serves (vlan; 0 means untagged)? It stores the answer as a snap
// length in scratch word snapScratch: DefaultSnapLen for the engine's
// VLAN, OtherVLANSnapLen for any other, and goes on either way, so that
// the rest of the program decides as for any frame whether the engine
// wants it at all. With ancillary, the tag the kernel removed counts
// first: a frame whose one tag went into metadata must not carry another.
// Without a tag in metadata, a tag in the frame counts (as from a backend
// that leaves tags in place). Like the kernel's base interface, VLAN ID 0
// (a priority tag) is untagged; a priority tag in front of a VLAN tag is
// not looked through.
func serveVLAN(a *assembler, vlan uint16, ancillary bool) {
	// noInner: the one tag was right; any other tag after it is wrong.
	noInner := func(off uint32) {
		a.emit(xbpf.LoadAbsolute{Off: off, Size: 2})
		a.jeq(uint32(proto.EtherTypeVLAN), "vlan-other")
		a.jeq(uint32(proto.EtherTypeQinQ), "vlan-other")
		a.ja("vlan-ours")
	}
	if ancillary {
		a.emit(xbpf.LoadExtension{Num: xbpf.ExtVLANTagPresent})
		a.jeq(0, "vlan-none")
		a.emit(
			xbpf.LoadExtension{Num: xbpf.ExtVLANTag},
			xbpf.ALUOpConstant{Op: xbpf.ALUOpAnd, Val: 0x0fff},
		)
		a.jump(xbpf.JumpEqual, uint32(vlan), "", "vlan-other")
		noInner(12)
		a.label("vlan-none")
	}
	a.emit(xbpf.LoadAbsolute{Off: 12, Size: 2})
	a.jeq(uint32(proto.EtherTypeVLAN), "vlan-frame")
	a.jeq(uint32(proto.EtherTypeQinQ), "vlan-frame")
	if vlan == 0 {
		a.ja("vlan-ours")
	} else {
		a.ja("vlan-other")
	}
	a.label("vlan-frame")
	a.emit(
		xbpf.LoadAbsolute{Off: frame.EthernetHeaderLen, Size: 2},
		xbpf.ALUOpConstant{Op: xbpf.ALUOpAnd, Val: 0x0fff},
	)
	a.jump(xbpf.JumpEqual, uint32(vlan), "", "vlan-other")
	noInner(frame.EthernetHeaderLen + frame.VLANTagLen - 2)
	a.label("vlan-other")
	a.emit(
		xbpf.LoadConstant{Dst: xbpf.RegA, Val: OtherVLANSnapLen},
		xbpf.StoreScratch{Src: xbpf.RegA, N: snapScratch},
	)
	a.ja("vlan-done")
	a.label("vlan-ours")
	a.emit(
		xbpf.LoadConstant{Dst: xbpf.RegA, Val: DefaultSnapLen},
		xbpf.StoreScratch{Src: xbpf.RegA, N: snapScratch},
	)
	a.label("vlan-done")
}

// walkIPv6 follows the Next Header chain of an IPv6 packet, whose fixed
// header's Next Header is in A, and jumps to udp if it reaches UDP or a
// Fragment header, to icmp6 if it reaches ICMPv6 behind at least one
// extension header (MLD), else to drop. Hop-by-Hop, Routing and
// Destination Options headers are walked, each (Hdr Ext Len + 1) * 8
// bytes long (RFC 8200 section 4), up to frame.MaxIPv6ExtHeaders of them;
// a chain that still goes on after that many is passed too, for frame's
// Decode to count as ipv6-too-many-ext-headers. A Fragment header ends the
// walk: the engine reassembles fragments itself, and what follows the
// header of a later fragment is data. A chain
// whose next header lies past the end of the frame makes a load fail,
// which drops the frame (the kernel returns 0), as with any truncated
// header; a last header that claims more than the frame holds but names
// UDP passes, for Decode to count. Anything else (TCP; an Authentication
// Header) is dropped: the engine has no use for it. X holds the offset of
// the header whose type is in A; at icmp6, that of the ICMPv6 header.
//
// Classic BPF jumps only forward, so the loop is unrolled.
func walkIPv6(a *assembler, l2 uint32, udp, icmp6, prefix string) {
	walked := []uint8{proto.IPProtoHopByHop, proto.IPProtoRouting, proto.IPProtoDstOpts}
	a.emit(xbpf.LoadConstant{Dst: xbpf.RegX, Val: l2 + frame.IPv6HeaderLen})
	for i := 0; ; i++ {
		next := fmt.Sprintf("%s%d", prefix, i)
		a.jeq(uint32(proto.IPProtoUDP), udp)
		a.jeq(uint32(proto.IPProtoFragment), udp)
		if i > 0 {
			// The fixed header's ICMPv6 was taken before the walk.
			a.jeq(uint32(proto.IPProtoICMPv6), icmp6)
		}
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

// untaggedAndTagged writes the tests of a frame without a VLAN tag and of
// one with a single 802.1Q or 802.1ad tag, both left in the frame: body
// writes them for a link-layer header of l2 bytes, with the EtherType in A.
func untaggedAndTagged(a *assembler, body func(l2 uint32)) {
	a.emit(xbpf.LoadAbsolute{Off: 12, Size: 2})
	a.jeq(uint32(proto.EtherTypeVLAN), "tagged")
	a.jeq(uint32(proto.EtherTypeQinQ), "tagged")
	body(frame.EthernetHeaderLen)
	a.label("tagged")
	a.emit(xbpf.LoadAbsolute{Off: frame.EthernetHeaderLen + frame.VLANTagLen - 2, Size: 2}) // the EtherType after the tag
	body(frame.EthernetHeaderLen + frame.VLANTagLen)
}

// acceptARP accepts an ARP message (behind l2 bytes of link-layer header)
// whose target protocol address is one of addrs, and drops any other.
func acceptARP(a *assembler, l2 uint32, addrs []netip.Addr) {
	a.emit(xbpf.LoadAbsolute{Off: l2 + 24, Size: 4}) // target protocol address
	match4(a, addrs, "accept")
	a.ja("drop")
}

// match4 jumps to hit if A holds one of the IPv4 addrs, and falls through
// otherwise.
func match4(a *assembler, addrs []netip.Addr, hit string) {
	for _, ip := range addrs {
		b := ip.As4()
		a.jeq(be32(b[:]), hit)
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
