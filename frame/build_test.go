package frame

import (
	"bytes"
	"net/netip"
	"testing"

	"github.com/pktengine/pktengine/proto"
)

// TestBuildDecodeRoundTrip builds every spec, decodes it and checks that
// every field comes back.
func TestBuildDecodeRoundTrip(t *testing.T) {
	for name, s := range udpSpecs() {
		t.Run(name, func(t *testing.T) {
			f := mustBuild(t, s)
			if len(f) != UDPFrameLen(s) {
				t.Fatalf("UDPFrameLen %d, built %d", UDPFrameLen(s), len(f))
			}
			var p Packet
			if r := p.Decode(f); r != ReasonOK {
				t.Fatalf("Decode = %v", r)
			}
			if r := p.VerifyChecksums(f); r != ReasonOK {
				t.Fatalf("VerifyChecksums = %v", r)
			}
			if p.Src(f) != s.Src || p.Dst(f) != s.Dst || !bytes.Equal(p.Payload(f), s.Payload) {
				t.Fatalf("%v -> %v %q", p.Src(f), p.Dst(f), p.Payload(f))
			}
			e := p.Ethernet(f)
			if e.Source() != s.SrcMAC || e.Destination() != s.DstMAC || int(p.NumVLANs) != len(s.VLANs) {
				t.Fatal("link header")
			}
			for i, v := range s.VLANs {
				if p.VLANs[i].TCI != v.TCI {
					t.Fatalf("tag %d: %+v", i, p.VLANs[i])
				}
			}
			if len(s.VLANs) == 2 && s.VLANs[0].TPID == 0 && (p.VLANs[0].TPID != proto.EtherTypeQinQ || p.VLANs[1].TPID != proto.EtherTypeVLAN) {
				t.Fatalf("default TPIDs %+v", p.VLANs)
			}
			if len(s.VLANs) == 1 && p.VLANs[0].TPID != proto.EtherTypeVLAN {
				t.Fatalf("default TPID %+v", p.VLANs)
			}
			ttl := s.TTL
			if ttl == 0 {
				ttl = DefaultTTL
			}
			if s.Src.Addr().Is4() {
				ip := p.IPv4(f)
				if ip.TTL() != ttl || ip.ID() != s.ID || ip.DontFragment() != s.DontFragment || ip.TOS() != s.TOS ||
					!bytes.Equal(ip.Options(), s.Options) || (p.Flags&FlagIPv4Options != 0) != (len(s.Options) > 0) {
					t.Fatal("IPv4 fields")
				}
				if s.NoChecksum != (p.UDP(f).Checksum() == 0) {
					t.Fatal("NoChecksum")
				}
			} else {
				ip := p.IPv6(f)
				if ip.HopLimit() != ttl || ip.TrafficClass() != s.TOS || ip.FlowLabel() != s.FlowLabel&0xfffff {
					t.Fatal("IPv6 fields")
				}
				c, r := ip.WalkExtensionHeaders()
				if r != ReasonOK || c.ExtHeaders != len(s.ExtHeaders) {
					t.Fatalf("chain %+v %v", c, r)
				}
			}
		})
	}
}

