package engine

import (
	"net"
	"net/netip"
	"os"
	"slices"
	"syscall"
)

// The API of multicast.go: the groups of the engine and the membership
// calls of its ports, as a socket has them (RFC 3678), with the errors
// Linux's setsockopt returns (TestLabConnMulticastAgainstKernel compares
// them with the kernel's).

// GroupInfo describes a group joined on the engine's interface: the
// interface state the engine reports for it (RFC 3376 section 3.2) and
// what holds it.
type GroupInfo struct {
	Group netip.Addr
	// Exclude is the filter mode: receive from every source but Sources
	// (true), or from Sources only.
	Exclude bool
	Sources []netip.Addr
	// Ports is the number of ports with a membership; Engine is set for
	// a group the engine joined for itself (all-systems, all-nodes, the
	// solicited-node groups of owned IPv6 addresses).
	Ports  int
	Engine bool
	// Reported is false for the groups no report names (all-systems,
	// all-nodes).
	Reported bool
}

// Groups lists the groups joined on the engine's interface, IPv4 first,
// each in address order.
func (e *Engine) Groups() []GroupInfo {
	m := e.mcast
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []GroupInfo
	for i := range m.fams {
		for _, g := range m.fams[i].sorted() {
			if !g.state.member() {
				continue
			}
			gi := GroupInfo{Group: g.addr, Exclude: g.state.mode == exclude, Sources: slices.Clone(g.state.sources), Reported: g.report}
			for _, mb := range g.members {
				if mb.port == nil {
					gi.Engine = true
				} else {
					gi.Ports++
				}
			}
			out = append(out, gi)
		}
	}
	return out
}

// The ports' side: RFC 3678's membership calls, as a socket has them.

// Errors of the membership calls, as Linux's setsockopt returns them.
var (
	errNotGroup      = os.NewSyscallError("setsockopt", syscall.EINVAL)
	errJoined        = os.NewSyscallError("setsockopt", syscall.EADDRINUSE)
	errNotJoined     = os.NewSyscallError("setsockopt", syscall.EADDRNOTAVAIL)
	errFilterMode    = os.NewSyscallError("setsockopt", syscall.EINVAL)
	errTooManySource = os.NewSyscallError("setsockopt", syscall.ENOBUFS)
)

// groupArgs checks a call's group and source (invalid for none).
func (p *Port) groupArgs(group, source netip.Addr) (netip.Addr, netip.Addr, error) {
	group, source = group.Unmap().WithZone(""), source.Unmap().WithZone("")
	if !group.IsMulticast() || (p.addr.IsValid() && p.addr.Is4() != group.Is4()) {
		return group, source, errNotGroup
	}
	if source.IsValid() && source.Is4() != group.Is4() {
		return group, source, errNotGroup // Linux takes any source of the family
	}
	return group, source, nil
}

// membershipEdit is one of the membership calls: from the port's current
// filter for group (nil without a membership) to the next (nil: none).
type membershipEdit func(cur *sourceFilter, group, source netip.Addr) (*sourceFilter, error)

// changeMembership applies edit to p's membership of group.
func (p *Port) changeMembership(group, source netip.Addr, edit membershipEdit) error {
	g, s, err := p.groupArgs(group, source)
	if err != nil {
		return err
	}
	return p.e.mcast.update(p, g, func(cur *sourceFilter) (*sourceFilter, error) {
		// Under the lock that dropPort takes after Close set closed:
		// no membership outlives the port.
		if p.closed.Load() {
			return nil, net.ErrClosed
		}
		return edit(cur, g, s)
	})
}

func (p *Port) membership(op string, group, source netip.Addr, edit membershipEdit) error {
	if err := p.changeMembership(group, source, edit); err != nil {
		return p.opError(op, err)
	}
	return nil
}

func maxSources(group netip.Addr) int {
	if group.Is4() {
		return maxSources4
	}
	return maxSources6
}

// The membership calls of RFC 3678, as Linux's setsockopt does them.
var (
	joinAny membershipEdit = func(cur *sourceFilter, _, _ netip.Addr) (*sourceFilter, error) {
		if cur != nil {
			return nil, errJoined
		}
		return &sourceFilter{mode: exclude}, nil
	}
	leaveAny membershipEdit = func(cur *sourceFilter, _, _ netip.Addr) (*sourceFilter, error) {
		if cur == nil {
			return nil, errNotJoined
		}
		return nil, nil
	}
	joinSource membershipEdit = func(cur *sourceFilter, g, s netip.Addr) (*sourceFilter, error) {
		switch {
		case !s.IsValid():
			return nil, errNotGroup
		case cur == nil, cur.mode == exclude && !cur.listed:
			return &sourceFilter{mode: include, sources: []netip.Addr{s}, listed: true}, nil
		case cur.mode != include:
			return nil, errFilterMode
		case setHas(cur.sources, s):
			return nil, errNotJoined // Linux: "address already there is an error"
		case len(cur.sources) >= maxSources(g):
			return nil, errTooManySource
		}
		return &sourceFilter{mode: include, sources: setAdd(slices.Clone(cur.sources), s), listed: true}, nil
	}
	leaveSource membershipEdit = func(cur *sourceFilter, _, s netip.Addr) (*sourceFilter, error) {
		switch {
		case !s.IsValid(), cur == nil:
			return nil, errNotGroup
		case cur.mode != include:
			return nil, errFilterMode
		case !setHas(cur.sources, s):
			return nil, errNotJoined
		case len(cur.sources) == 1:
			return nil, nil
		}
		return &sourceFilter{mode: include, sources: setRemove(slices.Clone(cur.sources), s), listed: true}, nil
	}
	blockSource membershipEdit = func(cur *sourceFilter, g, s netip.Addr) (*sourceFilter, error) {
		switch {
		case !s.IsValid(), cur == nil: // Linux: a prior join is needed
			return nil, errNotGroup
		case cur.mode != exclude:
			return nil, errFilterMode
		case setHas(cur.sources, s):
			return nil, errNotJoined // Linux: "address already there is an error"
		case len(cur.sources) >= maxSources(g):
			return nil, errTooManySource
		}
		return &sourceFilter{mode: exclude, sources: setAdd(slices.Clone(cur.sources), s), listed: true}, nil
	}
	unblockSource membershipEdit = func(cur *sourceFilter, _, s netip.Addr) (*sourceFilter, error) {
		switch {
		case !s.IsValid(), cur == nil:
			return nil, errNotGroup
		case cur.mode != exclude:
			return nil, errFilterMode
		case !setHas(cur.sources, s):
			return nil, errNotJoined
		}
		return &sourceFilter{mode: exclude, sources: setRemove(slices.Clone(cur.sources), s), listed: true}, nil
	}
)

