//go:build linux

package robust_test

import (
	"errors"
	"math"
	"net"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pktengine/pktengine/engine"
	"github.com/pktengine/pktengine/frame"
	"github.com/pktengine/pktengine/internal/lab"
	"github.com/pktengine/pktengine/internal/labtest"
	"github.com/pktengine/pktengine/proto"
)

// hostileCase is one kind of frame nobody should send, and where the
// engine must count it.
type hostileCase struct {
	name   string
	frame  []byte
	copies int // 0 means 3
	// refused: the sending kernel refuses the frame with this error, so
	// it never reaches the wire (veth takes nothing shorter than an
	// Ethernet header; the engine's unit tests feed it such frames).
	refused error
	// filtered: the engine's kernel filter rejects the frame, so its
	// ring never sees it and no engine counter moves (the kernel counts
	// it as received on the interface, nothing more).
	filtered bool
	// outcome is where each copy ends; extra lists, per copy, the other
	// counters that move with it (Udp.*, guards, replies sent).
	outcome string
	extra   counts
	// replies is the number of answers per copy the peer's listeners get.
	replies int
	// check replaces the exact per-copy expectation for cases whose
	// counts depend on time (the per-source token bucket).
	check func(t *testing.T, d counts, elapsed time.Duration)
}

// Addresses of the hostile-frame lab. The engine runs in A on A's own
// addresses (shared with A's kernel) and on owned4, which only the engine
// has. The peer B sends from its own addresses and from addresses nobody
// has (victim4), as a spoofer would.
var (
	owned4  = netip.MustParseAddr("198.18.0.100")
	victim4 = netip.MustParseAddr("198.18.0.77")
	bcast4  = netip.MustParseAddr("198.18.0.255")
	mcast4  = netip.MustParseAddr("224.0.0.1")   // all-systems, which the engine joins
	mcast6  = netip.MustParseAddr("ff02::1")     // all-nodes, likewise
	other4  = netip.MustParseAddr("224.0.0.251") // mDNS, which nobody joined
)

const (
	replyPort  = 40001 // the peer's listeners: answers to hostile frames that deserve one
	clientPort = 7007  // a second echo port, the kernel client's
	closedPort = 5555
)

