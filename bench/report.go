package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/pktengine/pktengine/loadgen"
)

// Report is the result of a benchmark run. It prints as a table
// (WriteTable), JSON (WriteJSON) and an SVG plot (WriteSVG).
type Report struct {
	Date    time.Time     `json:"date"`
	Elapsed time.Duration `json:"elapsed_ns"`
	// Command is the command line that reproduces the run; the caller
	// fills it in.
	Command string  `json:"command,omitempty"`
	Machine Machine `json:"machine"`
	Config  Config  `json:"config"`

	Responders []ResponderResult `json:"responders"`
	Generator  *GeneratorResult  `json:"generator,omitempty"`
	Ratios     []Ratio           `json:"ratios"`
	Goals      []Goal            `json:"goals"`
}

// Machine describes where the run happened.
type Machine struct {
	Kernel string `json:"kernel"`
	CPU    string `json:"cpu"`
	CPUs   int    `json:"cpus"`
	Go     string `json:"go"`
	// LoadBefore and LoadAfter are /proc/loadavg's three averages: the
	// machine is shared, and a busy one shows in the spread of trials.
	LoadBefore string `json:"load_before"`
	LoadAfter  string `json:"load_after"`
}

// ResponderResult is everything measured for one responder.
type ResponderResult struct {
	ResponderInfo
	// Error is set if the responder could not be measured.
	Error string `json:"error,omitempty"`

	// ZeroLoss is the RFC 2544 throughput in frames per second, one
	// value per search. GeneratorLimited is set if some search found no
	// loss even unpaced: the true figure is higher.
	ZeroLoss         Stat `json:"zero_loss"`
	GeneratorLimited bool `json:"generator_limited,omitempty"`
	// MaxSent and MaxDelivered are the unpaced trials: what the
	// generator offered and what came back.
	MaxSent      Stat `json:"max_sent"`
	MaxDelivered Stat `json:"max_delivered"`
	// CPU, Softirq and OwnCPU are the CPU costs per reply in
	// nanoseconds (see Point) in the trials at CPULoad, the highest
	// latency load: a rate the responder sustains. The Max fields are
	// the same in the unpaced trials, where an overloaded responder
	// spends much of its time on requests it then drops.
	CPULoad    float64 `json:"cpu_load"`
	CPU        Stat    `json:"cpu_ns"`
	Softirq    Stat    `json:"softirq_ns"`
	OwnCPU     Stat    `json:"own_cpu_ns"`
	MaxCPU     Stat    `json:"max_cpu_ns"`
	MaxSoftirq Stat    `json:"max_softirq_ns"`
	MaxOwnCPU  Stat    `json:"max_own_cpu_ns"`

	Searches []Search        `json:"searches"`
	Latency  []LatencyResult `json:"latency"`
	// Alloc covers every trial; AllocUnpaced only the unpaced ones, in
	// which the responder never waits for work.
	Alloc        Alloc `json:"alloc"`
	AllocUnpaced Alloc `json:"alloc_unpaced"`
}

// Search is one RFC 2544 search with all its trials.
type Search struct {
	Rate             float64 `json:"rate"`
	GeneratorLimited bool    `json:"generator_limited,omitempty"`
	Points           []Point `json:"points"`
}

// LatencyResult is latency at one fraction of a responder's zero-loss rate.
type LatencyResult struct {
	Load float64 `json:"load"` // fraction of the median zero-loss rate
	Rate float64 `json:"rate"` // frames per second offered
	Loss Stat    `json:"loss"`
	// Percentiles of the round trip in nanoseconds, one value per trial.
	P50    Stat    `json:"p50_ns"`
	P90    Stat    `json:"p90_ns"`
	P99    Stat    `json:"p99_ns"`
	P999   Stat    `json:"p999_ns"`
	Max    Stat    `json:"max_ns"`
	Points []Point `json:"points"`
}

