package engine

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/pktengine/pktengine/frame"
	"github.com/pktengine/pktengine/ring"
)

func TestServiceNames(t *testing.T) {
	for _, s := range Services() {
		got, ok := ParseService(strings.ToUpper(s.String()))
		if !ok || got != s {
			t.Errorf("ParseService(%q) = %v, %v", s, got, ok)
		}
	}
	if s, ok := ParseService("quote"); !ok || s != QOTD {
		t.Errorf("quote: %v %v", s, ok)
	}
	if _, ok := ParseService("ssh"); ok {
		t.Error("ssh is no built-in service")
	}
	want := map[Service]uint16{Echo: 7, Discard: 9, Daytime: 13, QOTD: 17, Chargen: 19}
	for s, p := range want {
		if s.Port() != p {
			t.Errorf("%v.Port() = %d, want %d", s, s.Port(), p)
		}
	}
}

// serve sends one request to the service on port and returns the
// payloads of the answers.
func serve(t *testing.T, r *testRig, src, dst netip.AddrPort, m ring.Meta, payload string) []string {
	t.Helper()
	r.one(udpFrame(t, src, dst, []byte(payload)), m)
	var out []string
	for _, f := range r.tx.take() {
		p := checkUDPFrame(t, f)
		if p.Src(f) != dst && dst.Addr() != bcast4 || p.Dst(f) != src {
			t.Errorf("answer %v -> %v to a request %v -> %v", p.Src(f), p.Dst(f), src, dst)
		}
		out = append(out, string(p.Payload(f)))
	}
	return out
}

func TestServices(t *testing.T) {
	r := newRig(t, &Config{Quote: "Time flies like an arrow.\r\n"})
	for _, s := range Services() {
		if _, err := r.e.HandleService(ap(netip.Addr{}, s.Port()), s); err != nil {
			t.Fatal(err)
		}
	}
	client := ap(peer4, 40000)
	now := time.Date(2026, 11, 23, 6, 30, 0, 0, time.UTC)
	meta := ring.Meta{Timestamp: now.UnixNano()}

	if got := serve(t, r, client, ap(owned4, 7), meta, "TEST"); len(got) != 1 || got[0] != "TEST" {
		t.Errorf("echo: %q", got)
	}
	if got := serve(t, r, client, ap(owned4, 9), meta, "TEST"); len(got) != 0 {
		t.Errorf("discard answered %q", got)
	}
	got := serve(t, r, client, ap(owned4, 13), meta, "")
	if want := now.Local().Format("Monday, January 2, 2006 15:04:05-MST") + "\r\n"; len(got) != 1 || got[0] != want {
		t.Errorf("daytime: %q, want %q", got, want)
	}
	if got := serve(t, r, ap(peer6, 40000), ap(owned6, 17), meta, ""); len(got) != 1 || got[0] != "Time flies like an arrow.\r\n" {
		t.Errorf("qotd: %q", got)
	}

	// chargen: 0 to 512 bytes of the RFC 864 pattern, each datagram
	// starting one line further.
	lengths := map[int]bool{}
	for i := range 200 {
		meta.Timestamp += int64(time.Second) // stay within the source's bucket
		got := serve(t, r, ap(peer4, uint16(41000+i)), ap(owned4, 19), meta, "")
		if len(got) != 1 {
			t.Fatalf("chargen: %d answers", len(got))
		}
		s := got[0]
		lengths[len(s)] = true
		if len(s) > 512 {
			t.Fatalf("chargen sent %d bytes", len(s))
		}
		for j := 0; j < len(s); j++ {
			c := s[j]
			if c != '\r' && c != '\n' && (c < ' ' || c > '~') {
				t.Fatalf("chargen byte %d is %#x", j, c)
			}
		}
		if len(s) >= 74 {
			line := s[:74]
			if !strings.HasSuffix(line, "\r\n") || line[1] != line[0]+1 && !(line[0] == '~' && line[1] == ' ') {
				t.Fatalf("chargen line %q is not the rotating pattern", line)
			}
			if len(s) >= 148 && s[74] != line[1] {
				t.Fatalf("chargen's second line starts with %q, want %q", s[74], line[1])
			}
		}
	}
	if len(lengths) < 50 {
		t.Errorf("chargen lengths hardly vary: %d distinct in 200", len(lengths))
	}
}

