package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/pktengine/pktengine/frame"
	"github.com/pktengine/pktengine/proto"
	"github.com/pktengine/pktengine/queue"
)

// ErrInline is returned by Recv on a port whose datagrams go to an inline
// handler.
var ErrInline = errors.New("engine: port has an inline handler; it has no queue to Recv from")

// Port is a bound UDP port. Its datagrams go either into a lock-free
// queue that Recv drains, or (for a port opened with Handle) straight to
// an inline handler on the receive goroutine.
//
// A port is bound to one of three kinds of local address:
//
//   - the zero netip.Addr: every address of the engine, IPv4 and IPv6;
//   - 0.0.0.0 or ::: every address of that family;
//   - one address: one of the engine's, or a broadcast or multicast
//     address to receive datagrams sent to it.
//
// A datagram goes to the port bound to its exact destination if there is
// one, else to the port bound to every address of its family: a specific
// binding and a wildcard one may coexist, as with SO_REUSEADDR.
// Broadcast and multicast datagrams go to every matching port.
type Port struct {
	e       *Engine
	addr    netip.Addr // as bound
	port    uint16
	handler Handler
	service Service

	q       datagramQueue
	bufs    chan []byte  // free buffers for copied datagrams
	nbufs   atomic.Int64 // buffers allocated so far, at most cap(bufs)
	bufSize int
	bell    *queue.Doorbell // workers ring it after enqueueing, Close after closing
	idle    func() bool     // p.nothingToRecv, bound once so Recv does not allocate
	closed  atomic.Bool     // set by Close before it rings bell
	recvSem chan struct{}   // one Recv at a time: the queue has one consumer
	done    chan struct{}   // closed by Close

	closeOnce sync.Once
	closeErr  error

	stats []portStats // per worker
	// appOut counts datagrams sent with Send and Reply.
	appOut atomic.Uint64

	reservations []io.Closer // kernel sockets keeping the kernel quiet

	// Datagrams longer than bufSize (reassembled from fragments) are
	// copied into buffers of bigBufSize, at most cap(big) of them.
	big  chan []byte
	nbig atomic.Int64

	// Connecting and ICMP errors (icmperror.go).
	peer       atomic.Pointer[netip.AddrPort] // Connect's peer; nil when unconnected
	pendingErr atomic.Uint32                  // frame.Errno the next receive or send fails with; 0: none
	errs       portErrors
}

// portStats are a port's counters for one worker, on their own cache
// line so that workers never write to the same line. The worker counts
// in pending and publishes it into the atomic fields at the end of each
// batch (worker.publish), so a datagram costs no locked instruction.
type portStats struct {
	in, out, drops, suppressed atomic.Uint64 // published
	pending                    portCounts    // the worker's own
	dirty                      bool          // pending changed since published
	_                          [7]byte
}

// portCounts are a port's datagrams received, sent, dropped for a full
// queue, and left unanswered by a service's guards.
type portCounts struct {
	in, out, drops, suppressed uint64
}

// publish makes the worker's counts visible to Port.Info.
func (ps *portStats) publish() {
	ps.in.Store(ps.pending.in)
	ps.out.Store(ps.pending.out)
	ps.drops.Store(ps.pending.drops)
	ps.suppressed.Store(ps.pending.suppressed)
	ps.dirty = false
}

// datagramQueue is queue.SPSC with one worker, queue.MPSC with several.
type datagramQueue interface {
	Enqueue(Datagram) bool
	DequeueBatch([]Datagram) int
	Len() int
	Cap() int
}

// Addr returns the local address and port the port is bound to. The
// address is the zero netip.Addr for a port bound to every address.
func (p *Port) Addr() netip.AddrPort { return netip.AddrPortFrom(p.addr, p.port) }

// String returns the local address as netstat shows it: "*:7",
// "0.0.0.0:7", "[::]:7" or "198.18.0.1:7".
func (p *Port) String() string { return localString(p.addr, p.port) }

func localString(a netip.Addr, port uint16) string {
	if !a.IsValid() {
		return "*:" + strconv.Itoa(int(port))
	}
	return netip.AddrPortFrom(a, port).String()
}

