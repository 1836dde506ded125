package engine

import (
	"errors"
	"net/netip"
	"testing"

	xbpf "golang.org/x/net/bpf"

	"github.com/pktengine/pktengine/bpf"
	"github.com/pktengine/pktengine/frame"
	"github.com/pktengine/pktengine/proto"
	"github.com/pktengine/pktengine/ring"
)

// runFilter runs the engine's filter (without the packet-type test,
// which x/net/bpf's VM lacks) over f.
func runFilter(t *testing.T, expr string, f []byte) bool {
	t.Helper()
	addrs, err := newAddrSet(testAddrs)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := buildFilter(addrs, expr, 0, false)
	if err != nil {
		t.Fatal(err)
	}
	prog, ok := xbpf.Disassemble(raw)
	if !ok {
		t.Fatal("filter does not disassemble")
	}
	vm, err := xbpf.NewVM(prog)
	if err != nil {
		t.Fatal(err)
	}
	n, err := vm.Run(f)
	if err != nil {
		t.Fatal(err)
	}
	return n > 0
}

// tagged inserts an 802.1Q priority tag (VLAN ID 0, which the engine
// serves as untagged by default) into f, as a backend that leaves tags in
// the frame hands it over.
func tagged(f []byte) []byte {
	out := append([]byte{}, f[:12]...)
	out = append(out, 0x81, 0x00, 0x60, 0x00)
	return append(out, f[12:]...)
}

// TestFilter checks what the engine puts in the filter's spec: its
// addresses, which it owns, its prefixes' broadcasts, the expression and
// the packet-type test. bpf's tests cover the program itself.
func TestFilter(t *testing.T) {
	udp := func(src, dst netip.Addr, port uint16) []byte {
		return udpFrame(t, ap(src, 40000), ap(dst, port), []byte("x"))
	}
	for _, tc := range []struct {
		name string
		f    []byte
		want bool
	}{
		{"udp owned4", udp(peer4, owned4, 7), true},
		{"udp shared6", udp(peer6, shared6, 9), true},
		{"udp other4", udp(peer4, netip.MustParseAddr("198.18.0.99"), 7), false},
		{"udp directed broadcast", udp(peer4, bcast4, 7), true},
		{"arp for shared", arpRequest(t, peer4, shared4), true},
		{"ns for owned", neighborSolicitation(t, peer6, owned6), true},
		{"ns for shared", neighborSolicitation(t, peer6, shared6), false},
		{"ping owned6", echoRequest(t, peer6, owned6), true},
		{"ping shared4", echoRequest(t, peer4, shared4), false},
	} {
		if got := runFilter(t, "", tc.f); got != tc.want {
			t.Errorf("%s: accepted %v, want %v", tc.name, got, tc.want)
		}
	}
	if runFilter(t, "src host 198.18.0.3", udp(peer4, owned4, 7)) {
		t.Error("the expression does not narrow UDP")
	}

	// A /31 has no broadcast address (RFC 3021).
	p31, err := newAddrSet([]AddrInfo{{Prefix: netip.MustParsePrefix("198.18.5.0/31"), Owned: true}})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := buildFilter(p31, "", 0, false)
	if err != nil {
		t.Fatal(err)
	}
	prog, _ := xbpf.Disassemble(raw)
	vm, err := xbpf.NewVM(prog)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := vm.Run(udp(peer4, netip.MustParseAddr("198.18.5.1"), 7)); n != 0 {
		t.Error("a /31's other address passes as a broadcast")
	}

	addrs, _ := newAddrSet(testAddrs)
	_, err = buildFilter(addrs, "udp port", 0, true)
	if se := (*bpf.SyntaxError)(nil); !errors.As(err, &se) || err.Error() != `engine: filter "udp port": `+se.Error() {
		t.Errorf("a bad expression: %v, want the engine, the expression and bpf's syntax error", err)
	}
	raw, err = buildFilter(addrs, "udp", 0, true)
	if err != nil {
		t.Fatal(err)
	}
	prog, _ = xbpf.Disassemble(raw)
	if ext, ok := prog[0].(xbpf.LoadExtension); !ok || ext.Num != xbpf.ExtType {
		t.Errorf("the filter does not start by rejecting outgoing frames: %v", prog[0])
	}
}