func TestServiceGuards(t *testing.T) {
	r := newRig(t, &Config{Guard: Guard{SourceRate: 10, SourceBurst: 3}})
	for _, s := range []Service{Echo, QOTD} {
		if _, err := r.e.HandleService(ap(netip.Addr{}, s.Port()), s); err != nil {
			t.Fatal(err)
		}
	}
	meta := ring.Meta{Timestamp: 1e15}
	cases := []struct {
		name     string
		src, dst netip.AddrPort
		m        ring.Meta
		answered bool
	}{
		{"ordinary", ap(peer4, 40000), ap(owned4, 7), meta, true},
		{"from echo", ap(peer4, 7), ap(owned4, 7), meta, false},
		{"from chargen", ap(peer4, 19), ap(owned4, 17), meta, false},
		{"from port 0", ap(peer4, 0), ap(owned4, 7), meta, false},
		{"from broadcast", ap(bcast4, 40000), ap(owned4, 7), meta, false},
		{"from multicast", ap(netip.MustParseAddr("224.0.0.1"), 40000), ap(owned4, 7), meta, false},
		{"from own address", ap(shared4, 40000), ap(owned4, 7), meta, false},
		{"from loopback", ap(netip.MustParseAddr("127.0.0.1"), 40000), ap(owned4, 7), meta, false},
		{"from unspecified v6", ap(netip.IPv6Unspecified(), 40000), ap(owned6, 7), meta, false},
		{"to broadcast", ap(peer4, 40000), ap(bcast4, 7), ring.Meta{Timestamp: 1e15, Type: ring.PacketBroadcast}, false},
	}
	for _, tc := range cases {
		got := serve(t, r, tc.src, tc.dst, tc.m, "x")
		if (len(got) == 1) != tc.answered || len(got) > 1 {
			t.Errorf("%s: %d answers, want answered=%v", tc.name, len(got), tc.answered)
		}
	}
	c := r.e.Counters()
	if c.GuardLoop != 3 || c.GuardSource != 5 || c.GuardNonUnicast != 1 {
		t.Errorf("guards: loop %d source %d group %d; want 3 5 1", c.GuardLoop, c.GuardSource, c.GuardNonUnicast)
	}

	// qotd amplifies: 3 at once from one source, then 1 per 100 ms.
	// echo does not, so it is not limited.
	src := ap(netip.MustParseAddr("198.18.0.50"), 40000)
	answered := 0
	for range 10 {
		answered += len(serve(t, r, src, ap(owned4, 17), meta, ""))
	}
	if answered != 3 {
		t.Errorf("qotd answered %d of 10 at once, want the burst of 3", answered)
	}
	if n := len(serve(t, r, ap(netip.MustParseAddr("198.18.0.51"), 40000), ap(owned4, 17), meta, "")); n != 1 {
		t.Error("another source was limited too")
	}
	m2 := meta
	m2.Timestamp += int64(100 * time.Millisecond)
	if n := len(serve(t, r, src, ap(owned4, 17), m2, "")); n != 1 {
		t.Error("no token after 100 ms at 10/s")
	}
	for range 10 {
		if n := len(serve(t, r, src, ap(owned4, 7), meta, "e")); n != 1 {
			t.Fatal("echo was rate limited")
		}
	}
	c = r.e.Counters()
	if c.GuardRateLimited != 7 {
		t.Errorf("GuardRateLimited %d, want 7", c.GuardRateLimited)
	}
	var suppressed uint64
	for _, pi := range r.e.Ports() {
		suppressed += pi.Suppressed
	}
	if want := c.GuardLoop + c.GuardSource + c.GuardNonUnicast + c.GuardRateLimited; suppressed != want {
		t.Errorf("ports suppressed %d, guards counted %d", suppressed, want)
	}
}

