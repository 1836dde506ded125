package frame

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/pktengine/pktengine/proto"
)

func TestMAC(t *testing.T) {
	for _, c := range []struct {
		in        string
		want      MAC
		bc, mc, z bool
	}{
		{"00:d0:b7:1f:fe:e6", seedServerMAC, false, false, false},
		{"00-05-85-88-CC-DB", seedClientMAC, false, false, false},
		{"ff:ff:ff:ff:ff:ff", BroadcastMAC, true, true, false},
		{"33:33:00:00:00:01", MAC{0x33, 0x33, 0, 0, 0, 1}, false, true, false},
		{"01:00:5e:00:00:fb", MAC{1, 0, 0x5e, 0, 0, 0xfb}, false, true, false},
		{"00:00:00:00:00:00", MAC{}, false, false, true},
	} {
		m, err := ParseMAC(c.in)
		if err != nil || m != c.want {
			t.Errorf("ParseMAC(%q) = %v, %v", c.in, m, err)
		}
		if m.IsBroadcast() != c.bc || m.IsMulticast() != c.mc || m.IsZero() != c.z {
			t.Errorf("%v: broadcast %v multicast %v zero %v", m, m.IsBroadcast(), m.IsMulticast(), m.IsZero())
		}
	}
	if s := seedServerMAC.String(); s != "00:d0:b7:1f:fe:e6" {
		t.Errorf("String = %q", s)
	}
	for _, bad := range []string{"", "00:11:22:33:44", "00:11:22:33:44:55:66:77", "zz:11:22:33:44:55"} {
		if _, err := ParseMAC(bad); err == nil {
			t.Errorf("ParseMAC(%q) accepted", bad)
		}
	}
	if got := IPv6MulticastMAC(netip.MustParseAddr("ff02::1:ff00:2").As16()); got != (MAC{0x33, 0x33, 0xff, 0, 0, 2}) {
		t.Errorf("IPv6MulticastMAC = %v", got)
	}
}

func TestEthernetVLANViews(t *testing.T) {
	f := mustBuild(t, &UDPSpec{SrcMAC: macA, DstMAC: macB, Src: v4A, Dst: v4B,
		VLANs: []VLANTag{{TCI: MakeTCI(5, true, 100)}, {TCI: MakeTCI(2, false, 4095)}}})
	e := Ethernet(f)
	if !e.IsValid() || Ethernet(f[:13]).IsValid() {
		t.Fatal("IsValid")
	}
	if e.Source() != macA || e.Destination() != macB || e.Type() != proto.EtherTypeQinQ {
		t.Fatalf("src %v dst %v type %#x", e.Source(), e.Destination(), e.Type())
	}
	outer := e.VLAN()
	if !outer.IsValid() || outer.TPID() != proto.EtherTypeQinQ || outer.ID() != 100 || outer.Type() != proto.EtherTypeVLAN {
		t.Fatalf("outer tag %#x %d %#x", outer.TPID(), outer.ID(), outer.Type())
	}
	tag := outer.Tag()
	if tag.Priority() != 5 || !tag.DropEligible() || tag.ID() != 100 {
		t.Fatalf("outer TCI %+v", tag)
	}
	inner := outer.Next()
	if inner.TPID() != proto.EtherTypeVLAN || inner.ID() != 4095 || inner.Type() != proto.EtherTypeIPv4 || inner.Tag().Priority() != 2 || inner.Tag().DropEligible() {
		t.Fatalf("inner tag %+v type %#x", inner.Tag(), inner.Type())
	}
	inner.SetTag(VLANTag{TPID: proto.EtherTypeVLAN, TCI: 42})
	inner.SetType(proto.EtherTypeIPv6)
	if inner.TCI() != 42 || inner.Type() != proto.EtherTypeIPv6 {
		t.Fatal("VLAN setters")
	}
	e.SwapAddresses()
	if e.Source() != macB || e.Destination() != macA {
		t.Fatal("SwapAddresses")
	}
	e.SetSource(seedClientMAC)
	e.SetDestination(seedServerMAC)
	e.SetType(0x1234)
	if e.Source() != seedClientMAC || e.Destination() != seedServerMAC || e.Type() != 0x1234 || len(e.Payload()) != len(f)-14 {
		t.Fatal("Ethernet setters")
	}
	if MakeTCI(7, false, 0xffff) != 0xefff || MakeTCI(0, true, 1) != 0x1001 {
		t.Fatalf("MakeTCI %#x %#x", MakeTCI(7, false, 0xffff), MakeTCI(0, true, 1))
	}
}

