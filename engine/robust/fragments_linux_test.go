//go:build linux

package robust_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pktengine/pktengine/engine"
	"github.com/pktengine/pktengine/frame"
	"github.com/pktengine/pktengine/internal/lab"
	"github.com/pktengine/pktengine/internal/labtest"
	"github.com/pktengine/pktengine/proto"
)

// Hostile fragments against the live engine: each kind of bad fragment
// sequence ends in its documented counters, and a flood of random
// fragments from many sources costs bounded memory while legitimate
// datagrams, fragmented or not, keep being answered.

// fragFloodEnv sets the default of -robust.fragflood, for runs that cannot
// pass a flag to this package alone (`make robust` sets 60s).
const fragFloodEnv = "PKTENGINE_ROBUST_FRAGFLOOD"

var fragFloodFor = flag.Duration("robust.fragflood", envDuration(fragFloodEnv, 3*time.Second),
	"how long TestFragmentFlood floods the engine with random fragments (default from $"+fragFloodEnv+", else 3s)")

var owned6 = netip.MustParseAddr("fd00::100")

// fragmentLab is the hostile-fragment lab: the engine in A on A's own
// addresses and on owned ones, echo on 7 and on clientPort, B's listeners
// on replyPort, a raw socket in B, and a kernel echo client in B.
type fragmentLab struct {
	a, b    *lab.Host
	e       *engine.Engine
	raw     *rawSocket
	arrived *arrivals
	client  *echoClient
	replies *replyListener
}

func newFragmentLab(t *testing.T, cfg *engine.Config) *fragmentLab {
	t.Helper()
	l := labtest.New(t, nil)
	fl := &fragmentLab{a: l.A(), b: l.B()}
	cfg.Addrs = []netip.Prefix{fl.a.IPv4, fl.a.IPv6, netip.PrefixFrom(owned4, 24), netip.PrefixFrom(owned6, 64)}
	fl.e = openEngine(t, fl.a, cfg)
	for _, port := range []uint16{7, clientPort} {
		if _, err := fl.e.HandleService(netip.AddrPortFrom(netip.Addr{}, port), engine.Echo); err != nil {
			t.Fatal(err)
		}
	}
	fl.replies = listenReplies(t, fl.b)
	fl.raw = openRaw(t, fl.b)
	fl.arrived = countArrivals(t, fl.a, fl.b.MAC, clientPort)
	fl.client = startEchoClient(t, fl.b, netip.AddrPortFrom(fl.a.IPv4.Addr(), clientPort))
	return fl
}

// fragmentOf builds bytes [off, off+n) of the UDP datagram s describes
// as a fragment with identification id.
func fragmentOf(t *testing.T, s *frame.UDPSpec, off, n int, id uint32) []byte {
	t.Helper()
	s.ID = uint16(id)
	buf := make([]byte, 2048)
	k, err := frame.BuildUDPFragment(buf, s, frame.Fragment{Offset: off, Length: n, ID: id})
	if err != nil {
		t.Fatalf("BuildUDPFragment: %v", err)
	}
	return buf[:k]
}

// gauges are the counters that are not counts of events.
var gauges = []string{"ReasmQueues", "ReasmFragments", "ReasmMemoryInUse", "ReasmMemoryLimit"}

