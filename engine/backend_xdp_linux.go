//go:build linux

package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	xbpf "golang.org/x/net/bpf"

	"github.com/pktengine/pktengine/bpf"
	"github.com/pktengine/pktengine/frame"
	"github.com/pktengine/pktengine/ring"
	"github.com/pktengine/pktengine/xdp"
)

// The AF_XDP backend: package xdp's steering program on the interface,
// one AF_XDP socket per receive queue as a worker's rxRing and txRing
// (the same socket: answers leave from the frame they answer, in UMEM),
// a TPACKET transmitter for Port.Send (a second AF_XDP socket cannot
// bind a queue a worker's socket holds), and, when the engine shares
// addresses with the kernel, a small TPACKET receive ring that sees the
// ARP and NDP the program leaves to the kernel for them, so that the
// engine still learns its neighbours (bpf.NeighborFilter).
//
// docs/XDP.md describes the design; this file is the adapter.

// frameCheckEvery is how often a busy worker checks its socket's frame
// accounting (xdp.Socket.CheckFrames walks every frame's state: about a
// microsecond per thousand frames).
const frameCheckEvery = time.Second

// openXDP attaches the steering program and opens the workers' sockets.
// ns is the engine's namespace, for the kernel sockets of shared ports.
func (e *Engine) openXDP(ns *netns, filter string) error {
	c := &e.cfg
	queues, err := xdp.RXQueues(e.ifi)
	if err != nil {
		return fmt.Errorf("engine: AF_XDP backend on %s: %w", e.ifi.Name, err)
	}
	switch {
	case c.Workers == 0:
		c.Workers = queues
	case c.Workers != queues:
		return fmt.Errorf("engine: Config.Workers is %d, but %s has %d receive queue(s) and the AF_XDP backend runs one worker per queue: leave Workers 0, or change the queues (ethtool -L %s combined N)",
			c.Workers, e.ifi.Name, queues, e.ifi.Name)
	}
	if c.Workers > 64 {
		return fmt.Errorf("engine: %s has %d receive queues; the engine runs at most 64 workers", e.ifi.Name, queues)
	}

	b := &xdpBackend{
		e:       e,
		inPlace: c.Capture == nil,
		cfg: xdp.Config{
			Mode:       c.XDP.Mode,
			FrameCount: c.XDP.FrameCount,
			BatchSize:  c.XDP.BatchSize,
			BusyPoll:   c.BusyPoll,
		},
		shared: tpacketBackend{
			ifi: e.ifi,
			ctx: e.ctx,
			tx:  ring.TXConfig{QdiscBypass: !c.KeepQdisc, FrameCount: c.TXFrameCount},
		},
	}
	if filter != "" {
		if b.vm, err = buildFilterVM(e.addrs, filter, c.VLAN); err != nil {
			return err
		}
	}
	b.prog, err = xdp.NewProgram(&xdp.ProgramConfig{
		VLAN:           true,
		Queues:         max(64, queues),
		Generic:        c.XDP.Generic,
		ReplaceForeign: c.XDP.ReplaceForeign,
	})
	if err != nil {
		return fmt.Errorf("engine: AF_XDP backend: %w", err)
	}
	for _, la := range e.addrs.list {
		flags := xdp.ServeAll
		if !la.owned {
			// The kernel keeps the address: only the ports the
			// engine binds come here (reserveShared).
			flags = xdp.ServeUDPPorts
			b.sharedAddrs = append(b.sharedAddrs, la.addr)
		}
		if err := b.prog.AddAddr(la.addr, flags); err != nil {
			b.prog.Close()
			return fmt.Errorf("engine: AF_XDP backend: %w", err)
		}
	}
	if err := b.prog.Attach(e.ifi); err != nil {
		b.prog.Close()
		return fmt.Errorf("engine: AF_XDP backend: %w%s", err, attachHint(err))
	}
	e.closers = append(e.closers, (*xdpProgramCloser)(b))
	e.report = b
	if info := b.prog.Info(); info.ReplacedID != 0 {
		what := "a foreign"
		if info.ReplacedStale {
			what = "a stale pktengine"
		}
		e.log.Warn("replaced "+what+" XDP program", "iface", e.ifi.Name, "id", info.ReplacedID, "name", info.ReplacedName)
	}

	// A port on a shared address: the kernel socket that holds it
	// against kernel programs (as on TPACKET), and the program's port
	// entry that steers its datagrams here.
	e.reserveShared = func(ap netip.AddrPort) (io.Closer, error) {
		k, err := ns.reserveUDP(ap, e.ifi.Index)
		if err != nil {
			return nil, err
		}
		p, err := b.steerPort(ap, false)
		if err != nil {
			return nil, errors.Join(err, k.Close())
		}
		return closers{p, k}, nil
	}
	e.steerGroup = func(ap netip.AddrPort) (io.Closer, error) { return b.steerPort(ap, true) }
	return e.openWorkers(b)
}