// Recv waits for datagrams and fills ds with as many as are queued, up
// to len(ds). Their payloads point into the receive ring and stay valid
// until released: Recv first releases whatever ds still holds from an
// earlier call, so a loop that reuses ds need not release anything
// itself; release explicitly (Port.Release) when you stop, or to let the
// ring go on while keeping ds. One goroutine at a time receives from a
// port; others wait their turn.
//
// Recv returns the context's error when ctx ends, and an error wrapping
// net.ErrClosed once the port or the engine is closed. On a connected port
// (Connect), a hard ICMP error about a datagram it sent fails the next
// Recv, even with datagrams queued, with the errno Linux gives it
// (ECONNREFUSED, ...), once.
func (p *Port) Recv(ctx context.Context, ds []Datagram) (int, error) {
	releaseAll(ds)
	if p.q == nil {
		return 0, p.opError("read", ErrInline)
	}
	select {
	case p.recvSem <- struct{}{}:
	case <-p.done:
		return 0, p.opError("read", net.ErrClosed)
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	defer func() { <-p.recvSem }()
	if len(ds) == 0 {
		return 0, nil
	}
	for {
		select {
		case <-p.done:
			return 0, p.opError("read", net.ErrClosed)
		default:
		}
		if errno := p.takeError(); errno != 0 {
			return 0, p.opError("read", os.NewSyscallError("recvfrom", errno))
		}
		if n := p.q.DequeueBatch(ds); n > 0 {
			return n, nil
		}
		if err := p.bell.Wait(ctx, p.idle); err != nil {
			return 0, err
		}
	}
}

// nothingToRecv tells the doorbell whether Recv may sleep: the queue is
// empty and the port open. Close sets closed before it rings, so a Recv
// that arms the bell after that ring sees closed here and does not sleep.
func (p *Port) nothingToRecv() bool {
	return p.q.Len() == 0 && !p.closed.Load() && p.pendingErr.Load() == 0
}

// Release gives the datagrams' memory back to the receive ring.
func (p *Port) Release(ds []Datagram) { releaseAll(ds) }

// Close unbinds the port. Datagrams still queued are released; a
// waiting Recv returns net.ErrClosed. Once Close returns, no worker
// touches the port any more.
func (p *Port) Close() error {
	p.closeOnce.Do(func() { p.closeErr = p.e.unbind(p) })
	return p.closeErr
}

func (p *Port) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: "udp", Addr: udpAddr(p.addr, p.port), Err: err}
}

func udpAddr(a netip.Addr, port uint16) *net.UDPAddr {
	if !a.IsValid() {
		return &net.UDPAddr{Port: int(port)}
	}
	return net.UDPAddrFromAddrPort(netip.AddrPortFrom(a, port))
}

// PortInfo describes a bound port and its counters.
type PortInfo struct {
	// Addr is the local address (the zero Addr for every address) and
	// Port the port number.
	Addr netip.Addr
	Port uint16
	// Service is the built-in service on the port ("echo"), else the
	// port's name in the services database ("domain"), else "".
	Service string
	// Inline reports a port served by an inline handler, which has no
	// queue.
	Inline bool
	// QueueLen and QueueCap are the datagrams waiting for Recv and the
	// queue's capacity.
	QueueLen, QueueCap int
	// InDatagrams are the datagrams delivered to the port, Drops those
	// lost to a full queue, OutDatagrams those sent from it, Suppressed
	// the requests a built-in service's guards left unanswered.
	InDatagrams, OutDatagrams, Drops, Suppressed uint64
}

// Local returns the local address as netstat shows it ("*:7").
func (pi *PortInfo) Local() string { return localString(pi.Addr, pi.Port) }

// Info returns the port's description and counters.
func (p *Port) Info() PortInfo {
	pi := PortInfo{Addr: p.addr, Port: p.port, Inline: p.handler != nil}
	if p.service != 0 {
		pi.Service = p.service.String()
	} else if name, ok := proto.DefaultServices().Name(p.port, "udp"); ok {
		pi.Service = name
	}
	if p.q != nil {
		pi.QueueLen, pi.QueueCap = p.q.Len(), p.q.Cap()
	}
	for i := range p.stats {
		s := &p.stats[i]
		pi.InDatagrams += s.in.Load()
		pi.OutDatagrams += s.out.Load()
		pi.Drops += s.drops.Load()
		pi.Suppressed += s.suppressed.Load()
	}
	pi.OutDatagrams += p.appOut.Load()
	return pi
}

