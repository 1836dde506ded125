package engine

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/pktengine/pktengine/frame"
	"github.com/pktengine/pktengine/proto"
	"github.com/pktengine/pktengine/ring"
)

// worker owns one receive ring and one TX ring and runs the whole path
// from a received frame to its answer on one goroutine. Everything it
// touches per frame lives in the worker, so nothing is allocated.
type worker struct {
	e   *Engine
	id  int
	rx  *ring.RX // nil when a test drives handleFrame directly
	tx  ring.Transmitter
	ctx context.Context

	c     counterSet        // written by this worker only
	pub   publishedCounters // what Counters reads
	epoch atomic.Uint64     // odd while a batch is being handled

	free    chan *batchRef // batches whose datagrams were all released
	touched []*portStats   // port counters changed since the last publish
	started bool
	exitErr error

	// The frame being handled.
	meta ring.Meta
	pkt  frame.Packet
	now  int64 // its receive time, ns since the epoch

	// Scratch space for handlers and builders.
	dg        Datagram
	resp      Responder
	udpSpec   frame.UDPSpec
	ipSpec    frame.IPSpec
	ipID      uint16
	txDirty   bool
	rng       *rand.Rand
	chargenAt int
	day       [64]byte
	capBuf    []byte
}

func newWorker(e *Engine, id int, rx *ring.RX, tx ring.Transmitter, freeCap int) *worker {
	w := &worker{
		e:    e,
		id:   id,
		rx:   rx,
		tx:   tx,
		ctx:  e.ctx,
		free: make(chan *batchRef, freeCap),
		// Room for the ports of a batch; more grows it once.
		touched: make([]*portStats, 0, 64),
		rng:     rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64())),
		ipID:    uint16(rand.Uint32()),
	}
	w.resp.w = w
	return w
}

// run reads batches until the ring is closed.
func (w *worker) run() error {
	var cur *batchRef
	defer func() {
		if cur != nil {
			cur.b.Release()
		}
		w.flush()
		w.publish()
		if err := w.tx.Close(); err != nil {
			w.e.log.Warn("closing TX ring", "worker", w.id, "err", err)
		}
	}()
	for {
		br := cur
		if br == nil {
			select {
			case br = <-w.free:
			default:
				br = &batchRef{free: w.free}
			}
		}
		cur = nil
		// The background context keeps a sleeping ReadInto free of
		// allocations; Close wakes it by closing the ring.
		if err := w.rx.ReadInto(context.Background(), &br.b); err != nil {
			if errors.Is(err, net.ErrClosed) || w.ctx.Err() != nil {
				return nil
			}
			w.e.log.Error("receive ring failed", "worker", w.id, "err", err)
			return err
		}
		w.handleBatch(br, &br.b)
		if br.queued == 0 {
			// Nothing holds the batch: ReadInto hands it back
			// before refilling it.
			cur = br
		}
	}
}

// frameBatch is what handleBatch reads frames from: a *ring.Batch, or a
// test's fake one.
type frameBatch interface {
	Len() int
	Frame(i int) ([]byte, ring.Meta)
}

// handleBatch handles every frame of a batch, sends the answers with one
// system call and publishes the counters. Datagrams queued from the
// batch hold br until they are released.
func (w *worker) handleBatch(br *batchRef, b frameBatch) {
	w.epoch.Add(1)
	br.refs.Store(refBias)
	br.queued = 0
	for i := range b.Len() {
		f, m := b.Frame(i)
		w.handleFrame(f, m, br)
	}
	w.flush()
	w.publish()
	w.epoch.Add(1)
	if br.queued != 0 {
		br.unref(refBias - br.queued)
	}
}

func (w *worker) publish() {
	if w.tx != nil {
		w.c[cTXRejected] = w.tx.Stats().WrongFormat
	}
	w.pub.publish(&w.c)
	for _, ps := range w.touched {
		ps.in.Store(ps.lin)
		ps.out.Store(ps.lout)
		ps.drops.Store(ps.ldrops)
		ps.suppressed.Store(ps.lsuppressed)
		ps.dirty = false
	}
	clear(w.touched)
	w.touched = w.touched[:0]
}

