package bench

// Turning trials into a responder's results: medians with min and max
// over the rounds.

// addSearch adds one round's search to rr: its trials, and its unpaced
// trial's allocations to AllocUnpaced.
func (rr *ResponderResult) addSearch(sr searchResult) {
	rr.Searches = append(rr.Searches, Search{Rate: sr.Rate, GeneratorLimited: sr.GeneratorLimited, Points: sr.Points})
	rr.GeneratorLimited = rr.GeneratorLimited || sr.GeneratorLimited
	rr.AllocUnpaced.Replies += sr.Max.Replies
	rr.AllocUnpaced.Bytes += sr.Max.AllocBytes
	rr.AllocUnpaced.Mallocs += sr.Max.AllocMallocs
}

// addLatencyTrials runs one round's trial at each of rr's latency loads
// and adds its point, passed or not as sp says.
func (rr *ResponderResult) addLatencyTrials(sp searchParams, trial func(rate float64) (Point, error)) error {
	for j := range rr.Latency {
		lr := &rr.Latency[j]
		p, err := trial(lr.Rate)
		if err != nil {
			return err
		}
		p.Pass = sp.passes(&p)
		lr.Points = append(lr.Points, p)
	}
	return nil
}

// summarizeSearches sets rr's zero-loss rate and unpaced figures from its
// searches, and the latency loads to measure next: each fraction of loads
// of the median zero-loss rate, if that is not zero.
func (rr *ResponderResult) summarizeSearches(loads []float64) {
	rr.ZeroLoss = statOf(rr.Searches, func(s Search) float64 { return s.Rate })
	unpaced := make([]Point, len(rr.Searches))
	for i, s := range rr.Searches {
		unpaced[i] = s.Points[0]
	}
	rr.MaxSent = statOf(unpaced, func(p Point) float64 { return p.Sent })
	rr.MaxDelivered = statOf(unpaced, func(p Point) float64 { return p.Delivered })
	rr.MaxCPU, rr.MaxOwnCPU, rr.MaxSoftirq = cpuStats(unpaced)
	for _, f := range loads {
		if rate := f * rr.ZeroLoss.Median; rate > 0 {
			rr.Latency = append(rr.Latency, LatencyResult{Load: f, Rate: rate})
		}
	}
}

// summarizeLatency sets the loss and latency percentiles of each of rr's
// latency loads from its trials, the CPU costs from the trials at
// rr.CPULoad, and the allocation rates.
func (rr *ResponderResult) summarizeLatency() {
	for j := range rr.Latency {
		lr := &rr.Latency[j]
		lr.Loss = statOf(lr.Points, func(p Point) float64 { return p.Loss })
		lr.P50 = statOf(lr.Points, func(p Point) float64 { return float64(p.Latency.P50) })
		lr.P90 = statOf(lr.Points, func(p Point) float64 { return float64(p.Latency.P90) })
		lr.P99 = statOf(lr.Points, func(p Point) float64 { return float64(p.Latency.P99) })
		lr.P999 = statOf(lr.Points, func(p Point) float64 { return float64(p.Latency.P999) })
		lr.Max = statOf(lr.Points, func(p Point) float64 { return float64(p.Latency.Max) })
		if lr.Load == rr.CPULoad {
			rr.CPU, rr.OwnCPU, rr.Softirq = cpuStats(lr.Points)
		}
	}
	rr.Alloc.compute()
	rr.AllocUnpaced.compute()
}

// cpuStats summarises the CPU costs per reply of the trials that had
// replies: the responder CPU's, the responder process's and softirq.
func cpuStats(ps []Point) (cpu, own, softirq Stat) {
	var answered []Point
	for _, p := range ps {
		if p.Replies > 0 {
			answered = append(answered, p)
		}
	}
	return statOf(answered, func(p Point) float64 { return p.CPU }),
		statOf(answered, func(p Point) float64 { return p.OwnCPU }),
		statOf(answered, func(p Point) float64 { return p.Softirq })
}

// statOf summarises f over xs.
func statOf[T any](xs []T, f func(T) float64) Stat {
	var vs []float64
	for _, x := range xs {
		vs = append(vs, f(x))
	}
	return newStat(vs)
}
