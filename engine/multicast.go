package engine

import (
	"cmp"
	"context"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pktengine/pktengine/frame"
)

// Multicast: group membership as a host's IP layer keeps it. Ports join
// groups with a source filter each, as sockets do (RFC 3678's model:
// JoinGroup is EXCLUDE {}, JoinSourceGroup adds to an INCLUDE list,
// BlockSource to an EXCLUDE list); the engine holds a few memberships of
// its own (all-systems, all-nodes, the solicited-node groups of its owned
// IPv6 addresses). All the memberships of a group merge into one
// interface state (RFC 3376 section 3.2, RFC 3810 section 4.2), which the
// engine reports with IGMPv3 (RFC 3376) and MLDv2 (RFC 3810), or IGMPv2,
// IGMPv1 and MLDv1 while a querier of an older version is present (RFC
// 3376 section 7, RFC 3810 section 8). Where the RFCs leave a choice, it
// does what Linux's net/ipv4/igmp.c and net/ipv6/mcast.c do.
//
// Where it runs:
//
//   - joins and leaves on the caller's goroutine, under multicast.mu;
//     the first report of a change goes out before the call returns;
//   - queries and other hosts' reports on the worker that received them
//     (rare frames: nothing else on the receive path takes the lock);
//   - retransmissions, delayed answers and the end of an older querier's
//     presence on one goroutine of the engine (run), asleep until the
//     earliest deadline;
//   - every report through the engine's shared transmit ring, under
//     txMu (lock order: mu, then txMu).
//
// The receive path reads an immutable snapshot of the joined groups
// (groupTable), swapped atomically on every change: a datagram to a group
// is for the engine only if the group is joined (the kernel's IP layer
// drops the others before UDP sees them), and a port with a filter of its
// own for the group gets only the sources it lets in.

// Bounds on the multicast state. All of it is allocated by joins and
// leaves, never by a received frame, and queries can only mark what is
// there.
const (
	// maxPortGroups is how many groups one port may join: Linux's
	// igmp_max_memberships.
	maxPortGroups = 20
	// maxSources4 and maxSources6 bound a port's source filter for one
	// group: Linux's igmp_max_msf and mld_max_msf.
	maxSources4 = 10
	maxSources6 = 64
	// maxGroups bounds the groups of each family on the interface,
	// including left ones whose leave is still being reported.
	maxGroups = 1024
	// maxQuerySources bounds the sources of group-and-source-specific
	// queries remembered for one group; past it the answer reports the
	// group's whole state, which is never wrong, only longer.
	maxQuerySources = 256

	// unsolicitedInterval3 is the Unsolicited Report Interval of IGMPv3
	// and MLDv2 (RFC 3376 section 8.11, RFC 3810 section 9.11),
	// unsolicitedInterval2 that of IGMPv2 and MLDv1 (RFC 2236 section
	// 8.10, RFC 2710 section 7.10).
	unsolicitedInterval3 = time.Second
	unsolicitedInterval2 = 10 * time.Second
	// defaultQueryInterval and defaultQueryResponseInterval are the
	// protocols' defaults (RFC 3376 8.2 and 8.3), until a query says
	// otherwise.
	defaultQueryInterval         = 125 * time.Second
	defaultQueryResponseInterval = 10 * time.Second
	// igmpv1MaxResponse is the Max Response Time of IGMPv1 queries, whose
	// field is zero (RFC 2236 section 4).
	igmpv1MaxResponse = 10 * time.Second

	// answerRate and answerBurst limit the report frames the engine sends
	// in answer to queries, which anyone on the link can send.
	answerRate  = 100
	answerBurst = 200
)

// filterMode is a source filter's mode (RFC 3376 section 3.1).
type filterMode uint8

const (
	include filterMode = iota // only the listed sources
	exclude                   // every source but the listed ones
)

// sourceFilter is a source filter: sources sorted, without duplicates.
// listed, for a port's filter, is set once a source was ever added: as
// Linux keeps a socket's source list once it has one, only an any-source
// membership that never had one may turn source-specific.
type sourceFilter struct {
	mode    filterMode
	sources []netip.Addr
	listed  bool
}

// allows reports whether the filter lets a datagram from src in.
func (f *sourceFilter) allows(src netip.Addr) bool {
	_, found := slices.BinarySearchFunc(f.sources, src, netip.Addr.Compare)
	return found == (f.mode == include)
}

// member reports whether the filter receives anything: INCLUDE {} is no
// membership at all (RFC 3376 section 3.1).
func (f *sourceFilter) member() bool { return f.mode == exclude || len(f.sources) > 0 }

func (f *sourceFilter) equal(g *sourceFilter) bool {
	return f.mode == g.mode && slices.Equal(f.sources, g.sources)
}

// Sets of addresses, as sorted slices without duplicates.

