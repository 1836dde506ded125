package frame

import (
	"net/netip"

	"github.com/pktengine/pktengine/proto"
)

// ARPSpec describes an ARP packet for BuildARP.
type ARPSpec struct {
	Op        uint16 // ARPRequest or ARPReply
	SenderMAC MAC
	SenderIP  netip.Addr // IPv4
	TargetMAC MAC        // zero in a request
	TargetIP  netip.Addr // IPv4
	VLANs     []VLANTag
	// DstMAC is the Ethernet destination; zero means broadcast for a
	// request and TargetMAC for a reply. The Ethernet source is SenderMAC.
	DstMAC MAC
}

// ARPFrameLen returns the length of the frame BuildARP writes with n VLAN
// tags (42 untagged, before padding).
func ARPFrameLen(nVLANs int) int { return linkLen(nVLANs) + ARPLen }

// BuildARP writes an Ethernet/IPv4 ARP packet into buf and returns the
// frame length (not padded; see PadEthernet).
func BuildARP(buf []byte, s *ARPSpec) (int, error) {
	if !s.SenderIP.Is4() || !s.TargetIP.Is4() {
		return 0, ErrAddressFamily
	}
	if len(s.VLANs) > MaxVLANTags {
		return 0, ErrTooManyVLANs
	}
	n := ARPFrameLen(len(s.VLANs))
	if len(buf) < n {
		return 0, ErrShortBuffer
	}
	dst := s.DstMAC
	if dst.IsZero() {
		dst = BroadcastMAC
		if s.Op == ARPReply {
			dst = s.TargetMAC
		}
	}
	l2 := putLink(buf, s.SenderMAC, dst, s.VLANs, proto.EtherTypeARP)
	a := ARP(buf[l2:n])
	a.SetEthernetIPv4()
	a.SetOp(s.Op)
	a.SetSenderMAC(s.SenderMAC)
	a.SetSenderIP(s.SenderIP)
	a.SetTargetMAC(s.TargetMAC)
	a.SetTargetIP(s.TargetIP)
	return n, nil
}

// IPSpec carries the link and network addressing of a control message
// (ICMP error, Neighbor Advertisement) that a builder wraps in a frame.
type IPSpec struct {
	SrcMAC, DstMAC MAC
	VLANs          []VLANTag
	Src, Dst       netip.Addr
	TTL            uint8 // TTL or hop limit; 0 means DefaultTTL
	TOS            uint8 // TOS or traffic class
	ID             uint16
}

// ICMPv4QuoteLen returns how much of the datagram orig an ICMPv4 error
// quotes: its IP header and the first 8 bytes of its payload (RFC 792),
// bounded by len(orig) and by the header's total length.
func ICMPv4QuoteLen(orig []byte) int {
	if len(orig) < IPv4MinHeaderLen {
		return len(orig)
	}
	n := IPv4(orig).HeaderLength() + 8
	if tl := int(IPv4(orig).TotalLength()); tl >= IPv4MinHeaderLen && tl < n {
		n = tl
	}
	return min(n, len(orig))
}

// BuildICMPv4DestUnreachable writes an ICMPv4 Destination Unreachable
// message (type 3; code is ICMPv4CodePortUnreach for a closed UDP port)
// quoting the invoking datagram orig (IP header onward, as
// Packet.Datagram returns it): its header and 8 bytes of payload. The
// caller must apply RFC 1122 3.2.2: no error about an ICMP error, a
// broadcast or multicast, a non-first fragment, or a source that is not a
// single host.
func BuildICMPv4DestUnreachable(buf []byte, s *IPSpec, code uint8, orig []byte) (int, error) {
	return BuildICMPv4Error(buf, s, ICMPv4DestUnreachable, code, 0, orig)
}

// ICMPv6QuoteLen returns how much of the invoking packet orig an ICMPv6
// error quotes: as much as fits in an IPv6 packet of the minimum MTU
// (RFC 4443 section 2.4 (c)), 1280 - 40 - 8 = 1232 bytes.
func ICMPv6QuoteLen(orig []byte) int {
	return min(len(orig), IPv6MinMTU-IPv6HeaderLen-ICMPHeaderLen)
}

// BuildICMPv6DestUnreachable writes an ICMPv6 Destination Unreachable
// message (type 1; code ICMPv6CodePortUnreachable for a closed UDP port)
// quoting as much of the invoking packet orig as fits in 1280 bytes. The
// caller must apply RFC 4443 2.4 (e): no error about an error message, a
// multicast destination, or a source that does not identify one node.
func BuildICMPv6DestUnreachable(buf []byte, s *IPSpec, code uint8, orig []byte) (int, error) {
	return buildICMPv6Error(buf, s, ICMPv6DestUnreachable, code, 0, orig)
}

