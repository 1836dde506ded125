//go:build linux

package bench

import (
	"errors"
	"fmt"
	"time"

	"github.com/pktengine/pktengine/loadgen"
)

// A trial in which the generator came close to the offered rate but fell
// short is run once more before it counts as failed: on a shared machine
// the generator's thread is sometimes preempted for longer than its pacer
// may catch up, which says nothing about the responder. One that fell far
// short met the generator's limit, and is not repeated.
const (
	shortfallRetries = 1
	nearMissRatio    = 0.9
)

// trialRetry is trial, repeated after a near miss of the generator.
func (h *harness) trialRetry(name string, resp, g *child, rate float64) (Point, error) {
	for i := 0; ; i++ {
		p, err := h.trial(name, resp, g, rate)
		if err != nil || rate == 0 || p.Sent >= minSentRatio*rate || p.Sent < nearMissRatio*rate || i == shortfallRetries {
			p.Retries = i
			return p, err
		}
		fmt.Fprintf(h.log, "  %-12s the generator sent %s of %s: again\n", name, loadgen.FormatRate(p.Sent), loadgen.FormatRate(rate))
	}
}

// settle waits until the responder has stopped sending, at most
// settleMax: an overloaded responder with a deep ring is still answering
// the last trial's backlog, which the next trial must not count.
func (h *harness) settle(name string, resp *child) (*ResponderStats, error) {
	const settleMax = 5 * time.Second
	start := time.Now()
	st, err := resp.stats()
	for err == nil {
		time.Sleep(10 * time.Millisecond)
		var next *ResponderStats
		if next, err = resp.stats(); err != nil {
			break
		}
		quiet := next.Replies == st.Replies
		st = next
		if quiet || time.Since(start) > settleMax {
			break
		}
	}
	if d := time.Since(start); d > 200*time.Millisecond {
		fmt.Fprintf(h.log, "  %-12s took %v to finish answering the last trial\n", name, d.Round(time.Millisecond))
	}
	return st, err
}

// unpacedDrain is the least time an unpaced trial waits for replies: an
// overloaded responder with a deep ring answers late, and a reply after
// the drain counts as lost.
const unpacedDrain = 500 * time.Millisecond

// trial offers rate (0: unpaced) for one trial duration and measures the
// responder's CPU around it.
func (h *harness) trial(name string, resp, g *child, rate float64) (Point, error) {
	st0, err := h.settle(name, resp)
	if err != nil {
		return Point{}, err
	}
	before, errBefore := sampleCPU(h.cfg.ResponderCPU, resp.pid)
	load := loadgen.Load{Rate: rate, Duration: h.cfg.TrialDuration}
	if rate == 0 {
		load.Drain = max(h.cfg.Drain, unpacedDrain)
	}
	s, err := g.run(load)
	if err != nil {
		return Point{}, err
	}
	after, errAfter := sampleCPU(h.cfg.ResponderCPU, resp.pid)
	st1, err := resp.stats()
	if err != nil {
		return Point{}, err
	}
	if err := errors.Join(errBefore, errAfter); err != nil {
		return Point{}, err
	}
	p := Point{
		Offered: rate, Sent: s.SentRate, Delivered: s.ReceivedRate, Loss: s.LossRatio,
		Latency: s.Latency, RingDrops: s.RingDrops,
		Replies:        st1.Replies - st0.Replies,
		RcvbufErrors:   st1.RcvbufErrors - st0.RcvbufErrors,
		AllocBytes:     st1.TotalAlloc - st0.TotalAlloc,
		AllocMallocs:   st1.Mallocs - st0.Mallocs,
		ResponderDrops: st1.Drops - st0.Drops,
	}
	p.setCPU(before, after)
	offered := "max"
	if rate > 0 {
		offered = loadgen.FormatRate(rate)
	}
	where := dropsNote([]dropCount{{p.RcvbufErrors, "socket buffer"}, {p.ResponderDrops, "responder"}, {p.BacklogDrops, "backlog"}, {p.RingDrops, "generator ring"}})
	fmt.Fprintf(h.log, "  %-12s offered %-9s sent %-9s delivered %-9s loss %7.3f%%  p50 %-7s p99 %-7s cpu %s/reply softirq %s/reply%s\n",
		name, offered, loadgen.FormatRate(p.Sent), loadgen.FormatRate(p.Delivered), 100*p.Loss,
		loadgen.FormatDuration(p.Latency.P50), loadgen.FormatDuration(p.Latency.P99), loadgen.FormatDuration(time.Duration(p.CPU)), loadgen.FormatDuration(time.Duration(p.Softirq)), where)
	return p, nil
}

// dropCount is how many frames a trial lost where, for its progress line.
type dropCount struct {
	n    uint64
	what string
}

// dropsNote returns the end of a trial's progress line that says where
// frames were lost, "  drops: WHERE N ...", or "" if none were.
func dropsNote(drops []dropCount) string {
	var where string
	for _, d := range drops {
		if d.n > 0 {
			where += fmt.Sprintf(" %s %d", d.what, d.n)
		}
	}
	if where == "" {
		return ""
	}
	return "  drops:" + where
}
