package loadgen

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pktengine/pktengine/ring"
	"github.com/pktengine/pktengine/xdp"
)

// DefaultSrcPort is the first source port when Config.Src has none: just
// above Linux's default ephemeral range (32768-60999), so that the flows
// do not collide with the kernel's own connections.
const DefaultSrcPort = 61000

// Defaults of Config.
const (
	DefaultBatch    = 256
	DefaultDrain    = 200 * time.Millisecond
	DefaultInterval = time.Second

	// DefaultQuantum is the longest stretch of the schedule one paced
	// batch covers: at rate r a batch holds at most r×DefaultQuantum
	// frames (and at least one), so that pacing stays smooth at low
	// rates while a high rate still goes out in full batches of one
	// kick each.
	DefaultQuantum = 50 * time.Microsecond
)

// Load is how much to send: at what rate and for how long.
type Load struct {
	// Rate is the offered rate in frames per second over all workers;
	// 0 sends as fast as the rings go.
	Rate float64 `json:"rate"`

	// Count stops the run after this many frames, Duration after this
	// long, whichever comes first. With neither the run lasts until its
	// context is done.
	Count    uint64        `json:"count,omitempty"`
	Duration time.Duration `json:"duration_ns,omitempty"`

	// Drain, if not zero, replaces Config.Drain for this run.
	Drain time.Duration `json:"drain_ns,omitempty"`
}

// Config configures a Generator. A nil *Config and zero fields mean the
// defaults given with each field; Dst is required.
type Config struct {
	// Spec describes the frames and flows. Zero SrcMAC means the
	// interface's address; a zero Src address means the interface's
	// first address of Dst's family, and port 0 DefaultSrcPort; a zero
	// DstMAC is looked up in the neighbour table (LookupNeighbor).
	Spec

	// Load is what Run sends.
	Load

	// Workers is the number of sending goroutines, each with its own TX
	// ring and sequence numbers; the rate and count are split evenly.
	// Zero means 1.
	Workers int

	// CPUs pins worker i to CPUs[i % len(CPUs)] for the run (a locked
	// OS thread with its affinity set). Empty leaves scheduling to Go.
	CPUs []int

	// Batch is the most frames written per kick of a TX ring; zero means
	// DefaultBatch (256: on this project's lab machine 256 frames per
	// kick sent 12-15 % more frames per second than 64, and 512 no more
	// than 256). Paced runs use smaller batches below 5 Mframes/s (see
	// Quantum). Keep it below the TX ring's slot count.
	Batch int

	// Quantum is the most schedule time one paced batch may cover: at
	// rate r a batch holds r×Quantum frames, at least one and at most
	// Batch. Zero means DefaultQuantum.
	Quantum time.Duration

	// Drain is how long the receive side keeps counting after the last
	// frame was sent; it stops earlier once every frame is accounted
	// for. Zero means DefaultDrain.
	Drain time.Duration

	// Interval is the time between progress reports; zero means one
	// second.
	Interval time.Duration

	// SendOnly disables the receive side: no RX ring, no replies counted.
	SendOnly bool

	// Backend is how the workers send: BackendTPACKET (the default),
	// BackendXDP or BackendLive. The receive side is a TPACKET ring on
	// every backend: replies are few next to what a generator sends,
	// and a packet ring has the kernel's receive timestamps.
	Backend Backend

	// XDP configures the AF_XDP sockets of BackendXDP (TXOnly is always
	// set). Nil means the xdp package's defaults: zero-copy where the
	// driver offers it, else copy mode; 4096 frames; rings of 2048.
	XDP *xdp.Config

	// TX configures the TPACKET transmitters. Nil means PACKET_TX_RINGs with
	// PACKET_QDISC_BYPASS and RawKick (a worker does nothing but send); Method TXDefault means ring.TXRing whatever
	// the ring package's default, and a zero FrameSize slots just big
	// enough for the template's frames (128 bytes for 64-byte frames).
	TX *ring.TXConfig

	// RX configures the receive ring. Nil means TPACKET_V3, 64 blocks
	// of 256 KiB, a 1 ms block retire timeout; Filter and IgnoreOutgoing
	// are always set by the generator. (The ring version does not change
	// the latency figures: they use the kernel's receive timestamps.)
	RX *ring.RXConfig

	// Window is the sequence-number window per stream (see SeqTracker);
	// zero means DefaultWindow.
	Window int
}

