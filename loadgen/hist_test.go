package loadgen

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestHistogramBuckets(t *testing.T) {
	for i := range histBuckets {
		lo, hi := bucketBounds(i)
		if bucketOf(lo) != i || bucketOf(hi) != i {
			t.Fatalf("bucket %d [%d, %d] maps to %d, %d", i, lo, hi, bucketOf(lo), bucketOf(hi))
		}
		if i+1 < histBuckets && bucketOf(hi+1) != i+1 {
			t.Fatalf("bucket %d: %d maps to %d", i, hi+1, bucketOf(hi+1))
		}
		if lo >= histSub && float64(hi-lo+1) > float64(lo)/histSub {
			t.Fatalf("bucket %d [%d, %d] wider than 1/128", i, lo, hi)
		}
	}
	if _, hi := bucketBounds(histBuckets - 1); hi != histMaxValue {
		t.Fatalf("last bucket ends at %d", hi)
	}
}

// TestHistogramQuantiles checks percentiles against sorting, for latencies
// spread over seven decades.
func TestHistogramQuantiles(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, n := range []int{1, 2, 10, 1000, 100_000} {
		var h Histogram
		vals := make([]int64, n)
		for i := range vals {
			vals[i] = int64(math.Exp(rng.Float64() * math.Log(1e7)))
			h.Record(vals[i])
		}
		slices.Sort(vals)
		for _, q := range []float64{0.001, 0.5, 0.9, 0.99, 0.999, 1} {
			rank := int(math.Ceil(q * float64(n)))
			want := vals[max(rank, 1)-1]
			got := h.Quantile(q)
			if got < want || float64(got-want) > float64(want)/histSub {
				t.Errorf("n=%d q=%v: %d, sorted %d", n, q, got, want)
			}
		}
		if h.Min() != vals[0] || h.Max() != vals[n-1] || h.Count() != uint64(n) {
			t.Errorf("n=%d: min %d max %d count %d", n, h.Min(), h.Max(), h.Count())
		}
	}
}

func TestHistogramEdges(t *testing.T) {
	var h Histogram
	if h.Quantile(0.5) != 0 || h.Mean() != 0 {
		t.Fatal("empty histogram")
	}
	h.Record(-5) // clock step: counts as 0
	h.Record(1 << 50)
	if h.Min() != 0 || h.Max() != 1<<50 || h.Quantile(1) != 1<<50 || h.Quantile(0.5) != 0 {
		t.Fatalf("min %d max %d q1 %d", h.Min(), h.Max(), h.Quantile(1))
	}
	var a, b, all Histogram
	for i := range int64(1000) {
		v := i * i
		all.Record(v)
		if i%3 == 0 {
			a.Record(v)
		} else {
			b.Record(v)
		}
	}
	a.Merge(&b)
	if a != all {
		t.Fatal("merge differs from recording everything in one")
	}
	s := all.Summary()
	if s.Count != 1000 || s.P50 < 499*499 || s.Max != 999*999 {
		t.Fatalf("%+v", s)
	}
}

func TestHistogramAllocs(t *testing.T) {
	h := new(Histogram)
	var v int64
	if n := testing.AllocsPerRun(1000, func() { v += 997; h.Record(v) }); n != 0 {
		t.Fatalf("%v allocations", n)
	}
}

func BenchmarkHistogramRecord(b *testing.B) {
	h := new(Histogram)
	vals := make([]int64, 1024)
	rng := rand.New(rand.NewPCG(7, 8))
	for i := range vals {
		vals[i] = int64(math.Exp(rng.Float64() * math.Log(1e7)))
	}
	b.ReportAllocs()
	b.SetBytes(8)
	for i := 0; b.Loop(); i++ {
		h.Record(vals[i&1023])
	}
}
