package frame

import (
	"errors"
	"syscall"

	"github.com/pktengine/pktengine/proto"
)

// Datagram size limits. A UDP datagram over IPv4 carries at most 65,535 -
// 20 - 8 bytes of data; over IPv6 the payload length field bounds
// everything after the fixed header (the Fragment header is not counted in
// the reassembled packet), so 65,535 - 8. IP options and extension headers
// lower both.
const (
	MaxUDPPayloadIPv4 = IPv4MaxUDPPayload     // 65,507
	MaxUDPPayloadIPv6 = 0xffff - UDPHeaderLen // 65,527
	// IPv4MinMTU is the datagram size every IPv4 module must forward
	// unfragmented (RFC 791).
	IPv4MinMTU = 68
	// fragmentUnit: fragment offsets count 8-byte units in both families.
	fragmentUnit = 8
)

// sizeError is an error that errors.Is matches with syscall.EMSGSIZE, the
// errno a kernel socket returns for a datagram it will not send.
type sizeError string

func (e sizeError) Error() string { return string(e) }

// Is reports whether target is EMSGSIZE.
func (e sizeError) Is(target error) bool { return target == syscall.EMSGSIZE }

// Errors of the fragmenting builder. ErrPayloadTooLarge (BuildUDP,
// UDPFragmenter) and ErrDontFragment are EMSGSIZE to errors.Is.
var (
	ErrDontFragment = error(sizeError("frame: datagram exceeds the MTU and DontFragment is set"))
	ErrMTU          = errors.New("frame: MTU below the minimum (68 for IPv4, 1280 for IPv6)")
	ErrFragmentIdx  = errors.New("frame: fragment index out of range")
)

// UDPFragmenter writes the UDP datagram a UDPSpec describes as the IP
// fragments a link of a given MTU needs, one fragment per call, each as a
// complete Ethernet frame: the shape of a transmit ring, where every frame
// goes into its own slot.
//
//	var f frame.UDPFragmenter
//	if err := f.Reset(spec, 1500, ids.Next(src, dst)); err != nil { ... }
//	for i := range f.Fragments() {
//		slot := ring.Next()
//		n, _ := f.Build(slot, i)
//		ring.Commit(n)
//	}
//
// Reset computes the UDP checksum over the whole datagram once; Build only
// copies. A datagram that fits the MTU is one unfragmented frame (no IPv6
// Fragment header: RFC 8021 deprecates atomic fragments). Otherwise:
//
//   - IPv4 (RFC 791): every fragment repeats the header with the spec's ID,
//     MF on all but the last, the offset in 8-byte units; options whose
//     copy flag is clear travel in the first fragment only and are
//     overwritten with NOPs in the others, as Linux's ip_options_fragment
//     does, so every fragment has the same header length. DontFragment
//     makes Reset fail with ErrDontFragment instead (the kernel's
//     EMSGSIZE under IP_PMTUDISC_DO).
//   - IPv6 (RFC 8200 section 4.5): the spec's extension headers form the
//     unfragmentable part and are repeated, followed by a Fragment header
//     with the identification given to Reset (see FragmentIDs).
//
// Each fragment but the last carries the largest multiple of 8 bytes that
// fits: a 65,507-byte datagram over a 1500-byte MTU is 45 fragments of
// 1480 bytes and a last one of 555. Nothing allocates. The spec and its
// payload must stay unchanged until the last Build.
type UDPFragmenter struct {
	s      *UDPSpec
	family int
	l2     int // link header with tags
	l3     int // IP header of each fragment, Fragment header included
	l4     int // the whole UDP datagram, header included
	per    int // data bytes per fragment, all but the last
	n      int
	id     uint32
	udp    [UDPHeaderLen]byte // the datagram's UDP header with its checksum
}

