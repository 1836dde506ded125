package engine

import (
	"net/netip"
	"sync"

	"github.com/pktengine/pktengine/frame"
)

// maxNeighbors bounds the neighbour table, so that a flood of ARP
// requests from made-up senders cannot grow it without end. Entries
// being resolved for a send are always admitted.
const maxNeighbors = 4096

// neighbor is one entry of the neighbour table.
type neighbor struct {
	mac     frame.MAC
	valid   bool          // mac is known
	updated int64         // ns, when mac was last confirmed
	probed  int64         // ns, when the engine last solicited it
	ready   chan struct{} // closed when mac first becomes known
}

// neighbors maps IP addresses on the link to MAC addresses, for the
// engine's own sends (Port.Send). Replies never consult it: they go to
// the MAC the request came from. Workers write it when ARP or NDP
// messages arrive, rarely; senders read it.
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
		if !create || len(n.m) >= maxNeighbors {
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

// want returns the entry for a, creating an unresolved one if there is
// none, and whether the caller should send a solicitation now: none was
// sent within retry nanoseconds.
func (n *neighbors) want(a netip.Addr, now, retry int64) (ready <-chan struct{}, solicit bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	e := n.m[a]
	if e == nil {
		e = &neighbor{ready: make(chan struct{})}
		n.m[a] = e
	}
	if now-e.probed >= retry {
		e.probed = now
		solicit = true
	}
	return e.ready, solicit
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

// solicitedNode returns the solicited-node multicast address of a (RFC
// 4291 section 2.7.1): ff02::1:ff00:0/104 with a's low 24 bits.
func solicitedNode(a netip.Addr) netip.Addr {
	b := a.As16()
	return netip.AddrFrom16([16]byte{0: 0xff, 1: 0x02, 11: 0x01, 12: 0xff, 13: b[13], 14: b[14], 15: b[15]})
}
