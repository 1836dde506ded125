//go:build linux

package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pktengine/pktengine/bpf"
	"github.com/pktengine/pktengine/loadgen"
	"github.com/pktengine/pktengine/ring"
)

// dnsGen is the DNS benchmark's load generator: the echo generator's
// method (package loadgen: a TX ring with qdisc bypass, one kick per
// batch, a token bucket per batch, replies read from a TPACKET_V3 ring
// with kernel receive timestamps) with the benchmark's queries as frames,
// and replies matched to queries by port and ID (dns_frames.go) instead
// of a payload signature. One sending goroutine, locked to a thread
// pinned to the generator's CPU; the receive side on another.
type dnsGen struct {
	t     *dnsTemplates
	tx    ring.Transmitter
	rx    *ring.RX
	arp   *arpResponder
	cpu   int
	drain time.Duration
	batch int

	// sendTimes holds the send time (Unix ns) of every query of the
	// window, by its low bits: written by the sender before the frame
	// is committed, read by the receiver once its reply is in.
	sendTimes []atomic.Int64
	// next counts the queries of the current run committed so far.
	next atomic.Uint64
	// lastFrame is when the receiver last read a frame (monotonic ns).
	lastFrame atomic.Int64

	mu      sync.Mutex // the receive side's counts
	tag     uint16
	seq     *loadgen.SeqTracker
	hist    loadgen.Histogram
	stale   uint64 // replies to an earlier run
	bad     uint64 // replies with the run's tag that do not answer their query
	foreign uint64 // frames that are not replies of ours

	runMu sync.Mutex
	done  chan struct{}
}

// dnsReorderWindow is how far behind the newest reply an older one may
// arrive and still be told from a duplicate: dns.Server answers each query
// on its own goroutine, so its replies come back well out of order.
const dnsReorderWindow = 1 << 20

// dnsBatch is the most queries written per kick of the TX ring, as the
// echo generator's default batch.
const dnsBatch = loadgen.DefaultBatch

func openDNSGen(ifname string, spec *dnsGenSpec) (dnsGenRunner, error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, err
	}
	qs, err := readQueries(spec.Queries)
	if err != nil {
		return nil, err
	}
	t, err := newDNSTemplates(qs, spec.SrcMAC, spec.DstMAC, spec.Src, spec.Dst)
	if err != nil {
		return nil, err
	}
	slot := 128
	for slot < t.maxLen()+32 {
		slot *= 2
	}
	tx, err := ring.NewTransmitter(ifi, &ring.TXConfig{Method: ring.TXRing, QdiscBypass: true, FrameSize: slot})
	if err != nil {
		return nil, err
	}
	lo, hi := dnsPortRange()
	prog, err := bpf.ReplyFilter(lo, hi, dnsSnapLen)
	if err != nil {
		tx.Close()
		return nil, err
	}
	rx, err := ring.NewRX(ifi, &ring.RXConfig{Version: ring.V3, RetireTimeout: time.Millisecond, BlockCount: 64, Filter: prog, IgnoreOutgoing: true})
	if err != nil {
		tx.Close()
		return nil, err
	}
	arp, err := startARPResponder(ifi, spec.Src, spec.SrcMAC)
	if err != nil {
		tx.Close()
		rx.Close()
		return nil, err
	}
	g := &dnsGen{
		t: t, tx: tx, rx: rx, arp: arp, cpu: spec.CPU, drain: spec.Drain, batch: dnsBatch,
		sendTimes: make([]atomic.Int64, dnsSeqWindow),
		seq:       loadgen.NewSeqTracker(dnsReorderWindow),
		done:      make(chan struct{}),
	}
	go g.receive()
	return g, nil
}

// Close closes the rings.
func (g *dnsGen) Close() error {
	if g.tx == nil {
		return nil
	}
	err := errors.Join(g.tx.Close(), g.rx.Close(), g.arp.Close())
	<-g.done
	g.tx = nil
	return err
}

// receive reads replies until the ring closes.
func (g *dnsGen) receive() {
	defer close(g.done)
	var b ring.Batch
	for g.rx.ReadInto(context.Background(), &b) == nil {
		g.mu.Lock()
		for i := range b.Len() {
			data, meta := b.Frame(i)
			g.handle(data, meta.Timestamp)
		}
		g.mu.Unlock()
		g.lastFrame.Store(monoNow())
		b.Release()
	}
}

// handle matches one reply (g.mu held).
func (g *dnsGen) handle(data []byte, rxTime int64) {
	port, msg, ok := dnsReplyParts(data)
	if !ok {
		g.foreign++
		return
	}
	low, ok := dnsLowSeq(g.tag, port, uint16(msg[0])<<8|uint16(msg[1]))
	if !ok {
		g.stale++
		return
	}
	seq, ok := dnsFullSeq(low, g.next.Load())
	if !ok || !g.t.check(msg, int(seq%uint64(len(g.t.frames)))) {
		g.bad++
		return
	}
	if g.seq.Add(seq) == loadgen.SeqDuplicate {
		return
	}
	g.hist.Record(rxTime - g.sendTimes[low].Load())
}

var monoBase = time.Now()

func monoNow() int64 { return int64(time.Since(monoBase)) }

