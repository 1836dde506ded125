package frame

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/pktengine/pktengine/proto"
)

// icmpErrorFrame builds the datagram s describes and an ICMP error of
// type and code with word quoting it, sent back to s's source, and
// returns the error frame.
func icmpErrorFrame(t testing.TB, s *UDPSpec, typ, code uint8, word uint32) []byte {
	t.Helper()
	dg := mustBuild(t, s)
	var p Packet
	p.Decode(dg)
	orig := p.Datagram(dg)
	if p.IsFragment() {
		orig = dg[p.L3Off:p.End]
	}
	spec := &IPSpec{SrcMAC: s.DstMAC, DstMAC: s.SrcMAC, Src: s.Dst.Addr(), Dst: s.Src.Addr()}
	buf := make([]byte, 2048)
	var n int
	var err error
	if s.Src.Addr().Is4() {
		n, err = BuildICMPv4Error(buf, spec, typ, code, word, orig)
	} else {
		n, err = BuildICMPv6Error(buf, spec, typ, code, word, orig)
	}
	if err != nil {
		t.Fatal(err)
	}
	return buf[:n]
}

// parseErrorFrame decodes an error frame and parses its message.
func parseErrorFrame(t testing.TB, f []byte) (UDPError, error) {
	t.Helper()
	var p Packet
	switch r := p.Decode(f); r {
	case ReasonICMPv4:
		if !p.ICMPv4(f).IsChecksumValid() {
			t.Fatal("ICMPv4 checksum")
		}
		return ParseICMPv4Error(p.ICMPv4(f))
	case ReasonICMPv6:
		if !p.ICMPv6(f).IsChecksumValid(p.IPv6(f).PseudoHeaderSum(proto.IPProtoICMPv6, p.L4End-p.L4Off)) {
			t.Fatal("ICMPv6 checksum")
		}
		return ParseICMPv6Error(p.ICMPv6(f))
	default:
		t.Fatalf("error frame decodes as %v", r)
	}
	return UDPError{}, nil
}

// TestParseICMPError parses the errors of every type and code quoting
// datagrams of both families, with options and extension headers, and
// checks what a socket would be told.
func TestParseICMPError(t *testing.T) {
	v4opts := &UDPSpec{SrcMAC: macA, DstMAC: macB, Src: v4A, Dst: v4B, Payload: []byte("hello"), Options: []byte{IPv4OptionRouterAlert, 4, 0, 0}}
	v6ext := &UDPSpec{SrcMAC: macA, DstMAC: macB, Src: v6A, Dst: v6B, Payload: []byte("hello"),
		ExtHeaders: []IPv6ExtHeader{{Type: proto.IPProtoHopByHop, Data: make([]byte, 6)}, {Type: proto.IPProtoDstOpts, Data: make([]byte, 14)},
			{Type: proto.IPProtoFragment, Data: []byte{0, 0, 0, 0, 0, 1}}}} // an atomic fragment
	for _, c := range []struct {
		s          *UDPSpec
		typ, code  uint8
		word, info uint32
		errno      Errno
		fatal      bool
	}{
		{v4opts, ICMPv4DestUnreachable, ICMPv4CodePortUnreach, 0, 0, ECONNREFUSED, true},
		{v4opts, ICMPv4DestUnreachable, ICMPv4CodeNetUnreachable, 0, 0, ENETUNREACH, false},
		{v4opts, ICMPv4DestUnreachable, ICMPv4CodeHostUnreach, 0, 0, EHOSTUNREACH, false},
		{v4opts, ICMPv4DestUnreachable, ICMPv4CodeProtoUnreach, 0, 0, ENOPROTOOPT, true},
		{v4opts, ICMPv4DestUnreachable, ICMPv4CodeFragNeeded, 1400, 1400, EMSGSIZE, true},
		{v4opts, ICMPv4DestUnreachable, ICMPv4CodeSourceRouteFailed, 0, 0, EOPNOTSUPP, false},
		{v4opts, ICMPv4DestUnreachable, ICMPv4CodeHostUnknown, 0, 0, EHOSTDOWN, true},
		{v4opts, ICMPv4DestUnreachable, ICMPv4CodeHostIsolated, 0, 0, ENONET, true},
		{v4opts, ICMPv4DestUnreachable, ICMPv4CodeAdminProhibit, 0, 0, EHOSTUNREACH, true},
		{v4opts, ICMPv4DestUnreachable, ICMPv4CodeNetUnreachTOS, 0, 0, ENETUNREACH, false},
		{v4opts, ICMPv4TimeExceeded, ICMPv4CodeTTLExceeded, 0, 0, EHOSTUNREACH, false},
		{v4opts, ICMPv4TimeExceeded, 2, 0, 0, EHOSTUNREACH, false},
		{v4opts, ICMPv4ParameterProblem, 0, 21 << 24, 21, EPROTO, true},
		{v6ext, ICMPv6DestUnreachable, ICMPv6CodePortUnreachable, 0, 0, ECONNREFUSED, true},
		{v6ext, ICMPv6DestUnreachable, ICMPv6CodeNoRoute, 0, 0, ENETUNREACH, false},
		{v6ext, ICMPv6DestUnreachable, ICMPv6CodeAdminProhibited, 0, 0, EACCES, true},
		{v6ext, ICMPv6DestUnreachable, ICMPv6CodeAddrUnreachable, 0, 0, EHOSTUNREACH, false},
		{v6ext, ICMPv6DestUnreachable, ICMPv6CodeRejectRoute, 0, 0, EACCES, true},
		{v6ext, ICMPv6DestUnreachable, 7, 0, 0, EPROTO, true},
		{v6ext, ICMPv6PacketTooBig, 0, 1280, 1280, EMSGSIZE, true},
		{v6ext, ICMPv6TimeExceeded, ICMPv6CodeFragReassemblyTime, 0, 0, EHOSTUNREACH, false},
		{v6ext, ICMPv6ParameterProblem, ICMPv6CodeUnrecognizedNext, 6, 6, EPROTO, true},
		{v6ext, 100, 0, 0, 0, EPROTO, false}, // an error type Linux does not know
	} {
		f := icmpErrorFrame(t, c.s, c.typ, c.code, c.word)
		e, err := parseErrorFrame(t, f)
		if err != nil {
			t.Errorf("type %d code %d: %v", c.typ, c.code, err)
			continue
		}
		if e.Type != c.typ || e.Code != c.code || e.Info != c.info || e.Errno != c.errno || e.Fatal != c.fatal ||
			e.Src != c.s.Src || e.Dst != c.s.Dst {
			t.Errorf("type %d code %d: %+v", c.typ, c.code, e)
		}
		var p Packet
		p.Decode(f)
		if !bytes.Equal(e.Quote, f[p.L4Off+ICMPHeaderLen:p.L4End]) {
			t.Errorf("type %d code %d: quote %x", c.typ, c.code, e.Quote)
		}
	}
}

