//go:build linux

package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/pktengine/pktengine/frame"
	"github.com/pktengine/pktengine/internal/lab"
	"github.com/pktengine/pktengine/loadgen"
)

// RunDNS runs the DNS benchmark cfg describes and returns its report: in a
// lab of two namespaces joined by veth, the DNS generator (pinned to
// cfg.GenCPU) loads each DNS server in turn (pinned, every thread, to
// cfg.ResponderCPU) with the benchmark zone's queries, and finds its
// highest rate with at most cfg.LossTolerance unanswered by the RFC 2544
// search, its latency at fractions of that rate, the server CPU's time
// per answer and, for dnsd, the heap allocations per answer. Rounds take
// turns as in Run. Progress lines go to log (nil discards them).
//
// It needs root, the DNS generator child in the running binary (or
// cfg.Executable), dnsd, and Knot DNS and dnsperf for the responders
// and checks that use them: a responder whose program is missing is
// reported with an error.
func RunDNS(ctx context.Context, cfg *DNSConfig, log io.Writer) (*DNSReport, error) {
	c, log, err := setUp(cfg, log)
	if err != nil {
		return nil, err
	}
	self, err := childBinary(c.Executable)
	if err != nil {
		return nil, err
	}
	tools := findDNSTools(&c, self)
	started := time.Now()
	rep := &DNSReport{Date: started.UTC(), Machine: machine(), Config: c}

	dir, err := os.MkdirTemp("", "pktengine-bench-dns-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	x := &dnsHarness{cfg: c, tools: tools, dir: dir, log: log}
	if err := x.writeFiles(); err != nil {
		return nil, err
	}
	rep.Queries = DNSQueries{Zone: dnsOrigin, Names: c.Names, Queries: len(x.queries), Sources: dnsPorts, Versions: tools.versions()}
	for _, q := range x.queries {
		if q.Rcode == dnsNXDomain {
			rep.Queries.NXDomain++
		}
	}

	l, err := lab.Create(nil)
	if err != nil {
		return nil, err
	}
	defer l.Close()
	x.h = &harness{cfg: Config{GenCPU: c.GenCPU, ResponderCPU: c.ResponderCPU, TrialDuration: c.TrialDuration, Drain: c.Drain}, self: self, log: log, a: l.A(), b: l.B()}
	if err := x.h.setup(ctx); err != nil {
		return nil, err
	}
	x.addr = x.h.b.IPv4.Addr()
	var bmac frame.MAC
	copy(bmac[:], x.h.b.MAC)
	g, err := x.h.start(ctx, "dnsgen", x.h.a, c.GenCPU, childSpec{Role: roleDNSGen, Iface: x.h.a.Iface, GOMAXPROCS: 2, DNSGen: &dnsGenSpec{
		Queries: x.queryFile, SrcMAC: genMAC, DstMAC: bmac, Src: genSrc4, Dst: netip.AddrPortFrom(x.addr, 53), CPU: c.GenCPU, Drain: c.Drain,
	}})
	if err != nil {
		return nil, err
	}
	defer g.close()
	x.g = g
	if t, err := newDNSTemplates(x.queries, genMAC, bmac, genSrc4, netip.AddrPortFrom(x.addr, 53)); err == nil {
		rep.Queries.Frame = t.meanLen
	}
	fmt.Fprintf(log, "lab %s: DNS generator %s on CPU%d, servers %s (%s) on CPU%d; %d queries; load %s\n",
		l.Prefix(), x.h.a.Name, c.GenCPU, x.h.b.Name, x.addr, c.ResponderCPU, len(x.queries), rep.Machine.LoadBefore)

	rep.Responders, err = x.measure(ctx)
	rep.finish()
	rep.Machine.LoadAfter = loadavg()
	rep.Elapsed = time.Since(started)
	return rep, errors.Join(err, ctx.Err())
}

// dnsHarness is one DNS benchmark run.
type dnsHarness struct {
	cfg   DNSConfig
	tools dnsTools
	dir   string
	log   io.Writer
	h     *harness // the lab, child processes
	g     *child   // the DNS generator
	addr  netip.Addr

	queries                        []dnsQuery
	zoneFile, queryFile, dnsperfIn string
	sessions                       int
}

// writeFiles writes the zone, the queries for the generator and the same
// for dnsperf into the run's directory.
func (x *dnsHarness) writeFiles() error {
	x.queries = benchQueries(x.cfg.Names)
	x.zoneFile = filepath.Join(x.dir, "bench.example.zone")
	x.queryFile = filepath.Join(x.dir, "queries.json")
	x.dnsperfIn = filepath.Join(x.dir, "queries.txt")
	var zone, perf bytes.Buffer
	js, err := json.Marshal(x.queries)
	if err != nil {
		return err
	}
	return errors.Join(writeBenchZone(&zone, x.cfg.Names), writeDnsperfData(&perf, x.queries),
		os.WriteFile(x.zoneFile, zone.Bytes(), 0o644), os.WriteFile(x.queryFile, js, 0o644), os.WriteFile(x.dnsperfIn, perf.Bytes(), 0o644))
}

// versions returns the external programs' versions, for the report.
func (t *dnsTools) versions() string {
	var vs []string
	for _, p := range []struct {
		path string
		err  error
		arg  string
		name string
	}{{t.knotd, t.knotdErr, "-V", "Knot DNS"}, {t.dnsperf, t.dnsperfErr, "-h", "dnsperf"}} {
		if p.err != nil {
			continue
		}
		out, _ := exec.Command(p.path, p.arg).CombinedOutput()
		for line := range strings.Lines(string(out)) {
			if f := strings.Fields(line); len(f) > 1 && strings.EqualFold(f[len(f)-2], "version") {
				vs = append(vs, p.name+" "+f[len(f)-1])
				break
			}
		}
	}
	return strings.Join(vs, ", ")
}

// dnsSession is one server process with its allocation baseline.
type dnsSession struct {
	srv    *dnsServer
	before *dnsdCounters
	wrong  uint64 // replies that did not answer their query right
	drops  DNSDrops
	others []float64 // share of each trial's time the CPU spent on other programs
}

// open starts server name, checks that it answers the generator, warms it
// up and takes its allocation baseline.
func (x *dnsHarness) open(ctx context.Context, name string, warm time.Duration) (*dnsSession, error) {
	x.sessions++
	dir := filepath.Join(x.dir, fmt.Sprintf("%s-%d", name, x.sessions))
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, err
	}
	srv, err := startDNSServer(ctx, name, x.h.a, x.h.b, x.cfg.ResponderCPU, x.addr, x.zoneFile, dir, &x.tools)
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			srv.close()
		}
	}()
	s, err := x.g.run(loadgen.Load{Rate: 10000, Count: 100, Drain: 2 * time.Second})
	if err != nil {
		return nil, err
	}
	if s.Received == 0 {
		return nil, fmt.Errorf("no answers to 100 queries at 10000/s (%d stale, %d wrong)\n%s", s.Stale, s.Foreign, srv.logText())
	}
	// An unpaced burst that counts for nothing: buffers grow to their
	// working size here, not in the trials.
	if _, err := x.g.run(loadgen.Load{Duration: warm, Drain: unpacedDrain}); err != nil {
		return nil, err
	}
	before, err := srv.stats()
	if err != nil {
		return nil, err
	}
	ok = true
	return &dnsSession{srv: srv, before: before}, nil
}

