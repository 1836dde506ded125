package bpf

import (
	"errors"
	"net/netip"
	"strings"

	"github.com/pktengine/pktengine/proto"
)

// Linux ancillary data (linux/filter.h): absolute loads at SKF_AD_OFF+n read
// socket-buffer metadata instead of packet bytes.
const (
	skfAdOff             = 0xfffff000 // SKF_AD_OFF, -0x1000
	skfAdPktType         = 4          // SKF_AD_PKTTYPE: skb->pkt_type
	skfAdIfIndex         = 8          // SKF_AD_IFINDEX: skb->dev->ifindex
	skfAdVLANTag         = 44         // SKF_AD_VLAN_TAG: the stripped TCI
	skfAdVLANTagPresent  = 48         // SKF_AD_VLAN_TAG_PRESENT
	packetOutgoing       = 4          // PACKET_OUTGOING, linux/if_packet.h
	etherTypeRARP        = 0x8035
	etherTypeATalk       = 0x809b // AppleTalk
	etherTypeAARP        = 0x80f3 // AppleTalk ARP
	etherTypeIPX         = 0x8137
	etherTypeMPLS        = 0x8847
	etherTypePPPoED      = 0x8863
	etherTypePPPoES      = 0x8864
	llcSAPIP             = 0x06 // 802.2 SAPs, which "ether proto" takes below 1500
	llcSAP8021D          = 0x42 // spanning tree
	llcSAPSNAP           = 0xaa
	llcSAPIPX            = 0xe0
	llcSAPNetBEUI        = 0xf0
	llcSAPISONS          = 0xfe   // ISO network layer
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
	// Netmask is the IPv4 netmask of the network the filter watches,
	// which "ip broadcast" needs (tcpdump takes it from the capture
	// interface). The zero Addr means unknown: "ip broadcast" is then an
	// error, as in libpcap.
	Netmask netip.Addr
}

func (o *Options) snapLen() uint32 {
	if o == nil || o.SnapLen == 0 {
		return DefaultSnapLen
	}
	return o.SnapLen
}

// lowerer turns primitives into atom trees, tracking the link-layer
// offsets that "vlan", "mpls" and "pppoes" move (libpcap's OR_LINKHDR,
// OR_LINKTYPE, OR_LLC and OR_LINKPL).
type lowerer struct {
	vlanMode    VLANMode
	offLinkHdr  uint32 // the link-layer header: ether[0]
	offLinkType uint32 // the EtherType field (after pppoes: the PPP protocol)
	offLLC      uint32 // an 802.2 LLC header
	offLinkPL   uint32 // the link-layer payload (network header)
	vlanDepth   int    // "vlan" keywords seen so far
	mplsDepth   int    // "mpls" keywords seen so far
	ppp         bool   // after "pppoes": the link layer is PPP
	err         error  // the first primitive that cannot be lowered here
	netmask     netip.Addr
	nodes       map[arith]*arith // interned arithmetic (arith.go)
	// plain is set for an expression with protochain, which libpcap
	// compiles without its optimiser: constants fold only where that
	// keeps every load (arith.go, generate).
	plain bool
}

func newLowerer(o *Options) *lowerer {
	l := &lowerer{offLinkType: 12, offLLC: ethernetHeaderLength, offLinkPL: ethernetHeaderLength}
	if o != nil {
		l.vlanMode = o.VLAN
		if o.Netmask.Is4() {
			l.netmask = o.Netmask
		}
	}
	return l
}

func abs(off uint32, size uint8) value { return value{mode: ldAbs, size: size, off: off} }

func cmpEq(off uint32, size uint8, k uint32) *expr { return mkAtom(abs(off, size), jeq, k) }