// Alloc is the responder process's heap allocation over trials
// (runtime.MemStats deltas with the harness's control traffic taken out).
type Alloc struct {
	Replies         uint64  `json:"replies"`
	Bytes           uint64  `json:"bytes"`
	Mallocs         uint64  `json:"mallocs"`
	GCs             uint32  `json:"gcs,omitempty"`
	BytesPerReply   float64 `json:"bytes_per_reply"`
	MallocsPerReply float64 `json:"mallocs_per_reply"`
}

func (a *Alloc) compute() {
	if a.Replies > 0 {
		a.BytesPerReply = float64(a.Bytes) / float64(a.Replies)
		a.MallocsPerReply = float64(a.Mallocs) / float64(a.Replies)
	}
}

// GeneratorResult compares pktengine's generator with trafgen: unpaced,
// one core each, the same frame, counted as frames per second arriving in
// an RX ring on the other end of the veth.
type GeneratorResult struct {
	Ours    Stat `json:"ours"`
	Trafgen Stat `json:"trafgen"`
	// OursSent is the rate our generator reports for itself.
	OursSent Stat `json:"ours_sent"`
	// SinkDrops counts frames the counting ring dropped: if not zero the
	// sink, not the generator, was the limit.
	// Paired is Ours/Trafgen trial by trial (the two take turns).
	Paired       Stat   `json:"paired"`
	SinkDrops    uint64 `json:"sink_drops"`
	Error        string `json:"error,omitempty"`
	TrafgenError string `json:"trafgen_error,omitempty"`

	// Backends are pktengine's generator on each backend (tpacket, xdp,
	// live), measured in the same rounds as trafgen: what arrived, what
	// it says it sent, the ratio to trafgen trial by trial, and what it
	// allocated per frame (Alloc.Replies counts frames). Ours, OursSent
	// and Paired repeat the tpacket one.
	Backends []GenBackendResult `json:"backends,omitempty"`
	// PeerProgram says that the sink's interface ran an XDP program that
	// passes everything during these trials (the live backend's frames
	// need one); TrafgenPlain is trafgen without it.
	PeerProgram  bool `json:"peer_program,omitempty"`
	TrafgenPlain Stat `json:"trafgen_plain"`
	// Chosen is the backend the responder runs used (Config.Generator,
	// or the fastest here).
	Chosen string `json:"chosen,omitempty"`

	// Line is the lab's line rate with RPS (Config.RPS), which trafgen
	// does not survive: pktengine's generator into the sink with the
	// responder runs' receive steering. Without RPS the line rate is the
	// better of the two generators.
	Line          Stat   `json:"line"`
	LineSinkDrops uint64 `json:"line_sink_drops"`
	LineError     string `json:"line_error,omitempty"`
}

// GenBackendResult is pktengine's generator on one backend against the
// sink.
type GenBackendResult struct {
	Backend   string `json:"backend"`
	Arrived   Stat   `json:"arrived"`
	Sent      Stat   `json:"sent"`
	VsTrafgen Stat   `json:"vs_trafgen"`
	Alloc     Alloc  `json:"alloc"`
	Error     string `json:"error,omitempty"`
}

// backend returns the named backend's result, or nil.
func (g *GeneratorResult) backend(name string) *GenBackendResult {
	if g == nil {
		return nil
	}
	for i := range g.Backends {
		if g.Backends[i].Backend == name && g.Backends[i].Error == "" && g.Backends[i].Arrived.Median > 0 {
			return &g.Backends[i]
		}
	}
	return nil
}

// LineRate is what the lab's link carries from one core: the line rate
// measurement, or failing that the better of the two generators.
func (g *GeneratorResult) LineRate() float64 {
	if g == nil {
		return 0
	}
	if g.Line.Median > 0 {
		return g.Line.Median
	}
	best := math.Max(g.Ours.Median, g.Trafgen.Median)
	for _, b := range g.Backends {
		best = math.Max(best, b.Arrived.Median)
	}
	return best
}