// close adds the session's allocations to a, checks that the server's
// threads are still pinned, and stops it.
func (s *dnsSession) close(a *Alloc) error {
	after, err := s.srv.stats()
	if err == nil && after != nil {
		a.Replies += after.Answered - s.before.Answered
		a.Bytes += after.TotalAlloc - s.before.TotalAlloc
		a.Mallocs += after.Mallocs - s.before.Mallocs
		a.GCs += after.NumGC - s.before.NumGC
	}
	if _, e := checkPinned(s.srv); e != nil {
		err = errors.Join(err, e)
	}
	return errors.Join(err, s.srv.close())
}

// trial offers rate (0: unpaced) for one trial and measures the server
// CPU around it.
func (x *dnsHarness) trial(s *dnsSession, rate float64) (Point, error) {
	srv := s.srv
	// The server finishes answering the last trial first, so that the
	// CPU is measured over this trial only.
	if _, err := x.g.call("settle"); err != nil {
		return Point{}, err
	}
	st0, err := srv.stats()
	if err != nil {
		return Point{}, err
	}
	rcv0, _ := udpSnmpIn(fmt.Sprintf("/proc/%d/net", srv.pid))
	_, vethTx0, errA0 := linkDrops(x.h.a)
	xdpRx0, _, errB0 := linkDrops(x.h.b)
	before, errBefore := sampleCPU(x.cfg.ResponderCPU, srv.pid)
	start := time.Now()
	load := loadgen.Load{Rate: rate, Duration: x.cfg.TrialDuration}
	if rate == 0 {
		load.Drain = max(x.cfg.Drain, unpacedDrain)
	}
	sum, err := x.g.run(load)
	if err != nil {
		return Point{}, err
	}
	s.wrong += sum.Foreign
	after, errAfter := sampleCPU(x.cfg.ResponderCPU, srv.pid)
	window := time.Since(start)
	rcv1, _ := udpSnmpIn(fmt.Sprintf("/proc/%d/net", srv.pid))
	_, vethTx1, errA1 := linkDrops(x.h.a)
	xdpRx1, _, errB1 := linkDrops(x.h.b)
	st1, err := srv.stats()
	if err != nil {
		return Point{}, err
	}
	if err := errors.Join(errBefore, errAfter, errA0, errA1, errB0, errB1); err != nil {
		return Point{}, err
	}
	vethQueue, xdpRing := vethTx1-vethTx0, xdpRx1-xdpRx0
	p := Point{
		Offered: rate, Sent: sum.SentRate, Delivered: sum.ReceivedRate, Loss: sum.LossRatio,
		Latency: sum.Latency, RingDrops: sum.RingDrops,
		Replies:      sum.Received,
		RcvbufErrors: rcv1 - rcv0,
	}
	if st0 != nil && st1 != nil {
		p.AllocBytes = st1.TotalAlloc - st0.TotalAlloc
		p.AllocMallocs = st1.Mallocs - st0.Mallocs
		p.ResponderDrops = (st1.Dropped - st0.Dropped) + (st1.SendErrors - st0.SendErrors) +
			(st1.RingDrops - st0.RingDrops) + (st1.QueueDrops - st0.QueueDrops) + (st1.TxDrops - st0.TxDrops)
	}
	p.setCPU(before, after)
	others := float64(after.cpu.Busy-before.cpu.Busy) - float64(after.own-before.own)
	s.others = append(s.others, max(0, others*tickNs/float64(window)))
	s.drops.SocketBuffer += p.RcvbufErrors
	s.drops.Server += p.ResponderDrops
	s.drops.Backlog += p.BacklogDrops
	s.drops.VethQueue += vethQueue
	s.drops.XDPRing += xdpRing
	offered := "max"
	if rate > 0 {
		offered = loadgen.FormatSI(rate)
	}
	where := dropsNote([]dropCount{{p.RcvbufErrors, "socket buffer"}, {p.ResponderDrops, "server"}, {p.BacklogDrops, "backlog"}, {vethQueue, "veth queue"}, {xdpRing, "AF_XDP ring"},
		{p.RingDrops, "generator ring"}, {sum.Foreign, "wrong answers"}})
	fmt.Fprintf(x.log, "  %-12s offered %-6s sent %-6s answered %-6s loss %7.3f%%  p50 %-7s p99 %-7s cpu %s/q softirq %s/q%s\n",
		srv.name, offered, loadgen.FormatSI(p.Sent), loadgen.FormatSI(p.Delivered), 100*p.Loss,
		loadgen.FormatDuration(p.Latency.P50), loadgen.FormatDuration(p.Latency.P99), loadgen.FormatDuration(time.Duration(p.CPU)), loadgen.FormatDuration(time.Duration(p.Softirq)), where)
	return p, nil
}