// Generator sends frames from a Template through TX rings and, unless
// SendOnly, counts the replies on an RX ring. Create it with New on a
// thread in the network namespace of the interface (its sockets stay
// there), then call Run any number of times, one at a time.
type Generator struct {
	cfg   Config
	tmpl  *Template
	txs   []sender          // TPACKET and XDP: one per worker
	lives []*xdp.LiveSender // live: one per worker
	ns    *netns            // live: the namespace the workers send in
	kicks []atomic.Uint64   // live: BPF_PROG_RUN calls per worker
	rx    *receiver
	runMu sync.Mutex
	tag   uint16
	open  bool
}

// New opens the rings on ifi and builds the template.
func New(ifi *net.Interface, cfg *Config) (_ *Generator, err error) {
	var c Config
	if cfg != nil {
		c = *cfg
	}
	if err := c.fill(ifi); err != nil {
		return nil, err
	}
	tmpl, err := NewTemplate(&c.Spec)
	if err != nil {
		return nil, err
	}
	c.Spec = tmpl.Spec()
	g := &Generator{cfg: c, tmpl: tmpl, tag: uint16(rand.Uint32())}
	defer func() {
		if err != nil {
			g.Close()
		}
	}()
	if err := g.openSenders(ifi); err != nil {
		return nil, err
	}
	g.open = true
	if !c.SendOnly {
		lo, hi := tmpl.SourcePorts()
		g.rx, err = newReceiver(ifi, c.RX, lo, hi, c.Workers, c.Window)
		if err != nil {
			return nil, err
		}
	}
	return g, nil
}

// openSenders opens the workers' ways out for the backend.
func (g *Generator) openSenders(ifi *net.Interface) error {
	c, tmpl := &g.cfg, g.tmpl
	switch c.Backend {
	case BackendTPACKET:
		txc := ring.TXConfig{QdiscBypass: true, RawKick: true}
		if c.TX != nil {
			txc = *c.TX
		}
		if txc.Method == ring.TXDefault {
			txc.Method = ring.TXRing
		}
		if txc.FrameSize == 0 {
			txc.FrameSize = txSlotSize(tmpl.Len())
		}
		for range c.Workers {
			tx, err := ring.NewTransmitter(ifi, &txc)
			if err != nil {
				return err
			}
			g.txs = append(g.txs, tpacketSender{tx})
		}
	case BackendXDP:
		queues, err := xdp.RXQueues(ifi)
		if err != nil {
			return err
		}
		if c.Workers > queues {
			return fmt.Errorf("loadgen: %d workers, but %s has %d queue(s) and an AF_XDP socket takes one (ethtool -L %s combined N)", c.Workers, ifi.Name, queues, ifi.Name)
		}
		var xc xdp.Config
		if c.XDP != nil {
			xc = *c.XDP
		}
		xc.TXOnly = true
		xc.RawKick = true // a worker does nothing but send
		for w := range c.Workers {
			s, err := xdp.Listen(ifi, w, &xc)
			if err != nil {
				return fmt.Errorf("loadgen: %w", err)
			}
			g.txs = append(g.txs, xdpSender{s})
			if _, err := s.Prefill(tmpl.Bytes()); err != nil {
				return fmt.Errorf("loadgen: %w", err)
			}
		}
	case BackendLive:
		sp := tmpl.Spec()
		if sp.SrcAddrs != 1 || sp.DstPorts != 1 {
			return errors.New("loadgen: the live backend varies the source port only: Spec.SrcAddrs and DstPorts must be 1")
		}
		ns, err := currentNetns()
		if err != nil {
			return err
		}
		g.ns = ns
		g.kicks = make([]atomic.Uint64, c.Workers)
		buf := make([]byte, tmpl.Len())
		sig := tmpl.SignatureOffset()
		for w := range c.Workers {
			tmpl.Write(buf, 0, Signature{Stream: uint16(w)})
			ls, err := xdp.NewLiveSender(ifi, buf, &xdp.LiveConfig{
				Flows:   tmpl.NumFlows(),
				SeqOff:  sig + 2,
				SeqHigh: uint64(w) << SeqBits, SeqBits: SeqBits,
				ClockOff: sig + 10,
			})
			if err != nil {
				return fmt.Errorf("loadgen: %w", err)
			}
			g.lives = append(g.lives, ls)
		}
	default:
		return fmt.Errorf("loadgen: unknown backend %v", c.Backend)
	}
	return nil
}

