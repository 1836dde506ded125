package engine

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/pktengine/pktengine/frame"
	"github.com/pktengine/pktengine/proto"
)

// Neighbours: the engine answers ARP (RFC 826) and neighbour
// solicitations (RFC 4861) for its owned addresses, learns the MAC
// addresses of the hosts that ask, and resolves next hops for Port.Send.
// Replies never need the table: they go to the MAC the request came from.

// maxNeighbors bounds the neighbour table, entries being resolved
// included. When it is full, an entry learned from the link replaces a
// learned entry picked at random, so that a flood of ARP requests from
// made-up senders can neither grow the table nor lock the real
// neighbours out of it for good.
const maxNeighbors = 4096

// errNeighborTableFull fails a send whose next hop cannot even be
// solicited because the table is full of next hops being resolved.
var errNeighborTableFull = os.NewSyscallError("sendto", syscall.ENOBUFS)

// arp learns the sender of an ARP message about one of the engine's
// addresses and answers requests for owned ones. Requests from 0.0.0.0
// are address probes (RFC 5227) and are answered too: that is how an
// owner defends its address.
func (w *worker) arp() {
	in, e := &w.in, w.e
	p, f := &in.pkt, in.data
	a := p.ARP(f)
	la := e.addrs.find(a.TargetIP())
	if la == nil {
		return
	}
	if sip := a.SenderIP(); !sip.IsUnspecified() && e.addrs.find(sip) == nil && e.addrs.onLink(sip) {
		if e.neigh.learn(sip, a.SenderMAC(), in.now, true) {
			w.count[cNeighborsLearned]++
		}
	}
	if a.Op() != frame.ARPRequest || !la.owned {
		return
	}
	buf, ok := w.txForward()
	if !ok {
		return
	}
	n := int(p.End)
	if _, err := frame.ARPReplyInPlace(buf[:n], p, e.mac); err != nil {
		return
	}
	if w.commit(buf, w.retag(buf, n)) {
		w.count[cARPAnswered]++
	}
}

// neighborSolicitation learns the sender of a solicitation for one of
// the engine's addresses and answers it for an owned one. The validity
// checks are RFC 4861 section 7.1.1's; frame.AnswerNeighborSolicitation
// repeats them for the answer.
func (w *worker) neighborSolicitation(ip frame.IPv6, msg frame.ICMPv6) {
	in, e := &w.in, w.e
	if !msg.IsNeighborMessage() || msg.Code() != 0 || ip.HopLimit() != frame.NDPHopLimit {
		return
	}
	la := e.addrs.find(msg.NDPTarget())
	if la == nil {
		return
	}
	if src := ip.Source(); !src.IsUnspecified() && e.addrs.find(src) == nil {
		if lla, ok := msg.SourceLinkAddress(); ok && e.neigh.learn(src, lla, in.now, true) {
			w.count[cNeighborsLearned]++
		}
	}
	if !la.owned {
		return
	}
	buf, ok := w.txNext()
	if !ok {
		return
	}
	n, err := frame.AnswerNeighborSolicitation(buf, in.data, &in.pkt, e.mac)
	if err != nil {
		n = 0
	}
	if w.commit(buf, w.retag(buf, n)) {
		w.count[cNDPAnswered]++
	}
}

// neighborAdvertisement updates an entry the engine has for the target
// (RFC 4861 section 7.2.5: an advertisement nobody asked for creates
// none).
func (w *worker) neighborAdvertisement(ip frame.IPv6, msg frame.ICMPv6) {
	in, e := &w.in, w.e
	if !msg.IsNeighborMessage() || msg.Code() != 0 || ip.HopLimit() != frame.NDPHopLimit {
		return
	}
	target := msg.NDPTarget()
	if e.addrs.find(target) != nil {
		e.log.Warn("neighbour advertisement for an engine address", "addr", target, "from", frame.Ethernet(in.data).Source())
		return
	}
	mac, ok := msg.TargetLinkAddress()
	if !ok {
		mac = frame.Ethernet(in.data).Source()
	}
	if e.neigh.learn(target, mac, in.now, false) {
		w.count[cNeighborsLearned]++
	}
}

// nextHop returns the on-link neighbour a datagram to dst goes through
// (invalid if dst is off-link and there is no gateway), or for a
// broadcast or multicast dst the MAC address it goes to.
func (e *Engine) nextHop(dst netip.Addr) (nh netip.Addr, groupMAC frame.MAC, group bool) {
	if e.addrs.isBroadcast(dst) {
		return netip.Addr{}, frame.BroadcastMAC, true
	}
	if mac, ok := multicastMAC(dst); ok {
		return netip.Addr{}, mac, true
	}
	if e.addrs.onLink(dst) {
		return dst, frame.MAC{}, false
	}
	if dst.Is4() {
		return e.cfg.Gateway4, frame.MAC{}, false
	}
	return e.cfg.Gateway6, frame.MAC{}, false
}

// nextHopKnown returns the MAC address a datagram to dst goes to if it
// needs no resolution.
func (e *Engine) nextHopKnown(dst netip.Addr) (frame.MAC, bool) {
	nh, mac, group := e.nextHop(dst)
	if group {
		return mac, true
	}
	mac, updated, ok := e.neigh.lookup(nh)
	if !ok || time.Now().UnixNano()-updated > int64(e.cfg.NeighborTTL) {
		return frame.MAC{}, false
	}
	return mac, true
}