func TestIPv4View(t *testing.T) {
	ip := IPv4(clone(seedRequest[14:46]))
	if !ip.IsValid() || ip.Version() != 4 || ip.IHL() != 5 || ip.HeaderLength() != 20 || ip.TOS() != 0 ||
		ip.TotalLength() != 32 || ip.ID() != 0 || ip.Flags() != IPv4FlagDontFragment || !ip.DontFragment() ||
		ip.MoreFragments() || ip.FragmentOffset() != 0 || ip.IsFragment() || ip.TTL() != 62 ||
		ip.Protocol() != proto.IPProtoUDP || ip.Checksum() != 0x10d2 || !ip.IsChecksumValid() ||
		ip.Source() != seedClient.Addr() || ip.Destination() != seedServer.Addr() || len(ip.Options()) != 0 ||
		len(ip.Payload()) != 12 || ip.CalculateChecksum() != 0x10d2 {
		t.Fatalf("seed header fields wrong: %x", []byte(ip))
	}
	if ip.PseudoHeaderSum(proto.IPProtoUDP, 12) != refSum(ip[12:20], []byte{0, 17, 0, 12}) {
		t.Fatal("PseudoHeaderSum")
	}
	ip.SetFlagsFragmentOffset(IPv4FlagMoreFragments, 1480)
	if !ip.MoreFragments() || ip.DontFragment() || ip.FragmentOffset() != 1480 || !ip.IsFragment() {
		t.Fatalf("fragment fields: flags %b off %d", ip.Flags(), ip.FragmentOffset())
	}
	ip.SetFlagsFragmentOffset(0, 8)
	if ip.MoreFragments() || ip.FragmentOffset() != 8 || !ip.IsFragment() {
		t.Fatal("offset-only fragment")
	}
	ip.SetFlagsFragmentOffset(IPv4FlagDontFragment, 0)
	ip.SetTOS(0xb8)
	ip.SetID(0xbeef)
	ip.SetTTL(1)
	ip.SetProtocol(proto.IPProtoICMP)
	ip.SetSource(v4A.Addr())
	ip.SetDestination(v4B.Addr())
	ip.SetChecksum(ip.CalculateChecksum())
	if ip.TOS() != 0xb8 || ip.ID() != 0xbeef || ip.TTL() != 1 || ip.Protocol() != 1 || ip.Source() != v4A.Addr() ||
		ip.Destination() != v4B.Addr() || !ip.IsChecksumValid() {
		t.Fatal("setters")
	}
	ip.SwapAddresses()
	if ip.Source() != v4B.Addr() || ip.Destination() != v4A.Addr() || !ip.IsChecksumValid() {
		t.Fatal("SwapAddresses must keep the checksum")
	}
	for _, c := range []struct {
		name string
		fn   func(IPv4)
		want bool
	}{
		{"ok", func(IPv4) {}, true},
		{"version", func(b IPv4) { b[0] = 0x55 }, false},
		{"ihl 4", func(b IPv4) { b[0] = 0x44 }, false},
		{"ihl past", func(b IPv4) { b[0] = 0x49 }, false},
		{"ihl 6 fits", func(b IPv4) { b[0] = 0x46 }, true},
		{"total < ihl", func(b IPv4) { b.SetTotalLength(19) }, false},
		{"total past", func(b IPv4) { b.SetTotalLength(33) }, false},
		{"total short of buffer", func(b IPv4) { b.SetTotalLength(28) }, true},
	} {
		b := IPv4(clone(seedRequest[14:46]))
		c.fn(b)
		if b.IsValid() != c.want {
			t.Errorf("IsValid %s = %v", c.name, !c.want)
		}
	}
}

