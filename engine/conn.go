package engine

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/net/ipv4"
)

// Conn is an engine port with the methods and the behaviour of a
// *net.UDPConn, so that code written for the standard library's UDP
// sockets (a DNS server, a QUIC stack) runs on the engine unchanged. It
// implements net.PacketConn and has UDPConn's allocation-free netip
// forms, and x/net/ipv4-style batches.
//
// What it shares with *net.UDPConn: *net.UDPAddr addresses; a datagram
// longer than the buffer is truncated to it and the rest discarded;
// deadlines as in net.Conn (a deadline in the past fails reads or writes
// at once, even with data queued, with an error that is a net.Error
// whose Timeout is true and that wraps os.ErrDeadlineExceeded; moving it
// to the future makes them work again); after Close every call fails
// with an error wrapping net.ErrClosed and a blocked ReadFrom returns at
// once; errors are *net.OpError naming the local address. Any number of
// goroutines may read and write at once.
//
// A Conn from DialUDP is connected, as one from net.DialUDP: Read and
// Write talk to the peer alone, RemoteAddr is it, WriteTo fails with
// net.ErrWriteToConnected, and a hard ICMP error about a datagram it sent
// (port unreachable: ECONNREFUSED, ...) fails its next Read or Write once,
// with Linux's errno. Datagrams of any size up to 65,507 bytes (65,527 over
// IPv6) are read and written whole, fragmented on the wire as needed.
//
// Where it differs (docs/ENGINE.md): a write blocks while the next hop is
// resolved with ARP or NDP (up to Config.ResolveWait) and the write
// deadline is checked when the write starts, not during that wait; the
// receive queue holds Config.QueueDepth datagrams rather than a byte
// count (SO_RCVBUF).
type Conn struct {
	p         *Port
	laddr     *net.UDPAddr
	dualStack bool // bound to every address of both families

	rd, wd deadline

	// Under p.recvSem, the one-reader semaphore of the port.
	scratch [maxReadBatch]Datagram

	wmu    sync.Mutex // guards wbatch
	wbatch []Message

	closeOnce sync.Once
}

// maxReadBatch bounds the datagrams one ReadBatch takes from the queue.
const maxReadBatch = 64

// ListenUDP binds a queued port (see Bind) and returns it as a Conn.
func (e *Engine) ListenUDP(ap netip.AddrPort) (*Conn, error) {
	p, err := e.Bind(ap)
	if err != nil {
		return nil, err
	}
	return newConn(p), nil
}

// DialUDP binds a queued port connected to raddr (Port.Connect) and
// returns it as a Conn, as net.DialUDP does a kernel socket: Read and
// Write exchange datagrams with raddr alone (ReadFrom returns raddr;
// WriteTo fails with net.ErrWriteToConnected); datagrams from anyone else
// never reach it; and a hard ICMP error about a datagram it sent (port
// unreachable: ECONNREFUSED, ...) fails its next Read or Write, once.
//
// laddr may leave out the address (then the engine address of raddr's
// family whose prefix holds raddr, as the kernel picks a source at
// connect) and the port (then an ephemeral one). Like connect(2) it sends
// nothing: the next hop is resolved by the first Write.
func (e *Engine) DialUDP(laddr, raddr netip.AddrPort) (*Conn, error) {
	ra := raddr.Addr().Unmap().WithZone("")
	dialErr := func(err error) error {
		oe := &net.OpError{Op: "dial", Net: "udp", Err: err}
		if raddr.IsValid() {
			oe.Addr = net.UDPAddrFromAddrPort(raddr)
		}
		return oe
	}
	if !ra.IsValid() || ra.IsUnspecified() || raddr.Port() == 0 {
		return nil, dialErr(errMissingAddress)
	}
	la := laddr.Addr().Unmap()
	if !la.IsValid() || la.IsUnspecified() {
		src, ok := e.addrs.source(ra)
		if !ok {
			return nil, dialErr(os.NewSyscallError("connect", syscall.ENETUNREACH))
		}
		la = src
	}
	p, err := e.Bind(netip.AddrPortFrom(la, laddr.Port()))
	if err != nil {
		return nil, err
	}
	if err := p.Connect(netip.AddrPortFrom(ra, raddr.Port())); err != nil {
		p.Close()
		return nil, dialErr(err)
	}
	return newConn(p), nil
}

func newConn(p *Port) *Conn {
	c := &Conn{p: p}
	a := p.addr
	if !a.IsValid() {
		a = netip.IPv6Unspecified() // both families, as "[::]:port" is for a kernel socket
		c.dualStack = true
	}
	c.laddr = net.UDPAddrFromAddrPort(netip.AddrPortFrom(a, p.port))
	c.rd.init()
	c.wd.init()
	return c
}

