package reassembly

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/pktengine/pktengine/frame"
	"github.com/pktengine/pktengine/proto"
)

// TestInOrder reassembles datagrams of several sizes and both families,
// fragmented by frame.UDPFragmenter, in order.
func TestInOrder(t *testing.T) {
	for _, fam := range []string{"ipv4", "ipv6"} {
		for _, n := range []int{1473, 2953, 8192, 32768, frame.MaxUDPPayloadIPv4} {
			x := newTester(t, nil)
			src, dst := addrs(fam == "ipv6")
			s := udpSpec(src, dst, n, byte(n))
			frags := fragments(t, s, 1500, 0xdeadbeef)
			for i, f := range frags {
				if i < len(frags)-1 {
					x.want(f, Held)
					continue
				}
				res := x.want(f, Reassembled)
				checkUDP(t, res.Datagram, s)
				if res.Datagram.Fragments() != len(frags) {
					t.Errorf("%d fragments counted, %d sent", res.Datagram.Fragments(), len(frags))
				}
				// The link header is the first fragment's.
				if !bytes.Equal(res.Datagram.Frame()[:14], frags[0][:14]) {
					t.Errorf("link header %x, want %x", res.Datagram.Frame()[:14], frags[0][:14])
				}
				x.r.Release(res.Datagram)
			}
			st := x.r.Stats()
			m := st.IP
			if fam == "ipv6" {
				m = st.IP6
			}
			if m != (MIB{ReasmReqds: uint64(len(frags)), ReasmOKs: 1}) || st.Fragments[Reassembled] != uint64(len(frags)) ||
				st.Queues != 0 || st.MemoryInUse != 0 || st.DatagramsOut != 0 {
				t.Errorf("%s %d: stats %+v", fam, n, st)
			}
		}
	}
}

// TestAnyOrder reassembles in reverse and in random orders, with and
// without an unfragmentable IPv6 extension header and VLAN tags.
func TestAnyOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	specs := []*frame.UDPSpec{udpSpec(a4, b4, 20000, 1), udpSpec(a6, b6, 20000, 2), udpSpec(a6, b6, 9000, 3), udpSpec(a4, b4, 3000, 4)}
	specs[2].ExtHeaders = []frame.IPv6ExtHeader{{Type: proto.IPProtoHopByHop, Data: []byte{5, 2, 0, 0, 1, 0}}}
	specs[2].VLANs = []frame.VLANTag{{TCI: 100}}
	specs[3].Options = []byte{frame.IPv4OptionRouterAlert, 4, 0, 0, frame.IPv4OptionRecordRoute, 3, 4, frame.IPv4OptionEOL} // RA, and a Record Route that later fragments do not copy
	specs[3].VLANs = []frame.VLANTag{{TCI: 10}, {TCI: 20}}
	for si, s := range specs {
		frags := fragments(t, s, 1400, 77)
		for round := range 20 {
			order := rng.Perm(len(frags))
			if round == 0 {
				for i := range order {
					order[i] = len(frags) - 1 - i
				}
			}
			x := newTester(t, nil)
			for k, i := range order {
				if k < len(order)-1 {
					x.want(frags[i], Held)
					continue
				}
				res := x.want(frags[i], Reassembled)
				checkUDP(t, res.Datagram, s)
				// The first fragment's headers, with its options.
				var p frame.Packet
				p.Decode(res.Datagram.Frame())
				var p0 frame.Packet
				p0.Decode(frags[0])
				if p.NumVLANs != p0.NumVLANs || p.VLANs != p0.VLANs {
					t.Errorf("spec %d: VLANs %v, want %v", si, p.VLANs, p0.VLANs)
				}
				if p.IPVersion == 4 && !bytes.Equal(p.IPv4(res.Datagram.Frame()).Options(), s.Options) {
					t.Errorf("spec %d: options %x, want %x", si, p.IPv4(res.Datagram.Frame()).Options(), s.Options)
				}
				if p.IPVersion == 6 && p.Flags&frame.FlagIPv6ExtHeaders != 0 != (len(s.ExtHeaders) > 0) {
					t.Errorf("spec %d: extension headers %v", si, p.Flags)
				}
				x.r.Release(res.Datagram)
			}
		}
	}
}