// linktype is "ether proto t" at the current offset, as libpcap's
// gen_ether_linktype writes it: values up to 1500 are 802.2 SAPs, in an
// 802.3 frame (whose type field is a length); OSI, NetBEUI and IP SAPs
// check both DSAP and SSAP, IPX and AppleTalk have several encapsulations.
func (l *lowerer) linktype(t uint16) *expr {
	if l.mplsDepth > 0 {
		// libpcap's gen_mpls_linktype: the bottom of the label stack,
		// then the IP version.
		bottom := mcmp(l.offLinkPL-2, 1, 1, 1)
		switch t {
		case proto.EtherTypeIPv4:
			return and(bottom, mcmp(l.offLinkPL, 1, 0x40, 0xf0))
		case proto.EtherTypeIPv6:
			return and(bottom, mcmp(l.offLinkPL, 1, 0x60, 0xf0))
		}
		l.fail("unsupported protocol over mpls")
		return exprFalse
	}
	if l.ppp {
		return cmpEq(l.offLinkType, 2, uint32(pppType(t)))
	}
	is8023 := func() *expr { return not(mkAtom(abs(l.offLinkType, 2), jgt, etherMTU)) }
	switch t {
	case llcSAPISONS, llcSAPIP, llcSAPNetBEUI:
		return and(is8023(), cmpEq(l.offLLC, 2, uint32(t)<<8|uint32(t)))
	case llcSAPIPX:
		// Ethernet_II, then (in 802.3 frames) Ethernet_SNAP,
		// Ethernet_802.2 and Ethernet_802.3 ("raw", 0xffff).
		raw := or(or(l.snap(0, etherTypeIPX), cmpEq(l.offLLC, 1, llcSAPIPX)), cmpEq(l.offLLC, 2, 0xffff))
		return or(cmpEq(l.offLinkType, 2, etherTypeIPX), and(is8023(), raw))
	case etherTypeATalk, etherTypeAARP:
		org := uint32(0x080007) // Apple
		if t == etherTypeAARP {
			org = 0
		}
		return or(cmpEq(l.offLinkType, 2, uint32(t)), and(is8023(), l.snap(org, t)))
	}
	if t <= etherMTU {
		// An 802.3 frame: the length field is a length and the LLC DSAP
		// carries the protocol.
		return and(is8023(), cmpEq(l.offLinkType+2, 1, uint32(t)))
	}
	return cmpEq(l.offLinkType, 2, uint32(t))
}

// pppType maps an EtherType (or SAP) to the PPP protocol libpcap tests
// for it after "pppoes" (ethertype_to_ppptype).
func pppType(t uint16) uint16 {
	switch t {
	case proto.EtherTypeIPv4:
		return 0x0021
	case proto.EtherTypeIPv6:
		return 0x0057
	case 0x6003: // DECnet
		return 0x0027
	case etherTypeATalk:
		return 0x0029
	case 0x0600: // XNS
		return 0x0025
	case llcSAPISONS:
		return 0x0023
	case llcSAP8021D:
		return 0x0031
	case llcSAPIPX:
		return 0x002b
	}
	return t
}

// fail records the first primitive that cannot be lowered with the
// current link layer; the parser reports it where the primitive starts.
func (l *lowerer) fail(msg string) {
	if l.err == nil {
		l.err = errors.New(msg)
	}
}

// mcmp compares a masked field: (size bytes at off) & mask == k.
func mcmp(off uint32, size uint8, k, mask uint32) *expr {
	v := abs(off, size)
	if mask != 0xffffffff {
		v.mask = mask
	}
	return mkAtom(v, jeq, k&mask)
}

// isoBase is the offset of the NLPID of an OSI packet in 802.2 without
// SNAP (libpcap's OR_LINKPL_NOSNAP).
func (l *lowerer) isoBase() uint32 {
	if l.ppp {
		return l.offLinkPL
	}
	return l.offLLC + 3
}

// linkOnly fails for a primitive that needs an Ethernet header.
func (l *lowerer) linkOnly(what string) {
	if l.ppp {
		l.fail(what + " not supported after pppoes (the link layer is PPP)")
	}
}

// mpls is "mpls [label]": an MPLS packet (or the next label of a stack
// already entered), then offsets past the label.
func (l *lowerer) mpls(label int64) *expr {
	var e *expr
	switch {
	case l.mplsDepth > 0:
		e = not(mkAtom(abs(l.offLinkPL-2, 1), jset, 1)) // not the bottom of the stack
	case l.ppp:
		e = l.linktype(0x0281) // PPP_MPLS_UCAST
	default:
		e = l.linktype(etherTypeMPLS)
	}
	if label >= 0 {
		e = and(e, mcmp(l.offLinkPL, 4, uint32(label)<<12, 0xfffff000))
	}
	l.offLinkPL += 4
	l.mplsDepth++
	return e
}

// pppoes is "pppoes [session]": a PPPoE session frame, after which the
// link layer is the PPP inside it.
func (l *lowerer) pppoes(session int64) *expr {
	e := l.linktype(etherTypePPPoES)
	if session >= 0 {
		e = and(e, mcmp(l.offLinkPL, 4, uint32(session), 0xffff))
	}
	l.offLinkHdr = l.offLinkPL + 6
	l.offLinkType = l.offLinkHdr
	l.offLLC = l.offLinkHdr + 2
	l.offLinkPL = l.offLLC
	l.ppp = true
	return e
}