func TestBuildErrors(t *testing.T) {
	buf := make([]byte, 70000)
	ok := func() *UDPSpec { return &UDPSpec{Src: v4A, Dst: v4B, Payload: []byte("x")} }
	for _, c := range []struct {
		name string
		edit func(*UDPSpec)
		buf  []byte
		want error
	}{
		{"mixed family", func(s *UDPSpec) { s.Dst = v6B }, buf, ErrAddressFamily},
		{"zero address", func(s *UDPSpec) { s.Src = netip.AddrPort{} }, buf, ErrAddressFamily},
		{"three tags", func(s *UDPSpec) { s.VLANs = make([]VLANTag, 3) }, buf, ErrTooManyVLANs},
		{"options 3 bytes", func(s *UDPSpec) { s.Options = []byte{1, 1, 1} }, buf, ErrIPv4Options},
		{"options 44 bytes", func(s *UDPSpec) { s.Options = make([]byte, 44) }, buf, ErrIPv4Options},
		{"ipv4 too big", func(s *UDPSpec) { s.Payload = make([]byte, IPv4MaxUDPPayload+1) }, buf, ErrPayloadTooLarge},
		{"ipv4 largest", func(s *UDPSpec) { s.Payload = make([]byte, IPv4MaxUDPPayload) }, buf, nil},
		{"ipv6 too big", func(s *UDPSpec) { s.Src, s.Dst = v6A, v6B; s.Payload = make([]byte, 65535-7) }, buf, ErrPayloadTooLarge},
		{"ipv6 largest", func(s *UDPSpec) { s.Src, s.Dst = v6A, v6B; s.Payload = make([]byte, 65535-8) }, buf, nil},
		{"ext not ext", func(s *UDPSpec) {
			s.Src, s.Dst = v6A, v6B
			s.ExtHeaders = []IPv6ExtHeader{{Type: proto.IPProtoUDP}}
		}, buf, ErrExtHeaders},
		{"hbh second", func(s *UDPSpec) {
			s.Src, s.Dst = v6A, v6B
			s.ExtHeaders = []IPv6ExtHeader{{Type: proto.IPProtoDstOpts}, {Type: proto.IPProtoHopByHop}}
		}, buf, ErrExtHeaders},
		{"fragment data", func(s *UDPSpec) {
			s.Src, s.Dst = v6A, v6B
			s.ExtHeaders = []IPv6ExtHeader{{Type: proto.IPProtoFragment, Data: []byte{1}}}
		}, buf, ErrExtHeaders},
		{"ext too long", func(s *UDPSpec) {
			s.Src, s.Dst = v6A, v6B
			s.ExtHeaders = []IPv6ExtHeader{{Type: proto.IPProtoDstOpts, Data: make([]byte, 2047)}}
		}, buf, ErrExtHeaders},
		{"short buffer", func(*UDPSpec) {}, buf[:42], ErrShortBuffer},
		{"exact buffer", func(*UDPSpec) {}, buf[:43], nil},
	} {
		s := ok()
		c.edit(s)
		n, err := BuildUDP(c.buf, s)
		if err != c.want {
			t.Errorf("%s: err %v, want %v", c.name, err, c.want)
		}
		if err != nil && (n != 0 || UDPFrameLen(s) != -1 && err != ErrShortBuffer) {
			t.Errorf("%s: n %d, UDPFrameLen %d", c.name, n, UDPFrameLen(s))
		}
	}
}

// TestFragments builds every fragment of a datagram, decodes them,
// reassembles the datagram by offset and checks its UDP checksum: the
// checksum in the first fragment covers the whole datagram.
func TestFragments(t *testing.T) {
	payload := make([]byte, 1000)
	for i := range payload {
		payload[i] = byte(i*31 + 7)
	}
	for _, fam := range []struct {
		name     string
		src, dst netip.AddrPort
		ext      []IPv6ExtHeader
	}{{"v4", v4A, v4B, nil}, {"v6", v6A, v6B, nil}, {"v6+dstopts", v6A, v6B, []IPv6ExtHeader{{Type: proto.IPProtoDstOpts}}}} {
		t.Run(fam.name, func(t *testing.T) {
			s := &UDPSpec{SrcMAC: macA, DstMAC: macB, Src: fam.src, Dst: fam.dst, Payload: payload, ID: 99, ExtHeaders: fam.ext,
				VLANs: []VLANTag{{TCI: 3}}}
			whole := make([]byte, 8+len(payload))
			got := 0
			for off := 0; off < len(whole); off += 256 {
				buf := make([]byte, 512)
				n, err := BuildUDPFragment(buf, s, Fragment{Offset: off, Length: min(256, len(whole)-off), ID: 0xabcd})
				if err != nil {
					t.Fatal(err)
				}
				f := buf[:n]
				var p Packet
				r := p.Decode(f)
				switch {
				case off == 0 && r != ReasonUDPFragment, off > 0 && r != ReasonNonFirstFragment:
					t.Fatalf("offset %d: %v", off, r)
				}
				more := off+256 < len(whole)
				if p.IsFragment() != true || (p.Flags&FlagMoreFragments != 0) != more {
					t.Fatalf("offset %d flags %b", off, p.Flags)
				}
				if r := p.VerifyIPv4HeaderChecksum(f); r != ReasonOK {
					t.Fatal(r)
				}
				data := f[p.L4Off:p.End]
				if p.IPVersion == 4 {
					ip := p.IPv4(f)
					if int(ip.FragmentOffset()) != off || ip.ID() != 99 {
						t.Fatalf("ipv4 fragment offset %d id %d", ip.FragmentOffset(), ip.ID())
					}
				} else {
					c, _ := p.IPv6(f).WalkExtensionHeaders()
					if !c.HasFragment || int(c.FragmentOffset) != off || c.FragmentID != 0xabcd || c.MoreFragments != more {
						t.Fatalf("ipv6 chain %+v", c)
					}
				}
				got += copy(whole[off:], data)
			}
			if got != len(whole) {
				t.Fatalf("reassembled %d of %d", got, len(whole))
			}
			var src, dst []byte
			src, dst = fam.src.Addr().AsSlice(), fam.dst.Addr().AsSlice()
			if r := refUDPChecksumOK(fam.src.Addr().Is6(), src, dst, whole); r != ReasonOK {
				t.Fatalf("reassembled checksum: %v", r)
			}
			if !bytes.Equal(whole[8:], payload) {
				t.Fatal("reassembled payload")
			}
		})
	}
	s := &UDPSpec{Src: v4A, Dst: v4B, Payload: payload}
	buf := make([]byte, 2048)
	for _, f := range []Fragment{{Offset: 3, Length: 8}, {Offset: 0, Length: 7}, {Offset: 0, Length: 0}, {Offset: 1000, Length: 16}, {Offset: -8, Length: 8}} {
		if _, err := BuildUDPFragment(buf, s, f); err != ErrFragment {
			t.Errorf("%+v: %v", f, err)
		}
	}
	if _, err := BuildUDPFragment(buf, s, Fragment{Offset: 1000, Length: 8}); err != nil {
		t.Errorf("last fragment of odd length: %v", err)
	}
}

