package frame

import (
	"encoding/binary"
	"testing"

	"github.com/pktengine/pktengine/proto"
)

// edit returns a copy of f changed by fn.
func edit(f []byte, fn func(b []byte) []byte) []byte { return fn(clone(f)) }

func put16(b []byte, off int, v uint16) { binary.BigEndian.PutUint16(b[off:], v) }

// fixIPv4 recomputes the IPv4 header checksum of an untagged frame, so a
// case fails for the reason it is about.
func fixIPv4(b []byte) []byte {
	h := IPv4(b[14:])
	if len(b) >= 34 && h.HeaderLength() <= len(h) {
		h.SetChecksum(h.CalculateChecksum())
	}
	return b
}

// TestDecodeReasons builds one frame for every Reason and checks that
// Decode (or the checksum verification) names it. Every Reason below
// NumReasons must be produced by some case, so a reason that cannot happen
// fails the test.
func TestDecodeReasons(t *testing.T) {
	v4 := mustBuild(t, &UDPSpec{SrcMAC: macA, DstMAC: macB, Src: v4A, Dst: v4B, Payload: []byte("TEST")})
	v6 := mustBuild(t, &UDPSpec{SrcMAC: macA, DstMAC: macB, Src: v6A, Dst: v6B, Payload: []byte("TEST")})
	v6dst := func(n int) []byte {
		var hs []IPv6ExtHeader
		for range n {
			hs = append(hs, IPv6ExtHeader{Type: proto.IPProtoDstOpts})
		}
		return mustBuild(t, &UDPSpec{SrcMAC: macA, DstMAC: macB, Src: v6A, Dst: v6B, Payload: []byte("x"), ExtHeaders: hs})
	}
	big := make([]byte, 64)
	frag := func(s *UDPSpec, f Fragment) []byte {
		buf := make([]byte, 200)
		n, err := BuildUDPFragment(buf, s, f)
		if err != nil {
			t.Fatal(err)
		}
		return buf[:n]
	}
	s4 := &UDPSpec{Src: v4A, Dst: v4B, Payload: big}
	s6 := &UDPSpec{Src: v6A, Dst: v6B, Payload: big}
	var samples = map[string][]byte{}
	for _, s := range sampleFrames(t) {
		samples[s.name] = s.frame
	}
	arp := samples["arp/request"]

	cases := []struct {
		name   string
		frame  []byte
		want   Reason
		verify Reason // expected VerifyChecksums result, if want is ReasonOK
	}{
		{"udp4", v4, ReasonOK, ReasonOK},
		{"udp6", v6, ReasonOK, ReasonOK},
		{"udp4 zero checksum", edit(v4, func(b []byte) []byte { put16(b, 40, 0); return b }), ReasonOK, ReasonOK},
		{"udp4 bad checksum", edit(v4, func(b []byte) []byte { b[45] ^= 1; return b }), ReasonOK, ReasonUDPBadChecksum},
		{"udp4 bad ip checksum", edit(v4, func(b []byte) []byte { b[24] ^= 1; return b }), ReasonOK, ReasonIPv4BadHeaderChecksum},
		{"udp6 zero checksum", edit(v6, func(b []byte) []byte { put16(b, 60, 0); return b }), ReasonOK, ReasonUDPZeroChecksumIPv6},
		{"udp6 bad checksum", edit(v6, func(b []byte) []byte { b[65] ^= 0x80; return b }), ReasonOK, ReasonUDPBadChecksum},
		{"arp", arp, ReasonARP, 0},
		{"icmpv4", samples["icmpv4/unreachable"], ReasonICMPv4, 0},
		{"icmpv6", samples["icmpv6/na"], ReasonICMPv6, 0},
		{"tcp", samples["v4/tcp"], ReasonTCP, 0},
		{"esp", edit(v4, func(b []byte) []byte { b[23] = proto.IPProtoESP; return fixIPv4(b) }), ReasonOtherIPProtocol, 0},
		{"icmp over ipv6", edit(v6, func(b []byte) []byte { b[20] = proto.IPProtoICMP; return b }), ReasonOtherIPProtocol, 0},
		{"ipv6 no next header", edit(v6, func(b []byte) []byte { b[20] = proto.IPProtoNoNext; return b }), ReasonOtherIPProtocol, 0},
		{"lldp", samples["lldp"], ReasonUnknownEtherType, 0},
		{"udp4 first fragment", frag(s4, Fragment{Offset: 0, Length: 32}), ReasonUDPFragment, 0},
		{"udp6 first fragment", frag(s6, Fragment{Offset: 0, Length: 32, ID: 1}), ReasonUDPFragment, 0},
		{"udp4 later fragment", frag(s4, Fragment{Offset: 32, Length: 40}), ReasonNonFirstFragment, 0},
		{"udp6 later fragment", frag(s6, Fragment{Offset: 32, Length: 40, ID: 1}), ReasonNonFirstFragment, 0},

		{"empty", nil, ReasonTruncatedEthernet, 0},
		{"13 bytes", v4[:13], ReasonTruncatedEthernet, 0},
		{"vlan cut", edit(v4, func(b []byte) []byte { put16(b, 12, 0x8100); return b[:17] }), ReasonTruncatedVLAN, 0},
		{"second vlan cut", edit(v4, func(b []byte) []byte {
			put16(b, 12, 0x88a8)
			put16(b, 16, 0x8100)
			return b[:21]
		}), ReasonTruncatedVLAN, 0},
		{"three tags", edit(v4, func(b []byte) []byte {
			put16(b, 12, 0x88a8)
			put16(b, 16, 0x8100)
			put16(b, 20, 0x8100)
			return b
		}), ReasonTooManyVLANTags, 0},
		{"arp cut", arp[:14+27], ReasonARPTruncated, 0},
		{"arp not ethernet/ipv4", edit(arp, func(b []byte) []byte { b[14+4] = 8; return b }), ReasonARPUnsupported, 0},
		{"ipv4 cut", v4[:14+19], ReasonIPv4Truncated, 0},
		{"ipv4 version 6", edit(v4, func(b []byte) []byte { b[14] = 0x65; return b }), ReasonIPv4BadVersion, 0},
		{"ipv4 ihl 4", edit(v4, func(b []byte) []byte { b[14] = 0x44; return b }), ReasonIPv4HeaderTooShort, 0},
		{"ipv4 ihl past end", edit(v4, func(b []byte) []byte { b[14] = 0x4f; return b }), ReasonIPv4HeaderPastEnd, 0},
		{"ipv4 total < header", edit(v4, func(b []byte) []byte { put16(b, 16, 19); return b }), ReasonIPv4TotalLengthTooShort, 0},
		{"ipv4 total past end", edit(v4, func(b []byte) []byte { put16(b, 16, 33); return b }), ReasonIPv4TotalLengthPastEnd, 0},
		{"ipv4 option past header", edit(samples["v4opts/vlan0"], func(b []byte) []byte { b[35] = 9; return fixIPv4(b) }), ReasonIPv4BadOptions, 0},
		{"ipv4 option length 1", edit(samples["v4opts/vlan0"], func(b []byte) []byte { b[35] = 1; return fixIPv4(b) }), ReasonIPv4BadOptions, 0},
		{"ipv4 option cut", edit(samples["v4opts/vlan0"], func(b []byte) []byte { b[41] = 7; return fixIPv4(b) }), ReasonIPv4BadOptions, 0},
		{"ipv4 options", samples["v4opts/vlan0"], ReasonOK, ReasonOK},
		{"ipv6 cut", v6[:14+39], ReasonIPv6Truncated, 0},
		{"ipv6 version 4", edit(v6, func(b []byte) []byte { b[14] = 0x40; return b }), ReasonIPv6BadVersion, 0},
		{"ipv6 payload past end", edit(v6, func(b []byte) []byte { put16(b, 18, 13); return b }), ReasonIPv6PayloadPastEnd, 0},
		{"ipv6 ext past payload", edit(v6dst(1), func(b []byte) []byte { b[55] = 3; return b }), ReasonIPv6ExtHeaderTruncated, 0},
		{"ipv6 ext no length byte", edit(v6, func(b []byte) []byte {
			b[20] = proto.IPProtoRouting
			put16(b, 18, 1)
			return b[:55]
		}), ReasonIPv6ExtHeaderTruncated, 0},
		{"ipv6 jumbogram", edit(v6, func(b []byte) []byte { b[20] = proto.IPProtoHopByHop; put16(b, 18, 0); return b }), ReasonIPv6ExtHeaderTruncated, 0},
		{"ipv6 ah too short", edit(v6, func(b []byte) []byte {
			b[20] = proto.IPProtoAH
			b[54], b[55] = proto.IPProtoUDP, 0 // 8 bytes: under the 12-byte minimum
			return b
		}), ReasonIPv6AHTooShort, 0},
		{"ipv6 option past header", edit(v6dst(1), func(b []byte) []byte { b[56], b[57] = 1, 5; return b }), ReasonIPv6BadOptions, 0},
		{"ipv6 option cut", edit(v6dst(1), func(b []byte) []byte { b[61] = 4; return b }), ReasonIPv6BadOptions, 0},
		{"ipv6 unknown option skip", edit(v6dst(1), func(b []byte) []byte { b[56], b[57] = 0x3e, 4; return b }), ReasonOK, ReasonOK},
		{"ipv6 unknown option discard", edit(v6dst(1), func(b []byte) []byte { b[56], b[57] = 0x7e, 4; return b }), ReasonIPv6UnknownOption, 0},
		{"ipv6 jumbo option", edit(v6dst(1), func(b []byte) []byte { b[56], b[57] = 0xc2, 4; return b }), ReasonIPv6UnknownOption, 0},
		{"ipv6 hop-by-hop second", edit(v6dst(2), func(b []byte) []byte { b[54] = proto.IPProtoHopByHop; return b }), ReasonIPv6HopByHopNotFirst, 0},
		{"ipv6 8 ext headers", v6dst(8), ReasonOK, ReasonOK},
		{"ipv6 9 ext headers", v6dst(9), ReasonIPv6TooManyExtHeaders, 0},
		{"icmpv4 cut", edit(v4, func(b []byte) []byte { b[23] = proto.IPProtoICMP; put16(b, 16, 27); return fixIPv4(b) }), ReasonICMPv4Truncated, 0},
		{"icmpv6 cut", edit(v6, func(b []byte) []byte { b[20] = proto.IPProtoICMPv6; put16(b, 18, 7); return b }), ReasonICMPv6Truncated, 0},
		{"udp4 cut", edit(v4, func(b []byte) []byte { put16(b, 16, 27); return fixIPv4(b) }), ReasonUDPTruncated, 0},
		{"udp6 cut", edit(v6, func(b []byte) []byte { put16(b, 18, 7); return b }), ReasonUDPTruncated, 0},
		{"udp length 7", edit(v4, func(b []byte) []byte { put16(b, 38, 7); return b }), ReasonUDPLengthTooShort, 0},
		{"udp6 length 0", edit(v6, func(b []byte) []byte { put16(b, 58, 0); return b }), ReasonUDPLengthTooShort, 0},
		{"udp length past ip", edit(v4, func(b []byte) []byte { put16(b, 38, 13); return b }), ReasonUDPLengthPastEnd, 0},
	}
	seen := map[Reason]bool{}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var p Packet
			r := p.Decode(c.frame)
			seen[r] = true
			if r != c.want {
				t.Fatalf("Decode = %v, want %v", r, c.want)
			}
			if r == ReasonOK {
				v := p.VerifyChecksums(c.frame)
				seen[v] = true
				if v != c.verify {
					t.Fatalf("VerifyChecksums = %v, want %v", v, c.verify)
				}
			}
			checkDecode(t, c.frame)
		})
	}
	for r := range NumReasons {
		if !seen[r] {
			t.Errorf("no case produces %v", r)
		}
		if r.Malformed() != (r >= ReasonTruncatedEthernet) {
			t.Errorf("%v.Malformed() = %v", r, r.Malformed())
		}
	}
}