// portStats returns this worker's counters of pt, noting them for the
// next publish.
func (w *worker) portStats(pt *Port) *portStats {
	ps := &pt.stats[w.id]
	if !ps.dirty {
		ps.dirty = true
		w.touched = append(w.touched, ps)
	}
	return ps
}

func (w *worker) flush() {
	if !w.txDirty {
		return
	}
	w.txDirty = false
	if err := w.tx.Flush(); err != nil {
		w.c[cTXErrors]++
		w.e.log.Warn("TX flush failed", "worker", w.id, "err", err)
	}
}

// handleFrame is the life of one frame: dispatch, count its one
// outcome, capture it if asked. f points into the ring (or a test's
// buffer) and is never written.
func (w *worker) handleFrame(f []byte, m ring.Meta, br *batchRef) Outcome {
	w.meta = m
	w.now = m.Timestamp
	if w.now == 0 {
		w.now = time.Now().UnixNano()
	}
	o := w.dispatch(f, br)
	w.c[cFrames]++
	n := m.Length
	if n == 0 {
		n = len(f)
	}
	if _, _, ok := m.VLAN(); ok {
		n += frame.VLANTagLen // stripped by the kernel, but it was on the wire
	}
	w.c[cBytes] += uint64(n)
	w.c[cOutcome0+counter(o)]++
	if cw := w.e.cfg.Capture; cw != nil && (!w.e.cfg.CaptureDropped || o.Dropped()) {
		w.capture(cw, f)
	}
	return o
}

// dispatch decides what f is and acts on it.
func (w *worker) dispatch(f []byte, br *batchRef) Outcome {
	m := &w.meta
	if m.Status.Truncated() || m.Length > len(f) {
		return OutcomeTruncated
	}
	if m.Type == ring.PacketOtherHost || m.Type == ring.PacketOutgoing {
		return OutcomeOtherHost
	}
	p := &w.pkt
	switch r := p.Decode(f); r {
	case frame.ReasonOK:
		return w.udp(f, br)
	case frame.ReasonARP:
		w.arp(f)
		return Outcome(r)
	case frame.ReasonICMPv4:
		w.icmpv4(f)
		return Outcome(r)
	case frame.ReasonICMPv6:
		w.icmpv6(f)
		return Outcome(r)
	default:
		return Outcome(r)
	}
}

// udp validates a complete UDP datagram and delivers it.
func (w *worker) udp(f []byte, br *batchRef) Outcome {
	p, m, e := &w.pkt, &w.meta, w.e
	dst := p.DstAddr(f)
	la := e.addrs.find(dst)
	if la == nil && !e.addrs.isGroup(dst) {
		return OutcomeOtherHost
	}

	// Validation. The IPv4 header checksum is never checked before a
	// packet tap, so always here. The UDP checksum is skipped when the
	// ring says the device verified it, or that the sender (a local
	// socket on a veth) left it partial for an offload to finish.
	if r := p.VerifyIPv4HeaderChecksum(f); r != frame.ReasonOK {
		return Outcome(r)
	}
	if p.IPVersion == frame.IPv6Version && p.UDP(f).Checksum() == 0 {
		return Outcome(frame.ReasonUDPZeroChecksumIPv6)
	}
	if !m.Status.ChecksumPartial() && !m.Status.ChecksumValid() {
		if r := p.VerifyUDPChecksum(f); r != frame.ReasonOK {
			return Outcome(r)
		}
	}

	// Demultiplex: exact address first, then the wildcard.
	slot := e.table.Load().lookup(p.DstPort(f))
	if la == nil {
		return w.deliverGroup(slot, dst, f, br)
	}
	var pt *Port
	if slot != nil {
		pt = slot.match(dst)
	}
	if pt == nil {
		if !la.owned {
			return OutcomeKernel
		}
		w.portUnreachable(f)
		return OutcomeNoPort
	}
	if w.deliver(pt, f, br) {
		return OutcomeDelivered
	}
	return OutcomeQueueFull
}

