package engine

import (
	"net"
	"net/netip"
	"os"
	"syscall"

	"github.com/pktengine/pktengine/frame"
)

// Message is one datagram for Port.SendBatch.
type Message struct {
	// To is the destination, as for Port.Send.
	To netip.AddrPort
	// Payload is the UDP data.
	Payload []byte
	// InReplyTo, if set, makes the message a reply to that datagram, as
	// Port.Reply sends it, and To is ignored.
	InReplyTo *Datagram
}

// Send sends payload to to from the port. The source address is the
// port's own if it is bound to one unicast address, else the engine
// address of to's family whose prefix holds to (else the first one).
// A payload longer than the path MTU to to allows leaves as IPv4
// fragments (without DF) or IPv6 fragments; one longer than a UDP
// datagram can carry (65,507 bytes over IPv4, 65,527 over IPv6) fails
// with an error wrapping EMSGSIZE and nothing is sent. On a connected
// port (Connect), a hard ICMP error about an earlier datagram fails the
// next send with its errno (ECONNREFUSED, ...) and clears it.
// The next hop's MAC address comes from the neighbour table; an unknown
// neighbour is resolved with ARP or NDP first, which may take up to
// Config.ResolveWait. The frame is handed to the kernel before Send
// returns, with one system call; SendBatch shares that call among many.
func (p *Port) Send(to netip.AddrPort, payload []byte) error {
	ms := [1]Message{{To: to, Payload: payload}}
	_, err := p.SendBatch(ms[:])
	return err
}

// Reply sends payload to d's sender from the address and port d was sent
// to, to the MAC address d came from, on d's VLANs: no neighbour lookup.
// d may already be released; only its addresses are used.
func (p *Port) Reply(d *Datagram, payload []byte) error {
	ms := [1]Message{{Payload: payload, InReplyTo: d}}
	_, err := p.SendBatch(ms[:])
	return err
}

// SendBatch sends the messages in order and hands them to the kernel with
// one system call (more only if they outnumber the TX ring's slots, or a
// neighbour must be resolved on the way). It returns how many were sent
// and the error that stopped it.
func (p *Port) SendBatch(ms []Message) (int, error) {
	e := p.e
	if errno := p.takeError(); errno != 0 && len(ms) > 0 {
		// A hard ICMP error about an earlier datagram of a connected
		// port: this send reports it, as a kernel socket's does.
		return 0, p.sendError(p.Peer(), os.NewSyscallError("sendto", errno))
	}
	e.txMu.Lock()
	defer e.txMu.Unlock()
	sent := 0
	var err error
	for i := range ms {
		m := &ms[i]
		if m.InReplyTo != nil {
			d := m.InReplyTo
			s := &e.txSpec
			if err = e.replySpec(s, d, m.Payload); err == nil {
				err = e.sendSpecLocked(s)
			}
			s.VLANs, s.Payload = nil, nil
			if err != nil {
				err = p.sendError(d.Src, err)
				break
			}
		} else if err = p.sendLocked(m.To, m.Payload); err != nil {
			break
		}
		sent++
	}
	if ferr := e.flushLocked(); ferr != nil && err == nil {
		err = p.sendError(netip.AddrPort{}, ferr)
	}
	p.appOut.Add(uint64(sent))
	e.appOut.Add(uint64(sent))
	return sent, err
}

// sendLocked builds and commits one datagram to to. If the next hop must
// be resolved, it flushes what is pending and lets go of txMu meanwhile.
func (p *Port) sendLocked(to netip.AddrPort, payload []byte) error {
	e := p.e
	dst := to.Addr().Unmap()
	to = netip.AddrPortFrom(dst, to.Port())
	if !dst.IsValid() || dst.IsUnspecified() || to.Port() == 0 {
		return p.sendError(to, os.NewSyscallError("sendto", syscall.EINVAL))
	}
	src := p.addr
	if !src.IsValid() || src.IsUnspecified() || e.addrs.find(src) == nil {
		var ok bool
		if src, ok = e.addrs.source(dst); !ok {
			return p.sendError(to, errNoSource)
		}
	}
	if src.Is4() != dst.Is4() {
		return p.sendError(to, os.NewSyscallError("sendto", syscall.EAFNOSUPPORT))
	}
	if len(payload) > maxUDPPayload(src) {
		return p.sendError(to, errTooBig)
	}
	mac, ok := e.nextHopKnown(dst)
	if !ok {
		if err := e.flushLocked(); err != nil {
			return p.sendError(to, err)
		}
		e.txMu.Unlock()
		var err error
		mac, err = e.nextHopMAC(dst, src)
		e.txMu.Lock()
		if err != nil {
			return p.sendError(to, err)
		}
	}
	s := &e.txSpec
	*s = frame.UDPSpec{
		SrcMAC:  e.mac,
		DstMAC:  mac,
		VLANs:   e.linkVLANs, // Config.VLAN's tag
		Src:     netip.AddrPortFrom(src, p.port),
		Dst:     to,
		TTL:     e.cfg.TTL,
		Payload: payload,
	}
	err := e.sendSpecLocked(s)
	s.Payload = nil
	if err != nil {
		return p.sendError(to, err)
	}
	return nil
}

func (p *Port) sendError(to netip.AddrPort, err error) error {
	oe := &net.OpError{Op: "write", Net: "udp", Source: udpAddr(p.addr, p.port), Err: err}
	if to.IsValid() {
		oe.Addr = net.UDPAddrFromAddrPort(to)
	}
	return oe
}