func setAdd(s []netip.Addr, a netip.Addr) []netip.Addr {
	i, found := slices.BinarySearchFunc(s, a, netip.Addr.Compare)
	if found {
		return s
	}
	return slices.Insert(s, i, a)
}

func setHas(s []netip.Addr, a netip.Addr) bool {
	_, found := slices.BinarySearchFunc(s, a, netip.Addr.Compare)
	return found
}

func setRemove(s []netip.Addr, a netip.Addr) []netip.Addr {
	if i, found := slices.BinarySearchFunc(s, a, netip.Addr.Compare); found {
		return slices.Delete(s, i, i+1)
	}
	return s
}

func setUnion(a, b []netip.Addr) []netip.Addr {
	out := make([]netip.Addr, 0, len(a)+len(b))
	out = append(append(out, a...), b...)
	slices.SortFunc(out, netip.Addr.Compare)
	return slices.Compact(out)
}

func setIntersect(a, b []netip.Addr) []netip.Addr {
	var out []netip.Addr
	for _, x := range a {
		if setHas(b, x) {
			out = append(out, x)
		}
	}
	return out
}

// setMinus returns a without the elements of b.
func setMinus(a, b []netip.Addr) []netip.Addr {
	var out []netip.Addr
	for _, x := range a {
		if !setHas(b, x) {
			out = append(out, x)
		}
	}
	return out
}

// member is one membership of a group: a port's, or the engine's own
// (port nil).
type member struct {
	port   *Port
	filter sourceFilter
}

// mergeFilters is RFC 3376 section 3.2 (RFC 3810 section 4.2): with any
// EXCLUDE membership the interface excludes the sources every EXCLUDE
// membership excludes, minus those an INCLUDE membership wants; else it
// includes every source some membership includes.
func mergeFilters(ms []member) sourceFilter {
	var incl, excl []netip.Addr
	excluding := false
	for i := range ms {
		f := &ms[i].filter
		switch {
		case f.mode == include:
			incl = setUnion(incl, f.sources)
		case !excluding:
			excl, excluding = slices.Clone(f.sources), true
		default:
			excl = setIntersect(excl, f.sources)
		}
	}
	if excluding {
		return sourceFilter{mode: exclude, sources: setMinus(excl, incl)}
	}
	return sourceFilter{mode: include, sources: incl}
}

// retrans is a source's state-change retransmissions left (RFC 3376
// section 5.1).
type retrans struct {
	addr netip.Addr
	left int
}

func retransSet(rs []retrans, a netip.Addr, n int) []retrans {
	i, found := slices.BinarySearchFunc(rs, a, func(r retrans, a netip.Addr) int { return r.addr.Compare(a) })
	if found {
		rs[i].left = n
		return rs
	}
	return slices.Insert(rs, i, retrans{a, n})
}

func retransDelete(rs []retrans, a netip.Addr) []retrans {
	return slices.DeleteFunc(rs, func(r retrans) bool { return r.addr == a })
}

// retransTake returns the sources with transmissions left and counts one
// off each.
func retransTake(rs *[]retrans) []netip.Addr {
	var out []netip.Addr
	for i := range *rs {
		r := &(*rs)[i]
		out = append(out, r.addr)
		r.left--
	}
	*rs = slices.DeleteFunc(*rs, func(r retrans) bool { return r.left <= 0 })
	return out
}

// mgroup is one group of the interface: its memberships, their merged
// state, and what remains to be reported about it.
type mgroup struct {
	addr    netip.Addr
	report  bool // named in reports: not all-systems, all-nodes or node-local
	members []member
	state   sourceFilter

	// State-change reports still to send (IGMPv3, MLDv2): a filter-mode
	// change (TO_IN / TO_EX with the current sources), and sources to
	// ALLOW and to BLOCK.
	modeLeft     int
	allow, block []retrans

	// timer is when the group's own report is due (ns, 0: none): an
	// answer to a group-specific query, or with an older querier an
	// IGMPv1/v2 or MLDv1 report. gsQuery and gsSources are what a
	// pending answer to group-and-source-specific queries asks about.
	timer     int64
	gsQuery   bool
	gsSources []netip.Addr
	// unsolicited is how many more unsolicited IGMPv1/v2 or MLDv1 reports
	// follow the next one; reporter is set when the engine sent the last
	// one heard on the link, which is when an IGMPv2 leave or MLDv1 done
	// is due (RFC 2236 section 3).
	unsolicited int
	reporter    bool
}

// idle reports whether nothing holds the group any more: no membership
// and nothing left to report.
func (g *mgroup) idle() bool {
	return len(g.members) == 0 && g.modeLeft == 0 && len(g.allow) == 0 && len(g.block) == 0 && g.timer == 0
}

// compat is a family's Host Compatibility Mode (RFC 3376 section 7.2.1,
// RFC 3810 section 8.2.1).
type compat uint8

const (
	compatCurrent compat = iota // IGMPv3, MLDv2
	compatV2                    // IGMPv2, MLDv1: reports and leaves per group
	compatV1                    // IGMPv1: reports only
)

