package frame

import (
	"encoding/binary"
	"net/netip"

	"github.com/pktengine/pktengine/proto"
)

// Packet is what Decode learned about one frame: offsets into the frame
// and a few flags. It holds no reference to the frame, so it is small,
// caller-owned and reusable; the accessors take the frame again and return
// views of it. Offsets count bytes from the start of the frame.
//
//	+------------------------+-------------------------+------------+-----------+--------------------+---------+
//	| Ethernet [VLAN [VLAN]] | IP header [options/ext] | UDP header | data      | rest of IP payload | trailer |
//	+------------------------+-------------------------+------------+-----------+--------------------+---------+
//	0                        L3Off                     L4Off        PayloadOff  L4End                End       len(frame)
//
// End is where the IP datagram ends by its own length field, which can be
// short of the frame: Ethernet pads frames to 60 bytes, so a 32-byte IP
// packet arrives in a 60-byte frame with a 14-byte trailer (FlagPadded).
// L4End is where the upper-layer data ends: for UDP, L4Off + the UDP
// length. That may be less than the IP payload: the UDP length bounds the
// data and the rest of the IP payload is ignored, as Linux does. For
// other protocols L4End is End. For ARP, L4Off, PayloadOff and L4End are
// End; for an unknown EtherType, L4Off and PayloadOff are L3Off and L4End
// and End are len(frame).
type Packet struct {
	L3Off      uint32 // IP or ARP header
	L4Off      uint32 // upper-layer header, after IPv4 options or IPv6 extension headers
	PayloadOff uint32 // UDP data (L4Off+8); L4Off for other protocols
	L4End      uint32 // end of the upper-layer data present in the frame
	End        uint32 // end of the IP datagram (or ARP packet)

	EtherType uint16               // EtherType after any VLAN tags
	VLANs     [MaxVLANTags]VLANTag // outermost first; NumVLANs are valid
	NumVLANs  uint8                // 0, 1 or 2
	IPVersion uint8                // 4, 6, or 0 if not IP
	Protocol  uint8                // upper-layer protocol (after IPv6 extension headers)
	Flags     Flags                // see Flag*
}

// Flags describe a decoded packet beyond its offsets.
type Flags uint8

// Packet flags.
const (
	// FlagUDP: a UDP header was found and its length checked; ports can
	// be read. Set for ReasonOK and ReasonUDPFragment.
	FlagUDP Flags = 1 << iota
	// FlagFragment: the IP datagram is a fragment (IPv4 MF set or offset
	// nonzero; IPv6 fragment header other than an atomic fragment).
	FlagFragment
	// FlagMoreFragments: MF / M is set.
	FlagMoreFragments
	// FlagUDPIncomplete: a first fragment whose UDP length is more than
	// the fragment holds; L4End stops at what is present.
	FlagUDPIncomplete
	// FlagIPv4Options: the IPv4 header has options (IHL > 5).
	FlagIPv4Options
	// FlagIPv6ExtHeaders: the IPv6 packet has extension headers.
	FlagIPv6ExtHeaders
	// FlagIPv6Routing: among them a Routing header.
	FlagIPv6Routing
	// FlagPadded: the frame extends past End (Ethernet padding or a
	// trailer).
	FlagPadded
)