// TestHostileFrames sends every kind of malformed, spoofed, looping,
// group-addressed and oversized frame from a raw packet socket in B to
// the engine in A, a few copies of one kind at a time, while a kernel UDP
// client in B keeps exchanging datagrams with an echo port. After each
// kind, the engine's counters must have moved by exactly that kind's
// documented counters (and the client's exchanges), nothing else; the
// client must never miss an answer; and at the end the frames the rings
// took in equal the sum of the outcomes.
func TestHostileFrames(t *testing.T) {
	l := labtest.New(t, &lab.Config{MTU: hostileMTU()})
	a, b := l.A(), l.B()
	cfg := &engine.Config{
		Addrs: []netip.Prefix{a.IPv4, a.IPv6, netip.PrefixFrom(owned4, 24)},
	}
	// A's own tap counts what arrives from B; on XDP it sees only what
	// the program leaves to the kernel, and the engine's capture the rest.
	arrived := countArrivals(t, a, b.MAC, clientPort)
	if robustBackend == engine.BackendXDP {
		cfg.Capture = arrived.engineTap(b.MAC, clientPort)
	}
	e := openEngine(t, a, cfg)
	for _, s := range []struct {
		port uint16
		svc  engine.Service
	}{{7, engine.Echo}, {19, engine.Chargen}, {clientPort, engine.Echo}} {
		if _, err := e.HandleService(netip.AddrPortFrom(netip.Addr{}, s.port), s.svc); err != nil {
			t.Fatal(err)
		}
	}
	replies := listenReplies(t, b)
	raw := openRaw(t, b)
	client := startEchoClient(t, b, netip.AddrPortFrom(a.IPv4.Addr(), clientPort))

	cases := hostileCases(t, a, b)
	if robustBackend == engine.BackendXDP {
		cases = xdpHostileCases(cases)
	}
	var total, reachedRing, wantReplies uint64
	first := settledWithClient(t, e, client)
	for _, hc := range cases {
		copies := hc.copies
		if copies == 0 {
			copies = 3
		}
		before := settledWithClient(t, e, client)
		arrived0 := arrived.count()
		start := time.Now()
		if hc.refused != nil {
			if err := raw.send(hc.frame); !errors.Is(err, hc.refused) {
				t.Errorf("%s: sending a %d-byte frame: %v, want %v", hc.name, len(hc.frame), err, hc.refused)
			}
			continue
		}
		for range copies {
			if err := raw.send(hc.frame); err != nil {
				t.Fatalf("%s: sending a %d-byte frame: %v", hc.name, len(hc.frame), err)
			}
		}
		after := waitArrived(t, e, client, arrived, arrived0+uint64(copies))
		elapsed := time.Since(start)
		d := after.c.sub(before.c)
		// Take out the client's share: one delivered request and one
		// echo answer per exchange.
		ex := after.exchanges - before.exchanges
		d = d.sub(counts{
			"FramesIn": ex, "RingPackets": ex, "BytesIn": ex * uint64(client.frameLen),
			"outcome:delivered": ex, "UDP.InDatagrams": ex, "UDP.OutDatagrams": ex, "TXFrames": ex,
		})
		for k, v := range d {
			if v == 0 || strings.HasPrefix(k, "XDP.") { // the XDP counters are checked apart
				delete(d, k)
			}
		}
		total += uint64(copies)
		if hc.check != nil {
			hc.check(t, d, elapsed)
			reachedRing += d["FramesIn"]
			wantReplies += d["UDP.OutDatagrams"]
			continue
		}
		want := counts{}
		if !hc.filtered {
			want.add(counts{"FramesIn": 1, "RingPackets": 1, "BytesIn": uint64(len(hc.frame)), "outcome:" + hc.outcome: 1})
			want.add(hc.extra)
		}
		for k := range want {
			want[k] *= uint64(copies)
		}
		if s := diff(d, want); s != "" {
			t.Errorf("%s (%d copies): counters moved wrongly: %s\n(moved: %s)", hc.name, copies, s, d.nonzero())
		} else {
			t.Logf("%-44s -> %s", hc.name, d.nonzero())
		}
		reachedRing += want["FramesIn"]
		wantReplies += uint64(hc.replies * copies)
		if got := replies.wait(wantReplies, hc.replies > 0); got != wantReplies {
			t.Errorf("%s: the peer's listeners have %d answers, want %d", hc.name, got, wantReplies)
		}
	}
	last := settledWithClient(t, e, client)
	c := e.Counters()
	if err := c.Check(); err != nil {
		t.Error(err)
	}
	// Frames in = sum of the terminal counters, exactly, over the whole
	// run: the hostile frames that passed the filter plus the client's
	// requests.
	clientFrames := last.exchanges - first.exchanges
	if got, want := last.c["FramesIn"]-first.c["FramesIn"], reachedRing+clientFrames; got != want {
		t.Errorf("frames in: %d, want %d hostile + %d client = %d", got, reachedRing, clientFrames, want)
	}
	var outcomes uint64
	for k, v := range last.c.sub(first.c) {
		if len(k) > 8 && k[:8] == "outcome:" {
			outcomes += v
		}
	}
	if got := last.c["FramesIn"] - first.c["FramesIn"]; outcomes != got {
		t.Errorf("outcomes sum to %d, frames in %d", outcomes, got)
	}
	if last.c["RingDrops"] != 0 {
		t.Errorf("%d ring drops", last.c["RingDrops"])
	}
	t.Logf("%d hostile frames sent, %d reached the ring; %d client exchanges meanwhile, all answered",
		total, reachedRing, clientFrames)
}

// snapshot is a settled counter snapshot with the client's exchange
// count at that moment.
type snapshot struct {
	c         counts
	exchanges uint64
}

// settledWithClient pauses the client, waits for the engine to handle
// everything its rings hold, and takes a snapshot.
func settledWithClient(t *testing.T, e *engine.Engine, client *echoClient) snapshot {
	t.Helper()
	ex := client.pause()
	defer client.resume()
	c := settled(t, e)
	return snapshot{c: flatten(&c), exchanges: ex}
}

