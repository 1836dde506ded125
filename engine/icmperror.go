package engine

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/pktengine/pktengine/frame"
	"github.com/pktengine/pktengine/proto"
)

// ICMP errors to the sender. An ICMP or ICMPv6 error that quotes a UDP
// datagram one of the engine's ports sent is handed to that port, as
// Linux's __udp4_lib_err and __udp6_lib_err hand it to the socket: a port
// connected to one peer fails its next receive (or send) with the error's
// errno if Linux counts the error as hard, and every port keeps the
// errors in a small queue that ReadErrors drains, like a socket with
// IP_RECVERR. Fragmentation Needed and Packet Too Big also lower the path
// MTU to the quoted destination (pmtu.go).

// ICMPError is an ICMP or ICMPv6 error message about a datagram a port
// sent: what Linux's IP_RECVERR reports in a sock_extended_err, and the
// start of the datagram.
type ICMPError struct {
	// Errno is what Linux's UDP makes of the message: ECONNREFUSED for a
	// port unreachable, EHOSTUNREACH for a host unreachable or a time
	// exceeded, EMSGSIZE for Fragmentation Needed or Packet Too Big, ...
	// (frame.ICMPv4ErrorErrno, frame.ICMPv6ErrorErrno). On Linux
	// errors.Is matches it with the syscall.Errno of the same name.
	Errno frame.Errno
	// Fatal is Linux's "hard error": only those fail a connected
	// port's next receive (RFC 1122 4.1.3.3: net and host unreachable
	// and time exceeded are transient).
	Fatal bool
	// Type and Code are the message's, IPv4 or IPv6 by the addresses.
	Type, Code uint8
	// Info is the next-hop MTU of a Fragmentation Needed, the MTU of a
	// Packet Too Big, the pointer of a Parameter Problem; else 0.
	Info uint32
	// From is the node that sent the message (a router, or the peer).
	From netip.Addr
	// Src is the address and port the datagram was sent from, Dst where
	// it was going.
	Src, Dst netip.AddrPort
	// Time is when the message arrived.
	Time time.Time

	header    [maxErrorHeader]byte
	headerLen uint8
}

// maxErrorHeader bounds the part of the offending datagram an ICMPError
// keeps: its IP header (with options or extension headers), its UDP
// header and the start of its data.
const maxErrorHeader = 128

// Header returns the start of the offending datagram as the message
// quoted it, from its IP header on: its IP and UDP headers and as much
// of its data as the message carried, up to 128 bytes in all.
func (e *ICMPError) Header() []byte { return e.header[:e.headerLen] }

// Error says what happened in Linux's words: "connection refused (ICMP
// port unreachable from 198.18.0.2 for 198.18.0.2:9)".
func (e *ICMPError) Error() string {
	return fmt.Sprintf("%v (%s from %v for %v)", e.Errno, e.Kind(), e.From, e.Dst)
}

// Unwrap returns Errno, so that errors.Is(err, syscall.ECONNREFUSED)
// works on an ICMPError.
func (e *ICMPError) Unwrap() error { return e.Errno }

// Kind names the message: "ICMP port unreachable", "ICMPv6 packet too
// big", ...
func (e *ICMPError) Kind() string {
	if e.Src.Addr().Is4() {
		switch e.Type {
		case frame.ICMPv4DestUnreachable:
			if int(e.Code) < len(icmpv4UnreachNames) {
				return "ICMP " + icmpv4UnreachNames[e.Code]
			}
			return fmt.Sprintf("ICMP destination unreachable code %d", e.Code)
		case frame.ICMPv4TimeExceeded:
			return "ICMP time exceeded"
		case frame.ICMPv4ParameterProblem:
			return "ICMP parameter problem"
		}
		return fmt.Sprintf("ICMP type %d code %d", e.Type, e.Code)
	}
	switch e.Type {
	case frame.ICMPv6DestUnreachable:
		if int(e.Code) < len(icmpv6UnreachNames) {
			return "ICMPv6 " + icmpv6UnreachNames[e.Code]
		}
		return fmt.Sprintf("ICMPv6 destination unreachable code %d", e.Code)
	case frame.ICMPv6PacketTooBig:
		return "ICMPv6 packet too big"
	case frame.ICMPv6TimeExceeded:
		return "ICMPv6 time exceeded"
	case frame.ICMPv6ParameterProblem:
		return "ICMPv6 parameter problem"
	}
	return fmt.Sprintf("ICMPv6 type %d code %d", e.Type, e.Code)
}