// Decode parses frame, an Ethernet frame without FCS, into p and returns
// its verdict. It reads every header once, bounds every length by the
// bytes present, never allocates, and does not verify checksums (see
// VerifyChecksums). On ReasonOK p describes a complete UDP datagram. For the
// other classification reasons p is filled as far as parsing went; for a
// malformed frame the fields describe the layers that were good.
//
// What it checks, in order: Ethernet header; up to two VLAN tags (802.1ad
// or 802.1Q TPIDs, in any order); then for IPv4 the version, IHL >= 5,
// header within the frame, total length >= header length and within the
// frame; for IPv6 the version, payload length within the frame and the
// extension-header chain (see IPv6.WalkExtensionHeaders); a non-first
// fragment stops there. For UDP: 8 header bytes present, UDP length >= 8
// and within the IP payload (a first fragment may claim more than it
// holds: FlagUDPIncomplete). ARP must be Ethernet/IPv4 and 28 bytes; ICMP
// and ICMPv6 at least 8 bytes.
func (p *Packet) Decode(frame []byte) Reason {
	*p = Packet{}
	if len(frame) < EthernetHeaderLen {
		return ReasonTruncatedEthernet
	}
	et := binary.BigEndian.Uint16(frame[ethType:])
	off := EthernetHeaderLen
	if isTPID(et) {
		if len(frame) < EthernetHeaderLen+VLANTagLen {
			return ReasonTruncatedVLAN
		}
		p.VLANs[0] = VLANTag{TPID: et, TCI: binary.BigEndian.Uint16(frame[14:])}
		p.NumVLANs = 1
		et = binary.BigEndian.Uint16(frame[16:])
		off += VLANTagLen
		if isTPID(et) {
			if len(frame) < EthernetHeaderLen+2*VLANTagLen {
				return ReasonTruncatedVLAN
			}
			p.VLANs[1] = VLANTag{TPID: et, TCI: binary.BigEndian.Uint16(frame[18:])}
			p.NumVLANs = 2
			et = binary.BigEndian.Uint16(frame[20:])
			off += VLANTagLen
			if isTPID(et) {
				return ReasonTooManyVLANTags
			}
		}
	}
	p.EtherType = et
	p.L3Off = uint32(off)
	switch et {
	case proto.EtherTypeIPv4:
		return p.decodeIPv4(frame, off)
	case proto.EtherTypeIPv6:
		return p.decodeIPv6(frame, off)
	case proto.EtherTypeARP:
		return p.decodeARP(frame, off)
	}
	// Not a protocol this package parses: its payload is everything after
	// the link header.
	n := uint32(len(frame))
	p.L4Off, p.PayloadOff, p.L4End, p.End = uint32(off), uint32(off), n, n
	return ReasonUnknownEtherType
}

func isTPID(et uint16) bool { return et == proto.EtherTypeVLAN || et == proto.EtherTypeQinQ }

func (p *Packet) decodeIPv4(frame []byte, off int) Reason {
	b := frame[off:]
	if len(b) < IPv4MinHeaderLen {
		return ReasonIPv4Truncated
	}
	if b[0]>>4 != IPv4Version {
		return ReasonIPv4BadVersion
	}
	hl := int(b[0]&0xf) << 2
	if hl < IPv4MinHeaderLen {
		return ReasonIPv4HeaderTooShort
	}
	if hl > len(b) {
		return ReasonIPv4HeaderPastEnd
	}
	tl := int(binary.BigEndian.Uint16(b[ipv4TotalLen:]))
	if tl < hl {
		return ReasonIPv4TotalLengthTooShort
	}
	if tl > len(b) {
		return ReasonIPv4TotalLengthPastEnd
	}
	if hl > IPv4MinHeaderLen && !ipv4OptionsValid(b[IPv4MinHeaderLen:hl]) {
		return ReasonIPv4BadOptions
	}
	p.IPVersion = IPv4Version
	p.Protocol = b[ipv4Protocol]
	end := off + tl
	l4 := off + hl
	p.End = uint32(end)
	p.L4Off, p.PayloadOff, p.L4End = uint32(l4), uint32(l4), uint32(l4)
	var f Flags
	if hl > IPv4MinHeaderLen {
		f |= FlagIPv4Options
	}
	if end < len(frame) {
		f |= FlagPadded
	}
	if ff := binary.BigEndian.Uint16(b[ipv4FlagsFrag:]); ff&0x3fff != 0 {
		f |= FlagFragment
		if ff&0x2000 != 0 {
			f |= FlagMoreFragments
		}
		if ff&0x1fff != 0 {
			p.Flags = f
			p.L4End = uint32(end)
			return ReasonNonFirstFragment
		}
	}
	p.Flags = f
	return p.decodeL4(frame, l4, end)
}

// ipv4OptionsValid reports whether opts splits into well-formed options up
// to its end or an End of Option List.
func ipv4OptionsValid(opts []byte) bool {
	for len(opts) > 0 {
		_, _, rest, ok := NextIPv4Option(opts)
		if !ok {
			return opts[0] == IPv4OptionEOL
		}
		opts = rest
	}
	return true
}