// TestParseICMPErrorRefusals: messages that are not errors a socket
// receives, and quotes that are too short or of something else.
func TestParseICMPErrorRefusals(t *testing.T) {
	s4 := &UDPSpec{Src: v4A, Dst: v4B, Payload: make([]byte, 100)}
	s6 := &UDPSpec{Src: v6A, Dst: v6B, Payload: make([]byte, 100)}
	m4 := func(typ, code uint8) ICMPv4 {
		f := icmpErrorFrame(t, s4, typ, code, 0)
		return ICMPv4(f[34:])
	}
	m6 := func(typ, code uint8) ICMPv6 {
		f := icmpErrorFrame(t, s6, typ, code, 0)
		return ICMPv6(f[54:])
	}
	for name, c := range map[string]struct {
		m   ICMPv4
		err error
	}{
		"echo reply":         {m4(ICMPv4EchoReply, 0), ErrNotICMPError},
		"source quench":      {m4(ICMPv4SourceQuench, 0), ErrNotICMPError},
		"redirect":           {m4(ICMPv4Redirect, 1), ErrNotICMPError},
		"reassembly timeout": {m4(ICMPv4TimeExceeded, ICMPv4CodeFragReassemblyTime), ErrNotICMPError},
		"unreach code 16":    {m4(ICMPv4DestUnreachable, 16), ErrICMPUnknownCode},
		"short message":      {m4(ICMPv4DestUnreachable, 3)[:7], ErrNotICMPError},
		"no quote":           {m4(ICMPv4DestUnreachable, 3)[:8], ErrQuoteTruncated},
		"half a header":      {m4(ICMPv4DestUnreachable, 3)[:8+19], ErrQuoteTruncated},
		"udp header cut":     {m4(ICMPv4DestUnreachable, 3)[:8+27], ErrQuoteTruncated},
		"ihl 4":              {with(m4(ICMPv4DestUnreachable, 3), 8, 0x44), ErrQuoteTruncated},
		"ihl past the quote": {with(m4(ICMPv4DestUnreachable, 3), 8, 0x47), ErrQuoteTruncated},
		"version 6":          {with(m4(ICMPv4DestUnreachable, 3), 8, 0x65), ErrQuoteBadIPVersion},
		"tcp":                {with(m4(ICMPv4DestUnreachable, 3), 8+9, 6), ErrQuoteNotUDP},
		"later fragment":     {with(m4(ICMPv4DestUnreachable, 3), 8+7, 1), ErrQuoteNotUDP},
	} {
		if _, err := ParseICMPv4Error(c.m); err != c.err {
			t.Errorf("%s: %v, want %v", name, err, c.err)
		}
	}
	// A first fragment's quote is fine.
	if _, err := ParseICMPv4Error(with(m4(ICMPv4DestUnreachable, 3), 8+6, 0x20)); err != nil {
		t.Errorf("first fragment: %v", err)
	}
	frag := func(off uint16) ICMPv6 {
		s := *s6
		s.ExtHeaders = []IPv6ExtHeader{{Type: proto.IPProtoFragment, Data: []byte{byte(off >> 8), byte(off), 0, 0, 0, 1}}}
		f := icmpErrorFrame(t, &s, ICMPv6DestUnreachable, 4, 0)
		return ICMPv6(f[54:])
	}
	for name, c := range map[string]struct {
		m   ICMPv6
		err error
	}{
		"echo request":    {m6(ICMPv6EchoRequest, 0), ErrNotICMPError},
		"neighbor advert": {m6(ICMPv6NeighborAdvertisement, 0), ErrNotICMPError},
		"short message":   {m6(1, 4)[:7], ErrNotICMPError},
		"half a header":   {m6(1, 4)[:8+39], ErrQuoteTruncated},
		"udp header cut":  {m6(1, 4)[:8+47], ErrQuoteTruncated},
		"version 4":       {with(m6(1, 4), 8, 0x45), ErrQuoteBadIPVersion},
		"tcp":             {with(m6(1, 4), 8+6, 6), ErrQuoteNotUDP},
		"ext header cut":  {frag(0)[:8+40+4], ErrQuoteTruncated},
		"first fragment":  {frag(0), nil},
		"later fragment":  {frag(8), ErrQuoteNotUDP},
	} {
		if _, err := ParseICMPv6Error(c.m); err != c.err {
			t.Errorf("%s: %v, want %v", name, err, c.err)
		}
	}
}