// txSlotHeader is what a TPACKET_V2 TX slot keeps before the frame.
const txSlotHeader = 32

// txSlotSize returns the TX ring slot size for frames of n bytes: the
// smallest power of two, at least 128, that holds the slot header and the
// frame. The ring's default slot holds a full-MTU frame (2 KiB); with
// 128-byte slots for 64-byte frames the kernel and the worker touch 16
// times less memory per lap of the ring, and in six paired runs on the
// lab machine they sent more frames per second in five, by 14-71 %.
func txSlotSize(n int) int {
	s := 128
	for s < txSlotHeader+n {
		s *= 2
	}
	return s
}

// fill applies the defaults.
func (c *Config) fill(ifi *net.Interface) error {
	if !c.Dst.Addr().IsValid() {
		return errors.New("loadgen: Config.Dst is required")
	}
	c.Workers = cmp.Or(c.Workers, 1)
	if c.Backend == BackendLive {
		c.Batch = cmp.Or(c.Batch, DefaultLiveBatch)
		c.Quantum = cmp.Or(c.Quantum, DefaultLiveQuantum)
	}
	c.Batch = cmp.Or(c.Batch, DefaultBatch)
	c.Quantum = cmp.Or(c.Quantum, DefaultQuantum)
	c.Drain = cmp.Or(c.Drain, DefaultDrain)
	c.Interval = cmp.Or(c.Interval, DefaultInterval)
	if c.Workers < 1 || c.Workers > 1<<16 {
		return fmt.Errorf("loadgen: %d workers", c.Workers)
	}
	if c.Batch < 1 || c.Rate < 0 || c.Duration < 0 {
		return errors.New("loadgen: negative batch, rate or duration")
	}
	if c.SrcMAC.IsZero() && ifi != nil {
		copy(c.SrcMAC[:], ifi.HardwareAddr)
	}
	src := c.Src.Addr()
	if !src.IsValid() {
		a, err := interfaceAddr(ifi, c.Dst.Addr().Is6())
		if err != nil {
			return err
		}
		src = a
	}
	c.Src = netip.AddrPortFrom(src, cmp.Or(c.Src.Port(), DefaultSrcPort))
	if c.DstMAC.IsZero() {
		mac, err := LookupNeighbor(ifi, c.Dst.Addr())
		if err != nil {
			return err
		}
		c.DstMAC = mac
	}
	return nil
}

// interfaceAddr returns ifi's first address of the family, preferring a
// global one for IPv6.
func interfaceAddr(ifi *net.Interface, v6 bool) (netip.Addr, error) {
	if ifi == nil {
		return netip.Addr{}, errors.New("loadgen: no interface to take a source address from")
	}
	addrs, err := ifi.Addrs()
	if err != nil {
		return netip.Addr{}, err
	}
	var linkLocal netip.Addr
	for _, a := range addrs {
		pfx, err := netip.ParsePrefix(a.String())
		if err != nil {
			continue
		}
		ip := pfx.Addr()
		switch {
		case v6 != ip.Is6():
		case ip.IsLinkLocalUnicast():
			linkLocal = ip
		default:
			return ip, nil
		}
	}
	if linkLocal.IsValid() {
		return linkLocal, nil
	}
	return netip.Addr{}, fmt.Errorf("loadgen: %s has no IPv%d address; set Config.Src", ifi.Name, ipVersion(v6))
}

