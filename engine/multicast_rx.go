package engine

import (
	"github.com/pktengine/pktengine/frame"
	"github.com/pktengine/pktengine/proto"
)

// The receive side of multicast.go: IGMP and MLD messages, which the
// kernel filter passes to the worker (queries, and other hosts' IGMPv1/v2
// and MLDv1 reports). They are rare; each is validated here and handed to
// the engine's multicast state under its lock.

// igmp reads an IGMP message (RFC 3376 section 4, RFC 2236 section 2):
// a query to answer, or another host's report that stands for the
// engine's own while an older querier is present. Like Linux, the engine
// takes queries from any source and without a Router Alert option (which
// IGMPv1 queries lack).
func (w *worker) igmp() {
	in, m := &w.in, w.e.mcast
	p, f := &in.pkt, in.data
	if p.IsFragment() || p.VerifyIPv4HeaderChecksum(f) != frame.ReasonOK {
		return
	}
	msg := p.IGMP(f)
	dst := p.DstAddr(f)
	if len(msg) < frame.IGMPHeaderLen || !dst.IsMulticast() && w.e.addrs.find(dst) == nil {
		return
	}
	switch msg.Type() {
	case frame.IGMPMembershipQuery:
		q, err := frame.ParseIGMPQuery(msg)
		if err != nil || !msg.IsChecksumValid() {
			m.invalidQueries.Add(1)
			return
		}
		m.heardQuery(&q, in.now)
	case frame.IGMPv1MembershipReport, frame.IGMPv2MembershipReport:
		if msg.IsChecksumValid() {
			m.heardReport(msg.GroupAddress(), in.now)
		}
	}
}

// mld reads an MLD message (RFC 3810 section 5, RFC 2710 section 3) and
// reports true, or reports false for any other ICMPv6 message. Queries
// must come from a link-local address with hop limit 1 and a Router Alert
// option (RFC 3810 section 6.2, as Linux checks); other hosts' MLDv1
// reports likewise, but from a link-local or the unspecified address.
func (w *worker) mld() bool {
	in, m := &w.in, w.e.mcast
	p, f := &in.pkt, in.data
	msg := p.ICMPv6(f)
	typ := msg.Type()
	switch typ {
	case frame.MLDQuery, frame.MLDv1Report, frame.MLDv1Done, frame.MLDv2Report:
	default:
		return false
	}
	if typ != frame.MLDQuery && typ != frame.MLDv1Report || p.IsFragment() {
		return true
	}
	ip := p.IPv6(f)
	src, dst := ip.Source(), ip.Destination()
	valid := ip.HopLimit() == 1 && mldRouterAlert(ip) && len(msg) >= frame.MLDv1Len &&
		(src.IsLinkLocalUnicast() || typ == frame.MLDv1Report && src.IsUnspecified()) &&
		(dst.IsMulticast() || w.e.addrs.find(dst) != nil) &&
		(!in.meta.mustVerifyChecksum() || msg.IsChecksumValid(ip.PseudoHeaderSum(proto.IPProtoICMPv6, uint32(len(msg)))))
	if typ == frame.MLDv1Report {
		if valid {
			m.heardReport(frame.MLD(msg).MulticastAddress(), in.now)
		}
		return true
	}
	q, err := frame.ParseMLDQuery(frame.MLD(msg))
	if !valid || err != nil {
		m.invalidQueries.Add(1)
		return true
	}
	m.heardQuery(&q, in.now)
	return true
}

// mldRouterAlert reports whether ip, whose extension headers Decode has
// checked, starts them with a Hop-by-Hop header holding the Router Alert
// option for MLD (RFC 2711: value 0).
func mldRouterAlert(ip frame.IPv6) bool {
	if ip.NextHeader() != proto.IPProtoHopByHop {
		return false
	}
	h := ip[frame.IPv6HeaderLen:]
	opts := h[2 : (int(h[1])+1)*8]
	for len(opts) > 0 {
		if opts[0] == frame.IPv6OptionPad1 {
			opts = opts[1:]
			continue
		}
		if len(opts) < 2 || 2+int(opts[1]) > len(opts) {
			return false
		}
		if opts[0] == frame.IPv6OptionRouterAlert && opts[1] == 2 && opts[2] == 0 && opts[3] == 0 {
			return true
		}
		opts = opts[2+int(opts[1]):]
	}
	return false
}
