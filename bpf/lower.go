package bpf

import (
	"github.com/pktengine/pktengine/proto"
)

// Linux ancillary data (linux/filter.h): absolute loads at SKF_AD_OFF+n read
// socket-buffer metadata instead of packet bytes.
const (
	skfAdOff             = 0xfffff000 // SKF_AD_OFF, -0x1000
	skfAdPktType         = 4          // SKF_AD_PKTTYPE: skb->pkt_type
	skfAdVLANTag         = 44         // SKF_AD_VLAN_TAG: the stripped TCI
	skfAdVLANTagPresent  = 48         // SKF_AD_VLAN_TAG_PRESENT
	packetOutgoing       = 4          // PACKET_OUTGOING, linux/if_packet.h
	etherTypeRARP        = 0x8035
	etherTypeQinQOld     = 0x9100 // pre-802.1ad double tagging, still matched by tcpdump
	etherMTU             = 1500   // EtherType values at or below this are 802.3 lengths
	ipv4FragOffsetMask   = 0x1fff
	vlanIDMask           = 0x0fff
	ipProtoSCTP          = 132
	ethernetHeaderLength = 14
)

// VLANMode selects how the "vlan" keyword finds the
// outermost 802.1Q/802.1ad tag.
type VLANMode uint8

const (
	// VLANAncillary reads the outermost tag from Linux ancillary data
	// (SKF_AD_VLAN_TAG_PRESENT, SKF_AD_VLAN_TAG). It is the default because
	// on an AF_PACKET socket the kernel has already removed that tag from
	// a received frame (skb_vlan_untag, before any packet tap runs), so an
	// in-packet test would never see it. Offsets after the tag do not
	// move. Further "vlan" keywords test tags still in the frame.
	VLANAncillary VLANMode = iota
	// VLANInPacket tests the tag bytes in the frame and moves every later
	// offset by four, as tcpdump does for a savefile or "-y EN10MB -d":
	// use it for frames that still carry their tags.
	VLANInPacket
)

// DefaultSnapLen is tcpdump's default snapshot length, returned by programs
// when Options.SnapLen is zero.
const DefaultSnapLen = 262144

// Options control code generation. The zero value (and a nil *Options) is
// ready for a live AF_PACKET socket.
type Options struct {
	// VLAN selects how VLAN tags are tested; see VLANMode.
	VLAN VLANMode
	// SnapLen is what an accepting program returns: the kernel keeps at
	// most that many bytes of the frame. Zero means DefaultSnapLen.
	SnapLen uint32
	// LookupPort resolves a service name for one transport protocol
	// ("tcp", "udp" or "sctp"). Nil uses proto.DefaultServices().
	LookupPort func(name, transport string) (port uint16, ok bool)
}

func (o *Options) snapLen() uint32 {
	if o == nil || o.SnapLen == 0 {
		return DefaultSnapLen
	}
	return o.SnapLen
}

// lowerer turns primitives into atom trees, tracking the link-layer
// offsets that the "vlan" keyword moves.
type lowerer struct {
	vlanMode    VLANMode
	offLinkType uint32 // the EtherType field
	offLinkPL   uint32 // the link-layer payload (network header)
	vlanDepth   int    // "vlan" keywords seen so far
}

func newLowerer(o *Options) *lowerer {
	l := &lowerer{offLinkType: 12, offLinkPL: ethernetHeaderLength}
	if o != nil {
		l.vlanMode = o.VLAN
	}
	return l
}

func abs(off uint32, size uint8) value { return value{mode: ldAbs, size: size, off: off} }

func cmpEq(off uint32, size uint8, k uint32) *expr { return mkAtom(abs(off, size), jeq, k) }

// linktype is "ether proto t" at the current offset.
func (l *lowerer) linktype(t uint16) *expr {
	if t <= etherMTU {
		// An 802.3 frame: the length field is a length and the LLC DSAP
		// carries the protocol.
		return and(not(mkAtom(abs(l.offLinkType, 2), jgt, etherMTU)), cmpEq(l.offLinkPL, 1, uint32(t)))
	}
	return cmpEq(l.offLinkType, 2, uint32(t))
}

// ipProto is "ip proto p".
func (l *lowerer) ipProto(p uint8) *expr {
	return and(l.linktype(proto.EtherTypeIPv4), cmpEq(l.offLinkPL+9, 1, uint32(p)))
}