// Reset prepares f for the datagram s over a link whose MTU (the largest
// IP packet, as `ip link` shows it) is mtu, with IPv6 fragment
// identification id (ignored for IPv4, which uses s.ID). It fails with
// ErrPayloadTooLarge above the size limits (65,507 bytes of IPv4 UDP data
// without options, 65,527 over IPv6 without extension headers),
// ErrDontFragment, ErrMTU, or what BuildUDP would return for s.
func (f *UDPFragmenter) Reset(s *UDPSpec, mtu int, id uint32) error {
	*f = UDPFragmenter{}
	l2, l3, l4, family, err := udpLayout(s)
	if err != nil {
		return err
	}
	if family == 6 {
		for _, h := range s.ExtHeaders {
			if h.Type == proto.IPProtoFragment {
				return ErrExtHeaders
			}
		}
	}
	if family == 4 && mtu < IPv4MinMTU || family == 6 && mtu < IPv6MinMTU {
		return ErrMTU
	}
	n, per := 1, 0
	if l3+l4 > mtu {
		if family == 4 && s.DontFragment {
			return ErrDontFragment
		}
		if family == 6 {
			l3 += IPv6FragmentHeaderLen
		}
		per = (mtu - l3) &^ (fragmentUnit - 1)
		n = (l4 + per - 1) / per
	}
	f.s, f.family, f.l2, f.l3, f.l4, f.id, f.n, f.per = s, family, l2, l3, l4, id, n, per

	u := UDP(f.udp[:])
	u.SetSourcePort(s.Src.Port())
	u.SetDestinationPort(s.Dst.Port())
	u.SetLength(uint16(l4))
	if family == 4 && s.NoChecksum {
		return nil
	}
	var pseudo uint16
	if family == 4 {
		a, b := s.Src.Addr().As4(), s.Dst.Addr().As4()
		pseudo = proto.PseudoHeaderSum(a[:], b[:], proto.IPProtoUDP, uint32(l4))
	} else {
		a, b := s.Src.Addr().As16(), s.Dst.Addr().As16()
		pseudo = proto.PseudoHeaderSum(a[:], b[:], proto.IPProtoUDP, uint32(l4))
	}
	u.SetChecksum(proto.FinishUDP(proto.Checksum(s.Payload, proto.Checksum(f.udp[:], pseudo))))
	return nil
}

// Fragments returns how many frames the datagram takes: 1 if it fits the
// MTU unfragmented.
func (f *UDPFragmenter) Fragments() int { return f.n }

// Fragmented reports whether the datagram is sent as fragments.
func (f *UDPFragmenter) Fragmented() bool { return f.per != 0 }

// fragmentData returns the byte range of the UDP datagram fragment i
// carries.
func (f *UDPFragmenter) fragmentData(i int) (lo, hi int) {
	if f.per == 0 {
		return 0, f.l4
	}
	lo = i * f.per
	return lo, min(lo+f.per, f.l4)
}

// FrameLen returns the length of the frame Build writes for fragment i, or
// -1 if i is out of range.
func (f *UDPFragmenter) FrameLen(i int) int {
	if i < 0 || i >= f.n {
		return -1
	}
	lo, hi := f.fragmentData(i)
	return f.l2 + f.l3 + hi - lo
}

// Build writes fragment i (0 ≤ i < Fragments()) into buf as a complete
// Ethernet frame and returns its length. It does not allocate.
func (f *UDPFragmenter) Build(buf []byte, i int) (int, error) {
	if i < 0 || i >= f.n || f.s == nil {
		return 0, ErrFragmentIdx
	}
	s := f.s
	lo, hi := f.fragmentData(i)
	n := f.l2 + f.l3 + hi - lo
	if len(buf) < n {
		return 0, ErrShortBuffer
	}
	b := buf[:n]
	putFragmentHeaders(b, s, f.family, f.l2, f.l3, lo, hi, hi < f.l4, f.per != 0, f.id)
	copyDatagram(b[f.l2+f.l3:], f.udp[:], s.Payload, lo, hi)
	return n, nil
}