// mfamily is the state of one family: IGMP (IPv4) or MLD (IPv6).
type mfamily struct {
	v6     bool
	groups map[netip.Addr]*mgroup

	// v1Until and v2Until end the presence of an IGMPv1 querier and of
	// an IGMPv2 or MLDv1 querier (ns; RFC 3376 section 8.12, RFC 3810
	// section 9.12).
	v1Until, v2Until int64
	// qrv, qi and qri are the Robustness Variable, Query Interval and
	// Query Response Interval: the latest IGMPv3 or MLDv2 query's, else
	// the defaults.
	qrv     int
	qi, qri time.Duration

	gqAt  int64 // the answer to a general query is due (ns, 0: none)
	ifcAt int64 // the next state-change report is due (ns, 0: none)
}

func (f *mfamily) mode(now int64) compat {
	switch {
	case now < f.v1Until:
		return compatV1
	case now < f.v2Until:
		return compatV2
	}
	return compatCurrent
}

// olderQuerierTimeout is the Older Version Querier Present Timeout (RFC
// 3376 section 8.12, RFC 3810 section 9.12).
func (f *mfamily) olderQuerierTimeout() int64 {
	return int64(f.qrv)*int64(f.qi) + int64(f.qri)
}

// sorted returns the family's groups in address order.
func (f *mfamily) sorted() []*mgroup {
	gs := make([]*mgroup, 0, len(f.groups))
	for _, g := range f.groups {
		gs = append(gs, g)
	}
	slices.SortFunc(gs, func(a, b *mgroup) int { return a.addr.Compare(b.addr) })
	return gs
}

// groupTable is the joined groups as the receive path reads them: built
// on every change and published whole, never written after.
type groupTable struct {
	groups map[netip.Addr]*groupEntry
}

// groupEntry is a joined group: the interface's filter and the ports
// that have filters of their own.
type groupEntry struct {
	state sourceFilter
	ports []portFilter
}

type portFilter struct {
	port   *Port
	filter sourceFilter
}

// wants reports whether p gets a datagram from src: by its own filter if
// it has one, else (as a kernel socket with IP_MULTICAST_ALL, the
// default) whatever the interface receives.
func (g *groupEntry) wants(p *Port, src netip.Addr) bool {
	for i := range g.ports {
		if g.ports[i].port == p {
			return g.ports[i].filter.allows(src)
		}
	}
	return true
}

// linkMembership adds and removes Ethernet multicast addresses to and
// from the interface's list, so that a NIC that filters them passes
// the groups' frames (PACKET_ADD_MEMBERSHIP, multicast_linux.go).
type linkMembership interface {
	add(frame.MAC) error
	drop(frame.MAC) error
	Close() error
}

// multicast is an engine's group membership.
type multicast struct {
	e          *Engine
	robustness int

	mu     sync.Mutex
	fams   [2]mfamily // IGMP, MLD
	closed bool
	// src4 and src6 are the sources of reports: an IPv4 engine address,
	// and the interface's link-local address (RFC 3810 section 5: else
	// ::, allowed for reports).
	src4, src6 netip.Addr
	ipID       uint16
	link       linkMembership // nil: no interface to tell (tests)
	macs       map[frame.MAC]int
	answers    bucket
	answerRate rate

	now   func() int64        // the clock, ns
	randN func(n int64) int64 // uniform in [0, n)
	kick  chan struct{}       // wakes run after a change of deadlines
	table atomic.Pointer[groupTable]
	done  chan struct{} // closed when run returns; nil if it never ran

	queries4, queries6, invalidQueries, reportsHeard atomic.Uint64
	reports4, reports6, answersLimited, groups       atomic.Uint64
}

func newMulticast(e *Engine) *multicast {
	m := &multicast{
		e:          e,
		robustness: e.cfg.MulticastRobustness,
		macs:       make(map[frame.MAC]int),
		answerRate: newRate(answerRate, answerBurst),
		now:        func() int64 { return time.Now().UnixNano() },
		randN:      rand.Int64N,
		kick:       make(chan struct{}, 1),
		ipID:       uint16(rand.Uint32()),
	}
	for i := range m.fams {
		m.fams[i] = mfamily{
			v6:     i == 1,
			groups: make(map[netip.Addr]*mgroup),
			qrv:    m.robustness,
			qi:     defaultQueryInterval,
			qri:    defaultQueryResponseInterval,
		}
	}
	m.table.Store(&groupTable{})
	for _, la := range e.addrs.list {
		switch {
		case la.addr.Is4() && !m.src4.IsValid():
			m.src4 = la.addr
		case la.addr.Is6() && la.addr.IsLinkLocalUnicast() && !m.src6.IsValid():
			m.src6 = la.addr
		}
	}
	if !m.src4.IsValid() {
		m.src4 = netip.IPv4Unspecified() // RFC 3376 section 4.2.13
	}
	if !m.src6.IsValid() {
		m.src6 = netip.IPv6Unspecified()
	}
	return m
}