// Ratio compares two responders' zero-loss rates: Value is the ratio of
// their medians, Paired the ratios round by round (both measured within
// minutes of each other, so a change in the machine's load touches both).
type Ratio struct {
	Engine string  `json:"engine"`
	Kernel string  `json:"kernel"`
	Value  float64 `json:"value"`
	Paired Stat    `json:"paired"`
}

// pairedRatios divides a's values by b's, index by index (round by round),
// skipping zero divisors.
func pairedRatios(a, b []float64) Stat {
	var rs []float64
	for i := range min(len(a), len(b)) {
		if b[i] > 0 {
			rs = append(rs, a[i]/b[i])
		}
	}
	return newStat(rs)
}

// ratio returns the median of the paired ratios, or the ratio of the
// medians if there are none.
func (x Ratio) ratio() float64 {
	if len(x.Paired.Values) > 0 {
		return x.Paired.Median
	}
	return x.Value
}

// Goal is one of the targets the project set itself, and how the run did.
type Goal struct {
	Goal     string `json:"goal"`
	Measured string `json:"measured"`
	Met      bool   `json:"met"`
}

// responder returns the named result, or nil.
func (r *Report) responder(name string) *ResponderResult { return named(r.measured(), name) }

// named returns the result of the responder called name among rs, or nil:
// the echo and the DNS reports' responder.
func named(rs []*ResponderResult, name string) *ResponderResult {
	for _, rr := range rs {
		if rr.Name == name {
			return rr
		}
	}
	return nil
}

// latencyAt returns the result's latency at load, or nil.
func (rr *ResponderResult) latencyAt(load float64) *LatencyResult {
	for i := range rr.Latency {
		if rr.Latency[i].Load == load {
			return &rr.Latency[i]
		}
	}
	return nil
}