// TestHostileFragments sends each kind of hostile fragment sequence from
// a raw socket in B to the engine in A (overlapping, duplicate, oversize,
// tiny first, never completed), while a kernel client keeps exchanging
// datagrams with an echo port. After each, the engine's counters must have
// moved by exactly that kind's documented counters and the client's; the
// client must never miss an answer; and at the end nothing is left under
// reassembly and the frames add up.
func TestHostileFragments(t *testing.T) {
	fl := newFragmentLab(t, &engine.Config{ReassemblyTimeout4: time.Second, ReassemblyTimeout6: time.Second})
	a, b := fl.a, fl.b
	srcMAC, dstMAC := frame.MAC(b.MAC), frame.MAC(a.MAC)
	spec := func(src, dst netip.Addr, payload int) *frame.UDPSpec {
		return &frame.UDPSpec{SrcMAC: srcMAC, DstMAC: dstMAC, Src: netip.AddrPortFrom(src, replyPort),
			Dst: netip.AddrPortFrom(dst, 7), Payload: bytes.Repeat([]byte("f"), payload)}
	}
	b4, b6 := b.IPv4.Addr(), b.IPv6.Addr()
	s4 := func() *frame.UDPSpec { return spec(b4, owned4, 64) } // 72 bytes of UDP
	s6 := func() *frame.UDPSpec { return spec(b6, owned6, 64) }
	// setOffset moves a fragment to off (bytes), leaving MF as it is.
	setOffset := func(f []byte, off int) []byte {
		if f[12] == 0x08 {
			ip := frame.IPv4(f[frame.EthernetHeaderLen:])
			v := binary.BigEndian.Uint16(ip[6:])
			binary.BigEndian.PutUint16(ip[6:], v&0xe000|uint16(off/8))
			ip.SetChecksum(0)
			ip.SetChecksum(ip.CalculateChecksum())
			return f
		}
		fh := f[frame.EthernetHeaderLen+frame.IPv6HeaderLen:]
		v := binary.BigEndian.Uint16(fh[2:])
		binary.BigEndian.PutUint16(fh[2:], v&7|uint16(off))
		return f
	}
	// An IPv6 first fragment whose header chain does not end in it: a
	// Destination Options header of 16 bytes with 8 of them in the
	// fragment (RFC 7112).
	tinyChain := func() []byte {
		f := fragmentOf(t, s6(), 0, 8, 60)
		fh := frame.EthernetHeaderLen + frame.IPv6HeaderLen
		f[fh] = proto.IPProtoDstOpts
		copy(f[fh+8:], []byte{proto.IPProtoUDP, 1, 1, 4, 0, 0, 0, 0})
		return f
	}
	echoed := counts{"reassembled:delivered": 1, "UDP.InDatagrams": 1, "UDP.OutDatagrams": 1, "TXFrames": 1}

	cases := []struct {
		name    string
		frames  [][]byte
		want    counts
		replies int
		// waitFor, if set, is a counter that moves later (a timeout):
		// the case waits until it does.
		waitFor string
	}{
		{name: "IPv4 overlapping fragments",
			frames: [][]byte{fragmentOf(t, s4(), 0, 32, 1), fragmentOf(t, s4(), 16, 32, 1)},
			want: counts{"outcome:fragment-held": 1, "outcome:fragment-overlap": 1,
				"IP.ReasmReqds": 2, "IP.ReasmFails": 1, "IP.ReasmOverlaps": 1}},
		{name: "IPv6 overlapping fragments",
			frames: [][]byte{fragmentOf(t, s6(), 16, 32, 2), fragmentOf(t, s6(), 0, 24, 2)},
			want: counts{"outcome:fragment-held": 1, "outcome:fragment-overlap": 1,
				"IP6.ReasmReqds": 2, "IP6.ReasmFails": 1, "IP6.ReasmOverlaps": 1}},
		{name: "IPv4 duplicate fragment, then the datagram completes",
			frames: [][]byte{fragmentOf(t, s4(), 0, 32, 3), fragmentOf(t, s4(), 0, 32, 3), fragmentOf(t, s4(), 32, 40, 3)},
			want: counts{"outcome:fragment-held": 1, "outcome:fragment-duplicate": 1, "outcome:fragment-reassembled": 1,
				"IP.ReasmReqds": 3, "IP.ReasmOKs": 1}.plus(echoed), replies: 1},
		{name: "IPv6 fragments out of order, duplicated, completing",
			frames: [][]byte{fragmentOf(t, s6(), 48, 24, 4), fragmentOf(t, s6(), 0, 24, 4), fragmentOf(t, s6(), 48, 24, 4), fragmentOf(t, s6(), 24, 24, 4)},
			want: counts{"outcome:fragment-held": 2, "outcome:fragment-duplicate": 1, "outcome:fragment-reassembled": 1,
				"IP6.ReasmReqds": 4, "IP6.ReasmOKs": 1}.plus(echoed), replies: 1},
		{name: "IPv4 tiny first fragment (the UDP header alone), then the rest",
			frames: [][]byte{fragmentOf(t, s4(), 0, 8, 5), fragmentOf(t, s4(), 8, 64, 5)},
			want: counts{"outcome:fragment-held": 1, "outcome:fragment-reassembled": 1,
				"IP.ReasmReqds": 2, "IP.ReasmOKs": 1}.plus(echoed), replies: 1},
		{name: "IPv6 tiny first fragment without the whole header chain (RFC 7112)",
			frames: [][]byte{tinyChain()},
			want: counts{"outcome:fragment-incomplete-chain": 1, "IP6.ReasmReqds": 1, "IP6.InHdrErrors": 1,
				"ICMPParamProblemSent": 1, "TXFrames": 1}},
		{name: "IPv4 fragment ending past 65,535 bytes",
			frames: [][]byte{setOffset(fragmentOf(t, s4(), 0, 32, 6), 65512)},
			want:   counts{"outcome:fragment-too-big": 1, "IP.ReasmReqds": 1, "IP.ReasmFails": 1}},
		{name: "IPv6 fragment ending past 65,535 bytes",
			frames: [][]byte{setOffset(fragmentOf(t, s6(), 0, 32, 7), 65512)},
			want: counts{"outcome:fragment-too-big": 1, "IP6.ReasmReqds": 1, "IP6.InHdrErrors": 1,
				"ICMPParamProblemSent": 1, "TXFrames": 1}},
		{name: "IPv6 fragment not a multiple of 8 bytes, more to follow",
			frames: [][]byte{func() []byte {
				f := fragmentOf(t, s6(), 0, 32, 8)
				f = f[:len(f)-4]
				ip := frame.IPv6(f[frame.EthernetHeaderLen:])
				ip.SetPayloadLength(ip.PayloadLength() - 4)
				return f
			}()},
			want: counts{"outcome:fragment-unaligned": 1, "IP6.ReasmReqds": 1, "IP6.InHdrErrors": 1,
				"ICMPParamProblemSent": 1, "TXFrames": 1}},
		{name: "IPv4 first fragment never completed: Time Exceeded after 1 s",
			frames: [][]byte{fragmentOf(t, s4(), 0, 32, 9)}, waitFor: "ICMPTimeExceededSent",
			want: counts{"outcome:fragment-held": 1, "IP.ReasmReqds": 1, "IP.ReasmFails": 1, "IP.ReasmTimeout": 1,
				"ICMPTimeExceededSent": 1, "TXFrames": 1}},
		{name: "IPv6 last fragment never completed: no Time Exceeded without the first",
			frames: [][]byte{fragmentOf(t, s6(), 32, 40, 10)}, waitFor: "IP6.ReasmTimeout",
			want: counts{"outcome:fragment-held": 1, "IP6.ReasmReqds": 1, "IP6.ReasmFails": 1, "IP6.ReasmTimeout": 1}},
	}
	first := settledWithClient(t, fl.e, fl.client)
	var wantReplies, sent uint64
	for _, tc := range cases {
		before := settledWithClient(t, fl.e, fl.client)
		arrived0 := fl.arrived.count()
		var bytesIn uint64
		for _, f := range tc.frames {
			if err := fl.raw.send(f); err != nil {
				t.Fatalf("%s: sending a %d-byte frame: %v", tc.name, len(f), err)
			}
			bytesIn += uint64(len(f))
		}
		sent += uint64(len(tc.frames))
		after := waitArrived(t, fl.e, fl.client, fl.arrived, arrived0+uint64(len(tc.frames)))
		if tc.waitFor != "" {
			for deadline := time.Now().Add(5 * time.Second); after.c[tc.waitFor] == before.c[tc.waitFor]; {
				if time.Now().After(deadline) {
					t.Fatalf("%s: %s did not move in 5 s", tc.name, tc.waitFor)
				}
				time.Sleep(10 * time.Millisecond)
				after = settledWithClient(t, fl.e, fl.client)
			}
		}
		d := after.c.sub(before.c)
		ex := after.exchanges - before.exchanges
		d = d.sub(counts{
			"FramesIn": ex, "RingPackets": ex, "BytesIn": ex * uint64(fl.client.frameLen),
			"outcome:delivered": ex, "UDP.InDatagrams": ex, "UDP.OutDatagrams": ex, "TXFrames": ex,
		})
		for _, g := range gauges {
			delete(d, g)
		}
		// The engine's own IGMP and MLD reports (it joins the
		// solicited-node groups of its owned addresses, and repeats
		// the reports for a while) are not the fragments' doing.
		own := d["Multicast.IGMPReports"] + d["Multicast.MLDReports"]
		d = d.sub(counts{"TXFrames": own, "Multicast.IGMPReports": d["Multicast.IGMPReports"], "Multicast.MLDReports": d["Multicast.MLDReports"]})
		for k, v := range d {
			if v == 0 {
				delete(d, k)
			}
		}
		n := uint64(len(tc.frames))
		want := counts{"FramesIn": n, "RingPackets": n, "BytesIn": bytesIn}.plus(tc.want)
		if s := diff(d, want); s != "" {
			t.Errorf("%s: counters moved wrongly: %s\n(moved: %s)", tc.name, s, d.nonzero())
		} else {
			t.Logf("%-68s -> %s", tc.name, d.nonzero())
		}
		wantReplies += uint64(tc.replies)
		if got := fl.replies.wait(wantReplies, tc.replies > 0); got != wantReplies {
			t.Errorf("%s: the peer's listeners have %d answers, want %d", tc.name, got, wantReplies)
		}
	}
	last := settledWithClient(t, fl.e, fl.client)
	c := fl.e.Counters()
	if err := c.Check(); err != nil {
		t.Error(err)
	}
	if c.ReasmQueues != 0 || c.ReasmFragments != 0 || c.ReasmMemoryInUse != 0 || c.ReasmMemoryLimit == 0 || c.ReasmMemoryLimit > engine.DefaultReassemblyMemory {
		t.Errorf("left under reassembly: %d datagrams, %d fragments, %d bytes (of %d)", c.ReasmQueues, c.ReasmFragments, c.ReasmMemoryInUse, c.ReasmMemoryLimit)
	}
	if got, want := last.c["FramesIn"]-first.c["FramesIn"], sent+last.exchanges-first.exchanges; got != want {
		t.Errorf("frames in %d, want %d fragments + %d client requests", got, sent, last.exchanges-first.exchanges)
	}
}

