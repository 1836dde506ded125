package engine

import (
	"errors"
	"net/netip"
	"os"
	"time"

	"github.com/pktengine/pktengine/frame"
	"github.com/pktengine/pktengine/reassembly"
)

// Fragments. In front of dispatch, each worker puts the fragments it
// receives back together with a reassembler of its own (package
// reassembly: Linux's rules, a fixed memory budget, per-source shares),
// and hands a completed datagram to the rest of the receive path as if it
// had come in one frame. On the way out, whatever exceeds the path MTU
// leaves as fragments (frame.UDPFragmenter for datagrams the engine
// builds, frame.FrameFragmenter for answers rewritten in place), with
// unpredictable identifications (frame.FragmentIDs, RFC 7739).
//
// Every fragment of a datagram must reach the same worker. With several
// workers, TPACKET's PACKET_FANOUT_HASH spreads frames by
// __skb_get_hash_symmetric, whose flow dissector stops at a fragment
// (it is called without FLOW_DISSECTOR_F_PARSE_1ST_FRAG): every fragment,
// the first included, hashes on its addresses and protocol alone, so all
// of a datagram's fragments land on one ring (TestLabFragmentsFanout).

// fragState is a worker's part in fragments.
type fragState struct {
	on     bool                    // reassembly is configured
	r      *reassembly.Reassembler // made when the first fragment arrives
	failed bool                    // reassembly.New failed: fragments are dropped

	next  int64 // ns: when the next sweep for timed-out datagrams is due
	busy  bool  // datagrams are under reassembly, or reports wait
	dirty bool  // the reassembler's counts moved since the last publish

	expired reassembly.Expired
	tagged  []byte       // a fragment with the VLAN tag the kernel removed put back
	scratch []byte       // a frame answered in place and then fragmented (path MTU)
	pkt     frame.Packet // what tagged or scratch holds
	ff      frame.FrameFragmenter
	uf      frame.UDPFragmenter

	// The receive ring, if it can stop waiting at a deadline, so that
	// timed-out datagrams are swept on a quiet link too, and the deadline
	// it has (ns; 0: none).
	waker    rxWaker
	deadline int64
}

// rxWaker is a receive ring whose readInto can also give up at a
// deadline, with an error wrapping os.ErrDeadlineExceeded. The TPACKET
// ring is one; a backend without it has its timed-out datagrams swept
// when the next frames arrive.
type rxWaker interface {
	setReadDeadline(t time.Time) error
}

// sweepInterval is how often a worker that holds fragments looks for
// datagrams whose time is up.
const sweepInterval = int64(250 * time.Millisecond)

// fragOutcomes maps what the reassembler did with a fragment to the
// frame's outcome. Add never returns TimedOut or Evicted for the fragment
// it is given.
var fragOutcomes = [reassembly.NumOutcomes]Outcome{
	reassembly.Held:            OutcomeFragmentHeld,
	reassembly.Reassembled:     OutcomeFragmentReassembled,
	reassembly.Duplicate:       OutcomeFragmentDuplicate,
	reassembly.Overlap:         OutcomeFragmentOverlap,
	reassembly.Inconsistent:    OutcomeFragmentInconsistent,
	reassembly.TooBig:          OutcomeFragmentTooBig,
	reassembly.Unaligned:       OutcomeFragmentUnaligned,
	reassembly.IncompleteChain: OutcomeFragmentIncompleteChain,
	reassembly.BadECN:          OutcomeFragmentBadECN,
	reassembly.TimedOut:        OutcomeFragmentMalformed,
	reassembly.Evicted:         OutcomeFragmentMalformed,
	reassembly.NoBuffer:        OutcomeFragmentNoBuffer,
	reassembly.Malformed:       OutcomeFragmentMalformed,
}

// initFragments prepares the worker's fragment state.
func (w *worker) initFragments() {
	w.frag.on = w.e.cfg.ReassemblyMemory >= 0
	if wk, ok := w.rx.(rxWaker); ok {
		w.frag.waker = wk
	}
}