func (p *Packet) decodeIPv6(frame []byte, off int) Reason {
	b := frame[off:]
	if len(b) < IPv6HeaderLen {
		return ReasonIPv6Truncated
	}
	if b[0]>>4 != IPv6Version {
		return ReasonIPv6BadVersion
	}
	tl := IPv6HeaderLen + int(binary.BigEndian.Uint16(b[ipv6PayloadLen:]))
	if tl > len(b) {
		return ReasonIPv6PayloadPastEnd
	}
	p.IPVersion = IPv6Version
	end := off + tl
	p.End = uint32(end)
	var f Flags
	if end < len(frame) {
		f |= FlagPadded
	}
	next := b[ipv6NextHeader]
	l4 := off + IPv6HeaderLen
	if proto.IsIPv6ExtensionHeader(next) {
		var c IPv6Chain
		r := walkIPv6(b[:tl], next, &c)
		next = c.Protocol
		l4 = off + c.Offset
		f |= FlagIPv6ExtHeaders
		if c.HasRouting {
			f |= FlagIPv6Routing
		}
		if c.HasFragment && (c.MoreFragments || c.FragmentOffset != 0) {
			f |= FlagFragment
			if c.MoreFragments {
				f |= FlagMoreFragments
			}
		}
		if r != ReasonOK {
			p.Flags = f
			if r == ReasonNonFirstFragment {
				// Point past the chain at the fragment's data, which is
				// the middle of some upper-layer packet.
				p.Protocol = next
				p.L4Off, p.PayloadOff, p.L4End = uint32(l4), uint32(l4), uint32(end)
			}
			return r
		}
	}
	p.Flags = f
	p.Protocol = next
	p.L4Off, p.PayloadOff, p.L4End = uint32(l4), uint32(l4), uint32(l4)
	return p.decodeL4(frame, l4, end)
}

// decodeL4 checks the upper-layer header at frame[l4:end].
func (p *Packet) decodeL4(frame []byte, l4, end int) Reason {
	avail := end - l4
	switch p.Protocol {
	case proto.IPProtoUDP:
		if avail < UDPHeaderLen {
			return ReasonUDPTruncated
		}
		ul := int(binary.BigEndian.Uint16(frame[l4+udpLength:]))
		if ul < UDPHeaderLen {
			return ReasonUDPLengthTooShort
		}
		if ul > avail {
			if p.Flags&FlagFragment == 0 {
				return ReasonUDPLengthPastEnd
			}
			// A first fragment: the datagram continues in later
			// fragments. Read only what is here.
			p.Flags |= FlagUDP | FlagUDPIncomplete
			p.PayloadOff = uint32(l4 + UDPHeaderLen)
			p.L4End = uint32(end)
			return ReasonUDPFragment
		}
		// ul < avail is legal: the UDP length bounds the data and the
		// rest of the IP payload is ignored (Linux trims it too).
		p.Flags |= FlagUDP
		p.PayloadOff = uint32(l4 + UDPHeaderLen)
		p.L4End = uint32(l4 + ul)
		if p.Flags&FlagFragment != 0 {
			return ReasonUDPFragment
		}
		return ReasonOK
	case proto.IPProtoICMP:
		if p.IPVersion == IPv4Version {
			if avail < ICMPHeaderLen {
				return ReasonICMPv4Truncated
			}
			p.L4End = uint32(end)
			return ReasonICMPv4
		}
	case proto.IPProtoICMPv6:
		if p.IPVersion == IPv6Version {
			if avail < ICMPHeaderLen {
				return ReasonICMPv6Truncated
			}
			p.L4End = uint32(end)
			return ReasonICMPv6
		}
	case proto.IPProtoTCP:
		p.L4End = uint32(end)
		return ReasonTCP
	}
	p.L4End = uint32(end)
	return ReasonOtherIPProtocol
}

func (p *Packet) decodeARP(frame []byte, off int) Reason {
	b := frame[off:]
	if len(b) < ARPLen {
		return ReasonARPTruncated
	}
	if !ARP(b).IsEthernetIPv4() {
		return ReasonARPUnsupported
	}
	end := off + ARPLen
	p.End, p.L4Off, p.PayloadOff, p.L4End = uint32(end), uint32(end), uint32(end), uint32(end)
	if end < len(frame) {
		p.Flags |= FlagPadded
	}
	return ReasonARP
}

// IsFragment reports whether the decoded datagram is a fragment.
func (p *Packet) IsFragment() bool { return p.Flags&FlagFragment != 0 }

// Len returns the length of the frame up to the end of the IP datagram
// (or ARP packet), which excludes any Ethernet padding or trailer.
func (p *Packet) Len() int { return int(p.End) }

// Ethernet returns the Ethernet header view (with the VLAN tags, if any).
func (p *Packet) Ethernet(frame []byte) Ethernet { return Ethernet(frame[:p.L3Off]) }