// settle waits until no reply has arrived for quiet, at most max: a
// responder still answering the last run's backlog would take CPU from
// the next.
func (g *dnsGen) settle(quiet, most time.Duration) {
	for start := time.Now(); time.Since(start) < most; time.Sleep(time.Millisecond) {
		if time.Duration(monoNow()-g.lastFrame.Load()) >= quiet {
			return
		}
	}
}

// Settle waits until the server has been quiet for 10 ms, at most 5 s.
func (g *dnsGen) Settle() { g.settle(10*time.Millisecond, 5*time.Second) }

// Run sends load and returns what came back.
func (g *dnsGen) Run(ctx context.Context, load loadgen.Load) (*loadgen.Summary, error) {
	g.runMu.Lock()
	defer g.runMu.Unlock()
	if g.tx == nil {
		return nil, ring.ErrClosed
	}
	if load.Rate < 0 || load.Duration < 0 {
		return nil, errors.New("bench: negative rate or duration")
	}
	g.Settle()
	rxBefore, _ := g.rx.Stats()
	txBefore := g.tx.Stats()
	g.mu.Lock()
	g.tag++
	g.next.Store(0)
	g.seq.Reset()
	g.hist.Reset()
	g.stale, g.bad, g.foreign = 0, 0, 0
	tag := g.tag
	g.mu.Unlock()

	start := time.Now()
	errc := make(chan error, 1)
	go func() { errc <- g.send(ctx, load, tag, start) }()
	err := <-errc
	end := time.Now()
	sent := g.next.Load()

	drain := g.drain
	if load.Drain > 0 {
		drain = load.Drain
	}
	for deadline := time.Now().Add(drain); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		g.mu.Lock()
		n := g.seq.Stats().Received + g.bad
		g.mu.Unlock()
		if n >= sent {
			break
		}
	}

	s := &loadgen.Summary{
		Start: start, Duration: end.Sub(start), Size: int(g.t.meanLen + 0.5),
		Flows: dnsPorts, Workers: 1, Offered: load.Rate, Sent: sent,
	}
	st := g.tx.Stats()
	s.TX = ring.TXStats{
		Committed: st.Committed - txBefore.Committed, Sent: st.Sent - txBefore.Sent,
		WrongFormat: st.WrongFormat - txBefore.WrongFormat, Kicks: st.Kicks - txBefore.Kicks, Waits: st.Waits - txBefore.Waits,
	}
	if rxAfter, e := g.rx.Stats(); e == nil {
		s.RingDrops = rxAfter.Drops - rxBefore.Drops
	}
	g.mu.Lock()
	s.Seq = g.seq.Stats()
	s.Received = s.Seq.Received
	s.Stale, s.Foreign = g.stale, g.bad+g.foreign
	s.Latency = g.hist.Summary()
	g.mu.Unlock()
	if d := s.Duration.Seconds(); d > 0 {
		s.SentRate = float64(s.Sent) / d
		s.ReceivedRate = float64(s.Received) / d
	}
	s.SentBitRate = s.SentRate * float64(s.Size) * 8
	s.Lost = s.Seq.Lost(s.Sent)
	if s.Sent > 0 {
		s.LossRatio = float64(s.Lost) / float64(s.Sent)
	}
	return s, err
}

// send is the sending loop, on a thread of its own pinned to the
// generator's CPU with a timer slack of 1 µs, so that the pacer's
// nanosleep wakes on time. The thread stays locked: the runtime discards
// it when the goroutine ends rather than reuse a thread with a narrowed
// affinity.
func (g *dnsGen) send(ctx context.Context, load loadgen.Load, tag uint16, start time.Time) error {
	runtime.LockOSThread()
	var set unix.CPUSet
	set.Set(g.cpu)
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		return os.NewSyscallError("sched_setaffinity", err)
	}
	if err := unix.Prctl(unix.PR_SET_TIMERSLACK, 1000, 0, 0, 0); err != nil {
		return os.NewSyscallError("prctl PR_SET_TIMERSLACK", err)
	}
	batch := g.batch
	var pc *dnsPacer
	if load.Rate > 0 {
		// At most 50 µs of schedule per batch, as the echo generator:
		// smooth pacing at low rates, full batches at high ones.
		batch = min(g.batch, max(int(load.Rate*50e-6), 1))
		pc = newDNSPacer(load.Rate, max(time.Millisecond, 2*time.Duration(float64(batch)*1e9/load.Rate)))
	}
	deadline := start.Add(load.Duration)
	done := ctx.Done()
	var seq uint64
	for {
		select {
		case <-done:
			return g.tx.Flush()
		default:
		}
		n := batch
		if load.Count > 0 {
			if seq >= load.Count {
				return nil
			}
			n = int(min(uint64(n), load.Count-seq))
		}
		if pc != nil {
			pc.wait(n)
		}
		now := time.Now()
		if load.Duration > 0 && now.After(deadline) {
			return nil
		}
		ts := now.UnixNano()
		for range n {
			buf, err := g.tx.Next(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return g.tx.Flush()
				}
				return err
			}
			g.sendTimes[seq%dnsSeqWindow].Store(ts)
			if err := g.tx.Commit(g.t.write(buf, seq, tag)); err != nil {
				return err
			}
			seq++
		}
		// Published before the kick: a reply cannot come back before
		// its query leaves.
		g.next.Store(seq)
		if err := g.tx.Flush(); err != nil {
			return fmt.Errorf("bench: send: %w", err)
		}
	}
}
