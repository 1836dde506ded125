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
// extension headers) is answered with Reply(d.Payload) instead. A
// datagram reassembled from fragments is turned around in the
// reassembler's buffer and leaves as the fragments the path MTU calls
// for, whatever its size (up to 65,507 bytes over IPv4, 65,527 over IPv6).
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
	if size := int(p.End - p.L3Off); in.reasm != nil || size > e.mtu ||
		e.pmtu.active(in.now) && size > e.pathMTU(r.d.Src.Addr(), in.now) {
		return r.echoFragmented()
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

// echoFragmented is Echo for an answer that leaves as fragments: a
// reassembled datagram, rewritten in its own buffer, or a single frame
// longer than the path MTU back to its sender (ICMP lowered it, or the
// frame was larger than the link's MTU: GRO, a jumbo frame), rewritten
// in a copy.
func (r *Responder) echoFragmented() error {
	w, in, e := r.w, r.in, r.w.e
	p := &in.pkt
	n := int(p.End)
	buf := in.data
	if in.reasm == nil {
		fs := &w.frag
		if cap(fs.scratch) < n+frame.VLANTagLen {
			fs.scratch = make([]byte, max(n+frame.VLANTagLen, 2048))
		}
		// commitFrame puts a stripped VLAN tag back into each fragment.
		buf = fs.scratch[:cap(fs.scratch)]
		copy(buf, in.data[:n])
		fs.pkt.Decode(buf[:n])
		p = &fs.pkt
	} else if in.turned {
		// A second Echo of the same datagram: it is turned already.
		return r.commitFrame(buf[:n], p)
	}
	if _, err := frame.ReplyInPlace(buf[:n], p, e.cfg.TTL); err != nil {
		w.count[cTXErrors]++
		return err
	}
	frame.Ethernet(buf).SetSource(e.mac)
	if in.meta.flags&metaCsumPartial != 0 {
		p.FillUDPChecksum(buf[:n])
	}
	in.turned = in.reasm != nil
	return r.commitFrame(buf[:n], p)
}

// commitFrame sends an answer built in a frame of its own, counting it
// as one datagram of the port.
func (r *Responder) commitFrame(f []byte, p *frame.Packet) error {
	w := r.w
	if !w.commitFrame(f, p) {
		return errBuild
	}
	w.sentUDP(r.port)
	return nil
}

// Reply sends payload to the datagram's sender, from the address and port
// it was sent to (from one of the engine's addresses if it was sent to a
// group), to the MAC address it came from, on its VLANs. The frame is
// built whole, with a full checksum; a payload longer than the path MTU
// allows leaves as fragments, and one longer than UDP allows (65,507
// bytes over IPv4, 65,527 over IPv6) fails with EMSGSIZE.
func (r *Responder) Reply(payload []byte) error {
	if r.d == nil {
		return errNotServed
	}
	w := r.w
	s := &w.udpSpec
	if err := w.e.replySpec(s, r.d, payload); err != nil {
		w.count[cTXErrors]++
		return err
	}
	err := w.sendSpec(s)
	s.VLANs, s.Payload = nil, nil
	if err != nil {
		return err
	}
	w.sentUDP(r.port)
	return nil
}

// ReplyInPlace answers the datagram in its own frame, for handlers whose
// answer starts as a rewrite of the request (DNS, most request-response
// protocols). write gets the datagram's payload in a buffer whose
// capacity is the most the answer may hold without fragments; it writes
// the answer over the payload (the bytes are the request's until it does)
// and returns the answer's length, or 0 to send nothing. The engine then
// turns the frame around as Echo does, sets the lengths and computes the
// UDP checksum. On AF_XDP the answer leaves from the request's own UMEM
// frame; on TPACKET from the request's copy in a transmit slot. Nothing is
// allocated. A datagram that Echo would not turn around in place (sent to
// a group, reassembled, with IPv4 options or IPv6 extension headers, or
// longer than one frame on its way back) gets the same call with the
// payload in a buffer of the worker's, up to the largest UDP payload, and
// the answer goes out through Reply.
func (r *Responder) ReplyInPlace(write func(payload []byte) int) error {
	if r.d == nil {
		return errNotServed
	}
	w, in, e := r.w, r.in, r.w.e
	p := &in.pkt
	src := r.d.Dst.Addr()
	mtu := e.mtu
	if e.pmtu.active(in.now) {
		mtu = min(mtu, e.pathMTU(r.d.Src.Addr(), in.now))
	}
	headers := int(p.PayloadOff - p.L3Off) // IP and UDP
	if p.Flags&(frame.FlagFragment|frame.FlagIPv4Options|frame.FlagIPv6ExtHeaders) != 0 ||
		in.reasm != nil || e.addrs.find(src) == nil || int(p.End-p.L3Off) > mtu {
		return r.replyFromBuffer(write)
	}
	buf, ok := w.txForward()
	if !ok {
		return errNoBuffer
	}
	if _, err := frame.ReplyInPlace(buf[:p.End], p, e.cfg.TTL); err != nil {
		w.count[cTXErrors]++
		return err
	}
	// Room for the answer: the link's (or the path's) MTU, and the
	// buffer, which must keep room for a VLAN tag the kernel stripped.
	// Both hold the request (its datagram fits the MTU; txForward made
	// room for it and a tag).
	room := min(mtu-headers, len(buf)-frame.VLANTagLen-int(p.PayloadOff))
	payload := buf[p.PayloadOff : p.L4End : int(p.PayloadOff)+room]
	n := write(payload)
	if n <= 0 {
		return nil
	}
	if n > cap(payload) {
		w.count[cTXErrors]++
		return errTooBig
	}
	end, err := p.SetUDPPayloadLength(buf, n)
	if err != nil {
		w.count[cTXErrors]++
		return err
	}
	frame.Ethernet(buf).SetSource(e.mac)
	p.FillUDPChecksum(buf[:end])
	return w.commitUDP(buf, w.retag(buf, end), r.port)
}

// replyFromBuffer is ReplyInPlace for a datagram it does not answer in
// place: the payload is copied to the worker's answer buffer, write
// rewrites it there, and Reply sends the answer.
func (r *Responder) replyFromBuffer(write func(payload []byte) int) error {
	w := r.w
	if w.answerBuf == nil {
		w.answerBuf = make([]byte, maxUDPPayload(netip.IPv6Unspecified()))
	}
	limit := maxUDPPayload(r.d.Dst.Addr())
	n := write(w.answerBuf[:copy(w.answerBuf[:limit], r.d.Payload):limit])
	if n <= 0 {
		return nil
	}
	if n > limit {
		w.count[cTXErrors]++
		return errTooBig
	}
	return r.Reply(w.answerBuf[:n])
}

// replySpec fills s with a datagram answering d with payload (its ID
// aside).
func (e *Engine) replySpec(s *frame.UDPSpec, d *Datagram, payload []byte) error {
	src := d.Dst.Addr()
	if e.addrs.find(src) == nil {
		var ok bool
		if src, ok = e.addrs.source(d.Src.Addr()); !ok {
			return errNoSource
		}
	}
	if len(payload) > maxUDPPayload(src) {
		return errTooBig
	}
	*s = frame.UDPSpec{
		SrcMAC:  e.mac,
		DstMAC:  d.srcMAC,
		VLANs:   d.vlans[:d.nvlan],
		Src:     netip.AddrPortFrom(src, d.Dst.Port()),
		Dst:     d.Src,
		TTL:     e.cfg.TTL,
		Payload: payload,
	}
	return nil
}

// ipLen is the length of the IP datagram carrying n bytes of UDP data.
func (e *Engine) ipLen(src netip.Addr, n int) int {
	if src.Is4() {
		return frame.IPv4MinHeaderLen + frame.UDPHeaderLen + n
	}
	return frame.IPv6HeaderLen + frame.UDPHeaderLen + n
}