// portTable maps a destination port to its bindings. It is immutable:
// Bind and Close build a new table and publish it with one atomic store,
// so the workers look ports up without a lock. Two levels of 256 keep a
// change cheap (two 2 KiB copies) while a lookup stays two loads.
type portTable struct {
	pages [256]*portPage
}

type portPage [256]*portSlot

// portSlot is every binding of one port number.
type portSlot struct {
	exact      []*Port // bound to one address
	any4, any6 *Port   // bound to every IPv4 / IPv6 address
}

func (t *portTable) lookup(port uint16) *portSlot {
	pg := t.pages[port>>8]
	if pg == nil {
		return nil
	}
	return pg[port&0xff]
}

// with returns a copy of t with the slot of port replaced (nil removes
// it).
func (t *portTable) with(port uint16, s *portSlot) *portTable {
	nt := *t
	pg := new(portPage)
	if old := t.pages[port>>8]; old != nil {
		*pg = *old
	}
	pg[port&0xff] = s
	nt.pages[port>>8] = pg
	return &nt
}

// match returns the port a unicast datagram to dst goes to.
func (s *portSlot) match(dst netip.Addr) *Port {
	for _, p := range s.exact {
		if p.addr == dst {
			return p
		}
	}
	if dst.Is4() {
		return s.any4
	}
	return s.any6
}

// conflicts reports whether a binding of a would overlap one in s.
func (s *portSlot) conflicts(a netip.Addr) bool {
	if s == nil {
		return false
	}
	switch {
	case !a.IsValid():
		return s.any4 != nil || s.any6 != nil
	case a.IsUnspecified() && a.Is4():
		return s.any4 != nil
	case a.IsUnspecified():
		return s.any6 != nil
	}
	for _, p := range s.exact {
		if p.addr == a {
			return true
		}
	}
	return false
}

// plus returns a copy of s with p added.
func (s *portSlot) plus(p *Port) *portSlot {
	var n portSlot
	if s != nil {
		n.any4, n.any6 = s.any4, s.any6
		n.exact = append(n.exact, s.exact...)
	}
	a := p.addr
	switch {
	case !a.IsValid():
		n.any4, n.any6 = p, p
	case a.IsUnspecified() && a.Is4():
		n.any4 = p
	case a.IsUnspecified():
		n.any6 = p
	default:
		n.exact = append(n.exact, p)
	}
	return &n
}

// minus returns a copy of s without p, or nil if nothing is left.
func (s *portSlot) minus(p *Port) *portSlot {
	n := portSlot{any4: s.any4, any6: s.any6}
	if n.any4 == p {
		n.any4 = nil
	}
	if n.any6 == p {
		n.any6 = nil
	}
	for _, q := range s.exact {
		if q != p {
			n.exact = append(n.exact, q)
		}
	}
	if n.any4 == nil && n.any6 == nil && len(n.exact) == 0 {
		return nil
	}
	return &n
}

// Bind opens a port whose datagrams are queued for Port.Recv. ap's
// address is the zero netip.Addr for every engine address, 0.0.0.0 or
// :: for every address of one family, or a single address (see Port).
// Port 0 picks a free ephemeral port from 49152-65535 (RFC 6335).
//
// Binding what is already bound fails with an error that wraps
// syscall.EADDRINUSE, as does binding a port a kernel socket holds on an
// address shared with the kernel; an address that is not the engine's
// fails with syscall.EADDRNOTAVAIL. On an engine that stopped by itself
// (Done) Bind fails with the reason (Err).
func (e *Engine) Bind(ap netip.AddrPort) (*Port, error) {
	return e.bind(ap, nil, 0)
}

// Handle opens a port whose datagrams go to h, called on the receive
// goroutine for each datagram with no queue in between: the fastest path,
// for handlers that answer at once and never block (see Handler).
func (e *Engine) Handle(ap netip.AddrPort, h Handler) (*Port, error) {
	if h == nil {
		return nil, errors.New("engine: Handle with a nil Handler")
	}
	return e.bind(ap, h, 0)
}

// HandleService opens a port answered by one of the built-in services
// (see Service), with the guards of Config.Guard.
func (e *Engine) HandleService(ap netip.AddrPort, s Service) (*Port, error) {
	h, err := e.serviceHandler(s)
	if err != nil {
		return nil, err
	}
	return e.bind(ap, h, s)
}

