package reassembly

import (
	"math/rand/v2"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/pktengine/pktengine/frame"
)

// flooder writes random fragments, the FragmentSmack pattern: random
// sources (from a pool, or all within one /64), random identifications,
// offsets and lengths, never completing anything. It reuses one buffer.
type flooder struct {
	rng     *rand.Rand
	buf     []byte
	sources int // distinct sources (IPv6: /64s); 0 for a fresh random one each time
	v6      bool
	maxLen  int
}

func newFlooder(seed uint64, sources int, v6 bool) *flooder {
	return &flooder{rng: rand.New(rand.NewPCG(seed, 99)), buf: make([]byte, 2048), sources: sources, v6: v6, maxLen: 1480}
}

// next writes the next fragment into the flooder's buffer and decodes it
// into p, without allocating.
func (fl *flooder) next(p *frame.Packet) []byte {
	b := fl.buf
	copy(b, macB[:])
	copy(b[6:], macA[:])
	n := 8 * (1 + fl.rng.IntN(fl.maxLen/8))
	off := 8 * fl.rng.IntN(8191)
	s := fl.rng.Uint32()
	if fl.sources > 0 {
		s %= uint32(fl.sources)
	}
	if !fl.v6 {
		b[12], b[13] = 0x08, 0x00
		ip := frame.IPv4(b[14 : 14+20+n])
		ip.SetHeaderLength(20)
		ip.SetTOS(0)
		ip.SetTotalLength(uint16(20 + n))
		ip.SetID(uint16(fl.rng.Uint32()))
		ip.SetFlagsFragmentOffset(frame.IPv4FlagMoreFragments, uint16(min(off, 65512-n)))
		ip.SetTTL(64)
		ip.SetProtocol(17)
		ip.SetSource(netip.AddrFrom4([4]byte{10, byte(s >> 16), byte(s >> 8), byte(s)}))
		ip.SetDestination(b4)
		ip.SetChecksum(0)
		ip.SetChecksum(ip.CalculateChecksum())
		p.Decode(b[:14+20+n])
		return b[:14+20+n]
	}
	b[12], b[13] = 0x86, 0xdd
	ip := frame.IPv6(b[14 : 14+48+n])
	ip.SetVersionTrafficClassFlowLabel(0, 0)
	ip.SetPayloadLength(uint16(8 + n))
	ip.SetNextHeader(44)
	ip.SetHopLimit(64)
	src := [16]byte{0: 0xfd, 1: 0xee}
	for i := 8; i < 16; i++ {
		src[i] = byte(fl.rng.Uint32())
	}
	if fl.sources > 0 {
		src[7] = byte(s) // a /64 per source
	} else {
		for i := 2; i < 8; i++ {
			src[i] = byte(fl.rng.Uint32())
		}
	}
	ip.SetSource(netip.AddrFrom16(src))
	ip.SetDestination(b6)
	frame.IPv6Fragment(ip[40:]).Set(17, uint16(max(min(off, 65535-n)&^7, 8)), true, fl.rng.Uint32())
	p.Decode(b[:14+48+n])
	return b[:14+48+n]
}

// legit feeds one legitimate datagram's fragments, each preceded by ratio
// flood fragments, and reports whether it came out whole. It checks the
// memory bound after every fragment.
func floodedDatagram(t *testing.T, r *Reassembler, fl *flooder, frags [][]byte, ratio int, now time.Time, s *frame.UDPSpec) bool {
	t.Helper()
	var p frame.Packet
	limit := r.Stats().MemoryLimit
	for i, f := range frags {
		for range ratio {
			b := fl.next(&p)
			r.Add(b, &p, now)
		}
		p.Decode(f)
		res := r.Add(f, &p, now)
		if st := r.Stats(); st.MemoryInUse > limit || st.Queues > len(r.queues)-1 {
			t.Fatalf("memory %d of %d, %d queues", st.MemoryInUse, limit, st.Queues)
		}
		if i < len(frags)-1 {
			if res.Outcome != Held {
				return false
			}
			continue
		}
		if res.Outcome != Reassembled {
			return false
		}
		checkUDP(t, res.Datagram, s)
		r.Release(res.Datagram)
		return true
	}
	return false
}