// putFragmentHeaders writes the Ethernet and IP headers of the fragment
// of s that holds bytes [lo, hi) of its IP payload: l2 and l3 are their
// lengths (l3 with the Fragment header if fragmented), more sets MF. An
// IPv6 datagram carries a Fragment header with id only if fragmented; a
// later IPv4 fragment carries NOPs for the options not to be copied.
func putFragmentHeaders(b []byte, s *UDPSpec, family, l2, l3, lo, hi int, more, fragmented bool, id uint32) {
	if family == 4 {
		putLink(b, s.SrcMAC, s.DstMAC, s.VLANs, proto.EtherTypeIPv4)
		var flags uint8
		if s.DontFragment {
			flags = IPv4FlagDontFragment
		}
		if more {
			flags |= IPv4FlagMoreFragments
		}
		ip := b[l2:]
		putIPv4(ip, s.TOS, uint16(l3+hi-lo), s.ID, flags, uint16(lo), s.TTL,
			proto.IPProtoUDP, s.Src.Addr(), s.Dst.Addr(), s.Options)
		if lo > 0 && len(s.Options) > 0 {
			h := IPv4(ip)
			nopUncopiedOptions(ip[IPv4MinHeaderLen:l3])
			h.SetChecksum(0)
			h.SetChecksum(h.CalculateChecksum())
		}
		return
	}
	putLink(b, s.SrcMAC, s.DstMAC, s.VLANs, proto.EtherTypeIPv6)
	putIPv6(b[l2:], s.TOS, s.FlowLabel, uint16(l3-IPv6HeaderLen+hi-lo), s.TTL, s.Src.Addr(), s.Dst.Addr())
	if !fragmented {
		putExtHeaders(b[l2:l2+l3], s.ExtHeaders, proto.IPProtoUDP)
		return
	}
	fh := l2 + l3 - IPv6FragmentHeaderLen
	putExtHeaders(b[l2:fh], s.ExtHeaders, proto.IPProtoFragment)
	IPv6Fragment(b[fh:]).Set(proto.IPProtoUDP, uint16(lo), more, id)
}

// copyDatagram copies bytes [lo, hi) of hdr ++ payload into dst.
func copyDatagram(dst, hdr, payload []byte, lo, hi int) {
	if lo < len(hdr) {
		c := copy(dst, hdr[lo:min(hi, len(hdr))])
		dst = dst[c:]
		lo = len(hdr)
	}
	if hi > lo {
		copy(dst, payload[lo-len(hdr):hi-len(hdr)])
	}
}

// nopUncopiedOptions overwrites with NOPs every option of an IPv4 options
// area whose copied flag (the type's high bit, RFC 791) is clear: what
// later fragments carry in place of the first fragment's options. An End
// of Option List and what follows it stay as they are.
func nopUncopiedOptions(opts []byte) {
	for len(opts) > 0 {
		t := opts[0]
		if t == IPv4OptionEOL {
			return
		}
		if t == IPv4OptionNOP {
			opts = opts[1:]
			continue
		}
		if len(opts) < 2 || int(opts[1]) < 2 || int(opts[1]) > len(opts) {
			return
		}
		n := int(opts[1])
		if t&0x80 == 0 {
			for i := range n {
				opts[i] = IPv4OptionNOP
			}
		}
		opts = opts[n:]
	}
}

// FrameFragmenter writes an IP datagram that is already a complete frame
// (link header, IPv4 or IPv6 header, payload: a reassembly.Datagram's
// Frame after ReplyInPlace, a large ICMP echo reply, ...) as the fragments
// a link of a given MTU needs, one fragment per call, like UDPFragmenter
// but copying the datagram as it is: no checksum is recomputed but the
// IPv4 header's.
//
// IPv4: every fragment repeats the header with the identification given
// to Reset (the datagram's own is left alone: a reply would otherwise
// reuse the peer's), MF and the offset; options whose copy flag is clear
// are NOPs after the first fragment, as Linux's ip_options_fragment does.
// A datagram with DF set fails with ErrDontFragment.
//
// IPv6: the unfragmentable part (RFC 8200 section 4.5: the headers up to
// and including the last Routing header, else the Hop-by-Hop Options
// header, else none) is repeated, followed by a Fragment header with the
// identification given to Reset.
//
// A datagram that fits the MTU is one frame, unchanged (no atomic
// fragment). The frame must stay unchanged until the last Build. Nothing
// allocates.
type FrameFragmenter struct {
	frame  []byte
	family int
	l3     int // start of the IP header
	unfrag int // end of the unfragmentable part (IPv4: of the header)
	end    int // end of the datagram
	nhOff  int // IPv6: offset from the IP header of the Next Header to point at the Fragment header
	next   uint8
	hdr    int // IP header length in each fragment, Fragment header included
	per    int
	n      int
	id     uint32
}