func TestICMPv4DestUnreachable(t *testing.T) {
	for _, orig := range [][]byte{seedRequest[14:46], mustBuild(t, udpSpecs()["v4opts/vlan0"])[14:], seedRequest[14:30]} {
		buf := make([]byte, 200)
		n, err := BuildICMPv4DestUnreachable(buf, &IPSpec{SrcMAC: macB, DstMAC: macA, Src: v4B.Addr(), Dst: v4A.Addr(), TOS: 0xc0},
			ICMPv4CodePortUnreach, orig)
		if err != nil {
			t.Fatal(err)
		}
		f := buf[:n]
		var p Packet
		if r := p.Decode(f); r != ReasonICMPv4 {
			t.Fatal(r)
		}
		m := p.ICMPv4(f)
		wantQuote := len(orig)
		if len(orig) >= 20 {
			wantQuote = IPv4(orig).HeaderLength() + 8
		}
		if m.Type() != 3 || m.Code() != 3 || !m.IsChecksumValid() || !bytes.Equal(m.Payload(), orig[:wantQuote]) ||
			p.VerifyIPv4HeaderChecksum(f) != ReasonOK || p.IPv4(f).TTL() != DefaultTTL || p.IPv4(f).TOS() != 0xc0 {
			t.Fatalf("message %x", []byte(m))
		}
	}
	if _, err := BuildICMPv4DestUnreachable(make([]byte, 40), &IPSpec{Src: v4B.Addr(), Dst: v4A.Addr()}, 3, seedRequest[14:46]); err != ErrShortBuffer {
		t.Fatal(err)
	}
}