// TestFilterIPv6ExtHeaders runs IPv6 frames with extension headers
// through the filter and, when it passes them, through the worker: the
// filter walks Hop-by-Hop, Routing and Destination Options headers to
// UDP or a Fragment header, and Decode then gives each frame its one
// outcome.
func TestFilterIPv6ExtHeaders(t *testing.T) {
	type ext = frame.IPv6ExtHeader
	hbh := ext{Type: proto.IPProtoHopByHop}
	dst := ext{Type: proto.IPProtoDstOpts, Data: []byte{frame.IPv6OptionPadN, 4, 0, 0, 0, 0}}
	rt := ext{Type: proto.IPProtoRouting, Data: make([]byte, 6)} // type 0, segments left 0
	ah := ext{Type: proto.IPProtoAH, Data: make([]byte, 10)}
	build := func(to netip.Addr, hs ...ext) []byte {
		return udpFrame(t, ap(peer6, 40000), ap(to, 7), []byte("behind extension headers"),
			func(s *frame.UDPSpec) { s.ExtHeaders = hs })
	}
	// upper rewrites the Next Header of the last extension header.
	upper := func(f []byte, p uint8) []byte {
		off, next := 14+frame.IPv6HeaderLen, f[14+6]
		for next != proto.IPProtoUDP {
			h := off
			next = f[h]
			if next == proto.IPProtoUDP {
				f[h] = p
				break
			}
			off += (int(f[h+1]) + 1) * 8
		}
		return f
	}
	many := func(n int) []ext {
		hs := make([]ext, n)
		for i := range hs {
			hs[i] = dst
		}
		return hs
	}
	fragment := func(off, n int, hs ...ext) []byte {
		s := &frame.UDPSpec{SrcMAC: macPeer, DstMAC: macEngine, Src: ap(peer6, 40000), Dst: ap(owned6, 7),
			Payload: make([]byte, 64), ExtHeaders: hs}
		buf := make([]byte, 2048)
		m, err := frame.BuildUDPFragment(buf, s, frame.Fragment{Offset: off, Length: n, ID: 3})
		if err != nil {
			t.Fatal(err)
		}
		return buf[:m]
	}
	// Hop-by-Hop in second place, which the builder refuses to write.
	hbhSecond := build(owned6, dst, dst)
	hbhSecond[14+frame.IPv6HeaderLen] = proto.IPProtoHopByHop
	// A chain whose next header lies past the end of the frame.
	pastEnd := build(owned6, dst)
	pastEnd[14+frame.IPv6HeaderLen] = proto.IPProtoDstOpts
	pastEnd = pastEnd[:14+frame.IPv6HeaderLen+8]

	const drop = Outcome(255)
	cases := []struct {
		name string
		f    []byte
		want Outcome // drop: the filter rejects it
	}{
		{"hop-by-hop", build(owned6, hbh), OutcomeDelivered},
		{"destination options", build(owned6, dst), OutcomeDelivered},
		{"routing, segments left 0", build(owned6, rt), OutcomeDelivered},
		{"hop-by-hop, routing, destination options", build(owned6, hbh, rt, dst), OutcomeDelivered},
		{"to a shared address", build(shared6, hbh), OutcomeDelivered},
		{"to another address", build(netip.MustParseAddr("fd00::99"), hbh), drop},
		{"tagged", tagged(build(owned6, hbh)), OutcomeDelivered},
		{"hop-by-hop, first fragment", fragment(0, 32, hbh), OutcomeFragmentHeld},
		{"destination options, later fragment", fragment(32, 40, dst), OutcomeFragmentHeld},
		{"8 extension headers", build(owned6, many(frame.MaxIPv6ExtHeaders)...), OutcomeDelivered},
		{"9 extension headers", build(owned6, many(frame.MaxIPv6ExtHeaders+1)...), Outcome(frame.ReasonIPv6TooManyExtHeaders)},
		{"hop-by-hop not first", hbhSecond, Outcome(frame.ReasonIPv6HopByHopNotFirst)},
		{"hop-by-hop, ICMPv6 other than MLD", upper(build(owned6, hbh), proto.IPProtoICMPv6), drop},
		{"destination options, TCP", upper(build(owned6, dst), proto.IPProtoTCP), drop},
		{"authentication header", build(owned6, ah), drop},
		{"chain past the end of the frame", pastEnd, drop},
	}
	for _, tc := range cases {
		pass := runFilter(t, "", tc.f)
		if pass != (tc.want != drop) {
			t.Errorf("%s: filter passes %v, want %v", tc.name, pass, tc.want != drop)
			continue
		}
		if !pass {
			continue
		}
		r := newRig(t, nil)
		if _, err := r.e.HandleService(ap(netip.Addr{}, 7), Echo); err != nil {
			t.Fatal(err)
		}
		if got := r.one(tc.f, ring.Meta{}); got != tc.want {
			t.Errorf("%s: outcome %v, want %v", tc.name, got, tc.want)
		}
		if tc.want == OutcomeDelivered {
			// Echo answers with Reply: a fresh frame without the
			// extension headers.
			out := r.tx.take()
			if len(out) != 1 {
				t.Errorf("%s: %d answers, want 1", tc.name, len(out))
				continue
			}
			p := checkUDPFrame(t, out[0])
			if p.Flags&frame.FlagIPv6ExtHeaders != 0 || string(p.Payload(out[0])) != "behind extension headers" {
				t.Errorf("%s: answer %x", tc.name, out[0])
			}
		}
	}

	// Config.Filter runs after the walk, on the frame as it is: address
	// tests match datagrams behind extension headers, protocol and port
	// tests read the fixed header's Next Header and the bytes right
	// after it, as tcpdump does, and so do not.
	f := build(owned6, hbh)
	for expr, want := range map[string]bool{
		"src host fd00::2":   true,
		"src host fd00::3":   false,
		"ip6":                true,
		"dst net fd00::/64":  true,
		"udp":                false,
		"udp dst port 7":     false,
		"ip6 and not tcp":    true,
		"not udp port 40000": true,
	} {
		if got := runFilter(t, expr, f); got != want {
			t.Errorf("%q on UDP behind Hop-by-Hop: passes %v, want %v", expr, got, want)
		}
	}
}