// finish computes the ratios and goals.
func (r *Report) finish() {
	r.Ratios = nil
	var engines, kernels []*ResponderResult
	for i := range r.Responders {
		rr := &r.Responders[i]
		if rr.Error != "" {
			continue
		}
		if rr.Engine {
			engines = append(engines, rr)
		} else {
			kernels = append(kernels, rr)
		}
	}
	for _, e := range engines {
		for _, k := range kernels {
			if k.ZeroLoss.Median > 0 {
				r.Ratios = append(r.Ratios, Ratio{e.Name, k.Name, e.ZeroLoss.Median / k.ZeroLoss.Median, pairedRatios(e.ZeroLoss.Values, k.ZeroLoss.Values)})
			}
		}
	}
	var best *ResponderResult
	for _, e := range engines {
		if best == nil || e.ZeroLoss.Median > best.ZeroLoss.Median {
			best = e
		}
	}
	r.Goals = nil
	notMeasured := func(goal string) { r.Goals = append(r.Goals, Goal{goal, "not measured", false}) }
	ratioGoal := func(kernel string, want float64) {
		goal := fmt.Sprintf("pktengine echo zero-loss rate >= %gx %s", want, kernel)
		var x *Ratio
		for i := range r.Ratios {
			if best != nil && r.Ratios[i].Engine == best.Name && r.Ratios[i].Kernel == kernel {
				x = &r.Ratios[i]
			}
		}
		if x == nil {
			notMeasured(goal)
			return
		}
		k := r.responder(kernel)
		v := x.ratio()
		atLeast := ""
		if best.GeneratorLimited {
			atLeast = "at least " // the engine kept up with all the generator could send
		}
		r.Goals = append(r.Goals, Goal{goal, fmt.Sprintf("%s%.1fx, median of the rounds' ratios (%s %s vs %s)",
			atLeast, v, best.Name, loadgen.FormatRate(best.ZeroLoss.Median), loadgen.FormatRate(k.ZeroLoss.Median)), v >= want})
	}
	ratioGoal("kernel-batch", 3)
	ratioGoal("kernel", 20)

	const lineGoal = "pktengine echo zero-loss rate >= 95% of the lab's line rate"
	if line := r.Generator.LineRate(); best != nil && line > 0 {
		v := best.ZeroLoss.Median / line
		atLeast := ""
		if best.GeneratorLimited {
			atLeast = "at least "
		}
		r.Goals = append(r.Goals, Goal{lineGoal, fmt.Sprintf("%s%.0f%% (%s of %s, the most one core pushes through the veth)", atLeast, 100*v, loadgen.FormatRate(best.ZeroLoss.Median), loadgen.FormatRate(line)), v >= 0.95})
	} else {
		notMeasured(lineGoal)
	}

	const latGoal = "pktengine p99 latency at 10% load no worse than kernel UDP's"
	bar, kl := lowestP99(kernels, 0.1)
	bestLat, el := lowestP99(engines, 0.1)
	if len(kl) > 0 && len(el) > 0 {
		r.Goals = append(r.Goals, Goal{latGoal, strings.Join(el, ", ") + " vs " + strings.Join(kl, ", "), bestLat <= bar})
	} else {
		notMeasured(latGoal)
	}

	const genGoal = "pktengine gen frames/s >= trafgen's, one core"
	if g := r.Generator; g != nil && g.Ours.Median > 0 && g.Trafgen.Median > 0 {
		v, how := g.Ours.Median/g.Trafgen.Median, "ratio of the medians"
		if len(g.Paired.Values) > 0 {
			v, how = g.Paired.Median, "median of the paired trials' ratios"
		}
		r.Goals = append(r.Goals, Goal{genGoal, fmt.Sprintf("%.2fx, %s (%s vs %s)", v, how, loadgen.FormatRate(g.Ours.Median), loadgen.FormatRate(g.Trafgen.Median)), v >= 1})
	} else {
		notMeasured(genGoal)
	}

	r.xdpGoals()

	// Steady state is the unpaced trials, where the data path never
	// waits for work. An allocation per packet, or per batch of packets,
	// shows as at least one malloc per thousand replies; fewer is a
	// one-off (a buffer growing to its working size, a timer, a log
	// line), which the figures still show in bytes.
	const allocGoal = "0 bytes allocated per packet in the engine's steady state"
	var al []string
	met := len(engines) > 0
	for _, e := range engines {
		u := e.AllocUnpaced
		al = append(al, fmt.Sprintf("%s %.3g B/reply unpaced (%d B in %d allocations over %d replies), %.3g B/reply over all trials",
			e.Name, u.BytesPerReply, u.Bytes, u.Mallocs, u.Replies, e.Alloc.BytesPerReply))
		met = met && u.Replies > 0 && u.MallocsPerReply < 1e-3
	}
	if len(al) > 0 {
		r.Goals = append(r.Goals, Goal{allocGoal, strings.Join(al, "; "), met})
	} else {
		notMeasured(allocGoal)
	}

	const genAllocGoal = "0 allocations per packet in pktengine gen, every backend"
	var gl []string
	gmet := r.Generator != nil && len(r.Generator.Backends) > 0
	if r.Generator != nil {
		for _, b := range r.Generator.Backends {
			if b.Alloc.Replies == 0 {
				gmet = false
				continue
			}
			gl = append(gl, fmt.Sprintf("%s %d allocations (%d B) over %d frames", b.Backend, b.Alloc.Mallocs, b.Alloc.Bytes, b.Alloc.Replies))
			gmet = gmet && b.Alloc.MallocsPerReply < 1e-3
		}
	}
	if len(gl) > 0 {
		r.Goals = append(r.Goals, Goal{genAllocGoal, strings.Join(gl, "; "), gmet})
	} else {
		notMeasured(genAllocGoal)
	}
}

