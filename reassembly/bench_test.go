package reassembly

import (
	"slices"
	"testing"
	"time"

	"github.com/pktengine/pktengine/frame"
)

// benchReassemble reassembles one datagram per iteration from fragments
// decoded in advance (an engine decodes every frame anyway), and reports
// the cost per fragment beside the cost per datagram. With reverse, the
// fragments arrive last first.
func benchReassemble(b *testing.B, s *frame.UDPSpec, mtu int, reverse bool) {
	r := mustNew(b, nil)
	frags := fragments(b, s, mtu, 1)
	ps := make([]frame.Packet, len(frags))
	for i, f := range frags {
		ps[i].Decode(f)
	}
	if reverse {
		slices.Reverse(frags)
		slices.Reverse(ps)
	}
	now := time.Now()
	b.ReportAllocs()
	b.SetBytes(int64(len(s.Payload)))
	for b.Loop() {
		var res Result
		for i, f := range frags {
			res = r.Add(f, &ps[i], now)
		}
		if res.Outcome != Reassembled {
			b.Fatal(res.Outcome)
		}
		r.Release(res.Datagram)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(frags)), "ns/fragment")
}

func BenchmarkReassembleIPv4_8192(b *testing.B) {
	benchReassemble(b, udpSpec(a4, b4, 8192, 1), 1500, false)
}
func BenchmarkReassembleIPv4_65507(b *testing.B) {
	benchReassemble(b, udpSpec(a4, b4, 65507, 1), 1500, false)
}
func BenchmarkReassembleIPv6_8192(b *testing.B) {
	benchReassemble(b, udpSpec(a6, b6, 8192, 1), 1500, false)
}
func BenchmarkReassembleIPv6_65507(b *testing.B) {
	benchReassemble(b, udpSpec(a6, b6, 65507, 1), 1500, false)
}

// BenchmarkReassembleReverse is the 65,507-byte IPv4 datagram arriving
// last fragment first: every fragment a run of its own.
func BenchmarkReassembleReverse(b *testing.B) {
	benchReassemble(b, udpSpec(a4, b4, 65507, 1), 1500, true)
}

// BenchmarkFlood is the cost of one random fragment from a random source
// when memory is full: a new queue, an eviction, the copy.
func BenchmarkFlood(b *testing.B) {
	r := mustNew(b, nil)
	fl := newFlooder(1, 0, false)
	var p frame.Packet
	now := time.Now()
	for range 10000 {
		r.Add(fl.next(&p), &p, now)
	}
	frames := make([][]byte, 4096)
	ps := make([]frame.Packet, len(frames))
	var bytes int
	for i := range frames {
		frames[i] = append([]byte(nil), fl.next(&ps[i])...)
		bytes += len(frames[i])
	}
	b.ReportAllocs()
	b.SetBytes(int64(bytes / len(frames)))
	i := 0
	for b.Loop() {
		r.Add(frames[i], &ps[i], now)
		i = (i + 1) % len(frames)
	}
	if r.Stats().Evictions == 0 {
		b.Fatal("no evictions")
	}
}

// BenchmarkFragment writes a 65,507-byte datagram as 45 fragments with
// frame.UDPFragmenter: the send side.
func BenchmarkFragment(b *testing.B) {
	s := udpSpec(a4, b4, 65507, 1)
	var f frame.UDPFragmenter
	buf := make([]byte, 2048)
	b.ReportAllocs()
	b.SetBytes(65507)
	for b.Loop() {
		if err := f.Reset(s, 1500, 1); err != nil {
			b.Fatal(err)
		}
		for i := range f.Fragments() {
			f.Build(buf, i)
		}
	}
}
