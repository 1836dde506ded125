package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pktengine/pktengine/bpf"
	"github.com/pktengine/pktengine/internal/lab"
	"github.com/pktengine/pktengine/loadgen"
	"github.com/pktengine/pktengine/ring"
)

// ChildCommand is the hidden subcommand under which the harness runs its
// children: `pktengine __bench-child SPEC`. The binary that links this
// package must hand the arguments after it to ChildMain, before parsing
// any flags of its own:
//
//	if len(os.Args) > 1 && os.Args[1] == bench.ChildCommand {
//		os.Exit(bench.ChildMain(os.Args[2:]))
//	}
//
// Each child runs in one namespace of the lab, pinned to one CPU by
// taskset, so that the generator and the responder never share a core
// and a responder's garbage collector or scheduler runs only on its own.
const ChildCommand = "__bench-child"

// Child roles.
const (
	roleResponder = "responder"
	roleGen       = "gen"
	roleSink      = "sink"
)

// childSpec tells a child what to be. It travels as the one argument.
type childSpec struct {
	Role       string          `json:"role"`
	Iface      string          `json:"iface"`
	Responder  string          `json:"responder,omitempty"`
	Addr       netip.AddrPort  `json:"addr,omitempty"` // responder: listen address; sink: its port counts
	Gen        *loadgen.Config `json:"gen,omitempty"`
	DNSGen     *dnsGenSpec     `json:"dns_gen,omitempty"`
	GOMAXPROCS int             `json:"gomaxprocs,omitempty"`
}

// childReply is one line a child writes on its standard output.
type childReply struct {
	Ready   bool             `json:"ready,omitempty"`
	PID     int              `json:"pid,omitempty"`
	Error   string           `json:"error,omitempty"`
	Summary *loadgen.Summary `json:"summary,omitempty"`
	Stats   *ResponderStats  `json:"stats,omitempty"`
	Count   *sinkCount       `json:"count,omitempty"`
	// RunAlloc is what a generator run allocated on the heap.
	RunAlloc *Alloc `json:"run_alloc,omitempty"`
}

// ResponderStats is a responder process's view of itself.
type ResponderStats struct {
	Replies uint64 `json:"replies"`
	Drops   uint64 `json:"drops"`
	// TotalAlloc and Mallocs are runtime.MemStats counters with the
	// control channel's own allocations taken out, so their deltas over
	// a run are the data path's.
	TotalAlloc uint64 `json:"total_alloc"`
	Mallocs    uint64 `json:"mallocs"`
	NumGC      uint32 `json:"num_gc"`
	// UDP counters of the responder's namespace (/proc/net/snmp and
	// snmp6, IPv4 and IPv6 added): datagrams the kernel dropped for a
	// full socket buffer, and its receive errors.
	RcvbufErrors uint64 `json:"rcvbuf_errors"`
	InErrors     uint64 `json:"in_errors"`
}

type sinkCount struct {
	Frames uint64 `json:"frames"`
	Drops  uint64 `json:"drops"`
	Time   int64  `json:"time_ns"`
}

// ChildMain runs one of the harness's child processes; args are the
// command-line arguments after ChildCommand. It returns the exit status.
// The child reads requests from standard input, one per line, and answers
// each with a line of JSON on standard output; it exits when its input
// ends.
func ChildMain(args []string) int {
	if len(args) != 1 {
		fmt.Fprintf(os.Stderr, "usage: %s SPEC (run by pktengine bench, not by hand)\n", ChildCommand)
		return 2
	}
	var spec childSpec
	if err := json.Unmarshal([]byte(args[0]), &spec); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", ChildCommand, err)
		return 2
	}
	if err := runChild(context.Background(), &spec, os.Stdin, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "%s %s: %v\n", ChildCommand, spec.Role, err)
		return 1
	}
	return 0
}

// childIO reads requests and writes replies.
type childIO struct {
	in  *bufio.Scanner
	out *bufio.Writer
}

func (c *childIO) reply(r *childReply) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	c.out.Write(append(b, '\n'))
	return c.out.Flush()
}

// fail reports err to the harness and returns it.
func (c *childIO) fail(err error) error {
	c.reply(&childReply{Error: err.Error()})
	return err
}