// deliverGroup hands a broadcast or multicast datagram to every port
// that wants it: one bound to the group address itself, and the
// wildcard of its family.
func (w *worker) deliverGroup(slot *portSlot, dst netip.Addr, f []byte, br *batchRef) Outcome {
	if slot == nil {
		return OutcomeNoPortMulti
	}
	var exact *Port
	for _, q := range slot.exact {
		if q.addr == dst {
			exact = q
			break
		}
	}
	wild := slot.any6
	if dst.Is4() {
		wild = slot.any4
	}
	if exact == nil && wild == nil {
		return OutcomeNoPortMulti
	}
	ok := false
	if exact != nil {
		ok = w.deliver(exact, f, br)
	}
	if wild != nil {
		ok = w.deliver(wild, f, br) || ok
	}
	if ok {
		return OutcomeDelivered
	}
	return OutcomeQueueFull
}

// deliver hands the datagram to pt's inline handler, or queues it. It
// reports false if the queue was full.
func (w *worker) deliver(pt *Port, f []byte, br *batchRef) bool {
	ps := w.portStats(pt)
	if h := pt.handler; h != nil {
		d := &w.dg
		d.fill(f, &w.meta, &w.pkt)
		ps.lin++
		w.c[cUDPIn]++
		r := &w.resp
		r.port, r.f, r.d = pt, f, d
		h.ServeUDP(r, d)
		r.port, r.f, r.d = nil, nil, nil
		return true
	}
	// Queue it: a copy in one of the port's buffers, so that the ring
	// goes back to the kernel at the end of the batch whatever the
	// consumer does; with ZeroCopy a reference into the ring itself.
	var d Datagram
	d.fill(f, &w.meta, &w.pkt)
	if pt.bufs != nil {
		buf := pt.getBuf(len(d.Payload))
		if buf == nil {
			ps.ldrops++
			w.c[cRcvbufErrors]++
			return false
		}
		n := copy(buf, d.Payload)
		d.Payload, d.buf, d.owner = buf[:n:n], buf, pt
	} else {
		d.ref = br
	}
	if !pt.q.Enqueue(d) {
		if d.buf != nil {
			pt.putBuf(d.buf)
		}
		ps.ldrops++
		w.c[cRcvbufErrors]++
		return false
	}
	if d.ref != nil {
		br.queued++
	}
	ps.lin++
	w.c[cUDPIn]++
	pt.bell.Ring()
	return true
}

// portUnreachable answers a datagram to an unbound port of an owned
// address with ICMP port unreachable (RFC 1122 section 4.1.3.1, RFC 4443
// section 3.1), unless the rules against error storms forbid it (RFC 1122
// section 3.2.2, RFC 4443 section 2.4 (e)) or the token bucket is empty.
// ReasonOK already ruled out fragments, and the datagram is no ICMP
// error; what is left to check is that the datagram came from one host
// to this host alone.
func (w *worker) portUnreachable(f []byte) {
	p, e := &w.pkt, w.e
	src := p.SrcAddr(f)
	if w.meta.Type != ring.PacketHost || frame.Ethernet(f).Destination().IsMulticast() ||
		!e.addrs.isHostSource(src) {
		w.c[cICMPSuppressed]++
		return
	}
	if !e.icmpBucket.allow(w.now, &e.icmpRate) {
		w.c[cICMPRateLimited]++
		return
	}
	buf, ok := w.txNext()
	if !ok {
		return
	}
	s := &w.ipSpec
	*s = frame.IPSpec{
		SrcMAC: e.mac,
		DstMAC: frame.Ethernet(f).Source(),
		VLANs:  p.VLANs[:p.NumVLANs],
		Src:    p.DstAddr(f),
		Dst:    src,
		TTL:    e.cfg.TTL,
		ID:     w.nextID(),
	}
	var n int
	var err error
	if p.IPVersion == frame.IPv4Version {
		n, err = frame.BuildICMPv4DestUnreachable(buf, s, frame.ICMPv4CodePortUnreach, p.Datagram(f))
	} else {
		n, err = frame.BuildICMPv6DestUnreachable(buf, s, frame.ICMPv6CodePortUnreachable, p.Datagram(f))
	}
	s.VLANs = nil
	if err != nil {
		w.c[cTXErrors]++
		return
	}
	if w.commit(w.insertTag(buf, n)) {
		w.c[cICMPSent]++
	}
}

