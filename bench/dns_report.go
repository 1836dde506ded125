package bench

import (
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/pktengine/pktengine/loadgen"
)

// DNSReport is the result of a DNS benchmark run (RunDNS). It prints as a
// table (WriteTable), JSON (WriteJSON) and an SVG plot (WriteSVG).
type DNSReport struct {
	Date    time.Time     `json:"date"`
	Elapsed time.Duration `json:"elapsed_ns"`
	// Command is the command line that reproduces the run; the caller
	// fills it in.
	Command string     `json:"command,omitempty"`
	Machine Machine    `json:"machine"`
	Config  DNSConfig  `json:"config"`
	Queries DNSQueries `json:"queries"`

	Responders []DNSResponderResult `json:"responders"`
	Ratios     []Ratio              `json:"ratios"`
	Goals      []Goal               `json:"goals"`
}

// DNSQueries describes the load.
type DNSQueries struct {
	Zone     string  `json:"zone"`     // origin
	Names    int     `json:"names"`    // hosts, an A and an AAAA each
	Queries  int     `json:"queries"`  // distinct queries, sent in turn
	NXDomain int     `json:"nxdomain"` // of them for names that do not exist
	Frame    float64 `json:"frame"`    // mean query frame size, with FCS
	Sources  int     `json:"sources"`  // source ports per trial
	Versions string  `json:"versions"` // knotd's and dnsperf's versions
}

// DNSResponderResult is everything measured for one DNS server. The
// embedded ResponderResult's "replies" are answers: replies that the
// generator matched to their query and found right (QR, RCODE, question).
// CPU per answer counts every answer the generator received; Alloc is
// dnsd's own count (Knot's is not measured: Alloc.Replies is 0).
type DNSResponderResult struct {
	ResponderResult
	// Threads is how many threads of the server were pinned to the
	// responder CPU, checked when each session started and ended.
	Threads int `json:"threads"`
	// Wrong counts replies that did not answer their query right (QR,
	// RCODE, question), over all trials; they count as lost.
	Wrong uint64 `json:"wrong"`
	// Drops says where queries were lost, over all trials.
	Drops DNSDrops `json:"drops"`
	// Others is how busy other programs kept the server's CPU during
	// the trials: the CPU's user+system time less the server process's
	// own, as a share of each trial's time (median, min, max over the
	// trials). On a quiet machine it is near 0; on a shared one it says
	// how much the neighbours took.
	Others     Stat      `json:"others"`
	othersSeen []float64 // one per trial, while measuring
	// Dnsperf are dnsperf's runs, one per round.
	Dnsperf []DnsperfResult `json:"dnsperf,omitempty"`
}

// DNSDrops counts where queries were lost, over all trials of a server.
type DNSDrops struct {
	// SocketBuffer: the server's kernel socket was full (UDP
	// RcvbufErrors of its namespace). Server: dnsd dropped them itself
	// (malformed), the engine's receive ring or the Conn's port queue
	// was full, or the answer found no transmit buffer or could not be
	// sent (dnsd's counters). Backlog: a CPU's input
	// backlog was full (/proc/net/softnet_stat, every CPU). VethQueue:
	// veth could not queue them to the servers' side (its XDP ring or
	// the backlog; tx dropped of the generator's veth). XDPRing: Knot's
	// XDP program could not redirect them, its AF_XDP ring being full
	// (rx dropped of the servers' veth).
	SocketBuffer uint64 `json:"socket_buffer"`
	Server       uint64 `json:"server"`
	Backlog      uint64 `json:"backlog"`
	VethQueue    uint64 `json:"veth_queue"`
	XDPRing      uint64 `json:"xdp_ring"`
}

func (d *DNSDrops) add(o DNSDrops) {
	d.SocketBuffer += o.SocketBuffer
	d.Server += o.Server
	d.Backlog += o.Backlog
	d.VethQueue += o.VethQueue
	d.XDPRing += o.XDPRing
}

// String lists the nonzero counts.
func (d DNSDrops) String() string {
	var parts []string
	for _, x := range []struct {
		n    uint64
		what string
	}{{d.SocketBuffer, "socket buffer"}, {d.Server, "server"}, {d.Backlog, "backlog"}, {d.VethQueue, "veth queue"}, {d.XDPRing, "AF_XDP ring"}} {
		if x.n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", x.what, x.n))
		}
	}
	if len(parts) == 0 {
		return "none counted"
	}
	return strings.Join(parts, ", ")
}

