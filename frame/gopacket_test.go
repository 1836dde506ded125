package frame

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// The differential test decodes the same frames with gopacket's layers,
// an independent and widely used decoder, and compares what both find.
//
// Deliberate differences, where this package is stricter or reads an RFC
// from the recipient's side:
//   - IPv4 total length or IPv6 payload length beyond the frame, UDP
//     length beyond the IP payload: gopacket marks the packet truncated
//     and decodes on; Decode rejects (ReasonIPv4TotalLengthPastEnd,
//     ReasonIPv6PayloadPastEnd, ReasonUDPLengthPastEnd).
//   - IPv4 total length 0 (TSO, Windows): gopacket uses the frame length;
//     Decode rejects (ReasonIPv4TotalLengthTooShort). No receive path
//     here sees TSO super-packets.
//   - UDP length 0 (jumbogram): gopacket takes the rest of the data;
//     Decode rejects (ReasonUDPLengthTooShort); jumbograms are not
//     supported.
//   - A UDP checksum of 0 over IPv6: gopacket calls it valid; this package
//     reports ReasonUDPZeroChecksumIPv6 (RFC 8200 section 8.1).
//   - A Routing header with segments left: gopacket sums the final
//     destination from the header (the sender's view); VerifyUDPChecksum
//     uses the Destination Address, which RFC 8200 8.1 says holds the
//     final destination at the recipient.
//   - More than two VLAN tags, more than eight IPv6 extension headers, a
//     Hop-by-Hop header that is not first: gopacket decodes on; Decode
//     rejects.
//   - IPv6 atomic fragments (RFC 6946): gopacket stops at the Fragment
//     header; Decode reads the UDP datagram, which is complete.
//   - IPv6 options whose type says "discard if unrecognised" (RFC 8200
//     4.2): gopacket decodes on; Decode rejects (ReasonIPv6UnknownOption).
//   - gopacket does not check the IP version field against the EtherType;
//     Decode does (ReasonIPv4BadVersion, ReasonIPv6BadVersion).
//   - Mobility (135), HIP (139) and Shim6 (140) extension headers: gopacket
//     cannot decode past them; Decode walks them (RFC 8200 section 4,
//     RFC 7045).
//   - EtherType 0xFFFF is gopacket's private marker for raw IP; to Decode
//     it is an unknown EtherType.
//   - EtherType values below 0x0600 are 802.3 lengths to gopacket; to
//     Decode they are unknown EtherTypes. Neither finds UDP.
func checkGopacket(t *testing.T, f []byte) {
	t.Helper()
	var p Packet
	r := p.Decode(f)
	pkt := gopacket.NewPacket(f, layers.LayerTypeEthernet, gopacket.DecodeOptions{NoCopy: true})
	gUDP, _ := pkt.Layer(layers.LayerTypeUDP).(*layers.UDP)
	// gopacket adds a layer only once it decoded, so with a UDP layer any
	// error is in an application layer above it (DNS, DHCP, ...), which is
	// none of this package's business. Truncation below UDP shows in the
	// UDP length exceeding the payload, or is a deliberate difference.
	gComplete := gUDP != nil && int(gUDP.Length) == UDPHeaderLen+len(gUDP.Payload)

	if r != ReasonOK {
		if gComplete && !deliberatelyDifferent(t, f, &p, r, pkt) {
			t.Fatalf("Decode = %v, gopacket decodes a complete UDP datagram\nframe %x", r, f)
		}
		return
	}
	if gUDP == nil {
		if p.Flags&FlagIPv6ExtHeaders != 0 && pkt.Layer(layers.LayerTypeIPv6Fragment) != nil {
			return // atomic fragment
		}
		if chainHas(f, &p, 135, 139, 140) {
			return // extension headers gopacket does not know
		}
		t.Fatalf("Decode = ok, gopacket: udp %v error %v\nframe %x", gUDP != nil, pkt.ErrorLayer(), f)
	}

	eth := pkt.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
	if !bytes.Equal(eth.SrcMAC, p.Ethernet(f).Source().slice()) || !bytes.Equal(eth.DstMAC, p.Ethernet(f).Destination().slice()) {
		t.Fatalf("MACs differ")
	}
	var tags []*layers.Dot1Q
	for _, l := range pkt.Layers() {
		if d, ok := l.(*layers.Dot1Q); ok {
			tags = append(tags, d)
		}
	}
	if len(tags) != int(p.NumVLANs) {
		t.Fatalf("VLAN tags: gopacket %d, Decode %d", len(tags), p.NumVLANs)
	}
	for i, d := range tags {
		v := p.VLANs[i]
		if d.VLANIdentifier != v.ID() || d.Priority != v.Priority() || d.DropEligible != v.DropEligible() {
			t.Fatalf("tag %d: gopacket %d/%d/%v, Decode %d/%d/%v", i, d.VLANIdentifier, d.Priority, d.DropEligible, v.ID(), v.Priority(), v.DropEligible())
		}
	}

	var gSrc, gDst netip.Addr
	switch ip := pkt.NetworkLayer().(type) {
	case *layers.IPv4:
		gSrc, _ = netip.AddrFromSlice(ip.SrcIP)
		gDst, _ = netip.AddrFromSlice(ip.DstIP)
		h := p.IPv4(f)
		if p.IPVersion != 4 || ip.Length != h.TotalLength() || ip.IHL != h.IHL() || ip.TTL != h.TTL() ||
			ip.TOS != h.TOS() || ip.Id != h.ID() || uint8(ip.Flags) != h.Flags() || ip.FragOffset<<3 != h.FragmentOffset() ||
			uint8(ip.Protocol) != p.Protocol {
			t.Fatalf("IPv4 fields differ: gopacket %+v", ip)
		}
		_, gv := ip.VerifyChecksum()
		if ok := p.VerifyIPv4HeaderChecksum(f) == ReasonOK; ok != gv.Valid {
			t.Fatalf("IPv4 header checksum: Decode ok=%v, gopacket valid=%v", ok, gv.Valid)
		}
		if err := gUDP.SetNetworkLayerForChecksum(ip); err != nil {
			t.Fatal(err)
		}
	case *layers.IPv6:
		gSrc, _ = netip.AddrFromSlice(ip.SrcIP)
		gDst, _ = netip.AddrFromSlice(ip.DstIP)
		h := p.IPv6(f)
		if p.IPVersion != 6 || ip.Length != h.PayloadLength() || ip.HopLimit != h.HopLimit() ||
			ip.TrafficClass != h.TrafficClass() || ip.FlowLabel != h.FlowLabel() {
			t.Fatalf("IPv6 fields differ: gopacket %+v", ip)
		}
		if err := gUDP.SetNetworkLayerForChecksum(ip); err != nil {
			t.Fatal(err)
		}
	default:
		t.Fatalf("gopacket network layer %T", ip)
	}
	if gSrc != p.SrcAddr(f) || gDst != p.DstAddr(f) {
		t.Fatalf("addresses: gopacket %v -> %v, Decode %v -> %v", gSrc, gDst, p.SrcAddr(f), p.DstAddr(f))
	}
	u := p.UDP(f)
	if uint16(gUDP.SrcPort) != u.SourcePort() || uint16(gUDP.DstPort) != u.DestinationPort() ||
		gUDP.Length != u.Length() || gUDP.Checksum != u.Checksum() {
		t.Fatalf("UDP header: gopacket %d %d %d %#x", gUDP.SrcPort, gUDP.DstPort, gUDP.Length, gUDP.Checksum)
	}
	if !bytes.Equal(gUDP.Payload, p.Payload(f)) {
		t.Fatalf("UDP payload: gopacket %x, Decode %x", gUDP.Payload, p.Payload(f))
	}
	_, gv := gUDP.VerifyChecksum()
	ours := p.VerifyUDPChecksum(f)
	switch {
	case ours == ReasonUDPZeroChecksumIPv6:
		if !gv.Valid {
			t.Fatalf("zero IPv6 checksum: gopacket calls it invalid")
		}
	case p.Flags&FlagIPv6Routing != 0 && routingSegmentsLeft(f, &p):
		// Final destination differs by design; see the comment above.
	case (ours == ReasonOK) != gv.Valid:
		t.Fatalf("UDP checksum: Decode %v, gopacket valid=%v", ours, gv.Valid)
	}
}