// TestFilterArithmetic: an expression with byte offsets and arithmetic
// (X, scratch memory, a run-time division) still only narrows the UDP the
// engine serves; ARP and NDP pass whatever it says, and "ip broadcast"
// takes the engine's netmask.
func TestFilterArithmetic(t *testing.T) {
	udp := func(src, dst netip.Addr, port uint16, payload string) []byte {
		return udpFrame(t, ap(src, 40000), ap(dst, port), []byte(payload))
	}
	for _, tc := range []struct {
		expr string
		f    []byte
		want bool
	}{
		// DNS queries only: the QR bit of the first flags byte.
		{"udp[10] & 0x80 = 0", udp(peer4, owned4, 53, "\x12\x34\x01\x00"), true},
		{"udp[10] & 0x80 = 0", udp(peer4, owned4, 53, "\x12\x34\x81\x80"), false},
		{"udp[10] & 0x80 = 0", udp(peer6, owned6, 53, "\x12\x34\x01\x00"), false}, // udp[] is IPv4 only, as in tcpdump
		{"udp[10] & 0x80 = 0", arpRequest(t, peer4, owned4), true},
		// X and scratch memory: the UDP length against the IP length.
		{"ip[2:2] - ((ip[0] & 0xf) << 2) = udp[4:2] and len - 14 >= ip[2:2]", udp(peer4, owned4, 7, "abc"), true},
		{"ip[2:2] - ((ip[0] & 0xf) << 2) = udp[4:2] + 1", udp(peer4, owned4, 7, "abc"), false},
		{"ip[2:2] - ((ip[0] & 0xf) << 2) = udp[4:2] + 1", neighborSolicitation(t, peer6, owned6), true},
		// A division by zero (next header 17 - 17) rejects the frame.
		{"ip6 and ip6[7] % (ip6[6] - 17) = 0", udp(peer6, owned6, 7, "abc"), false},
		{"ip6 and ip6[7] % (ip6[6] - 17) = 0", neighborAdvert(t, peer6, shared6), true},
		{"ip broadcast", udp(peer4, bcast4, 7, "abc"), true},
		{"ip broadcast", udp(peer4, owned4, 7, "abc"), false},
		{"udp[8:2] > 0 and protochain 17", udp(peer4, owned4, 7, "abc"), true},
		{"ip6 protochain 17", udp(peer6, owned6, 7, "abc"), true},
	} {
		if got := runFilter(t, tc.expr, tc.f); got != tc.want {
			t.Errorf("%q: accepted %v, want %v", tc.expr, got, tc.want)
		}
	}
}
