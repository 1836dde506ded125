//go:build linux

package bench

import (
	"bufio"
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
	"sync"
	"syscall"
	"time"

	"github.com/pktengine/pktengine/frame"
	"github.com/pktengine/pktengine/internal/lab"
	"github.com/pktengine/pktengine/loadgen"
)

// The lab: the generator on host A (198.18.0.1, CPU GenCPU), responders on
// host B (198.18.0.2, CPU ResponderCPU).
//
// The generator sends from an address and a MAC that A does not have
// (genSrc4, genSrc6, genMAC), and B has a static neighbour entry for the
// address pointing at that MAC. The replies still reach the generator's
// ring, which sees every frame on the link, but A's kernel takes them for
// another host's (PACKET_OTHERHOST) and drops them on arrival: no route
// lookup, no socket lookup, no ICMP port unreachable. The generator's CPU
// then spends next to nothing on replies beyond reading them.
var (
	genSrc4 = netip.MustParseAddr("198.18.0.101")
	genSrc6 = netip.MustParseAddr("fd00::101")
	genMAC  = frame.MAC{0x02, 0, 0, 0, 0, 0xfd}
	// nobodyMAC is the destination of the generator comparison's frames:
	// B's kernel takes them for another host (PACKET_OTHERHOST) and
	// drops them at once, while the counting ring still sees them.
	nobodyMAC = frame.MAC{0x02, 0, 0, 0, 0, 0xfe}
)

const (
	echoPort    = 7
	discardPort = 9
)

// Run runs the benchmark cfg describes and returns its report. It builds
// a lab of two network namespaces joined by veth, runs every responder in
// turn as a child process pinned to cfg.ResponderCPU in one namespace and
// the generator as another pinned to cfg.GenCPU in the other, and removes
// the lab when it is done. Progress lines go to log (nil discards them).
//
// It needs root (CAP_NET_ADMIN, CAP_NET_RAW, CAP_SYS_ADMIN) and a binary
// that dispatches ChildCommand to ChildMain (cfg.Executable, by default
// the running one).
func Run(ctx context.Context, cfg *Config, log io.Writer) (*Report, error) {
	var c Config
	if cfg != nil {
		c = *cfg
	}
	c, err := c.withDefaults()
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = io.Discard
	}
	if err := lab.CheckPrivileges(); err != nil {
		return nil, err
	}
	self := c.Executable
	if self == "" {
		if self, err = os.Executable(); err != nil {
			return nil, err
		}
	}
	started := time.Now()
	rep := &Report{Date: started.UTC(), Machine: machine(), Config: c}
	l, err := lab.Create(nil)
	if err != nil {
		return nil, err
	}
	defer l.Close()
	h := &harness{cfg: c, self: self, log: log, a: l.A(), b: l.B()}
	if err := h.setup(ctx); err != nil {
		return nil, err
	}
	fmt.Fprintf(log, "lab %s: generator %s on CPU%d, responders %s on CPU%d; load %s\n",
		l.Prefix(), h.a.Name, c.GenCPU, h.b.Name, c.ResponderCPU, rep.Machine.LoadBefore)

	// The generator comparison runs without RPS: trafgen gives up when
	// its socket's send buffer fills (EAGAIN), which it does once the
	// peer's CPU, not the sending one, frees the frames.
	if !c.SkipGenerators {
		rep.Generator = h.compareGenerators(ctx)
	}
	if c.RPS {
		if err := h.steer(ctx, true); err != nil {
			return nil, err
		}
		if !c.SkipGenerators {
			h.lineRate(ctx, rep.Generator)
		}
	}
	if rep.Responders, err = h.measureAll(ctx); err != nil {
		return nil, err
	}
	rep.finish()
	rep.Machine.LoadAfter = loadavg()
	rep.Elapsed = time.Since(started)
	return rep, ctx.Err()
}

type harness struct {
	cfg  Config
	self string
	log  io.Writer
	a, b *lab.Host
}

// genSrc returns the generator's source address for the configured family.
func (h *harness) genSrc() netip.Addr {
	if h.cfg.IPv6 {
		return genSrc6
	}
	return genSrc4
}

