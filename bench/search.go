package bench

import (
	"slices"

	"github.com/pktengine/pktengine/loadgen"
)

// Point is one trial: a rate offered for TrialDuration and what came back.
type Point struct {
	// Offered is the rate asked for (0: as fast as the generator goes),
	// Sent the rate the generator achieved, Delivered the replies per
	// second, Loss the fraction of frames without a reply.
	Offered   float64 `json:"offered"`
	Sent      float64 `json:"sent"`
	Delivered float64 `json:"delivered"`
	Loss      float64 `json:"loss"`
	Pass      bool    `json:"pass"`

	Latency loadgen.Latency `json:"latency"`

	// Replies is what the responder says it sent. CPU is the user and
	// system time of the responder's CPU per reply and Softirq its
	// softirq time per reply (with RPS mostly its kernel receiving the
	// requests), from /proc/stat, in nanoseconds: disjoint, but they
	// include whatever else ran on that CPU. OwnCPU is the responder
	// process's user and system time per reply (/proc/PID/stat): its
	// own, but tick-based accounting also charges it the softirqs that
	// ran while it was on the CPU, so it overlaps Softirq.
	Replies uint64  `json:"replies"`
	CPU     float64 `json:"cpu_ns"`
	Softirq float64 `json:"softirq_ns"`
	OwnCPU  float64 `json:"own_cpu_ns"`

	// RingDrops are frames the generator's own receive ring lost, and
	// RcvbufErrors datagrams the responder namespace's kernel dropped
	// for a full socket buffer, all during the trial.
	RingDrops    uint64 `json:"ring_drops,omitempty"`
	RcvbufErrors uint64 `json:"rcvbuf_errors,omitempty"`
	// ResponderDrops are the drops the responder counted itself (the
	// engine's ring and queue drops), BacklogDrops the frames the kernel
	// dropped for a full per-CPU backlog (/proc/net/softnet_stat, all
	// CPUs): together with RcvbufErrors they tell where a loss happened.
	ResponderDrops uint64 `json:"responder_drops,omitempty"`
	BacklogDrops   uint64 `json:"backlog_drops,omitempty"`

	// AllocBytes and AllocMallocs are the responder process's heap
	// allocations during the trial.
	AllocBytes   uint64 `json:"alloc_bytes"`
	AllocMallocs uint64 `json:"alloc_mallocs"`

	// Retries counts earlier runs of this trial that were discarded
	// because the generator fell short of the offered rate.
	Retries int `json:"retries,omitempty"`
}

// searchParams are the rules of the RFC 2544 search.
type searchParams struct {
	tolerance float64 // loss a passing trial may have
	precision float64 // stop when (hi-lo) <= precision*hi
	maxSteps  int
}

// minSentRatio is how much of the offered rate the generator must achieve
// for a trial to count: a rate the generator could not offer was not
// tested.
const minSentRatio = 0.98

// passes reports whether p counts as lossless at its offered rate. A trial
// in which the generator's own receive ring dropped frames cannot tell
// the responder's loss from the generator's, so it fails too.
func (sp searchParams) passes(p *Point) bool {
	return p.Loss <= sp.tolerance && p.RingDrops == 0 &&
		(p.Offered == 0 || p.Sent >= minSentRatio*p.Offered)
}

// searchResult is one RFC 2544 throughput search.
type searchResult struct {
	// Rate is the highest offered rate that passed; 0 if none did.
	Rate float64
	// GeneratorLimited: even the unpaced trial passed, so the responder
	// kept up with everything the generator could offer.
	GeneratorLimited bool
	// Max is the unpaced trial, Points all trials in order.
	Max    Point
	Points []Point
}

// search runs the RFC 2544 section 26.1 throughput search: the highest
// rate at which no frame is lost, by binary search on the offered rate.
//
// It starts with an unpaced trial, which gives the generator's top rate
// (the upper bound: nothing faster can be offered) and what the responder
// delivers when overloaded. A responder rarely passes above what it
// delivers under overload, so the next trial is at 1.1 times that; if it
// passes, the search goes on above it, up to the top rate. Then it halves
// the bracket until it is within precision or the steps run out.
func search(trial func(rate float64) (Point, error), sp searchParams) (searchResult, error) {
	var r searchResult
	run := func(rate float64) (bool, error) {
		p, err := trial(rate)
		if err != nil {
			return false, err
		}
		p.Pass = sp.passes(&p)
		r.Points = append(r.Points, p)
		return p.Pass, nil
	}
	pass, err := run(0)
	if err != nil {
		return r, err
	}
	r.Max = r.Points[0]
	top := r.Max.Sent
	if pass {
		r.Rate, r.GeneratorLimited = top, true
		return r, nil
	}
	lo, hi := 0.0, top
	// narrow runs a trial at rate, which becomes the bracket's lower end
	// if it passes and its upper end if not.
	narrow := func(rate float64) error {
		pass, err := run(rate)
		if pass {
			lo = rate
		} else {
			hi = rate
		}
		return err
	}
	if c := 1.1 * r.Max.Delivered; c > 0 && c < hi {
		if err := narrow(c); err != nil {
			return r, err
		}
	}
	for step := 0; step < sp.maxSteps && hi-lo > sp.precision*hi; step++ {
		if err := narrow((lo + hi) / 2); err != nil {
			return r, err
		}
	}
	r.Rate = lo
	return r, nil
}

// Stat is a measurement repeated over trials: median, min and max, and the
// values themselves.
type Stat struct {
	Median float64   `json:"median"`
	Min    float64   `json:"min"`
	Max    float64   `json:"max"`
	Values []float64 `json:"values"`
}

// newStat summarises vs. The median of an even count is the mean of the
// middle two.
func newStat(vs []float64) Stat {
	if len(vs) == 0 {
		return Stat{}
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + m) / 2
	}
	return Stat{Median: m, Min: s[0], Max: s[len(s)-1], Values: vs}
}