func TestReasonString(t *testing.T) {
	names := map[string]Reason{}
	for r := range NumReasons {
		s := r.String()
		if s == "" {
			t.Errorf("reason %d has no name", r)
		}
		if o, dup := names[s]; dup {
			t.Errorf("%d and %d share the name %q", o, r, s)
		}
		names[s] = r
	}
	if got := NumReasons.String(); got != "reason-38" {
		t.Errorf("out of range: %q", got)
	}
	if ReasonOK.String() != "ok" || ReasonUDPBadChecksum.String() != "udp-bad-checksum" {
		t.Errorf("names changed: %v %v", ReasonOK, ReasonUDPBadChecksum)
	}
}

// TestDecodeLengths checks the three lengths that bound a datagram: the
// frame (padding past End), the IP length, the UDP length.
func TestDecodeLengths(t *testing.T) {
	t.Run("padded", func(t *testing.T) {
		var p Packet
		if r := p.Decode(seedRequest); r != ReasonOK {
			t.Fatal(r)
		}
		if p.End != 46 || p.L4End != 46 || p.Flags&FlagPadded == 0 || len(p.UDP(seedRequest)) != 12 {
			t.Fatalf("End %d L4End %d flags %b", p.End, p.L4End, p.Flags)
		}
	})
	t.Run("udp shorter than ip payload", func(t *testing.T) {
		// UDP length 10 in a 12-byte IP payload: the data is "TE"; the
		// rest of the IP payload is not data.
		f := edit(seedRequest, func(b []byte) []byte { put16(b, 38, 10); return b })
		var p Packet
		if r := p.Decode(f); r != ReasonOK {
			t.Fatal(r)
		}
		if got := string(p.Payload(f)); got != "TE" {
			t.Fatalf("Payload = %q", got)
		}
		if p.L4End != 44 || p.End != 46 {
			t.Fatalf("L4End %d End %d", p.L4End, p.End)
		}
	})
	t.Run("first fragment claims more", func(t *testing.T) {
		buf := make([]byte, 200)
		n, err := BuildUDPFragment(buf, &UDPSpec{Src: v4A, Dst: v4B, Payload: make([]byte, 100)}, Fragment{Length: 16})
		if err != nil {
			t.Fatal(err)
		}
		var p Packet
		if r := p.Decode(buf[:n]); r != ReasonUDPFragment {
			t.Fatal(r)
		}
		want := FlagUDP | FlagFragment | FlagMoreFragments | FlagUDPIncomplete
		if p.Flags != want || int(p.L4End) != n || p.UDP(buf).Length() != 108 || len(p.Payload(buf)) != 8 {
			t.Fatalf("flags %b L4End %d n %d", p.Flags, p.L4End, n)
		}
		if p.DstPort(buf) != 7 {
			t.Fatalf("DstPort %d", p.DstPort(buf))
		}
	})
	t.Run("atomic fragment is complete", func(t *testing.T) {
		var p Packet
		f := mustBuild(t, udpSpecs()["v6/atomic-fragment"])
		if r := p.Decode(f); r != ReasonOK {
			t.Fatal(r)
		}
		if p.Flags != FlagUDP|FlagIPv6ExtHeaders || p.IsFragment() {
			t.Fatalf("flags %b", p.Flags)
		}
		if r := p.VerifyUDPChecksum(f); r != ReasonOK {
			t.Fatal(r)
		}
	})
	t.Run("non-udp has no ports", func(t *testing.T) {
		var p Packet
		f := sampleFrames(t)[0].frame
		for _, s := range sampleFrames(t) {
			if s.name == "arp/request" {
				f = s.frame
			}
		}
		if r := p.Decode(f); r != ReasonARP {
			t.Fatal(r)
		}
		if p.SrcPort(f) != 0 || p.DstPort(f) != 0 || p.Src(f).Addr() != v4A.Addr() || p.Dst(f).Addr() != v4B.Addr() {
			t.Fatalf("src %v dst %v", p.Src(f), p.Dst(f))
		}
	})
}

// TestDecodeResets checks that Decode leaves nothing of a previous frame
// in a reused Packet.
func TestDecodeResets(t *testing.T) {
	var p Packet
	f := mustBuild(t, udpSpecs()["v6ext/vlan2"])
	if r := p.Decode(f); r != ReasonOK {
		t.Fatal(r)
	}
	if r := p.Decode(f[:10]); r != ReasonTruncatedEthernet {
		t.Fatal(r)
	}
	if p != (Packet{}) {
		t.Fatalf("stale fields: %+v", p)
	}
}
