//go:build linux

package bench

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/pktengine/pktengine/loadgen"
)

// sinkMeter counts what arrives at the sink while a generator runs.
type sinkMeter struct {
	sink          *child
	warm, window  time.Duration
	drops0, drops uint64
	started       bool
}

// measure counts the sink's frames over the window, while a generator
// started by begin runs; end stops it.
func (m *sinkMeter) measure(begin func() error, end func() error) (float64, error) {
	sink := m.sink
	if err := begin(); err != nil {
		return 0, err
	}
	// Wait for the first frames (trafgen takes a while to set up),
	// then for the rate to settle.
	first, err := sink.count()
	for deadline := time.Now().Add(5 * time.Second); err == nil && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
		var c *sinkCount
		if c, err = sink.count(); err == nil && c.Frames > first.Frames {
			break
		}
	}
	if err != nil {
		end()
		return 0, err
	}
	time.Sleep(m.warm)
	c0, err := sink.count()
	if err != nil {
		end()
		return 0, err
	}
	time.Sleep(m.window)
	c1, err := sink.count()
	if err := errors.Join(err, end()); err != nil {
		return 0, err
	}
	if !m.started {
		m.drops0, m.started = c0.Drops, true
	}
	m.drops = c1.Drops - m.drops0
	return float64(c1.Frames-c0.Frames) / (float64(c1.Time-c0.Time) / 1e9), nil
}

// startSink starts the counting sink on B.
func (h *harness) startSink(ctx context.Context) (*sinkMeter, error) {
	dst := netip.AddrPortFrom(h.respAddr(), discardPort)
	sink, err := h.start(ctx, "sink", h.b, h.cfg.ResponderCPU, childSpec{Role: roleSink, Iface: h.b.Iface, Addr: dst})
	if err != nil {
		return nil, err
	}
	return &sinkMeter{sink: sink, warm: min(200*time.Millisecond, h.cfg.TrialDuration/2), window: h.cfg.TrialDuration}, nil
}

// sinkConfig is the generator's configuration for the sink: one flow to
// the discard port at a MAC nobody has.
func (h *harness) sinkConfig() *loadgen.Config {
	return h.genConfig(netip.AddrPortFrom(h.respAddr(), discardPort), nobodyMAC, true, 1)
}

// ourTrial measures pktengine's generator (child g) against the sink once:
// what arrives, and what the generator says it sent.
func (h *harness) ourTrial(m *sinkMeter, g *child, what string) (arrived, sent float64, err error) {
	var sum *loadgen.Summary
	arrived, err = m.measure(func() error {
		return g.begin(loadgen.Load{})
	}, func() (err error) {
		sum, err = g.end()
		return err
	})
	if err != nil {
		return 0, 0, err
	}
	fmt.Fprintf(h.log, "  %-14s %s at the sink (%s sent)\n", what, loadgen.FormatRate(arrived), loadgen.FormatRate(sum.SentRate))
	return arrived, sum.SentRate, nil
}

// compareGenerators measures pktengine's generator and trafgen, unpaced,
// on the generator CPU, by the frames per second that arrive in a
// counting ring on the other side. The two take turns, trial by trial.
func (h *harness) compareGenerators(ctx context.Context) *GeneratorResult {
	res := &GeneratorResult{}
	m, err := h.startSink(ctx)
	if err != nil {
		res.Error = err.Error()
		return res
	}
	defer m.sink.close()
	g, err := h.start(ctx, "gen", h.a, h.cfg.GenCPU, h.genChildSpec(h.sinkConfig()))
	if err != nil {
		res.Error = err.Error()
		return res
	}
	defer g.close()
	tg, err := h.newTrafgen(h.sinkConfig())
	if err != nil {
		res.TrafgenError = err.Error()
		fmt.Fprintf(h.log, "trafgen: %v\n", err)
	} else {
		defer tg.cleanup()
	}
	var ours, sent, theirs, paired []float64
	for range h.cfg.Trials {
		var a float64
		if res.Error == "" {
			var s float64
			var err error
			a, s, err = h.ourTrial(m, g, "pktengine gen")
			if err != nil {
				res.Error = err.Error()
			} else {
				ours, sent = append(ours, a), append(sent, s)
			}
		}
		if tg != nil && res.TrafgenError == "" {
			rate, err := tg.trial(ctx, m)
			if err != nil {
				res.TrafgenError = err.Error()
				fmt.Fprintf(h.log, "trafgen: %v\n", err)
			} else {
				theirs = append(theirs, rate)
				if a > 0 {
					paired = append(paired, a/rate)
				}
				fmt.Fprintf(h.log, "  trafgen        %s at the sink\n", loadgen.FormatRate(rate))
			}
		}
	}
	res.Ours, res.OursSent, res.Trafgen, res.Paired = newStat(ours), newStat(sent), newStat(theirs), newStat(paired)
	res.SinkDrops = m.drops
	return res
}

// lineRate measures what the lab's link carries from the generator's
// core as the responder runs see it with RPS: pktengine's generator into
// the sink.
func (h *harness) lineRate(ctx context.Context, res *GeneratorResult) {
	err := func() error {
		m, err := h.startSink(ctx)
		if err != nil {
			return err
		}
		defer m.sink.close()
		g, err := h.start(ctx, "gen", h.a, h.cfg.GenCPU, h.genChildSpec(h.sinkConfig()))
		if err != nil {
			return err
		}
		defer g.close()
		var vs []float64
		for range h.cfg.Trials {
			a, _, err := h.ourTrial(m, g, "line rate")
			if err != nil {
				return err
			}
			vs = append(vs, a)
		}
		res.Line, res.LineSinkDrops = newStat(vs), m.drops
		return nil
	}()
	if err != nil {
		res.LineError = err.Error()
	}
}