// TestKeys: fragments belong together only with the same addresses and
// identification, and for IPv4 the same protocol.
func TestKeys(t *testing.T) {
	x := newTester(t, nil)
	data := payload(16, 0)
	base := rawFrag{src: a4, dst: b4, id: 1, more: true, data: data}
	x.want(base.build(), Held)
	for _, f := range []rawFrag{
		{src: a4, dst: b4, id: 2, more: true, data: data},
		{src: a4, dst: b4, id: 1, proto: proto.IPProtoICMP, more: true, data: data},
		{src: b4, dst: a4, id: 1, more: true, data: data},
		{src: a4, dst: a4, id: 1, more: true, data: data},
		{src: a6, dst: b6, id: 1, more: true, data: data},
		{src: a6, dst: b6, id: 1 << 20, more: true, data: data},
	} {
		x.want(f.build(), Held) // an overlap if it joined the first queue
	}
	if st := x.r.Stats(); st.Queues != 7 || st.Sources != 3 {
		t.Errorf("%d queues %d sources, want 7 and 3 (a4, b4, a6's /64)", st.Queues, st.Sources)
	}
	// IPv4 identifications are 16 bits: id 1<<16|1 is id 1.
	x.want(rawFrag{src: a4, dst: b4, id: 1<<16 | 1, off: 8, more: true, data: data}.build(), Overlap)
}

// TestDuplicate: a fragment whose bytes all lie within one run of held
// fragments is dropped and the datagram goes on (Linux's IPFRAG_DUP); one
// that covers held bytes of two runs is an overlap, as in Linux.
func TestDuplicate(t *testing.T) {
	d := payload(64, 9)
	frag := func(off, n int, more bool) []byte {
		return rawFrag{src: a4, dst: b4, id: 5, off: off, more: more, data: d[off : off+n]}.build()
	}
	t.Run("exact", func(t *testing.T) {
		x := newTester(t, nil)
		x.want(frag(0, 16, true), Held)
		x.want(frag(0, 16, true), Duplicate)
		x.want(frag(16, 16, true), Held)
		x.want(frag(16, 16, true), Duplicate)
		x.want(frag(8, 16, true), Duplicate) // inside the run [0, 32)
		res := x.want(frag(32, 32, false), Reassembled)
		if got := res.Datagram.Frame()[14+20:]; !bytes.Equal(got, d) {
			t.Fatalf("data %x", got)
		}
		x.want(frag(32, 32, false), Held) // after completion: a new datagram, as in Linux
		st := x.r.Stats()
		if st.IP != (MIB{ReasmReqds: 7, ReasmOKs: 1}) || st.Fragments[Duplicate] != 3 || st.Fragments[Reassembled] != 3 {
			t.Errorf("stats %+v", st)
		}
	})
	t.Run("last", func(t *testing.T) {
		x := newTester(t, nil)
		x.want(frag(32, 32, false), Held)
		x.want(frag(32, 32, false), Duplicate)
		x.want(frag(40, 24, false), Duplicate)
		x.want(frag(0, 32, true), Reassembled)
	})
	t.Run("across runs", func(t *testing.T) {
		x := newTester(t, nil)
		x.want(frag(16, 16, true), Held)
		x.want(frag(0, 16, true), Held) // before the first: a run of its own
		x.want(frag(0, 32, true), Overlap)
		st := x.r.Stats()
		if st.IP.ReasmOverlaps != 1 || st.IP.ReasmFails != 1 || st.Fragments[Overlap] != 3 || st.Queues != 0 {
			t.Errorf("stats %+v", st)
		}
	})
	t.Run("one run", func(t *testing.T) {
		x := newTester(t, nil)
		x.want(frag(0, 16, true), Held)
		x.want(frag(16, 16, true), Held) // appended to the run
		x.want(frag(0, 32, true), Duplicate)
	})
	t.Run("gap", func(t *testing.T) {
		x := newTester(t, nil)
		x.want(frag(0, 8, true), Held)
		x.want(frag(16, 8, true), Held)
		x.want(frag(8, 8, true), Held)     // fills the gap: a run of its own
		x.want(frag(0, 16, true), Overlap) // spans two runs
	})
}

// TestOverlap: any other overlap discards the whole datagram (RFC 5722;
// Linux since 4.20 for IPv4 too), and later fragments start afresh.
func TestOverlap(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		src, dst := addrs(v6)
		d := payload(64, 1)
		frag := func(off, n int, more bool) []byte {
			return rawFrag{src: src, dst: dst, id: 9, off: off, more: more, data: d[off : off+n]}.build()
		}
		for name, seq := range map[string][][]byte{
			"tail":        {frag(0, 16, true), frag(8, 16, true)},
			"head":        {frag(16, 16, true), frag(8, 16, true)},
			"covering":    {frag(16, 8, true), frag(8, 24, true)},
			"into last":   {frag(32, 32, false), frag(24, 16, true)},
			"middle":      {frag(0, 8, true), frag(32, 8, true), frag(8, 32, true)},
			"same offset": {frag(8, 8, true), frag(8, 16, true)},
		} {
			x := newTester(t, nil)
			for i, f := range seq {
				o := Held
				if i == len(seq)-1 {
					o = Overlap
				}
				x.want(f, o)
			}
			st := x.r.Stats()
			m := st.IP
			if v6 {
				m = st.IP6
			}
			if m.ReasmOverlaps != 1 || m.ReasmFails != 1 || st.Fragments[Overlap] != uint64(len(seq)) || st.Queues != 0 || st.MemoryInUse != 0 {
				t.Errorf("v6 %v %s: stats %+v", v6, name, st)
			}
			// The rest of the datagram starts a new queue.
			x.want(frag(0, 8, true), Held)
		}
	}
}