func (m *multicast) family(a netip.Addr) *mfamily {
	if a.Is4() {
		return &m.fams[0]
	}
	return &m.fams[1]
}

// reported reports whether a group is named in IGMP and MLD reports: all
// but all-systems (224.0.0.1), all-nodes (ff02::1) and node-local IPv6
// groups, as Linux does (it reports the other 224.0.0.x groups:
// igmp_llm_reports).
func reported(g netip.Addr) bool {
	if g.Is4() {
		return g != frame.IPv4AllSystems
	}
	return g != frame.IPv6AllNodes && !g.IsInterfaceLocalMulticast()
}

// ownGroups are the groups the engine joins for itself: all-systems with
// an IPv4 address, all-nodes with an IPv6 one (the kernel's device joins
// them too, and UDP to them reaches wildcard ports), and the solicited-
// node groups of owned IPv6 addresses (neighborGroups).
func (e *Engine) ownGroups() []netip.Addr {
	var gs []netip.Addr
	if e.addrs.has(true) {
		gs = append(gs, frame.IPv4AllSystems)
	}
	if e.addrs.has(false) {
		gs = append(gs, frame.IPv6AllNodes)
	}
	for _, g := range e.neighborGroups() {
		if !slices.Contains(gs, g) {
			gs = append(gs, g)
		}
	}
	return gs
}

// start joins the engine's own groups and starts the timers. link, if
// not nil, is how the interface learns the groups' MAC addresses.
func (m *multicast) start(ctx context.Context, link linkMembership) error {
	if err := m.joinOwn(link); err != nil {
		return err
	}
	m.done = make(chan struct{})
	go m.run(ctx)
	return nil
}

// joinOwn joins the engine's own groups with link.
func (m *multicast) joinOwn(link linkMembership) error {
	m.mu.Lock()
	m.link = link
	m.mu.Unlock()
	for _, g := range m.e.ownGroups() {
		if err := m.update(nil, g, func(*sourceFilter) (*sourceFilter, error) {
			return &sourceFilter{mode: exclude}, nil
		}); err != nil {
			return err
		}
	}
	return nil
}

// run sends what the timers make due, and sleeps until the next
// deadline, a change (kick), or the end of ctx.
func (m *multicast) run(ctx context.Context) {
	defer close(m.done)
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		m.mu.Lock()
		next := int64(0)
		if !m.closed {
			next = m.runLocked(m.now())
		}
		m.mu.Unlock()
		wait := time.Hour
		if next != 0 {
			wait = time.Duration(next - m.now())
		}
		t.Reset(max(wait, 0))
		select {
		case <-ctx.Done():
			return
		case <-m.kick:
		case <-t.C:
		}
	}
}

// wake tells run that deadlines changed.
func (m *multicast) wake() {
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

// delay returns a random delay in [0, d), in ns.
func (m *multicast) delay(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return m.randN(int64(d))
}

// update changes owner's membership of group: edit gets the current
// filter (nil without a membership) and returns the new one (nil: no
// membership). The interface state follows, and the change is reported.
// owner nil is the engine itself.
func (m *multicast) update(owner *Port, group netip.Addr, edit func(cur *sourceFilter) (*sourceFilter, error)) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return net.ErrClosed
	}
	f := m.family(group)
	g := f.groups[group]
	idx := -1
	var cur *sourceFilter
	if g != nil {
		for i := range g.members {
			if g.members[i].port == owner {
				idx, cur = i, &g.members[i].filter
				break
			}
		}
	}
	next, err := edit(cur)
	if err != nil {
		return err
	}
	if next == nil && idx < 0 {
		return nil
	}
	if idx < 0 && owner != nil && m.portGroupsLocked(owner) >= maxPortGroups {
		return os.NewSyscallError("setsockopt", syscall.ENOBUFS)
	}
	if g == nil {
		if len(f.groups) >= maxGroups {
			return os.NewSyscallError("setsockopt", syscall.ENOBUFS)
		}
		g = &mgroup{addr: group, report: reported(group)}
	}
	members := slices.Clone(g.members)
	switch {
	case next == nil:
		members = slices.Delete(members, idx, idx+1)
	case idx < 0:
		members = append(members, member{port: owner, filter: *next})
	default:
		members[idx].filter = *next
	}
	state := mergeFilters(members)
	old := g.state
	if !old.member() && state.member() {
		// The interface must pass the group's frames before anyone
		// relies on the membership.
		if err := m.macRefLocked(group, 1); err != nil {
			return err
		}
	}
	f.groups[group] = g
	g.members, g.state = members, state
	now := m.now()
	if !old.equal(&state) {
		m.changedLocked(f, g, old, now)
		if old.member() && !state.member() {
			m.macRefLocked(group, -1)
		}
	}
	m.publishLocked()
	m.runLocked(now)
	m.wake()
	return nil
}