func buildICMPv6Error(buf []byte, s *IPSpec, typ, code uint8, word uint32, orig []byte) (int, error) {
	if !s.Src.Is6() || !s.Dst.Is6() {
		return 0, ErrAddressFamily
	}
	if len(s.VLANs) > MaxVLANTags {
		return 0, ErrTooManyVLANs
	}
	q := ICMPv6QuoteLen(orig)
	l2 := linkLen(len(s.VLANs))
	l4 := ICMPHeaderLen + q
	n := l2 + IPv6HeaderLen + l4
	if len(buf) < n {
		return 0, ErrShortBuffer
	}
	putLink(buf, s.SrcMAC, s.DstMAC, s.VLANs, proto.EtherTypeIPv6)
	ip := IPv6(buf[l2:])
	putIPv6(ip, s.TOS, 0, uint16(l4), s.TTL, s.Src, s.Dst)
	ip.SetNextHeader(proto.IPProtoICMPv6)
	m := ICMPv6(buf[l2+IPv6HeaderLen : n])
	m.SetType(typ)
	m.SetCode(code)
	m.SetChecksum(0)
	m[4], m[5], m[6], m[7] = byte(word>>24), byte(word>>16), byte(word>>8), byte(word)
	copy(m[ICMPHeaderLen:], orig[:q])
	m.SetChecksum(m.CalculateChecksum(ip.PseudoHeaderSum(proto.IPProtoICMPv6, uint32(l4))))
	return n, nil
}

// NeighborAdvertLen is the length of a Neighbor Advertisement with a
// Target Link-Layer Address option: 24 + 8 bytes.
const NeighborAdvertLen = NDPNeighborMessageLen + 8

// BuildNeighborAdvertisement writes a Neighbor Advertisement (RFC 4861
// section 4.4) for target, with flags (NDPFlag*) and a Target Link-Layer
// Address option carrying mac. The hop limit is always 255 (s.TTL is
// ignored), as receivers check (section 7.1.2).
func BuildNeighborAdvertisement(buf []byte, s *IPSpec, target netip.Addr, flags uint8, mac MAC) (int, error) {
	if !s.Src.Is6() || !s.Dst.Is6() || !target.Is6() {
		return 0, ErrAddressFamily
	}
	if len(s.VLANs) > MaxVLANTags {
		return 0, ErrTooManyVLANs
	}
	l2 := linkLen(len(s.VLANs))
	n := l2 + IPv6HeaderLen + NeighborAdvertLen
	if len(buf) < n {
		return 0, ErrShortBuffer
	}
	putLink(buf, s.SrcMAC, s.DstMAC, s.VLANs, proto.EtherTypeIPv6)
	ip := IPv6(buf[l2:])
	putIPv6(ip, s.TOS, 0, NeighborAdvertLen, NDPHopLimit, s.Src, s.Dst)
	ip.SetNextHeader(proto.IPProtoICMPv6)
	m := ICMPv6(buf[l2+IPv6HeaderLen : n])
	m.SetType(ICMPv6NeighborAdvertisement)
	m.SetCode(0)
	m.SetChecksum(0)
	m.SetNDPFlags(flags)
	m.SetNDPTarget(target)
	o := m[NDPNeighborMessageLen:]
	o[0], o[1] = NDPOptTargetLinkAddr, 1
	copy(o[2:8], mac[:])
	m.SetChecksum(m.CalculateChecksum(ip.PseudoHeaderSum(proto.IPProtoICMPv6, NeighborAdvertLen)))
	return n, nil
}

// allNodes is ff02::1, where an advertisement answering a solicitation
// from the unspecified address goes (RFC 4861 section 7.2.4).
var allNodes = netip.AddrFrom16([16]byte{0: 0xff, 1: 0x02, 15: 0x01})

// AnswerNeighborSolicitation builds into buf the Neighbor Advertisement
// that answers the solicitation p describes in frame (Decode returned
// ReasonICMPv6), for a node owning the target address with link address
// mac (RFC 4861 section 7.2.4): Solicited and Override set, sent to the
// solicitor (or to all-nodes if it solicited from ::, with Solicited
// clear), on the same VLANs. Whether the target is an address to answer
// for is the caller's decision. It returns ErrNotInPlace if the message is
// not a valid solicitation: type 135, code 0, hop limit 255, at least 24
// bytes, well-formed options, a unicast target, and no source link-layer
// option when the source is unspecified (section 7.1.1). The checksum is
// the caller's to verify.
func AnswerNeighborSolicitation(buf []byte, frame []byte, p *Packet, mac MAC) (int, error) {
	if p.IPVersion != IPv6Version || p.Protocol != proto.IPProtoICMPv6 ||
		p.Flags&FlagFragment != 0 || p.L4End-p.L4Off < NDPNeighborMessageLen {
		return 0, ErrNotInPlace
	}
	ip := p.IPv6(frame)
	m := p.ICMPv6(frame)
	if m.Type() != ICMPv6NeighborSolicitation || m.Code() != 0 || ip.HopLimit() != NDPHopLimit ||
		!m.NDPOptionsValid() {
		return 0, ErrNotInPlace
	}
	target := m.NDPTarget()
	if target.IsMulticast() {
		return 0, ErrNotInPlace
	}
	src := ip.Source()
	s := IPSpec{SrcMAC: mac, Src: target, Dst: src}
	s.VLANs = p.VLANs[:p.NumVLANs]
	flags := uint8(NDPFlagSolicited | NDPFlagOverride)
	if src.IsUnspecified() {
		if _, ok := m.SourceLinkAddress(); ok {
			return 0, ErrNotInPlace
		}
		flags = NDPFlagOverride
		s.Dst = allNodes
		s.DstMAC = IPv6MulticastMAC(allNodes.As16())
	} else if lla, ok := m.SourceLinkAddress(); ok {
		s.DstMAC = lla
	} else {
		s.DstMAC = Ethernet(frame).Source()
	}
	return BuildNeighborAdvertisement(buf, &s, target, flags, mac)
}
