package engine

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"

	"github.com/pktengine/pktengine/frame"
	"github.com/pktengine/pktengine/proto"
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
	e.txMu.Lock()
	defer e.txMu.Unlock()
	sent := 0
	var err error
	for i := range ms {
		m := &ms[i]
		if m.InReplyTo != nil {
			d := m.InReplyTo
			e.txID++
			id := e.txID
			err = e.commitLocked(func(buf []byte) (int, error) {
				return e.buildReply(buf, &e.txSpec, d, m.Payload, id)
			})
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
	if e.ipLen(src, len(payload)) > e.mtu {
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
	e.txID++
	*s = frame.UDPSpec{
		SrcMAC:  e.mac,
		DstMAC:  mac,
		Src:     netip.AddrPortFrom(src, p.port),
		Dst:     to,
		TTL:     e.cfg.TTL,
		ID:      e.txID,
		Payload: payload,
	}
	err := e.commitLocked(func(buf []byte) (int, error) { return frame.BuildUDP(buf, s) })
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

// commitLocked builds one frame into the shared TX ring and commits it;
// flushLocked hands the committed frames to the kernel. e.txMu must be
// held.
func (e *Engine) commitLocked(build func([]byte) (int, error)) error {
	if e.tx == nil {
		return net.ErrClosed
	}
	buf, err := e.tx.Next(e.ctx)
	if err != nil {
		e.appSndbufErrors.Add(1)
		if e.ctx.Err() != nil {
			return net.ErrClosed
		}
		return errNoBuffer
	}
	n, err := build(buf)
	if err == nil {
		err = e.tx.Commit(n)
	}
	if err != nil {
		e.appTXErrors.Add(1)
		return err
	}
	e.appTXFrames.Add(1)
	e.txPending = true
	return nil
}

func (e *Engine) flushLocked() error {
	if !e.txPending || e.tx == nil {
		return nil
	}
	e.txPending = false
	if err := e.tx.Flush(); err != nil {
		e.appTXErrors.Add(1)
		return err
	}
	return nil
}

// nextHopKnown returns the MAC address a datagram to dst goes to if it
// needs no resolution.
func (e *Engine) nextHopKnown(dst netip.Addr) (frame.MAC, bool) {
	if e.addrs.isBroadcast(dst) {
		return frame.BroadcastMAC, true
	}
	if mac, ok := multicastMAC(dst); ok {
		return mac, true
	}
	nh := dst
	if !e.addrs.onLink(dst) {
		nh = e.cfg.Gateway6
		if dst.Is4() {
			nh = e.cfg.Gateway4
		}
	}
	mac, updated, ok := e.neigh.lookup(nh)
	if !ok || time.Now().UnixNano()-updated > int64(e.cfg.NeighborTTL) {
		return frame.MAC{}, false
	}
	return mac, true
}

// nextHopMAC returns the MAC address a datagram to dst goes to.
func (e *Engine) nextHopMAC(dst, src netip.Addr) (frame.MAC, error) {
	if e.addrs.isBroadcast(dst) {
		return frame.BroadcastMAC, nil
	}
	if mac, ok := multicastMAC(dst); ok {
		return mac, nil
	}
	nh := dst
	if !e.addrs.onLink(dst) {
		nh = e.cfg.Gateway6
		if dst.Is4() {
			nh = e.cfg.Gateway4
		}
		if !nh.IsValid() {
			return frame.MAC{}, os.NewSyscallError("sendto", syscall.ENETUNREACH)
		}
	}
	return e.resolve(nh, src)
}

// resolve returns the MAC address of the on-link neighbour nh, soliciting
// it with ARP or NDP (from src) if it is unknown or due for confirmation.
func (e *Engine) resolve(nh, src netip.Addr) (frame.MAC, error) {
	now := time.Now()
	wait := e.cfg.ResolveWait
	retry := max(wait/3, time.Millisecond)
	if mac, updated, ok := e.neigh.lookup(nh); ok {
		if now.UnixNano()-updated > int64(e.cfg.NeighborTTL) {
			// Use it, but ask again: the answer refreshes it.
			if _, solicit := e.neigh.want(nh, now.UnixNano(), int64(retry)); solicit {
				e.solicit(nh, src)
			}
		}
		return mac, nil
	}
	ctx, cancel := context.WithTimeout(e.ctx, wait)
	defer cancel()
	for {
		ready, solicit := e.neigh.want(nh, time.Now().UnixNano(), int64(retry))
		if solicit {
			if err := e.solicit(nh, src); err != nil {
				return frame.MAC{}, err
			}
		}
		t := time.NewTimer(retry)
		select {
		case <-ready:
			t.Stop()
			if mac, _, ok := e.neigh.lookup(nh); ok {
				return mac, nil
			}
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			e.neigh.forget(nh)
			if e.ctx.Err() != nil {
				return frame.MAC{}, net.ErrClosed
			}
			return frame.MAC{}, os.NewSyscallError("sendto", syscall.EHOSTUNREACH)
		}
	}
}

// solicit sends an ARP request (IPv4) or a Neighbor Solicitation (IPv6)
// for nh.
func (e *Engine) solicit(nh, src netip.Addr) error {
	if s, ok := e.addrs.source(nh); ok && e.addrs.find(src) == nil {
		src = s
	}
	e.txMu.Lock()
	defer e.txMu.Unlock()
	err := e.commitLocked(func(buf []byte) (int, error) {
		if nh.Is4() {
			return frame.BuildARP(buf, &frame.ARPSpec{
				Op:        frame.ARPRequest,
				SenderMAC: e.mac,
				SenderIP:  src,
				TargetIP:  nh,
			})
		}
		return buildNeighborSolicitation(buf, e.mac, src, nh)
	})
	if err != nil {
		return err
	}
	return e.flushLocked()
}

// nsLen is a Neighbor Solicitation with a Source Link-Layer Address
// option: 24 + 8 bytes.
const nsLen = frame.NDPNeighborMessageLen + 8

var errNSAddrs = errors.New("engine: neighbour solicitation needs IPv6 addresses")

// buildNeighborSolicitation writes a multicast Neighbor Solicitation for
// target from src (RFC 4861 section 4.3, 7.2.2): to target's
// solicited-node group, hop limit 255, with the sender's link-layer
// address.
func buildNeighborSolicitation(buf []byte, mac frame.MAC, src, target netip.Addr) (int, error) {
	if !src.Is6() || !target.Is6() {
		return 0, errNSAddrs
	}
	n := frame.EthernetHeaderLen + frame.IPv6HeaderLen + nsLen
	if len(buf) < n {
		return 0, frame.ErrShortBuffer
	}
	dst := solicitedNode(target)
	eth := frame.Ethernet(buf)
	eth.SetDestination(frame.IPv6MulticastMAC(dst.As16()))
	eth.SetSource(mac)
	eth.SetType(proto.EtherTypeIPv6)
	ip := frame.IPv6(buf[frame.EthernetHeaderLen:n])
	ip.SetVersionTrafficClassFlowLabel(0, 0)
	ip.SetPayloadLength(nsLen)
	ip.SetNextHeader(proto.IPProtoICMPv6)
	ip.SetHopLimit(frame.NDPHopLimit)
	ip.SetSource(src)
	ip.SetDestination(dst)
	m := frame.ICMPv6(buf[frame.EthernetHeaderLen+frame.IPv6HeaderLen : n])
	clear(m)
	m.SetType(frame.ICMPv6NeighborSolicitation)
	m.SetNDPTarget(target)
	o := m[frame.NDPNeighborMessageLen:]
	o[0], o[1] = frame.NDPOptSourceLinkAddr, 1
	copy(o[2:8], mac[:])
	m.SetChecksum(m.CalculateChecksum(ip.PseudoHeaderSum(proto.IPProtoICMPv6, nsLen)))
	return n, nil
}