func (m MAC) slice() []byte { return m[:] }

// deliberatelyDifferent reports whether a frame gopacket decodes as a
// complete UDP datagram but Decode rejects with r is one of the documented
// deliberate differences.
func deliberatelyDifferent(t *testing.T, f []byte, p *Packet, r Reason, pkt gopacket.Packet) bool {
	switch r {
	case ReasonTooManyVLANTags, ReasonIPv6HopByHopNotFirst, ReasonIPv6TooManyExtHeaders,
		ReasonIPv4BadVersion, ReasonIPv6BadVersion, ReasonIPv6UnknownOption,
		ReasonIPv4TotalLengthPastEnd, ReasonIPv6PayloadPastEnd, ReasonUDPLengthPastEnd:
		return true
	case ReasonIPv4TotalLengthTooShort:
		ip, ok := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		return ok && binary.BigEndian.Uint16(ip.Contents[2:]) == 0
	case ReasonUDPLengthTooShort:
		u := pkt.Layer(layers.LayerTypeUDP).(*layers.UDP)
		return u.Length == 0
	case ReasonUnknownEtherType:
		return p.EtherType == uint16(layers.EthernetTypeRaw)
	case ReasonUDPFragment, ReasonNonFirstFragment:
		// gopacket decodes the UDP header of a first fragment only when
		// it does not look at fragmentation; either way no complete
		// datagram.
		return true
	}
	return false
}