// arp learns the sender of an ARP message about one of the engine's
// addresses and answers requests for owned ones (RFC 826). Requests from
// 0.0.0.0 are address probes (RFC 5227) and are answered too: that is
// how an owner defends its address.
func (w *worker) arp(f []byte) {
	p, e := &w.pkt, w.e
	a := p.ARP(f)
	la := e.addrs.find(a.TargetIP())
	if la == nil {
		return
	}
	if sip := a.SenderIP(); !sip.IsUnspecified() && e.addrs.find(sip) == nil && e.addrs.onLink(sip) {
		if e.neigh.learn(sip, a.SenderMAC(), w.now, true) {
			w.c[cNeighborsLearned]++
		}
	}
	if a.Op() != frame.ARPRequest || !la.owned {
		return
	}
	buf, ok := w.txNext()
	if !ok {
		return
	}
	n := copy(buf, f[:p.End])
	if _, err := frame.ARPReplyInPlace(buf[:n], p, e.mac); err != nil {
		return
	}
	if w.commit(w.insertTag(buf, n)) {
		w.c[cARPAnswered]++
	}
}

// icmpv4 answers pings to owned addresses.
func (w *worker) icmpv4(f []byte) {
	p, e := &w.pkt, w.e
	if p.IsFragment() {
		return
	}
	if la := e.addrs.find(p.DstAddr(f)); la == nil || !la.owned {
		return
	}
	msg := p.ICMPv4(f)
	if msg.Type() != frame.ICMPv4Echo || msg.Code() != 0 || !e.addrs.isHostSource(p.SrcAddr(f)) ||
		p.VerifyIPv4HeaderChecksum(f) != frame.ReasonOK || !msg.IsChecksumValid() {
		return
	}
	buf, ok := w.txNext()
	if !ok {
		return
	}
	n := copy(buf, f[:p.End])
	if _, err := frame.ICMPv4EchoReplyInPlace(buf[:n], p, e.cfg.TTL); err != nil {
		return
	}
	frame.Ethernet(buf).SetSource(e.mac)
	if w.commit(w.insertTag(buf, n)) {
		w.c[cPingAnswered]++
	}
}

// icmpv6 handles neighbour discovery for the engine's addresses and
// pings to owned ones.
func (w *worker) icmpv6(f []byte) {
	p, e := &w.pkt, w.e
	if p.IsFragment() || p.Flags&frame.FlagIPv6ExtHeaders != 0 {
		return
	}
	ip, msg := p.IPv6(f), p.ICMPv6(f)
	if !w.meta.Status.ChecksumValid() && !w.meta.Status.ChecksumPartial() &&
		!msg.IsChecksumValid(ip.PseudoHeaderSum(proto.IPProtoICMPv6, uint32(len(msg)))) {
		return
	}
	switch msg.Type() {
	case frame.ICMPv6NeighborSolicitation:
		// RFC 4861 section 7.1.1 validity checks; AnswerNeighbor-
		// Solicitation repeats them for the answer.
		if !msg.IsNeighborMessage() || msg.Code() != 0 || ip.HopLimit() != frame.NDPHopLimit {
			return
		}
		la := e.addrs.find(msg.NDPTarget())
		if la == nil {
			return
		}
		if src := ip.Source(); !src.IsUnspecified() && e.addrs.find(src) == nil {
			if lla, ok := msg.SourceLinkAddress(); ok && e.neigh.learn(src, lla, w.now, true) {
				w.c[cNeighborsLearned]++
			}
		}
		if !la.owned {
			return
		}
		buf, ok := w.txNext()
		if !ok {
			return
		}
		n, err := frame.AnswerNeighborSolicitation(buf, f, p, e.mac)
		if err != nil {
			return
		}
		if w.commit(w.insertTag(buf, n)) {
			w.c[cNDPAnswered]++
		}
	case frame.ICMPv6NeighborAdvertisement:
		if !msg.IsNeighborMessage() || msg.Code() != 0 || ip.HopLimit() != frame.NDPHopLimit {
			return
		}
		target := msg.NDPTarget()
		if e.addrs.find(target) != nil {
			e.log.Warn("neighbour advertisement for an engine address", "addr", target, "from", frame.Ethernet(f).Source())
			return
		}
		mac, ok := msg.TargetLinkAddress()
		if !ok {
			mac = frame.Ethernet(f).Source()
		}
		if e.neigh.learn(target, mac, w.now, false) {
			w.c[cNeighborsLearned]++
		}
	case frame.ICMPv6EchoRequest:
		if la := e.addrs.find(ip.Destination()); la == nil || !la.owned || msg.Code() != 0 ||
			!e.addrs.isHostSource(ip.Source()) {
			return
		}
		buf, ok := w.txNext()
		if !ok {
			return
		}
		n := copy(buf, f[:p.End])
		if _, err := frame.ICMPv6EchoReplyInPlace(buf[:n], p, e.cfg.TTL); err != nil {
			return
		}
		frame.Ethernet(buf).SetSource(e.mac)
		if w.commit(w.insertTag(buf, n)) {
			w.c[cPingAnswered]++
		}
	}
}

