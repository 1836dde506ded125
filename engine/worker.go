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
	"github.com/pktengine/pktengine/reassembly"
)

// This file is the receive path, in the order a frame takes it:
// run reads a batch from the backend, handleBatch walks its frames,
// handleFrame counts each one's outcome, dispatch decodes it, udp
// validates and looks up the port, and deliver runs the port's inline
// handler or queues the datagram. What answers go through is in
// transmit.go; ARP and NDP in neighbor.go; ICMP in icmp.go; the built-in
// services in service.go and their guards in guard.go.

// worker owns one receive ring and one transmit ring and runs the whole
// path from a received frame to its answer on one goroutine. Everything
// it touches per frame lives in the worker, so nothing is allocated.
type worker struct {
	e   *Engine
	id  int
	rx  rxRing // nil when a test drives handleBatch directly
	tx  txRing
	ctx context.Context

	count     counterSet        // written by this worker only
	published publishedCounters // what Engine.Counters reads
	epoch     atomic.Uint64     // odd while a batch is being handled

	free    chan *batchRef // batches whose datagrams were all released
	touched []*portStats   // port counters changed since the last publish
	started bool
	exitErr error

	in   inFrame   // the frame being handled
	resp Responder // handed to inline handlers, about in
	dg   Datagram  // the datagram an inline handler gets

	// For what the worker builds itself: replies, ICMP.
	udpSpec    frame.UDPSpec
	ipSpec     frame.IPSpec
	ipID       uint16
	txDirty    bool // frames committed since the last flush
	txFailing  bool // the last flush failed
	captureBuf []byte
	answerBuf  []byte // Responder.ReplyInPlace's, for datagrams it cannot answer in place

	frag fragState // fragments in and out (fragment.go)
}

// inFrame is the frame a worker is handling and what it learnt of it.
type inFrame struct {
	data  []byte       // in the receive ring (or a test's buffer); never written
	meta  rxMeta       // from the backend
	pkt   frame.Packet // Decode's offsets into data
	now   int64        // receive time, ns since the epoch
	batch rxBatch      // the batch it came in and its index there
	index int

	// reasm is set while the frame being handled is a datagram that
	// fragments made: data is its frame, in the reassembler's buffer,
	// which the worker may rewrite into an answer (turned says it has).
	reasm  *reassembly.Datagram
	turned bool
}

func newWorker(e *Engine, id int, rx rxRing, tx txRing, freeCap int) *worker {
	w := &worker{
		e:    e,
		id:   id,
		rx:   rx,
		tx:   tx,
		ctx:  e.ctx,
		free: make(chan *batchRef, freeCap),
		// Room for the ports of a batch; more grows it once.
		touched: make([]*portStats, 0, 64),
		ipID:    uint16(rand.Uint32()),
	}
	w.resp = Responder{w: w, in: &w.in}
	w.initFragments()
	return w
}

// run reads batches until the ring is closed.
func (w *worker) run() error {
	var cur *batchRef
	defer func() {
		if cur != nil {
			cur.b.release()
		}
		w.flush()
		w.publish()
		if err := w.tx.close(); err != nil {
			w.e.log.Warn("closing the transmit ring", "worker", w.id, "err", err)
		}
	}()
	for {
		br := cur
		if br == nil {
			select {
			case br = <-w.free:
			default:
				br = &batchRef{b: w.rx.newBatch(), free: w.free}
			}
		}
		cur = nil
		if err := w.read(br.b); err != nil {
			if errors.Is(err, net.ErrClosed) || w.ctx.Err() != nil {
				return nil
			}
			if w.wokenForFragments(err) {
				cur = br // nothing was taken: the batch is empty
				continue
			}
			w.e.log.Error("receive ring failed", "worker", w.id, "err", err)
			return err
		}
		w.handleBatch(br)
		if br.queued == 0 {
			// Nothing holds the batch: readInto takes it back
			// before refilling it.
			cur = br
		}
	}
}