// respAddr returns B's address for the configured family.
func (h *harness) respAddr() netip.Addr {
	if h.cfg.IPv6 {
		return h.b.IPv6.Addr()
	}
	return h.b.IPv4.Addr()
}

// setup points B's neighbour entries for the generator's source addresses
// at the generator's MAC.
func (h *harness) setup(ctx context.Context) error {
	for _, a := range []netip.Addr{genSrc4, genSrc6} {
		out, err := h.b.Command(ctx, "ip", "neigh", "replace", a.String(), "lladdr", genMAC.String(), "dev", h.b.Iface, "nud", "permanent").CombinedOutput()
		if err != nil {
			return fmt.Errorf("bench: ip neigh replace %v: %v: %s", a, err, bytes.TrimSpace(out))
		}
	}
	return nil
}

// steer turns RPS on (each namespace's veth queues what it receives to
// that side's CPU) or off (rps_cpus 0, veth's default).
//
// veth hands a frame to the peer's stack on the sending CPU, so by default
// the responder side's kernel receive (socket lookup and queueing, or the
// packet ring's copy) runs on the generator's CPU, and the generator
// side's receive of the replies on the responder's, as the lab notes
// describe. With RPS the kernel queues every received frame to the
// receiving side's CPU, as a NIC's interrupt would on two real hosts: the
// responder's CPU pays for everything the responder needs. It does so
// through an inter-processor interrupt per burst, which on a virtual
// machine costs much more than the work it moves (see docs/bench/gen.md),
// so it is an option, not the default.
func (h *harness) steer(ctx context.Context, on bool) error {
	for _, x := range []struct {
		host *lab.Host
		cpu  int
	}{{h.a, h.cfg.GenCPU}, {h.b, h.cfg.ResponderCPU}} {
		mask := "0"
		if on {
			mask = cpuMask(x.cpu)
		}
		// ip netns exec mounts the namespace's own /sys, so this is
		// the namespace's veth.
		file := "/sys/class/net/" + x.host.Iface + "/queues/rx-0/rps_cpus"
		out, err := x.host.Command(ctx, "sh", "-c", fmt.Sprintf("echo %s > %s", mask, file)).CombinedOutput()
		if err != nil {
			return fmt.Errorf("bench: set %s: %v: %s", file, err, bytes.TrimSpace(out))
		}
	}
	return nil
}

// cpuMask formats the CPU bitmap with one CPU set as sysfs wants it:
// hexadecimal words of 32 bits, separated by commas.
func cpuMask(cpu int) string {
	words := make([]string, cpu/32+1)
	for i := range words {
		words[i] = "00000000"
	}
	words[len(words)-1-cpu/32] = fmt.Sprintf("%08x", uint32(1)<<(cpu%32))
	return strings.Join(words, ",")
}

// child is one of the harness's child processes.
type child struct {
	name  string
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Scanner
	pid   int
	mu    sync.Mutex
}

// start runs a child in host's namespace, pinned to cpu, and waits until
// it is ready.
func (h *harness) start(ctx context.Context, name string, host *lab.Host, cpu int, spec childSpec) (*child, error) {
	js, err := json.Marshal(spec)
	if err != nil {
		return nil, err
	}
	cmd := host.Command(ctx, "taskset", "-c", strconv.Itoa(cpu), h.self, ChildCommand, string(js))
	cmd.Stderr = &prefixWriter{w: h.log, prefix: "  [" + name + "] "}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	c := &child{name: name, cmd: cmd}
	if c.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	c.out = bufio.NewScanner(stdout)
	c.out.Buffer(make([]byte, 64<<10), 16<<20)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("bench: start %s: %w", name, err)
	}
	r, err := c.read()
	if err != nil {
		c.close()
		return nil, err
	}
	if !r.Ready {
		c.close()
		return nil, fmt.Errorf("bench: %s did not start", name)
	}
	c.pid = r.PID
	return c, nil
}