// llc is "llc [i|s|u|subtype]" (libpcap's gen_llc family): an 802.2 frame
// that is not Novell's raw 802.3, with a control field of that kind.
func (l *lowerer) llc(kind string) (*expr, bool) {
	l.linkOnly("\"llc\"")
	base := and(not(mkAtom(abs(l.offLinkType, 2), jgt, etherMTU)), not(cmpEq(l.offLLC, 2, 0xffff)))
	ctl := l.offLLC + 2
	switch strings.ToLower(kind) {
	case "":
		return base, true
	case "i":
		return and(base, not(mkAtom(abs(ctl, 1), jset, 1))), true
	case "s":
		return and(base, mcmp(ctl, 1, 1, 3)), true
	case "u":
		return and(base, mcmp(ctl, 1, 3, 3)), true
	}
	if v, ok := llcSSubtypes[strings.ToLower(kind)]; ok {
		return and(base, mcmp(ctl, 1, v, 0x0f)), true
	}
	if v, ok := llcUSubtypes[strings.ToLower(kind)]; ok {
		return and(base, mcmp(ctl, 1, v, 0xef)), true
	}
	return nil, false
}

// 802.2 control field commands (libpcap's llc_s_subtypes, llc_u_subtypes).
var (
	llcSSubtypes = map[string]uint32{"rr": 0x01, "rnr": 0x05, "rej": 0x09}
	llcUSubtypes = map[string]uint32{"ui": 0x03, "ua": 0x63, "disc": 0x43, "dm": 0x0f, "sabme": 0x6f,
		"test": 0xe3, "xid": 0xaf, "frmr": 0x87}
)

// byteTest is libpcap's undocumented "byte N op M" on the link-layer
// header: =, <, > compare the byte, & tests bits, | is true unless the
// byte and M are both 0.
func (l *lowerer) byteTest(off uint32, op string, k uint32) *expr {
	v := abs(l.offLinkHdr+off, 1)
	switch op {
	case "=":
		return mkAtom(v, jeq, k)
	case "<":
		return not(mkAtom(v, jge, k))
	case ">":
		return mkAtom(v, jgt, k)
	case "&":
		return mkAtom(v, jset, k)
	}
	a := l.intern(arith{op: opOr, l: l.intern(arith{op: opLoad, k: l.offLinkHdr + off, size: 1}), r: l.konst(k)})
	return not(mkAtom(valueOf(a), jeq, 0))
}

// snap is an 802.2 LLC SNAP header with the given organisation code and
// type, compared as libpcap's gen_bcmp does (last word first).
func (l *lowerer) snap(org uint32, t uint16) *expr {
	hdr := [8]byte{llcSAPSNAP, llcSAPSNAP, 0x03, byte(org >> 16), byte(org >> 8), byte(org), byte(t >> 8), byte(t)}
	return and(cmpEq(l.offLLC+4, 4, be32(hdr[4:])), cmpEq(l.offLLC, 4, be32(hdr[:4])))
}

// isoProto is an OSI network-layer protocol (NLPID) over 802.2.
func (l *lowerer) isoProto(nlpid uint8) *expr {
	return and(l.linktype(llcSAPISONS), cmpEq(l.isoBase(), 1, uint32(nlpid)))
}

// isisPDU is IS-IS with one of the PDU types, tested in the order given.
func (l *lowerer) isisPDU(types ...uint8) *expr {
	var alts []*expr
	for _, t := range types {
		alts = append(alts, cmpEq(l.isoBase()+4, 1, uint32(t)))
	}
	return and(l.isoProto(isoISIS), orAll(alts...))
}

// OSI NLPIDs.
const (
	isoCLNP = 0x81
	isoESIS = 0x82
	isoISIS = 0x83
)