// handleBatch handles every frame of a batch, sends the answers with one
// system call and publishes the counters. Datagrams queued from the
// batch hold br until they are released.
func (w *worker) handleBatch(br *batchRef) {
	w.epoch.Add(1)
	br.refs.Store(refBias)
	br.queued = 0
	in := &w.in
	in.batch = br.b
	for i := range br.b.len() {
		in.index = i
		in.data, in.meta = br.b.frame(i)
		w.handleFrame(br)
	}
	in.batch, in.data = nil, nil
	w.fragmentTick(in.now)
	w.flush()
	w.publish()
	w.epoch.Add(1)
	if br.queued != 0 {
		br.unref(refBias - br.queued)
	}
}

// handleFrame is the life of one frame: dispatch, then count its one
// outcome and capture it if asked.
func (w *worker) handleFrame(br *batchRef) Outcome {
	in := &w.in
	in.now = in.meta.time
	if in.now == 0 {
		in.now = time.Now().UnixNano()
	}
	o := w.dispatch(br)
	n := in.meta.wireLen
	if n == 0 {
		n = len(in.data)
	}
	if _, ok := in.meta.strippedVLAN(); ok {
		n += frame.VLANTagLen // the kernel removed it, but it was on the wire
	}
	w.count[cFrames]++
	w.count[cBytes] += uint64(n)
	w.count[cOutcome0+counter(o)]++
	if cw := w.e.cfg.Capture; cw != nil && (!w.e.cfg.CaptureDropped || o.Dropped()) {
		w.capture(cw)
	}
	return o
}

// dispatch decides what the frame is and acts on it.
func (w *worker) dispatch(br *batchRef) Outcome {
	in := &w.in
	// First, as the kernel decides before any protocol: another VLAN's
	// frame is not for us, even cut short by the filter (vlan.go).
	if !w.inVLAN() {
		return OutcomeOtherVLAN
	}
	if in.meta.flags&metaTruncated != 0 || in.meta.wireLen > len(in.data) {
		return OutcomeTruncated
	}
	if in.meta.kind == kindOtherHost || in.meta.kind == kindOutgoing {
		return OutcomeOtherHost
	}
	r := in.pkt.Decode(in.data)
	if in.pkt.IsFragment() && w.frag.on {
		return w.fragment(br, r)
	}
	switch r {
	case frame.ReasonOK:
		return w.udp(br)
	case frame.ReasonARP:
		w.arp()
		return Outcome(r)
	case frame.ReasonICMPv4:
		w.icmpv4()
		return Outcome(r)
	case frame.ReasonICMPv6:
		if !w.mld() { // multicast_rx.go
			w.icmpv6()
		}
		return Outcome(r)
	case frame.ReasonOtherIPProtocol:
		if in.pkt.Protocol == proto.IPProtoIGMP {
			w.igmp() // multicast_rx.go
			return OutcomeIGMP
		}
		return Outcome(r)
	default:
		return Outcome(r)
	}
}

// udp validates a complete UDP datagram and delivers it.
func (w *worker) udp(br *batchRef) Outcome {
	in, e := &w.in, w.e
	p, f := &in.pkt, in.data
	dst := p.DstAddr(f)
	la := e.addrs.find(dst)
	var grp *groupEntry
	if la == nil {
		switch {
		case dst.IsMulticast():
			// Only a group joined on the interface is for this host,
			// and for IPv4 only from a source its filter lets in:
			// the kernel's IP layer (ip_check_mc_rcu) drops the rest
			// before UDP counts anything.
			grp = e.mcast.lookup(dst)
			if grp == nil || dst.Is4() && !grp.state.allows(p.SrcAddr(f)) {
				return OutcomeOtherHost
			}
		case !e.addrs.isBroadcast(dst):
			return OutcomeOtherHost
		}
	}

	// Validation. The IPv4 header checksum is never checked before a
	// packet tap, so always here. The UDP checksum is skipped when the
	// backend says the device verified it, or that the sender (a local
	// socket on a veth) left it partial for an offload to finish; a
	// backend that cannot tell (AF_XDP) gets the partial rule of
	// frame.Packet.VerifyUDPChecksumPartial.
	if r := p.VerifyIPv4HeaderChecksum(f); r != frame.ReasonOK {
		return Outcome(r)
	}
	if p.IPVersion == frame.IPv6Version && p.UDP(f).Checksum() == 0 {
		return Outcome(frame.ReasonUDPZeroChecksumIPv6)
	}
	if in.meta.mustVerifyChecksum() {
		if in.meta.flags&metaCsumUnknown != 0 {
			r, partial := p.VerifyUDPChecksumPartial(f)
			if r != frame.ReasonOK {
				return Outcome(r)
			}
			if partial {
				in.meta.flags |= metaCsumPartial
			}
		} else if r := p.VerifyUDPChecksum(f); r != frame.ReasonOK {
			return Outcome(r)
		}
	}

	// Demultiplex: exact address first, then the wildcard.
	slot := e.table.Load().lookup(p.DstPort(f))
	if la == nil {
		return w.deliverGroup(slot, dst, grp, br)
	}
	var pt *Port
	if slot != nil {
		pt = slot.match(dst)
	}
	if pt != nil && pt.refuses(p, f) {
		pt = nil // connected to another peer: as if unbound, as for a kernel socket
	}
	if pt == nil {
		if !la.owned {
			return OutcomeKernel
		}
		w.portUnreachable()
		return OutcomeNoPort
	}
	if w.deliver(pt, br) {
		return OutcomeDelivered
	}
	return OutcomeQueueFull
}