// Reset prepares f for the datagram in frame, which p describes (Decode
// filled it; a fragment, an ARP packet or a non-IP frame cannot be
// fragmented: ErrNotInPlace), for mtu and identification id (16 bits of it
// for IPv4).
func (f *FrameFragmenter) Reset(frame []byte, p *Packet, mtu int, id uint32) error {
	*f = FrameFragmenter{}
	if p.IsFragment() || p.IPVersion != IPv4Version && p.IPVersion != IPv6Version || int(p.End) > len(frame) {
		return ErrNotInPlace
	}
	l3, end := int(p.L3Off), int(p.End)
	if p.IPVersion == IPv4Version && mtu < IPv4MinMTU || p.IPVersion == IPv6Version && mtu < IPv6MinMTU {
		return ErrMTU
	}
	g := FrameFragmenter{frame: frame, l3: l3, end: end, id: id, n: 1}
	if end-l3 <= mtu {
		g.family = int(p.IPVersion)
		*f = g
		return nil
	}
	if p.IPVersion == IPv4Version {
		ip := IPv4(frame[l3:end])
		if ip.DontFragment() {
			return ErrDontFragment
		}
		g.family, g.unfrag, g.hdr = 4, l3+ip.HeaderLength(), ip.HeaderLength()
	} else {
		ip := IPv6(frame[l3:end])
		// The unfragmentable part ends after the last Routing header,
		// else after a Hop-by-Hop header. Decode has walked the chain.
		next, off, nh := ip.NextHeader(), IPv6HeaderLen, ipv6NextHeader
		unfrag, unfragNH := IPv6HeaderLen, ipv6NextHeader
		for i := 0; proto.IsIPv6ExtensionHeader(next) && i < MaxIPv6ExtHeaders; i++ {
			if next == proto.IPProtoFragment || off+2 > len(ip) {
				return ErrNotInPlace
			}
			hl := (int(ip[off+1]) + 1) << 3
			if next == proto.IPProtoAH {
				hl = (int(ip[off+1]) + 2) << 2
			}
			cur := next
			next, nh, off = ip[off], off, off+hl
			if cur == proto.IPProtoRouting || cur == proto.IPProtoHopByHop && i == 0 {
				unfrag, unfragNH = off, nh
			}
		}
		g.family, g.unfrag, g.nhOff, g.next = 6, l3+unfrag, unfragNH, ip[unfragNH]
		g.hdr = unfrag + IPv6FragmentHeaderLen
	}
	g.per = (mtu - g.hdr) &^ (fragmentUnit - 1)
	if g.per < fragmentUnit {
		return ErrMTU
	}
	g.n = (end - g.unfrag + g.per - 1) / g.per
	*f = g
	return nil
}

// Fragments returns how many frames the datagram takes.
func (f *FrameFragmenter) Fragments() int { return f.n }

// FrameLen returns the length of fragment i's frame, or -1.
func (f *FrameFragmenter) FrameLen(i int) int {
	if i < 0 || i >= f.n {
		return -1
	}
	if f.per == 0 {
		return f.end
	}
	lo := i * f.per
	return f.l3 + f.hdr + min(f.per, f.end-f.unfrag-lo)
}

// Build writes fragment i into buf and returns its length.
func (f *FrameFragmenter) Build(buf []byte, i int) (int, error) {
	if i < 0 || i >= f.n || f.frame == nil {
		return 0, ErrFragmentIdx
	}
	n := f.FrameLen(i)
	if len(buf) < n {
		return 0, ErrShortBuffer
	}
	if f.per == 0 {
		return copy(buf, f.frame[:f.end]), nil
	}
	lo := i * f.per
	data := f.frame[f.unfrag+lo : f.unfrag+lo+n-f.l3-f.hdr]
	more := f.unfrag+lo+len(data) < f.end
	b := buf[:n]
	if f.family == 4 {
		copy(b, f.frame[:f.unfrag])
		ip := IPv4(b[f.l3:])
		if i > 0 {
			nopUncopiedOptions(ip[IPv4MinHeaderLen:f.hdr])
		}
		ip.SetTotalLength(uint16(f.hdr + len(data)))
		ip.SetID(uint16(f.id))
		var flags uint8
		if more {
			flags = IPv4FlagMoreFragments
		}
		ip.SetFlagsFragmentOffset(flags, uint16(lo))
		ip.SetChecksum(0)
		ip.SetChecksum(ip.CalculateChecksum())
		copy(b[f.l3+f.hdr:], data)
		return n, nil
	}
	copy(b, f.frame[:f.unfrag])
	ip := IPv6(b[f.l3:])
	ip.SetPayloadLength(uint16(f.hdr - IPv6HeaderLen + len(data)))
	ip[f.nhOff] = proto.IPProtoFragment
	IPv6Fragment(b[f.unfrag:]).Set(f.next, uint16(lo), more, f.id)
	copy(b[f.l3+f.hdr:], data)
	return n, nil
}