// DnsperfResult is one dnsperf run against a server.
type DnsperfResult struct {
	Rate float64 `json:"rate"` // asked for (-Q)
	DnsperfStats
	// CPU and Softirq are the responder CPU's time per completed query,
	// as in Point.
	CPU     float64 `json:"cpu_ns"`
	Softirq float64 `json:"softirq_ns"`
	Error   string  `json:"error,omitempty"`
}

// DnsperfStats is what dnsperf reports at the end of a run.
type DnsperfStats struct {
	Sent      uint64  `json:"sent"`
	Completed uint64  `json:"completed"`
	Lost      uint64  `json:"lost"`
	QPS       float64 `json:"qps"`
	Seconds   float64 `json:"seconds"`
	// Latencies in nanoseconds: mean, least, most, standard deviation.
	Mean   float64 `json:"mean_ns"`
	Min    float64 `json:"min_ns"`
	Max    float64 `json:"max_ns"`
	StdDev float64 `json:"stddev_ns"`
}

// responder returns the named result, or nil.
func (r *DNSReport) responder(name string) *ResponderResult { return named(r.measured(), name) }

// The goals of issue 12, each from one run.
const (
	dnsGoalInline = "dnsd inline zero-loss queries/s >= Knot XDP's, at no more CPU per query"
	dnsGoalConn   = "dnsd on the engine's net.PacketConn zero-loss queries/s >= 1.5x dnsd on a kernel socket"
	dnsGoalAlloc  = "dnsd inline: 0 allocations per query"
)

// ratio compares two responders' zero-loss rates, round by round.
func (r *DNSReport) ratio(a, b string) *Ratio {
	x, y := r.responder(a), r.responder(b)
	if x == nil || y == nil || y.ZeroLoss.Median <= 0 {
		return nil
	}
	return &Ratio{a, b, x.ZeroLoss.Median / y.ZeroLoss.Median, pairedRatios(x.ZeroLoss.Values, y.ZeroLoss.Values)}
}

// finish computes the ratios and the goals.
func (r *DNSReport) finish() {
	r.Ratios = nil
	for _, p := range [][2]string{{"dnsd-inline", "knot-xdp"}, {"dnsd-inline", "knot-udp"}, {"dnsd-conn", "dnsd-kernel"}, {"dnsd-inline", "dnsd-kernel"}, {"knot-xdp", "knot-udp"}} {
		if x := r.ratio(p[0], p[1]); x != nil {
			r.Ratios = append(r.Ratios, *x)
		}
	}
	r.Goals = nil
	atLeast := func(rr *ResponderResult) string {
		if rr.GeneratorLimited {
			return "at least " // it kept up with all the generator could send
		}
		return ""
	}

	inline, kx := r.responder("dnsd-inline"), r.responder("knot-xdp")
	if x := r.ratio("dnsd-inline", "knot-xdp"); x != nil && kx.CPU.Median > 0 && inline.CPU.Median > 0 {
		// CPU per query by both measures: the server CPU's user+system
		// time (the harness's), which on a shared machine also holds
		// other programs' time, spread over fewer queries the slower the
		// server; and the server process's own, which holds softirqs
		// that ran while it was on the CPU. On a quiet machine they
		// agree; when they do not, the goal is not met.
		v := x.ratio()
		more := func(a, b float64) string {
			if a <= b {
				return "no more"
			}
			return "more"
		}
		cpuOK := inline.CPU.Median <= kx.CPU.Median && inline.OwnCPU.Median <= kx.OwnCPU.Median
		r.Goals = append(r.Goals, Goal{dnsGoalInline, fmt.Sprintf("%s%.2fx the queries/s, median of the rounds' ratios (%s vs %s); CPU per query at %g%% load: the server CPU's %s vs %s (%s), the processes' own %s vs %s (%s)",
			atLeast(inline), v, loadgen.FormatSI(inline.ZeroLoss.Median), loadgen.FormatSI(kx.ZeroLoss.Median), 100*inline.CPULoad,
			statDur(inline.CPU), statDur(kx.CPU), more(inline.CPU.Median, kx.CPU.Median),
			statDur(inline.OwnCPU), statDur(kx.OwnCPU), more(inline.OwnCPU.Median, kx.OwnCPU.Median)), v >= 1 && cpuOK})
	} else {
		r.Goals = append(r.Goals, Goal{dnsGoalInline, "not measured", false})
	}

	if x := r.ratio("dnsd-conn", "dnsd-kernel"); x != nil {
		conn, kern := r.responder("dnsd-conn"), r.responder("dnsd-kernel")
		v := x.ratio()
		r.Goals = append(r.Goals, Goal{dnsGoalConn, fmt.Sprintf("%s%.2fx, median of the rounds' ratios (%s vs %s)",
			atLeast(conn), v, loadgen.FormatSI(conn.ZeroLoss.Median), loadgen.FormatSI(kern.ZeroLoss.Median)), v >= 1.5})
	} else {
		r.Goals = append(r.Goals, Goal{dnsGoalConn, "not measured", false})
	}

	// As in the echo benchmark: an allocation per query, or per batch of
	// queries, shows as at least one per thousand answers in the
	// unpaced trials (the steady state); fewer are one-offs, which the
	// figures still show.
	if inline != nil && inline.AllocUnpaced.Replies > 0 {
		a, all := inline.AllocUnpaced, inline.Alloc
		r.Goals = append(r.Goals, Goal{dnsGoalAlloc, fmt.Sprintf("%d allocations (%d B) over %d answers unpaced (%.2g per query); %d over %d answers in all trials",
			a.Mallocs, a.Bytes, a.Replies, a.MallocsPerReply, all.Mallocs, all.Replies), a.MallocsPerReply < 0.001})
	} else {
		r.Goals = append(r.Goals, Goal{dnsGoalAlloc, "not measured", false})
	}
}

