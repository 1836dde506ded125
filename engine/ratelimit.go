package engine

import (
	"math"
	"math/rand/v2"
	"net/netip"
	"sync/atomic"
)

// rate is a token bucket's shape in the terms of the generic cell rate
// algorithm (GCRA, ITU-T I.371): one token every interval nanoseconds,
// and up to burst tokens at once, which is a tolerance of (burst-1)
// intervals ahead of the steady rate.
type rate struct {
	interval  int64 // ns per token; 0 means unlimited
	tolerance int64 // ns
	off       bool  // never allow
}

// newRate returns the shape for perSecond tokens a second and bursts of
// burst. perSecond < 0 means never; +Inf means always.
func newRate(perSecond float64, burst int) rate {
	switch {
	case perSecond < 0:
		return rate{off: true}
	case math.IsInf(perSecond, 1) || perSecond >= 1e9:
		return rate{}
	}
	iv := int64(1e9 / perSecond)
	if iv < 1 {
		iv = 1
	}
	if burst < 1 {
		burst = 1
	}
	return rate{interval: iv, tolerance: int64(burst-1) * iv}
}

// bucket is a lock-free token bucket: a single word, the theoretical
// arrival time (TAT) of the next conforming event. An event at now
// conforms if TAT - now <= tolerance, and then moves TAT one interval
// on. Several workers may share one bucket.
type bucket struct {
	tat atomic.Int64
}

// allow reports whether an event at now (ns) conforms to r, and takes a
// token if so. It does not allocate.
func (b *bucket) allow(now int64, r *rate) bool {
	if r.off {
		return false
	}
	if r.interval == 0 {
		return true
	}
	for {
		tat := b.tat.Load()
		t := tat
		if t < now {
			t = now
		} else if t-now > r.tolerance+r.interval {
			// TAT is further ahead than any conforming event could
			// have put it: the clock went backwards. Start afresh.
			t = now
		}
		if t-now > r.tolerance {
			return false
		}
		if b.tat.CompareAndSwap(tat, t+r.interval) {
			return true
		}
	}
}

// sourceBuckets is a fixed table of token buckets indexed by a keyed hash
// of a source address: a per-source limit with no allocation and bounded
// memory, whatever the number of sources. Two sources that share a bucket
// share its rate, which errs on the side of sending less.
type sourceBuckets struct {
	seed    uint64
	mask    uint64
	buckets []bucket
	rate    rate
}

func newSourceBuckets(n int, r rate) *sourceBuckets {
	size := 1
	for size < n {
		size <<= 1
	}
	return &sourceBuckets{
		seed:    rand.Uint64() | 1,
		mask:    uint64(size - 1),
		buckets: make([]bucket, size),
		rate:    r,
	}
}

func (s *sourceBuckets) allow(a netip.Addr, now int64) bool {
	return s.buckets[hashAddr(a, s.seed)&s.mask].allow(now, &s.rate)
}

// hashAddr mixes the 128 bits of a with a secret seed, so that an
// attacker cannot aim many sources at one bucket.
func hashAddr(a netip.Addr, seed uint64) uint64 {
	b := a.As16()
	hi := uint64(b[0])<<56 | uint64(b[1])<<48 | uint64(b[2])<<40 | uint64(b[3])<<32 |
		uint64(b[4])<<24 | uint64(b[5])<<16 | uint64(b[6])<<8 | uint64(b[7])
	lo := uint64(b[8])<<56 | uint64(b[9])<<48 | uint64(b[10])<<40 | uint64(b[11])<<32 |
		uint64(b[12])<<24 | uint64(b[13])<<16 | uint64(b[14])<<8 | uint64(b[15])
	h := (hi ^ seed) * 0x9e3779b97f4a7c15
	h ^= h >> 29
	h = (h ^ lo) * 0xbf58476d1ce4e5b9
	h ^= h >> 32
	h *= 0x94d049bb133111eb
	return h ^ h>>29
}