// portGroupsLocked counts p's memberships.
func (m *multicast) portGroupsLocked(p *Port) int {
	n := 0
	for i := range m.fams {
		for _, g := range m.fams[i].groups {
			for j := range g.members {
				if g.members[j].port == p {
					n++
				}
			}
		}
	}
	return n
}

// macRefLocked counts one more (delta 1) or one less (-1) group of the
// MAC address group maps to, and tells the interface when the count
// leaves or reaches zero. IPv4 maps 32 groups to one address (RFC 1112
// section 6.4).
func (m *multicast) macRefLocked(group netip.Addr, delta int) error {
	mac, _ := multicastMAC(group)
	n := m.macs[mac]
	switch {
	case delta > 0 && n == 0 && m.link != nil:
		if err := m.link.add(mac); err != nil {
			return err
		}
	case delta < 0 && n == 1 && m.link != nil:
		if err := m.link.drop(mac); err != nil {
			m.e.log.Warn("removing a multicast address from the interface", "mac", mac, "err", err)
		}
	}
	if n+delta == 0 {
		delete(m.macs, mac)
	} else {
		m.macs[mac] = n + delta
	}
	return nil
}

// changedLocked reports a change of g's state from old: with IGMPv3 and
// MLDv2 as state-change records repeated [Robustness Variable] times
// (RFC 3376 section 5.1, RFC 3810 section 6.1), with an older querier as
// an unsolicited report on joining and a leave or done on leaving.
func (m *multicast) changedLocked(f *mfamily, g *mgroup, old sourceFilter, now int64) {
	if !g.report {
		return
	}
	cur := &g.state
	switch f.mode(now) {
	case compatCurrent:
		switch {
		case old.mode != cur.mode:
			// A filter-mode change: TO_EX or TO_IN with the whole
			// current list says everything a pending ALLOW or BLOCK
			// would.
			g.modeLeft, g.allow, g.block = f.qrv, nil, nil
		case cur.mode == include:
			for _, s := range setMinus(cur.sources, old.sources) {
				g.allow, g.block = retransSet(g.allow, s, f.qrv), retransDelete(g.block, s)
			}
			for _, s := range setMinus(old.sources, cur.sources) {
				g.block, g.allow = retransSet(g.block, s, f.qrv), retransDelete(g.allow, s)
			}
		default:
			for _, s := range setMinus(old.sources, cur.sources) {
				g.allow, g.block = retransSet(g.allow, s, f.qrv), retransDelete(g.block, s)
			}
			for _, s := range setMinus(cur.sources, old.sources) {
				g.block, g.allow = retransSet(g.block, s, f.qrv), retransDelete(g.allow, s)
			}
		}
		f.ifcAt = now // at once; retransmissions follow
	default:
		switch {
		case !old.member() && cur.member():
			g.timer, g.unsolicited = now, f.qrv-1
		case old.member() && !cur.member():
			if g.reporter && f.mode(now) == compatV2 {
				m.sendLegacyLocked(f, g.addr, true)
			}
			g.timer, g.unsolicited, g.reporter = 0, 0, false
		}
	}
}

// publishLocked builds the receive path's view of the joined groups.
func (m *multicast) publishLocked() {
	t := &groupTable{groups: make(map[netip.Addr]*groupEntry)}
	n := 0
	for i := range m.fams {
		for a, g := range m.fams[i].groups {
			if !g.state.member() {
				continue
			}
			n++
			ge := &groupEntry{state: sourceFilter{mode: g.state.mode, sources: slices.Clone(g.state.sources)}}
			for _, mb := range g.members {
				if mb.port != nil {
					ge.ports = append(ge.ports, portFilter{mb.port, sourceFilter{mode: mb.filter.mode, sources: slices.Clone(mb.filter.sources)}})
				}
			}
			t.groups[a] = ge
		}
	}
	m.table.Store(t)
	m.groups.Store(uint64(n))
}

// lookup returns the joined group a, or nil.
func (m *multicast) lookup(a netip.Addr) *groupEntry { return m.table.Load().groups[a] }