func TestICMPv6DestUnreachable(t *testing.T) {
	for _, size := range []int{10, 1000, 1400, 9000} {
		orig := mustBuild(t, &UDPSpec{Src: v6A, Dst: v6B, Payload: make([]byte, size)})[14:]
		buf := make([]byte, 1600)
		n, err := BuildICMPv6DestUnreachable(buf, &IPSpec{SrcMAC: macB, DstMAC: macA, Src: v6B.Addr(), Dst: v6A.Addr(),
			VLANs: []VLANTag{{TCI: 9}}}, ICMPv6CodePortUnreachable, orig)
		if err != nil {
			t.Fatal(err)
		}
		f := buf[:n]
		var p Packet
		if r := p.Decode(f); r != ReasonICMPv6 {
			t.Fatal(r)
		}
		m := p.ICMPv6(f)
		q := min(len(orig), 1232)
		if m.Type() != 1 || m.Code() != 4 || !bytes.Equal(m.Payload(), orig[:q]) || len(p.Datagram(f)) > IPv6MinMTU ||
			!m.IsChecksumValid(p.IPv6(f).PseudoHeaderSum(proto.IPProtoICMPv6, uint32(len(m)))) {
			t.Fatalf("size %d: message length %d", size, len(m))
		}
		if len(orig) > 1232 && len(p.Datagram(f)) != IPv6MinMTU {
			t.Fatalf("quote should fill 1280 bytes, datagram %d", len(p.Datagram(f)))
		}
	}
	if _, err := BuildICMPv6DestUnreachable(make([]byte, 2000), &IPSpec{Src: v4B.Addr(), Dst: v6A.Addr()}, 4, nil); err != ErrAddressFamily {
		t.Fatal(err)
	}
}

func TestAnswerNeighborSolicitation(t *testing.T) {
	target := v6B.Addr()
	allNodesMAC := MAC{0x33, 0x33, 0, 0, 0, 1}
	for _, c := range []struct {
		name    string
		frame   []byte
		err     error
		dst     netip.Addr
		dstMAC  MAC
		flags   uint8
		hopEdit func([]byte)
	}{
		{"with source link address", neighborSolicitation(t, v6A.Addr(), target, true), nil, v6A.Addr(), macA, NDPFlagSolicited | NDPFlagOverride, nil},
		{"without", neighborSolicitation(t, v6A.Addr(), target, false), nil, v6A.Addr(), macA, NDPFlagSolicited | NDPFlagOverride, nil},
		{"duplicate address detection", neighborSolicitation(t, netip.Addr{}, target, false), nil, netip.MustParseAddr("ff02::1"), allNodesMAC, NDPFlagOverride, nil},
		{"dad with link address", neighborSolicitation(t, netip.Addr{}, target, true), ErrNotInPlace, netip.Addr{}, MAC{}, 0, nil},
		{"hop limit 254", neighborSolicitation(t, v6A.Addr(), target, true), ErrNotInPlace, netip.Addr{}, MAC{}, 0, func(f []byte) { f[21] = 254 }},
		{"zero-length option", neighborSolicitation(t, v6A.Addr(), target, true), ErrNotInPlace, netip.Addr{}, MAC{}, 0, func(f []byte) { f[54+25] = 0 }},
		{"multicast target", neighborSolicitation(t, v6A.Addr(), netip.MustParseAddr("ff02::2"), true), ErrNotInPlace, netip.Addr{}, MAC{}, 0, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.hopEdit != nil {
				c.hopEdit(c.frame)
			}
			var p Packet
			if r := p.Decode(c.frame); r != ReasonICMPv6 {
				t.Fatal(r)
			}
			ns := p.ICMPv6(c.frame)
			if ns.NDPTarget() != netip.MustParseAddr("ff02::2") && ns.NDPTarget() != target {
				t.Fatal("NDPTarget")
			}
			buf := make([]byte, 200)
			n, err := AnswerNeighborSolicitation(buf, c.frame, &p, macB)
			if err != c.err {
				t.Fatalf("err %v", err)
			}
			if err != nil {
				return
			}
			f := buf[:n]
			var q Packet
			if r := q.Decode(f); r != ReasonICMPv6 {
				t.Fatal(r)
			}
			ip := q.IPv6(f)
			m := q.ICMPv6(f)
			lla, ok := m.TargetLinkAddress()
			if m.Type() != ICMPv6NeighborAdvertisement || m.Code() != 0 || ip.HopLimit() != 255 || ip.Source() != target ||
				ip.Destination() != c.dst || Ethernet(f).Destination() != c.dstMAC || Ethernet(f).Source() != macB ||
				m.NDPFlags() != c.flags || m.NDPTarget() != target || !ok || lla != macB ||
				!m.IsChecksumValid(ip.PseudoHeaderSum(proto.IPProtoICMPv6, uint32(len(m)))) {
				t.Fatalf("advertisement %x", f)
			}
			if _, ok := m.SourceLinkAddress(); ok {
				t.Fatal("NA carries a source link-layer option")
			}
		})
	}
}