var icmpv4UnreachNames = [...]string{
	"net unreachable", "host unreachable", "protocol unreachable", "port unreachable",
	"fragmentation needed", "source route failed", "destination network unknown",
	"destination host unknown", "source host isolated", "network administratively prohibited",
	"host administratively prohibited", "network unreachable for TOS", "host unreachable for TOS",
	"communication administratively prohibited", "host precedence violation", "precedence cutoff in effect",
}

var icmpv6UnreachNames = [...]string{
	"no route to destination", "communication administratively prohibited", "beyond scope of source address",
	"address unreachable", "port unreachable", "source address failed policy", "reject route to destination",
}

// maxPortErrors is how many ICMP errors a port keeps for ReadErrors;
// when it is full the oldest goes. Linux bounds a socket's error queue by
// its receive buffer.
const maxPortErrors = 16

// portErrors is a port's queue of ICMP errors.
type portErrors struct {
	mu      sync.Mutex
	q       [maxPortErrors]ICMPError
	head, n int
}

func (q *portErrors) push(e *ICMPError) {
	q.mu.Lock()
	if q.n == len(q.q) {
		q.head = (q.head + 1) % len(q.q)
		q.n--
	}
	q.q[(q.head+q.n)%len(q.q)] = *e
	q.n++
	q.mu.Unlock()
}

// ReadErrors moves the ICMP errors the port has received about datagrams
// it sent into es, oldest first, and returns how many; 0 if there are
// none. It never waits. Each is delivered once; a port keeps the last 16.
// This is the engine's IP_RECVERR: every port has it, connected or not.
func (p *Port) ReadErrors(es []ICMPError) int {
	q := &p.errs
	q.mu.Lock()
	defer q.mu.Unlock()
	n := min(len(es), q.n)
	for i := range n {
		es[i] = q.q[q.head]
		q.head = (q.head + 1) % len(q.q)
	}
	q.n -= n
	return n
}

// Connect connects the port to one peer, as connect(2) does a UDP
// socket: datagrams from anyone else are no longer delivered to it (they
// are handled as for an unbound port: NoPorts and an ICMP port
// unreachable on an owned address), and a hard ICMP error about a
// datagram it sent to the peer (port unreachable: ECONNREFUSED, ...)
// fails its next receive or send, as a connected kernel socket's does.
// The zero AddrPort disconnects. An IPv4-mapped address is taken as
// IPv4.
func (p *Port) Connect(peer netip.AddrPort) error {
	if !peer.IsValid() {
		p.peer.Store(nil)
		p.pendingErr.Store(0)
		return nil
	}
	a := peer.Addr().Unmap().WithZone("")
	if a.IsUnspecified() || peer.Port() == 0 {
		return p.opError("connect", os.NewSyscallError("connect", syscall.EINVAL))
	}
	if l := p.addr; l.IsValid() && l.Is4() != a.Is4() {
		return p.opError("connect", os.NewSyscallError("connect", syscall.EAFNOSUPPORT))
	}
	ap := netip.AddrPortFrom(a, peer.Port())
	p.peer.Store(&ap)
	p.pendingErr.Store(0)
	return nil
}

// Peer returns the peer the port is connected to, or the zero AddrPort.
func (p *Port) Peer() netip.AddrPort {
	if c := p.peer.Load(); c != nil {
		return *c
	}
	return netip.AddrPort{}
}

// refuses reports whether pt is connected to a peer other than the
// sender of the datagram p describes: a connected kernel socket is not
// found for it.
func (pt *Port) refuses(p *frame.Packet, f []byte) bool {
	c := pt.peer.Load()
	return c != nil && *c != p.Src(f)
}

// takeError returns and clears the error a hard ICMP error left for a
// connected port (Linux's sock_error), or 0.
func (p *Port) takeError() frame.Errno {
	if p.pendingErr.Load() == 0 {
		return 0
	}
	return frame.Errno(p.pendingErr.Swap(0))
}