// runLocked sends every report that is due at now and returns the next
// deadline (0: none).
func (m *multicast) runLocked(now int64) int64 {
	next := int64(0)
	due := func(t int64) {
		if t != 0 && (next == 0 || t < next) {
			next = t
		}
	}
	for i := range m.fams {
		f := &m.fams[i]
		if len(f.groups) == 0 {
			f.gqAt, f.ifcAt = 0, 0
			continue
		}
		mode := f.mode(now)
		gs := f.sorted()
		var answers, changes []frame.GroupRecord
		if f.gqAt != 0 && now >= f.gqAt {
			f.gqAt = 0
			if mode == compatCurrent {
				for _, g := range gs {
					answers = g.currentRecord(answers)
				}
			}
		}
		for _, g := range gs {
			if g.timer == 0 || now < g.timer {
				continue
			}
			g.timer = 0
			if mode == compatCurrent {
				answers = g.queriedRecord(answers)
				g.gsQuery, g.gsSources = false, nil
				continue
			}
			if g.report && g.state.member() {
				if m.answers.allow(now, &m.answerRate) {
					m.sendLegacyLocked(f, g.addr, false)
					g.reporter = mode == compatV2
				} else {
					m.answersLimited.Add(1)
				}
			}
			if g.unsolicited > 0 {
				g.unsolicited--
				g.timer = now + m.delay(unsolicitedInterval2)
			}
		}
		if f.ifcAt != 0 && now >= f.ifcAt {
			f.ifcAt = 0
			if mode == compatCurrent {
				pending := false
				for _, g := range gs {
					changes = g.changeRecords(changes)
					pending = pending || g.modeLeft > 0 || len(g.allow) > 0 || len(g.block) > 0
				}
				if pending {
					f.ifcAt = now + 1 + m.delay(unsolicitedInterval3)
				}
			}
		}
		m.sendRecordsLocked(f, answers, now, true)
		m.sendRecordsLocked(f, changes, now, false)
		for _, g := range gs {
			if g.idle() {
				delete(f.groups, g.addr)
			}
			due(g.timer)
		}
		due(f.gqAt)
		due(f.ifcAt)
	}
	return next
}

// currentRecord appends g's Current-State Record (MODE_IS_INCLUDE or
// MODE_IS_EXCLUDE, RFC 3376 section 4.2.12) if it is reported and
// joined.
func (g *mgroup) currentRecord(recs []frame.GroupRecord) []frame.GroupRecord {
	if !g.report || !g.state.member() {
		return recs
	}
	typ := frame.RecordModeIsInclude
	if g.state.mode == exclude {
		typ = frame.RecordModeIsExclude
	}
	return append(recs, frame.GroupRecord{Type: typ, Group: g.addr, Sources: slices.Clone(g.state.sources)})
}

// queriedRecord appends the answer to the group's pending query: its
// current state, or for group-and-source-specific queries the queried
// sources it receives from (RFC 3376 section 5.2), none if that is none.
func (g *mgroup) queriedRecord(recs []frame.GroupRecord) []frame.GroupRecord {
	if !g.gsQuery {
		return g.currentRecord(recs)
	}
	if !g.report || !g.state.member() {
		return recs
	}
	var srcs []netip.Addr
	if g.state.mode == include {
		srcs = setIntersect(g.gsSources, g.state.sources)
	} else {
		srcs = setMinus(g.gsSources, g.state.sources)
	}
	if len(srcs) == 0 {
		return recs
	}
	return append(recs, frame.GroupRecord{Type: frame.RecordModeIsInclude, Group: g.addr, Sources: srcs})
}

// changeRecords appends g's pending State-Change Records and counts one
// transmission off them: ALLOW and BLOCK for sources, then TO_IN or
// TO_EX with the current sources for a filter-mode change, as Linux
// orders them.
func (g *mgroup) changeRecords(recs []frame.GroupRecord) []frame.GroupRecord {
	if s := retransTake(&g.allow); len(s) > 0 {
		recs = append(recs, frame.GroupRecord{Type: frame.RecordAllowNewSources, Group: g.addr, Sources: s})
	}
	if s := retransTake(&g.block); len(s) > 0 {
		recs = append(recs, frame.GroupRecord{Type: frame.RecordBlockOldSources, Group: g.addr, Sources: s})
	}
	if g.modeLeft > 0 {
		g.modeLeft--
		typ := frame.RecordChangeToInclude
		if g.state.mode == exclude {
			typ = frame.RecordChangeToExclude
		}
		recs = append(recs, frame.GroupRecord{Type: typ, Group: g.addr, Sources: slices.Clone(g.state.sources)})
	}
	return recs
}

// reportBudget returns how many bytes of group records fit in one report
// frame within the MTU.
func (m *multicast) reportBudget(v6 bool) int {
	if v6 {
		return m.e.mtu - frame.IPv6HeaderLen - 8 - frame.MLDv2ReportHeaderLen // 8: the Hop-by-Hop header
	}
	return m.e.mtu - frame.IPv4MinHeaderLen - len(frame.IPv4RouterAlert) - frame.IGMPHeaderLen
}