// WriteJSON writes the report as indented JSON.
func (r *DNSReport) WriteJSON(w io.Writer) error { return writeJSON(w, r) }

func dnsperfLatency(d *DnsperfResult) string {
	if d.Error != "" {
		return "error: " + d.Error
	}
	return fmt.Sprintf("%s: %s done, lost %d of %d, latency mean %s (max %s, sd %s), CPU %s",
		loadgen.FormatSI(d.Rate), loadgen.FormatSI(d.QPS), d.Lost, d.Sent,
		loadgen.FormatDuration(time.Duration(d.Mean)), loadgen.FormatDuration(time.Duration(d.Max)), loadgen.FormatDuration(time.Duration(d.StdDev)),
		loadgen.FormatDuration(time.Duration(d.CPU)))
}

// WriteTable writes the report as text tables for a terminal.
func (r *DNSReport) WriteTable(w io.Writer) error {
	var b strings.Builder
	c := r.Config
	q := r.Queries
	fmt.Fprintf(&b, "pktengine bench --dns, %s; %s, %d x %s, %s; load %s -> %s\n",
		r.Date.Format("2006-01-02 15:04 MST"), r.Machine.Kernel, r.Machine.CPUs, r.Machine.CPU, r.Machine.Go, r.Machine.LoadBefore, r.Machine.LoadAfter)
	fmt.Fprintf(&b, "zone %s: %d hosts (A, AAAA); %d queries in turn, %d of them NXDOMAIN; %.0f-byte frames on average; %d source ports; %s\n",
		q.Zone, q.Names, q.Queries, q.NXDomain, q.Frame, q.Sources, q.Versions)
	fmt.Fprintf(&b, "generator on CPU%d, server on CPU%d; %d rounds of %v trials (+%v drain); a trial passes with at most %g%% unanswered; took %v\n",
		c.GenCPU, c.ResponderCPU, c.Trials, c.TrialDuration, c.Drain, 100*c.LossTolerance, r.Elapsed.Round(time.Second))
	if r.Command != "" {
		fmt.Fprintf(&b, "reproduce: %s\n", r.Command)
	}

	fmt.Fprintf(&b, "\nhighest queries/s with at most %g%% lost (RFC 2544 search): median [min-max] of %d rounds; unpaced: offered and answered;\n"+
		"CPU per answer at %g%% of that rate: the server CPU's user+system and softirq time (/proc/stat), and the server process's own user+system (/proc/PID/stat);\n"+
		"heap allocations per answer (dnsd's runtime.MemStats), unpaced and over all trials; threads of the server, all pinned to CPU%d;\n"+
		"others on CPU: the share of the trials' time that CPU%d spent on other programs (user+system), median [min-max]: 0 on a quiet machine\n",
		100*c.LossTolerance, c.Trials, 100*maxLoad(c.LatencyLoads), c.ResponderCPU, c.ResponderCPU)
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "server\tqueries/s\tunpaced offered\tanswered\tCPU/query\tsoftirq/query\town/query\tallocs/query unpaced\tall trials\tthreads\tothers on CPU\t")
	for _, rr := range r.Responders {
		if rr.Error != "" {
			fmt.Fprintf(tw, "%s\terror: %s\t\t\t\t\t\t\t\t\t\t\n", rr.Name, firstLine(rr.Error))
			continue
		}
		zl := rr.zeroLossCell()
		if rr.Wrong > 0 {
			zl += fmt.Sprintf(" (%d wrong answers)", rr.Wrong)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t\n", rr.Name, zl, statRate(rr.MaxSent), statRate(rr.MaxDelivered),
			statDur(rr.CPU), statDur(rr.Softirq), statDur(rr.OwnCPU), mallocString(rr.AllocUnpaced), mallocString(rr.Alloc), rr.Threads, statPercent(rr.Others))
	}
	tw.Flush()

	if len(c.LatencyLoads) > 0 {
		fmt.Fprintf(&b, "\nround-trip latency at a fraction of each server's own rate: p50 / p99 / p99.9 (median of %d trials; kernel RX timestamps)\n", c.Trials)
		writeLatencyTable(&b, "server", c.LatencyLoads, r.measured(), loadgen.FormatSI)
	}

	fmt.Fprintf(&b, "\nwhere queries were lost, over all trials (most in the unpaced ones and those above the server's rate)\n")
	for _, rr := range r.Responders {
		if rr.Error == "" {
			fmt.Fprintf(&b, "  %-12s %s\n", rr.Name, rr.Drops)
		}
	}

	var dp bool
	for _, rr := range r.Responders {
		dp = dp || len(rr.Dnsperf) > 0
	}
	if dp {
		fmt.Fprintf(&b, "\ndnsperf (one core, CPU%d) at %g%% of each server's rate, one run per round: asked, done, lost of sent, latency, CPU per query\n", c.GenCPU, 100*minLoad(c.LatencyLoads))
		for _, rr := range r.Responders {
			for i := range rr.Dnsperf {
				fmt.Fprintf(&b, "  %-12s %s\n", rr.Name, dnsperfLatency(&rr.Dnsperf[i]))
			}
		}
	}

	if len(r.Ratios) > 0 {
		fmt.Fprintf(&b, "\nratios of the rates: of the medians, and median [min-max] of the rounds' ratios\n")
		writeRatios(&b, r.Ratios, 2)
	}

	writeGoals(&b, r.Goals)
	_, err := io.WriteString(w, b.String())
	return err
}