// ip6Proto is "ip6 proto p": the next header is p, or a fragment header
// whose next header is p (libpcap follows exactly that one header).
func (l *lowerer) ip6Proto(p uint8) *expr {
	pl := l.offLinkPL
	direct := cmpEq(pl+6, 1, uint32(p))
	viaFrag := and(cmpEq(pl+6, 1, uint32(proto.IPProtoFragment)), cmpEq(pl+40, 1, uint32(p)))
	return and(l.linktype(proto.EtherTypeIPv6), or(direct, viaFrag))
}

// anyProto is "proto p": IPv4 or IPv6.
func (l *lowerer) anyProto(p uint8) *expr { return or(l.ipProto(p), l.ip6Proto(p)) }

// dirKind is a direction qualifier.
type dirKind uint8

const (
	dirDefault dirKind = iota // src or dst
	dirSrc
	dirDst
	dirAnd // src and dst
)

func dirExpr(d dirKind, src, dst func() *expr) *expr {
	switch d {
	case dirSrc:
		return src()
	case dirDst:
		return dst()
	case dirAnd:
		return and(src(), dst())
	default:
		return or(src(), dst())
	}
}

// mcmp32 compares a 32-bit word under a mask; a zero mask is always true.
func mcmp32(v value, k, mask uint32) *expr {
	switch mask {
	case 0:
		return exprTrue
	case 0xffffffff:
		return mkAtom(v, jeq, k)
	}
	v.mask = mask
	return mkAtom(v, jeq, k&mask)
}

// host4 is an IPv4 address/mask test at the given source and destination
// offsets, guarded by an EtherType.
func (l *lowerer) host4(et uint16, srcOff, dstOff uint32, addr, mask uint32, d dirKind) *expr {
	src := func() *expr { return mcmp32(abs(l.offLinkPL+srcOff, 4), addr, mask) }
	dst := func() *expr { return mcmp32(abs(l.offLinkPL+dstOff, 4), addr, mask) }
	return and(l.linktype(et), dirExpr(d, src, dst))
}

// ipv4Host is "ip host", "ip net": source and destination addresses.
func (l *lowerer) ipv4Host(addr, mask uint32, d dirKind) *expr {
	return l.host4(proto.EtherTypeIPv4, 12, 16, addr, mask, d)
}

// arpHost is "arp host" or "rarp host": sender and target protocol
// addresses of an Ethernet/IPv4 ARP packet.
func (l *lowerer) arpHost(et uint16, addr, mask uint32, d dirKind) *expr {
	return l.host4(et, 14, 24, addr, mask, d)
}

// anyHost4 is tcpdump's unqualified "host"/"net" for IPv4: IP, ARP or RARP.
func (l *lowerer) anyHost4(addr, mask uint32, d dirKind) *expr {
	return or(or(l.ipv4Host(addr, mask, d), l.arpHost(proto.EtherTypeARP, addr, mask, d)),
		l.arpHost(etherTypeRARP, addr, mask, d))
}

// ipv6Host is "ip6 host"/"ip6 net": 128-bit address under mask, compared
// word by word from the first.
func (l *lowerer) ipv6Host(addr, mask [16]byte, d dirKind) *expr {
	words := func(off uint32) *expr {
		e := exprTrue
		for i := 3; i >= 0; i-- {
			a := be32(addr[4*i:])
			m := be32(mask[4*i:])
			w := mcmp32(abs(l.offLinkPL+off+uint32(4*i), 4), a, m)
			if w == exprTrue {
				continue
			}
			if e == exprTrue {
				e = w
			} else {
				e = and(w, e)
			}
		}
		return e
	}
	src := func() *expr { return words(8) }
	dst := func() *expr { return words(24) }
	return and(l.linktype(proto.EtherTypeIPv6), dirExpr(d, src, dst))
}