// Template returns the generator's frame template.
func (g *Generator) Template() *Template { return g.tmpl }

// Config returns the configuration with its defaults filled in.
func (g *Generator) Config() Config { return g.cfg }

// Close closes the rings.
func (g *Generator) Close() error {
	var errs []error
	for _, tx := range g.txs {
		errs = append(errs, tx.close())
	}
	g.txs = nil
	for _, ls := range g.lives {
		errs = append(errs, ls.Close())
	}
	g.lives = nil
	if g.ns != nil {
		errs = append(errs, g.ns.close())
		g.ns = nil
	}
	g.open = false
	if g.rx != nil {
		errs = append(errs, g.rx.close())
		g.rx = nil
	}
	return errors.Join(errs...)
}

// Run opens a generator on ifi, runs cfg.Load once and closes it.
// progress, if not nil, is called every Config.Interval from another
// goroutine.
func Run(ctx context.Context, ifi *net.Interface, cfg *Config, progress func(Progress)) (*Summary, error) {
	g, err := New(ifi, cfg)
	if err != nil {
		return nil, err
	}
	s, err := g.Run(ctx, g.cfg.Load, progress)
	return s, errors.Join(err, g.Close())
}

// workerState is what one worker publishes while it runs.
type workerState struct {
	sent atomic.Uint64
	_    [56]byte // keep workers' counters on their own cache lines
}

// Run sends load and returns what happened. It stops sending early, without
// error, when ctx is done; the drain that follows still runs, so a
// summary printed after Ctrl-C is complete. progress, if not nil, is
// called every Config.Interval from another goroutine.
func (g *Generator) Run(ctx context.Context, load Load, progress func(Progress)) (*Summary, error) {
	g.runMu.Lock()
	defer g.runMu.Unlock()
	if !g.open {
		return nil, ring.ErrClosed
	}
	if load.Rate < 0 || load.Duration < 0 {
		return nil, errors.New("loadgen: negative rate or duration")
	}
	g.tag++
	if g.tag == 0 {
		g.tag++
	}
	tag := g.tag
	if err := g.restartLive(tag); err != nil {
		return nil, err
	}
	var rxBefore ring.Stats
	if g.rx != nil {
		rxBefore = g.rx.begin(tag)
	}
	workers := g.cfg.Workers
	txBefore := make([]ring.TXStats, workers)
	for i := range workers {
		txBefore[i] = g.txStats(i)
	}

	states := make([]workerState, workers)
	sendCtx, stop := context.WithCancel(ctx)
	defer stop()
	start := time.Now()
	errs := make(chan error, workers)
	for w := range workers {
		if g.lives != nil {
			go func() { errs <- g.workLive(sendCtx, w, load, tag, start, &states[w]) }()
		} else {
			go func() { errs <- g.work(sendCtx, w, load, tag, start, &states[w]) }()
		}
	}
	sentTotal := func() uint64 {
		var n uint64
		for i := range states {
			n += states[i].sent.Load()
		}
		return n
	}

	progDone := make(chan struct{})
	progStop := make(chan struct{})
	go func() {
		defer close(progDone)
		if progress == nil {
			return
		}
		g.reportProgress(start, sentTotal, progress, progStop)
	}()

	var err error
	for range workers {
		if e := <-errs; e != nil && err == nil {
			err = e
			stop()
		}
	}
	end := time.Now()
	sent := sentTotal()
	if g.rx != nil {
		drain := g.cfg.Drain
		if load.Drain > 0 {
			drain = load.Drain
		}
		g.rx.drain(sent, drain)
	}
	close(progStop)
	<-progDone

	s := &Summary{
		Start:    start,
		Duration: end.Sub(start),
		Size:     g.tmpl.Size(),
		Flows:    g.tmpl.NumFlows(),
		Workers:  workers,
		Offered:  load.Rate,
		Sent:     sent,
		SendOnly: g.rx == nil,
		Backend:  g.cfg.Backend,
	}
	for i := range workers {
		st := g.txStats(i)
		s.TX.Committed += st.Committed - txBefore[i].Committed
		s.TX.Sent += st.Sent - txBefore[i].Sent
		s.TX.WrongFormat += st.WrongFormat - txBefore[i].WrongFormat
		s.TX.Dropped += st.Dropped - txBefore[i].Dropped
		s.TX.Kicks += st.Kicks - txBefore[i].Kicks
		s.TX.Waits += st.Waits - txBefore[i].Waits
	}
	if g.rx != nil {
		g.rx.finish(s, rxBefore)
	}
	s.compute()
	return s, err
}