func statPercent(s Stat) string {
	if len(s.Values) == 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f%% [%.0f-%.0f%%]", 100*s.Median, 100*s.Min, 100*s.Max)
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

// minLoad returns the lowest of the latency loads, 0 if none.
func minLoad(loads []float64) float64 {
	m := math.Inf(1)
	for _, f := range loads {
		m = math.Min(m, f)
	}
	if math.IsInf(m, 1) {
		return 0
	}
	return m
}

func mallocString(a Alloc) string {
	if a.Replies == 0 {
		return "-"
	}
	if a.Mallocs == 0 {
		return "0"
	}
	return fmt.Sprintf("%.3g", a.MallocsPerReply)
}

// Colours of the DNS servers in the plot.
func init() {
	for name, c := range map[string]string{
		"knot-udp":    "#7f7f7f",
		"knot-xdp":    "#000000",
		"dnsd-kernel": "#d62728",
		"dnsd-conn":   "#9467bd",
		"dnsd-inline": "#2ca02c",
	} {
		palette[name] = c
	}
}

// WriteSVG draws the report as the echo benchmark's plot does: queries
// answered against queries offered, every trial, and latency at each
// load.
func (r *DNSReport) WriteSVG(w io.Writer) error {
	c := r.Config
	panels := &Report{Config: Config{LatencyLoads: c.LatencyLoads}}
	return panels.plot(w, fmt.Sprintf("pktengine bench --dns: authoritative DNS over veth (one frame per query), %s", r.Date.Format("2006-01-02")),
		fmt.Sprintf("%s, %d x %s; generator CPU%d, server CPU%d; %d rounds of %v trials; %d-host zone, %.0f-byte queries",
			r.Machine.Kernel, r.Machine.CPUs, r.Machine.CPU, c.GenCPU, c.ResponderCPU, c.Trials, c.TrialDuration, r.Queries.Names, r.Queries.Frame),
		r.measured(), func(zeroLoss float64) string { return loadgen.FormatSI(zeroLoss) + " q/s" })
}

// measured returns the servers that were measured (no Error), for the
// latency table, the plot and responder.
func (r *DNSReport) measured() []*ResponderResult {
	var rs []*ResponderResult
	for i := range r.Responders {
		if r.Responders[i].Error == "" {
			rs = append(rs, &r.Responders[i].ResponderResult)
		}
	}
	return rs
}

// Save writes the report into dir as NAME.json and NAME.svg, creating dir
// if need be, and returns the two paths. A name of "" means
// "bench-dns-<date>".
func (r *DNSReport) Save(dir, name string) (jsonPath, svgPath string, err error) {
	if name == "" {
		name = "bench-dns-" + r.Date.UTC().Format("2006-01-02T1504")
	}
	return save(dir, name, r.WriteJSON, r.WriteSVG)
}