func TestNDPOptions(t *testing.T) {
	base := make(ICMPv6, NDPNeighborMessageLen)
	base[0] = ICMPv6NeighborSolicitation
	for _, c := range []struct {
		name  string
		opts  []byte
		valid bool
		slla  bool
		tlla  bool
	}{
		{"none", nil, true, false, false},
		{"slla", []byte{1, 1, 1, 2, 3, 4, 5, 6}, true, true, false},
		{"tlla after nonce", []byte{14, 1, 0, 0, 0, 0, 0, 0, 2, 1, 1, 2, 3, 4, 5, 6}, true, false, true},
		{"zero length", []byte{1, 0, 1, 2, 3, 4, 5, 6}, false, false, false},
		{"past end", []byte{1, 2, 1, 2, 3, 4, 5, 6}, false, false, false},
		{"one byte", []byte{1}, false, false, false},
		{"slla then garbage", []byte{1, 1, 1, 2, 3, 4, 5, 6, 9}, false, true, false},
	} {
		m := ICMPv6(append(clone(base), c.opts...))
		if m.NDPOptionsValid() != c.valid {
			t.Errorf("%s: NDPOptionsValid = %v", c.name, !c.valid)
		}
		mac, ok := m.SourceLinkAddress()
		if ok != c.slla || ok && mac != (MAC{1, 2, 3, 4, 5, 6}) {
			t.Errorf("%s: SourceLinkAddress = %v %v", c.name, mac, ok)
		}
		if _, ok := m.TargetLinkAddress(); ok != c.tlla {
			t.Errorf("%s: TargetLinkAddress = %v", c.name, ok)
		}
	}
}

func TestReplyInPlaceRefusals(t *testing.T) {
	for _, name := range []string{"v4opts/vlan0", "v6ext/vlan1"} {
		f := mustBuild(t, udpSpecs()[name])
		var p Packet
		if r := p.Decode(f); r != ReasonOK {
			t.Fatal(r)
		}
		before := clone(f)
		if _, err := ReplyInPlace(f, &p, 64); err != ErrNotInPlace || !bytes.Equal(f, before) {
			t.Fatalf("%s: %v", name, err)
		}
	}
	buf := make([]byte, 200)
	n, _ := BuildUDPFragment(buf, &UDPSpec{Src: v4A, Dst: v4B, Payload: make([]byte, 64)}, Fragment{Length: 32})
	var p Packet
	p.Decode(buf[:n])
	if _, err := ReplyInPlace(buf[:n], &p, 64); err != ErrNotInPlace {
		t.Fatal("replied to a fragment")
	}
	p.Decode(seedRequest[:20])
	if _, err := ReplyInPlace(seedRequest[:20], &p, 64); err != ErrNotInPlace {
		t.Fatal("replied to garbage")
	}
}

func TestFillUDPChecksum(t *testing.T) {
	for _, name := range []string{"v4/vlan1/odd", "v6/vlan2/1k"} {
		f := mustBuild(t, udpSpecs()[name])
		want := clone(f)
		var p Packet
		p.Decode(f)
		// What a kernel socket leaves for the NIC: the pseudo-header sum.
		u := p.UDP(f)
		u.SetChecksum(p.udpPseudoHeaderSum(f))
		if p.VerifyUDPChecksum(f) == ReasonOK {
			t.Fatal("partial checksum verified")
		}
		p.FillUDPChecksum(f)
		if !bytes.Equal(f, want) {
			t.Fatalf("%s: FillUDPChecksum gave %#x", name, u.Checksum())
		}
	}
}

func TestPadEthernet(t *testing.T) {
	buf := bytes.Repeat([]byte{0xaa}, 64)
	if n := PadEthernet(buf, 42); n != 60 || !bytes.Equal(buf[42:60], make([]byte, 18)) || buf[60] != 0xaa {
		t.Fatal("padding")
	}
	if PadEthernet(buf, 61) != 61 || PadEthernet(buf[:50], 42) != 42 {
		t.Fatal("no padding needed or possible")
	}
}

