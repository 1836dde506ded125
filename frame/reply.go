package frame

import (
	"encoding/binary"
	"net/netip"

	"github.com/pktengine/pktengine/proto"
)

// ReplyInPlace turns the UDP datagram p describes (Decode returned
// ReasonOK) into its reply, in frame itself: it swaps the MAC addresses,
// the IP addresses and the ports, and sets the IPv4 TTL or IPv6 hop limit
// to ttl (0 means DefaultTTL). Payload, VLAN tags, TOS/traffic class, flow
// label and IPv4 ID and flags stay as they are. It returns the length of
// the reply frame, p.Len(): a trailer after the datagram is not sent back.
//
// Every checksum stays valid without being recomputed (RFC 1624): a
// ones'-complement sum does not depend on the order of its words, so
// swapping addresses and ports changes neither the IPv4 header checksum
// nor the UDP checksum, and the TTL is one incremental update. A checksum
// that was wrong stays wrong, and a partial one (TP_STATUS_CSUMNOTREADY)
// stays partial; see FillUDPChecksum.
//
// It returns ErrNotInPlace for a fragment, an IPv4 header with options or
// an IPv6 packet with extension headers: reflecting a source route or a
// routing header would be wrong, and dropping them would move the payload.
// Build such replies with BuildUDP. It returns ErrNotUnicast, and leaves
// the frame alone, if the request went to a group (multicast or broadcast
// MAC, multicast or limited-broadcast IP destination) or came from a
// multicast or broadcast source: the swap would send from a group address,
// which no host may do (RFC 1122 3.2.1.3, RFC 4291 2.7). Such a request
// needs a reply built from the responder's own unicast address. It does
// not allocate.
func ReplyInPlace(frame []byte, p *Packet, ttl uint8) (int, error) {
	if p.Flags&(FlagUDP|FlagFragment|FlagIPv4Options|FlagIPv6ExtHeaders) != FlagUDP {
		return 0, ErrNotInPlace
	}
	if !p.isUnicastExchange(frame) {
		return 0, ErrNotUnicast
	}
	if ttl == 0 {
		ttl = DefaultTTL
	}
	Ethernet(frame).SwapAddresses()
	if p.IPVersion == IPv4Version {
		ip := IPv4(frame[p.L3Off:p.L4Off])
		ip.SwapAddresses()
		ip.SetTTLChecksummed(ttl)
	} else {
		ip := IPv6(frame[p.L3Off:p.L4Off])
		ip.SwapAddresses()
		ip.SetHopLimit(ttl)
	}
	UDP(frame[p.L4Off:p.L4End]).SwapPorts()
	return int(p.End), nil
}

// SetUDPPayloadLength makes the decoded UDP datagram in frame, one that
// ReplyInPlace can turn around, carry n bytes of data from p.PayloadOff:
// it sets the UDP length and the IP packet's (the IPv4 total length, with
// an incremental update of the header checksum; the IPv6 payload length)
// and p's L4End and End. Writing the data and then the UDP checksum
// (FillUDPChecksum) is the caller's. frame must hold the new datagram. It
// returns the frame's new length.
func (p *Packet) SetUDPPayloadLength(frame []byte, n int) (int, error) {
	if p.Flags&(FlagUDP|FlagFragment|FlagIPv4Options|FlagIPv6ExtHeaders) != FlagUDP {
		return 0, ErrNotInPlace
	}
	end := int(p.PayloadOff) + n
	if n < 0 || end > len(frame) || end-int(p.L3Off) > 0xffff || UDPHeaderLen+n > 0xffff {
		return 0, ErrPayloadTooLarge
	}
	if p.IPVersion == IPv4Version {
		ip := IPv4(frame[p.L3Off:p.L4Off])
		old, length := ip.TotalLength(), uint16(end-int(p.L3Off))
		ip.SetTotalLength(length)
		ip.SetChecksum(proto.Update16(ip.Checksum(), old, length))
	} else {
		IPv6(frame[p.L3Off:p.L4Off]).SetPayloadLength(uint16(UDPHeaderLen + n))
	}
	UDP(frame[p.L4Off:end]).SetLength(uint16(UDPHeaderLen + n))
	p.L4End, p.End = uint32(end), uint32(end)
	return end, nil
}

// isUnicastExchange reports whether the decoded IP packet went from a
// unicast source to a unicast destination, as far as the frame can tell: a
// subnet-directed broadcast looks like unicast without knowing the prefix.
func (p *Packet) isUnicastExchange(frame []byte) bool {
	if frame[0]&1 != 0 { // group bit of the destination MAC
		return false
	}
	o := p.L3Off
	if p.IPVersion == IPv4Version {
		src, dst := frame[o+ipv4Src:o+ipv4Src+4], frame[o+ipv4Dst:o+ipv4Dst+4]
		return src[0] < 224 && dst[0] < 224 // class D multicast, class E and 255.255.255.255
	}
	return frame[o+ipv6Src] != 0xff && frame[o+ipv6Dst] != 0xff
}

// SetSrcChecksummed changes the source address and port of the decoded
// UDP datagram in frame and updates the IPv4 header checksum and the UDP
// checksum incrementally. src must be of the packet's IP family. It is
// meant for a load generator that decodes one template frame and then
// varies it per packet; it does not allocate.
func (p *Packet) SetSrcChecksummed(frame []byte, src netip.AddrPort) {
	u := UDP(frame[p.L4Off:p.L4End])
	old := p.SrcAddr(frame)
	if old != src.Addr() {
		if p.IPVersion == IPv4Version {
			IPv4(frame[p.L3Off:p.L4Off]).SetSourceChecksummed(src.Addr())
		} else {
			IPv6(frame[p.L3Off:]).SetSource(src.Addr())
		}
		u.UpdateChecksumPseudoHeaderAddress(old, src.Addr())
	}
	u.SetSourcePortChecksummed(src.Port())
}

