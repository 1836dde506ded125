package engine

import (
	"net/netip"

	"github.com/pktengine/pktengine/frame"
	"github.com/pktengine/pktengine/proto"
)

// ICMP: the engine answers pings to its owned addresses and sends port
// unreachable for their unbound ports. ICMPv6 also carries neighbour
// discovery, which icmpv6 hands to neighbor.go. ICMP errors about the
// engine's own datagrams go to the ports that sent them (icmperror.go).

// icmpv4 answers pings to owned addresses and hands ICMP errors about
// the engine's datagrams to the ports that sent them (icmperror.go).
func (w *worker) icmpv4() {
	in, e := &w.in, w.e
	p, f := &in.pkt, in.data
	if p.IsFragment() {
		return
	}
	la := e.addrs.find(p.DstAddr(f))
	if la == nil || w.icmpError4() || !la.owned {
		return
	}
	msg := p.ICMPv4(f)
	if msg.Type() != frame.ICMPv4Echo || msg.Code() != 0 || !e.addrs.isHostSource(p.SrcAddr(f)) ||
		p.VerifyIPv4HeaderChecksum(f) != frame.ReasonOK || !msg.IsChecksumValid() {
		return
	}
	w.answerPing(frame.ICMPv4EchoReplyInPlace)
}

// icmpv6 handles neighbour discovery for the engine's addresses and
// pings to owned ones.
func (w *worker) icmpv6() {
	in := &w.in
	p, f := &in.pkt, in.data
	if p.IsFragment() || p.Flags&frame.FlagIPv6ExtHeaders != 0 {
		return
	}
	ip, msg := p.IPv6(f), p.ICMPv6(f)
	if in.meta.mustVerifyChecksum() &&
		!msg.IsChecksumValid(ip.PseudoHeaderSum(proto.IPProtoICMPv6, uint32(len(msg)))) {
		return
	}
	switch t := msg.Type(); {
	case t == frame.ICMPv6NeighborSolicitation:
		w.neighborSolicitation(ip, msg)
	case t == frame.ICMPv6NeighborAdvertisement:
		w.neighborAdvertisement(ip, msg)
	case t == frame.ICMPv6EchoRequest:
		w.ping6(ip, msg)
	case t < 128 && w.e.addrs.find(ip.Destination()) != nil:
		w.icmpError6(msg)
	}
}

// ping6 answers an echo request to an owned address.
func (w *worker) ping6(ip frame.IPv6, msg frame.ICMPv6) {
	e := w.e
	if la := e.addrs.find(ip.Destination()); la == nil || !la.owned || msg.Code() != 0 ||
		!e.addrs.isHostSource(ip.Source()) {
		return
	}
	w.answerPing(frame.ICMPv6EchoReplyInPlace)
}

// answerPing turns the echo request being handled into its reply with
// reply (frame.ICMPv4EchoReplyInPlace or ICMPv6EchoReplyInPlace) and
// sends it.
func (w *worker) answerPing(reply func(f []byte, p *frame.Packet, ttl uint8) (int, error)) {
	e, p := w.e, &w.in.pkt
	buf, ok := w.answerBuffer()
	if !ok {
		return
	}
	n := int(p.End)
	if _, err := reply(buf[:n], p, e.cfg.TTL); err != nil {
		return
	}
	frame.Ethernet(buf).SetSource(e.mac)
	if w.commitAnswer(buf, n) {
		w.count[cPingAnswered]++
	}
}

// portUnreachable answers a datagram to an unbound port of an owned
// address with ICMP port unreachable (RFC 1122 section 4.1.3.1, RFC 4443
// section 3.1), unless the rules against error storms forbid it (RFC 1122
// section 3.2.2, RFC 4443 section 2.4 (e)) or the token bucket is empty.
// ReasonOK already ruled out fragments, and the datagram is no ICMP
// error; what is left to check is that the datagram came from one host
// to this host alone.
func (w *worker) portUnreachable() {
	in, e := &w.in, w.e
	p, f := &in.pkt, in.data
	src := p.SrcAddr(f)
	if in.meta.kind != kindHost || frame.Ethernet(f).Destination().IsMulticast() ||
		!e.addrs.isHostSource(src) {
		w.count[cICMPSuppressed]++
		return
	}
	buf, ok := w.icmpErrorSlot(in.now)
	if !ok {
		return
	}
	s := w.icmpErrorSpec(f, p.VLANs[:p.NumVLANs], src, p.DstAddr(f), w.nextID())
	var n int
	var err error
	if p.IPVersion == frame.IPv4Version {
		n, err = frame.BuildICMPv4DestUnreachable(buf, s, frame.ICMPv4CodePortUnreach, p.Datagram(f))
	} else {
		n, err = frame.BuildICMPv6DestUnreachable(buf, s, frame.ICMPv6CodePortUnreachable, p.Datagram(f))
	}
	s.VLANs = nil
	if err != nil {
		n = 0
	}
	if w.commit(buf, w.retag(buf, n)) {
		w.count[cICMPSent]++
	}
}

// icmpErrorSlot returns a transmit slot for an ICMP error that the rules
// against error storms allowed, if the ICMP token bucket has a token at
// now; the errors it turns away are counted as rate-limited.
func (w *worker) icmpErrorSlot(now int64) ([]byte, bool) {
	e := w.e
	if !e.icmpBucket.allow(now, &e.icmpRate) {
		w.count[cICMPRateLimited]++
		return nil, false
	}
	return w.txNext()
}

// icmpErrorSpec fills the worker's IP spec for an ICMP error about frame
// f, which src sent to the engine's address dst: from dst back to src,
// to f's source MAC address, on vlans. The caller clears its VLANs once
// the error is built.
func (w *worker) icmpErrorSpec(f []byte, vlans []frame.VLANTag, src, dst netip.Addr, id uint16) *frame.IPSpec {
	e := w.e
	s := &w.ipSpec
	*s = frame.IPSpec{
		SrcMAC: e.mac,
		DstMAC: frame.Ethernet(f).Source(),
		VLANs:  vlans,
		Src:    dst,
		Dst:    src,
		TTL:    e.cfg.TTL,
		ID:     id,
	}
	return s
}