func TestGuardConfig(t *testing.T) {
	// No loop ports, groups and any source answered, no rate limit.
	r := newRig(t, &Config{Guard: Guard{LoopPorts: []uint16{}, AnswerGroup: true, AnySource: true, SourceRate: -1, TotalRate: -1}})
	if _, err := r.e.HandleService(ap(netip.Addr{}, 17), QOTD); err != nil {
		t.Fatal(err)
	}
	meta := ring.Meta{Timestamp: 1e15}
	for _, src := range []netip.AddrPort{ap(peer4, 7), ap(peer4, 19), ap(shared4, 1000)} {
		if n := len(serve(t, r, src, ap(owned4, 17), meta, "")); n != 1 {
			t.Errorf("source %v not answered", src)
		}
	}
	for range 100 {
		if n := len(serve(t, r, ap(peer4, 1000), ap(owned4, 17), meta, "")); n != 1 {
			t.Fatal("rate limited with SourceRate < 0 and TotalRate < 0")
		}
	}
	// Port 0 stays unanswerable.
	if n := len(serve(t, r, ap(peer4, 0), ap(owned4, 17), meta, "")); n != 0 {
		t.Error("answered source port 0")
	}
}

// TestServiceTotalCap: the engine-wide bucket caps the amplifying
// services' replies to all sources together, after each source's own
// bucket, and leaves echo alone unless LimitEcho is set.
func TestServiceTotalCap(t *testing.T) {
	for _, limitEcho := range []bool{false, true} {
		r := newRig(t, &Config{Guard: Guard{SourceRate: 10, SourceBurst: 2, TotalRate: 100, TotalBurst: 5, LimitEcho: limitEcho}})
		for _, s := range []Service{Echo, Chargen, Daytime} {
			if _, err := r.e.HandleService(ap(netip.Addr{}, s.Port()), s); err != nil {
				t.Fatal(err)
			}
		}
		meta := ring.Meta{Timestamp: 1e15}
		src := func(i int) netip.AddrPort {
			return ap(netip.AddrFrom4([4]byte{198, 18, 0, byte(100 + i)}), 40000)
		}
		// Sources that share a bucket share its tokens (by design);
		// give these a seed under which each has its own.
		sb := r.e.guard.sources
		for seed := uint64(1); ; seed += 2 {
			sb.seed = seed
			used := make(map[uint64]bool)
			for i := range 70 {
				used[hashAddr(src(i).Addr(), seed)&sb.mask] = true
			}
			if len(used) == 70 {
				break
			}
		}
		// Forty sources, one request each, all at one instant: each
		// within its own bucket, only the total's burst is answered.
		answered := 0
		for i := range 40 {
			port := Chargen.Port()
			if i%2 == 1 {
				port = Daytime.Port()
			}
			answered += len(serve(t, r, src(i), ap(owned4, port), meta, ""))
		}
		c := r.e.Counters()
		if answered != 5 || c.GuardTotalLimited != 35 || c.GuardRateLimited != 0 {
			t.Errorf("40 sources at once: %d answered, %d total-limited, %d source-limited; want 5, 35, 0",
				answered, c.GuardTotalLimited, c.GuardRateLimited)
		}
		// A source over its own limit is refused by its bucket and
		// does not spend the total's tokens: 10 ms later (one token
		// of the total at 100/s) source 0, which has 1 token left
		// of its burst of 2, gets one answer and then two refusals
		// from its own bucket; source 1 then finds the total empty.
		m2 := meta
		m2.Timestamp += int64(10 * time.Millisecond)
		got := 0
		for range 3 {
			got += len(serve(t, r, src(0), ap(owned4, Chargen.Port()), m2, ""))
		}
		got1 := len(serve(t, r, src(1), ap(owned4, Daytime.Port()), m2, ""))
		c = r.e.Counters()
		if got != 1 || got1 != 0 || c.GuardRateLimited != 2 || c.GuardTotalLimited != 36 {
			t.Errorf("10 ms later: source 0 answered %d of 3 (want 1), source 1 %d (want 0); rate-limited %d (want 2), total-limited %d (want 36)",
				got, got1, c.GuardRateLimited, c.GuardTotalLimited)
		}
		// Echo: exempt from both unless LimitEcho.
		echoes := 0
		for i := range 20 {
			echoes += len(serve(t, r, src(50+i), ap(owned4, Echo.Port()), m2, "e"))
		}
		if want := 20; limitEcho {
			if echoes != 0 {
				t.Errorf("LimitEcho: %d echoes answered with the total bucket empty, want 0", echoes)
			}
		} else if echoes != want {
			t.Errorf("echo answered %d of %d; the total cap must not apply to it", echoes, want)
		}
		var suppressed uint64
		for _, pi := range r.e.Ports() {
			suppressed += pi.Suppressed
		}
		c = r.e.Counters()
		if want := c.GuardRateLimited + c.GuardTotalLimited; suppressed != want {
			t.Errorf("ports suppressed %d, guards counted %d", suppressed, want)
		}
	}
	// TotalRate < 0 turns the cap off; SourceRate < 0 does not.
	r := newRig(t, &Config{Guard: Guard{SourceRate: -1, TotalBurst: 3, TotalRate: 1}})
	if _, err := r.e.HandleService(ap(netip.Addr{}, 17), QOTD); err != nil {
		t.Fatal(err)
	}
	n := 0
	for range 10 {
		n += len(serve(t, r, ap(peer4, 1000), ap(owned4, 17), ring.Meta{Timestamp: 1e15}, ""))
	}
	if n != 3 {
		t.Errorf("SourceRate < 0, TotalBurst 3: %d of 10 answered, want 3", n)
	}
}

