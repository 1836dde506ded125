package reassembly

import (
	"testing"

	"github.com/pktengine/pktengine/frame"
)

// TestZeroAllocs: in steady state nothing allocates: reassembling
// datagrams of both families, the eviction path under a flood, timeouts
// and their reports, and the fragmenter writing the fragments.
func TestZeroAllocs(t *testing.T) {
	r := mustNew(t, nil)
	now := t0
	type prepared struct {
		b []byte
		p frame.Packet
	}
	prep := func(frags [][]byte) []prepared {
		out := make([]prepared, len(frags))
		for i, f := range frags {
			out[i].b = f
			out[i].p.Decode(f)
		}
		return out
	}
	v4 := prep(fragments(t, udpSpec(a4, b4, frame.MaxUDPPayloadIPv4, 1), 1500, 0))
	v6 := prep(fragments(t, udpSpec(a6, b6, 8192, 2), 1280, 7))
	half := prep(fragments(t, udpSpec(a4, b4, 4000, 3), 1500, 0))
	fl := newFlooder(5, 0, false)
	var p frame.Packet
	var e Expired
	spec := udpSpec(a6, b6, frame.MaxUDPPayloadIPv6, 4)
	var fr frame.UDPFragmenter
	buf := make([]byte, 2048)

	whole := func(fs []prepared) func() {
		return func() {
			var res Result
			for i := range fs {
				res = r.Add(fs[i].b, &fs[i].p, now)
			}
			if res.Outcome != Reassembled {
				t.Fatalf("%v", res.Outcome)
			}
			r.Release(res.Datagram)
		}
	}
	for _, c := range []struct {
		name string
		fn   func()
	}{
		{"IPv4 65,507 bytes", whole(v4)},
		{"IPv6 8,192 bytes", whole(v6)},
		{"flood", func() {
			for range 100 {
				b := fl.next(&p)
				r.Add(b, &p, now)
			}
		}},
		{"timeout and report", func() {
			for i := range half[:2] {
				r.Add(half[i].b, &half[i].p, now)
			}
			now = now.Add(DefaultTimeoutIPv6)
			for r.NextExpired(now, &e) {
			}
		}},
		{"fragmenter", func() {
			if err := fr.Reset(spec, 1500, 9); err != nil {
				t.Fatal(err)
			}
			for i := range fr.Fragments() {
				fr.Build(buf, i)
			}
		}},
	} {
		c.fn() // warm the pools
		if n := testing.AllocsPerRun(20, c.fn); n != 0 {
			t.Errorf("%s: %v allocations per run", c.name, n)
		}
	}
}