func be32(b []byte) uint32 {
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

// ipv4NotLaterFragment is true for unfragmented datagrams and first
// fragments: only those carry the transport header.
func (l *lowerer) ipv4NotLaterFragment() *expr {
	return not(mkAtom(abs(l.offLinkPL+6, 2), jset, ipv4FragOffsetMask))
}

// tran4 is a 16-bit field at off in the transport header behind an IPv4
// header of any length: X = 4*IHL, never an assumed 20 bytes.
func (l *lowerer) tran4(off uint32) value {
	return value{mode: ldInd, size: 2, off: l.offLinkPL + off, xoff: l.offLinkPL}
}

// tran6 is a 16-bit field at off in the transport header right behind the
// fixed IPv6 header.
func (l *lowerer) tran6(off uint32) value { return abs(l.offLinkPL+40+off, 2) }

// portTest builds the port comparison for one transport field.
type portTest func(v value) *expr

func portEq(port uint16) portTest {
	return func(v value) *expr { return mkAtom(v, jeq, uint32(port)) }
}

func portRange(lo, hi uint16) portTest {
	if lo > hi {
		lo, hi = hi, lo
	}
	return func(v value) *expr {
		return and(mkAtom(v, jge, uint32(lo)), not(mkAtom(v, jgt, uint32(hi))))
	}
}

// transports lists the IP protocols a port primitive covers: one, or
// tcpdump's SCTP, TCP, UDP for an unqualified "port".
func transports(p uint8) []uint8 {
	if p == 0 {
		return []uint8{ipProtoSCTP, proto.IPProtoTCP, proto.IPProtoUDP}
	}
	return []uint8{p}
}

// port4 is libpcap's gen_port: IPv4, one of the transports, not a later
// fragment, and the port test on the source and/or destination field.
func (l *lowerer) port4(p uint8, d dirKind, test portTest) *expr {
	var alts []*expr
	for _, tp := range transports(p) {
		ports := dirExpr(d, func() *expr { return test(l.tran4(0)) }, func() *expr { return test(l.tran4(2)) })
		alts = append(alts, and(and(cmpEq(l.offLinkPL+9, 1, uint32(tp)), l.ipv4NotLaterFragment()), ports))
	}
	return and(l.linktype(proto.EtherTypeIPv4), orAll(alts...))
}

// port6 is libpcap's gen_port6: the transport header right after the fixed
// IPv6 header (extension headers are not walked, as in tcpdump).
func (l *lowerer) port6(p uint8, d dirKind, test portTest) *expr {
	var alts []*expr
	for _, tp := range transports(p) {
		ports := dirExpr(d, func() *expr { return test(l.tran6(0)) }, func() *expr { return test(l.tran6(2)) })
		alts = append(alts, and(cmpEq(l.offLinkPL+6, 1, uint32(tp)), ports))
	}
	return and(l.linktype(proto.EtherTypeIPv6), orAll(alts...))
}

// port is IPv6 then IPv4, in tcpdump's order.
func (l *lowerer) port(p uint8, d dirKind, test portTest) *expr {
	return or(l.port6(p, d, test), l.port4(p, d, test))
}

// etherAddr compares a 6-byte MAC at off: the last four bytes as a word,
// then the first two, as libpcap's gen_bcmp does.
func etherAddr(off uint32, mac [6]byte) *expr {
	return and(cmpEq(off+2, 4, be32(mac[2:])), cmpEq(off, 2, uint32(mac[0])<<8|uint32(mac[1])))
}

func (l *lowerer) etherHost(mac [6]byte, d dirKind) *expr {
	return dirExpr(d, func() *expr { return etherAddr(6, mac) }, func() *expr { return etherAddr(0, mac) })
}

// outgoing is true for frames the host itself sent (PACKET_OUTGOING).
func outgoing() *expr {
	return cmpEq(skfAdOff+skfAdPktType, 2, packetOutgoing)
}

// vlan tests for a tag (and its VLAN ID if id >= 0), then moves the
// offsets past it where the tag is in the frame.
func (l *lowerer) vlan(id int) *expr {
	var e *expr
	if l.vlanMode == VLANAncillary && l.vlanDepth == 0 {
		e = cmpEq(skfAdOff+skfAdVLANTagPresent, 1, 1)
		if id >= 0 {
			v := abs(skfAdOff+skfAdVLANTag, 2)
			v.mask = vlanIDMask
			e = and(e, mkAtom(v, jeq, uint32(id)))
		}
		l.vlanDepth++
		return e
	}
	e = or(or(l.linktype(proto.EtherTypeVLAN), l.linktype(proto.EtherTypeQinQ)), l.linktype(etherTypeQinQOld))
	if id >= 0 {
		v := abs(l.offLinkPL, 2)
		v.mask = vlanIDMask
		e = and(e, mkAtom(v, jeq, uint32(id)))
	}
	l.offLinkType += 4
	l.offLinkPL += 4
	l.vlanDepth++
	return e
}

// length is "less n" (frame length <= n) or "greater n" (>= n).
func length(greater bool, n uint32) *expr {
	v := value{mode: ldLen, size: 4}
	if greater {
		return mkAtom(v, jge, n)
	}
	return not(mkAtom(v, jgt, n))
}