// IPv4 returns the IPv4 header view, bounded by the total length. Valid
// when p.IPVersion is 4.
func (p *Packet) IPv4(frame []byte) IPv4 { return IPv4(frame[p.L3Off:p.End]) }

// IPv6 returns the IPv6 header view, bounded by the payload length. Valid
// when p.IPVersion is 6.
func (p *Packet) IPv6(frame []byte) IPv6 { return IPv6(frame[p.L3Off:p.End]) }

// Datagram returns the whole IP datagram (or ARP packet) without link
// header or trailer: what an ICMP error quotes.
func (p *Packet) Datagram(frame []byte) []byte { return frame[p.L3Off:p.End] }

// ARP returns the ARP view. Valid after ReasonARP.
func (p *Packet) ARP(frame []byte) ARP { return ARP(frame[p.L3Off:p.End]) }

// UDP returns the UDP view, bounded by the UDP length (or by the fragment).
// Valid when FlagUDP is set.
func (p *Packet) UDP(frame []byte) UDP { return UDP(frame[p.L4Off:p.L4End]) }

// ICMPv4 returns the ICMP view. Valid after ReasonICMPv4.
func (p *Packet) ICMPv4(frame []byte) ICMPv4 { return ICMPv4(frame[p.L4Off:p.L4End]) }

// ICMPv6 returns the ICMPv6 view. Valid after ReasonICMPv6.
func (p *Packet) ICMPv6(frame []byte) ICMPv6 { return ICMPv6(frame[p.L4Off:p.L4End]) }

// Payload returns the UDP data (or, for other protocols, the upper-layer
// message).
func (p *Packet) Payload(frame []byte) []byte { return frame[p.PayloadOff:p.L4End] }

// SrcAddr returns the IP source address (the ARP sender for ARP), or the
// zero Addr if the frame is neither. It does not allocate.
func (p *Packet) SrcAddr(frame []byte) netip.Addr {
	o := p.L3Off
	switch p.IPVersion {
	case IPv4Version:
		return netip.AddrFrom4([4]byte(frame[o+ipv4Src : o+ipv4Src+4]))
	case IPv6Version:
		return netip.AddrFrom16([16]byte(frame[o+ipv6Src : o+ipv6Src+16]))
	}
	return p.arpAddr(frame, arpSPA)
}

// DstAddr returns the IP destination address (the ARP target for ARP), or
// the zero Addr. It does not allocate.
func (p *Packet) DstAddr(frame []byte) netip.Addr {
	o := p.L3Off
	switch p.IPVersion {
	case IPv4Version:
		return netip.AddrFrom4([4]byte(frame[o+ipv4Dst : o+ipv4Dst+4]))
	case IPv6Version:
		return netip.AddrFrom16([16]byte(frame[o+ipv6Dst : o+ipv6Dst+16]))
	}
	return p.arpAddr(frame, arpTPA)
}

// arpAddr returns the protocol address at off of a decoded ARP packet, or
// the zero Addr for anything else.
func (p *Packet) arpAddr(frame []byte, off uint32) netip.Addr {
	if p.EtherType != proto.EtherTypeARP || p.End == 0 {
		return netip.Addr{}
	}
	o := p.L3Off + off
	return netip.AddrFrom4([4]byte(frame[o : o+4]))
}

// SrcPort returns the UDP source port, or 0 if FlagUDP is not set.
func (p *Packet) SrcPort(frame []byte) uint16 {
	if p.Flags&FlagUDP == 0 {
		return 0
	}
	return binary.BigEndian.Uint16(frame[p.L4Off:])
}

// DstPort returns the UDP destination port, or 0 if FlagUDP is not set.
func (p *Packet) DstPort(frame []byte) uint16 {
	if p.Flags&FlagUDP == 0 {
		return 0
	}
	return binary.BigEndian.Uint16(frame[p.L4Off+2:])
}

// Src returns the source address and UDP port. It does not allocate.
func (p *Packet) Src(frame []byte) netip.AddrPort {
	return netip.AddrPortFrom(p.SrcAddr(frame), p.SrcPort(frame))
}

// Dst returns the destination address and UDP port: the key to dispatch a
// datagram on. It does not allocate.
func (p *Packet) Dst(frame []byte) netip.AddrPort {
	return netip.AddrPortFrom(p.DstAddr(frame), p.DstPort(frame))
}