// plus returns m + o.
func (m counts) plus(o counts) counts {
	r := counts{}
	r.add(m)
	r.add(o)
	return r
}

// TestFragmentFlood is the FragmentSmack pattern: random fragments of
// datagrams that never complete, from thousands of spoofed IPv4 sources
// and IPv6 /64s, for -robust.fragflood (3 s by default, 60 s in `make
// robust`), while a kernel client exchanges small datagrams with one echo
// port and another exchanges 8,192-byte ones (six fragments each) with
// the other. Then:
//
//   - both clients were answered every time: the flood never starves a
//     datagram whose fragments come together;
//   - every frame is accounted for: the fragments the flood sent, and the
//     legitimate ones, are the fragment outcomes, exactly;
//   - the reassemblers' memory never passed their limit, and the
//     process's resident memory and Go heap did not grow with the flood;
//   - the engine allocated nothing per fragment.
func TestFragmentFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the fragment flood takes a while")
	}
	fl := newFragmentLab(t, &engine.Config{})
	a, b := fl.a, fl.b
	// The fragmented client: 8,192 bytes, six fragments a datagram.
	big := startBigEchoClient(t, b, netip.AddrPortFrom(a.IPv4.Addr(), 7), 8192)

	srcMAC, dstMAC := frame.MAC(b.MAC), frame.MAC(a.MAC)
	rng := rand.New(rand.NewPCG(1, 2))
	payload := make([]byte, 60000)
	makeFrag := func(buf []byte) []byte {
		s := &frame.UDPSpec{SrcMAC: srcMAC, DstMAC: dstMAC, Payload: payload[:rng.IntN(59000)+1000], ID: uint16(rng.Uint32())}
		if rng.IntN(2) == 0 {
			s.Src = netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(rng.IntN(256)), byte(rng.IntN(256)), byte(rng.IntN(256))}), 1234)
			s.Dst = netip.AddrPortFrom([]netip.Addr{owned4, a.IPv4.Addr()}[rng.IntN(2)], uint16(rng.IntN(65535)+1))
		} else {
			var src [16]byte
			src[0], src[1] = 0xfd, 0x99
			for i := 2; i < 16; i++ {
				src[i] = byte(rng.IntN(256))
			}
			s.Src = netip.AddrPortFrom(netip.AddrFrom16(src), 1234)
			s.Dst = netip.AddrPortFrom([]netip.Addr{owned6, a.IPv6.Addr()}[rng.IntN(2)], uint16(rng.IntN(65535)+1))
		}
		l4 := frame.UDPHeaderLen + len(s.Payload)
		off := rng.IntN(l4/8-1) * 8
		n := min(8*(rng.IntN(180)+1), (l4-off)&^7)
		if off+n >= l4 {
			n -= 8 // never the last fragment: nothing completes
		}
		if n <= 0 {
			n, off = 8, 0
		}
		k, err := frame.BuildUDPFragment(buf, s, frame.Fragment{Offset: off, Length: n, ID: rng.Uint32()})
		if err != nil {
			t.Fatalf("BuildUDPFragment: %v", err)
		}
		return buf[:k]
	}
	// A pool of frames, so that building them costs the sender nothing
	// while it floods.
	pool := make([][]byte, 4096)
	for i := range pool {
		pool[i] = bytes.Clone(makeFrag(make([]byte, 2048)))
	}

	flood := func(d time.Duration) uint64 {
		var n uint64
		for start := time.Now(); time.Since(start) < d; {
			// 32 frames a millisecond: far beyond any real fragment
			// traffic, well within what the ring and a loaded machine's
			// worker take without drops, so that the legitimate
			// clients' losses would be the engine's.
			for range 32 {
				if err := fl.raw.send(pool[n%uint64(len(pool))]); err != nil {
					t.Fatalf("raw send: %v", err)
				}
				n++
			}
			time.Sleep(time.Millisecond)
		}
		return n
	}
	// Warm up: every page of the reassemblers and rings touched.
	flood(500 * time.Millisecond)
	before := takeFlood(t, fl, big)
	var maxInUse, limit atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			c := fl.e.Counters()
			if c.ReasmMemoryInUse > maxInUse.Load() {
				maxInUse.Store(c.ReasmMemoryInUse)
			}
			limit.Store(c.ReasmMemoryLimit)
		}
	})
	sent := flood(*fragFloodFor)
	close(stop)
	wg.Wait()
	after := takeFlood(t, fl, big)

	d := after.c.sub(before.c)
	var fragOutcomes uint64
	for k, v := range d {
		if strings.HasPrefix(k, "outcome:fragment-") {
			fragOutcomes += v
		}
	}
	legit := 6 * (after.big - before.big)
	t.Logf("flooded %d random fragments in %v from random sources; %d small and %d fragmented exchanges meanwhile, all answered",
		sent, *fragFloodFor, after.small-before.small, after.big-before.big)
	t.Logf("fragments: %s; evictions %d (by source share %d)", d.outcomes(), d["ReasmEvictions"], d["ReasmSourceEvictions"])
	if d["RingDrops"] != 0 {
		t.Errorf("%d ring drops", d["RingDrops"])
	}
	if fragOutcomes != sent+legit {
		t.Errorf("fragment outcomes %d, want %d flooded + %d legitimate", fragOutcomes, sent, legit)
	}
	if got := d["IP.ReasmOKs"] + d["IP6.ReasmOKs"]; got != after.big-before.big {
		t.Errorf("%d datagrams reassembled, want the fragmented client's %d", got, after.big-before.big)
	}
	if after.big == before.big || after.small == before.small {
		t.Errorf("the clients made no progress during the flood: %d fragmented, %d small exchanges", after.big-before.big, after.small-before.small)
	}
	if maxInUse.Load() > limit.Load() || limit.Load() == 0 || limit.Load() > engine.DefaultReassemblyMemory {
		t.Errorf("reassembly memory peaked at %d bytes, limit %d", maxInUse.Load(), limit.Load())
	}
	mallocs := after.mem.Mallocs - before.mem.Mallocs
	t.Logf("memory: reassembly peak %d of %d KiB; VmRSS %d -> %d KiB, Go heap in use %d -> %d KiB; %d allocations for %d fragments",
		maxInUse.Load()>>10, limit.Load()>>10, before.rssKiB, after.rssKiB, before.mem.HeapInuse>>10, after.mem.HeapInuse>>10, mallocs, sent)
	// The clients and the test allocate as they go (a few per exchange,
	// more under the race detector): a few thousand a second. One per
	// fragment would be tens of thousands. (TestFragmentAllocs holds the
	// fragment path itself to zero.)
	if perSec := float64(mallocs) / (*fragFloodFor).Seconds(); perSec > 5000 {
		t.Errorf("%d allocations in %v (%.0f a second) for %d fragments", mallocs, *fragFloodFor, perSec, sent)
	}
	if growth := int64(after.rssKiB) - int64(before.rssKiB); growth > 16<<10 {
		t.Errorf("resident memory grew by %d KiB during the flood", growth)
	}
	if after.c["ReasmMemoryInUse"] > before.c["ReasmMemoryLimit"] {
		t.Errorf("reassembly memory %d after the flood, limit %d", after.c["ReasmMemoryInUse"], before.c["ReasmMemoryLimit"])
	}
}