// TestICMPRules: port unreachable for owned addresses only, never for a
// link-layer broadcast or a source that is no single host, and limited
// by the token bucket.
func TestICMPRules(t *testing.T) {
	r := newRig(t, &Config{ICMPRate: 10, ICMPBurst: 2})
	meta := ring.Meta{Timestamp: 1e15}
	closed := func(src netip.AddrPort, dst netip.AddrPort, m ring.Meta) int {
		r.one(udpFrame(t, src, dst, []byte("x")), m)
		out := r.tx.take()
		for _, f := range out {
			var p frame.Packet
			switch p.Decode(f) {
			case frame.ReasonICMPv4:
				msg := p.ICMPv4(f)
				if msg.Type() != 3 || msg.Code() != 3 || refSum(msg) != 0xffff {
					t.Errorf("ICMP type %d code %d", msg.Type(), msg.Code())
				}
				ip := p.IPv4(f)
				if refSum(ip[:20]) != 0xffff || ip.Source() != dst.Addr() || ip.Destination() != src.Addr() {
					t.Errorf("ICMP %v -> %v", ip.Source(), ip.Destination())
				}
				// The quote: the invoking IP header and 8 bytes.
				if got := msg.Payload(); len(got) != 28 || !bytes.Equal(got[12:16], src.Addr().AsSlice()) {
					t.Errorf("ICMP quotes %d bytes", len(got))
				}
			case frame.ReasonICMPv6:
				msg := p.ICMPv6(f)
				ip := p.IPv6(f)
				if msg.Type() != 1 || msg.Code() != 4 || !msg.IsChecksumValid(ip.PseudoHeaderSum(58, uint32(len(msg)))) {
					t.Errorf("ICMPv6 type %d code %d", msg.Type(), msg.Code())
				}
			default:
				t.Errorf("sent a frame that is no ICMP")
			}
		}
		return len(out)
	}
	if n := closed(ap(peer4, 1), ap(owned4, 999), meta); n != 1 {
		t.Fatalf("no ICMP for an unbound owned port")
	}
	if n := closed(ap(peer6, 1), ap(owned6, 999), meta); n != 1 {
		t.Fatalf("no ICMPv6 for an unbound owned port")
	}
	meta.Timestamp += int64(time.Second)
	for _, tc := range []struct {
		name     string
		src, dst netip.AddrPort
		m        ring.Meta
	}{
		{"shared address", ap(peer4, 1), ap(shared4, 999), meta},
		{"link broadcast", ap(peer4, 1), ap(owned4, 999), ring.Meta{Timestamp: meta.Timestamp, Type: ring.PacketBroadcast}},
		{"from broadcast", ap(bcast4, 1), ap(owned4, 999), meta},
		{"from multicast v6", ap(netip.MustParseAddr("ff02::1"), 1), ap(owned6, 999), meta},
		{"from 0.0.0.0", ap(netip.IPv4Unspecified(), 68), ap(owned4, 999), meta},
		{"from class E", ap(netip.MustParseAddr("240.0.0.1"), 1), ap(owned4, 999), meta},
		{"to broadcast", ap(peer4, 1), ap(bcast4, 999), meta},
		{"to multicast", ap(peer6, 1), ap(netip.MustParseAddr("ff02::1"), 999), meta},
	} {
		if n := closed(tc.src, tc.dst, tc.m); n != 0 {
			t.Errorf("%s: sent ICMP", tc.name)
		}
	}
	c := r.e.Counters()
	if c.ICMPSuppressed != 5 || c.ICMPSent != 2 {
		t.Errorf("ICMP sent %d suppressed %d, want 2 and 5", c.ICMPSent, c.ICMPSuppressed)
	}
	// Token bucket: 2 at once (the bucket refilled during the second
	// above), then one per 100 ms.
	sent := 0
	for range 5 {
		sent += closed(ap(peer4, 1), ap(owned4, 999), meta)
	}
	if sent != 2 {
		t.Errorf("%d ICMP messages in a burst, want 2", sent)
	}
	meta.Timestamp += int64(100 * time.Millisecond)
	if closed(ap(peer4, 1), ap(owned4, 999), meta) != 1 {
		t.Error("bucket did not refill")
	}
	if c := r.e.Counters(); c.ICMPRateLimited != 3 {
		t.Errorf("ICMPRateLimited %d, want 3", c.ICMPRateLimited)
	}
}

