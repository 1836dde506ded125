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
// what arrives, what the generator says it sent, and what it allocated.
func (h *harness) ourTrial(m *sinkMeter, g *child, what string) (arrived, sent float64, alloc *Alloc, err error) {
	var sum *loadgen.Summary
	arrived, err = m.measure(func() error {
		return g.begin(loadgen.Load{})
	}, func() (err error) {
		sum, alloc, err = g.endAlloc()
		return err
	})
	if err != nil {
		return 0, 0, nil, err
	}
	fmt.Fprintf(h.log, "  %-14s %s at the sink (%s sent)\n", what, loadgen.FormatRate(arrived), loadgen.FormatRate(sum.SentRate))
	return arrived, sum.SentRate, alloc, nil
}

// genBackends are pktengine's generator backends, in the order they are
// compared.
var genBackends = []loadgen.Backend{loadgen.BackendTPACKET, loadgen.BackendXDP, loadgen.BackendLive}

// compareGenerators measures pktengine's generator on each backend and
// trafgen, unpaced, on the generator CPU, by the frames per second that
// arrive in a counting ring on the other side. They take turns, trial by
// trial. The sink's interface runs an XDP program that passes everything,
// which frames redirected into a veth (the live backend's) need to
// arrive at all; trafgen is measured once more without it, the lab
// notes' condition.
func (h *harness) compareGenerators(ctx context.Context) *GeneratorResult {
	res := &GeneratorResult{PeerProgram: true}
	m, err := h.startSink(ctx)
	if err != nil {
		res.Error = err.Error()
		return res
	}
	defer m.sink.close()
	type gen struct {
		r *GenBackendResult
		c *child
	}
	var gens []gen
	for _, b := range genBackends {
		r := &GenBackendResult{Backend: b.String()}
		res.Backends = append(res.Backends, *r)
		cfg := h.sinkConfig()
		cfg.Backend = b
		c, err := h.start(ctx, "gen-"+b.String(), h.a, h.cfg.GenCPU, h.genChildSpec(cfg))
		if err != nil {
			r.Error = err.Error()
			fmt.Fprintf(h.log, "gen %s: %v\n", b, err)
		} else {
			defer c.close()
		}
		gens = append(gens, gen{r, c})
	}
	tg, err := h.newTrafgen(h.sinkConfig())
	if err != nil {
		res.TrafgenError = err.Error()
		fmt.Fprintf(h.log, "trafgen: %v\n", err)
	} else {
		defer tg.cleanup()
	}
	trafgenTrial := func(peer bool) float64 {
		if tg == nil || res.TrafgenError != "" {
			return 0
		}
		if err := h.setPeerProgram(peer); err != nil {
			res.TrafgenError = err.Error()
			return 0
		}
		rate, err := tg.trial(ctx, m)
		if err != nil {
			res.TrafgenError = err.Error()
			fmt.Fprintf(h.log, "trafgen: %v\n", err)
			return 0
		}
		what := "with"
		if !peer {
			what = "without"
		}
		fmt.Fprintf(h.log, "  trafgen        %s at the sink (%s an XDP program on the peer)\n", loadgen.FormatRate(rate), what)
		return rate
	}
	var theirs, plain []float64
	arrived := make([][]float64, len(gens))
	sent := make([][]float64, len(gens))
	var paired [][]float64 = make([][]float64, len(gens))
	for range h.cfg.Trials {
		if err := h.setPeerProgram(true); err != nil {
			res.Error = err.Error()
			break
		}
		var ours []float64
		for i, g := range gens {
			var a float64
			if g.c != nil && g.r.Error == "" {
				s, alloc := 0.0, (*Alloc)(nil)
				var err error
				a, s, alloc, err = h.ourTrial(m, g.c, "gen "+g.r.Backend)
				if err != nil {
					g.r.Error = err.Error()
					a = 0
				} else {
					arrived[i], sent[i] = append(arrived[i], a), append(sent[i], s)
					if alloc != nil {
						g.r.Alloc.Bytes += alloc.Bytes
						g.r.Alloc.Mallocs += alloc.Mallocs
						g.r.Alloc.Replies += alloc.Replies
					}
				}
			}
			ours = append(ours, a)
		}
		t := trafgenTrial(true)
		if t > 0 {
			theirs = append(theirs, t)
			for i, a := range ours {
				if a > 0 {
					paired[i] = append(paired[i], a/t)
				}
			}
		}
		if p := trafgenTrial(false); p > 0 {
			plain = append(plain, p)
		}
	}
	h.setPeerProgram(false)
	for i, g := range gens {
		r := g.r
		r.Arrived, r.Sent, r.VsTrafgen = newStat(arrived[i]), newStat(sent[i]), newStat(paired[i])
		r.Alloc.compute()
		res.Backends[i] = *r
	}
	// The TPACKET generator is "ours" of the earlier reports.
	tp := res.Backends[0]
	res.Ours, res.OursSent, res.Paired = tp.Arrived, tp.Sent, tp.VsTrafgen
	res.Error = tp.Error
	res.Trafgen, res.TrafgenPlain = newStat(theirs), newStat(plain)
	res.SinkDrops = m.drops
	return res
}

// fastestGenerator returns the backend that paces smoothly (tpacket or
// xdp) whose median arrival rate was the highest in the comparison, or
// TPACKET if none was measured. The live backend is left out however fast
// it is: the kernel spends about 0.75 ms on every BPF_PROG_RUN call
// however few frames it sends (docs/bench/xdp.md), so a paced rate comes
// in bursts of thousands of frames, which a zero-loss search must not
// offer (RFC 2544 asks for a constant rate).
func (res *GeneratorResult) fastestGenerator() loadgen.Backend {
	best, rate := loadgen.BackendTPACKET, 0.0
	if res == nil {
		return best
	}
	for _, r := range res.Backends {
		if b, ok := loadgen.ParseBackend(r.Backend); ok && b != loadgen.BackendLive && r.Error == "" && r.Arrived.Median > rate {
			best, rate = b, r.Arrived.Median
		}
	}
	return best
}

// lineRate measures what the lab's link carries from the generator's
// core as the responder runs see it with RPS: pktengine's generator, on
// the backend the responder runs use, into the sink.
func (h *harness) lineRate(ctx context.Context, res *GeneratorResult) {
	err := func() error {
		if err := h.setPeerProgram(h.genBackend == loadgen.BackendLive); err != nil {
			return err
		}
		defer h.setPeerProgram(false)
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
			a, _, _, err := h.ourTrial(m, g, "line rate")
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
