package frame

import (
	"encoding/binary"
	"errors"
	"net/netip"

	"github.com/pktengine/pktengine/proto"
)

// Errors from the builders. They are plain values so that a builder on a
// hot path returns them without allocating.
var (
	ErrShortBuffer     = errors.New("frame: buffer too small for the frame")
	ErrAddressFamily   = errors.New("frame: source and destination must both be IPv4 or both IPv6")
	ErrPayloadTooLarge = error(sizeError("frame: payload too large for one IP datagram"))
	ErrTooManyVLANs    = errors.New("frame: more than two VLAN tags")
	ErrIPv4Options     = errors.New("frame: IPv4 options must be a multiple of 4 bytes, at most 40")
	ErrExtHeaders      = errors.New("frame: invalid IPv6 extension header")
	ErrFragment        = errors.New("frame: fragment offset or length out of range or not a multiple of 8")
	ErrNotInPlace      = errors.New("frame: packet cannot be answered in place")
	ErrNotUnicast      = errors.New("frame: request to or from a multicast or broadcast address; no in-place reply")
)

// DefaultTTL is the TTL or hop limit the builders use when a spec leaves it
// 0 (RFC 1122 forbids sending 0); 64 is what Linux uses.
const DefaultTTL = 64

// UDPSpec describes a UDP datagram in an Ethernet frame for BuildUDP. The
// address family of Src and Dst (both Is4, or both Is6) picks IPv4 or IPv6;
// an IPv4-mapped IPv6 address is IPv6 here.
type UDPSpec struct {
	SrcMAC, DstMAC MAC
	// VLANs are the tags to insert, outermost first. A zero TPID means
	// 802.1ad (0x88a8) for the outer of two tags and 802.1Q (0x8100)
	// otherwise.
	VLANs    []VLANTag
	Src, Dst netip.AddrPort
	// TTL is the IPv4 TTL or IPv6 hop limit; 0 means DefaultTTL.
	TTL uint8
	// ID is the IPv4 Identification.
	ID           uint16
	DontFragment bool
	// TOS is the IPv4 TOS or IPv6 Traffic Class octet.
	TOS uint8
	// FlowLabel is the IPv6 flow label (20 bits).
	FlowLabel uint32
	// Options are IPv4 options, already padded to a multiple of 4 bytes.
	Options []byte
	// ExtHeaders are IPv6 extension headers to put before UDP, in order.
	ExtHeaders []IPv6ExtHeader
	// NoChecksum sends an IPv4 UDP checksum of 0 ("none"). Ignored for
	// IPv6, where the checksum is mandatory.
	NoChecksum bool
	Payload    []byte
}

// IPv6ExtHeader is one extension header for a builder to write. Data is
// the header after its Next Header and length bytes; the builder writes
// those two bytes and pads Data with zeros to the header's unit (8 bytes,
// or 4 for AH). Zero bytes are Pad1 options, so the padding is valid in
// Hop-by-Hop and Destination Options headers. A Fragment header's Data is
// its 6 bytes after Next Header and Reserved.
type IPv6ExtHeader struct {
	Type uint8 // proto.IPProtoHopByHop, IPProtoRouting, IPProtoDstOpts, IPProtoAH, IPProtoFragment, ...
	Data []byte
}

// len returns the header's size on the wire.
func (h IPv6ExtHeader) len() int {
	switch h.Type {
	case proto.IPProtoFragment:
		return IPv6FragmentHeaderLen
	case proto.IPProtoAH:
		n := (2 + len(h.Data) + 3) &^ 3
		return max(n, 8)
	}
	return (2 + len(h.Data) + 7) &^ 7
}

// ipFamily returns 4 or 6 for a pair of addresses of one family, else 0.
func ipFamily(src, dst netip.Addr) int {
	switch {
	case src.Is4() && dst.Is4():
		return 4
	case src.Is6() && dst.Is6():
		return 6
	}
	return 0
}

// linkLen returns the Ethernet header size with n tags.
func linkLen(n int) int { return EthernetHeaderLen + n*VLANTagLen }

// extLen returns the total size of extension headers, or -1 if one is
// invalid.
func extLen(hs []IPv6ExtHeader) int {
	n := 0
	for i, h := range hs {
		switch {
		case !proto.IsIPv6ExtensionHeader(h.Type):
			return -1
		case h.Type == proto.IPProtoHopByHop && i != 0:
			return -1
		case h.Type == proto.IPProtoFragment && len(h.Data) != 6:
			return -1
		}
		l := h.len()
		if h.Type != proto.IPProtoFragment && h.Type != proto.IPProtoAH && l > 256*8 ||
			h.Type == proto.IPProtoAH && l > 257*4 {
			return -1
		}
		n += l
	}
	return n
}