// fragment takes a fragment (Decode said r about it) for reassembly and,
// if it completes its datagram, dispatches the datagram. The frame's
// outcome is the reassembler's verdict on it.
func (w *worker) fragment(br *batchRef, r frame.Reason) Outcome {
	in, e, fs := &w.in, w.e, &w.frag
	p, f := &in.pkt, in.data
	dst := p.DstAddr(f)
	if e.addrs.find(dst) == nil && !e.addrs.isGroup(dst) {
		return OutcomeOtherHost
	}
	if v := p.VerifyIPv4HeaderChecksum(f); v != frame.ReasonOK {
		return Outcome(v)
	}
	if fs.r == nil && !w.startReassembly() {
		return Outcome(r)
	}
	if tag, ok := in.meta.strippedVLAN(); ok {
		// Keep the tag with the fragment: the reassembled datagram,
		// and any ICMP error about it, must carry it.
		var ok bool
		if f, ok = fs.withTag(f, p, tag); !ok {
			return OutcomeFragmentMalformed
		}
		p = &fs.pkt
	}
	res := fs.r.Add(f, p, time.Unix(0, in.now))
	fs.dirty, fs.busy = true, true
	if res.SendParamProblem {
		w.fragmentParamProblem(f, p, res.ParamProblem)
	}
	if d := res.Datagram; d != nil {
		w.reassembled(d, br)
		fs.r.Release(d)
	}
	return fragOutcomes[res.Outcome]
}

// startReassembly makes the worker's reassembler, at its first fragment:
// an engine that never sees one never allocates the memory.
func (w *worker) startReassembly() bool {
	fs := &w.frag
	if fs.failed {
		return false
	}
	r, err := reassembly.New(w.e.cfg.reassemblyConfig())
	if err != nil {
		fs.failed = true
		w.e.log.Error("fragment reassembly is off", "worker", w.id, "err", err)
		return false
	}
	fs.r = r
	fs.next = w.in.now + sweepInterval
	return true
}

// withTag copies the fragment f into fs.tagged with tag inserted after the
// MAC addresses, and decodes the copy into fs.pkt.
func (fs *fragState) withTag(f []byte, p *frame.Packet, tag frame.VLANTag) ([]byte, bool) {
	n := int(p.End)
	if cap(fs.tagged) < n+frame.VLANTagLen {
		fs.tagged = make([]byte, max(n+frame.VLANTagLen, 2048))
	}
	b := fs.tagged[:cap(fs.tagged)]
	copy(b, f[:n])
	n, err := frame.InsertVLANTag(b, n, tag)
	if err != nil {
		return nil, false
	}
	fs.pkt.Decode(b[:n])
	return b[:n], fs.pkt.IsFragment()
}

// reassembled dispatches a datagram that fragments made, as the frame
// being handled for the time being: it is counted in
// Counters.Reassembled under the outcome a frame would have had.
func (w *worker) reassembled(d *reassembly.Datagram, br *batchRef) {
	in := &w.in
	data, meta, pkt := in.data, in.meta, in.pkt
	in.data, in.reasm, in.turned = d.Frame(), d, false
	// Its VLAN tags are in the frame (fragment put them there), and no
	// device verified a checksum over the whole datagram.
	in.meta.flags &^= metaVLAN | metaCsumPartial | metaCsumValid
	var o Outcome
	switch r := in.pkt.Decode(in.data); r {
	case frame.ReasonOK:
		o = w.udp(br)
	case frame.ReasonICMPv4:
		w.icmpv4()
		o = Outcome(r)
	case frame.ReasonICMPv6:
		w.icmpv6()
		o = Outcome(r)
	default:
		o = Outcome(r)
	}
	w.count[cReasmOutcome0+counter(o)]++
	in.data, in.meta, in.pkt, in.reasm, in.turned = data, meta, pkt, nil, false
}

// fragmentTick sweeps the datagrams whose time is up, at most every
// sweepInterval, and sends the Time Exceeded messages they call for.
func (w *worker) fragmentTick(now int64) {
	fs := &w.frag
	if fs.r == nil || now < fs.next {
		return
	}
	fs.next = now + sweepInterval
	t := time.Unix(0, now)
	for fs.r.NextExpired(t, &fs.expired) {
		w.timeExceeded(&fs.expired, now)
	}
	fs.dirty = true
}