// trialRetry is trial, repeated once after a near miss of the generator
// (see trialRetry in trial_linux.go).
func (x *dnsHarness) trialRetry(s *dnsSession, rate float64) (Point, error) {
	for i := 0; ; i++ {
		p, err := x.trial(s, rate)
		if err != nil || rate == 0 || p.Sent >= minSentRatio*rate || p.Sent < nearMissRatio*rate || i == shortfallRetries {
			p.Retries = i
			return p, err
		}
		fmt.Fprintf(x.log, "  %-12s the generator sent %s of %s: again\n", s.srv.name, loadgen.FormatSI(p.Sent), loadgen.FormatSI(rate))
	}
}

// dnsperf runs dnsperf, pinned to the generator CPU, against the server
// at rate for one trial duration.
func (x *dnsHarness) dnsperf(ctx context.Context, s *dnsSession, rate float64) DnsperfResult {
	res := DnsperfResult{Rate: rate}
	before, errBefore := sampleCPU(x.cfg.ResponderCPU, s.srv.pid)
	// 16 clients (sockets), and up to 1000 queries outstanding: enough
	// that the rate, not the window, sets the pace up to 100k/s here
	// (dnsperf 2.10 with 10,000 outstanding fell to 9k/s); a query not
	// answered within a second is lost.
	cmd := x.h.a.Command(ctx, "taskset", "-c", strconv.Itoa(x.cfg.GenCPU), x.tools.dnsperf,
		"-s", x.addr.String(), "-d", x.dnsperfIn, "-l", strconv.FormatFloat(x.cfg.TrialDuration.Seconds(), 'f', -1, 64),
		"-Q", strconv.Itoa(int(rate)), "-c", "16", "-q", "1000", "-t", "1", "-O", "suppress=timeout")
	out, err := cmd.CombinedOutput()
	after, errAfter := sampleCPU(x.cfg.ResponderCPU, s.srv.pid)
	if err != nil {
		res.Error = fmt.Sprintf("%v: %s", err, lastLines(string(out), 3))
		return res
	}
	if res.DnsperfStats, err = parseDnsperf(string(out)); err != nil {
		res.Error = err.Error()
		return res
	}
	if errors.Join(errBefore, errAfter) == nil && res.Completed > 0 {
		var p Point
		p.Replies = res.Completed
		p.setCPU(before, after)
		res.CPU, res.Softirq = p.CPU, p.Softirq
	}
	fmt.Fprintf(x.log, "  %-12s dnsperf %s\n", s.srv.name, dnsperfLatency(&res))
	return res
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], " / ")
}