// udpLayout computes the sizes of a UDP frame: link header, IP header
// (with options or extension headers) and UDP datagram.
func udpLayout(s *UDPSpec) (l2, l3, l4, family int, err error) {
	family = ipFamily(s.Src.Addr(), s.Dst.Addr())
	if family == 0 {
		return 0, 0, 0, 0, ErrAddressFamily
	}
	if len(s.VLANs) > MaxVLANTags {
		return 0, 0, 0, 0, ErrTooManyVLANs
	}
	l2 = linkLen(len(s.VLANs))
	l4 = UDPHeaderLen + len(s.Payload)
	if family == 4 {
		if len(s.Options)%4 != 0 || len(s.Options) > IPv4MaxOptionsLen {
			return 0, 0, 0, 0, ErrIPv4Options
		}
		l3 = IPv4MinHeaderLen + len(s.Options)
		if l3+l4 > IPv4MaxTotalLen {
			return 0, 0, 0, 0, ErrPayloadTooLarge
		}
		return l2, l3, l4, family, nil
	}
	e := extLen(s.ExtHeaders)
	if e < 0 {
		return 0, 0, 0, 0, ErrExtHeaders
	}
	l3 = IPv6HeaderLen + e
	if e+l4 > 0xffff {
		return 0, 0, 0, 0, ErrPayloadTooLarge
	}
	return l2, l3, l4, family, nil
}

// UDPFrameLen returns the length of the frame BuildUDP would write for s,
// or -1 if s is invalid.
func UDPFrameLen(s *UDPSpec) int {
	l2, l3, l4, _, err := udpLayout(s)
	if err != nil {
		return -1
	}
	return l2 + l3 + l4
}

// BuildUDP writes s as a complete Ethernet frame into buf and returns its
// length: Ethernet, VLAN tags, IPv4 (with header checksum) or IPv6 (with
// extension headers), UDP with the full checksum (a computed 0 is sent as
// 0xFFFF). The frame is not padded to EthernetMinFrameLen (see
// PadEthernet). It does not allocate.
//
// s.Payload may already sit where BuildUDP puts it, at
// buf[UDPFrameLen(s)-len(s.Payload):], so a generator can fill its data in
// place first; it must not overlap the headers otherwise.
func BuildUDP(buf []byte, s *UDPSpec) (n int, err error) {
	l2, l3, l4, family, err := udpLayout(s)
	if err != nil {
		return 0, err
	}
	n = l2 + l3 + l4
	if len(buf) < n {
		return 0, ErrShortBuffer
	}
	b := buf[:n]
	if family == 4 {
		putLink(b, s.SrcMAC, s.DstMAC, s.VLANs, proto.EtherTypeIPv4)
		var flags uint8
		if s.DontFragment {
			flags = IPv4FlagDontFragment
		}
		putIPv4(b[l2:], s.TOS, uint16(l3+l4), s.ID, flags, 0, s.TTL, proto.IPProtoUDP,
			s.Src.Addr(), s.Dst.Addr(), s.Options)
	} else {
		putLink(b, s.SrcMAC, s.DstMAC, s.VLANs, proto.EtherTypeIPv6)
		putIPv6(b[l2:], s.TOS, s.FlowLabel, uint16(l3-IPv6HeaderLen+l4), s.TTL,
			s.Src.Addr(), s.Dst.Addr())
		putExtHeaders(b[l2:l2+l3], s.ExtHeaders, proto.IPProtoUDP)
	}
	u := UDP(b[l2+l3:])
	u.SetSourcePort(s.Src.Port())
	u.SetDestinationPort(s.Dst.Port())
	u.SetLength(uint16(l4))
	u.SetChecksum(0)
	copy(u[UDPHeaderLen:], s.Payload)
	if family == 4 && s.NoChecksum {
		return n, nil
	}
	u.SetChecksum(proto.FinishUDP(proto.Checksum(u, udpPseudo(b[l2:], family, uint32(l4)))))
	return n, nil
}

// udpPseudo returns the UDP pseudo-header sum from the addresses of the IP
// header at the start of ip.
func udpPseudo(ip []byte, family int, length uint32) uint16 {
	if family == 4 {
		return proto.PseudoHeaderSum(ip[ipv4Src:ipv4Src+4], ip[ipv4Dst:ipv4Dst+4], proto.IPProtoUDP, length)
	}
	return proto.PseudoHeaderSum(ip[ipv6Src:ipv6Src+16], ip[ipv6Dst:ipv6Dst+16], proto.IPProtoUDP, length)
}

// putLink writes the Ethernet header and tags and returns its length.
func putLink(b []byte, src, dst MAC, vlans []VLANTag, etherType uint16) int {
	e := Ethernet(b)
	e.SetDestination(dst)
	e.SetSource(src)
	off := ethType
	for i, t := range vlans {
		if t.TPID == 0 {
			t.TPID = proto.EtherTypeVLAN
			if len(vlans) == 2 && i == 0 {
				t.TPID = proto.EtherTypeQinQ
			}
		}
		binary.BigEndian.PutUint16(b[off:], t.TPID)
		binary.BigEndian.PutUint16(b[off+2:], t.TCI)
		off += VLANTagLen
	}
	binary.BigEndian.PutUint16(b[off:], etherType)
	return off + 2
}

