package engine

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Path MTU. A Fragmentation Needed (RFC 1191) or Packet Too Big (RFC
// 8201) about a datagram a port sent lowers the path MTU to its
// destination, as Linux's route exceptions do: never raised by a message,
// never below the minimum, forgotten after ten minutes. Everything the
// engine sends to that destination is fragmented to fit.

const (
	// PMTUExpiry is how long a lowered path MTU holds: Linux's
	// net.ipv4.route.mtu_expires (ip_rt_mtu_expires), 10 minutes.
	PMTUExpiry = 10 * time.Minute
	// MinPMTU4 is the lowest path MTU an ICMP message can set for IPv4:
	// Linux's net.ipv4.route.min_pmtu (552). A smaller value is taken as
	// 552; RFC 791's 68 is the least any link may have, and 576 what
	// every host must be able to reassemble.
	MinPMTU4 = 552
	// MinPMTU6 is IPv6's minimum link MTU (RFC 8200 section 5): a Packet
	// Too Big below it sets it to 1280.
	MinPMTU6 = 1280
)

// pmtuSets and pmtuWays shape the cache: a fixed table of 1024 entries,
// four per set, a set chosen by a keyed hash of the destination, so that
// the cache is bounded and nothing is allocated, whatever the number of
// destinations. A full set gives up the entry that expires first.
const (
	pmtuSets = 256
	pmtuWays = 4
)

type pmtuEntry struct {
	dst     netip.Addr
	mtu     int
	expires int64 // ns since the epoch; 0: empty
}

// pmtuCache holds the lowered path MTUs. until is when the last entry
// expires, so that a lookup costs one atomic load, and no lock, while no
// path MTU was lowered in the last PMTUExpiry (the usual case).
type pmtuCache struct {
	mu    sync.RWMutex
	seed  uint64
	until atomic.Int64
	sets  [pmtuSets][pmtuWays]pmtuEntry
}

// active reports whether some path MTU may be lowered at now.
func (c *pmtuCache) active(now int64) bool { return c.until.Load() > now }

func (c *pmtuCache) set(dst netip.Addr) *[pmtuWays]pmtuEntry {
	return &c.sets[hashAddr(dst, c.seed)%pmtuSets]
}

// lookup returns the path MTU to dst at now, if one was lowered and has
// not expired.
func (c *pmtuCache) lookup(dst netip.Addr, now int64) (int, bool) {
	if !c.active(now) {
		return 0, false
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	for _, en := range c.set(dst) {
		if en.expires > now && en.dst == dst {
			return en.mtu, true
		}
	}
	return 0, false
}

// update lowers the path MTU to dst to mtu (raised to the family's
// minimum) for PMTUExpiry, unless it is not below what dst has now
// (linkMTU, or the cached value). It reports whether anything changed.
func (c *pmtuCache) update(dst netip.Addr, mtu, linkMTU int, now int64) bool {
	if dst.Is4() {
		mtu = max(mtu, MinPMTU4)
	} else {
		mtu = max(mtu, MinPMTU6)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.set(dst)
	victim := 0
	for i := range s {
		en := &s[i]
		if en.expires > now && en.dst == dst {
			if mtu >= en.mtu {
				return false
			}
			en.mtu, en.expires = mtu, now+int64(PMTUExpiry)
			c.until.Store(max(c.until.Load(), en.expires))
			return true
		}
		if en.expires < s[victim].expires {
			victim = i
		}
	}
	if mtu >= linkMTU {
		return false
	}
	s[victim] = pmtuEntry{dst: dst, mtu: mtu, expires: now + int64(PMTUExpiry)}
	c.until.Store(max(c.until.Load(), s[victim].expires))
	return true
}

// pathMTU returns the largest IP packet the engine sends to dst at now:
// the interface's MTU, or less if ICMP lowered the path MTU.
func (e *Engine) pathMTU(dst netip.Addr, now int64) int {
	if m, ok := e.pmtu.lookup(dst, now); ok && m < e.mtu {
		return m
	}
	return e.mtu
}

// PathMTU returns the largest IP packet the engine sends to dst unfragmented
// now: the interface's MTU, or the path MTU a Fragmentation Needed or
// Packet Too Big lowered it to within the last PMTUExpiry.
func (e *Engine) PathMTU(dst netip.Addr) int { return e.pathMTU(dst.Unmap(), time.Now().UnixNano()) }
