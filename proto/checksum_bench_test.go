package proto

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// Sizes: an IPv4 header, a minimum frame, a DNS-sized datagram, an
// Ethernet MTU and a jumbo frame. "+1" variants start one byte into the buffer, as a UDP payload in
// a received frame rarely sits on an 8-byte boundary.
var benchSizes = []struct {
	name      string
	size, off int
}{
	{"20", 20, 0},
	{"64", 64, 0},
	{"512", 512, 0},
	{"1500", 1500, 0},
	{"1500+1", 1500, 1},
	{"9000", 9000, 0},
}

func benchData(n int) []byte {
	r := rand.New(rand.NewPCG(1, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

var benchSink uint16

// eachBenchSize runs bench as a sub-benchmark for each of benchSizes, on
// random data of that size at that offset, reporting bytes per second and
// allocations. bench holds the b.Loop itself, so that the measured loop
// calls the code under test directly.
func eachBenchSize(b *testing.B, bench func(b *testing.B, buf []byte)) {
	for _, s := range benchSizes {
		buf := benchData(s.size + s.off)[s.off:]
		b.Run(s.name, func(b *testing.B) {
			b.SetBytes(int64(s.size))
			b.ReportAllocs()
			bench(b, buf)
		})
	}
}

// BenchmarkChecksum measures Checksum (the fast path where the architecture
// has one) on in-cache data. Compare with BenchmarkMemmove of the same size.
func BenchmarkChecksum(b *testing.B) {
	eachBenchSize(b, func(b *testing.B, buf []byte) {
		for b.Loop() {
			benchSink = Checksum(buf, benchSink)
		}
	})
}

// BenchmarkChecksumPortable measures the portable path, which other
// architectures and purego builds use.
func BenchmarkChecksumPortable(b *testing.B) {
	eachBenchSize(b, func(b *testing.B, buf []byte) {
		for b.Loop() {
			benchSink = Fold(sumPortable(buf, uint64(benchSink)))
		}
	})
}

// BenchmarkMemmove is copy() of the same sizes: the yardstick for reading
// memory as fast as the machine can.
func BenchmarkMemmove(b *testing.B) {
	eachBenchSize(b, func(b *testing.B, src []byte) {
		dst := make([]byte, len(src)) // before b.Loop, which starts the timer and the allocation count afresh
		for b.Loop() {
			copy(dst, src)
		}
	})
}

func BenchmarkPseudoHeaderSum(b *testing.B) {
	for _, n := range []int{4, 16} {
		src, dst := benchData(n), benchData(n)
		b.Run(fmt.Sprintf("IPv%d", map[int]int{4: 4, 16: 6}[n]), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				benchSink = PseudoHeaderSum(src, dst, IPProtoUDP, uint32(benchSink))
			}
		})
	}
}

func BenchmarkUpdate(b *testing.B) {
	old, new := benchData(16), benchData(16)
	b.Run("Update16", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			benchSink = Update16(benchSink, 0x3e11, 0x4011)
		}
	})
	b.Run("Update32", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			benchSink = Update32(benchSink, 0x0a0a0ca6, 0x0a0a0b42)
		}
	})
	b.Run("UpdateBytes16", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			benchSink = UpdateBytes(benchSink, old, new)
		}
	})
}