// Port returns the engine port underneath.
func (c *Conn) Port() *Port { return c.p }

// LocalAddr returns the bound address, a *net.UDPAddr.
func (c *Conn) LocalAddr() net.Addr { return c.laddr }

// Close unbinds the port. A blocked read returns at once; later calls
// fail with an error wrapping net.ErrClosed, as does a second Close.
func (c *Conn) Close() error {
	err := net.ErrClosed
	c.closeOnce.Do(func() { err = c.p.Close() })
	if err != nil {
		return c.opError("close", nil, err)
	}
	return nil
}

// SetDeadline sets the read and the write deadline.
func (c *Conn) SetDeadline(t time.Time) error {
	if c.isClosed() {
		return c.opError("set", nil, net.ErrClosed)
	}
	c.rd.set(t)
	c.wd.set(t)
	return nil
}

// SetReadDeadline sets the deadline for reads, pending ones included. The
// zero time means none.
func (c *Conn) SetReadDeadline(t time.Time) error {
	if c.isClosed() {
		return c.opError("set", nil, net.ErrClosed)
	}
	c.rd.set(t)
	return nil
}

// SetWriteDeadline sets the deadline for writes. The zero time means none.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	if c.isClosed() {
		return c.opError("set", nil, net.ErrClosed)
	}
	c.wd.set(t)
	return nil
}

// ReadFrom reads one datagram into b and returns its length (at most
// len(b)) and its sender, a *net.UDPAddr.
func (c *Conn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, ap, err := c.ReadFromUDPAddrPort(b)
	if err != nil {
		return n, nil, err
	}
	return n, net.UDPAddrFromAddrPort(ap), nil
}

// ReadFromUDP is ReadFrom with the sender as a *net.UDPAddr.
func (c *Conn) ReadFromUDP(b []byte) (int, *net.UDPAddr, error) {
	n, ap, err := c.ReadFromUDPAddrPort(b)
	if err != nil {
		return n, nil, err
	}
	return n, net.UDPAddrFromAddrPort(ap), nil
}

// ReadErrors moves the ICMP errors about datagrams the conn sent into es
// and returns how many (Port.ReadErrors): what a kernel socket with
// IP_RECVERR reads with MSG_ERRQUEUE. It never waits.
func (c *Conn) ReadErrors(es []ICMPError) int { return c.p.ReadErrors(es) }

// RemoteAddr returns the peer of a connected conn (DialUDP), a
// *net.UDPAddr, or nil.
func (c *Conn) RemoteAddr() net.Addr {
	if peer := c.p.Peer(); peer.IsValid() {
		return net.UDPAddrFromAddrPort(peer)
	}
	return nil
}

// Read reads one datagram into b, as ReadFrom without the sender: on a
// connected conn, from its peer.
func (c *Conn) Read(b []byte) (int, error) {
	ds, err := c.receive(1, "read")
	if err != nil {
		return 0, err
	}
	defer c.endReceive(ds)
	return copy(b, ds[0].Payload), nil
}

// Write sends b to the peer of a connected conn (DialUDP); on one that is
// not connected it fails with EDESTADDRREQ, as on a kernel socket.
func (c *Conn) Write(b []byte) (int, error) {
	if err := c.writable(); err != nil {
		return 0, err
	}
	peer := c.p.Peer()
	if !peer.IsValid() {
		return 0, c.opError("write", nil, os.NewSyscallError("write", syscall.EDESTADDRREQ))
	}
	if errno := c.p.takeError(); errno != 0 {
		return 0, c.opError("write", nil, os.NewSyscallError("write", errno))
	}
	if err := c.p.Send(peer, b); err != nil {
		return 0, err
	}
	return len(b), nil
}

// ReadFromUDPAddrPort is ReadFrom with the sender as a netip.AddrPort. It
// does not allocate.
func (c *Conn) ReadFromUDPAddrPort(b []byte) (int, netip.AddrPort, error) {
	ds, err := c.receive(1, "recvfrom")
	if err != nil {
		return 0, netip.AddrPort{}, err
	}
	defer c.endReceive(ds)
	d := &ds[0]
	return copy(b, d.Payload), c.sender(d), nil
}

// sender returns d's source as a kernel socket bound as c is reports it:
// an IPv4 sender of a conn bound to both families ("[::]") as an
// IPv4-mapped IPv6 address.
func (c *Conn) sender(d *Datagram) netip.AddrPort {
	if c.dualStack && d.Src.Addr().Is4() {
		return netip.AddrPortFrom(netip.AddrFrom16(d.Src.Addr().As16()), d.Src.Port())
	}
	return d.Src
}