func TestICMPOff(t *testing.T) {
	r := newRig(t, &Config{ICMPRate: -1})
	r.one(udpFrame(t, ap(peer4, 1), ap(owned4, 999), nil), ring.Meta{})
	if len(r.tx.take()) != 0 {
		t.Error("ICMP sent with ICMPRate < 0")
	}
}

// TestARP: requests for owned addresses are answered, with the reply
// checked field by field; requests for shared addresses are only learned
// from; a VLAN tag is kept.
func TestARP(t *testing.T) {
	r := newRig(t, nil)
	prio := frame.MakeTCI(4, false, 0) // a priority tag: the base interface's
	if o := r.one(arpRequest(t, peer4, owned4), ring.Meta{Type: ring.PacketBroadcast, Status: tpStatusVLANValid, VLANTCI: prio}); o != Outcome(frame.ReasonARP) {
		t.Fatalf("outcome %v", o)
	}
	out := r.tx.take()
	if len(out) != 1 {
		t.Fatalf("%d replies", len(out))
	}
	var p frame.Packet
	if rs := p.Decode(out[0]); rs != frame.ReasonARP || p.NumVLANs != 1 || p.VLANs[0].TCI != prio {
		t.Fatalf("reply decodes as %v with %d VLANs", rs, p.NumVLANs)
	}
	a := p.ARP(out[0])
	if a.Op() != frame.ARPReply || a.SenderIP() != owned4 || a.SenderMAC() != macEngine ||
		a.TargetIP() != peer4 || a.TargetMAC() != macPeer || frame.Ethernet(out[0]).Destination() != macPeer {
		t.Errorf("ARP reply %v is-at %v to %v/%v", a.SenderIP(), a.SenderMAC(), a.TargetIP(), a.TargetMAC())
	}
	if mac, _, ok := r.e.neigh.lookup(peer4); !ok || mac != macPeer {
		t.Error("requester not learned")
	}

	r.one(arpRequest(t, netip.MustParseAddr("198.18.0.3"), shared4), ring.Meta{Type: ring.PacketBroadcast})
	if len(r.tx.take()) != 0 {
		t.Error("answered ARP for a shared address")
	}
	if _, _, ok := r.e.neigh.lookup(netip.MustParseAddr("198.18.0.3")); !ok {
		t.Error("requester for a shared address not learned")
	}
	// An off-link sender is not learned; a probe (sender 0.0.0.0) is
	// answered.
	r.one(arpRequest(t, netip.MustParseAddr("10.1.1.1"), owned4), ring.Meta{})
	r.tx.take()
	if _, _, ok := r.e.neigh.lookup(netip.MustParseAddr("10.1.1.1")); ok {
		t.Error("learned an off-link sender")
	}
	r.one(arpRequest(t, netip.IPv4Unspecified(), owned4), ring.Meta{})
	if out := r.tx.take(); len(out) != 1 {
		t.Error("ARP probe for an owned address not answered")
	}
}

