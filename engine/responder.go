package engine

import (
	"errors"
	"net/netip"
	"os"
	"syscall"

	"github.com/pktengine/pktengine/frame"
)

// Handler answers datagrams inline: ServeUDP runs on the worker goroutine
// that received the datagram, while the frame is still in the receive
// ring, with no queue in between. It must not block, and must not keep
// d, d.Payload or r after it returns: copy what it needs. It must not
// close ports or the engine either: Close waits for the workers to finish
// their batch, and the handler's worker is in the middle of one.
type Handler interface {
	ServeUDP(r *Responder, d *Datagram)
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(r *Responder, d *Datagram)

// ServeUDP calls f(r, d).
func (f HandlerFunc) ServeUDP(r *Responder, d *Datagram) { f(r, d) }

// Responder sends answers from an inline handler through the receiving
// worker's transmit ring. The answers leave with the rest of the batch,
// in one system call. A Responder is valid only during the ServeUDP call.
type Responder struct {
	w    *worker
	in   *inFrame // the frame being answered
	port *Port
	d    *Datagram
}

// Errors from Responder and Port sends. They are allocated once, so that
// the paths that return them stay allocation-free.
var (
	errNoBuffer  = os.NewSyscallError("send", syscall.ENOBUFS)
	errTooBig    = os.NewSyscallError("send", syscall.EMSGSIZE)
	errNoSource  = os.NewSyscallError("send", syscall.EADDRNOTAVAIL)
	errBuild     = errors.New("engine: reply could not be built")
	errNotServed = errors.New("engine: Responder used outside ServeUDP")
)

// Port returns the port the datagram arrived on.
func (r *Responder) Port() *Port { return r.port }

// Echo sends the datagram back to its sender: the received frame is
// rewritten in place into a transmit buffer (frame.ReplyInPlace),
// addresses and ports swapped, every checksum kept valid with
// incremental updates only. A partial checksum from a local sender is
// completed. A datagram that cannot be turned around in place (sent to
// a broadcast or multicast address, or carrying IPv4 options or IPv6
// extension headers) is answered with Reply(d.Payload) instead.
func (r *Responder) Echo() error {
	if r.d == nil {
		return errNotServed
	}
	w, in, e := r.w, r.in, r.w.e
	p := &in.pkt
	if p.Flags&(frame.FlagFragment|frame.FlagIPv4Options|frame.FlagIPv6ExtHeaders) != 0 ||
		e.addrs.find(r.d.Dst.Addr()) == nil {
		return r.Reply(r.d.Payload)
	}
	buf, ok := w.txForward()
	if !ok {
		return errNoBuffer
	}
	n := int(p.End)
	if _, err := frame.ReplyInPlace(buf[:n], p, e.cfg.TTL); err != nil {
		w.count[cTXErrors]++
		return err
	}
	frame.Ethernet(buf).SetSource(e.mac)
	if in.meta.flags&metaCsumPartial != 0 {
		p.FillUDPChecksum(buf[:n])
	}
	return w.commitUDP(buf, w.retag(buf, n), r.port)
}

// Reply sends payload to the datagram's sender, from the address and port
// it was sent to (from one of the engine's addresses if it was sent to a
// group), to the MAC address it came from, on its VLANs. The frame is
// built whole, with a full checksum.
func (r *Responder) Reply(payload []byte) error {
	if r.d == nil {
		return errNotServed
	}
	w := r.w
	buf, ok := w.txNext()
	if !ok {
		return errNoBuffer
	}
	n, err := w.e.buildReply(buf, &w.udpSpec, r.d, payload, w.nextID())
	if err != nil {
		w.count[cTXErrors]++
		return err
	}
	return w.commitUDP(buf, n, r.port)
}

// buildReply writes into buf a datagram answering d with payload.
func (e *Engine) buildReply(buf []byte, s *frame.UDPSpec, d *Datagram, payload []byte, id uint16) (int, error) {
	src := d.Dst.Addr()
	if e.addrs.find(src) == nil {
		var ok bool
		if src, ok = e.addrs.source(d.Src.Addr()); !ok {
			return 0, errNoSource
		}
	}
	if e.ipLen(src, len(payload)) > e.mtu {
		return 0, errTooBig
	}
	*s = frame.UDPSpec{
		SrcMAC:  e.mac,
		DstMAC:  d.srcMAC,
		VLANs:   d.vlans[:d.nvlan],
		Src:     netip.AddrPortFrom(src, d.Dst.Port()),
		Dst:     d.Src,
		TTL:     e.cfg.TTL,
		ID:      id,
		Payload: payload,
	}
	n, err := frame.BuildUDP(buf, s)
	s.VLANs, s.Payload = nil, nil
	return n, err
}

// ipLen is the length of the IP datagram carrying n bytes of UDP data.
func (e *Engine) ipLen(src netip.Addr, n int) int {
	if src.Is4() {
		return frame.IPv4MinHeaderLen + frame.UDPHeaderLen + n
	}
	return frame.IPv6HeaderLen + frame.UDPHeaderLen + n
}