func TestIPv4Options(t *testing.T) {
	f := mustBuild(t, udpSpecs()["v4opts/vlan0"])
	ip := IPv4(f[14:])
	if ip.HeaderLength() != 28 || len(ip.Options()) != 8 || !ip.IsChecksumValid() {
		t.Fatalf("header length %d", ip.HeaderLength())
	}
	var types []uint8
	opts := ip.Options()
	for {
		typ, opt, rest, ok := NextIPv4Option(opts)
		if !ok {
			break
		}
		if typ == IPv4OptionRouterAlert && !bytes.Equal(opt, []byte{148, 4, 0, 0}) {
			t.Fatalf("router alert %x", opt)
		}
		types = append(types, typ)
		opts = rest
	}
	if !bytes.Equal(types, []byte{IPv4OptionRouterAlert, IPv4OptionNOP, IPv4OptionNOP, IPv4OptionNOP}) {
		t.Fatalf("options %v", types)
	}
	for _, bad := range [][]byte{{7}, {7, 1}, {7, 5, 0, 0}} {
		if _, _, _, ok := NextIPv4Option(bad); ok {
			t.Errorf("NextIPv4Option(%x) accepted", bad)
		}
	}
}

// TestIPv4Incremental checks the *Checksummed setters against a full
// recomputation on random headers: RFC 1624 equation 3 gives exactly the
// checksum a full computation does.
func TestIPv4Incremental(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for range 5000 {
		h := make(IPv4, 20)
		for i := range h {
			h[i] = byte(rng.Uint32())
		}
		h[0] = 0x45
		h.SetChecksum(h.CalculateChecksum())
		var a [4]byte
		binary.BigEndian.PutUint32(a[:], rng.Uint32())
		switch rng.IntN(5) {
		case 0:
			h.SetTTLChecksummed(uint8(rng.Uint32()))
		case 1:
			h.SetIDChecksummed(uint16(rng.Uint32()))
		case 2:
			h.SetTotalLengthChecksummed(uint16(rng.Uint32()))
		case 3:
			h.SetSourceChecksummed(netip.AddrFrom4(a))
		case 4:
			h.SetDestinationChecksummed(netip.AddrFrom4(a))
		}
		if got, want := h.Checksum(), h.CalculateChecksum(); got != want {
			t.Fatalf("incremental %#04x, full %#04x, header %x", got, want, []byte(h))
		}
		if refSum(h) != 0xffff {
			t.Fatalf("header no longer sums to all ones: %x", []byte(h))
		}
	}
}

func TestIPv6View(t *testing.T) {
	f := mustBuild(t, &UDPSpec{Src: v6A, Dst: v6B, TOS: 0xa5, FlowLabel: 0xfffff, TTL: 9, Payload: []byte("ab")})
	ip := IPv6(f[14:])
	if !ip.IsValid() || ip.Version() != 6 || ip.TrafficClass() != 0xa5 || ip.FlowLabel() != 0xfffff ||
		ip.PayloadLength() != 10 || ip.NextHeader() != proto.IPProtoUDP || ip.HopLimit() != 9 ||
		ip.Source() != v6A.Addr() || ip.Destination() != v6B.Addr() || len(ip.Payload()) != 10 {
		t.Fatalf("fields: %x", []byte(ip))
	}
	ip.SetVersionTrafficClassFlowLabel(0x01, 0x123456)
	if ip.TrafficClass() != 1 || ip.FlowLabel() != 0x23456 || ip.Version() != 6 {
		t.Fatal("first word")
	}
	ip.SetHopLimit(255)
	ip.SetNextHeader(59)
	ip.SetPayloadLength(11)
	if ip.HopLimit() != 255 || ip.NextHeader() != 59 || ip.IsValid() {
		t.Fatal("setters / IsValid past end")
	}
	ip.SwapAddresses()
	if ip.Source() != v6B.Addr() || ip.Destination() != v6A.Addr() {
		t.Fatal("SwapAddresses")
	}
	if !bytes.Equal(ip.SourceSlice(), v6B.Addr().AsSlice()) || !bytes.Equal(ip.DestinationSlice(), v6A.Addr().AsSlice()) {
		t.Fatal("slices")
	}
	if IPv6(f[14:53]).IsValid() {
		t.Fatal("39 bytes valid")
	}
}