// attachHint says which engine setting answers an attach error.
func attachHint(err error) string {
	switch {
	case errors.Is(err, xdp.ErrNoDriverSupport):
		return " (engine: XDPConfig.Generic, serve --xdp-generic)"
	case errors.Is(err, xdp.ErrProgramPresent):
		return " (engine: XDPConfig.ReplaceForeign, serve --xdp-replace)"
	}
	return ""
}

// xdpBackend opens the AF_XDP sockets of one engine and reports on them.
type xdpBackend struct {
	e           *Engine
	prog        *xdp.Program
	cfg         xdp.Config
	vm          *xbpf.VM // Config.Filter, or nil
	inPlace     bool     // answers are written over the frame they answer
	shared      tpacketBackend
	sharedAddrs []netip.Addr

	mu       sync.Mutex
	socks    []*xdpSock
	groups   map[netip.Addr]bool // group addresses served by port
	progLast xdp.ProgramStats    // the program's counters when last read
	progGone bool                // the program is closed: progLast is final
}

// openWorker opens queue i's socket and registers it with the program.
func (b *xdpBackend) openWorker(i int) (rxRing, txRing, error) {
	s, err := xdp.Listen(b.e.ifi, i, &b.cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("engine: AF_XDP backend: %w", err)
	}
	if err := b.prog.Register(s); err != nil {
		return nil, nil, errors.Join(fmt.Errorf("engine: AF_XDP backend: %w", err), s.Close())
	}
	xs := &xdpSock{
		b:     b,
		s:     s,
		queue: i,
		mac:   b.e.mac,
		vm:    b.vm,
		// Batches are held by queued datagrams (ZeroCopy) at most one
		// per frame; sized so that the worker never allocates one.
		maxHeld: s.FrameCount(),
	}
	batch := b.cfg.BatchSize
	if batch == 0 {
		batch = 256
	}
	xs.batchSize = batch
	xs.pending = make([]pendingTX, 0, batch)
	b.mu.Lock()
	b.socks = append(b.socks, xs)
	b.mu.Unlock()
	return (*xdpRX)(xs), (*xdpTX)(xs), nil
}

// openShared opens the TPACKET transmitter Port.Send uses.
func (b *xdpBackend) openShared() (txRing, error) { return b.shared.openShared() }

// openAux opens the neighbour tap for the shared addresses: a TPACKET
// ring whose filter passes only ARP and Neighbor Advertisements about
// them, which the program leaves to the kernel. Nil without shared
// addresses.
func (b *xdpBackend) openAux() (rxRing, txRing, error) {
	if len(b.sharedAddrs) == 0 {
		return nil, nil, nil
	}
	prog, err := bpf.NeighborFilter(b.sharedAddrs)
	if err != nil {
		return nil, nil, fmt.Errorf("engine: %w", err)
	}
	tx, err := b.shared.openShared()
	if err != nil {
		return nil, nil, err
	}
	rx, err := ring.NewRX(b.e.ifi, &ring.RXConfig{Version: ring.V2, FrameCount: 64, Filter: prog, LockFilter: true, IgnoreOutgoing: true})
	if err != nil {
		return nil, nil, errors.Join(err, tx.close())
	}
	return &tpacketRX{rx: rx, slots: rx.Geometry().Slots}, tx, nil
}