func (c *child) read() (*childReply, error) {
	if !c.out.Scan() {
		err := c.out.Err()
		if err == nil {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("bench: %s: %w", c.name, err)
	}
	var r childReply
	if err := json.Unmarshal(c.out.Bytes(), &r); err != nil {
		return nil, fmt.Errorf("bench: %s: %w", c.name, err)
	}
	if r.Error != "" && r.Summary == nil {
		return nil, fmt.Errorf("bench: %s: %s", c.name, r.Error)
	}
	return &r, nil
}

// call sends one request line and reads the reply.
func (c *child) call(req string) (*childReply, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, err := io.WriteString(c.stdin, req+"\n"); err != nil {
		return nil, fmt.Errorf("bench: %s: %w", c.name, err)
	}
	return c.read()
}

func (c *child) stats() (*ResponderStats, error) {
	r, err := c.call("stats")
	if err != nil {
		return nil, err
	}
	if r.Stats == nil {
		return nil, fmt.Errorf("bench: %s sent no stats", c.name)
	}
	return r.Stats, nil
}

func (c *child) run(load loadgen.Load) (*loadgen.Summary, error) {
	js, _ := json.Marshal(load)
	r, err := c.call("run " + string(js))
	return c.summary(r, err)
}

// begin starts a generator run without waiting for it; end stops it (a
// run without count or duration lasts until then) and returns its
// summary.
func (c *child) begin(load loadgen.Load) error {
	js, _ := json.Marshal(load)
	c.mu.Lock()
	defer c.mu.Unlock()
	_, err := io.WriteString(c.stdin, "run "+string(js)+"\n")
	return err
}

func (c *child) end() (*loadgen.Summary, error) {
	r, err := c.call("stop")
	return c.summary(r, err)
}

func (c *child) summary(r *childReply, err error) (*loadgen.Summary, error) {
	if err != nil {
		return nil, err
	}
	if r.Summary == nil {
		return nil, fmt.Errorf("bench: %s sent no summary", c.name)
	}
	if r.Error != "" {
		return r.Summary, fmt.Errorf("bench: %s: %s", c.name, r.Error)
	}
	return r.Summary, nil
}

func (c *child) count() (*sinkCount, error) {
	r, err := c.call("count")
	if err != nil {
		return nil, err
	}
	if r.Count == nil {
		return nil, fmt.Errorf("bench: %s sent no count", c.name)
	}
	return r.Count, nil
}

// close ends the child: its input closes, which it takes as the end, and
// if it has not exited after five seconds it is killed.
func (c *child) close() error {
	c.stdin.Close()
	done := make(chan error, 1)
	go func() { done <- c.cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(5 * time.Second):
		c.cmd.Process.Kill()
		return <-done
	}
}

// genConfig is the generator's configuration for the responder runs.
func (h *harness) genConfig(dst netip.AddrPort, dstMAC frame.MAC, sendOnly bool, flows int) *loadgen.Config {
	return &loadgen.Config{
		Spec: loadgen.Spec{
			SrcMAC: genMAC, DstMAC: dstMAC,
			Src: netip.AddrPortFrom(h.genSrc(), loadgen.DefaultSrcPort), Dst: dst,
			Flows: flows, Size: h.cfg.Size,
		},
		Drain:    h.cfg.Drain,
		SendOnly: sendOnly,
		// Locks the worker to a thread (taskset already keeps it on
		// the CPU) so that its timer slack can be set for the pacer.
		CPUs: []int{h.cfg.GenCPU},
	}
}

// genChildSpec runs the generator with two Ps on its one CPU: the sending
// worker and the receive side then are two threads the kernel schedules,
// and the receive side wakes as soon as a ring block is ready instead of
// waiting for the worker to yield.
func (h *harness) genChildSpec(cfg *loadgen.Config) childSpec {
	return childSpec{Role: roleGen, Iface: h.a.Iface, Gen: cfg, GOMAXPROCS: 2}
}

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
			rr.Searches = append(rr.Searches, Search{Rate: sr.Rate, GeneratorLimited: sr.GeneratorLimited, Points: sr.Points})
			rr.GeneratorLimited = rr.GeneratorLimited || sr.GeneratorLimited
			rr.AllocUnpaced.Replies += sr.Max.Replies
			rr.AllocUnpaced.Bytes += sr.Max.AllocBytes
			rr.AllocUnpaced.Mallocs += sr.Max.AllocMallocs
			fmt.Fprintf(h.log, "%s: zero-loss rate %s\n", rr.Name, loadgen.FormatRate(sr.Rate))
			return nil
		})
		if err != nil {
			return results, err
		}
	}
	for i := range results {
		rr := &results[i]
		var rates, maxSent, maxDelivered, maxCPU, maxOwn, maxSoft []float64
		for _, s := range rr.Searches {
			rates = append(rates, s.Rate)
			maxSent = append(maxSent, s.Points[0].Sent)
			maxDelivered = append(maxDelivered, s.Points[0].Delivered)
			if s.Points[0].Replies > 0 {
				maxCPU = append(maxCPU, s.Points[0].CPU)
				maxOwn = append(maxOwn, s.Points[0].OwnCPU)
				maxSoft = append(maxSoft, s.Points[0].Softirq)
			}
		}
		rr.ZeroLoss, rr.MaxSent, rr.MaxDelivered = newStat(rates), newStat(maxSent), newStat(maxDelivered)
		rr.MaxCPU, rr.MaxOwnCPU, rr.MaxSoftirq = newStat(maxCPU), newStat(maxOwn), newStat(maxSoft)
		for _, f := range h.cfg.LatencyLoads {
			if rate := f * rr.ZeroLoss.Median; rate > 0 {
				rr.Latency = append(rr.Latency, LatencyResult{Load: f, Rate: rate})
			}
		}
	}

	for round := range h.cfg.Trials {
		err := each(round, h.cfg.Trials, "latency", min(h.cfg.TrialDuration, 100*time.Millisecond), func(rr *ResponderResult, sess *session) error {
			for j := range rr.Latency {
				lr := &rr.Latency[j]
				p, err := h.trialRetry(rr.Name, sess.resp, g, lr.Rate)
				if err != nil {
					return err
				}
				p.Pass = sp.passes(&p)
				lr.Points = append(lr.Points, p)
			}
			return nil
		})
		if err != nil {
			return results, err
		}
	}
	for i := range results {
		rr := &results[i]
		for j := range rr.Latency {
			lr := &rr.Latency[j]
			var loss, p50, p90, p99, p999, pmax, cpu, own, soft []float64
			for _, p := range lr.Points {
				loss = append(loss, p.Loss)
				p50 = append(p50, float64(p.Latency.P50))
				p90 = append(p90, float64(p.Latency.P90))
				p99 = append(p99, float64(p.Latency.P99))
				p999 = append(p999, float64(p.Latency.P999))
				pmax = append(pmax, float64(p.Latency.Max))
				if p.Replies > 0 {
					cpu, own, soft = append(cpu, p.CPU), append(own, p.OwnCPU), append(soft, p.Softirq)
				}
			}
			lr.Loss, lr.P50, lr.P90, lr.P99, lr.P999, lr.Max = newStat(loss), newStat(p50), newStat(p90), newStat(p99), newStat(p999), newStat(pmax)
			if lr.Load == rr.CPULoad {
				rr.CPU, rr.OwnCPU, rr.Softirq = newStat(cpu), newStat(own), newStat(soft)
			}
		}
		rr.Alloc.compute()
		rr.AllocUnpaced.compute()
	}
	return results, nil
}

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
	cpu0, err1 := readCPUTicks(h.cfg.ResponderCPU)
	own0, err2 := readProcTicks(resp.pid)
	bl0, err3 := readBacklogDrops()
	load := loadgen.Load{Rate: rate, Duration: h.cfg.TrialDuration}
	if rate == 0 {
		load.Drain = max(h.cfg.Drain, unpacedDrain)
	}
	s, err := g.run(load)
	if err != nil {
		return Point{}, err
	}
	cpu1, err4 := readCPUTicks(h.cfg.ResponderCPU)
	own1, err5 := readProcTicks(resp.pid)
	bl1, err6 := readBacklogDrops()
	st1, err := resp.stats()
	if err != nil {
		return Point{}, err
	}
	if err := errors.Join(err1, err2, err3, err4, err5, err6); err != nil {
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
		BacklogDrops:   bl1 - bl0,
	}
	if p.Replies > 0 {
		p.CPU = float64(cpu1.Busy-cpu0.Busy) * tickNs / float64(p.Replies)
		p.OwnCPU = float64(own1-own0) * tickNs / float64(p.Replies)
		p.Softirq = float64(cpu1.Softirq-cpu0.Softirq) * tickNs / float64(p.Replies)
	}
	offered := "max"
	if rate > 0 {
		offered = loadgen.FormatRate(rate)
	}
	var where string
	for _, d := range []struct {
		n    uint64
		what string
	}{{p.RcvbufErrors, "socket buffer"}, {p.ResponderDrops, "responder"}, {p.BacklogDrops, "backlog"}, {p.RingDrops, "generator ring"}} {
		if d.n > 0 {
			where += fmt.Sprintf(" %s %d", d.what, d.n)
		}
	}
	if where != "" {
		where = "  drops:" + where
	}
	fmt.Fprintf(h.log, "  %-12s offered %-9s sent %-9s delivered %-9s loss %7.3f%%  p50 %-7s p99 %-7s cpu %s/reply softirq %s/reply%s\n",
		name, offered, loadgen.FormatRate(p.Sent), loadgen.FormatRate(p.Delivered), 100*p.Loss,
		loadgen.FormatDuration(p.Latency.P50), loadgen.FormatDuration(p.Latency.P99), loadgen.FormatDuration(time.Duration(p.CPU)), loadgen.FormatDuration(time.Duration(p.Softirq)), where)
	return p, nil
}

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