// waitArrived waits until A's own tap has counted want frames from B
// (the engine's tap runs beside it, in the same softirq) and the engine
// has handled everything its rings took in, and returns the snapshot.
func waitArrived(t *testing.T, e *engine.Engine, client *echoClient, arrived *arrivals, want uint64) snapshot {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := arrived.count()
		if got > want {
			t.Fatalf("A received %d frames, more than the %d sent", got, want)
		}
		if got == want {
			ex := client.pause()
			c := settled(t, e)
			client.resume()
			return snapshot{c: flatten(&c), exchanges: ex}
		}
		if time.Now().After(deadline) {
			t.Fatalf("A received %d frames, want %d", got, want)
		}
		time.Sleep(time.Millisecond)
	}
}

// replyListener counts the datagrams B's kernel delivers to replyPort.
type replyListener struct {
	mu   sync.Mutex
	n    uint64
	cond *sync.Cond
}

func listenReplies(t *testing.T, b *lab.Host) *replyListener {
	t.Helper()
	r := &replyListener{}
	r.cond = sync.NewCond(&r.mu)
	for _, a := range []netip.Addr{b.IPv4.Addr(), b.IPv6.Addr()} {
		c := labtest.ListenUDP(t, b, netip.AddrPortFrom(a, replyPort))
		done := make(chan struct{})
		go func() {
			defer close(done)
			buf := make([]byte, 65536)
			for {
				if _, err := c.Read(buf); err != nil {
					if errors.Is(err, net.ErrClosed) {
						return
					}
					continue
				}
				r.mu.Lock()
				r.n++
				r.cond.Broadcast()
				r.mu.Unlock()
			}
		}()
		t.Cleanup(func() {
			c.Close()
			<-done
		})
	}
	return r
}

// wait waits up to 3 s for n answers in all, if more are expected, and
// returns the count after a short grace for any that should not come.
func (r *replyListener) wait(n uint64, more bool) uint64 {
	if !more {
		time.Sleep(time.Millisecond)
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.n
	}
	timer := time.AfterFunc(3*time.Second, func() {
		r.mu.Lock()
		r.cond.Broadcast()
		r.mu.Unlock()
	})
	defer timer.Stop()
	deadline := time.Now().Add(3 * time.Second)
	r.mu.Lock()
	for r.n < n && time.Now().Before(deadline) {
		r.cond.Wait()
	}
	r.mu.Unlock()
	time.Sleep(5 * time.Millisecond)
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n
}

