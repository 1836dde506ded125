package bench

import (
	"reflect"
	"testing"
	"time"

	"github.com/pktengine/pktengine/loadgen"
)

// TestSummarize: two rounds of searches and latency trials become medians
// with min and max; CPU costs come only from trials with replies, at the
// CPU load only; a zero-loss rate of 0 measures no latency.
func TestSummarize(t *testing.T) {
	rr := ResponderResult{CPULoad: 0.5}
	unpaced := func(sent, delivered, cpu float64, replies uint64) Point {
		return Point{Sent: sent, Delivered: delivered, CPU: cpu, OwnCPU: cpu / 2, Softirq: cpu / 4, Replies: replies}
	}
	rr.Searches = []Search{
		{Rate: 100e3, Points: []Point{unpaced(900e3, 150e3, 1000, 10), {Offered: 100e3}}},
		{Rate: 120e3, Points: []Point{unpaced(800e3, 160e3, 9999, 0)}},
		{Rate: 110e3, Points: []Point{unpaced(1e6, 170e3, 3000, 10)}},
	}
	rr.summarizeSearches([]float64{0.1, 0.5})
	if want := (Stat{Median: 110e3, Min: 100e3, Max: 120e3, Values: []float64{100e3, 120e3, 110e3}}); !reflect.DeepEqual(rr.ZeroLoss, want) {
		t.Errorf("zero-loss %+v, want %+v", rr.ZeroLoss, want)
	}
	if rr.MaxSent.Median != 900e3 || rr.MaxDelivered.Max != 170e3 {
		t.Errorf("unpaced sent %+v delivered %+v", rr.MaxSent, rr.MaxDelivered)
	}
	// The trial without replies (CPU 9999) does not count.
	if rr.MaxCPU.Median != 2000 || rr.MaxOwnCPU.Median != 1000 || rr.MaxSoftirq.Median != 500 || len(rr.MaxCPU.Values) != 2 {
		t.Errorf("unpaced CPU %+v own %+v softirq %+v", rr.MaxCPU, rr.MaxOwnCPU, rr.MaxSoftirq)
	}
	if len(rr.Latency) != 2 || rr.Latency[0].Rate != 11e3 || rr.Latency[1].Rate != 55e3 {
		t.Fatalf("latency loads %+v", rr.Latency)
	}

	trial := func(p50 time.Duration, loss, cpu float64) Point {
		return Point{Loss: loss, Latency: loadgen.Latency{P50: p50, P90: 2 * p50, P99: 3 * p50, P999: 4 * p50, Max: 5 * p50}, CPU: cpu, Replies: 1}
	}
	rr.Latency[0].Points = []Point{trial(10*time.Microsecond, 0, 100), trial(30*time.Microsecond, 0.5, 300)}
	rr.Latency[1].Points = []Point{trial(20*time.Microsecond, 0, 700), trial(40*time.Microsecond, 0, 900)}
	rr.Alloc = Alloc{Replies: 4, Bytes: 8}
	rr.summarizeLatency()
	l := rr.Latency[0]
	if l.P50.Median != 20e3 || l.P99.Min != 30e3 || l.Max.Max != 150e3 || l.Loss.Median != 0.25 {
		t.Errorf("latency at 10%%: p50 %+v p99 %+v max %+v loss %+v", l.P50, l.P99, l.Max, l.Loss)
	}
	if rr.CPU.Median != 800 || rr.Alloc.BytesPerReply != 2 {
		t.Errorf("CPU at the CPU load %+v, alloc %+v", rr.CPU, rr.Alloc)
	}

	var none ResponderResult
	none.summarizeSearches([]float64{0.1})
	if len(none.Latency) != 0 || none.ZeroLoss.Values != nil {
		t.Errorf("no searches: latency %+v, zero-loss %+v", none.Latency, none.ZeroLoss)
	}
}