// ext builds an IPv6 packet (no link header) with the given extension
// headers and a UDP datagram.
func ext(t *testing.T, hs ...IPv6ExtHeader) IPv6 {
	return IPv6(mustBuild(t, &UDPSpec{Src: v6A, Dst: v6B, Payload: []byte("x"), ExtHeaders: hs})[14:])
}

func TestWalkExtensionHeaders(t *testing.T) {
	hbh := IPv6ExtHeader{Type: proto.IPProtoHopByHop, Data: []byte{5, 2, 0, 0}}
	dst := IPv6ExtHeader{Type: proto.IPProtoDstOpts}
	rt := IPv6ExtHeader{Type: proto.IPProtoRouting, Data: make([]byte, 6+16)}
	ah := IPv6ExtHeader{Type: proto.IPProtoAH, Data: make([]byte, 14)} // 16 bytes, Payload Len 2
	frag := func(off uint16, more bool, id uint32) IPv6ExtHeader {
		d := make([]byte, 6)
		v := off
		if more {
			v |= 1
		}
		binary.BigEndian.PutUint16(d, v)
		binary.BigEndian.PutUint32(d[2:], id)
		return IPv6ExtHeader{Type: proto.IPProtoFragment, Data: d}
	}
	mob := IPv6ExtHeader{Type: proto.IPProtoMobility, Data: make([]byte, 6)}
	for _, c := range []struct {
		name string
		ip   IPv6
		want IPv6Chain
		r    Reason
	}{
		{"none", ext(t), IPv6Chain{Protocol: 17, Offset: 40}, ReasonOK},
		{"hbh", ext(t, hbh), IPv6Chain{Protocol: 17, Offset: 48, ExtHeaders: 1}, ReasonOK},
		{"all", ext(t, hbh, dst, rt, ah, frag(0, false, 9), dst),
			IPv6Chain{Protocol: 17, Offset: 40 + 8 + 8 + 24 + 16 + 8 + 8, ExtHeaders: 6, HasFragment: true, FragmentID: 9, HasRouting: true}, ReasonOK},
		{"first fragment", ext(t, frag(0, true, 7)), IPv6Chain{Protocol: 17, Offset: 48, ExtHeaders: 1, HasFragment: true, MoreFragments: true, FragmentID: 7}, ReasonOK},
		{"later fragment", ext(t, dst, frag(1232, true, 7)), IPv6Chain{Protocol: 17, Offset: 56, ExtHeaders: 2, HasFragment: true, MoreFragments: true, FragmentOffset: 1232, FragmentID: 7}, ReasonNonFirstFragment},
		{"mobility", ext(t, mob), IPv6Chain{Protocol: 17, Offset: 48, ExtHeaders: 1}, ReasonOK},
		{"esp stops", edit(ext(t, dst), func(b []byte) []byte { b[40] = proto.IPProtoESP; return b }),
			IPv6Chain{Protocol: proto.IPProtoESP, Offset: 48, ExtHeaders: 1}, ReasonOK},
		{"no next header", edit(ext(t), func(b []byte) []byte { b[6] = proto.IPProtoNoNext; return b }),
			IPv6Chain{Protocol: proto.IPProtoNoNext, Offset: 40}, ReasonOK},
		{"hbh second", ext(t, dst, IPv6ExtHeader{Type: proto.IPProtoDstOpts}), IPv6Chain{Protocol: 17, Offset: 56, ExtHeaders: 2}, ReasonOK},
		{"truncated", edit(ext(t, dst), func(b []byte) []byte { b[41] = 2; return b }), IPv6Chain{Protocol: proto.IPProtoDstOpts, Offset: 40}, ReasonIPv6ExtHeaderTruncated},
		{"too many", ext(t, dst, dst, dst, dst, dst, dst, dst, dst, dst), IPv6Chain{Protocol: proto.IPProtoDstOpts, Offset: 40 + 8*8, ExtHeaders: 8}, ReasonIPv6TooManyExtHeaders},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, r := c.ip.WalkExtensionHeaders()
			if r != c.r || got != c.want {
				t.Fatalf("got %+v %v\nwant %+v %v", got, r, c.want, c.r)
			}
		})
	}
	// A Hop-by-Hop header after another extension header.
	ip := ext(t, dst, dst)
	ip[40] = proto.IPProtoHopByHop
	if _, r := ip.WalkExtensionHeaders(); r != ReasonIPv6HopByHopNotFirst {
		t.Fatalf("hbh not first: %v", r)
	}
	if f := IPv6Fragment(ext(t, frag(8, true, 0xdeadbeef))[40:]); f.NextHeader() != 17 || f.FragmentOffset() != 8 || !f.MoreFragments() || f.ID() != 0xdeadbeef {
		t.Fatalf("fragment view")
	}
}