// xdpGoals are issue 13's goals: the AF_XDP engine against batched kernel
// UDP and the TPACKET engine (own CPU per reply at the highest latency
// load, where every responder runs at a rate it sustains, and zero-loss
// rate), and the AF_XDP and live generators against trafgen. Each is a
// ratio measured in one run.
//
// The CPU goals compare the responder process's own time (/proc/PID/stat,
// which the kernel scales to the scheduler's exact run time), not the
// responder CPU's busy ticks (/proc/stat): those are sampled at the timer
// tick, and a responder whose work is phase-locked to the tick escapes
// them. TPACKET_V3 is one: its blocks retire on a timer, the engine wakes
// just after a tick and is asleep again before the next, and /proc/stat
// once charged it 73 ns per reply, less than its dispatch alone costs.
func (r *Report) xdpGoals() {
	x := r.responder(xdpResponder)
	// The TPACKET engine: the better of v2 and v3 for each figure.
	var tpCPU, tpRate *ResponderResult
	for _, name := range []string{"engine-v2", "engine-v3"} {
		e := r.responder(name)
		if e == nil {
			continue
		}
		if e.OwnCPU.Median > 0 && (tpCPU == nil || e.OwnCPU.Median < tpCPU.OwnCPU.Median) {
			tpCPU = e
		}
		if tpRate == nil || e.ZeroLoss.Median > tpRate.ZeroLoss.Median {
			tpRate = e
		}
	}
	kb := r.responder("kernel-batch")
	cpuGoal := func(goal string, other *ResponderResult, want float64) {
		if x == nil || other == nil || x.OwnCPU.Median <= 0 || other.OwnCPU.Median <= 0 {
			r.Goals = append(r.Goals, Goal{goal, "not measured", false})
			return
		}
		v := x.OwnCPU.Median / other.OwnCPU.Median
		r.Goals = append(r.Goals, Goal{goal, fmt.Sprintf("%.2fx (%s %s vs %s %s of the process's own CPU per reply at %g%% of each one's zero-loss rate, medians)",
			v, x.Name, statDur(x.OwnCPU), other.Name, statDur(other.OwnCPU), 100*maxLoad(r.Config.LatencyLoads)), v <= want})
	}
	cpuGoal("AF_XDP echo CPU per reply <= 1/3 of batched kernel UDP's", kb, 1.0/3)
	cpuGoal("AF_XDP echo CPU per reply <= 0.75x the TPACKET engine's", tpCPU, 0.75)

	const rateGoal = "AF_XDP echo zero-loss rate >= 1.15x the TPACKET engine's"
	if x != nil && tpRate != nil && tpRate.ZeroLoss.Median > 0 {
		p := pairedRatios(x.ZeroLoss.Values, tpRate.ZeroLoss.Values)
		v, how := x.ZeroLoss.Median/tpRate.ZeroLoss.Median, "ratio of the medians"
		if len(p.Values) > 0 {
			v, how = p.Median, "median of the rounds' ratios"
		}
		atLeast := ""
		if x.GeneratorLimited {
			atLeast = "at least "
		}
		r.Goals = append(r.Goals, Goal{rateGoal, fmt.Sprintf("%s%.2fx, %s (%s %s vs %s %s)", atLeast, v, how,
			x.Name, loadgen.FormatRate(x.ZeroLoss.Median), tpRate.Name, loadgen.FormatRate(tpRate.ZeroLoss.Median)), v >= 1.15})
	} else {
		r.Goals = append(r.Goals, Goal{rateGoal, "not measured", false})
	}

	genGoal := func(backend string, want float64, goal string) {
		b := r.Generator.backend(backend)
		if b == nil || r.Generator.Trafgen.Median <= 0 {
			r.Goals = append(r.Goals, Goal{goal, "not measured", false})
			return
		}
		v, how := b.Arrived.Median/r.Generator.Trafgen.Median, "ratio of the medians"
		if len(b.VsTrafgen.Values) > 0 {
			v, how = b.VsTrafgen.Median, "median of the paired trials' ratios"
		}
		r.Goals = append(r.Goals, Goal{goal, fmt.Sprintf("%.2fx, %s (%s vs %s)", v, how,
			loadgen.FormatRate(b.Arrived.Median), loadgen.FormatRate(r.Generator.Trafgen.Median)), v >= want})
	}
	genGoal("xdp", 1.2, "pktengine gen --backend xdp frames/s >= 1.2x trafgen's, one core")
	genGoal("live", 4, "pktengine gen --backend live frames/s >= 4x trafgen's into a stack-bound peer, one core")
}