// publishFragments copies the reassembler's counts into the worker's
// counters, when they moved.
func (w *worker) publishFragments() {
	fs := &w.frag
	if fs.r == nil || !fs.dirty {
		return
	}
	fs.dirty = false
	st := fs.r.Stats()
	c := &w.count
	for i, m := range [2]*reassembly.MIB{&st.IP, &st.IP6} {
		b := cReasmStat0 + counter(6*i)
		c[b], c[b+1], c[b+2], c[b+3], c[b+4], c[b+5] = m.ReasmReqds, m.ReasmOKs, m.ReasmFails, m.ReasmTimeout, m.ReasmOverlaps, m.InHdrErrors
	}
	c[cReasmEvictions] = st.Evictions
	c[cReasmSourceEvictions] = st.SourceEvictions
	c[cReasmQueues] = uint64(st.Queues)
	c[cReasmFragments] = st.Fragments[reassembly.Held]
	c[cReasmMemoryInUse] = uint64(st.MemoryInUse)
	c[cReasmMemoryLimit] = uint64(st.MemoryLimit)
	fs.busy = st.Queues > 0 || st.Expired > 0
}

// read waits for the next batch. While the worker holds fragments the
// ring's deadline is the next sweep, if the ring has one, so that
// timed-out datagrams are reported and their memory freed on a quiet link
// too; the deadline stays set from one wait to the next and costs nothing
// per wait.
func (w *worker) read(b rxBatch) error {
	fs := &w.frag
	if fs.waker != nil {
		want := int64(0)
		if fs.busy {
			want = fs.next
		}
		if want != fs.deadline {
			t := time.Time{}
			if want != 0 {
				t = time.Unix(0, want)
			}
			if fs.waker.setReadDeadline(t) == nil {
				fs.deadline = want
			}
		}
	}
	return w.rx.readInto(b)
}

// wokenForFragments reports whether read returned because a sweep was
// due, after doing the sweep and sending what it called for.
func (w *worker) wokenForFragments(err error) bool {
	if !errors.Is(err, os.ErrDeadlineExceeded) || w.frag.deadline == 0 {
		return false
	}
	w.fragmentTick(max(time.Now().UnixNano(), w.frag.next))
	w.flush()
	w.publish()
	return true
}

// timeExceeded sends an ICMP Time Exceeded, code 1 ("fragment reassembly
// time exceeded"), about a datagram whose first fragment arrived but which
// did not complete in time (RFC 792, RFC 1122 3.3.2, RFC 8200 4.5), to an
// owned address only (for a shared one the kernel sends its own), within
// the ICMP rules and rate limit.
func (w *worker) timeExceeded(x *reassembly.Expired, now int64) {
	e := w.e
	f, l3 := x.Frame, x.L3Off
	if l3 < frame.EthernetHeaderLen || len(f) < l3+frame.IPv4MinHeaderLen {
		return
	}
	var src, dst netip.Addr
	var protocol uint8
	var upper []byte
	ip := f[l3:]
	if x.IPVersion == 4 {
		h := frame.IPv4(ip)
		src, dst, protocol = h.Source(), h.Destination(), h.Protocol()
		if hl := h.HeaderLength(); hl >= frame.IPv4MinHeaderLen && hl <= len(ip) {
			upper = ip[hl:]
		}
	} else {
		if len(ip) < frame.IPv6HeaderLen {
			return
		}
		h := frame.IPv6(ip)
		src, dst = h.Source(), h.Destination()
		if c, _ := h.WalkExtensionHeaders(); c.Offset <= len(ip) {
			protocol, upper = c.Protocol, ip[c.Offset:]
		}
	}
	la := e.addrs.find(dst)
	if la == nil || !la.owned {
		return
	}
	if frame.Ethernet(f).Destination().IsMulticast() || !e.addrs.isHostSource(src) || isICMPError(protocol, upper) {
		w.count[cICMPSuppressed]++
		return
	}
	buf, ok := w.icmpErrorSlot(now)
	if !ok {
		return
	}
	var tags [frame.MaxVLANTags]frame.VLANTag
	s := w.icmpErrorSpec(f, linkVLANs(f[:l3], &tags), src, dst, w.nextID())
	var n int
	var err error
	if x.IPVersion == 4 {
		n, err = frame.BuildICMPv4Error(buf, s, frame.ICMPv4TimeExceeded, frame.ICMPv4CodeFragReassemblyTime, 0, x.Datagram())
	} else {
		n, err = frame.BuildICMPv6Error(buf, s, frame.ICMPv6TimeExceeded, frame.ICMPv6CodeFragReassemblyTime, 0, x.Datagram())
	}
	s.VLANs = nil
	if err != nil {
		n = 0
	}
	if w.commit(buf, n) {
		w.count[cICMPTimeExceededSent]++
	}
}