// nextHopMAC returns the MAC address a datagram to dst goes to,
// resolving the next hop if need be.
func (e *Engine) nextHopMAC(dst, src netip.Addr) (frame.MAC, error) {
	nh, mac, group := e.nextHop(dst)
	switch {
	case group:
		return mac, nil
	case !nh.IsValid():
		return frame.MAC{}, os.NewSyscallError("sendto", syscall.ENETUNREACH)
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
			if _, solicit, _ := e.neigh.want(nh, now.UnixNano(), int64(retry)); solicit {
				e.solicit(nh, src)
			}
		}
		return mac, nil
	}
	ctx, cancel := context.WithTimeout(e.ctx, wait)
	defer cancel()
	for {
		ready, solicit, err := e.neigh.want(nh, time.Now().UnixNano(), int64(retry))
		if err != nil {
			return frame.MAC{}, err
		}
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
// for nh through the engine's shared transmit ring.
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
				VLANs:     e.linkVLANs,
			})
		}
		n, err := buildNeighborSolicitation(buf, e.mac, src, nh)
		for _, tag := range e.linkVLANs {
			if err == nil {
				n, err = frame.InsertVLANTag(buf, n, tag)
			}
		}
		return n, err
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

// neighbor is one entry of the neighbour table.
type neighbor struct {
	mac     frame.MAC
	valid   bool          // mac is known
	updated int64         // ns, when mac was last confirmed
	probed  int64         // ns, when the engine last solicited it
	ready   chan struct{} // closed when mac first becomes known
}

// neighbors maps IP addresses on the link to MAC addresses, for the
// engine's own sends. Workers write it when ARP or NDP messages arrive,
// rarely; senders read it.
type neighbors struct {
	mu sync.RWMutex
	m  map[netip.Addr]*neighbor
}

func newNeighbors() *neighbors { return &neighbors{m: make(map[netip.Addr]*neighbor)} }

// lookup returns a's MAC if it is known, and when it was confirmed.
func (n *neighbors) lookup(a netip.Addr) (mac frame.MAC, updated int64, ok bool) {
	n.mu.RLock()
	e := n.m[a]
	if e != nil && e.valid {
		mac, updated, ok = e.mac, e.updated, true
	}
	n.mu.RUnlock()
	return mac, updated, ok
}

// learn records that a is at mac. With create false only an existing
// entry (complete or being resolved) is updated, as RFC 826's merge step
// and RFC 4861 section 7.2.5 prescribe for information nobody asked
// for. It reports whether the table changed.
func (n *neighbors) learn(a netip.Addr, mac frame.MAC, now int64, create bool) bool {
	if !a.IsValid() || mac.IsMulticast() || mac.IsZero() {
		return false
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	e := n.m[a]
	if e == nil {
		if !create || !n.makeRoomLocked() {
			return false
		}
		e = &neighbor{ready: make(chan struct{})}
		n.m[a] = e
	}
	changed := !e.valid || e.mac != mac
	e.mac, e.updated = mac, now
	if !e.valid {
		e.valid = true
		close(e.ready)
	}
	return changed
}

// makeRoomLocked makes sure one more entry fits, evicting a learned
// entry if the table is full: the first that map iteration, which starts
// at a random place, finds. Entries being resolved stay: a sender waits
// for them. It reports false if there is no room.
func (n *neighbors) makeRoomLocked() bool {
	if len(n.m) < maxNeighbors {
		return true
	}
	for a, e := range n.m {
		if e.valid {
			delete(n.m, a)
			return true
		}
	}
	return false
}

// want returns the entry for a, creating an unresolved one if there is
// none, and whether the caller should send a solicitation now: none was
// sent within retry nanoseconds.
func (n *neighbors) want(a netip.Addr, now, retry int64) (ready <-chan struct{}, solicit bool, err error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	e := n.m[a]
	if e == nil {
		if !n.makeRoomLocked() {
			return nil, false, errNeighborTableFull
		}
		e = &neighbor{ready: make(chan struct{})}
		n.m[a] = e
	}
	if now-e.probed >= retry {
		e.probed = now
		solicit = true
	}
	return e.ready, solicit, nil
}

// forget removes an entry that never resolved, so that a later send
// starts over.
func (n *neighbors) forget(a netip.Addr) {
	n.mu.Lock()
	if e := n.m[a]; e != nil && !e.valid {
		delete(n.m, a)
	}
	n.mu.Unlock()
}

// multicastMAC returns the Ethernet address a broadcast or multicast IP
// destination maps to (RFC 1112 section 6.4, RFC 2464 section 7).
func multicastMAC(a netip.Addr) (frame.MAC, bool) {
	switch {
	case a.Is4() && a.IsMulticast():
		b := a.As4()
		return frame.MAC{0x01, 0x00, 0x5e, b[1] & 0x7f, b[2], b[3]}, true
	case a.Is6() && a.IsMulticast():
		return frame.IPv6MulticastMAC(a.As16()), true
	}
	return frame.MAC{}, false
}

// neighborGroups are the groups the engine joins so that neighbour
// discovery reaches it on a NIC that filters multicast: the solicited-
// node group of each owned IPv6 address (RFC 4861 section 7.2.1), where
// solicitations for it go. The kernel has joined those of shared ones.
// (multicast.go joins them, with all-nodes, and reports them with MLD.)
func (e *Engine) neighborGroups() []netip.Addr {
	var gs []netip.Addr
	for _, la := range e.addrs.list {
		if la.owned && la.addr.Is6() {
			if g := solicitedNode(la.addr); !slices.Contains(gs, g) {
				gs = append(gs, g)
			}
		}
	}
	return gs
}

// solicitedNode returns the solicited-node multicast address of a (RFC
// 4291 section 2.7.1): ff02::1:ff00:0/104 with a's low 24 bits.
func solicitedNode(a netip.Addr) netip.Addr {
	b := a.As16()
	return netip.AddrFrom16([16]byte{0: 0xff, 1: 0x02, 11: 0x01, 12: 0xff, 13: b[13], 14: b[14], 15: b[15]})
}
