package engine

import (
	"fmt"
	"net/netip"
)

// AddrInfo describes one of the engine's addresses.
type AddrInfo struct {
	// Prefix is the address with its on-link prefix length.
	Prefix netip.Prefix
	// Owned is true for an address the kernel does not have on any of
	// its interfaces: the engine answers ARP or neighbour solicitations
	// for it and the kernel never answers for it. A shared address is
	// one the kernel has too; see docs/ENGINE.md for how the kernel is
	// kept quiet about the engine's ports on it.
	Owned bool
}

// Addr returns the address.
func (a AddrInfo) Addr() netip.Addr { return a.Prefix.Addr() }

// localAddr is an AddrInfo with what the receive path needs precomputed.
type localAddr struct {
	addr   netip.Addr
	prefix netip.Prefix // masked
	owned  bool
	bcast  netip.Addr // IPv4 directed broadcast, or invalid (/31, /32, IPv6)
}

// addrSet is the engine's addresses. It is built once at Open and never
// changes, so the workers read it without synchronisation.
type addrSet struct {
	list []localAddr
}

func newAddrSet(infos []AddrInfo) (*addrSet, error) {
	s := &addrSet{}
	for _, ai := range infos {
		a := ai.Prefix.Addr().Unmap()
		if !a.IsValid() || a.IsUnspecified() || a.IsMulticast() || a.IsLoopback() ||
			(a.Is4() && a == limitedBroadcast) {
			return nil, fmt.Errorf("engine: %v is not a unicast address the engine can serve", ai.Prefix.Addr())
		}
		if s.find(a) != nil {
			continue
		}
		p := netip.PrefixFrom(a, ai.Prefix.Bits()).Masked()
		la := localAddr{addr: a, prefix: p, owned: ai.Owned}
		if a.Is4() && p.Bits() <= 30 {
			la.bcast = directedBroadcast(p)
		}
		s.list = append(s.list, la)
	}
	return s, nil
}

var limitedBroadcast = netip.AddrFrom4([4]byte{255, 255, 255, 255})

func directedBroadcast(p netip.Prefix) netip.Addr {
	b := p.Addr().As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v |= 1<<(32-p.Bits()) - 1
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// find returns the engine address a, or nil.
func (s *addrSet) find(a netip.Addr) *localAddr {
	for i := range s.list {
		if s.list[i].addr == a {
			return &s.list[i]
		}
	}
	return nil
}

// isBroadcast reports whether a is the limited broadcast address or the
// directed broadcast of one of the engine's IPv4 prefixes.
func (s *addrSet) isBroadcast(a netip.Addr) bool {
	if !a.Is4() {
		return false
	}
	if a == limitedBroadcast {
		return true
	}
	for i := range s.list {
		if s.list[i].bcast == a {
			return true
		}
	}
	return false
}

// isGroup reports whether a is a destination several hosts receive:
// multicast or broadcast.
func (s *addrSet) isGroup(a netip.Addr) bool { return a.IsMulticast() || s.isBroadcast(a) }

// has reports whether the engine has an address of a's family.
func (s *addrSet) has(is4 bool) bool {
	for i := range s.list {
		if s.list[i].addr.Is4() == is4 {
			return true
		}
	}
	return false
}

// source picks the address to send to dst from (cf. RFC 6724, reduced
// to what a handful of addresses on one link needs): an address of the
// same family whose prefix holds dst, else the first of that family.
func (s *addrSet) source(dst netip.Addr) (netip.Addr, bool) {
	var first netip.Addr
	for i := range s.list {
		la := &s.list[i]
		if la.addr.Is4() != dst.Is4() {
			continue
		}
		if la.prefix.Contains(dst) {
			return la.addr, true
		}
		if !first.IsValid() {
			first = la.addr
		}
	}
	return first, first.IsValid()
}

// onLink reports whether dst is reachable without a router: in one of the
// engine's prefixes, or link-local.
func (s *addrSet) onLink(dst netip.Addr) bool {
	if dst.IsLinkLocalUnicast() || dst.IsMulticast() {
		return true
	}
	for i := range s.list {
		if s.list[i].prefix.Contains(dst) {
			return true
		}
	}
	return false
}

// isHostSource reports whether src can be the source of a datagram worth
// answering: one single remote host. RFC 1122 section 3.2.1.3 and 3.2.2
// (IPv4) and RFC 4443 section 2.4 (IPv6) rule out the unspecified
// address, broadcast, multicast, loopback (which must never appear on a
// wire) and, for IPv4, "this network" (0/8) and class E (240/4); an
// address of the engine's own is a reflection or a spoof.
func (s *addrSet) isHostSource(src netip.Addr) bool {
	if !src.IsValid() || src.IsUnspecified() || src.IsMulticast() || src.IsLoopback() {
		return false
	}
	if src.Is4() {
		b := src.As4()
		if b[0] == 0 || b[0] >= 240 || s.isBroadcast(src) {
			return false
		}
	} else if src.Is4In6() {
		return false
	}
	return s.find(src) == nil
}