// steerPort adds ap to the program's port map, and for a group address
// the address itself (served by port); the closer removes the port.
func (b *xdpBackend) steerPort(ap netip.AddrPort, group bool) (io.Closer, error) {
	if group {
		b.mu.Lock()
		defer b.mu.Unlock()
		if !b.groups[ap.Addr()] {
			if err := b.prog.AddAddr(ap.Addr(), xdp.ServeUDPPorts); err != nil {
				return nil, fmt.Errorf("engine: AF_XDP backend: %w", err)
			}
			if b.groups == nil {
				b.groups = make(map[netip.Addr]bool)
			}
			b.groups[ap.Addr()] = true
		}
	}
	if err := b.prog.AddPort(ap); err != nil {
		return nil, fmt.Errorf("engine: AF_XDP backend: %w", err)
	}
	return portSteer{b.prog, ap}, nil
}

// portSteer removes a port from the program's port map.
type portSteer struct {
	prog *xdp.Program
	ap   netip.AddrPort
}

func (p portSteer) Close() error {
	if err := p.prog.RemovePort(p.ap); err != nil && !errors.Is(err, xdp.ErrClosed) {
		return err
	}
	return nil
}

// closers closes each of its closers.
type closers []io.Closer

func (cs closers) Close() error { return closeAll(cs) }

// xdpProgramCloser detaches the program at the engine's Close, keeping
// its last counters.
type xdpProgramCloser xdpBackend

func (c *xdpProgramCloser) Close() error {
	b := (*xdpBackend)(c)
	b.programStats()
	b.mu.Lock()
	b.progGone = true
	b.mu.Unlock()
	return b.prog.Close()
}

// programStats reads the program's counters, or returns the last ones
// read once it is closed.
func (b *xdpBackend) programStats() xdp.ProgramStats {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.progGone {
		if st, err := b.prog.Stats(); err == nil {
			b.progLast = st
		}
	}
	return b.progLast
}

func (b *xdpBackend) sockets() []*xdpSock {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]*xdpSock(nil), b.socks...)
}

// addCounters adds the sockets' and the program's counters.
func (b *xdpBackend) addCounters(c *Counters) {
	x := &c.XDP
	for _, xs := range b.sockets() {
		st, _ := xs.s.Stats() // after Close: the kernel's last ones
		k := &st.Kernel
		x.RxDropped += k.RxDropped
		x.RxRingFull += k.RxRingFull
		x.RxFillRingEmpty += k.RxFillRingEmptyDescs
		x.RxInvalidDescs += k.RxInvalidDescs
		x.TxInvalidDescs += k.TxInvalidDescs
		x.TxRingEmpty += k.TxRingEmptyDescs
		x.Received += st.Received
		x.Filtered += xs.filtered.Load()
		x.Transmitted += st.Transmitted
		x.Completed += st.Completed
		x.TXDropped += st.TXDropped + xs.linkDrops.Load() + xs.txFails.Load()
		// Frames still on the TX ring as the socket went were never
		// sent: the workers' counters were final before that.
		stranded := uint64(xs.finalCheck())
		x.TXDropped += stranded
		c.TXDropped += stranded
		checks, fails := xs.checkCounts()
		x.FrameChecks += checks
		x.FrameCheckFailures += fails
	}
	ps := b.programStats()
	x.Steered = ps.Steered()
	x.Passed = ps[xdp.ClassPassed]
	x.NoSocket = ps[xdp.ClassNoSocket]
}