func (e *Engine) bind(ap netip.AddrPort, h Handler, svc Service) (*Port, error) {
	a := ap.Addr()
	if a.Is4In6() {
		a = a.Unmap()
	}
	a = a.WithZone("")
	bindErr := func(err error) error {
		return &net.OpError{Op: "bind", Net: "udp", Addr: udpAddr(a, ap.Port()), Err: err}
	}
	if a.IsValid() && !a.IsUnspecified() && e.addrs.find(a) == nil && !e.addrs.isGroup(a) {
		return nil, bindErr(os.NewSyscallError("bind", syscall.EADDRNOTAVAIL))
	}

	e.bindMu.Lock()
	defer e.bindMu.Unlock()
	if e.closed.Load() {
		return nil, bindErr(net.ErrClosed)
	}
	if err := e.Err(); err != nil {
		return nil, bindErr(err) // stopped by itself: nothing would arrive
	}
	t := e.table.Load()
	port := ap.Port()
	var res []io.Closer
	if port != 0 {
		if t.lookup(port).conflicts(a) {
			return nil, bindErr(os.NewSyscallError("bind", syscall.EADDRINUSE))
		}
		var err error
		if res, err = e.reserve(a, port); err != nil {
			return nil, bindErr(err)
		}
	} else {
		// Probe the dynamic range from a random start (RFC 6056
		// algorithm 1) for a port free here and, on shared addresses,
		// in the kernel.
		first, last := e.ephemeral[0], e.ephemeral[1]
		n := int(last) - int(first) + 1
		start := rand.IntN(n)
		for i := range n {
			p := first + uint16((start+i)%n)
			if t.lookup(p).conflicts(a) {
				continue
			}
			r, err := e.reserve(a, p)
			if errors.Is(err, syscall.EADDRINUSE) {
				continue
			}
			if err != nil {
				return nil, bindErr(err)
			}
			port, res = p, r
			break
		}
		if port == 0 {
			return nil, bindErr(os.NewSyscallError("bind", syscall.EADDRINUSE))
		}
	}

	p := &Port{
		e:            e,
		addr:         a,
		port:         port,
		handler:      h,
		service:      svc,
		bell:         queue.NewDoorbell(),
		recvSem:      make(chan struct{}, 1),
		done:         make(chan struct{}),
		stats:        make([]portStats, max(1, len(e.workers))),
		reservations: res,
	}
	if h == nil {
		q, err := newDatagramQueue(e.cfg.QueueDepth, len(e.workers) > 1)
		if err != nil {
			closeAll(res)
			return nil, bindErr(err)
		}
		p.q = q
		p.idle = p.nothingToRecv
		if !e.cfg.ZeroCopy {
			p.bufs = make(chan []byte, q.Cap())
			p.bufSize = max(e.mtu, frame.EthernetMTU)
		}
		p.big = make(chan []byte, min(q.Cap(), maxBigBufs))
	}
	e.table.Store(t.with(port, t.lookup(port).plus(p)))
	e.ports = append(e.ports, p)
	e.log.Debug("port bound", "local", p.String(), "service", svc.String(), "inline", h != nil)
	return p, nil
}

func newDatagramQueue(depth int, multi bool) (datagramQueue, error) {
	if multi {
		return queue.NewMPSC[Datagram](depth)
	}
	return queue.NewSPSC[Datagram](depth)
}

// reserve keeps the kernel quiet about port on the shared addresses that
// a covers (see reserveShared).
func (e *Engine) reserve(a netip.Addr, port uint16) ([]io.Closer, error) {
	var res []io.Closer
	if e.steerGroup != nil && a.IsValid() && e.addrs.isGroup(a) {
		c, err := e.steerGroup(netip.AddrPortFrom(a, port))
		if err != nil {
			return nil, err
		}
		res = append(res, c)
	}
	if e.reserveShared == nil {
		return res, nil
	}
	for i := range e.addrs.list {
		la := &e.addrs.list[i]
		if la.owned {
			continue
		}
		covered := !a.IsValid() || a == la.addr || a.IsUnspecified() && a.Is4() == la.addr.Is4()
		if !covered {
			continue
		}
		c, err := e.reserveShared(netip.AddrPortFrom(la.addr, port))
		if err != nil {
			closeAll(res)
			if errors.Is(err, syscall.EACCES) {
				err = fmt.Errorf("%w (%v is shared with the kernel, and holding a port below 1024 there takes CAP_NET_BIND_SERVICE)", err, la.addr)
			}
			return nil, err
		}
		res = append(res, c)
	}
	return res, nil
}