func TestUDPView(t *testing.T) {
	u := UDP(clone(seedRequest[34:46]))
	if !u.IsValid() || u.SourcePort() != 32787 || u.DestinationPort() != 7 || u.Length() != 12 || u.Checksum() != 0xac26 ||
		string(u.Payload()) != "TEST" {
		t.Fatalf("seed UDP fields: %x", []byte(u))
	}
	pseudo := IPv4(seedRequest[14:]).PseudoHeaderSum(proto.IPProtoUDP, 12)
	if !u.IsChecksumValid(pseudo) || u.CalculateChecksum(pseudo) != 0xac26 {
		t.Fatalf("checksum %#x", u.CalculateChecksum(pseudo))
	}
	u.SwapPorts()
	if u.SourcePort() != 7 || u.DestinationPort() != 32787 || !u.IsChecksumValid(pseudo) {
		t.Fatal("SwapPorts")
	}
	u.SetSourcePortChecksummed(53)
	u.SetDestinationPortChecksummed(65535)
	if !u.IsChecksumValid(pseudo) || u.CalculateChecksum(pseudo) != u.Checksum() {
		t.Fatal("port updates")
	}
	u.SetChecksum(0)
	u.SetSourcePortChecksummed(54)
	if u.Checksum() != 0 {
		t.Fatal("a zero (absent) checksum must stay zero")
	}
	u.SetLength(10)
	if string(u.Payload()) != "TE" || !u.IsValid() {
		t.Fatal("Length bounds Payload")
	}
	u.SetLength(13)
	if u.IsValid() || string(u.Payload()) != "TEST" {
		t.Fatal("Length past the view")
	}
	u.SetLength(7)
	if u.IsValid() || u.Payload() != nil {
		t.Fatal("Length below 8")
	}
	if UDP(make([]byte, 7)).IsValid() {
		t.Fatal("7 bytes")
	}
}

// TestTemplateRewrite is the load generator's case: a template frame whose
// source and destination are changed per packet must be byte for byte the
// frame BuildUDP makes for the new addresses.
func TestTemplateRewrite(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for range 2000 {
		s := randomSpec(rng)
		s.TTL |= 1
		tmpl := mustBuild(t, s)
		var p Packet
		if r := p.Decode(tmpl); r != ReasonOK {
			t.Fatalf("template: %v", r)
		}
		n := randomSpec(rng)
		if n.Src.Addr().Is4() != s.Src.Addr().Is4() {
			continue
		}
		s2 := *s
		s2.Src, s2.Dst = n.Src, n.Dst
		if rng.IntN(4) == 0 {
			s2.Src = netip.AddrPortFrom(s.Src.Addr(), n.Src.Port()) // port only
		}
		p.SetSrcChecksummed(tmpl, s2.Src)
		p.SetDstChecksummed(tmpl, s2.Dst)
		want := mustBuild(t, &s2)
		if !bytes.Equal(tmpl, want) {
			t.Fatalf("rewritten template\n got %x\nwant %x", tmpl, want)
		}
	}
}