// sendRecordsLocked sends recs in as many IGMPv3 or MLDv2 reports as the
// MTU needs (RFC 3376 section 4.2.16): records are packed whole while
// they fit, a record too long for a report of its own is split into
// several with parts of its sources, except that of a MODE_IS_EXCLUDE or
// CHANGE_TO_EXCLUDE record only what fits is sent. answers are rate
// limited.
func (m *multicast) sendRecordsLocked(f *mfamily, recs []frame.GroupRecord, now int64, answers bool) {
	if len(recs) == 0 {
		return
	}
	alen := 4
	if f.v6 {
		alen = 16
	}
	budget := m.reportBudget(f.v6)
	var batch []frame.GroupRecord
	used := 0
	flush := func() {
		if len(batch) == 0 {
			return
		}
		if answers && !m.answers.allow(now, &m.answerRate) {
			m.answersLimited.Add(1)
		} else {
			m.sendReportLocked(f, batch)
		}
		batch, used = nil, 0
	}
	for _, r := range recs {
		size := 4 + alen + alen*len(r.Sources)
		if used+size > budget {
			flush()
		}
		for size > budget {
			n := max((budget-4-alen)/alen, 1)
			if r.Type == frame.RecordModeIsExclude || r.Type == frame.RecordChangeToExclude {
				r.Sources = r.Sources[:n]
				size = 4 + alen + alen*n
				break
			}
			part := r
			part.Sources = r.Sources[:n]
			batch = append(batch, part)
			used = budget
			flush()
			r.Sources = r.Sources[n:]
			size = 4 + alen + alen*len(r.Sources)
		}
		batch = append(batch, r)
		used += size
	}
	flush()
}

// sendReportLocked sends one IGMPv3 or MLDv2 report.
func (m *multicast) sendReportLocked(f *mfamily, recs []frame.GroupRecord) {
	m.transmitLocked(f, func(buf []byte, s *frame.IPSpec) (int, error) {
		if f.v6 {
			return frame.BuildMLDv2Report(buf, s, recs)
		}
		return frame.BuildIGMPv3Report(buf, s, recs)
	})
}

// sendLegacyLocked sends an IGMPv1 or v2 report or an MLDv1 report, or
// with leave an IGMPv2 leave or an MLDv1 done, about group.
func (m *multicast) sendLegacyLocked(f *mfamily, group netip.Addr, leave bool) {
	mode := f.mode(m.now())
	m.transmitLocked(f, func(buf []byte, s *frame.IPSpec) (int, error) {
		switch {
		case f.v6 && leave:
			return frame.BuildMLDv1Done(buf, s, group)
		case f.v6:
			return frame.BuildMLDv1Report(buf, s, group)
		case leave:
			return frame.BuildIGMPv2Leave(buf, s, group)
		case mode == compatV1:
			return frame.BuildIGMPv1Report(buf, s, group)
		}
		return frame.BuildIGMPv2Report(buf, s, group)
	})
}

// transmitLocked builds one frame through the engine's shared transmit
// ring and sends it.
func (m *multicast) transmitLocked(f *mfamily, build func([]byte, *frame.IPSpec) (int, error)) {
	e := m.e
	m.ipID++
	s := frame.IPSpec{SrcMAC: e.mac, VLANs: e.linkVLANs, Src: m.src4, ID: m.ipID}
	if f.v6 {
		s.Src = m.src6
	}
	e.txMu.Lock()
	err := e.commitLocked(func(buf []byte) (int, error) { return build(buf, &s) })
	if err == nil {
		err = e.flushLocked()
	}
	e.txMu.Unlock()
	if err != nil {
		e.log.Debug("sending a membership report", "err", err)
		return
	}
	if f.v6 {
		m.reports6.Add(1)
	} else {
		m.reports4.Add(1)
	}
}