// floodSample is what TestFragmentFlood compares.
type floodSample struct {
	c          counts
	small, big uint64
	mem        runtime.MemStats
	rssKiB     uint64
}

func takeFlood(t *testing.T, fl *fragmentLab, big *echoClient) floodSample {
	t.Helper()
	s := floodSample{small: fl.client.pause(), big: big.pause()}
	defer fl.client.resume()
	defer big.resume()
	c := settled(t, fl.e)
	s.c = flatten(&c)
	runtime.GC()
	runtime.ReadMemStats(&s.mem)
	s.rssKiB, _ = rss(t)
	return s
}

// startBigEchoClient is startEchoClient with size-byte datagrams.
func startBigEchoClient(t *testing.T, h *lab.Host, dst netip.AddrPort, size int) *echoClient {
	t.Helper()
	conn := labtest.DialUDP(t, h, dst)
	c := &echoClient{conn: conn, stop: make(chan struct{}), done: make(chan struct{})}
	msg := bytes.Repeat([]byte("0123456789abcdef"), size/16)
	buf := make([]byte, 2*size)
	c.run(t, "the fragmented client", 2*time.Millisecond, func(i int) error {
		binary.BigEndian.PutUint32(msg, uint32(i))
		n, err := lab.Exchange(c.conn, msg, buf, labtest.Timeout)
		if err != nil {
			return err
		}
		if !bytes.Equal(buf[:n], msg) {
			return errors.New("a wrong answer")
		}
		return nil
	})
	return c
}