// SetDstChecksummed is SetSrcChecksummed for the destination.
func (p *Packet) SetDstChecksummed(frame []byte, dst netip.AddrPort) {
	u := UDP(frame[p.L4Off:p.L4End])
	old := p.DstAddr(frame)
	if old != dst.Addr() {
		if p.IPVersion == IPv4Version {
			IPv4(frame[p.L3Off:p.L4Off]).SetDestinationChecksummed(dst.Addr())
		} else {
			IPv6(frame[p.L3Off:]).SetDestination(dst.Addr())
		}
		u.UpdateChecksumPseudoHeaderAddress(old, dst.Addr())
	}
	u.SetDestinationPortChecksummed(dst.Port())
}

// ARPReplyInPlace answers the ARP request p describes (Decode returned
// ReasonARP and the operation is ARPRequest) in frame itself: the Ethernet
// destination and ARP target become the requester, the Ethernet source
// and ARP sender become mac and the requested address. It returns the
// reply's length (p.Len()) or ErrNotInPlace if the packet is not a
// request. Whether the target address is one to answer for is the
// caller's decision.
func ARPReplyInPlace(frame []byte, p *Packet, mac MAC) (int, error) {
	if p.EtherType != proto.EtherTypeARP || p.End == 0 {
		return 0, ErrNotInPlace
	}
	a := ARP(frame[p.L3Off:p.End])
	if a.Op() != ARPRequest {
		return 0, ErrNotInPlace
	}
	e := Ethernet(frame)
	e.SetDestination(a.SenderMAC())
	e.SetSource(mac)
	a.SetOp(ARPReply)
	// Target (requester) <- sender; sender <- (mac, requested address).
	var spa, tpa [4]byte
	copy(spa[:], a[arpSPA:arpSPA+4])
	copy(tpa[:], a[arpTPA:arpTPA+4])
	copy(a[arpTHA:arpTHA+6], a[arpSHA:arpSHA+6])
	copy(a[arpTPA:arpTPA+4], spa[:])
	copy(a[arpSHA:arpSHA+6], mac[:])
	copy(a[arpSPA:arpSPA+4], tpa[:])
	return int(p.End), nil
}

// ICMPv4EchoReplyInPlace answers the ICMP echo request p describes
// (ReasonICMPv4, type ICMPv4Echo, not a fragment) in frame: MACs and
// addresses swapped, type set to echo reply, TTL set to ttl (0 means
// DefaultTTL), both checksums updated incrementally. It returns the reply
// length, ErrNotInPlace, or ErrNotUnicast for an echo request sent to a
// group (Linux ignores broadcast pings by default, too).
func ICMPv4EchoReplyInPlace(frame []byte, p *Packet, ttl uint8) (int, error) {
	return echoReplyInPlace(frame, p, ttl, IPv4Version)
}

// ICMPv6EchoReplyInPlace is ICMPv4EchoReplyInPlace for ICMPv6 echo
// requests (no extension headers). The checksum update covers the type
// change only: the pseudo-header's addresses are swapped, not changed.
func ICMPv6EchoReplyInPlace(frame []byte, p *Packet, hopLimit uint8) (int, error) {
	return echoReplyInPlace(frame, p, hopLimit, IPv6Version)
}

// echoReplyInPlace turns an ICMP or ICMPv6 echo request into its reply.
// The two differ only in their numbers and in how the IP header keeps
// its hop count.
func echoReplyInPlace(frame []byte, p *Packet, ttl uint8, version uint8) (int, error) {
	ipProto, request, reply, noOptions := proto.IPProtoICMP, ICMPv4Echo, ICMPv4EchoReply, FlagIPv4Options
	if version == IPv6Version {
		ipProto, request, reply, noOptions = proto.IPProtoICMPv6, ICMPv6EchoRequest, ICMPv6EchoReply, FlagIPv6ExtHeaders
	}
	if p.IPVersion != version || p.Protocol != ipProto ||
		p.Flags&(FlagFragment|noOptions) != 0 || p.L4End-p.L4Off < ICMPHeaderLen {
		return 0, ErrNotInPlace
	}
	m := frame[p.L4Off:p.L4End]
	if m[0] != request || m[1] != 0 {
		return 0, ErrNotInPlace
	}
	if !p.isUnicastExchange(frame) {
		return 0, ErrNotUnicast
	}
	if ttl == 0 {
		ttl = DefaultTTL
	}
	Ethernet(frame).SwapAddresses()
	if version == IPv4Version {
		ip := IPv4(frame[p.L3Off:p.L4Off])
		ip.SwapAddresses()
		ip.SetTTLChecksummed(ttl)
	} else {
		ip := IPv6(frame[p.L3Off:p.L4Off])
		ip.SwapAddresses()
		ip.SetHopLimit(ttl)
	}
	setICMPTypeChecksummed(m, reply)
	return int(p.End), nil
}

// setICMPTypeChecksummed sets the type of an ICMP or ICMPv6 message (both
// keep type, code and checksum in their first four bytes) and updates the
// checksum for the changed 16-bit word (RFC 1624).
func setICMPTypeChecksummed(m []byte, typ uint8) {
	old := binary.BigEndian.Uint16(m[0:])
	m[0] = typ
	c := binary.BigEndian.Uint16(m[2:])
	binary.BigEndian.PutUint16(m[2:], proto.Update16(c, old, binary.BigEndian.Uint16(m[0:])))
}