// heardQuery acts on a membership query (RFC 3376 section 5.2 and 7.3,
// RFC 3810 section 6.2 and 8.3): it schedules the answer, at a random
// delay within the query's Max Response, and notes a querier of an older
// version.
func (m *multicast) heardQuery(q *frame.MulticastQuery, now int64) {
	v6 := q.Group.Is6()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return
	}
	f := &m.fams[0]
	if v6 {
		f = &m.fams[1]
		m.queries6.Add(1)
	} else {
		m.queries4.Add(1)
	}
	group := q.Group
	if !group.IsUnspecified() && !group.IsMulticast() {
		m.invalidQueries.Add(1)
		return
	}
	maxDelay := q.MaxResponse
	current := (!v6 && q.Version == 3) || (v6 && q.Version == 2)
	if !current {
		// An older querier: remember it, and drop what only the
		// current version would have sent.
		if !v6 && q.Version == 1 {
			f.v1Until = now + f.olderQuerierTimeout()
			maxDelay, group = igmpv1MaxResponse, netip.IPv4Unspecified()
		} else {
			f.v2Until = now + f.olderQuerierTimeout()
		}
		f.gqAt, f.ifcAt = 0, 0
		for _, g := range f.groups {
			g.modeLeft, g.allow, g.block = 0, nil, nil
			g.gsQuery, g.gsSources = false, nil
			if g.idle() {
				delete(f.groups, g.addr)
			}
		}
	}
	mode := f.mode(now)
	if mode == compatV1 {
		// An IGMPv1 host knows general queries only, and their fixed
		// Max Response Time; Linux answers any query so then.
		maxDelay, group = igmpv1MaxResponse, netip.IPv4Unspecified()
	}
	if mode != compatCurrent {
		for _, g := range f.groups {
			if (group.IsUnspecified() || g.addr == group) && g.report && g.state.member() {
				if g.timer == 0 || g.timer-now > int64(maxDelay) {
					g.timer = now + m.delay(maxDelay)
				}
			}
		}
		m.wake()
		return
	}

	// IGMPv3, MLDv2.
	if q.QRV != 0 {
		f.qrv = int(q.QRV)
	} else {
		f.qrv = m.robustness
	}
	f.qi = cmp.Or(q.QQI, defaultQueryInterval)
	f.qri = maxDelay
	if f.qri >= f.qi {
		f.qri = f.qi - time.Second
	}
	at := now + m.delay(maxDelay)
	if group.IsUnspecified() {
		if q.NumberOfSources() > 0 {
			m.invalidQueries.Add(1) // a general query names no sources (RFC 3376 4.1.9)
			return
		}
		if f.gqAt == 0 || f.gqAt > at {
			f.gqAt = at
		}
		m.wake()
		return
	}
	g := f.groups[group]
	if g == nil || !g.report || !g.state.member() {
		return // not ours: nothing to say (rule 1 of RFC 3376 5.2)
	}
	if f.gqAt != 0 && f.gqAt <= at {
		return // the answer to a general query comes first and says it all
	}
	gs := q.NumberOfSources() > 0
	switch {
	case g.timer == 0:
		g.timer, g.gsQuery, g.gsSources = at, gs, nil
		if gs {
			g.gsSources = querySources(nil, q)
		}
	case !gs || !g.gsQuery:
		g.timer, g.gsQuery, g.gsSources = min(g.timer, at), false, nil
	default:
		g.timer = min(g.timer, at)
		g.gsSources = querySources(g.gsSources, q)
	}
	if g.gsQuery && len(g.gsSources) > maxQuerySources {
		g.gsQuery, g.gsSources = false, nil
	}
	m.wake()
}

// querySources adds the sources q asks about to s.
func querySources(s []netip.Addr, q *frame.MulticastQuery) []netip.Addr {
	for i := range q.NumberOfSources() {
		if len(s) > maxQuerySources {
			break
		}
		s = setAdd(s, q.Source(i))
	}
	return s
}

// heardReport acts on another host's IGMPv1/v2 or MLDv1 report for
// group: with an older querier present it stands for the engine's own
// pending report, which is cancelled, and the engine is no longer the
// last to have reported (RFC 2236 section 3, RFC 2710 section 4).
// IGMPv3 and MLDv2 hosts do not suppress their reports.
func (m *multicast) heardReport(group netip.Addr, now int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f := m.family(group)
	g := f.groups[group]
	if m.closed || g == nil || !g.state.member() {
		return
	}
	m.reportsHeard.Add(1)
	if f.mode(now) == compatCurrent {
		return
	}
	g.timer, g.unsolicited, g.reporter = 0, 0, false
}

// dropPort removes every membership of p, as closing a socket does.
func (m *multicast) dropPort(p *Port) {
	var groups []netip.Addr
	m.mu.Lock()
	for i := range m.fams {
		for a, g := range m.fams[i].groups {
			if slices.ContainsFunc(g.members, func(mb member) bool { return mb.port == p }) {
				groups = append(groups, a)
			}
		}
	}
	m.mu.Unlock()
	for _, g := range groups {
		m.update(p, g, func(*sourceFilter) (*sourceFilter, error) { return nil, nil })
	}
}

// close leaves every group, sending the first report of each leave (no
// retransmission: the engine is going), stops the timers and takes the
// groups' MAC addresses off the interface. The ports have been closed
// already; what is left is the engine's own.
func (m *multicast) close() error {
	var groups []netip.Addr
	m.mu.Lock()
	for i := range m.fams {
		for a := range m.fams[i].groups {
			groups = append(groups, a)
		}
	}
	m.mu.Unlock()
	for _, g := range groups {
		m.update(nil, g, func(*sourceFilter) (*sourceFilter, error) { return nil, nil })
	}
	m.mu.Lock()
	m.closed = true
	var err error
	if m.link != nil {
		// Closing the socket drops its memberships.
		err = m.link.Close()
		m.link = nil
	}
	clear(m.macs)
	m.mu.Unlock()
	m.wake()
	if m.done != nil {
		<-m.done
	}
	return err
}

func (m *multicast) counters() MulticastCounters {
	return MulticastCounters{
		IGMPQueries:    m.queries4.Load(),
		MLDQueries:     m.queries6.Load(),
		InvalidQueries: m.invalidQueries.Load(),
		ReportsHeard:   m.reportsHeard.Load(),
		IGMPReports:    m.reports4.Load(),
		MLDReports:     m.reports6.Load(),
		AnswersLimited: m.answersLimited.Load(),
		Groups:         m.groups.Load(),
	}
}