func runChild(ctx context.Context, spec *childSpec, in io.Reader, out io.Writer) error {
	if spec.GOMAXPROCS > 0 {
		runtime.GOMAXPROCS(spec.GOMAXPROCS)
	}
	c := &childIO{in: bufio.NewScanner(in), out: bufio.NewWriter(out)}
	c.in.Buffer(make([]byte, 64<<10), 1<<20)
	switch spec.Role {
	case roleResponder:
		return childResponder(ctx, spec, c)
	case roleGen:
		return childGen(ctx, spec, c)
	case roleSink:
		return childSink(ctx, spec, c)
	case roleDNSGen:
		return childDNSGen(ctx, spec, c)
	}
	return c.fail(fmt.Errorf("unknown role %q", spec.Role))
}

// memProfileEnv names a file prefix: if set, a responder child records
// every allocation and writes its allocation profile to PREFIX.NAME when
// it ends, to find what a responder allocates (go tool pprof
// -sample_index=alloc_space).
const memProfileEnv = "PKTENGINE_BENCH_MEMPROFILE"

func childResponder(ctx context.Context, spec *childSpec, c *childIO) error {
	if prefix := os.Getenv(memProfileEnv); prefix != "" {
		runtime.MemProfileRate = 1
		defer func() {
			if f, err := os.Create(prefix + "." + spec.Responder); err == nil {
				pprof.Lookup("allocs").WriteTo(f, 0)
				f.Close()
			}
		}()
	}
	r, err := openResponder(spec.Responder, spec.Iface, spec.Addr)
	if err != nil {
		return c.fail(err)
	}
	ctx, cancel := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- r.serve(ctx) }()
	if err := c.reply(&childReply{Ready: true, PID: os.Getpid()}); err != nil {
		cancel()
		return errors.Join(err, r.close())
	}
	// The control channel allocates (JSON); what it allocates between
	// two readings of the counters is subtracted, so that the deltas the
	// harness computes are the data path's. The data path is idle while
	// the harness asks (between trials), so nothing else is in the way.
	var ctlBytes, ctlMallocs uint64
	var ms runtime.MemStats
	for c.in.Scan() {
		if !bytes.Equal(c.in.Bytes(), []byte("stats")) {
			c.fail(fmt.Errorf("unknown request %q", c.in.Text()))
			continue
		}
		runtime.ReadMemStats(&ms)
		startBytes, startMallocs := ms.TotalAlloc, ms.Mallocs
		st := &ResponderStats{TotalAlloc: startBytes - ctlBytes, Mallocs: startMallocs - ctlMallocs, NumGC: ms.NumGC}
		st.Replies, st.Drops = r.counters()
		st.RcvbufErrors, st.InErrors = udpSnmp()
		err := c.reply(&childReply{Stats: st})
		runtime.ReadMemStats(&ms)
		ctlBytes += ms.TotalAlloc - startBytes
		ctlMallocs += ms.Mallocs - startMallocs
		if err != nil {
			break
		}
	}
	cancel()
	return errors.Join(<-served, r.close())
}

// udpSnmp reads the UDP receive-buffer and error counters of the calling
// process's network namespace, IPv4 and IPv6 together.
func udpSnmp() (rcvbuf, inErrors uint64) { return udpSnmpIn("/proc/net") }

// udpSnmpIn reads the same from dir: /proc/net, or /proc/PID/net for the
// namespace of process PID. A file it cannot read (snmp6 without IPv6)
// counts nothing.
func udpSnmpIn(dir string) (rcvbuf, inErrors uint64) {
	c, _ := lab.ReadNetCounters(dir, "snmp", "snmp6")
	return c["Udp:RcvbufErrors"] + c["Udp6RcvbufErrors"], c["Udp:InErrors"] + c["Udp6InErrors"]
}