// measure runs the RFC 2544 searches, then the latency trials (and
// dnsperf), in rounds: each round starts every server in turn, measures
// it once and stops it, so that a change in the machine's load touches
// all of them alike.
func (x *dnsHarness) measure(ctx context.Context) ([]DNSResponderResult, error) {
	c := x.cfg
	infos := DNSResponders()
	results := make([]DNSResponderResult, len(c.Responders))
	for i, name := range c.Responders {
		for _, info := range infos {
			if info.Name == name {
				results[i].ResponderInfo = info
			}
		}
		results[i].CPULoad = maxLoad(c.LatencyLoads)
	}
	each := func(round int, what string, warm time.Duration, f func(*DNSResponderResult, *dnsSession) error) error {
		for i := range results {
			rr := &results[i]
			if rr.Error != "" {
				continue
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			fmt.Fprintf(x.log, "%s: %s, round %d of %d\n", rr.Name, what, round+1, c.Trials)
			sess, err := x.open(ctx, rr.Name, warm)
			if err == nil {
				rr.Threads = sess.srv.threads
				err = errors.Join(f(rr, sess), sess.close(&rr.Alloc))
				rr.Wrong += sess.wrong
				rr.Drops.add(sess.drops)
				rr.othersSeen = append(rr.othersSeen, sess.others...)
			}
			if err != nil {
				rr.Error = err.Error()
				fmt.Fprintf(x.log, "%s: %v\n", rr.Name, err)
			}
		}
		return nil
	}

	sp := searchParams{tolerance: c.LossTolerance, precision: c.Precision, maxSteps: c.MaxSteps}
	for round := range c.Trials {
		err := each(round, "search", min(c.TrialDuration, 300*time.Millisecond), func(rr *DNSResponderResult, s *dnsSession) error {
			sr, err := search(func(rate float64) (Point, error) { return x.trialRetry(s, rate) }, sp)
			if err != nil {
				return err
			}
			rr.addSearch(sr)
			fmt.Fprintf(x.log, "%s: %s queries/s with at most %g%% lost\n", rr.Name, loadgen.FormatSI(sr.Rate), 100*c.LossTolerance)
			return nil
		})
		if err != nil {
			return results, err
		}
	}
	for i := range results {
		results[i].summarizeSearches(c.LatencyLoads)
		if !x.cfg.SkipDnsperf && x.tools.dnsperfErr != nil {
			results[i].Dnsperf = []DnsperfResult{{Error: x.tools.dnsperfErr.Error()}}
		}
	}

	for round := range c.Trials {
		err := each(round, "latency", min(c.TrialDuration, 100*time.Millisecond), func(rr *DNSResponderResult, s *dnsSession) error {
			if err := rr.addLatencyTrials(sp, func(rate float64) (Point, error) { return x.trialRetry(s, rate) }); err != nil {
				return err
			}
			if rate := minLoad(c.LatencyLoads) * rr.ZeroLoss.Median; !c.SkipDnsperf && x.tools.dnsperfErr == nil && rate > 0 && rate <= c.DnsperfMax {
				rr.Dnsperf = append(rr.Dnsperf, x.dnsperf(ctx, s, rate))
			}
			return nil
		})
		if err != nil {
			return results, err
		}
	}
	for i := range results {
		results[i].summarizeLatency()
		results[i].Others = newStat(results[i].othersSeen)
	}
	return results, nil
}