// deliverGroup hands a broadcast or multicast datagram to every port
// that wants it, as the kernel's __udp4_lib_mcast_deliver does: one bound
// to the group address itself, and the wildcard of its family; for a
// group (grp), each only if its own filter for the group, if it joined
// it, lets the source in. None: IgnoredMulti.
func (w *worker) deliverGroup(slot *portSlot, dst netip.Addr, grp *groupEntry, br *batchRef) Outcome {
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
	if grp != nil && len(grp.ports) != 0 {
		src := w.in.pkt.SrcAddr(w.in.data)
		if exact != nil && !grp.wants(exact, src) {
			exact = nil
		}
		if wild != nil && !grp.wants(wild, src) {
			wild = nil
		}
	}
	p, f := &w.in.pkt, w.in.data
	if exact != nil && exact.refuses(p, f) {
		exact = nil
	}
	if wild != nil && wild.refuses(p, f) {
		wild = nil
	}
	if exact == nil && wild == nil {
		return OutcomeNoPortMulti
	}
	ok := false
	if exact != nil {
		ok = w.deliver(exact, br)
	}
	if wild != nil {
		ok = w.deliver(wild, br) || ok
	}
	if ok {
		return OutcomeDelivered
	}
	return OutcomeQueueFull
}

// deliver hands the datagram to pt's inline handler, or queues it. It
// reports false if the queue was full.
func (w *worker) deliver(pt *Port, br *batchRef) bool {
	in := &w.in
	ps := w.portStats(pt)
	if h := pt.handler; h != nil {
		d := &w.dg
		d.fill(in)
		ps.pending.in++
		w.count[cUDPIn]++
		r := &w.resp
		r.port, r.d = pt, d
		h.ServeUDP(r, d)
		r.port, r.d = nil, nil
		return true
	}
	// Queue it: a copy in one of the port's buffers, so that the ring
	// goes back to the kernel at the end of the batch whatever the
	// consumer does; with ZeroCopy a reference into the ring itself.
	var d Datagram
	d.fill(in)
	if pt.bufs != nil || in.reasm != nil {
		// A reassembled datagram is always copied: its buffer goes
		// back to the reassembler as soon as it is dispatched.
		buf := pt.getBuf(len(d.Payload))
		if buf == nil {
			ps.pending.drops++
			w.count[cRcvbufErrors]++
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
		ps.pending.drops++
		w.count[cRcvbufErrors]++
		return false
	}
	if d.ref != nil {
		br.queued++
	}
	ps.pending.in++
	w.count[cUDPIn]++
	pt.bell.Ring()
	return true
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

// publish makes the worker's counters visible to Engine.Counters and
// Port.Info: once per batch, so that a frame costs no atomic operation.
func (w *worker) publish() {
	if w.tx != nil {
		st := w.tx.stats()
		w.count[cTXRejected] = st.rejected
		w.count[cTXDropped] = st.dropped
	}
	w.publishFragments()
	w.published.publish(&w.count)
	for _, ps := range w.touched {
		ps.publish()
	}
	clear(w.touched)
	w.touched = w.touched[:0]
}