// linkVLANs returns the VLAN tags in the link header l2 (up to two, as
// Decode reads them), in tags.
func linkVLANs(l2 []byte, tags *[frame.MaxVLANTags]frame.VLANTag) []frame.VLANTag {
	n := 0
	for off := 12; off+4 <= len(l2)-2 && n < len(tags); off += 4 {
		tags[n] = frame.VLANTag{TPID: uint16(l2[off])<<8 | uint16(l2[off+1]), TCI: uint16(l2[off+2])<<8 | uint16(l2[off+3])}
		n++
	}
	return tags[:n]
}

// fragmentParamProblem sends the ICMPv6 Parameter Problem Linux sends
// about a fragment it refuses (RFC 8200 4.5, RFC 7112), quoting the
// fragment f (p its offsets), within the rules of RFC 4443 2.4 (e) and the
// rate limit, from an owned address only.
func (w *worker) fragmentParamProblem(f []byte, p *frame.Packet, pp reassembly.ParamProblem) {
	in, e := &w.in, w.e
	src, dst := p.SrcAddr(f), p.DstAddr(f)
	la := e.addrs.find(dst)
	if la == nil || !la.owned {
		return
	}
	// A first fragment's upper-layer header is there to see whether
	// it is an ICMPv6 error, which no error may answer.
	var upper []byte
	var protocol uint8
	ip := f[p.L3Off:p.End]
	if c, _ := frame.IPv6(ip).WalkExtensionHeaders(); c.FragmentOffset == 0 && c.Offset <= len(ip) {
		protocol, upper = c.Protocol, ip[c.Offset:]
	}
	if in.meta.kind != kindHost || frame.Ethernet(f).Destination().IsMulticast() ||
		!e.addrs.isHostSource(src) || isICMPError(protocol, upper) {
		w.count[cICMPSuppressed]++
		return
	}
	buf, ok := w.icmpErrorSlot(in.now)
	if !ok {
		return
	}
	// No ID: an ICMPv6 error has no IPv4 header to carry one.
	s := w.icmpErrorSpec(f, p.VLANs[:p.NumVLANs], src, dst, 0)
	n, err := frame.BuildICMPv6Error(buf, s, frame.ICMPv6ParameterProblem, pp.Code, pp.Pointer, p.Datagram(f))
	s.VLANs = nil
	if err != nil {
		n = 0
	}
	if w.commit(buf, n) {
		w.count[cICMPParamProblemSent]++
	}
}

// The way out.

// maxUDPPayload is the most data one UDP datagram from src can carry:
// 65,507 bytes over IPv4, 65,527 over IPv6.
func maxUDPPayload(src netip.Addr) int {
	if src.Is4() {
		return frame.MaxUDPPayloadIPv4
	}
	return frame.MaxUDPPayloadIPv6
}

// answerBuffer returns a buffer holding the frame being handled, to be
// rewritten in place into its answer and committed with commitAnswer: a
// copy in a transmit slot, or a reassembled datagram's own frame, which
// the worker owns until it is released.
func (w *worker) answerBuffer() ([]byte, bool) {
	if w.in.reasm != nil {
		return w.in.data, true
	}
	return w.txForward()
}

// commitAnswer commits the n-byte answer rewritten in buf (answerBuffer's)
// in place: straight from its transmit slot, or as the fragments its path
// MTU calls for.
func (w *worker) commitAnswer(buf []byte, n int) bool {
	if w.in.reasm == nil {
		return w.commit(buf, w.retag(buf, n))
	}
	return w.commitFrame(buf[:n], &w.in.pkt)
}

// commitFrame commits the complete frame f (p its offsets, its VLAN tags
// in the frame), a datagram the engine sends, as the fragments the path
// MTU to its destination calls for; one frame if it fits.
func (w *worker) commitFrame(f []byte, p *frame.Packet) bool {
	e := w.e
	dst := p.DstAddr(f)
	mtu := e.pathMTU(dst, w.in.now)
	var id uint32
	if size := int(p.End - p.L3Off); size > mtu {
		id = e.fragIDs.Next(p.SrcAddr(f), dst)
		if p.IPVersion == frame.IPv4Version {
			// The engine's datagrams go without DF (a request's DF,
			// kept by ReplyInPlace, is the peer's choice, not ours).
			clearDF(frame.IPv4(f[p.L3Off:p.End]))
		}
	}
	ff := &w.frag.ff
	if err := ff.Reset(f, p, mtu, id); err != nil {
		w.count[cTXErrors]++
		return false
	}
	n := ff.Fragments()
	for i := range n {
		buf, ok := w.txNext()
		if !ok {
			w.countFragFail(p.IPVersion, n)
			return false
		}
		k, err := ff.Build(buf, i)
		if err != nil {
			k = 0
		}
		if !w.commit(buf, w.retag(buf, k)) {
			w.countFragFail(p.IPVersion, n)
			return false
		}
	}
	w.countFragOK(p.IPVersion, n)
	return true
}