// anyExtHeader walks the IPv6 extension-header chain of a decoded packet
// and reports whether match holds for one of its headers, given the
// header's type and the bytes from its start on.
func anyExtHeader(f []byte, p *Packet, match func(typ uint8, h []byte) bool) bool {
	ip := p.IPv6(f)
	next, off := ip.NextHeader(), IPv6HeaderLen
	for off < int(p.L4Off-p.L3Off) {
		if match(next, ip[off:]) {
			return true
		}
		l := (int(ip[off+1]) + 1) * 8
		if next == 51 {
			l = (int(ip[off+1]) + 2) * 4
		} else if next == 44 {
			l = 8
		}
		next, off = ip[off], off+l
	}
	return false
}

// chainHas reports whether the IPv6 extension-header chain of a decoded
// packet contains one of the header types.
func chainHas(f []byte, p *Packet, types ...uint8) bool {
	return anyExtHeader(f, p, func(typ uint8, _ []byte) bool { return slices.Contains(types, typ) })
}

// routingSegmentsLeft reports whether a Routing header of the packet has
// segments left.
func routingSegmentsLeft(f []byte, p *Packet) bool {
	return anyExtHeader(f, p, func(typ uint8, h []byte) bool { return typ == 43 && h[3] != 0 })
}

func TestGopacketDifferential(t *testing.T) {
	samples := sampleFrames(t)
	for _, s := range samples {
		t.Run(s.name, func(t *testing.T) { checkGopacket(t, s.frame) })
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for s, g := range mutations(rng, samples) {
		checkGopacket(t, g)
		if t.Failed() {
			t.Fatalf("sample %s mutated to %x", s.name, g)
		}
	}
	// Random frames from random specs, checksums and all.
	for range 2000 {
		s := randomSpec(rng)
		buf := make([]byte, 2048)
		n, err := BuildUDP(buf, s)
		if err != nil {
			t.Fatal(err)
		}
		checkGopacket(t, buf[:n])
		var p Packet
		if r := p.Decode(buf[:n]); r != ReasonOK {
			t.Fatalf("built frame decodes as %v: %+v", r, s)
		}
		if r := p.VerifyChecksums(buf[:n]); r != ReasonOK {
			t.Fatalf("built frame checksums: %v", r)
		}
	}
}

// randomSpec returns a UDP spec with random addresses, ports, tags and
// payload.
func randomSpec(rng *rand.Rand) *UDPSpec {
	var s UDPSpec
	for i := range 6 {
		s.SrcMAC[i], s.DstMAC[i] = byte(rng.Uint32()), byte(rng.Uint32())
	}
	for range rng.IntN(3) {
		s.VLANs = append(s.VLANs, VLANTag{TCI: uint16(rng.Uint32())})
	}
	sp, dp := uint16(rng.Uint32()), uint16(rng.Uint32())
	if rng.IntN(2) == 0 {
		var a, b [4]byte
		binary.BigEndian.PutUint32(a[:], rng.Uint32())
		binary.BigEndian.PutUint32(b[:], rng.Uint32())
		s.Src, s.Dst = netip.AddrPortFrom(netip.AddrFrom4(a), sp), netip.AddrPortFrom(netip.AddrFrom4(b), dp)
		s.NoChecksum = rng.IntN(8) == 0
		if rng.IntN(4) == 0 {
			s.Options = make([]byte, 4*rng.IntN(11)) // all zeros: EOL and padding
		}
	} else {
		var a, b [16]byte
		for i := range 16 {
			a[i], b[i] = byte(rng.Uint32()), byte(rng.Uint32())
		}
		s.Src, s.Dst = netip.AddrPortFrom(netip.AddrFrom16(a), sp), netip.AddrPortFrom(netip.AddrFrom16(b), dp)
		s.FlowLabel = rng.Uint32()
	}
	s.TTL, s.TOS, s.ID, s.DontFragment = uint8(rng.Uint32()), uint8(rng.Uint32()), uint16(rng.Uint32()), rng.IntN(2) == 0
	s.Payload = make([]byte, rng.IntN(1400))
	for i := range s.Payload {
		s.Payload[i] = byte(rng.Uint32())
	}
	return &s
}

func FuzzGopacket(f *testing.F) {
	for _, s := range sampleFrames(f) {
		f.Add(s.frame)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		checkGopacket(t, b)
	})
}