// with returns a copy of b with b[i] = v.
func with[T ~[]byte](b T, i int, v byte) T {
	c := bytes.Clone(b)
	c[i] = v
	return c
}

// TestICMPErrorGopacket compares what the parsers read from random
// errors about random datagrams with what gopacket decodes from them.
func TestICMPErrorGopacket(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for range 500 {
		s := randomSpec(rng)
		s.ExtHeaders = nil
		var typ, code uint8
		if s.Src.Addr().Is4() {
			typ = []uint8{3, 11, 12}[rng.IntN(3)]
			code = uint8(rng.IntN(16))
			if typ == ICMPv4TimeExceeded {
				code = 0
			}
		} else {
			typ = uint8(1 + rng.IntN(4))
			code = uint8(rng.IntN(8))
		}
		f := icmpErrorFrame(t, s, typ, code, rng.Uint32())
		e, err := parseErrorFrame(t, f)
		if err != nil {
			t.Fatalf("type %d code %d: %v", typ, code, err)
		}
		pkt := gopacket.NewPacket(f, layers.LayerTypeEthernet, gopacket.Default)
		var inner gopacket.Packet
		if l, ok := pkt.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4); ok {
			if l.TypeCode.Type() != typ || l.TypeCode.Code() != code {
				t.Fatalf("gopacket reads type %v", l.TypeCode)
			}
			inner = gopacket.NewPacket(l.Payload, layers.LayerTypeIPv4, gopacket.Default)
		} else if l, ok := pkt.Layer(layers.LayerTypeICMPv6).(*layers.ICMPv6); ok {
			if l.TypeCode.Type() != typ || l.TypeCode.Code() != code {
				t.Fatalf("gopacket reads type %v", l.TypeCode)
			}
			// gopacket keeps the 4-byte word in the ICMPv6 layer's
			// Payload for errors.
			inner = gopacket.NewPacket(l.Payload[4:], layers.LayerTypeIPv6, gopacket.Default)
		} else {
			t.Fatalf("gopacket finds no ICMP: %v", pkt)
		}
		u, _ := inner.Layer(layers.LayerTypeUDP).(*layers.UDP)
		if u == nil {
			t.Fatalf("gopacket finds no UDP in the quote: %v", inner)
		}
		src, dst := inner.NetworkLayer().NetworkFlow().Endpoints()
		if e.Src.Port() != uint16(u.SrcPort) || e.Dst.Port() != uint16(u.DstPort) ||
			e.Src.Addr().String() != src.String() || e.Dst.Addr().String() != dst.String() {
			t.Fatalf("parsed %v -> %v, gopacket %v:%d -> %v:%d", e.Src, e.Dst, src, u.SrcPort, dst, u.DstPort)
		}
	}
}