func TestARPView(t *testing.T) {
	buf := make([]byte, 64)
	n, err := BuildARP(buf, &ARPSpec{Op: ARPRequest, SenderMAC: macA, SenderIP: v4A.Addr(), TargetIP: v4B.Addr(),
		VLANs: []VLANTag{{TCI: 5}}})
	if err != nil || n != 46 {
		t.Fatal(n, err)
	}
	f := buf[:n]
	var p Packet
	if r := p.Decode(f); r != ReasonARP {
		t.Fatal(r)
	}
	a := p.ARP(f)
	if !a.IsValid() || a.HardwareType() != 1 || a.ProtocolType() != 0x0800 || a.Op() != ARPRequest ||
		a.SenderMAC() != macA || a.SenderIP() != v4A.Addr() || a.TargetMAC() != (MAC{}) || a.TargetIP() != v4B.Addr() ||
		a.IsGratuitous() || Ethernet(f).Destination() != BroadcastMAC {
		t.Fatalf("request fields %x", []byte(a))
	}
	m, err := ARPReplyInPlace(f, &p, macB)
	if err != nil || m != n {
		t.Fatal(m, err)
	}
	a = p.ARP(f)
	if a.Op() != ARPReply || a.SenderMAC() != macB || a.SenderIP() != v4B.Addr() || a.TargetMAC() != macA ||
		a.TargetIP() != v4A.Addr() || Ethernet(f).Destination() != macA || Ethernet(f).Source() != macB ||
		VLAN(f[12:]).ID() != 5 {
		t.Fatalf("reply fields %x", f)
	}
	// The reply is what BuildARP makes for a reply.
	want := make([]byte, 64)
	wn, _ := BuildARP(want, &ARPSpec{Op: ARPReply, SenderMAC: macB, SenderIP: v4B.Addr(), TargetMAC: macA, TargetIP: v4A.Addr(),
		VLANs: []VLANTag{{TCI: 5}}})
	if !bytes.Equal(f, want[:wn]) {
		t.Fatalf("ARPReplyInPlace\n got %x\nwant %x", f, want[:wn])
	}
	if _, err := ARPReplyInPlace(f, &p, macB); err != ErrNotInPlace {
		t.Fatal("answering a reply")
	}
	a.SetTargetIP(v4B.Addr())
	if !a.IsGratuitous() {
		t.Fatal("IsGratuitous")
	}
	if _, err := BuildARP(buf, &ARPSpec{SenderIP: v6A.Addr(), TargetIP: v4A.Addr()}); err != ErrAddressFamily {
		t.Fatal(err)
	}
}

