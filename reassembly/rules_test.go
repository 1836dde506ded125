package reassembly

import (
	"bytes"
	"testing"
	"time"

	"github.com/pktengine/pktengine/frame"
)

// TestTimeout: a datagram times out its timeout after its first fragment
// to arrive, later fragments not extending it (Linux arms the timer once);
// ReasmFails and ReasmTimeout count it, and NextExpired reports it for an
// ICMP Time Exceeded only if the fragment at offset 0 was there.
func TestTimeout(t *testing.T) {
	for _, c := range []struct {
		v6      bool
		timeout time.Duration
	}{{false, DefaultTimeoutIPv4}, {true, DefaultTimeoutIPv6}} {
		src, dst := addrs(c.v6)
		x := newTester(t, nil)
		first := rawFrag{src: src, dst: dst, id: 1, more: true, data: payload(1600, 1), vlan: 7}.build()
		x.want(first, Held)
		x.advance(c.timeout / 2)
		x.want(rawFrag{src: src, dst: dst, id: 1, off: 1600, more: true, data: payload(8, 1)}.build(), Held)
		x.want(rawFrag{src: src, dst: dst, id: 2, off: 8, more: true, data: payload(8, 1)}.build(), Held) // no first fragment
		x.advance(c.timeout/2 - time.Nanosecond)
		var e Expired
		if x.r.NextExpired(x.now, &e) {
			t.Fatalf("v6 %v: expired before its time", c.v6)
		}
		x.advance(time.Nanosecond)
		if !x.r.NextExpired(x.now, &e) {
			t.Fatalf("v6 %v: no report at its time", c.v6)
		}
		if err := x.r.check(); err != nil {
			t.Fatal(err)
		}
		// The report quotes the first fragment as it came, up to 1,232
		// bytes of it from the IP header on.
		l3 := 18
		if !bytes.Equal(e.Frame, first[:l3+quoteLen]) || e.L3Off != l3 || e.IPVersion != map[bool]uint8{false: 4, true: 6}[c.v6] {
			t.Fatalf("v6 %v: report %d bytes at %d, v%d", c.v6, len(e.Frame), e.L3Off, e.IPVersion)
		}
		if !bytes.Equal(e.Datagram(), first[l3:l3+quoteLen]) {
			t.Fatal("Datagram is not the frame from its IP header")
		}
		if x.r.NextExpired(x.now, &e) {
			t.Fatalf("v6 %v: a report for the datagram without its first fragment", c.v6)
		}
		x.advance(c.timeout / 2)
		if x.r.NextExpired(x.now, &e) {
			t.Fatalf("v6 %v: a second report", c.v6)
		}
		st := x.r.Stats()
		m := st.IP
		if c.v6 {
			m = st.IP6
		}
		if m != (MIB{ReasmReqds: 3, ReasmFails: 2, ReasmTimeout: 2}) || st.Fragments[TimedOut] != 3 || st.Queues != 0 || st.Expired != 0 || st.MemoryInUse != 0 {
			t.Errorf("v6 %v: stats %+v", c.v6, st)
		}
	}
}

// TestTimeoutShortFirst: a report of a first fragment shorter than the
// quote holds the whole fragment.
func TestTimeoutShortFirst(t *testing.T) {
	x := newTester(t, &Config{TimeoutIPv4: time.Second})
	first := rawFrag{src: a4, dst: b4, id: 1, more: true, data: payload(64, 1)}.build()
	x.want(first, Held)
	x.advance(time.Second)
	var e Expired
	if !x.r.NextExpired(x.now, &e) || !bytes.Equal(e.Frame, first) {
		t.Fatalf("report %x, want %x", e.Frame, first)
	}
}

// TestExpiredBeforeReport: once its time is up a datagram takes no more
// fragments, even before NextExpired retires it: the next fragment starts
// a new datagram.
func TestExpiredBeforeReport(t *testing.T) {
	x := newTester(t, &Config{TimeoutIPv4: time.Second})
	d := payload(32, 4)
	x.want(rawFrag{src: a4, dst: b4, id: 1, more: true, data: d[:16]}.build(), Held)
	x.advance(time.Second)
	x.want(rawFrag{src: a4, dst: b4, id: 1, off: 16, data: d[16:]}.build(), Held)
	st := x.r.Stats()
	if st.Expired != 1 || st.Queues != 1 || st.IP.ReasmTimeout != 1 {
		t.Fatalf("stats %+v", st)
	}
	var e Expired
	if !x.r.NextExpired(x.now, &e) || len(e.Frame) != 14+20+16 {
		t.Fatal("no report")
	}
	if x.r.Stats().Expired != 0 {
		t.Fatal("report not retired")
	}
}