// status describes the program and the sockets.
func (b *xdpBackend) status() *XDPStatus {
	info := b.prog.Info()
	st := &XDPStatus{Generic: info.Generic}
	if info.ReplacedID != 0 {
		st.Replaced = fmt.Sprintf("%d %q", info.ReplacedID, info.ReplacedName)
		if info.ReplacedStale {
			st.Replaced += " (stale)"
		}
	}
	for _, xs := range b.sockets() {
		xs.finalCheck()
		ss := XDPSocketStatus{
			Queue:      xs.queue,
			Mode:       xs.s.Mode().String(),
			FrameSize:  xs.s.FrameSize(),
			FrameCount: xs.s.FrameCount(),
			TXBudget:   xs.s.TXBudget(),
		}
		xs.checkMu.Lock()
		ss.Frames, ss.CheckedAt, ss.CheckError = xs.last.frames, xs.last.at, xs.last.err
		xs.checkMu.Unlock()
		switch {
		case st.Mode == "":
			st.Mode = ss.Mode
		case st.Mode != ss.Mode:
			st.Mode = "mixed"
		}
		st.Sockets = append(st.Sockets, ss)
	}
	return st
}

// xdpSock is one AF_XDP socket: a worker's receive ring (xdpRX) and
// transmit ring (xdpTX). The worker owns it; Counters and Status read
// its atomics and its last frame check from other goroutines.
type xdpSock struct {
	b         *xdpBackend
	s         *xdp.Socket
	queue     int
	mac       frame.MAC
	vm        *xbpf.VM
	batchSize int
	maxHeld   int

	// The worker's.
	lastNow   int64 // the last batch's time
	lastCheck int64
	lent      bool // a buffer from Next is out
	fromNext  bool // the last buffer handed out came from next, not forward
	fwd       *xdpBatch
	fwdIdx    int
	pending   []pendingTX // answers in place, transmitted at flush

	filtered  atomic.Uint64 // frames Config.Filter rejected
	linkDrops atomic.Uint64 // answers kept off the TX ring: the link was down
	txFails   atomic.Uint64 // answers the TX ring had no room for

	checkMu     sync.Mutex
	last        frameCheck
	checks      uint64
	checkFails  uint64
	finalDone   bool
	finalTX     int
	loggedCheck bool
}

// frameCheck is the result of one xdp.Socket.CheckFrames.
type frameCheck struct {
	frames xdp.FrameCounts
	at     time.Time
	err    string
}

// pendingTX is an answer written over frame i of b, n bytes long, to go
// on the TX ring at the next flush: until the batch ends every frame of
// it stays where the worker can read it.
type pendingTX struct {
	b *xdpBatch
	i int
	n int
}

// check runs CheckFrames (owner only) and records the result.
func (xs *xdpSock) check(now int64) {
	c, err := xs.s.CheckFrames()
	xs.record(c, err, now)
}

func (xs *xdpSock) record(c xdp.FrameCounts, err error, now int64) {
	xs.checkMu.Lock()
	xs.last = frameCheck{frames: c, at: time.Unix(0, now)}
	xs.checks++
	logIt := false
	if err != nil {
		xs.last.err = err.Error()
		xs.checkFails++
		logIt = !xs.loggedCheck
		xs.loggedCheck = true
	}
	xs.checkMu.Unlock()
	if logIt {
		xs.b.e.log.Error("AF_XDP frame accounting is wrong (a bug)", "queue", xs.queue, "frames", c.String(), "err", err)
	}
}