func TestICMPv4EchoReply(t *testing.T) {
	// An echo request built by hand: type 8, id 0x1234, seq 1, "ping".
	f := mustBuild(t, &UDPSpec{SrcMAC: macA, DstMAC: macB, Src: v4A, Dst: v4B, Payload: []byte("ping")})
	ip := IPv4(f[14:])
	ip.SetProtocol(proto.IPProtoICMP)
	ip.SetChecksum(ip.CalculateChecksum())
	m := ICMPv4(f[34:])
	m.SetType(ICMPv4Echo)
	m.SetCode(0)
	m.SetIdent(0x1234)
	m.SetSequence(1)
	m.SetChecksum(m.CalculateChecksum())
	var p Packet
	if r := p.Decode(f); r != ReasonICMPv4 {
		t.Fatal(r)
	}
	if !m.IsValid() || !m.IsChecksumValid() || m.Ident() != 0x1234 || m.Sequence() != 1 || string(m.Payload()) != "ping" {
		t.Fatal("echo fields")
	}
	n, err := ICMPv4EchoReplyInPlace(f, &p, 0)
	if err != nil || n != len(f) {
		t.Fatal(n, err)
	}
	if m.Type() != ICMPv4EchoReply || !m.IsChecksumValid() || !ip.IsChecksumValid() || ip.TTL() != DefaultTTL ||
		ip.Source() != v4B.Addr() || m.CalculateChecksum() != m.Checksum() {
		t.Fatal("echo reply")
	}
	if _, err := ICMPv4EchoReplyInPlace(f, &p, 0); err != ErrNotInPlace {
		t.Fatal("answered a reply")
	}
}

func TestICMPv6EchoReply(t *testing.T) {
	f := mustBuild(t, &UDPSpec{SrcMAC: macA, DstMAC: macB, Src: v6A, Dst: v6B, Payload: []byte("ping")})
	ip := IPv6(f[14:])
	ip.SetNextHeader(proto.IPProtoICMPv6)
	m := ICMPv6(f[54:])
	m.SetType(ICMPv6EchoRequest)
	m.SetCode(0)
	pseudo := ip.PseudoHeaderSum(proto.IPProtoICMPv6, uint32(len(m)))
	m.SetChecksum(m.CalculateChecksum(pseudo))
	var p Packet
	if r := p.Decode(f); r != ReasonICMPv6 {
		t.Fatal(r)
	}
	if _, err := ICMPv6EchoReplyInPlace(f, &p, 50); err != nil {
		t.Fatal(err)
	}
	pseudo = ip.PseudoHeaderSum(proto.IPProtoICMPv6, uint32(len(m)))
	if m.Type() != ICMPv6EchoReply || !m.IsChecksumValid(pseudo) || ip.HopLimit() != 50 || ip.Source() != v6B.Addr() ||
		m.Ident() != binary.BigEndian.Uint16(f[58:]) || m.Sequence() != binary.BigEndian.Uint16(f[60:]) {
		t.Fatal("echo reply")
	}
}

func TestInsertRemoveVLANTag(t *testing.T) {
	plain := clone(seedReply)
	buf := make([]byte, 100)
	copy(buf, plain)
	n, err := InsertVLANTag(buf, len(plain), VLANTag{TCI: MakeTCI(1, false, 300)})
	if err != nil {
		t.Fatal(err)
	}
	n, err = InsertVLANTag(buf, n, VLANTag{TPID: proto.EtherTypeQinQ, TCI: 20})
	if err != nil {
		t.Fatal(err)
	}
	want := mustBuild(t, &UDPSpec{SrcMAC: seedServerMAC, DstMAC: seedClientMAC, Src: seedServer, Dst: seedClient,
		TTL: 64, DontFragment: true, Payload: []byte("TEST"), VLANs: []VLANTag{{TCI: 20}, {TCI: MakeTCI(1, false, 300)}}})
	if !bytes.Equal(buf[:n], want) {
		t.Fatalf("tagged\n got %x\nwant %x", buf[:n], want)
	}
	f := buf[:n]
	f, tag, ok := RemoveVLANTag(f)
	if !ok || tag != (VLANTag{TPID: proto.EtherTypeQinQ, TCI: 20}) {
		t.Fatalf("outer tag %+v", tag)
	}
	f, tag, ok = RemoveVLANTag(f)
	if !ok || tag.ID() != 300 || !bytes.Equal(f, plain) {
		t.Fatalf("untagged %x", f)
	}
	if _, _, ok := RemoveVLANTag(f); ok {
		t.Fatal("removed a tag from an untagged frame")
	}
	if _, err := InsertVLANTag(make([]byte, 47), 46, VLANTag{}); err != ErrShortBuffer {
		t.Fatal(err)
	}
}