// lowestP99 returns the lowest median p99 latency at load among rs
// (+Inf if none was measured) and each one's median for the report.
func lowestP99(rs []*ResponderResult, load float64) (lowest float64, each []string) {
	lowest = math.Inf(1)
	for _, rr := range rs {
		if l := rr.latencyAt(load); l != nil && l.P99.Median > 0 {
			lowest = math.Min(lowest, l.P99.Median)
			each = append(each, fmt.Sprintf("%s %s", rr.Name, loadgen.FormatDuration(time.Duration(l.P99.Median))))
		}
	}
	return lowest, each
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error { return writeJSON(w, r) }

// writeJSON writes v as indented JSON: the echo and DNS reports' format.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// measured returns the responders that were measured (no Error), for the
// latency table, the plot and responder.
func (r *Report) measured() []*ResponderResult {
	var rs []*ResponderResult
	for i := range r.Responders {
		if r.Responders[i].Error == "" {
			rs = append(rs, &r.Responders[i])
		}
	}
	return rs
}

// writeLatencyTable writes the latency percentiles of rs at each load, a
// row per responder; who heads the first column and rate formats the rate
// offered at each load. The echo and DNS tables differ only in those.
func writeLatencyTable(w io.Writer, who string, loads []float64, rs []*ResponderResult, rate func(float64) string) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "%s\t", who)
	for _, f := range loads {
		fmt.Fprintf(tw, "%g%%\t", 100*f)
	}
	fmt.Fprintln(tw)
	for _, rr := range rs {
		fmt.Fprintf(tw, "%s\t", rr.Name)
		for _, f := range loads {
			l := rr.latencyAt(f)
			if l == nil {
				fmt.Fprint(tw, "-\t")
				continue
			}
			loss := ""
			if l.Loss.Median > 0 {
				loss = fmt.Sprintf(" (loss %.2g%%)", 100*l.Loss.Median)
			}
			fmt.Fprintf(tw, "%s: %s / %s / %s%s\t", rate(l.Rate), statDur(l.P50), statDur(l.P99), statDur(l.P999), loss)
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
}

// writeRatios writes each ratio of the medians and, where the rounds were
// paired, the median [min-max] of the rounds' ratios, with digits decimals.
func writeRatios(w io.Writer, ratios []Ratio, digits int) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, x := range ratios {
		fmt.Fprintf(tw, "  %s / %s\t%.*fx\t", x.Engine, x.Kernel, digits, x.Value)
		if p := x.Paired; len(p.Values) > 0 {
			fmt.Fprintf(tw, "%.*fx [%.*fx-%.*fx]", digits, p.Median, digits, p.Min, digits, p.Max)
		}
		fmt.Fprintln(tw, "\t")
	}
	tw.Flush()
}

// writeGoals writes the goals, each marked met or short, if there are any.
func writeGoals(w io.Writer, goals []Goal) {
	if len(goals) == 0 {
		return
	}
	fmt.Fprintf(w, "\ngoals\n")
	for _, g := range goals {
		mark := "short"
		if g.Met {
			mark = "met"
		}
		fmt.Fprintf(w, "  [%-5s] %s: %s\n", mark, g.Goal, g.Measured)
	}
}

// zeroLossCell returns rr's zero-loss rate for the tables, ">= " before
// it if the generator was the limit.
func (rr *ResponderResult) zeroLossCell() string {
	if rr.GeneratorLimited {
		return ">= " + statRate(rr.ZeroLoss)
	}
	return statRate(rr.ZeroLoss)
}