func childGen(ctx context.Context, spec *childSpec, c *childIO) error {
	if spec.Gen == nil {
		return c.fail(errors.New("no generator config"))
	}
	ifi, err := net.InterfaceByName(spec.Iface)
	if err != nil {
		return c.fail(err)
	}
	g, err := loadgen.New(ifi, spec.Gen)
	if err != nil {
		return c.fail(err)
	}
	defer g.Close()
	if err := c.reply(&childReply{Ready: true, PID: os.Getpid()}); err != nil {
		return err
	}
	// Requests are read on their own goroutine so that "stop" can end a
	// run that has no count or duration.
	lines := make(chan string)
	go func() {
		defer close(lines)
		for c.in.Scan() {
			lines <- c.in.Text()
		}
	}()
	for line := range lines {
		req, ok := strings.CutPrefix(line, "run ")
		if !ok {
			c.fail(fmt.Errorf("unknown request %q", line))
			continue
		}
		var load loadgen.Load
		if err := json.Unmarshal([]byte(req), &load); err != nil {
			c.fail(err)
			continue
		}
		runCtx, stop := context.WithCancel(ctx)
		type result struct {
			s   *loadgen.Summary
			err error
		}
		done := make(chan result, 1)
		var ms0, ms1 runtime.MemStats
		runtime.ReadMemStats(&ms0)
		go func() {
			s, err := g.Run(runCtx, load, nil)
			done <- result{s, err}
		}()
		var res result
		in := lines
	wait:
		for {
			select {
			case res = <-done:
				break wait
			case l, ok := <-in:
				switch {
				case !ok: // the harness is gone: stop and leave
					stop()
					<-done
					return g.Close()
				case l == "stop":
					stop()
				default:
					fmt.Fprintf(os.Stderr, "request %q during a run ignored\n", l)
				}
			}
		}
		stop()
		runtime.ReadMemStats(&ms1)
		r := &childReply{Summary: res.s, RunAlloc: &Alloc{Bytes: ms1.TotalAlloc - ms0.TotalAlloc, Mallocs: ms1.Mallocs - ms0.Mallocs}}
		if res.s != nil {
			r.RunAlloc.Replies = res.s.Sent // frames, for the per-frame figures
		}
		if res.err != nil {
			r.Error = res.err.Error()
		}
		if err := c.reply(r); err != nil {
			return err
		}
	}
	return g.Close()
}

// childSink counts the UDP frames to one port that arrive on the
// interface, in a TPACKET_V3 ring: the receiving end of the generator
// comparison.
func childSink(ctx context.Context, spec *childSpec, c *childIO) error {
	ifi, err := net.InterfaceByName(spec.Iface)
	if err != nil {
		return c.fail(err)
	}
	port := spec.Addr.Port()
	prog, err := bpf.ReplyFilter(port, port, 128) // the sink only counts frames
	if err != nil {
		return c.fail(err)
	}
	rx, err := ring.NewRX(ifi, &ring.RXConfig{Version: ring.V3, Filter: prog, IgnoreOutgoing: true, RetireTimeout: time.Millisecond})
	if err != nil {
		return c.fail(err)
	}
	var frames atomic.Uint64
	done := make(chan struct{})
	go func() {
		defer close(done)
		var b ring.Batch
		for rx.ReadInto(ctx, &b) == nil {
			frames.Add(uint64(b.Len()))
		}
	}()
	defer func() { rx.Close(); <-done }()
	if err := c.reply(&childReply{Ready: true, PID: os.Getpid()}); err != nil {
		return err
	}
	for c.in.Scan() {
		if !bytes.Equal(c.in.Bytes(), []byte("count")) {
			c.fail(fmt.Errorf("unknown request %q", c.in.Text()))
			continue
		}
		st, _ := rx.Stats()
		n := &sinkCount{Frames: frames.Load(), Drops: st.Drops, Time: time.Now().UnixNano()}
		if err := c.reply(&childReply{Count: n}); err != nil {
			return err
		}
	}
	return nil
}

// prefixWriter writes each line to w with a prefix.
type prefixWriter struct {
	mu     sync.Mutex
	w      io.Writer
	prefix string
	buf    []byte
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.buf = append(p.buf, b...)
	for {
		i := bytes.IndexByte(p.buf, '\n')
		if i < 0 {
			return len(b), nil
		}
		fmt.Fprintf(p.w, "%s%s\n", p.prefix, p.buf[:i])
		p.buf = p.buf[i+1:]
	}
}