// finalCheck records, once, the count the socket took as its UMEM went
// (after Close and the release of every batch), and returns the frames
// that were still on the TX ring then: never sent.
func (xs *xdpSock) finalCheck() int {
	xs.checkMu.Lock()
	if xs.finalDone {
		n := xs.finalTX
		xs.checkMu.Unlock()
		return n
	}
	xs.checkMu.Unlock()
	if _, err := xs.s.Stats(); !errors.Is(err, xdp.ErrClosed) {
		return 0 // still open: CheckFrames is the owner's
	}
	c, err := xs.s.CheckFrames()
	if errors.Is(err, xdp.ErrClosed) {
		return 0 // batches still out: UMEM is still mapped
	}
	xs.checkMu.Lock()
	if xs.finalDone {
		xs.checkMu.Unlock()
		return xs.finalTX
	}
	xs.finalDone, xs.finalTX = true, c.TX
	xs.checkMu.Unlock()
	xs.record(c, err, time.Now().UnixNano())
	return c.TX
}

func (xs *xdpSock) checkCounts() (checks, fails uint64) {
	xs.checkMu.Lock()
	defer xs.checkMu.Unlock()
	return xs.checks, xs.checkFails
}

// xdpRX is an xdpSock as a worker's rxRing.
type xdpRX xdpSock

func (r *xdpRX) newBatch() rxBatch {
	xs := (*xdpSock)(r)
	b := &xdpBatch{sock: xs}
	if xs.vm != nil {
		b.idx = make([]uint16, 0, xs.batchSize)
	}
	return b
}

// readInto waits without a context (Close wakes it), reads the clock
// once for the batch, and runs Config.Filter if there is one. Between
// batches, about once a second, it checks the frame accounting.
func (r *xdpRX) readInto(b rxBatch) error {
	xs := (*xdpSock)(r)
	xb := b.(*xdpBatch)
	if xs.lastNow-xs.lastCheck >= int64(frameCheckEvery) {
		xs.lastCheck = xs.lastNow
		xs.check(xs.lastNow)
	}
	if err := xs.s.ReadInto(context.Background(), &xb.b); err != nil {
		return err
	}
	xb.now = time.Now().UnixNano()
	xs.lastNow = xb.now
	if xs.vm != nil {
		xb.filter(xs)
	}
	return nil
}

func (r *xdpRX) maxBatches() int { return r.maxHeld }

func (r *xdpRX) stats() rxStats {
	xs := (*xdpSock)(r)
	st, _ := xs.s.Stats() // after Close: the kernel's last ones
	drops := st.Kernel.RxRingFull + st.Kernel.RxDropped
	// As tp_packets counts what is in a packet ring, the frames waiting
	// on the RX ring count as received.
	return rxStats{packets: st.Received + st.RXWaiting - xs.filtered.Load() + drops, drops: drops}
}

func (r *xdpRX) close() error { return r.s.Close() }

// xdpBatch is an xdp.Batch as an rxBatch.
type xdpBatch struct {
	b    xdp.Batch
	sock *xdpSock
	now  int64
	// idx lists the frames Config.Filter passed (when there is one).
	idx []uint16
}

// filter keeps the frames the VM accepts.
func (b *xdpBatch) filter(xs *xdpSock) {
	b.idx = b.idx[:0]
	for i := range b.b.Len() {
		if n, err := xs.vm.Run(b.b.Data(i)); err == nil && n > 0 {
			b.idx = append(b.idx, uint16(i))
		}
	}
	if rej := b.b.Len() - len(b.idx); rej > 0 {
		xs.filtered.Add(uint64(rej))
	}
}

func (b *xdpBatch) at(i int) int {
	if b.idx != nil {
		return int(b.idx[i])
	}
	return i
}

func (b *xdpBatch) len() int {
	if b.idx != nil {
		return len(b.idx)
	}
	return b.b.Len()
}

// frame derives what AF_XDP does not say: no timestamp (the batch's
// clock), the kind from the destination MAC, and a checksum that may be
// partial with no flag to say so.
func (b *xdpBatch) frame(i int) ([]byte, rxMeta) {
	d := b.b.Data(b.at(i))
	return d, rxMeta{time: b.now, kind: kindOf(d, b.sock.mac), flags: metaCsumUnknown}
}

func (b *xdpBatch) data(i int) []byte { return b.b.Data(b.at(i)) }
func (b *xdpBatch) release()          { b.b.Release() }