// hostileCases builds the frames, from B (MAC, addresses) to A.
func hostileCases(t *testing.T, a, b *lab.Host) []hostileCase {
	srcMAC, dstMAC := frame.MAC(b.MAC), frame.MAC(a.MAC)
	a4, a6 := a.IPv4.Addr(), a.IPv6.Addr()
	b4, b6 := b.IPv4.Addr(), b.IPv6.Addr()
	payload := []byte("hostile frame")
	spec4 := func(mod ...func(*frame.UDPSpec)) *frame.UDPSpec {
		s := &frame.UDPSpec{SrcMAC: srcMAC, DstMAC: dstMAC,
			Src: netip.AddrPortFrom(b4, replyPort), Dst: netip.AddrPortFrom(a4, 7), Payload: payload}
		for _, m := range mod {
			m(s)
		}
		return s
	}
	spec6 := func(mod ...func(*frame.UDPSpec)) *frame.UDPSpec {
		s := spec4(mod...)
		s.Src = netip.AddrPortFrom(b6, s.Src.Port())
		s.Dst = netip.AddrPortFrom(a6, s.Dst.Port())
		for _, m := range mod { // again, for mods that set IPv6 addresses
			m(s)
		}
		return s
	}
	build := func(s *frame.UDPSpec) []byte {
		buf := make([]byte, 16384)
		n, err := frame.BuildUDP(buf, s)
		if err != nil {
			t.Fatalf("BuildUDP: %v", err)
		}
		return buf[:n]
	}
	// ip4 corrupts the IPv4 header of an untagged frame and then makes
	// its checksum right again, so that the corruption is the only fault.
	ip4 := func(f []byte, corrupt func(frame.IPv4)) []byte {
		ip := frame.IPv4(f[frame.EthernetHeaderLen:])
		corrupt(ip)
		// A header that claims more than the frame holds keeps the old
		// checksum: Decode rejects it before any checksum matters.
		if h := ip.HeaderLength(); h >= frame.IPv4MinHeaderLen && h <= len(ip) {
			ip.SetChecksum(ip.CalculateChecksum())
		}
		return f
	}
	udp4 := func(f []byte) frame.UDP {
		return frame.UDP(f[frame.EthernetHeaderLen+frame.IPv4MinHeaderLen:])
	}
	withSrc := func(ap netip.AddrPort) func(*frame.UDPSpec) { return func(s *frame.UDPSpec) { s.Src = ap } }
	withDst := func(ap netip.AddrPort) func(*frame.UDPSpec) { return func(s *frame.UDPSpec) { s.Dst = ap } }
	withDstMAC := func(m frame.MAC) func(*frame.UDPSpec) { return func(s *frame.UDPSpec) { s.DstMAC = m } }
	big := make([]byte, hostileMTU()-frame.IPv4MinHeaderLen-frame.UDPHeaderLen) // an MTU-sized IP packet
	for i := range big {
		big[i] = byte(i)
	}

	// The counters that move with each copy besides its outcome.
	echoed := counts{"UDP.InDatagrams": 1, "UDP.OutDatagrams": 1, "TXFrames": 1}
	guard := func(name string) counts { return counts{"UDP.InDatagrams": 1, name: 1} }
	inErr := counts{"UDP.InErrors": 1}

	bigFrame := build(spec4(func(s *frame.UDPSpec) { s.Payload = big }))
	chargenReqLen := uint64(len(build(spec4())))
	return []hostileCase{
		// Truncated and short frames.
		{name: "runt: 10 bytes, less than an Ethernet header", frame: build(spec4())[:10], refused: syscall.EINVAL},
		{name: "Ethernet header only (14 bytes)", frame: build(spec4())[:14], filtered: true},
		{name: "IPv4 header cut at 19 bytes", frame: build(spec4())[:14+19], filtered: true},
		{name: "IPv4 header, no room for UDP", frame: ip4(build(spec4())[:14+20], func(ip frame.IPv4) { ip.SetTotalLength(20) }),
			outcome: "udp-truncated", extra: inErr},
		// IPv4 header fields out of range.
		{name: "IPv4 version 6 in an IPv4 EtherType", frame: ip4(build(spec4()), func(ip frame.IPv4) { ip[0] = 0x65 }),
			outcome: "ipv4-bad-version"},
		{name: "IPv4 IHL 4 (< 5)", frame: ip4(build(spec4()), func(ip frame.IPv4) { ip[0] = 0x44 }),
			outcome: "ipv4-header-too-short"},
		{name: "IPv4 IHL 15, past the end of the frame", frame: ip4(build(spec4()), func(ip frame.IPv4) { ip[0] = 0x4f }),
			outcome: "ipv4-header-past-end"},
		{name: "IPv4 total length above the captured length", frame: ip4(build(spec4()), func(ip frame.IPv4) { ip.SetTotalLength(ip.TotalLength() + 100) }),
			outcome: "ipv4-total-length-past-end"},
		{name: "IPv4 total length below the header length", frame: ip4(build(spec4()), func(ip frame.IPv4) { ip.SetTotalLength(16) }),
			outcome: "ipv4-total-length-too-short"},
		{name: "IPv4 bad header checksum", frame: func() []byte {
			f := build(spec4())
			ip := frame.IPv4(f[14:])
			ip.SetChecksum(^ip.Checksum())
			return f
		}(), outcome: "ipv4-bad-header-checksum"},
		{name: "IPv4 options length past the header", frame: build(spec4(func(s *frame.UDPSpec) { s.Options = []byte{frame.IPv4OptionRecordRoute, 12, 4, 0} })),
			outcome: "ipv4-bad-options"},
		// UDP header faults.
		{name: "UDP length 4 (< 8)", frame: func() []byte { f := build(spec4()); udp4(f).SetLength(4); return f }(),
			outcome: "udp-length-too-short", extra: inErr},
		{name: "UDP length past the IP payload", frame: func() []byte { f := build(spec4()); udp4(f).SetLength(200); return f }(),
			outcome: "udp-length-past-end", extra: inErr},
		{name: "UDP bad checksum", frame: func() []byte { f := build(spec4()); f[len(f)-1] ^= 0x5a; return f }(),
			outcome: "udp-bad-checksum", extra: counts{"UDP.InErrors": 1, "UDP.InCsumErrors": 1}},
		{name: "IPv6 UDP checksum 0", frame: func() []byte {
			f := build(spec6())
			frame.UDP(f[14+40:]).SetChecksum(0)
			return f
		}(), outcome: "udp-zero-checksum-ipv6", extra: inErr},
		// Fragments: TestHostileFragments (fragments_linux_test.go).
		// Well-formed but unusual: answered, without reflecting the
		// options or extension headers.
		{name: "IPv4 options (router alert) to echo", frame: build(spec4(func(s *frame.UDPSpec) {
			s.Options = []byte{frame.IPv4OptionRouterAlert, 4, 0, 0}
		})), outcome: "delivered", extra: echoed, replies: 1},
		// The engine's filter walks Hop-by-Hop, Routing and Destination
		// Options headers to UDP (engine/filter.go); echo answers with
		// a fresh frame, without them.
		{name: "IPv6 hop-by-hop (PadN) to echo", frame: build(spec6(func(s *frame.UDPSpec) {
			s.ExtHeaders = []frame.IPv6ExtHeader{{Type: proto.IPProtoHopByHop, Data: []byte{frame.IPv6OptionPadN, 4, 0, 0, 0, 0}}}
		})), outcome: "delivered", extra: echoed, replies: 1},
		{name: "IPv6 destination options to echo", frame: build(spec6(func(s *frame.UDPSpec) {
			s.ExtHeaders = []frame.IPv6ExtHeader{{Type: proto.IPProtoDstOpts, Data: make([]byte, 6)}}
		})), outcome: "delivered", extra: echoed, replies: 1},
		{name: "IPv6 hop-by-hop after destination options", frame: func() []byte {
			f := build(spec6(func(s *frame.UDPSpec) {
				s.ExtHeaders = []frame.IPv6ExtHeader{{Type: proto.IPProtoDstOpts}, {Type: proto.IPProtoDstOpts}}
			}))
			f[14+40] = proto.IPProtoHopByHop // the first header's Next Header
			return f
		}(), outcome: "ipv6-hop-by-hop-not-first"},
		// VLANs: the engine serves untagged frames (Config.VLAN 0), as
		// the kernel's base interface; a priority tag is untagged.
		{name: "double VLAN tags (802.1ad 100, 802.1Q 200) to echo", frame: build(spec4(func(s *frame.UDPSpec) {
			s.VLANs = []frame.VLANTag{{TPID: proto.EtherTypeQinQ, TCI: 100}, {TPID: proto.EtherTypeVLAN, TCI: 200}}
		})), outcome: "other-vlan"},
		{name: "VLAN tag 100 to echo", frame: build(spec4(func(s *frame.UDPSpec) {
			s.VLANs = []frame.VLANTag{{TPID: proto.EtherTypeVLAN, TCI: 100}}
		})), outcome: "other-vlan"},
		{name: "priority tag (VLAN 0, PCP 5) to echo", frame: build(spec4(func(s *frame.UDPSpec) {
			s.VLANs = []frame.VLANTag{{TPID: proto.EtherTypeVLAN, TCI: frame.MakeTCI(5, false, 0)}}
		})), outcome: "delivered", extra: echoed, replies: 1}, // the answer carries the tag back; B's kernel takes it for untagged
		{name: "MTU-sized IPv4 packet (MTU 9000, 3000 on XDP) to echo", frame: bigFrame, outcome: "delivered", extra: echoed, replies: 1},
		// Not for us.
		{name: "unicast to another MAC address", frame: build(spec4(withDstMAC(frame.MAC{0x02, 0, 0, 0, 0, 0x99}))),
			outcome: "other-host"},
		{name: "to an address the engine does not serve", frame: build(spec4(withDst(netip.MustParseAddrPort("198.18.0.200:7")))),
			filtered: true},
		// Closed ports.
		{name: "closed port on an owned address", frame: build(spec4(withDst(netip.AddrPortFrom(owned4, closedPort)))),
			outcome: "no-port", extra: counts{"UDP.NoPorts": 1, "ICMPSent": 1, "TXFrames": 1}},
		{name: "closed port on a shared address", frame: build(spec4(withDst(netip.AddrPortFrom(a4, closedPort)))),
			outcome: "kernel"},
		// Group destinations: no service answers them.
		{name: "subnet broadcast to echo", frame: build(spec4(withDst(netip.AddrPortFrom(bcast4, 7)), withDstMAC(frame.BroadcastMAC))),
			outcome: "delivered", extra: guard("GuardNonUnicast")},
		{name: "limited broadcast to a closed port", frame: build(spec4(withDst(netip.AddrPortFrom(netip.AddrFrom4([4]byte{255, 255, 255, 255}), closedPort)),
			withDstMAC(frame.BroadcastMAC))), outcome: "no-port-multi", extra: counts{"UDP.IgnoredMulti": 1}},
		{name: "IPv4 multicast to echo", frame: build(spec4(withDst(netip.AddrPortFrom(mcast4, 7)),
			withDstMAC(frame.MAC{0x01, 0x00, 0x5e, 0x00, 0x00, 0x01}))), outcome: "delivered", extra: guard("GuardNonUnicast")},
		{name: "IPv6 multicast to echo", frame: build(spec6(withDst(netip.AddrPortFrom(mcast6, 7)),
			withDstMAC(frame.MAC{0x33, 0x33, 0, 0, 0, 1}))), outcome: "delivered", extra: guard("GuardNonUnicast")},
		// A group nobody joined is not for this host: the kernel's IP
		// layer drops it before UDP counts it.
		{name: "IPv4 multicast to a group not joined", frame: build(spec4(withDst(netip.AddrPortFrom(other4, 7)),
			withDstMAC(frame.MAC{0x01, 0x00, 0x5e, 0x00, 0x00, 0xfb}))), outcome: "other-host"},
		// Spoofed sources.
		{name: "the engine's shared address as source", frame: build(spec4(withSrc(netip.AddrPortFrom(a4, replyPort)))),
			outcome: "delivered", extra: guard("GuardSource")},
		{name: "the engine's owned address as source", frame: build(spec4(withSrc(netip.AddrPortFrom(owned4, replyPort)), withDst(netip.AddrPortFrom(owned4, 7)))),
			outcome: "delivered", extra: guard("GuardSource")},
		{name: "broadcast source address", frame: build(spec4(withSrc(netip.AddrPortFrom(bcast4, replyPort)))),
			outcome: "delivered", extra: guard("GuardSource")},
		{name: "loopback source address", frame: build(spec4(withSrc(netip.MustParseAddrPort("127.0.0.1:40001")))),
			outcome: "delivered", extra: guard("GuardSource")},
		// Service loops.
		{name: "source port 7 (echo) to echo", frame: build(spec4(withSrc(netip.AddrPortFrom(b4, 7)))),
			outcome: "delivered", extra: guard("GuardLoop")},
		{name: "source port 19 (chargen) to echo", frame: build(spec4(withSrc(netip.AddrPortFrom(b4, 19)))),
			outcome: "delivered", extra: guard("GuardLoop")},
		{name: "source port 0 to echo", frame: build(spec4(withSrc(netip.AddrPortFrom(b4, 0)))),
			outcome: "delivered", extra: guard("GuardLoop")},
		// Reflection: a burst of chargen requests that claim to come
		// from a victim. The per-source bucket answers its burst and then
		// SourceRate per second, however many requests come.
		{name: "chargen burst from a spoofed source", copies: 200,
			frame: build(spec4(withSrc(netip.AddrPortFrom(victim4, 40002)), withDst(netip.AddrPortFrom(a4, 19)))),
			check: func(t *testing.T, d counts, elapsed time.Duration) {
				const n = 200
				answered, limited := d["UDP.OutDatagrams"], d["GuardRateLimited"]
				bound := uint64(engine.DefaultSourceBurst) + uint64(math.Ceil(engine.DefaultSourceRate*elapsed.Seconds()))
				t.Logf("chargen from a spoofed source: %d requests in %v, %d answered (bound %d), %d held back",
					n, elapsed.Round(time.Millisecond), answered, bound, limited)
				if answered < engine.DefaultSourceBurst || answered > bound || answered+limited != n {
					t.Errorf("chargen burst: %d answered, %d rate-limited of %d; want at least the burst %d, at most %d, and all accounted for",
						answered, limited, n, engine.DefaultSourceBurst, bound)
				}
				want := counts{"FramesIn": n, "RingPackets": n, "BytesIn": n * chargenReqLen,
					"outcome:delivered": n, "UDP.InDatagrams": n, "UDP.OutDatagrams": answered, "TXFrames": answered,
					"GuardRateLimited": limited}
				if s := diff(d, want); s != "" {
					t.Errorf("chargen burst: counters moved wrongly: %s\n(moved: %s)", s, d.nonzero())
				}
			}},
	}
}
