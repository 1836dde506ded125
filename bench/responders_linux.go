//go:build linux

package bench

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/pktengine/pktengine/frame"
	"github.com/pktengine/pktengine/loadgen"
)

// session is one responder child with its allocation baseline.
type session struct {
	name   string
	resp   *child
	before *ResponderStats
}

// open starts responder name, checks that it answers, warms it up and
// takes its allocation baseline.
func (h *harness) open(ctx context.Context, name string, g *child, warm time.Duration) (*session, error) {
	dst := netip.AddrPortFrom(h.respAddr(), echoPort)
	resp, err := h.start(ctx, name, h.b, h.cfg.ResponderCPU, childSpec{Role: roleResponder, Iface: h.b.Iface, Responder: name, Addr: dst})
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			resp.close()
		}
	}()
	// A short check that the responder answers at all, before minutes
	// of trials say "zero".
	s, err := g.run(loadgen.Load{Rate: 10000, Count: 100, Drain: 2 * time.Second})
	if err != nil {
		return nil, err
	}
	if s.Received == 0 {
		return nil, errors.New("no replies to 100 requests at 10000/s")
	}
	// An unpaced burst that counts for nothing: buffers that grow to
	// their working size (a ring batch's offsets, a socket's queue) do
	// so here, not in the steady state the allocation figures are for.
	if _, err := g.run(loadgen.Load{Duration: warm}); err != nil {
		return nil, err
	}
	before, err := resp.stats()
	if err != nil {
		return nil, err
	}
	ok = true
	return &session{name: name, resp: resp, before: before}, nil
}

// close adds the session's allocations to a and ends the child.
func (s *session) close(a *Alloc) error {
	after, err := s.resp.stats()
	if err == nil {
		a.Replies += after.Replies - s.before.Replies
		a.Bytes += after.TotalAlloc - s.before.TotalAlloc
		a.Mallocs += after.Mallocs - s.before.Mallocs
		a.GCs += after.NumGC - s.before.NumGC
	}
	return errors.Join(err, s.resp.close())
}

// measureAll runs the RFC 2544 searches and then the latency trials,
// interleaved: each round starts every responder in turn, measures it
// once and stops it. A change in the machine's load during the run then
// touches every responder alike instead of the ones that happen to run
// while it lasts, and the ratios between them stay fair.
func (h *harness) measureAll(ctx context.Context) ([]ResponderResult, error) {
	var bmac frame.MAC
	copy(bmac[:], h.b.MAC)
	g, err := h.start(ctx, "gen", h.a, h.cfg.GenCPU, h.genChildSpec(h.genConfig(netip.AddrPortFrom(h.respAddr(), echoPort), bmac, false, h.cfg.Flows)))
	if err != nil {
		return nil, err
	}
	defer g.close()

	results := make([]ResponderResult, len(h.cfg.Responders))
	for i, name := range h.cfg.Responders {
		kind, _ := lookupResponder(name)
		results[i].ResponderInfo = kind.ResponderInfo
		results[i].CPULoad = maxLoad(h.cfg.LatencyLoads)
	}
	// each runs f on a session of every responder that has not failed.
	each := func(round, rounds int, what string, warm time.Duration, f func(*ResponderResult, *session) error) error {
		for i := range results {
			rr := &results[i]
			if rr.Error != "" {
				continue
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			fmt.Fprintf(h.log, "%s: %s, round %d of %d\n", rr.Name, what, round+1, rounds)
			if err := h.preparePeer(rr.Name); err != nil {
				return err
			}
			sess, err := h.open(ctx, rr.Name, g, warm)
			if err == nil {
				err = errors.Join(f(rr, sess), sess.close(&rr.Alloc))
			}
			if err != nil {
				rr.Error = err.Error()
				fmt.Fprintf(h.log, "%s: %v\n", rr.Name, err)
			}
		}
		return nil
	}

	sp := searchParams{tolerance: h.cfg.LossTolerance, precision: h.cfg.Precision, maxSteps: h.cfg.MaxSteps}
	for round := range h.cfg.Trials {
		err := each(round, h.cfg.Trials, "zero-loss search", min(h.cfg.TrialDuration, 300*time.Millisecond), func(rr *ResponderResult, sess *session) error {
			sr, err := search(func(rate float64) (Point, error) { return h.trialRetry(rr.Name, sess.resp, g, rate) }, sp)
			if err != nil {
				return err
			}
			rr.addSearch(sr)
			fmt.Fprintf(h.log, "%s: zero-loss rate %s\n", rr.Name, loadgen.FormatRate(sr.Rate))
			return nil
		})
		if err != nil {
			return results, err
		}
	}
	for i := range results {
		results[i].summarizeSearches(h.cfg.LatencyLoads)
	}

	for round := range h.cfg.Trials {
		err := each(round, h.cfg.Trials, "latency", min(h.cfg.TrialDuration, 100*time.Millisecond), func(rr *ResponderResult, sess *session) error {
			return rr.addLatencyTrials(sp, func(rate float64) (Point, error) { return h.trialRetry(rr.Name, sess.resp, g, rate) })
		})
		if err != nil {
			return results, err
		}
	}
	for i := range results {
		results[i].summarizeLatency()
	}
	return results, nil
}
