package loadgen

import (
	"math"
	"math/bits"
	"time"
)

// A Histogram counts non-negative values, latencies in nanoseconds, in
// log-linear buckets as HdrHistogram does: values below 128 exactly, and
// each power of two above that in 128 equal steps, so a bucket is never
// wider than 1/128 of the values it holds. Values up to 2^40 ns (18
// minutes) are told apart; larger ones share the last bucket (Max keeps
// the true maximum).
//
// Recording is a few arithmetic operations and one increment, with no
// allocation. A Histogram is a plain value of about 35 KiB; the zero value
// is empty and ready to use. It is not safe for concurrent use.
type Histogram struct {
	counts [histBuckets]uint64
	n      uint64
	sum    float64
	min    int64
	max    int64
}

const (
	histSubBits  = 7
	histSub      = 1 << histSubBits // values per exact range, 128
	histMaxBits  = 40               // values below 2^40 are bucketed
	histBuckets  = (histMaxBits - histSubBits + 1) * histSub
	histMaxValue = 1<<histMaxBits - 1
)

// bucketOf returns the bucket of v, 0 <= v <= histMaxValue.
//
// For v < 128 the bucket is v. Otherwise, with e = bitlen(v) - 7 (so v is
// in [128·2^(e-1), 128·2^e)), the bucket is e·128 + v>>(e-1) - 128: the 128
// buckets from e·128 on split that range into steps of 2^(e-1).
func bucketOf(v int64) int {
	u := uint64(v)
	if u < histSub {
		return int(u)
	}
	e := bits.Len64(u) - histSubBits
	return e*histSub + int(u>>(e-1)) - histSub
}

// bucketBounds returns the smallest and largest value of bucket i.
func bucketBounds(i int) (lo, hi int64) {
	if i < histSub {
		return int64(i), int64(i)
	}
	e := i / histSub
	lo = int64(i-e*histSub+histSub) << (e - 1)
	return lo, lo + 1<<(e-1) - 1
}

// Record counts v. Negative values count as 0: a clock step can make a
// latency negative, and it then tells nothing.
func (h *Histogram) Record(v int64) {
	if v < 0 {
		v = 0
	}
	if h.n == 0 || v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
	h.n++
	h.sum += float64(v)
	h.counts[bucketOf(min(v, histMaxValue))]++
}

// Count returns the number of values recorded.
func (h *Histogram) Count() uint64 { return h.n }

// Min and Max return the smallest and largest value recorded, 0 if none.
func (h *Histogram) Min() int64 { return h.min }

// Max returns the largest value recorded, 0 if none.
func (h *Histogram) Max() int64 { return h.max }

// Mean returns the average, 0 if nothing was recorded.
func (h *Histogram) Mean() float64 {
	if h.n == 0 {
		return 0
	}
	return h.sum / float64(h.n)
}

// Quantile returns the value at quantile q (0 < q <= 1): the largest value
// of the bucket that holds the ceil(q·n)-th smallest value, but no more
// than Max. It is at least the true value and at most 1/128 above it.
// It returns 0 for an empty histogram.
func (h *Histogram) Quantile(q float64) int64 {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	rank = min(max(rank, 1), h.n)
	var seen uint64
	for i := range h.counts {
		seen += h.counts[i]
		if seen >= rank {
			if i == histBuckets-1 {
				return h.max // values beyond 2^40 are clamped into it
			}
			_, hi := bucketBounds(i)
			return max(min(hi, h.max), h.min)
		}
	}
	return h.max
}

// Merge adds o's values to h.
func (h *Histogram) Merge(o *Histogram) {
	if o.n == 0 {
		return
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	h.max = max(h.max, o.max)
	h.n += o.n
	h.sum += o.sum
	for i, c := range o.counts {
		h.counts[i] += c
	}
}

// Reset empties h.
func (h *Histogram) Reset() { *h = Histogram{} }

// Latency is a summary of a latency histogram.
type Latency struct {
	Count uint64        `json:"count"`
	Min   time.Duration `json:"min_ns"`
	Mean  time.Duration `json:"mean_ns"`
	P50   time.Duration `json:"p50_ns"`
	P90   time.Duration `json:"p90_ns"`
	P99   time.Duration `json:"p99_ns"`
	P999  time.Duration `json:"p999_ns"`
	Max   time.Duration `json:"max_ns"`
}

// Summary returns the percentiles of h.
func (h *Histogram) Summary() Latency {
	return Latency{
		Count: h.n,
		Min:   time.Duration(h.min),
		Mean:  time.Duration(h.Mean()),
		P50:   time.Duration(h.Quantile(0.50)),
		P90:   time.Duration(h.Quantile(0.90)),
		P99:   time.Duration(h.Quantile(0.99)),
		P999:  time.Duration(h.Quantile(0.999)),
		Max:   time.Duration(h.max),
	}
}