// protoAbbrev is a protocol name on its own ("udp", "pim", "ipx") as
// libpcap's gen_proto_abbrev has it.
func (l *lowerer) protoAbbrev(pq protoQ) *expr {
	switch pq {
	case pIP:
		return l.linktype(proto.EtherTypeIPv4)
	case pIP6:
		return l.linktype(proto.EtherTypeIPv6)
	case pARP:
		return l.linktype(proto.EtherTypeARP)
	case pRARP:
		return l.linktype(etherTypeRARP)
	case pTCP:
		return l.anyProto(proto.IPProtoTCP)
	case pUDP:
		return l.anyProto(proto.IPProtoUDP)
	case pSCTP:
		return l.anyProto(ipProtoSCTP)
	case pICMP:
		return l.ipProto(proto.IPProtoICMP)
	case pICMP6:
		return l.ip6Proto(proto.IPProtoICMPv6)
	case pIGMP:
		return l.ipProto(2)
	case pIGRP:
		return l.ipProto(9)
	case pPIM:
		return l.anyProto(103)
	case pVRRP, pCARP:
		return l.ipProto(112)
	case pAH:
		return l.anyProto(proto.IPProtoAH)
	case pESP:
		return l.anyProto(proto.IPProtoESP)
	case pATALK:
		return l.linktype(etherTypeATalk)
	case pAARP:
		return l.linktype(etherTypeAARP)
	case pDECNET:
		return l.linktype(0x6003)
	case pLAT:
		return l.linktype(0x6004)
	case pSCA:
		return l.linktype(0x6007)
	case pMOPRC:
		return l.linktype(0x6002)
	case pMOPDL:
		return l.linktype(0x6001)
	case pISO:
		return l.linktype(llcSAPISONS)
	case pESIS:
		return l.isoProto(isoESIS)
	case pISIS:
		return l.isoProto(isoISIS)
	case pCLNP:
		return l.isoProto(isoCLNP)
	case pL1:
		return l.isisPDU(0x1a, 0x18, 0x12, 0x0f, 0x11)
	case pL2:
		return l.isisPDU(0x1b, 0x19, 0x14, 0x10, 0x11)
	case pIIH:
		return l.isisPDU(0x11, 0x0f, 0x10)
	case pLSP:
		return l.isisPDU(0x12, 0x14)
	case pSNP:
		return l.isisPDU(0x1b, 0x1a, 0x18, 0x19)
	case pCSNP:
		return l.isisPDU(0x18, 0x19)
	case pPSNP:
		return l.isisPDU(0x1a, 0x1b)
	case pSTP:
		return l.linktype(llcSAP8021D)
	case pIPX:
		return l.linktype(llcSAPIPX)
	case pNETBEUI:
		return l.linktype(llcSAPNetBEUI)
	}
	panic("bpf: no abbreviation for " + pq.String())
}

// ipMulticast is "ip multicast": a class D destination.
func (l *lowerer) ipMulticast() *expr {
	return and(l.linktype(proto.EtherTypeIPv4), mkAtom(abs(l.offLinkPL+16, 1), jge, 224))
}

// ip6Multicast is "ip6 multicast": ff00::/8.
func (l *lowerer) ip6Multicast() *expr {
	return and(l.linktype(proto.EtherTypeIPv6), cmpEq(l.offLinkPL+24, 1, 0xff))
}

// ipBroadcast is "ip broadcast": the destination's host part is all
// zeros or all ones under the netmask.
func (l *lowerer) ipBroadcast() *expr {
	m := l.netmask.As4()
	host := ^be32(m[:])
	dst := abs(l.offLinkPL+16, 4)
	return and(l.linktype(proto.EtherTypeIPv4), or(mcmp32(dst, 0, host), mcmp32(dst, host, host)))
}

// protochainMaxHeaders is how many IPv6 extension headers (or IPv4 AH
// headers) protochain walks: classic BPF cannot loop, so the walk is
// unrolled. It is frame.MaxIPv6ExtHeaders, the engine's own limit.
const protochainMaxHeaders = 8

// protochain is "ip protochain p" or "ip6 protochain p": the value is the
// first header of the chain that is p, or where the walk stops.
func (l *lowerer) protochain(v6 bool, p uint8) *expr {
	et := proto.EtherTypeIPv4
	if v6 {
		et = proto.EtherTypeIPv6
	}
	a := l.intern(arith{op: opChain, k: uint32(p), v6: v6, xoff: l.offLinkPL})
	return and(l.linktype(et), mkAtom(value{mode: ldComp, comp: a}, jeq, uint32(p)))
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

// anyHost4 is tcpdump's unqualified "host"/"net" for IPv4: IP, ARP or RARP
// (IP alone inside MPLS, as libpcap has it).
func (l *lowerer) anyHost4(addr, mask uint32, d dirKind) *expr {
	if l.mplsDepth > 0 {
		return l.ipv4Host(addr, mask, d)
	}
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
	if l.ppp {
		l.fail("ethernet addresses not supported after pppoes (the link layer is PPP)")
	}
	return dirExpr(d, func() *expr { return etherAddr(l.offLinkHdr+6, mac) }, func() *expr { return etherAddr(l.offLinkHdr, mac) })
}

// outgoing is true for frames the host itself sent (PACKET_OUTGOING).
func outgoing() *expr {
	return cmpEq(skfAdOff+skfAdPktType, 2, packetOutgoing)
}

// vlan tests for a tag (and its VLAN ID if id >= 0), then moves the
// offsets past it where the tag is in the frame.
func (l *lowerer) vlan(id int) *expr {
	switch {
	case l.mplsDepth > 0:
		l.fail("no VLAN match after MPLS")
	case l.ppp:
		l.fail("no VLAN support for PPP (after pppoes)")
	}
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
	l.offLLC += 4
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