// TestECN: RFC 3168 section 5.3 as Linux's ip_frag_ecn_table applies it.
func TestECN(t *testing.T) {
	const notECT, ect1, ect0, ce = 0, 1, 2, 3
	for _, c := range []struct {
		a, b uint8
		want uint8 // ECN of the result; 0xff: dropped
	}{
		{notECT, notECT, notECT}, {ect0, ect0, ect0}, {ect0, ect1, ect0}, {ect1, ect1, ect1},
		{ce, ect0, ce}, {ect1, ce, ce}, {ce, ce, ce},
		{notECT, ect0, 0xff}, {ect1, notECT, 0xff}, {notECT, ce, 0xff},
	} {
		for _, v6 := range []bool{false, true} {
			src, dst := addrs(v6)
			x := newTester(t, nil)
			d := payload(32, 1)
			x.want(rawFrag{src: src, dst: dst, id: 1, more: true, data: d[:16], tos: 0xb8 | c.a}.build(), Held)
			res := x.add(rawFrag{src: src, dst: dst, id: 1, off: 16, data: d[16:], tos: 0xb8 | c.b}.build())
			if c.want == 0xff {
				if res.Outcome != BadECN || x.r.Stats().Fragments[BadECN] != 2 || x.r.Stats().IP.ReasmFails+x.r.Stats().IP6.ReasmFails != 1 {
					t.Errorf("%d+%d v6 %v: %v", c.a, c.b, v6, res.Outcome)
				}
				continue
			}
			if res.Outcome != Reassembled {
				t.Fatalf("%d+%d: %v", c.a, c.b, res.Outcome)
			}
			var p frame.Packet
			p.Decode(res.Datagram.Frame())
			var tos uint8
			if v6 {
				tos = p.IPv6(res.Datagram.Frame()).TrafficClass()
			} else {
				tos = p.IPv4(res.Datagram.Frame()).TOS()
				if !p.IPv4(res.Datagram.Frame()).IsChecksumValid() {
					t.Error("checksum")
				}
			}
			// The first fragment's TOS, with CE merged in.
			want := 0xb8 | c.a
			if c.want == ce {
				want |= ce
			}
			if tos != want {
				t.Errorf("%d+%d v6 %v: TOS %#x, want %#x", c.a, c.b, v6, tos, want)
			}
		}
	}
}

// TestDontFragment: the reassembled IPv4 header keeps DF only if the
// largest fragment had it (Linux's ip_frag_reasm).
func TestDontFragment(t *testing.T) {
	for _, c := range []struct {
		df0, df1 bool
		n0, n1   int
		want     bool
	}{
		{false, false, 16, 8, false}, {true, true, 16, 8, true},
		{true, false, 16, 8, true}, {false, true, 16, 8, false},
		{false, true, 16, 24, true}, {true, false, 16, 16, true}, {true, false, 16, 24, false},
	} {
		x := newTester(t, nil)
		x.want(rawFrag{src: a4, dst: b4, id: 1, more: true, data: make([]byte, c.n0), df: c.df0}.build(), Held)
		res := x.want(rawFrag{src: a4, dst: b4, id: 1, off: c.n0, data: make([]byte, c.n1), df: c.df1}.build(), Reassembled)
		ip := frame.IPv4(res.Datagram.Frame()[14:])
		if ip.DontFragment() != c.want || ip.MoreFragments() || ip.FragmentOffset() != 0 || !ip.IsChecksumValid() {
			t.Errorf("%+v: flags %d", c, ip.Flags())
		}
	}
}

// TestDatagrams: reassembled datagrams come from a pool of MaxDatagrams;
// with all of them out, a completed datagram is dropped (NoBuffer);
// Release puts one back, twice does nothing.
func TestDatagrams(t *testing.T) {
	x := newTester(t, &Config{MaxDatagrams: 2})
	complete := func(id uint32) Result {
		x.add(rawFrag{src: a4, dst: b4, id: id, more: true, data: make([]byte, 8)}.build())
		return x.add(rawFrag{src: a4, dst: b4, id: id, off: 8, data: make([]byte, 8)}.build())
	}
	r1, r2 := complete(1), complete(2)
	if r1.Outcome != Reassembled || r2.Outcome != Reassembled || r1.Datagram == r2.Datagram {
		t.Fatal(r1, r2)
	}
	if r3 := complete(3); r3.Outcome != NoBuffer || r3.Datagram != nil {
		t.Fatalf("third: %v", r3.Outcome)
	}
	if st := x.r.Stats(); st.DatagramsOut != 2 || st.IP.ReasmFails != 1 || st.IP.ReasmOKs != 2 || st.Fragments[NoBuffer] != 2 {
		t.Fatalf("stats %+v", st)
	}
	x.r.Release(r1.Datagram)
	x.r.Release(r1.Datagram)
	x.r.Release(nil)
	x.r.Release(&Datagram{})
	if st := x.r.Stats(); st.DatagramsOut != 1 {
		t.Fatalf("%d out", st.DatagramsOut)
	}
	r4 := complete(4)
	if r4.Outcome != Reassembled || r4.Datagram != r1.Datagram {
		t.Fatalf("fourth: %v", r4.Outcome)
	}
	if r5 := complete(5); r5.Outcome != NoBuffer {
		t.Fatalf("fifth: %v", r5.Outcome)
	}
}