func TestReplyInPlaceGroups(t *testing.T) {
	for _, c := range []struct {
		name     string
		src, dst netip.AddrPort
		dstMAC   MAC
	}{
		{"broadcast MAC", v4A, v4B, BroadcastMAC},
		{"multicast MAC", v6A, v6B, IPv6MulticastMAC(netip.MustParseAddr("ff02::1").As16())},
		{"limited broadcast", v4A, netip.MustParseAddrPort("255.255.255.255:7"), macB},
		{"ipv4 multicast", v4A, netip.MustParseAddrPort("239.1.2.3:7"), macB},
		{"ipv4 multicast source", netip.MustParseAddrPort("224.0.0.1:9"), v4B, macB},
		{"ipv6 multicast", v6A, netip.MustParseAddrPort("[ff05::1:3]:547"), macB},
	} {
		f := mustBuild(t, &UDPSpec{SrcMAC: macA, DstMAC: c.dstMAC, Src: c.src, Dst: c.dst, Payload: []byte("x")})
		var p Packet
		if r := p.Decode(f); r != ReasonOK {
			t.Fatal(r)
		}
		before := clone(f)
		if _, err := ReplyInPlace(f, &p, 64); err != ErrNotUnicast || !bytes.Equal(f, before) {
			t.Errorf("%s: %v", c.name, err)
		}
	}
}

func TestBuildUDPPayloadInPlace(t *testing.T) {
	s := &UDPSpec{SrcMAC: macA, DstMAC: macB, Src: v6A, Dst: v6B, VLANs: []VLANTag{{TCI: 1}}}
	s.Payload = []byte("in place data")
	want := mustBuild(t, s)
	buf := make([]byte, 200)
	n := UDPFrameLen(s)
	copy(buf[n-len(s.Payload):n], s.Payload)
	s.Payload = buf[n-len(s.Payload) : n]
	if m, err := BuildUDP(buf, s); err != nil || m != n || !bytes.Equal(buf[:n], want) {
		t.Fatalf("%d %v\n got %x\nwant %x", m, err, buf[:n], want)
	}
}

// TestSetUDPPayloadLength: a request turned around in place, its data
// replaced by a longer or shorter answer, lengths set and the checksum
// filled, is byte for byte the reply BuildUDP makes from the swapped spec.
func TestSetUDPPayloadLength(t *testing.T) {
	for name, s := range udpSpecs() {
		if s.Options != nil || s.ExtHeaders != nil || s.NoChecksum {
			continue
		}
		for _, answer := range [][]byte{nil, []byte("a"), []byte("a somewhat longer answer than the question was"), make([]byte, 1400)} {
			f := make([]byte, 1600)
			n := copy(f, mustBuild(t, s))
			var p Packet
			if r := p.Decode(f[:n]); r != ReasonOK {
				t.Fatal(name, r)
			}
			if _, err := ReplyInPlace(f[:n], &p, 64); err != nil {
				t.Fatal(name, err)
			}
			copy(f[p.PayloadOff:], answer)
			n, err := p.SetUDPPayloadLength(f, len(answer))
			if err != nil {
				t.Fatal(name, err)
			}
			p.FillUDPChecksum(f[:n])
			r := *s
			r.SrcMAC, r.DstMAC, r.Src, r.Dst, r.TTL, r.Payload = s.DstMAC, s.SrcMAC, s.Dst, s.Src, 64, answer
			if want := mustBuild(t, &r); !bytes.Equal(f[:n], want) {
				t.Errorf("%s, %d-byte answer:\n got %x\nwant %x", name, len(answer), f[:n], want)
			}
			if int(p.End) != n || p.L4End != p.End {
				t.Errorf("%s: End %d L4End %d, frame %d", name, p.End, p.L4End, n)
			}
		}
	}
	f := mustBuild(t, udpSpecs()["v4/vlan0/test"])
	var p Packet
	p.Decode(f)
	if _, err := p.SetUDPPayloadLength(f, len(f)); err != ErrPayloadTooLarge {
		t.Errorf("past the buffer: %v", err)
	}
	f = mustBuild(t, udpSpecs()["v6ext/vlan0"])
	p.Decode(f)
	if _, err := p.SetUDPPayloadLength(f, 1); err != ErrNotInPlace {
		t.Errorf("with extension headers: %v", err)
	}
}