func statRate(s Stat) string {
	if len(s.Values) == 0 {
		return "-"
	}
	if len(s.Values) == 1 {
		return loadgen.FormatSI(s.Median)
	}
	return fmt.Sprintf("%s [%s-%s]", loadgen.FormatSI(s.Median), loadgen.FormatSI(s.Min), loadgen.FormatSI(s.Max))
}

func statDur(s Stat) string {
	if len(s.Values) == 0 {
		return "-"
	}
	return loadgen.FormatDuration(time.Duration(s.Median))
}

// WriteTable writes the report as text tables for a terminal.
func (r *Report) WriteTable(w io.Writer) error {
	var b strings.Builder
	c := r.Config
	fam := "IPv4"
	if c.IPv6 {
		fam = "IPv6"
	}
	fmt.Fprintf(&b, "pktengine bench, %s; %s, %d x %s, %s; load %s -> %s\n",
		r.Date.Format("2006-01-02 15:04 MST"), r.Machine.Kernel, r.Machine.CPUs, r.Machine.CPU, r.Machine.Go, r.Machine.LoadBefore, r.Machine.LoadAfter)
	fmt.Fprintf(&b, "%d-byte frames over %s, %d flows; generator on CPU%d, responder on CPU%d; %d trials of %v (+%v drain); loss tolerance %g; took %v\n",
		c.Size, fam, c.Flows, c.GenCPU, c.ResponderCPU, c.Trials, c.TrialDuration, c.Drain, c.LossTolerance, r.Elapsed.Round(time.Second))
	if r.Command != "" {
		fmt.Fprintf(&b, "reproduce: %s\n", r.Command)
	}

	fmt.Fprintf(&b, "\nRFC 2544 zero-loss throughput, frames/s: median [min-max] of %d searches; unpaced trials: offered and delivered;\n"+
		"CPU per reply at %g%% of the zero-loss rate: the responder CPU's user+system and softirq time (/proc/stat, sampled at the tick),\n"+
		"and the responder process's own user+system time (/proc/PID/stat, exact); heap allocated per reply in the unpaced trials and over all\n", c.Trials, 100*maxLoad(c.LatencyLoads))
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "responder\tzero-loss\tunpaced offered\tdelivered\tCPU/reply\tsoftirq/reply\town/reply\talloc/reply unpaced\tall trials\t")
	for _, rr := range r.Responders {
		if rr.Error != "" {
			fmt.Fprintf(tw, "%s\terror: %s\t\t\t\t\t\t\t\t\n", rr.Name, rr.Error)
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", rr.Name, rr.zeroLossCell(), statRate(rr.MaxSent), statRate(rr.MaxDelivered),
			statDur(rr.CPU), statDur(rr.Softirq), statDur(rr.OwnCPU), allocString(rr.AllocUnpaced), allocString(rr.Alloc))
	}
	tw.Flush()

	if len(c.LatencyLoads) > 0 {
		fmt.Fprintf(&b, "\nround-trip latency at a fraction of each responder's own zero-loss rate: p50 / p99 / p99.9 (median of %d trials; kernel RX timestamps)\n", c.Trials)
		writeLatencyTable(&b, "responder", c.LatencyLoads, r.measured(), loadgen.FormatRate)
	}

	if len(r.Ratios) > 0 {
		fmt.Fprintf(&b, "\npktengine / kernel, zero-loss rates: ratio of the medians, and median [min-max] of the ratios round by round\n")
		writeRatios(&b, r.Ratios, 1)
	}

	if g := r.Generator; g != nil && len(g.Backends) > 0 {
		peer := ""
		if g.PeerProgram {
			peer = ", the peer running an XDP program that passes everything (the live backend needs one)"
		}
		fmt.Fprintf(&b, "\ngenerators, unpaced, one core (CPU%d), frames/s arriving in an RX ring across the veth%s; median [min-max], ratio to trafgen trial by trial, allocations\n", c.GenCPU, peer)
		tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		for _, gb := range g.Backends {
			if gb.Error != "" {
				fmt.Fprintf(tw, "  pktengine gen --backend %s\terror: %s\t\t\t\n", gb.Backend, gb.Error)
				continue
			}
			ratio := "-"
			if p := gb.VsTrafgen; len(p.Values) > 0 {
				ratio = fmt.Sprintf("%.2fx [%.2fx-%.2fx]", p.Median, p.Min, p.Max)
			}
			fmt.Fprintf(tw, "  pktengine gen --backend %s\t%s\t%s\t%d allocs / %d frames\t\n", gb.Backend, statRate(gb.Arrived), ratio, gb.Alloc.Mallocs, gb.Alloc.Replies)
		}
		fmt.Fprintf(tw, "  trafgen\t%s\t\t\t\n", statRate(g.Trafgen))
		if len(g.TrafgenPlain.Values) > 0 {
			fmt.Fprintf(tw, "  trafgen, no XDP program on the peer\t%s\t\t\t\n", statRate(g.TrafgenPlain))
		}
		tw.Flush()
		if g.Chosen != "" {
			fmt.Fprintf(&b, "the responder runs used pktengine gen --backend %s\n", g.Chosen)
		}
	} else if g != nil {
		fmt.Fprintf(&b, "\ngenerators, unpaced, one core (CPU%d), frames/s arriving in an RX ring across the veth: pktengine gen %s, trafgen %s",
			c.GenCPU, statRate(g.Ours), statRate(g.Trafgen))
		if g.Ours.Median > 0 && g.Trafgen.Median > 0 {
			fmt.Fprintf(&b, " (%.2fx", g.Ours.Median/g.Trafgen.Median)
			if p := g.Paired; len(p.Values) > 1 {
				fmt.Fprintf(&b, "; trial by trial %.2fx [%.2fx-%.2fx]", p.Median, p.Min, p.Max)
			}
			fmt.Fprint(&b, ")")
		}
		fmt.Fprintln(&b)
	}
	if g := r.Generator; g != nil {
		if len(g.Line.Values) > 0 {
			fmt.Fprintf(&b, "line rate (pktengine gen into the sink, receive steered as in the responder runs): %s frames/s\n", statRate(g.Line))
		}
		if g.LineError != "" {
			fmt.Fprintf(&b, "  line rate: %s\n", g.LineError)
		}
		if g.SinkDrops > 0 {
			fmt.Fprintf(&b, "  the counting ring dropped %d frames: the sink was a limit\n", g.SinkDrops)
		}
		if g.Error != "" {
			fmt.Fprintf(&b, "  pktengine gen: %s\n", g.Error)
		}
		if g.TrafgenError != "" {
			fmt.Fprintf(&b, "  trafgen: %s\n", g.TrafgenError)
		}
	}

	writeGoals(&b, r.Goals)
	_, err := io.WriteString(w, b.String())
	return err
}

// maxLoad returns the highest of the latency loads, 0 if none.
func maxLoad(loads []float64) float64 {
	m := 0.0
	for _, f := range loads {
		m = math.Max(m, f)
	}
	return m
}

func allocString(a Alloc) string {
	if a.Replies == 0 {
		return "-"
	}
	if a.Bytes == 0 {
		return "0 B"
	}
	return fmt.Sprintf("%.3g B", a.BytesPerReply)
}

// curve returns a responder's trials as (sent, delivered) points sorted by
// the sent rate, for the plot.
func (rr *ResponderResult) curve() []Point {
	var ps []Point
	for _, s := range rr.Searches {
		ps = append(ps, s.Points...)
	}
	for _, l := range rr.Latency {
		ps = append(ps, l.Points...)
	}
	slices.SortFunc(ps, func(a, b Point) int {
		switch {
		case a.Sent < b.Sent:
			return -1
		case a.Sent > b.Sent:
			return 1
		}
		return 0
	})
	return ps
}