// putIPv4 writes an IPv4 header with options and its checksum.
func putIPv4(b []byte, tos uint8, total, id uint16, flags uint8, fragOff uint16, ttl, protocol uint8, src, dst netip.Addr, opts []byte) {
	if ttl == 0 {
		ttl = DefaultTTL
	}
	h := IPv4(b)
	h.SetHeaderLength(IPv4MinHeaderLen + len(opts))
	h.SetTOS(tos)
	h.SetTotalLength(total)
	h.SetID(id)
	h.SetFlagsFragmentOffset(flags, fragOff)
	h.SetTTL(ttl)
	h.SetProtocol(protocol)
	h.SetChecksum(0)
	h.SetSource(src)
	h.SetDestination(dst)
	copy(b[IPv4MinHeaderLen:], opts)
	h.SetChecksum(h.CalculateChecksum())
}

// putIPv6 writes an IPv6 fixed header; the next header field is left for
// putExtHeaders.
func putIPv6(b []byte, tc uint8, flow uint32, payloadLen uint16, hop uint8, src, dst netip.Addr) {
	if hop == 0 {
		hop = DefaultTTL
	}
	h := IPv6(b)
	h.SetVersionTrafficClassFlowLabel(tc, flow)
	h.SetPayloadLength(payloadLen)
	h.SetHopLimit(hop)
	h.SetSource(src)
	h.SetDestination(dst)
}

// putExtHeaders writes the Next Header chain of the IPv6 packet at the
// start of b: the fixed header's field, then each extension header, the
// last pointing at upper.
func putExtHeaders(b []byte, hs []IPv6ExtHeader, upper uint8) {
	nextField := ipv6NextHeader
	off := IPv6HeaderLen
	for _, h := range hs {
		b[nextField] = h.Type
		l := h.len()
		x := b[off : off+l]
		clear(x)
		switch h.Type {
		case proto.IPProtoFragment:
			x[1] = 0
		case proto.IPProtoAH:
			x[1] = uint8(l/4 - 2)
		default:
			x[1] = uint8(l/8 - 1)
		}
		copy(x[2:], h.Data)
		nextField = off
		off += l
	}
	b[nextField] = upper
}

// PadEthernet zero-fills buf[n:EthernetMinFrameLen] and returns the padded
// length, for links that need minimum-size frames (veth does not; a NIC
// pads by itself). It returns n if the frame is long enough or buf too
// short.
func PadEthernet(buf []byte, n int) int {
	if n >= EthernetMinFrameLen || len(buf) < EthernetMinFrameLen {
		return n
	}
	clear(buf[n:EthernetMinFrameLen])
	return EthernetMinFrameLen
}

// Fragment selects one fragment of a UDP datagram for BuildUDPFragment.
type Fragment struct {
	// Offset and Length select bytes of the IP payload (the UDP datagram,
	// header included); Offset must be a multiple of 8, and so must Length
	// unless the fragment is the last.
	Offset, Length int
	// ID is the IPv6 Fragment header's Identification; IPv4 fragments use
	// UDPSpec.ID.
	ID uint32
}

// BuildUDPFragment writes one fragment of the datagram s describes (with
// its UDP checksum computed over the whole datagram): for IPv4 a header
// with MF and the offset, for IPv6 a Fragment header after s.ExtHeaders.
// MF is set unless the fragment reaches the end of the datagram. It is for
// tests and load generation; the package does not reassemble.
func BuildUDPFragment(buf []byte, s *UDPSpec, f Fragment) (n int, err error) {
	l2, l3, l4, family, err := udpLayout(s)
	if err != nil {
		return 0, err
	}
	if f.Offset < 0 || f.Length <= 0 || f.Offset%8 != 0 || f.Offset+f.Length > l4 ||
		f.Offset+f.Length < l4 && f.Length%8 != 0 || f.Offset > 0xfff8 {
		return 0, ErrFragment
	}
	more := f.Offset+f.Length < l4
	if family == 6 {
		l3 += IPv6FragmentHeaderLen
	}
	n = l2 + l3 + f.Length
	if len(buf) < n {
		return 0, ErrShortBuffer
	}
	b := buf[:n]
	lo, hi := f.Offset, f.Offset+f.Length
	putFragmentHeaders(b, s, family, l2, l3, lo, hi, more, true, f.ID)
	// The UDP header of the whole datagram, with its checksum, computed
	// with the addresses just written.
	var hdr [UDPHeaderLen]byte
	u := UDP(hdr[:])
	u.SetSourcePort(s.Src.Port())
	u.SetDestinationPort(s.Dst.Port())
	u.SetLength(uint16(l4))
	if family == 6 || !s.NoChecksum {
		pseudo := udpPseudo(b[l2:], family, uint32(l4))
		u.SetChecksum(proto.FinishUDP(proto.Checksum(s.Payload, proto.Checksum(hdr[:], pseudo))))
	}
	copyDatagram(b[l2+l3:], hdr[:], s.Payload, lo, hi)
	return n, nil
}