// ReadBatch reads at least one datagram, waiting if none is queued, and
// as many more as are queued, up to len(ms), as x/net/ipv4's
// PacketConn.ReadBatch does: each datagram is scattered over the
// message's Buffers, N is its length there, Addr its sender (a
// *net.UDPAddr, reused if the message has one) and Flags has MSG_TRUNC
// if it did not fit. flags must be 0.
func (c *Conn) ReadBatch(ms []ipv4.Message, flags int) (int, error) {
	if flags != 0 {
		return 0, c.opError("read", nil, syscall.EOPNOTSUPP)
	}
	ds, err := c.receive(min(len(ms), maxReadBatch), "recvmmsg")
	if err != nil {
		return 0, err
	}
	defer c.endReceive(ds)
	for i := range ds {
		d, m := &ds[i], &ms[i]
		rest := d.Payload
		m.N, m.NN, m.Flags = 0, 0, 0
		for _, buf := range m.Buffers {
			k := copy(buf, rest)
			m.N += k
			rest = rest[k:]
		}
		if len(rest) > 0 {
			m.Flags = syscall.MSG_TRUNC
		}
		if ua, ok := m.Addr.(*net.UDPAddr); ok && ua != nil {
			setUDPAddr(ua, c.sender(d))
		} else {
			m.Addr = net.UDPAddrFromAddrPort(c.sender(d))
		}
	}
	return len(ds), nil
}

// setUDPAddr overwrites ua with ap, reusing its IP's memory.
func setUDPAddr(ua *net.UDPAddr, ap netip.AddrPort) {
	a := ap.Addr()
	if a.Is4() {
		b := a.As4()
		ua.IP = append(ua.IP[:0], b[:]...)
	} else {
		// Also an IPv4-mapped address, 16 bytes as the kernel gives it.
		b := a.As16()
		ua.IP = append(ua.IP[:0], b[:]...)
	}
	ua.Port, ua.Zone = int(ap.Port()), a.Zone()
}

// receive waits for up to n datagrams (n >= 1), within the read deadline,
// and returns them in c.scratch. Readers take turns on the port's
// one-reader semaphore: a reader that got datagrams holds it until it
// calls endReceive. A pending ICMP error of a connected conn fails it
// first, even with datagrams queued, as Linux's __skb_recv_udp does; the
// failure names syscallName.
func (c *Conn) receive(n int, syscallName string) ([]Datagram, error) {
	p := c.p
	expired := c.rd.expired()
	if c.isClosed() {
		return nil, c.opError("read", nil, net.ErrClosed)
	}
	if p.q == nil {
		return nil, c.opError("read", nil, ErrInline)
	}
	select {
	case p.recvSem <- struct{}{}:
	case <-p.done:
		return nil, c.opError("read", nil, net.ErrClosed)
	case <-expired:
		return nil, c.opError("read", nil, os.ErrDeadlineExceeded)
	}
	for {
		// As the standard library: a closed conn or a passed deadline
		// fails the read even with datagrams queued.
		var err error
		select {
		case <-p.done:
			err = net.ErrClosed
		case <-expired:
			err = os.ErrDeadlineExceeded
		default:
		}
		if err == nil {
			if errno := p.takeError(); errno != 0 {
				err = os.NewSyscallError(syscallName, errno)
			} else if k := p.q.DequeueBatch(c.scratch[:n]); k > 0 {
				return c.scratch[:k], nil
			} else if p.bell.Wait(doneContext{expired}, p.idle) != nil {
				err = os.ErrDeadlineExceeded
			}
		}
		if err != nil {
			<-p.recvSem
			return nil, c.opError("read", nil, err)
		}
		expired = c.rd.expired() // the deadline may have moved while we slept
	}
}

// endReceive releases what receive returned, and lets the next reader in.
func (c *Conn) endReceive(ds []Datagram) {
	releaseAll(ds)
	<-c.p.recvSem
}

// WriteTo sends b to addr, a *net.UDPAddr.
func (c *Conn) WriteTo(b []byte, addr net.Addr) (int, error) {
	ua, ok := addr.(*net.UDPAddr)
	if !ok || ua == nil {
		return 0, c.opError("write", addr, syscall.EINVAL)
	}
	return c.WriteToUDP(b, ua)
}

// WriteToUDP sends b to addr.
func (c *Conn) WriteToUDP(b []byte, addr *net.UDPAddr) (int, error) {
	if addr == nil {
		return 0, c.opError("write", nil, errMissingAddress)
	}
	return c.WriteToUDPAddrPort(b, addr.AddrPort())
}