// txNext returns the next TX buffer, with room for the VLAN tag the
// kernel stripped from the frame being answered.
func (w *worker) txNext() ([]byte, bool) {
	buf, err := w.tx.Next(w.ctx)
	if err != nil {
		w.c[cSndbufErrors]++
		return nil, false
	}
	return buf, true
}

// commit queues the first n bytes of the buffer txNext returned; the
// batch's end flushes them.
func (w *worker) commit(n int) bool {
	if n <= 0 {
		w.c[cTXErrors]++
		return false
	}
	if err := w.tx.Commit(n); err != nil {
		w.c[cTXErrors]++
		return false
	}
	w.c[cTXFrames]++
	w.txDirty = true
	return true
}

// insertTag puts back the VLAN tag the kernel stripped from the received
// frame (ring.Meta.VLAN) into the n-byte answer in buf, after the MAC
// addresses, and returns the new length, or -1 if buf has no room.
func (w *worker) insertTag(buf []byte, n int) int {
	tci, tpid, ok := w.meta.VLAN()
	if !ok {
		return n
	}
	if n+frame.VLANTagLen > len(buf) {
		return -1
	}
	copy(buf[12+frame.VLANTagLen:n+frame.VLANTagLen], buf[12:n])
	buf[12], buf[13] = byte(tpid>>8), byte(tpid)
	buf[14], buf[15] = byte(tci>>8), byte(tci)
	return n + frame.VLANTagLen
}

func (w *worker) nextID() uint16 {
	w.ipID++
	return w.ipID
}

// capture records f, with the stripped VLAN tag put back so that the
// file shows the frame as it was on the wire.
func (w *worker) capture(cw FrameWriter, f []byte) {
	origLen := w.meta.Length
	data := f
	if tci, tpid, ok := w.meta.VLAN(); ok && len(f) >= 12 {
		need := len(f) + frame.VLANTagLen
		if cap(w.capBuf) < need {
			w.capBuf = make([]byte, need+need/2)
		}
		b := w.capBuf[:need]
		copy(b, f[:12])
		b[12], b[13], b[14], b[15] = byte(tpid>>8), byte(tpid), byte(tci>>8), byte(tci)
		copy(b[16:], f[12:])
		data = b
		if origLen != 0 {
			origLen += frame.VLANTagLen
		}
	}
	if err := cw.WriteFrame(w.meta.Timestamp, data, origLen); err != nil && w.e.captureErr.CompareAndSwap(false, true) {
		w.e.log.Error("capture failed; no further frames are recorded", "err", err)
	}
}