// TestInconsistent: fragments that contradict the datagram's end, or carry
// nothing, discard the datagram (Linux's discard_qp).
func TestInconsistent(t *testing.T) {
	d := payload(64, 2)
	for _, v6 := range []bool{false, true} {
		src, dst := addrs(v6)
		frag := func(off, n int, more bool) []byte {
			return rawFrag{src: src, dst: dst, id: 3, off: off, more: more, data: d[off : off+n]}.build()
		}
		for name, seq := range map[string][][]byte{
			"second last, other end": {frag(32, 32, false), frag(16, 8, false)},
			"second last, longer":    {frag(16, 8, false), frag(16, 16, false)},
			"past the last":          {frag(16, 8, false), frag(24, 8, true)},
			"last before held data":  {frag(32, 16, true), frag(8, 8, false)},
			"zero length":            {frag(0, 16, true), frag(16, 0, true)},
			"zero length last":       {frag(0, 16, true), frag(16, 0, false)},
		} {
			x := newTester(t, nil)
			for i, f := range seq {
				o := Held
				if i == len(seq)-1 {
					o = Inconsistent
				}
				if res := x.add(f); res.Outcome != o {
					t.Fatalf("v6 %v %s: fragment %d: %v, want %v", v6, name, i, res.Outcome, o)
				}
			}
			st := x.r.Stats()
			m := st.IP
			if v6 {
				m = st.IP6
			}
			if m.ReasmFails != 1 || m.ReasmOverlaps != 0 || st.Fragments[Inconsistent] != uint64(len(seq)) || st.Queues != 0 {
				t.Errorf("v6 %v %s: stats %+v", v6, name, st)
			}
		}
		// A lone zero-length fragment costs a failure and no queue.
		x := newTester(t, nil)
		x.want(frag(8, 0, true), Inconsistent)
		if st := x.r.Stats(); st.Queues != 0 || st.IP.ReasmFails+st.IP6.ReasmFails != 1 {
			t.Errorf("v6 %v: lone empty fragment: %+v", v6, st)
		}
	}
}

// TestIPv4Unaligned: an IPv4 fragment with MF whose length is not a
// multiple of 8 is cut down to one (Linux's ip_frag_queue), and one of 1
// to 7 bytes so becomes empty.
func TestIPv4Unaligned(t *testing.T) {
	d := payload(40, 3)
	x := newTester(t, nil)
	x.want(rawFrag{src: a4, dst: b4, id: 4, more: true, data: d[:21]}.build(), Held) // keeps 16 bytes
	res := x.want(rawFrag{src: a4, dst: b4, id: 4, off: 16, data: d[16:]}.build(), Reassembled)
	if got := res.Datagram.Frame()[34:]; !bytes.Equal(got, d) {
		t.Fatalf("data %x, want %x", got, d)
	}
	x.want(rawFrag{src: a4, dst: b4, id: 5, off: 16, more: true, data: d[:7]}.build(), Inconsistent)
}