// FuzzParseICMPError: arbitrary messages never panic, and what is
// accepted is consistent: a quote within the message whose ports are at
// the offsets the headers give.
func FuzzParseICMPError(f *testing.F) {
	f.Add([]byte{3, 3, 0, 0, 0, 0, 0, 0, 0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 0, 2, 0, 8, 0, 0}, false)
	f.Add(append([]byte{1, 4, 0, 0, 0, 0, 0, 0, 0x60, 0, 0, 0, 0, 8, 17, 64}, make([]byte, 40)...), true)
	f.Fuzz(func(t *testing.T, b []byte, v6 bool) {
		var e UDPError
		var err error
		if v6 {
			e, err = ParseICMPv6Error(ICMPv6(b))
		} else {
			e, err = ParseICMPv4Error(ICMPv4(b))
		}
		if err != nil {
			return
		}
		if len(e.Quote) != len(b)-ICMPHeaderLen || e.Type != b[0] || e.Code != b[1] {
			t.Fatalf("%+v", e)
		}
		var l4 int
		if v6 {
			var ok bool
			if l4, ok = refQuoteUDP(e.Quote); !ok {
				t.Fatalf("accepted a quote with no UDP header to find: %+v", e)
			}
		} else {
			l4 = IPv4(e.Quote).HeaderLength()
		}
		if l4+8 > len(e.Quote) || UDP(e.Quote[l4:]).SourcePort() != e.Src.Port() || UDP(e.Quote[l4:]).DestinationPort() != e.Dst.Port() {
			t.Fatalf("ports %v %v at %d", e.Src, e.Dst, l4)
		}
		if _, _, ok := map[bool]func(uint8, uint8) (Errno, bool, bool){false: ICMPv4ErrorErrno, true: ICMPv6ErrorErrno}[v6](b[0], b[1]); !ok {
			t.Fatal("accepted a message the errno table refuses")
		}
	})
}

// TestICMPErrorAllocs: parsing does not allocate.
func TestICMPErrorAllocs(t *testing.T) {
	f4 := icmpErrorFrame(t, &UDPSpec{Src: v4A, Dst: v4B}, 3, 3, 0)
	f6 := icmpErrorFrame(t, &UDPSpec{Src: v6A, Dst: v6B}, 1, 4, 0)
	var sink UDPError
	if n := testing.AllocsPerRun(100, func() {
		sink, _ = ParseICMPv4Error(ICMPv4(f4[34:]))
		sink, _ = ParseICMPv6Error(ICMPv6(f6[54:]))
	}); n != 0 {
		t.Errorf("%v allocations", n)
	}
	_ = sink
}

// TestErrnoText: the wording and numbers are Linux's.
func TestErrnoText(t *testing.T) {
	if ECONNREFUSED.Error() != "connection refused" || EHOSTUNREACH.Error() != "no route to host" || Errno(999).Error() != "errno 999" {
		t.Error(ECONNREFUSED.Error(), EHOSTUNREACH.Error())
	}
}

// refQuoteUDP finds the UDP header in the IPv6 packet an ICMPv6 error
// quotes as Linux's ipv6_skip_exthdr does: extension headers are skipped
// by their length fields alone, since a quote's options and header order
// were the original sender's to get right (so not WalkExtensionHeaders,
// which checks both, as a receiver must); at most eight of them, and a
// fragment other than the first holds no UDP header.
func refQuoteUDP(q []byte) (int, bool) {
	next, at := int(q[6]), 40
	for count := 0; next != 17; count++ {
		if !isExt(next) || count == 8 || at+2 > len(q) {
			return 0, false
		}
		size := 8 * (int(q[at+1]) + 1)
		switch next {
		case 44:
			if at+8 > len(q) || word(q, at+2)&^7 != 0 {
				return 0, false
			}
			size = 8
		case 51:
			size = 4 * (int(q[at+1]) + 2)
		}
		next, at = int(q[at]), at+size
	}
	return at, at+8 <= len(q)
}