// JoinGroup joins group for p from any source, as IP_ADD_MEMBERSHIP and
// IPV6_JOIN_GROUP do for a kernel socket: the engine reports the
// membership (IGMPv3 or MLDv2, or the older version a querier on the link
// speaks), answers queries about it, and adds the group's MAC address to
// the interface's multicast list, so that a NIC that filters multicast
// passes the group's frames.
//
// A datagram to a group joined on the interface, by any port or by the
// engine itself, goes to every port bound to its destination port on the
// group address or on every address of the family, unless the port's own
// filter for the group (if it joined it) leaves out the datagram's source:
// a port that did not join receives every joined group, as a kernel socket
// does with IP_MULTICAST_ALL, the default. A datagram to a group nobody
// joined is not for this host (OutcomeOtherHost): the kernel's IP layer
// drops it before UDP sees it.
//
// group must be a multicast address of a family p serves (EINVAL). A port
// joins a group once (EADDRINUSE) and at most 20 groups (ENOBUFS, as
// Linux's igmp_max_memberships). Closing the port leaves its groups.
func (p *Port) JoinGroup(group netip.Addr) error {
	return p.membership("join", group, netip.Addr{}, joinAny)
}

// LeaveGroup ends p's membership of group, whatever its filter
// (EADDRNOTAVAIL if there is none), as IP_DROP_MEMBERSHIP does.
func (p *Port) LeaveGroup(group netip.Addr) error {
	return p.membership("leave", group, netip.Addr{}, leaveAny)
}

// JoinSourceGroup joins group for p from source only, or adds source to
// the sources p already joined group from (a source-specific membership,
// INCLUDE mode: IP_ADD_SOURCE_MEMBERSHIP, MCAST_JOIN_SOURCE_GROUP). As in
// Linux, an any-source membership that never had a source list becomes
// source-specific; one that had (BlockSource) fails with EINVAL. A source
// already there is EADDRNOTAVAIL, more than 10 IPv4 or 64 IPv6 sources
// ENOBUFS (Linux's igmp_max_msf and mld_max_msf). Reports name the
// sources: with IGMPv3 and MLDv2 a router forwards only them; an older
// querier knows no sources and forwards the whole group.
func (p *Port) JoinSourceGroup(group, source netip.Addr) error {
	return p.membership("join", group, source, joinSource)
}

// LeaveSourceGroup removes source from p's source-specific membership of
// group; without sources left, p leaves the group (IP_DROP_SOURCE_-
// MEMBERSHIP). EINVAL without a membership or on an any-source one,
// EADDRNOTAVAIL for a source it does not list.
func (p *Port) LeaveSourceGroup(group, source netip.Addr) error {
	return p.membership("leave", group, source, leaveSource)
}

// BlockSource stops datagrams from source reaching p through its
// any-source membership of group (IP_BLOCK_SOURCE, EXCLUDE mode), and
// reports that p no longer wants them. EINVAL without a membership or on
// a source-specific one, EADDRNOTAVAIL for a source already blocked,
// ENOBUFS past the limit of JoinSourceGroup.
func (p *Port) BlockSource(group, source netip.Addr) error {
	return p.membership("block", group, source, blockSource)
}

// UnblockSource undoes BlockSource (IP_UNBLOCK_SOURCE): EINVAL as there,
// EADDRNOTAVAIL for a source not blocked.
func (p *Port) UnblockSource(group, source netip.Addr) error {
	return p.membership("unblock", group, source, unblockSource)
}

// GroupMembership is one of a port's memberships: the group and the
// port's source filter for it.
type GroupMembership struct {
	Group   netip.Addr
	Exclude bool // from every source but Sources; else from Sources only
	Sources []netip.Addr
}

// Groups lists p's memberships in group order.
func (p *Port) Groups() []GroupMembership {
	m := p.e.mcast
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []GroupMembership
	for i := range m.fams {
		for _, g := range m.fams[i].sorted() {
			for _, mb := range g.members {
				if mb.port == p {
					out = append(out, GroupMembership{Group: g.addr, Exclude: mb.filter.mode == exclude, Sources: slices.Clone(mb.filter.sources)})
				}
			}
		}
	}
	return out
}