// WriteToUDPAddrPort sends b to addr. It does not allocate once the next
// hop is known. On a connected conn it fails with
// net.ErrWriteToConnected, as the standard library's does.
func (c *Conn) WriteToUDPAddrPort(b []byte, addr netip.AddrPort) (int, error) {
	if err := c.writable(); err != nil {
		return 0, err
	}
	if c.p.peer.Load() != nil {
		return 0, c.opError("write", net.UDPAddrFromAddrPort(addr), net.ErrWriteToConnected)
	}
	if err := c.p.Send(addr, b); err != nil {
		return 0, err
	}
	return len(b), nil
}

// WriteBatch sends the messages in order with one system call, as
// x/net/ipv4's PacketConn.WriteBatch does: each message is the
// concatenation of its Buffers, sent to its Addr (a *net.UDPAddr). It
// returns how many were sent. flags must be 0.
func (c *Conn) WriteBatch(ms []ipv4.Message, flags int) (int, error) {
	if flags != 0 {
		return 0, c.opError("write", nil, syscall.EOPNOTSUPP)
	}
	if err := c.writable(); err != nil {
		return 0, err
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	batch := c.wbatch[:0]
	for i := range ms {
		m := &ms[i]
		ua, ok := m.Addr.(*net.UDPAddr)
		if !ok || ua == nil {
			return 0, c.opError("write", m.Addr, syscall.EINVAL)
		}
		var payload []byte
		switch len(m.Buffers) {
		case 0:
		case 1:
			payload = m.Buffers[0]
		default:
			for _, b := range m.Buffers {
				payload = append(payload, b...)
			}
		}
		m.N = len(payload)
		batch = append(batch, Message{To: ua.AddrPort(), Payload: payload})
	}
	c.wbatch = batch
	n, err := c.p.SendBatch(batch)
	clear(batch)
	return n, err
}

// writable fails a write on a closed conn or past the write deadline.
func (c *Conn) writable() error {
	if c.isClosed() {
		return c.opError("write", nil, net.ErrClosed)
	}
	select {
	case <-c.wd.expired():
		return c.opError("write", nil, os.ErrDeadlineExceeded)
	default:
		return nil
	}
}

func (c *Conn) isClosed() bool {
	select {
	case <-c.p.done:
		return true
	default:
		return false
	}
}

var errMissingAddress = errors.New("missing address")

// opError is the error a *net.UDPConn returns for op: about addr, or
// the peer of a connected conn.
func (c *Conn) opError(op string, addr net.Addr, err error) error {
	if addr == nil {
		if peer := c.p.Peer(); peer.IsValid() {
			addr = net.UDPAddrFromAddrPort(peer)
		}
	}
	return &net.OpError{Op: op, Net: "udp", Source: c.laddr, Addr: addr, Err: err}
}

// deadline is a read or write deadline: a channel closed when it passes,
// replaced when it is moved. (The standard library's net.Pipe works the
// same way.)
type deadline struct {
	mu     sync.Mutex
	timer  *time.Timer
	passed chan struct{} // closed once the deadline has passed
}

func (d *deadline) init() { d.passed = make(chan struct{}) }

// set moves the deadline to t; the zero t means none.
func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil && !d.timer.Stop() {
		<-d.passed // the timer fired: wait until it has closed passed
	}
	d.timer = nil
	closed := isClosedChan(d.passed)
	if t.IsZero() {
		if closed {
			d.passed = make(chan struct{})
		}
		return
	}
	if dur := time.Until(t); dur > 0 {
		if closed {
			d.passed = make(chan struct{})
		}
		ch := d.passed
		d.timer = time.AfterFunc(dur, func() { close(ch) })
		return
	}
	if !closed {
		close(d.passed)
	}
}

// expired returns the channel that is closed once the deadline passes.
func (d *deadline) expired() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.passed
}

func isClosedChan(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// doneContext is a context that ends when its channel is closed. It is a
// single pointer, so turning it into a context.Context does not allocate.
type doneContext struct{ done <-chan struct{} }

func (c doneContext) Deadline() (time.Time, bool) { return time.Time{}, false }
func (c doneContext) Done() <-chan struct{}       { return c.done }
func (c doneContext) Value(any) any               { return nil }
func (c doneContext) Err() error {
	select {
	case <-c.done:
		return context.DeadlineExceeded
	default:
		return nil
	}
}

var (
	_ net.PacketConn = (*Conn)(nil)
	_ net.Conn       = (*Conn)(nil)
)