// TestIPv6ParamProblem: the IPv6 fragments Linux refuses with a Parameter
// Problem, and the code and pointer it sends.
func TestIPv6ParamProblem(t *testing.T) {
	hbh := []frame.IPv6ExtHeader{{Type: proto.IPProtoHopByHop, Data: make([]byte, 6)}}
	dst := []frame.IPv6ExtHeader{{Type: proto.IPProtoDstOpts, Data: make([]byte, 6)}}
	for _, c := range []struct {
		name string
		f    rawFrag
		o    Outcome
		pp   ParamProblem
	}{
		{"unaligned", rawFrag{off: 8, more: true, data: make([]byte, 13)}, Unaligned, ParamProblem{0, 4}},
		{"too big", rawFrag{off: 65528, data: make([]byte, 16)}, TooBig, ParamProblem{0, 42}},
		{"too big after hbh", rawFrag{off: 65528, data: make([]byte, 16), ext: hbh}, TooBig, ParamProblem{0, 50}},
		{"udp header cut", rawFrag{more: true, data: make([]byte, 16)[:4+4]}, 0, ParamProblem{}},
		{"udp header short", rawFrag{more: true, data: make([]byte, 4)}, IncompleteChain, ParamProblem{3, 0}},
		{"tcp header short", rawFrag{proto: proto.IPProtoTCP, more: true, data: make([]byte, 16)}, IncompleteChain, ParamProblem{3, 0}},
		{"icmpv6 short", rawFrag{proto: proto.IPProtoICMPv6, more: true, data: make([]byte, 0)}, IncompleteChain, ParamProblem{3, 0}},
		{"dstopts cut", rawFrag{proto: proto.IPProtoDstOpts, more: true, data: []byte{17, 1, 0, 0, 0, 0, 0, 0}}, IncompleteChain, ParamProblem{3, 0}},
		{"dstopts then udp", rawFrag{proto: proto.IPProtoDstOpts, more: true, data: []byte{17, 0, 1, 4, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8}}, Held, ParamProblem{}},
		{"no next header", rawFrag{proto: proto.IPProtoNoNext, more: true, data: make([]byte, 0)}, Inconsistent, ParamProblem{}},
		{"esp one byte", rawFrag{proto: proto.IPProtoESP, more: true, data: make([]byte, 8)}, Held, ParamProblem{}},
		{"later fragment short", rawFrag{off: 8, more: true, data: make([]byte, 8)}, Held, ParamProblem{}},
		{"after dst opts", rawFrag{off: 8, more: true, data: make([]byte, 13), ext: dst}, Unaligned, ParamProblem{0, 4}},
	} {
		if c.o == 0 {
			c.o = Held
		}
		f := c.f
		f.src, f.dst, f.id = a6, b6, 1
		x := newTester(t, nil)
		res := x.add(f.build())
		if res.Outcome != c.o || res.SendParamProblem != (c.pp != ParamProblem{}) || res.ParamProblem != c.pp {
			t.Errorf("%s: %+v, want %v %+v", c.name, res, c.o, c.pp)
		}
		if c.pp != (ParamProblem{}) {
			if st := x.r.Stats(); st.IP6.InHdrErrors != 1 || st.IP6.ReasmReqds != 1 || st.IP6.ReasmFails != 0 || st.Queues != 0 {
				t.Errorf("%s: stats %+v", c.name, st)
			}
		}
	}
}

// TestIPv4TooBig: a fragment ending past what any IPv4 datagram can hold
// ends its datagram at once; one that fits only without the first
// fragment's options fails on completion, as in Linux (ip_frag_reasm).
func TestIPv4TooBig(t *testing.T) {
	x := newTester(t, nil)
	x.want(rawFrag{src: a4, dst: b4, id: 1, more: true, data: make([]byte, 16)}.build(), Held)
	x.want(rawFrag{src: a4, dst: b4, id: 1, off: 65512, data: make([]byte, 8)}.build(), TooBig) // ends at 65,520 > 65,535-20
	x.want(rawFrag{src: a4, dst: b4, id: 2, off: 65512, more: true, data: make([]byte, 8)}.build(), TooBig)
	st := x.r.Stats()
	if st.IP.ReasmFails != 2 || st.Fragments[TooBig] != 3 || st.Queues != 0 {
		t.Errorf("stats %+v", st)
	}

	// whole sends [0, end) in 1480-byte fragments, the first with opts.
	whole := func(id uint32, end int, opts []byte) Result {
		var res Result
		for off := 0; off < end; off += 1480 {
			f := rawFrag{src: a4, dst: b4, id: id, off: off, more: off+1480 < end, data: make([]byte, min(1480, end-off))}
			if off == 0 {
				f.opts = opts
			}
			res = x.add(f.build())
		}
		return res
	}
	if res := whole(3, 65515, nil); res.Outcome != Reassembled || len(res.Datagram.Frame()) != 14+65535 {
		t.Fatalf("65,515 bytes: %+v", res)
	} else {
		x.r.Release(res.Datagram)
	}
	if res := whole(4, 65480, make([]byte, 40)); res.Outcome != TooBig {
		t.Fatalf("60-byte header + 65,480: %v", res.Outcome)
	}
	if st := x.r.Stats(); st.IP.ReasmOKs != 1 || st.IP.ReasmFails != 3 || st.Queues != 0 || st.MemoryInUse != 0 {
		t.Errorf("stats %+v", st)
	}
}

// TestIPv6Largest: the largest IPv6 datagram, 65,535 bytes of payload,
// with its Fragment header removed.
func TestIPv6Largest(t *testing.T) {
	x := newTester(t, nil)
	s := udpSpec(a6, b6, frame.MaxUDPPayloadIPv6, 5)
	var res Result
	for _, f := range fragments(t, s, 9000, 1) {
		res = x.add(f)
	}
	if res.Outcome != Reassembled {
		t.Fatalf("%v", res.Outcome)
	}
	checkUDP(t, res.Datagram, s)
	if n := len(res.Datagram.Frame()); n != 14+40+65535 {
		t.Errorf("frame of %d bytes", n)
	}
}