func closeAll(cs []io.Closer) error {
	var errs []error
	for _, c := range cs {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}

// unbind removes p from the table, waits until no worker can still be
// delivering to it, and releases what its queue holds.
func (e *Engine) unbind(p *Port) error {
	e.bindMu.Lock()
	t := e.table.Load()
	if s := t.lookup(p.port); s != nil {
		e.table.Store(t.with(p.port, s.minus(p)))
	}
	for i, q := range e.ports {
		if q == p {
			e.ports = append(e.ports[:i], e.ports[i+1:]...)
			break
		}
	}
	e.bindMu.Unlock()

	p.closed.Store(true)
	close(p.done)
	p.bell.Ring()
	e.mcast.dropPort(p) // as closing a socket leaves its groups
	e.quiesce()
	if p.q != nil {
		// Take the consumer's seat for good: a Recv still running
		// leaves at once (done is closed), and none can start.
		p.recvSem <- struct{}{}
		var buf [64]Datagram
		for {
			n := p.q.DequeueBatch(buf[:])
			if n == 0 {
				break
			}
			releaseAll(buf[:n])
		}
	}
	if err := closeAll(p.reservations); err != nil {
		return fmt.Errorf("engine: closing %s: %w", p, err)
	}
	return nil
}

// bufChunk is how many copy buffers a port allocates at once: few
// allocations while a port warms up, little memory for a quiet one.
const bufChunk = 32

// getBuf returns a buffer for a copied datagram of n bytes, or nil if the
// port's datagrams, queued or held by the application, already use all
// of its buffers (as many as its queue has slots). Called by workers.
func (p *Port) getBuf(n int) []byte {
	if n > p.bufSize || p.bufs == nil {
		// Larger than the link's MTU allows (reassembled from
		// fragments; GRO, a jumbo frame on a ring with room for it),
		// or any reassembled datagram for a ZeroCopy port.
		return p.getBigBuf(n)
	}
	select {
	case b := <-p.bufs:
		return b
	default:
	}
	for {
		have := p.nbufs.Load()
		k := min(int64(bufChunk), int64(cap(p.bufs))-have)
		if k <= 0 {
			return nil
		}
		if !p.nbufs.CompareAndSwap(have, have+k) {
			continue
		}
		chunk := make([]byte, int(k)*p.bufSize)
		for i := int64(1); i < k; i++ {
			p.bufs <- chunk[int(i)*p.bufSize : int(i+1)*p.bufSize : int(i+1)*p.bufSize]
		}
		return chunk[:p.bufSize:p.bufSize]
	}
}

// putBuf takes back a buffer getBuf handed out.
func (p *Port) putBuf(b []byte) {
	if cap(b) == bigBufSize {
		select {
		case p.big <- b[:bigBufSize]:
		default: // cannot happen: there are never more buffers than room
		}
		return
	}
	select {
	case p.bufs <- b[:p.bufSize]:
	default: // cannot happen: there are never more buffers than room
	}
}

// bigBufSize is the size of the buffers of datagrams longer than a
// port's MTU-sized ones: any UDP payload (65,527 bytes at most). It
// differs from every bufSize, so putBuf tells the two apart by capacity.
const bigBufSize = 1 << 16

// maxBigBufs bounds a port's big buffers (allocated as needed, then
// reused): a port holds at most 16 datagrams of 64 KiB at once, queued or
// in the application's hands (1 MiB), where a kernel socket's default
// receive buffer holds two or three. More are dropped as RcvbufErrors.
const maxBigBufs = 16

// getBigBuf returns a buffer of bigBufSize for a datagram of n bytes, or
// nil if the port's big buffers are all in use.
func (p *Port) getBigBuf(n int) []byte {
	if n > bigBufSize {
		return nil
	}
	select {
	case b := <-p.big:
		return b
	default:
	}
	if p.nbig.Add(1) > int64(cap(p.big)) {
		p.nbig.Add(-1)
		return nil
	}
	return make([]byte, bigBufSize)
}