// trafgen is netsniff-ng's trafgen set up to send the generator's frame
// as a static packet: one process (--cpus 1) pinned with taskset to the
// generator CPU, qdisc bypass (its default), without touching IRQ
// affinity or the system's socket memory settings.
type trafgen struct {
	h          *harness
	path, conf string
	dir        string
}

func (h *harness) newTrafgen(cfg *loadgen.Config) (*trafgen, error) {
	bin := h.cfg.Trafgen
	if bin == "" {
		bin = "trafgen"
	}
	path, err := exec.LookPath(bin)
	if err != nil {
		return nil, err
	}
	tmpl, err := loadgen.NewTemplate(&cfg.Spec)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "pktengine-trafgen-")
	if err != nil {
		return nil, err
	}
	conf := filepath.Join(dir, "frame.cfg")
	if err := os.WriteFile(conf, trafgenConfig(tmpl.Bytes()), 0o644); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return &trafgen{h: h, path: path, conf: conf, dir: dir}, nil
}

func (t *trafgen) cleanup() { os.RemoveAll(t.dir) }

// trial runs trafgen once against the sink.
func (t *trafgen) trial(ctx context.Context, m *sinkMeter) (float64, error) {
	h := t.h
	var cmd *exec.Cmd
	var out bytes.Buffer
	rate, err := m.measure(func() error {
		cmd = h.a.Command(ctx, "taskset", "-c", strconv.Itoa(h.cfg.GenCPU), t.path,
			"--dev", h.a.Iface, "--conf", t.conf, "--cpus", "1", "--notouch-irq", "--no-sock-mem")
		cmd.Stdout, cmd.Stderr = &out, &out
		// trafgen forks its workers: signal the whole group.
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
		cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
		return cmd.Start()
	}, func() error {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGINT)
		err := cmd.Wait()
		var ee *exec.ExitError
		if errors.As(err, &ee) && !ee.Exited() {
			return nil // ended by our signal
		}
		if err != nil {
			return fmt.Errorf("%v: %s", err, strings.TrimSpace(out.String()))
		}
		return nil
	})
	if err == nil && rate == 0 {
		err = fmt.Errorf("no frames arrived: %s", strings.TrimSpace(out.String()))
	}
	return rate, err
}

// trafgenConfig writes frame as a trafgen packet: { 0x02, 0x00, ... }.
func trafgenConfig(frame []byte) []byte {
	var b bytes.Buffer
	b.WriteString("/* pktengine bench: the generator's frame, signature zero */\n{\n")
	for i, x := range frame {
		if i%16 == 0 {
			b.WriteString("  ")
		}
		fmt.Fprintf(&b, "0x%02x", x)
		if i < len(frame)-1 {
			b.WriteByte(',')
		}
		if i%16 == 15 || i == len(frame)-1 {
			b.WriteByte('\n')
		} else {
			b.WriteByte(' ')
		}
	}
	b.WriteString("}\n")
	return b.Bytes()
}