// TestFloodManySources: a flood of random fragments from a million
// sources (FragmentSmack) fills memory and evicts the least recently
// active datagrams; a legitimate 65,507-byte datagram from another source
// whose fragments come no more than MaxQueues/2 flood fragments apart is
// never the least recently active, so it completes, every time. Memory
// stays within the limit and nothing is allocated.
func TestFloodManySources(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		r := mustNew(t, nil)
		fl := newFlooder(1, 0, v6)
		src, dst := addrs(v6)
		s := udpSpec(src, dst, frame.MaxUDPPayloadIPv4, 1)
		ratio := (len(r.queues) - 1) / 2
		var ms0, ms1 runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms0)
		for i := range 4 {
			s.ID = uint16(i)
			frags := fragments(t, s, 1500, uint32(i))
			if !floodedDatagram(t, r, fl, frags, ratio, t0, s) {
				t.Fatalf("v6 %v: datagram %d lost in a flood of %d fragments per fragment; stats %+v", v6, i, ratio, r.Stats())
			}
		}
		runtime.ReadMemStats(&ms1)
		st := r.Stats()
		// The bound is real: a datagram whose fragments come more than
		// MaxQueues new datagrams apart is evicted before it completes.
		s.ID = 99
		if floodedDatagram(t, r, fl, fragments(t, s, 1500, 99), 2*len(r.queues), t0, s) {
			t.Errorf("v6 %v: a datagram survived %d flood fragments between its fragments", v6, 2*len(r.queues))
		}
		if st.Evictions == 0 || st.Fragments[Evicted] == 0 || st.Queues < len(r.queues)-1-50 && st.MemoryInUse < st.MemoryLimit*3/4 {
			t.Errorf("v6 %v: the flood did not fill memory: %+v", v6, st)
		}
		if d := ms1.TotalAlloc - ms0.TotalAlloc; d > 8<<20 { // the legit frames themselves are built with allocations
			t.Errorf("v6 %v: %d bytes allocated during the flood", v6, d)
		}
		t.Logf("v6 %v: %d flood fragments, %d evictions, memory %d/%d, %d queues", v6, st.FragmentsIn, st.Evictions, st.MemoryInUse, st.MemoryLimit, st.Queues)
	}
}

// TestFloodOneSource: a flood from one source (or one IPv6 /64 using
// random addresses in it) stays within that source's share: it only ever
// evicts its own datagrams, so a legitimate datagram from another source
// completes however many flood fragments come between its fragments.
func TestFloodOneSource(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		r := mustNew(t, nil)
		fl := newFlooder(2, 1, v6)
		src, dst := addrs(v6)
		s := udpSpec(src, dst, 20000, 2)
		frags := fragments(t, s, 1500, 5)
		if !floodedDatagram(t, r, fl, frags, 20000, t0, s) {
			t.Fatalf("v6 %v: datagram lost; stats %+v", v6, r.Stats())
		}
		st := r.Stats()
		if st.Evictions == 0 || st.SourceEvictions != st.Evictions {
			t.Errorf("v6 %v: %d evictions, %d by source: the flood evicted others", v6, st.Evictions, st.SourceEvictions)
		}
		if st.MemoryInUse > int(r.srcPages)*pageSize+pageSize*vPages {
			t.Errorf("v6 %v: %d bytes in use for one source and one datagram", v6, st.MemoryInUse)
		}
	}
}

// TestFloodFewSources: seven sources flooding together still leave room:
// each holds at most its eighth, so the other datagrams are never evicted.
func TestFloodFewSources(t *testing.T) {
	r := mustNew(t, nil)
	fl := newFlooder(3, 7, false)
	s := udpSpec(a4, b4, 30000, 3)
	frags := fragments(t, s, 1500, 1)
	if !floodedDatagram(t, r, fl, frags, 5000, t0, s) {
		t.Fatalf("datagram lost; stats %+v", r.Stats())
	}
	if st := r.Stats(); st.SourceEvictions != st.Evictions || st.Sources != 7 {
		t.Errorf("%d evictions, %d by source, %d sources", st.Evictions, st.SourceEvictions, st.Sources)
	}
}