// reportProgress calls progress every interval until stop is closed.
func (g *Generator) reportProgress(start time.Time, sent func() uint64, progress func(Progress), stop <-chan struct{}) {
	tick := time.NewTicker(g.cfg.Interval)
	defer tick.Stop()
	var last Progress
	lastAt := start
	for {
		select {
		case <-stop:
			return
		case now := <-tick.C:
			p := Progress{Elapsed: now.Sub(start), Sent: sent()}
			var h Histogram
			if g.rx != nil {
				p.Received = g.rx.snapshot(&h)
			}
			dt := now.Sub(lastAt).Seconds()
			p.TXRate = float64(p.Sent-last.Sent) / dt
			p.RXRate = float64(p.Received-last.Received) / dt
			if p.Sent > 0 && p.Received < p.Sent {
				p.Loss = 1 - float64(p.Received)/float64(p.Sent)
			}
			p.P99 = time.Duration(h.Quantile(0.99))
			p.SendOnly = g.rx == nil
			progress(p)
			last, lastAt = p, now
		}
	}
}

// maxCatchUp is the most schedule a paced worker that fell behind (its
// thread preempted, say) makes up by sending back to back: 1 ms, or two
// batches if they take longer. Beyond that the frames are not sent, and
// the achieved rate shows it.
const maxCatchUp = time.Millisecond

func bucketDepth(rate float64, batch int) time.Duration {
	return max(maxCatchUp, 2*time.Duration(float64(batch)*1e9/rate))
}

// pinWorker pins the calling thread to worker w's CPU, if Config.CPUs
// names any. The thread stays locked: when the goroutine ends the runtime
// discards it rather than reuse a thread with a narrowed affinity.
func (g *Generator) pinWorker(w int) error {
	if len(g.cfg.CPUs) == 0 {
		return nil
	}
	return pinThread(g.cfg.CPUs[w%len(g.cfg.CPUs)])
}

// schedule is one worker's part of a load: when it sends how many frames.
type schedule struct {
	done     <-chan struct{} // the run's context's
	counted  bool            // the load has a Count
	count    uint64          // the worker's share of it
	batch    int
	pc       *pacer // nil when unpaced
	clk      systemClock
	deadline int64 // on clk
}

// share returns worker w's part of load, shared by nw workers, its pacer
// started. ok is false when a counted load leaves the worker nothing to
// send.
func (g *Generator) share(ctx context.Context, w int, nw uint64, load Load, start time.Time) (s schedule, ok bool) {
	s.done = ctx.Done()
	rate := load.Rate / float64(nw)
	s.counted = load.Count > 0
	s.count = load.Count / nw
	if uint64(w) < load.Count%nw {
		s.count++
	}
	if s.counted && s.count == 0 {
		return s, false
	}
	s.batch = batchFor(rate, g.cfg.Quantum, g.cfg.Batch)
	if rate > 0 {
		s.pc = newPacer(rate, bucketDepth(rate, s.batch), s.clk)
		s.pc.Start()
	}
	s.deadline = int64(1<<63 - 1)
	if load.Duration > 0 {
		s.deadline = s.clk.Now() + int64(load.Duration-time.Since(start))
	}
	return s, true
}