// clearDF clears an IPv4 header's Don't Fragment flag and mends its
// checksum.
func clearDF(ip frame.IPv4) {
	if !ip.DontFragment() {
		return
	}
	ip[6] &^= 0x40
	ip.SetChecksum(0)
	ip.SetChecksum(ip.CalculateChecksum())
}

// sendSpec builds the datagram s describes (its ID aside) into the
// worker's transmit ring: one frame if it fits the path MTU, else its
// fragments.
func (w *worker) sendSpec(s *frame.UDPSpec) error {
	e := w.e
	src, dst := s.Src.Addr(), s.Dst.Addr()
	if len(s.Payload) > maxUDPPayload(src) {
		w.count[cTXErrors]++
		return errTooBig
	}
	mtu := e.pathMTU(dst, w.in.now)
	if e.ipLen(src, len(s.Payload)) <= mtu {
		s.ID = w.nextID()
		buf, ok := w.txNext()
		if !ok {
			return errNoBuffer
		}
		n, err := frame.BuildUDP(buf, s)
		if err != nil {
			w.count[cTXErrors]++
			return err
		}
		if !w.commit(buf, n) {
			return errBuild
		}
		return nil
	}
	id := e.fragIDs.Next(src, dst)
	s.ID = uint16(id)
	uf := &w.frag.uf
	if err := uf.Reset(s, mtu, id); err != nil {
		w.count[cTXErrors]++
		return err
	}
	family := uint8(6)
	if src.Is4() {
		family = 4
	}
	n := uf.Fragments()
	for i := range n {
		buf, ok := w.txNext()
		if !ok {
			w.countFragFail(family, n)
			return errNoBuffer
		}
		k, err := uf.Build(buf, i)
		if err != nil {
			k = 0
		}
		if !w.commit(buf, k) {
			w.countFragFail(family, n)
			return errBuild
		}
	}
	w.countFragOK(family, n)
	return nil
}

// countFragOK counts a datagram sent as n frames (FragOKs and FragCreates
// if n > 1); countFragFail one of n fragments that could not all be sent.
func (w *worker) countFragOK(family uint8, n int) {
	if n <= 1 {
		return
	}
	b := fragCounterBase(family)
	w.count[b]++
	w.count[b+2] += uint64(n)
}

func (w *worker) countFragFail(family uint8, n int) {
	if n > 1 {
		w.count[fragCounterBase(family)+1]++
	}
}

func fragCounterBase(family uint8) counter {
	if family == 4 {
		return cFragOKs4
	}
	return cFragOKs6
}

// sendSpecLocked is sendSpec for Port sends, through the engine's shared
// transmit ring; e.txMu must be held.
func (e *Engine) sendSpecLocked(s *frame.UDPSpec) error {
	src, dst := s.Src.Addr(), s.Dst.Addr()
	if len(s.Payload) > maxUDPPayload(src) {
		return errTooBig
	}
	mtu := e.pathMTU(dst, time.Now().UnixNano())
	if e.ipLen(src, len(s.Payload)) <= mtu {
		e.txID++
		s.ID = e.txID
		return e.commitLocked(func(buf []byte) (int, error) { return frame.BuildUDP(buf, s) })
	}
	id := e.fragIDs.Next(src, dst)
	s.ID = uint16(id)
	uf := &e.txFrag
	if err := uf.Reset(s, mtu, id); err != nil {
		e.appTXErrors.Add(1)
		return err
	}
	b := 0
	if !src.Is4() {
		b = 3
	}
	n := uf.Fragments()
	for i := range n {
		if err := e.commitLocked(func(buf []byte) (int, error) { return uf.Build(buf, i) }); err != nil {
			e.appFrag[b+1].Add(1)
			return err
		}
	}
	e.appFrag[b].Add(1)
	e.appFrag[b+2].Add(uint64(n))
	return nil
}