// icmpError4 handles an ICMP error message to one of the engine's
// addresses. It reports false if the message is no error (a ping).
func (w *worker) icmpError4() bool {
	in := &w.in
	p, f := &in.pkt, in.data
	msg := p.ICMPv4(f)
	switch msg.Type() {
	case frame.ICMPv4DestUnreachable, frame.ICMPv4TimeExceeded, frame.ICMPv4ParameterProblem:
	default:
		return false
	}
	w.count[cICMPErrorsIn]++
	if p.VerifyIPv4HeaderChecksum(f) != frame.ReasonOK || !msg.IsChecksumValid() {
		w.count[cICMPErrorsInvalid]++
		return true
	}
	ue, err := frame.ParseICMPv4Error(msg)
	if err != nil {
		w.count[cICMPErrorsInvalid]++
		return true
	}
	w.deliverError(&ue, p.SrcAddr(f))
	return true
}

// icmpError6 handles an ICMPv6 error message (types 1 to 127) to one of
// the engine's addresses; its checksum has been checked.
func (w *worker) icmpError6(msg frame.ICMPv6) {
	in := &w.in
	w.count[cICMPErrorsIn]++
	ue, err := frame.ParseICMPv6Error(msg)
	if err != nil {
		w.count[cICMPErrorsInvalid]++
		return
	}
	w.deliverError(&ue, in.pkt.SrcAddr(in.data))
}

// deliverError hands an ICMP error about a UDP datagram to the port that
// sent it: the quoted source must be one of the engine's addresses and a
// port bound there (a connected port only for its peer), as Linux's
// socket lookup requires. A hard error sets a connected port's pending
// error; Fragmentation Needed and Packet Too Big lower the path MTU.
func (w *worker) deliverError(ue *frame.UDPError, from netip.Addr) {
	e := w.e
	src := ue.Src.Addr()
	var pt *Port
	if e.addrs.find(src) != nil {
		if slot := e.table.Load().lookup(ue.Src.Port()); slot != nil {
			pt = slot.match(src)
		}
	}
	if pt != nil {
		if c := pt.peer.Load(); c != nil && *c != ue.Dst {
			pt = nil
		}
	}
	if pt == nil {
		w.count[cICMPErrorsUnmatched]++
		return
	}
	if ue.Errno == frame.EMSGSIZE {
		if e.pmtu.update(ue.Dst.Addr(), int(ue.Info), e.mtu, w.in.now) {
			w.count[cPMTUUpdates]++
		}
	}
	ie := ICMPError{
		Errno: ue.Errno, Fatal: ue.Fatal, Type: ue.Type, Code: ue.Code, Info: ue.Info,
		From: from, Src: ue.Src, Dst: ue.Dst, Time: time.Unix(0, w.in.now),
	}
	ie.headerLen = uint8(copy(ie.header[:], ue.Quote))
	pt.errs.push(&ie)
	if ue.Fatal && pt.peer.Load() != nil {
		pt.pendingErr.Store(uint32(ue.Errno))
		pt.bell.Ring()
	}
	w.count[cICMPErrorsDelivered]++
}

// isICMPError reports whether the upper-layer message at b (protocol
// proto) is an ICMP or ICMPv6 error, which no ICMP error may answer (RFC
// 1122 3.2.2, RFC 4443 2.4 (e)).
func isICMPError(protocol uint8, b []byte) bool {
	if len(b) == 0 {
		return false
	}
	switch protocol {
	case proto.IPProtoICMP:
		switch b[0] {
		case frame.ICMPv4DestUnreachable, frame.ICMPv4SourceQuench, frame.ICMPv4Redirect,
			frame.ICMPv4TimeExceeded, frame.ICMPv4ParameterProblem:
			return true
		}
	case proto.IPProtoICMPv6:
		return b[0] < 128
	}
	return false
}

// errnoError is the error a connected port's operation fails with after
// a hard ICMP error: Linux's errno, in the *net.OpError a kernel socket's
// would be in.
func errnoError(op, syscallName string, laddr, raddr net.Addr, errno frame.Errno) error {
	return &net.OpError{Op: op, Net: "udp", Source: laddr, Addr: raddr, Err: os.NewSyscallError(syscallName, errno)}
}