// next waits, when paced, until the next batch is due and returns its
// size, seq frames having been sent. ok is false when the worker is done:
// the context is done, the count is sent or the deadline has passed.
func (s *schedule) next(seq uint64) (n int, ok bool) {
	select {
	case <-s.done:
		return 0, false
	default:
	}
	n = s.batch
	if s.counted {
		if seq >= s.count {
			return 0, false
		}
		n = int(min(uint64(n), s.count-seq))
	}
	var now int64
	if s.pc != nil {
		now = s.pc.Wait(n)
	} else {
		now = s.clk.Now()
	}
	if now >= s.deadline {
		return 0, false
	}
	return n, true
}

// work is one worker's send loop.
func (g *Generator) work(ctx context.Context, w int, load Load, tag uint16, start time.Time, st *workerState) error {
	if err := g.pinWorker(w); err != nil {
		return err
	}
	tx := g.txs[w]
	rewrite := tx.prefilled()
	nw := uint64(len(g.txs))
	sched, ok := g.share(ctx, w, nw, load, start)
	if !ok {
		return nil
	}
	nf := g.tmpl.NumFlows()
	f := w % nf
	sig := Signature{Tag: tag, Stream: uint16(w)}
	var seq uint64
	for {
		n, ok := sched.next(seq)
		if !ok {
			return nil
		}
		sig.Time = time.Now().UnixNano()
		for range n {
			buf, err := tx.next(ctx)
			if errors.Is(err, syscall.ENOBUFS) {
				// The peer's queue is full (veth): the frames the kernel
				// refused are counted in TX.Dropped, and their sequence
				// numbers as lost. Go on: that is overload, not failure.
				buf, err = tx.next(ctx)
			}
			if err != nil {
				st.sent.Store(seq)
				if ctx.Err() != nil {
					return tx.flush()
				}
				return err
			}
			sig.Seq = seq
			var k int
			if rewrite {
				k = g.tmpl.Rewrite(buf, f, sig)
			} else {
				k = g.tmpl.Write(buf, f, sig)
			}
			if err := tx.commit(k); err != nil {
				return err
			}
			seq++
			if f += int(nw); f >= nf {
				f %= nf
			}
		}
		if err := tx.flush(); err != nil && !errors.Is(err, syscall.ENOBUFS) {
			return err
		}
		st.sent.Store(seq)
	}
}

// txStats returns worker i's transmit counters.
func (g *Generator) txStats(i int) ring.TXStats {
	if g.lives != nil {
		ls := g.lives[i]
		n, _ := ls.Sent()
		return ring.TXStats{Committed: n, Sent: n, Kicks: g.liveKicks(i)}
	}
	return g.txs[i].stats()
}

// restartLive gives the live senders the run's tag and starts their counts
// from 0.
func (g *Generator) restartLive(tag uint16) error {
	if g.lives == nil {
		return nil
	}
	buf := make([]byte, g.tmpl.Len())
	for w, ls := range g.lives {
		g.tmpl.Write(buf, 0, Signature{Tag: tag, Stream: uint16(w)})
		if err := ls.Restart(buf); err != nil {
			return fmt.Errorf("loadgen: %w", err)
		}
	}
	return nil
}

func (g *Generator) liveKicks(i int) uint64 { return g.kicks[i].Load() }

// workLive is one live worker's send loop: the program stamps every
// frame (sequence number from 0, send time, source port), so a batch is
// one BPF_PROG_RUN call. The thread joins the interface's namespace for
// good: the kernel looks the interface up there.
func (g *Generator) workLive(ctx context.Context, w int, load Load, tag uint16, start time.Time, st *workerState) error {
	if err := g.pinWorker(w); err != nil {
		return err
	}
	if err := g.ns.enter(); err != nil {
		return err
	}
	ls := g.lives[w]
	sched, ok := g.share(ctx, w, uint64(len(g.lives)), load, start)
	if !ok {
		return nil
	}
	var seq uint64
	for {
		n, ok := sched.next(seq)
		if !ok {
			return nil
		}
		if err := ls.Send(n); err != nil {
			return err
		}
		g.kicks[w].Add(1)
		seq += uint64(n)
		st.sent.Store(seq)
	}
}