// TestNeverCompleted: datagrams that never complete (the last fragment
// missing) hold memory until their timeout, then give it all back; only
// those whose first fragment came are reported for ICMP.
func TestNeverCompleted(t *testing.T) {
	x := newTester(t, nil)
	for i := range 200 {
		f := rawFrag{src: a4, dst: b4, id: uint32(i), off: 8 * (i % 2), more: true, data: make([]byte, 1000)}
		x.want(f.build(), Held)
		x.advance(10 * time.Millisecond)
	}
	if st := x.r.Stats(); st.Queues == 0 || st.MemoryInUse == 0 {
		t.Fatalf("stats %+v", st)
	}
	x.advance(DefaultTimeoutIPv4)
	var e Expired
	n := 0
	for x.r.NextExpired(x.now, &e) {
		n++
	}
	st := x.r.Stats()
	// One source holds at most 128 queues, so 72 of the 200 were evicted
	// by their own successors before they could time out.
	if n != 64 || st.Queues != 0 || st.MemoryInUse != 0 || st.IP.ReasmTimeout != 128 || st.Evictions != 72 {
		t.Errorf("%d reports; stats %+v", n, st)
	}
}

// TestDuplicateStorm: replaying a held fragment costs nothing and does
// not keep its datagram alive: duplicates do not count as activity.
func TestDuplicateStorm(t *testing.T) {
	x := newTester(t, &Config{MemoryLimit: MinMemoryLimit, SourceLimit: MinMemoryLimit})
	dup := rawFrag{src: a4, dst: b4, id: 1, more: true, data: make([]byte, 1000)}.build()
	x.want(dup, Held)
	x.want(rawFrag{src: a4, dst: b4, id: 2, more: true, data: make([]byte, 1000)}.build(), Held)
	before := x.r.Stats().MemoryInUse
	for range 10000 {
		x.want(dup, Duplicate)
	}
	if st := x.r.Stats(); st.MemoryInUse != before || st.Fragments[Duplicate] != 10000 {
		t.Fatalf("stats %+v", st)
	}
	// Other sources fill the queues: datagram 1, replayed but not
	// active, goes before datagram 2.
	k1, k2 := keyOf(t, dup), keyOf(t, rawFrag{src: a4, dst: b4, id: 2, more: true, data: make([]byte, 8)}.build())
	fl := newFlooder(4, 0, false)
	var p frame.Packet
	for n := 0; x.r.held(k1); n++ {
		if !x.r.held(k2) || n > 1000 {
			t.Fatalf("after %d flood fragments: datagram 1 held %v, 2 held %v", n, x.r.held(k1), x.r.held(k2))
		}
		b := fl.next(&p)
		x.r.Add(b, &p, x.now)
	}
	if !x.r.held(k2) {
		t.Fatal("datagram 2 went with datagram 1")
	}
}

// keyOf returns the datagram key of a fragment.
func keyOf(t *testing.T, b []byte) fragKey {
	var p frame.Packet
	p.Decode(b)
	var f fragInfo
	if parseFragment(b, &p, &f, 64) != 0 {
		t.Fatal("not a fragment")
	}
	return f.key
}

// held reports whether a datagram with key k is under reassembly.
func (r *Reassembler) held(k fragKey) bool { return r.lookup(&k, maphash64(r, k[:])) != 0 }

// TestTinyFirst: tiny first fragments (RFC 1858's attack on filters):
// IPv4 reassembles them, as Linux does; IPv6 refuses a first fragment
// without the whole UDP header (RFC 7112).
func TestTinyFirst(t *testing.T) {
	x := newTester(t, nil)
	s := udpSpec(a4, b4, 100, 1)
	whole := fragments(t, s, 1500, 0)[0]
	ip := whole[14:]
	// Fragments of 8 bytes of UDP data each, the first holding only the
	// first 8 bytes of the UDP header... and one with 4.
	for _, first := range []int{8, 16} {
		data := ip[20:]
		f1 := rawFrag{src: a4, dst: b4, id: uint32(first), more: true, data: data[:first]}
		f2 := rawFrag{src: a4, dst: b4, id: uint32(first), off: first, data: data[first:]}
		x.want(f1.build(), Held)
		res := x.want(f2.build(), Reassembled)
		checkUDP(t, res.Datagram, s)
		x.r.Release(res.Datagram)
	}
	res := x.add(rawFrag{src: a6, dst: b6, id: 1, more: true, data: make([]byte, 8)[:4]}.build())
	if res.Outcome != IncompleteChain || !res.SendParamProblem {
		t.Fatalf("IPv6 tiny first fragment: %+v", res)
	}
}