// TestNDP: solicitations for owned targets are answered with a valid
// advertisement; for shared targets only learned from.
func TestNDP(t *testing.T) {
	r := newRig(t, nil)
	r.one(neighborSolicitation(t, peer6, owned6), ring.Meta{Type: ring.PacketMulticast})
	out := r.tx.take()
	if len(out) != 1 {
		t.Fatalf("%d answers", len(out))
	}
	var p frame.Packet
	if rs := p.Decode(out[0]); rs != frame.ReasonICMPv6 {
		t.Fatalf("answer decodes as %v", rs)
	}
	ip, msg := p.IPv6(out[0]), p.ICMPv6(out[0])
	if msg.Type() != frame.ICMPv6NeighborAdvertisement || msg.NDPTarget() != owned6 || ip.HopLimit() != 255 ||
		ip.Destination() != peer6 || ip.Source() != owned6 || msg.NDPFlags()&frame.NDPFlagSolicited == 0 {
		t.Errorf("advertisement %v -> %v target %v flags %#x", ip.Source(), ip.Destination(), msg.NDPTarget(), msg.NDPFlags())
	}
	if mac, ok := msg.TargetLinkAddress(); !ok || mac != macEngine {
		t.Errorf("target link address %v", mac)
	}
	if !msg.IsChecksumValid(ip.PseudoHeaderSum(58, uint32(len(msg)))) {
		t.Error("bad ICMPv6 checksum")
	}

	r.one(neighborSolicitation(t, peer6, shared6), ring.Meta{})
	if len(r.tx.take()) != 0 {
		t.Error("answered NS for a shared address")
	}
	// A corrupted solicitation is ignored.
	ns := neighborSolicitation(t, peer6, owned6)
	ns[len(ns)-1] ^= 1
	r.one(ns, ring.Meta{})
	if len(r.tx.take()) != 0 {
		t.Error("answered a solicitation with a bad checksum")
	}
	if mac, _, ok := r.e.neigh.lookup(peer6); !ok || mac != macPeer {
		t.Error("solicitor not learned")
	}
}

func TestPing(t *testing.T) {
	r := newRig(t, nil)
	for _, tc := range []struct {
		src, dst netip.Addr
		replies  int
	}{{peer4, owned4, 1}, {peer4, shared4, 0}, {peer6, owned6, 1}, {peer6, shared6, 0}} {
		f := echoRequest(t, tc.src, tc.dst)
		r.one(f, ring.Meta{})
		out := r.tx.take()
		if len(out) != tc.replies {
			t.Errorf("ping %v: %d replies, want %d", tc.dst, len(out), tc.replies)
			continue
		}
		for _, f := range out {
			var p frame.Packet
			p.Decode(f)
			if p.SrcAddr(f) != tc.dst || p.DstAddr(f) != tc.src {
				t.Errorf("echo reply %v -> %v", p.SrcAddr(f), p.DstAddr(f))
			}
		}
	}
	if c := r.e.Counters(); c.PingAnswered != 2 {
		t.Errorf("PingAnswered %d", c.PingAnswered)
	}
}

// echoRequest builds an ICMP or ICMPv6 echo request by turning a UDP
// frame's header into an ICMP one and fixing the checksums.
func echoRequest(tb testing.TB, src, dst netip.Addr) []byte {
	tb.Helper()
	f := udpFrame(tb, ap(src, 1), ap(dst, 2), []byte("pingpingping"))
	var p frame.Packet
	p.Decode(f)
	msg := f[p.L4Off:p.End]
	if src.Is4() {
		f[p.L3Off+9] = 1
		fixIPv4Checksum(f[p.L3Off:p.L4Off])
		clear(msg[:8])
		msg[0] = frame.ICMPv4Echo
		m := frame.ICMPv4(msg)
		m.SetChecksum(m.CalculateChecksum())
	} else {
		f[p.L3Off+6] = 58
		clear(msg[:8])
		msg[0] = frame.ICMPv6EchoRequest
		m := frame.ICMPv6(msg)
		m.SetChecksum(m.CalculateChecksum(p.IPv6(f).PseudoHeaderSum(58, uint32(len(msg)))))
	}
	return f
}