// TestMalformed: frames that are not fragments, or disagree with their
// Packet, are refused without a panic and without touching any queue.
func TestMalformed(t *testing.T) {
	x := newTester(t, nil)
	frag := rawFrag{src: a4, dst: b4, id: 1, off: 8, more: true, data: make([]byte, 8)}.build()
	whole := rawFrag{src: a4, dst: b4, id: 1, data: make([]byte, 8)}.build() // offset 0, no MF
	atomic := rawFrag{src: a6, dst: b6, id: 1, data: make([]byte, 8)}.build()
	var p frame.Packet
	p.Decode(frag)
	for name, c := range map[string]struct {
		b []byte
		p frame.Packet
	}{
		"whole datagram":   {whole, frame.Packet{L3Off: 14, End: uint32(len(whole)), IPVersion: 4}},
		"atomic fragment":  {atomic, frame.Packet{L3Off: 14, End: uint32(len(atomic)), IPVersion: 6}},
		"end past frame":   {frag, frame.Packet{L3Off: 14, End: uint32(len(frag) + 1), IPVersion: 4}},
		"l3 past end":      {frag, frame.Packet{L3Off: 40, End: 30, IPVersion: 4}},
		"not ip":           {frag, frame.Packet{L3Off: 14, End: uint32(len(frag))}},
		"wrong version":    {frag, frame.Packet{L3Off: 14, End: uint32(len(frag)), IPVersion: 6}},
		"short total":      {frag, frame.Packet{L3Off: 14, End: uint32(len(frag) - 1), IPVersion: 4}},
		"empty":            {nil, frame.Packet{}},
		"decoded fragment": {frag[:len(frag)-4], p},
	} {
		res := x.r.Add(c.b, &c.p, x.now)
		if res.Outcome != Malformed {
			t.Errorf("%s: %v", name, res.Outcome)
		}
	}
	if err := x.r.check(); err != nil {
		t.Fatal(err)
	}
	if st := x.r.Stats(); st.Queues != 0 || st.IP.ReasmReqds != 0 || st.IP6.ReasmReqds != 0 || st.Fragments[Malformed] != 9 {
		t.Errorf("stats %+v", st)
	}
	// Headers longer than a queue's header room: a fragment, refused.
	big := rawFrag{src: a6, dst: b6, id: 1, off: 8, more: true, data: make([]byte, 8)}
	for range 8 {
		big.ext = append(big.ext, frame.IPv6ExtHeader{Type: 60, Data: make([]byte, 254)})
	}
	x.want(big.build(), Malformed)
	if st := x.r.Stats(); st.IP6.ReasmReqds != 1 || st.IP6.ReasmFails != 1 {
		t.Errorf("stats %+v", st)
	}
}

// TestConfig: New checks its Config.
func TestConfig(t *testing.T) {
	for _, c := range []Config{
		{MemoryLimit: MinMemoryLimit - 1},
		{MemoryLimit: MinMemoryLimit, MaxQueues: 600},
		{MaxQueues: 1},
		{IPv6SourcePrefix: 129},
		{TimeoutIPv4: -1},
		{MaxDatagrams: -1},
		{SourceLimit: -1},
	} {
		if _, err := New(&c); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
	r := mustNew(t, nil)
	st := r.Stats()
	if st.MemoryLimit > DefaultMemoryLimit || st.MemoryLimit < DefaultMemoryLimit*3/4 || len(r.queues)-1 != 1024 {
		t.Errorf("default: %d bytes of pages, %d queues", st.MemoryLimit, len(r.queues)-1)
	}
	if r.srcPages < vPages || r.srcQueues != 128 {
		t.Errorf("default source share: %d pages, %d queues", r.srcPages, r.srcQueues)
	}
}

// TestPadded: Ethernet padding after a short fragment is not data.
func TestPadded(t *testing.T) {
	x := newTester(t, nil)
	d := payload(16, 8)
	for _, v6 := range []bool{false, true} {
		src, dst := addrs(v6)
		f1 := rawFrag{src: src, dst: dst, id: 1, more: true, data: d[:8]}.build()
		f2 := rawFrag{src: src, dst: dst, id: 1, off: 8, data: d[8:]}.build()
		x.want(append(f1, make([]byte, 40)...), Held)
		res := x.want(append(f2, 0xee, 0xee, 0xee, 0xee), Reassembled)
		hl := 20
		if v6 {
			hl = 40
		}
		if got := res.Datagram.Frame()[14+hl:]; !bytes.Equal(got, d) {
			t.Fatalf("v6 %v: data %x, want %x", v6, got, d)
		}
		x.r.Release(res.Datagram)
	}
}