// kindOf is sll_pkttype from a frame's destination MAC address.
func kindOf(f []byte, mac frame.MAC) frameKind {
	if len(f) < 6 {
		return kindHost // too short for anything: Decode says so
	}
	if f[0]&1 != 0 {
		if frame.MAC(f[:6]) == frame.BroadcastMAC {
			return kindBroadcast
		}
		return kindMulticast
	}
	if frame.MAC(f[:6]) == mac {
		return kindHost
	}
	return kindOtherHost
}

// xdpTX is an xdpSock as a worker's txRing.
type xdpTX xdpSock

func (t *xdpTX) next() ([]byte, error) {
	buf, err := t.s.Next(t.b.e.ctx)
	if err != nil {
		return nil, err
	}
	t.lent, t.fromNext = true, true
	return buf, nil
}

// forward returns the received frame itself, with room to the end of
// its UMEM frame: the answer is written over it and commit queues it.
// With Config.Capture the answer goes to a frame of its own instead, so
// that the capture, taken after the frame is handled, shows what came in.
func (t *xdpTX) forward(b rxBatch, i int) ([]byte, error) {
	xb := b.(*xdpBatch)
	if !t.b.inPlace {
		f := xb.data(i)
		buf, err := t.next()
		if err != nil {
			return nil, err
		}
		if len(f) > len(buf) {
			return nil, errTooBig
		}
		copy(buf, f)
		return buf, nil
	}
	j := xb.at(i)
	d := xb.b.Data(j)
	t.fromNext, t.fwd, t.fwdIdx = false, xb, j
	return d[:cap(d)], nil
}

// commit queues the answer. While the link is down it counts the answer
// dropped instead: a frame on the TX ring cannot be taken back, and the
// kernel would send it whenever the link came back.
func (t *xdpTX) commit(n int) error {
	down := t.b.e.linkDown.Load()
	if t.fromNext {
		if !t.lent {
			return xdp.ErrNoBuffer
		}
		if down {
			t.linkDrops.Add(1) // the buffer stays lent: next returns it again
			return nil
		}
		if err := t.s.Commit(n); err != nil {
			return err
		}
		t.lent = false
		return nil
	}
	if t.fwd == nil {
		return xdp.ErrNoBuffer
	}
	xb, i := t.fwd, t.fwdIdx
	t.fwd = nil
	if n <= 0 || n > cap(xb.b.Data(i)) {
		return xdp.ErrFrameSize
	}
	if down {
		t.linkDrops.Add(1) // the frame goes back with its batch
		return nil
	}
	t.pending = append(t.pending, pendingTX{xb, i, n})
	return nil
}

// flush moves the answers written in place to the TX ring and kicks the
// kernel. An answer the TX ring has no room for is counted dropped and
// stays in its batch.
func (t *xdpTX) flush() error {
	for _, p := range t.pending {
		d := p.b.b.Data(p.i)
		if err := p.b.b.Transmit(p.i, d[:p.n]); err != nil {
			t.txFails.Add(1)
		}
	}
	clear(t.pending)
	t.pending = t.pending[:0]
	err := t.s.Flush()
	if errors.Is(err, net.ErrClosed) {
		// Closing: what is on the TX ring now is counted from the
		// socket's final frame count.
		return nil
	}
	return err
}

func (t *xdpTX) stats() txStats {
	st := t.s.LocalStats()
	return txStats{
		rejected: st.Kernel.TxInvalidDescs,
		dropped:  st.TXDropped + t.linkDrops.Load() + t.txFails.Load(),
	}
}

// close closes the socket (the receive side may have already) and gives
// back a buffer from Next that was never committed.
func (t *xdpTX) close() error {
	err := t.s.Close()
	if t.lent {
		t.s.Commit(0) // on a closed socket: frees the buffer
		t.lent = false
	}
	clear(t.pending)
	t.pending = t.pending[:0]
	t.fwd = nil
	return err
}
