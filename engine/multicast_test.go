package engine

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pktengine/pktengine/frame"
	"github.com/pktengine/pktengine/proto"
	"github.com/pktengine/pktengine/ring"
)

// The multicast state machines run here on a fake clock: the tests call
// the timer step (runLocked) themselves, at the times they choose, and
// the random delays are fixed fractions of their range.

var (
	group4  = netip.MustParseAddr("239.1.2.3")
	group4b = netip.MustParseAddr("239.9.9.9")
	group6  = netip.MustParseAddr("ff15::1234")
	ssm4    = netip.MustParseAddr("232.1.1.1")
	srcA4   = netip.MustParseAddr("10.0.0.1")
	srcB4   = netip.MustParseAddr("10.0.0.2")
	srcC4   = netip.MustParseAddr("10.0.0.3")
	srcA6   = netip.MustParseAddr("fd00:5::1")
	ll6     = netip.MustParseAddr("fe80::1")
	querier = netip.MustParseAddr("fe80::99")
)

// fakeLink is the interface's multicast address list.
type fakeLink struct {
	macs   map[frame.MAC]int
	closed bool
	fail   error
}

func (l *fakeLink) add(m frame.MAC) error {
	if l.fail != nil {
		return l.fail
	}
	l.macs[m]++
	return nil
}

func (l *fakeLink) drop(m frame.MAC) error {
	if l.macs[m]--; l.macs[m] == 0 {
		delete(l.macs, m)
	}
	return nil
}

func (l *fakeLink) Close() error { l.closed = true; return nil }

func (l *fakeLink) has(group netip.Addr) bool {
	mac, _ := multicastMAC(group)
	return l.macs[mac] > 0
}

// mrig is a test rig with the multicast state on a fake clock.
type mrig struct {
	*testRig
	t    *testing.T
	m    *multicast
	link *fakeLink
	now  int64
	frac float64 // a random delay is this fraction of its range
}

func newMrig(t *testing.T, cfg *Config) *mrig {
	r := &mrig{testRig: newRig(t, cfg), t: t, now: 1e12, frac: 0.5}
	r.m = r.e.mcast
	r.link = &fakeLink{macs: map[frame.MAC]int{}}
	r.m.link = r.link
	r.m.src6 = ll6
	r.m.now = func() int64 { return r.now }
	r.m.randN = func(n int64) int64 { return int64(float64(n) * r.frac) }
	return r
}

// at moves the clock to now + d and runs the timers.
func (r *mrig) at(d time.Duration) {
	r.now += int64(d)
	r.m.mu.Lock()
	r.m.runLocked(r.now)
	r.m.mu.Unlock()
}

// next returns how long until the timers' next deadline (-1: none).
func (r *mrig) next() time.Duration {
	r.m.mu.Lock()
	defer r.m.mu.Unlock()
	n := r.m.runLocked(r.now)
	if n == 0 {
		return -1
	}
	return time.Duration(n - r.now)
}

// report is one membership report frame, checked and decoded.
type report struct {
	v6      bool
	typ     uint8
	dst     netip.Addr
	src     netip.Addr
	group   netip.Addr // of IGMPv1/v2 and MLDv1 messages
	records []string   // "to-ex 239.1.2.3 [10.0.0.1]"
	vlans   []frame.VLANTag
}

var recordNames = map[uint8]string{
	frame.RecordModeIsInclude: "is-in", frame.RecordModeIsExclude: "is-ex",
	frame.RecordChangeToInclude: "to-in", frame.RecordChangeToExclude: "to-ex",
	frame.RecordAllowNewSources: "allow", frame.RecordBlockOldSources: "block",
}

func recordString(typ uint8, g netip.Addr, srcs []netip.Addr) string {
	return fmt.Sprintf("%s %v %v", recordNames[typ], g, srcs)
}

// groupRecord is what an IGMPv3 group record and an MLDv2 address record
// both carry.
type groupRecord interface {
	Type() uint8
	MulticastAddress() netip.Addr
	NumberOfSources() int
	Source(i int) netip.Addr
}

// recordStrings decodes the n records of an IGMPv3 or MLDv2 report msg,
// starting at rest, with next (frame.NextIGMPv3GroupRecord or
// frame.NextMLDv2AddressRecord), as recordString gives them.
func recordStrings[R groupRecord](t *testing.T, msg, rest []byte, n uint16, next func([]byte) (R, []byte, bool)) []string {
	t.Helper()
	var out []string
	for range n {
		rec, after, ok := next(rest)
		if !ok {
			t.Fatalf("bad record in %x", msg)
		}
		var srcs []netip.Addr
		for i := range rec.NumberOfSources() {
			srcs = append(srcs, rec.Source(i))
		}
		out = append(out, recordString(rec.Type(), rec.MulticastAddress(), srcs))
		rest = after
	}
	return out
}

// reports takes the frames sent through the engine's shared ring and
// decodes them as membership reports, checking what every one must be:
// TTL or hop limit 1, a Router Alert option, valid checksums, the
// destination and its MAC address, no longer than the MTU.
func (r *mrig) reports() []report {
	t := r.t
	t.Helper()
	var out []report
	for _, f := range r.e.tx.(*fakeTX).take() {
		var p frame.Packet
		reason := p.Decode(f)
		rp := report{vlans: slices.Clone(p.VLANs[:p.NumVLANs])}
		if int(p.End-p.L3Off) > r.e.mtu {
			t.Errorf("a %d-byte report, MTU %d", p.End-p.L3Off, r.e.mtu)
		}
		switch {
		case reason == frame.ReasonOtherIPProtocol && p.Protocol == proto.IPProtoIGMP:
			ip := p.IPv4(f)
			rp.src, rp.dst = ip.Source(), ip.Destination()
			msg := p.IGMP(f)
			if refSum(ip[:ip.HeaderLength()]) != 0xffff || refSum(msg) != 0xffff {
				t.Errorf("IGMP checksums wrong in %x", f)
			}
			if ip.TTL() != 1 || !slices.Equal(ip.Options(), frame.IPv4RouterAlert[:]) {
				t.Errorf("IGMP with TTL %d, options %x", ip.TTL(), ip.Options())
			}
			rp.typ = msg.Type()
			if rp.typ == frame.IGMPv3MembershipReport {
				rp.records = recordStrings(t, msg, msg.GroupRecords(), msg.NumberOfGroupRecords(), frame.NextIGMPv3GroupRecord)
			} else {
				rp.group = msg.GroupAddress()
			}
		case reason == frame.ReasonICMPv6 && p.ICMPv6(f).Type() >= frame.MLDQuery:
			rp.v6 = true
			ip := p.IPv6(f)
			rp.src, rp.dst = ip.Source(), ip.Destination()
			msg := p.ICMPv6(f)
			if !msg.IsChecksumValid(ip.PseudoHeaderSum(proto.IPProtoICMPv6, uint32(len(msg)))) {
				t.Errorf("MLD checksum wrong in %x", f)
			}
			if ip.HopLimit() != 1 || !mldRouterAlert(ip) {
				t.Errorf("MLD with hop limit %d, router alert %v", ip.HopLimit(), mldRouterAlert(ip))
			}
			rp.typ = msg.Type()
			m := frame.MLD(msg)
			if rp.typ == frame.MLDv2Report {
				rp.records = recordStrings(t, msg, m.AddressRecords(), m.NumberOfAddressRecords(), frame.NextMLDv2AddressRecord)
			} else {
				rp.group = m.MulticastAddress()
			}
		default:
			t.Fatalf("not a membership report (%v): %x", reason, f)
		}
		if mac, _ := multicastMAC(rp.dst); frame.Ethernet(f).Destination() != mac || frame.Ethernet(f).Source() != macEngine {
			t.Errorf("report to %v from %v", frame.Ethernet(f).Destination(), frame.Ethernet(f).Source())
		}
		out = append(out, rp)
	}
	return out
}

// records returns the records of the reports, which must all be IGMPv3
// or MLDv2 reports to their routers' group.
func (r *mrig) records() []string {
	r.t.Helper()
	var out []string
	for _, rp := range r.reports() {
		if rp.v6 && (rp.typ != frame.MLDv2Report || rp.dst != frame.MLDv2Routers || rp.src != ll6) ||
			!rp.v6 && (rp.typ != frame.IGMPv3MembershipReport || rp.dst != frame.IGMPv3Routers || rp.src != owned4) {
			r.t.Errorf("report type %d from %v to %v", rp.typ, rp.src, rp.dst)
		}
		out = append(out, rp.records...)
	}
	return out
}

func (r *mrig) wantRecords(what string, want ...string) {
	r.t.Helper()
	got := r.records()
	if !slices.Equal(got, want) {
		r.t.Errorf("%s: records\n%q\nwant\n%q", what, got, want)
	}
}

func (r *mrig) bind(a netip.AddrPort) *Port {
	r.t.Helper()
	p, err := r.e.Bind(a)
	if err != nil {
		r.t.Fatal(err)
	}
	return p
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func addrs(s ...string) []netip.Addr {
	out := []netip.Addr{}
	for _, a := range s {
		out = append(out, netip.MustParseAddr(a))
	}
	return out
}

// TestMulticastJoinLeave: a join is reported at once and repeated
// [Robustness Variable] times at random intervals below the Unsolicited
// Report Interval (RFC 3376 section 5.1); the group's MAC address goes on
// the interface's list while joined. A leave likewise, and the group is
// forgotten once the leave is fully reported.
func TestMulticastJoinLeave(t *testing.T) {
	for _, tc := range []struct {
		group netip.Addr
		port  netip.AddrPort
	}{{group4, ap(netip.Addr{}, 5000)}, {group6, ap(netip.IPv6Unspecified(), 5000)}} {
		r := newMrig(t, &Config{MulticastRobustness: 3})
		p := r.bind(tc.port)
		must(t, p.JoinGroup(tc.group))
		r.wantRecords("join", recordString(frame.RecordChangeToExclude, tc.group, nil))
		if !r.link.has(tc.group) {
			t.Errorf("%v: the MAC address is not on the interface", tc.group)
		}
		// Two more, each within the Unsolicited Report Interval (1 s)
		// of the last.
		for i := range 2 {
			d := r.next()
			if d <= 0 || d > time.Second {
				t.Fatalf("retransmission %d due in %v", i, d)
			}
			r.at(d - 1)
			r.wantRecords("before the retransmission")
			r.at(1)
			r.wantRecords("retransmission", recordString(frame.RecordChangeToExclude, tc.group, nil))
		}
		if d := r.next(); d != -1 {
			t.Errorf("a fourth report due in %v", d)
		}
		if g := r.e.Groups(); len(g) != 1 || g[0].Group != tc.group || !g[0].Exclude || g[0].Ports != 1 || g[0].Engine {
			t.Errorf("Groups() = %+v", g)
		}
		if g := p.Groups(); len(g) != 1 || g[0].Group != tc.group || !g[0].Exclude || len(g[0].Sources) != 0 {
			t.Errorf("Port.Groups() = %+v", g)
		}

		must(t, p.LeaveGroup(tc.group))
		r.wantRecords("leave", recordString(frame.RecordChangeToInclude, tc.group, nil))
		if r.link.has(tc.group) {
			t.Errorf("%v: the MAC address stays on the interface after the leave", tc.group)
		}
		for range 2 {
			r.at(r.next())
			r.wantRecords("leave, again", recordString(frame.RecordChangeToInclude, tc.group, nil))
		}
		if d := r.next(); d != -1 || len(r.m.family(tc.group).groups) != 0 {
			t.Errorf("after the leave: next %v, %d groups kept", d, len(r.m.family(tc.group).groups))
		}
		if err := p.LeaveGroup(tc.group); !errors.Is(err, syscall.EADDRNOTAVAIL) {
			t.Errorf("second leave: %v", err)
		}
		c := r.e.Counters().Multicast
		if c.IGMPReports+c.MLDReports != 6 || c.Groups != 0 {
			t.Errorf("counters %+v", c)
		}
	}
}

// TestMulticastMerge checks RFC 3376 section 3.2's merge against its
// meaning: the interface receives from a source exactly when some
// membership does.
func TestMulticastMerge(t *testing.T) {
	universe := addrs("10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5")
	outside := netip.MustParseAddr("10.9.9.9")
	rnd := rand.New(rand.NewPCG(1, 2))
	for range 5000 {
		ms := make([]member, 1+rnd.IntN(4))
		for i := range ms {
			f := sourceFilter{mode: filterMode(rnd.IntN(2))}
			for _, s := range universe {
				if rnd.IntN(2) == 0 {
					f.sources = append(f.sources, s)
				}
			}
			ms[i].filter = f
		}
		got := mergeFilters(ms)
		for _, s := range append(slices.Clone(universe), outside) {
			want := false
			for i := range ms {
				want = want || ms[i].filter.allows(s)
			}
			if got.allows(s) != want {
				t.Fatalf("%+v merge to %+v, which allows %v: %v", ms, got, s, !want)
			}
		}
		if !slices.IsSortedFunc(got.sources, netip.Addr.Compare) || len(slices.Compact(slices.Clone(got.sources))) != len(got.sources) {
			t.Fatalf("merged sources %v not a set", got.sources)
		}
	}
	// RFC 3376 section 3.2's own example.
	ms := []member{
		{filter: sourceFilter{mode: exclude, sources: addrs("10.0.0.1", "10.0.0.2", "10.0.0.3")}},
		{filter: sourceFilter{mode: exclude, sources: addrs("10.0.0.2", "10.0.0.3", "10.0.0.4")}},
		{filter: sourceFilter{mode: include, sources: addrs("10.0.0.2", "10.0.0.3", "10.0.0.5")}},
	}
	if got := mergeFilters(ms); got.mode != exclude || len(got.sources) != 0 {
		t.Errorf("RFC 3376 3.2 example merges to %+v, want EXCLUDE {}", got)
	}
}

// TestMulticastSourceChanges: source lists change with ALLOW and BLOCK
// records, a filter mode with TO_IN / TO_EX; changes before the previous
// one is fully reported are merged into the next report (RFC 3376
// section 5.1), each source sent [Robustness Variable] times.
func TestMulticastSourceChanges(t *testing.T) {
	r := newMrig(t, nil)
	p1 := r.bind(ap(netip.Addr{}, 5000))
	p2 := r.bind(ap(netip.Addr{}, 5001))
	rec := recordString

	// INCLUDE {} -> INCLUDE {A}: ALLOW, no filter-mode change.
	must(t, p1.JoinSourceGroup(ssm4, srcA4))
	r.wantRecords("ssm join", rec(frame.RecordAllowNewSources, ssm4, []netip.Addr{srcA4}))
	// Before the retransmission, B joins: A once more, B twice.
	r.at(100 * time.Millisecond)
	must(t, p1.JoinSourceGroup(ssm4, srcB4))
	r.wantRecords("second source", rec(frame.RecordAllowNewSources, ssm4, []netip.Addr{srcA4, srcB4}))
	r.at(r.next())
	r.wantRecords("retransmission", rec(frame.RecordAllowNewSources, ssm4, []netip.Addr{srcB4}))
	if d := r.next(); d != -1 {
		t.Fatalf("more reports due in %v", d)
	}
	// A leaves: BLOCK.
	must(t, p1.LeaveSourceGroup(ssm4, srcA4))
	r.wantRecords("source leave", rec(frame.RecordBlockOldSources, ssm4, []netip.Addr{srcA4}))
	// Another port joins from any source: a filter-mode change, which
	// drops the pending BLOCK.
	must(t, p2.JoinGroup(ssm4))
	r.wantRecords("any-source join", rec(frame.RecordChangeToExclude, ssm4, nil))
	r.at(r.next())
	r.wantRecords("any-source join, again", rec(frame.RecordChangeToExclude, ssm4, nil))
	// p2 blocks C: EXCLUDE {} -> EXCLUDE {C}: BLOCK C.
	must(t, p2.BlockSource(ssm4, srcC4))
	r.wantRecords("block", rec(frame.RecordBlockOldSources, ssm4, []netip.Addr{srcC4}))
	r.at(r.next())
	r.records()
	// p2 blocks B too, but p1 includes B: the interface still wants B.
	must(t, p2.BlockSource(ssm4, srcB4))
	r.wantRecords("block of a source another port wants")
	// p2 leaves: EXCLUDE {C} -> INCLUDE {B}: TO_IN {B}.
	must(t, p2.LeaveGroup(ssm4))
	r.wantRecords("back to include", rec(frame.RecordChangeToInclude, ssm4, []netip.Addr{srcB4}))
	if g := r.e.Groups(); len(g) != 1 || g[0].Exclude || !slices.Equal(g[0].Sources, []netip.Addr{srcB4}) {
		t.Errorf("Groups() = %+v", g)
	}
	// Closing the last port leaves: INCLUDE {B} -> INCLUDE {}: BLOCK B.
	must(t, p1.Close())
	// The filter-mode change still has a retransmission to go, which
	// carries the state as it is now.
	r.wantRecords("close", rec(frame.RecordBlockOldSources, ssm4, []netip.Addr{srcB4}), rec(frame.RecordChangeToInclude, ssm4, nil))
	if r.link.has(ssm4) {
		t.Error("MAC address kept after the last port closed")
	}

	// Errors, as Linux's setsockopt gives them (TestLabConnMulticastAgainstKernel
	// compares a longer sequence with the kernel's own).
	p3 := r.bind(ap(owned4, 5002))
	for _, tc := range []struct {
		name string
		err  error
		want syscall.Errno
	}{
		{"unicast group", p3.JoinGroup(owned4), syscall.EINVAL},
		{"IPv6 group on an IPv4 port", p3.JoinGroup(group6), syscall.EINVAL},
		{"source of the other family", p3.JoinSourceGroup(ssm4, srcA6), syscall.EINVAL},
		{"block without a membership", p3.BlockSource(group4, srcA4), syscall.EINVAL},
		{"leave without a membership", p3.LeaveGroup(group4), syscall.EADDRNOTAVAIL},
	} {
		if !errors.Is(tc.err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, tc.err, tc.want)
		}
	}
	must(t, p3.JoinGroup(group4))
	if err := p3.JoinGroup(group4); !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("second join: %v", err)
	}
	must(t, p3.BlockSource(group4, srcB4))
	if err := p3.BlockSource(group4, srcB4); !errors.Is(err, syscall.EADDRNOTAVAIL) {
		t.Errorf("blocking a source twice: %v", err)
	}
	if err := p3.JoinSourceGroup(group4, srcA4); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("source join on an any-source membership with a list: %v", err)
	}
	must(t, p3.JoinSourceGroup(ssm4, srcA4))
	if err := p3.BlockSource(ssm4, srcB4); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("block on a source-specific membership: %v", err)
	}
	if err := p3.LeaveSourceGroup(ssm4, srcB4); !errors.Is(err, syscall.EADDRNOTAVAIL) {
		t.Errorf("leaving a source not joined: %v", err)
	}
	var oe interface{ Timeout() bool }
	if err := p3.JoinGroup(group4); !errors.As(err, &oe) || !strings.Contains(err.Error(), "join") {
		t.Errorf("errors are not *net.OpError: %v", err)
	}
}

// TestMulticastLimits: a port joins at most 20 groups, with at most 10
// IPv4 or 64 IPv6 sources each (Linux's igmp_max_memberships,
// igmp_max_msf, mld_max_msf).
func TestMulticastLimits(t *testing.T) {
	r := newMrig(t, nil)
	p := r.bind(ap(netip.Addr{}, 5000))
	for i := range maxPortGroups {
		must(t, p.JoinGroup(netip.AddrFrom4([4]byte{239, 0, 0, byte(i)})))
	}
	if err := p.JoinGroup(group4b); !errors.Is(err, syscall.ENOBUFS) {
		t.Errorf("21st group: %v", err)
	}
	p2 := r.bind(ap(netip.Addr{}, 5001))
	for i := range maxSources4 {
		must(t, p2.JoinSourceGroup(ssm4, netip.AddrFrom4([4]byte{10, 0, 0, byte(i + 1)})))
	}
	if err := p2.JoinSourceGroup(ssm4, srcA6.Unmap()); err == nil || !errors.Is(err, syscall.EINVAL) {
		t.Errorf("IPv6 source: %v", err)
	}
	if err := p2.JoinSourceGroup(ssm4, netip.MustParseAddr("10.0.1.1")); !errors.Is(err, syscall.ENOBUFS) {
		t.Errorf("11th source: %v", err)
	}
	for i := range maxSources6 {
		must(t, p2.JoinSourceGroup(group6, netip.AddrFrom16([16]byte{0: 0xfd, 15: byte(i + 1)})))
	}
	if err := p2.JoinSourceGroup(group6, srcA6); !errors.Is(err, syscall.ENOBUFS) {
		t.Errorf("65th IPv6 source: %v", err)
	}
	// The MAC address list refusing one: the join fails and leaves no
	// trace.
	r.link.fail = syscall.ENOMEM
	if err := p2.JoinGroup(group4b); !errors.Is(err, syscall.ENOMEM) {
		t.Errorf("join with the link refusing: %v", err)
	}
	if slices.ContainsFunc(p2.Groups(), func(g GroupMembership) bool { return g.Group == group4b }) {
		t.Error("a failed join left a membership")
	}
}

// TestMulticastReportSplit: records that do not fit one report go into
// several, each within the MTU; a record with too many sources for one
// report is split, except IS_EX and TO_EX, which carry what fits (RFC
// 3376 section 4.2.16).
func TestMulticastReportSplit(t *testing.T) {
	r := newMrig(t, nil)
	f := &r.m.fams[1]
	var recs []frame.GroupRecord
	for i := range 100 {
		recs = append(recs, frame.GroupRecord{Type: frame.RecordModeIsExclude, Group: netip.AddrFrom16([16]byte{0: 0xff, 1: 0x15, 15: byte(i)})})
	}
	var many []netip.Addr
	for i := range 200 {
		many = append(many, netip.AddrFrom16([16]byte{0: 0xfd, 14: byte(i >> 8), 15: byte(i)}))
	}
	recs = append(recs,
		frame.GroupRecord{Type: frame.RecordAllowNewSources, Group: group6, Sources: many},
		frame.GroupRecord{Type: frame.RecordChangeToExclude, Group: group6, Sources: many})
	r.m.mu.Lock()
	r.m.sendRecordsLocked(f, recs, r.now, false)
	r.m.mu.Unlock()
	reports := r.reports()
	groups, allowed, excluded := 0, 0, 0
	for _, rp := range reports {
		for _, rec := range rp.records {
			switch {
			case strings.HasPrefix(rec, "is-ex"):
				groups++
			case strings.HasPrefix(rec, "allow"):
				allowed += strings.Count(rec, "fd00")
			case strings.HasPrefix(rec, "to-ex"):
				excluded += strings.Count(rec, "fd00")
			}
		}
	}
	perReport := (r.m.reportBudget(true) - 20) / 16
	if groups != 100 || allowed != 200 || excluded != perReport || len(reports) < 4 {
		t.Errorf("%d reports carry %d groups, %d allowed and %d excluded sources; want 100, 200 and %d", len(reports), groups, allowed, excluded, perReport)
	}
}

// igmpQuery builds an IGMP query frame: version 1 or 2 (8 bytes), else
// version 3 with sources; code is the Max Resp Code.
func igmpQuery(t testing.TB, version int, group netip.Addr, code uint8, qrv uint8, qqic uint8, sources ...netip.Addr) []byte {
	t.Helper()
	l4 := frame.IGMPHeaderLen
	if version == 3 {
		l4 = frame.IGMPv3QueryMinLen + 4*len(sources)
	}
	buf := make([]byte, 256)
	dst := group
	if !dst.IsValid() || dst.IsUnspecified() {
		dst, group = frame.IPv4AllSystems, netip.IPv4Unspecified()
	}
	// A v2 report of the right size, made into a query.
	n, err := frame.BuildIGMPv2Report(buf, &frame.IPSpec{SrcMAC: macPeer, Src: peer4, Dst: dst}, netip.MustParseAddr("224.0.0.99"))
	if err != nil {
		t.Fatal(err)
	}
	ip := frame.IPv4(buf[14:])
	hl := ip.HeaderLength()
	binary.BigEndian.PutUint16(buf[14+2:], uint16(hl+l4))
	binary.BigEndian.PutUint16(buf[14+10:], 0)
	binary.BigEndian.PutUint16(buf[14+10:], ^refSum(buf[14:14+hl]))
	m := buf[14+hl : 14+hl+l4]
	clear(m)
	m[0] = frame.IGMPMembershipQuery
	if version != 1 {
		m[1] = code
	}
	g := group.As4()
	copy(m[4:8], g[:])
	if version == 3 {
		m[8] = qrv & 7
		m[9] = qqic
		binary.BigEndian.PutUint16(m[10:], uint16(len(sources)))
		for i, s := range sources {
			a := s.As4()
			copy(m[12+4*i:], a[:])
		}
	}
	binary.BigEndian.PutUint16(m[2:], ^refSum(m))
	_ = n
	return buf[:14+hl+l4]
}

// mldQuery builds an MLD query frame as RFC 3810 section 5 says one is
// sent: from a link-local address, hop limit 1, Router Alert; version 1
// (24 bytes) or 2 with sources; code is the Maximum Response Code.
func mldQuery(t testing.TB, version int, group netip.Addr, code uint16, sources ...netip.Addr) []byte {
	t.Helper()
	l4 := frame.MLDv1Len
	if version == 2 {
		l4 = frame.MLDv2QueryMinLen + 16*len(sources)
	}
	dst := group
	if !dst.IsValid() || dst.IsUnspecified() {
		dst, group = frame.IPv6AllNodes, netip.IPv6Unspecified()
	}
	buf := make([]byte, 2048)
	// An MLDv2 report of the right size (records of no sources, 20
	// bytes each, padded), made into a query.
	var recs []frame.GroupRecord
	for range (l4 - 8 + 19) / 20 {
		recs = append(recs, frame.GroupRecord{Type: 1, Group: group6})
	}
	_, err := frame.BuildMLDv2Report(buf, &frame.IPSpec{SrcMAC: macPeer, Src: querier, Dst: dst}, recs)
	if err != nil {
		t.Fatal(err)
	}
	ip := frame.IPv6(buf[14:])
	ip.SetPayloadLength(uint16(8 + l4))
	n := 14 + 40 + 8 + l4
	m := frame.ICMPv6(buf[14+48 : n])
	clear(m)
	m[0] = frame.MLDQuery
	binary.BigEndian.PutUint16(m[4:], code)
	g := group.As16()
	copy(m[8:24], g[:])
	if version == 2 {
		m[24] = 2 // QRV
		m[25] = 125
		binary.BigEndian.PutUint16(m[26:], uint16(len(sources)))
		for i, s := range sources {
			a := s.As16()
			copy(m[28+16*i:], a[:])
		}
	}
	m.SetChecksum(m.CalculateChecksum(ip[:n-14].PseudoHeaderSum(proto.IPProtoICMPv6, uint32(l4))))
	return buf[:n]
}

// TestMulticastQueries: general, group-specific and group-and-source-
// specific queries are answered after a random delay below their Max
// Response, with the current state or the queried sources the interface
// receives (RFC 3376 section 5.2), read from frames through the worker.
func TestMulticastQueries(t *testing.T) {
	r := newMrig(t, nil)
	p := r.bind(ap(netip.Addr{}, 5000))
	must(t, p.JoinGroup(group4))
	must(t, p.BlockSource(group4, srcA4))
	must(t, p.JoinSourceGroup(ssm4, srcA4))
	must(t, p.JoinSourceGroup(ssm4, srcB4))
	must(t, p.JoinGroup(group6))
	must(t, r.m.update(nil, frame.IPv4AllSystems, func(*sourceFilter) (*sourceFilter, error) { return &sourceFilter{mode: exclude}, nil }))
	for r.next() != -1 {
		r.at(r.next())
	}
	r.records()
	rec := recordString

	// A general query, Max Resp Code 100 (10 s): the answer comes at
	// the random point (here half-way), naming every reported group.
	if o := r.one(igmpQuery(t, 3, netip.Addr{}, 100, 2, 125), ring.Meta{Timestamp: r.now}); o != OutcomeIGMP {
		t.Fatalf("query: outcome %v", o)
	}
	if d := r.next(); d != 5*time.Second {
		t.Fatalf("answer due in %v, want 5s", d)
	}
	r.at(5*time.Second - 1)
	r.wantRecords("before the delay")
	r.at(1)
	r.wantRecords("general query",
		rec(frame.RecordModeIsInclude, ssm4, []netip.Addr{srcA4, srcB4}),
		rec(frame.RecordModeIsExclude, group4, []netip.Addr{srcA4}))

	// Group-specific, and group-and-source-specific: the queried
	// sources the interface receives from.
	r.frac = 0.1
	r.one(igmpQuery(t, 3, group4, 10, 2, 125), ring.Meta{Timestamp: r.now})
	r.at(r.next())
	r.wantRecords("group-specific", rec(frame.RecordModeIsExclude, group4, []netip.Addr{srcA4}))
	r.one(igmpQuery(t, 3, ssm4, 10, 2, 125, srcB4, srcC4), ring.Meta{Timestamp: r.now})
	r.at(r.next())
	r.wantRecords("group-and-source, include", rec(frame.RecordModeIsInclude, ssm4, []netip.Addr{srcB4}))
	r.one(igmpQuery(t, 3, group4, 10, 2, 125, srcA4, srcC4), ring.Meta{Timestamp: r.now})
	r.at(r.next())
	r.wantRecords("group-and-source, exclude", rec(frame.RecordModeIsInclude, group4, []netip.Addr{srcC4}))
	r.one(igmpQuery(t, 3, group4, 10, 2, 125, srcA4), ring.Meta{Timestamp: r.now})
	r.at(r.next())
	r.wantRecords("group-and-source, only excluded sources")
	// Two group-and-source queries before the answer: one answer, the
	// union. A group-specific one on top: the whole group.
	r.one(igmpQuery(t, 3, ssm4, 10, 2, 125, srcA4), ring.Meta{Timestamp: r.now})
	r.one(igmpQuery(t, 3, ssm4, 10, 2, 125, srcB4), ring.Meta{Timestamp: r.now})
	r.at(r.next())
	r.wantRecords("merged group-and-source queries", rec(frame.RecordModeIsInclude, ssm4, []netip.Addr{srcA4, srcB4}))
	r.one(igmpQuery(t, 3, group4, 10, 2, 125, srcC4), ring.Meta{Timestamp: r.now})
	r.one(igmpQuery(t, 3, group4, 10, 2, 125), ring.Meta{Timestamp: r.now})
	r.at(r.next())
	r.wantRecords("group query over a group-and-source one", rec(frame.RecordModeIsExclude, group4, []netip.Addr{srcA4}))
	// A group nobody joined, or all-systems: nothing.
	r.one(igmpQuery(t, 3, group4b, 10, 2, 125), ring.Meta{Timestamp: r.now})
	r.one(igmpQuery(t, 3, frame.IPv4AllSystems, 10, 2, 125), ring.Meta{Timestamp: r.now})
	if d := r.next(); d != -1 {
		t.Errorf("an answer to a query about a group not reported, due in %v", d)
	}
	// A general query pending sooner makes a group query's answer
	// needless (RFC 3376 5.2 rule 1).
	r.frac = 0.5
	r.one(igmpQuery(t, 3, netip.Addr{}, 10, 2, 125), ring.Meta{Timestamp: r.now})
	r.one(igmpQuery(t, 3, group4, 100, 2, 125), ring.Meta{Timestamp: r.now})
	r.at(r.next())
	r.wantRecords("general answer only",
		rec(frame.RecordModeIsInclude, ssm4, []netip.Addr{srcA4, srcB4}),
		rec(frame.RecordModeIsExclude, group4, []netip.Addr{srcA4}))
	if d := r.next(); d != -1 {
		t.Errorf("another answer due in %v", d)
	}

	// MLDv2: the same through the IPv6 path.
	if o := r.one(mldQuery(t, 2, netip.Addr{}, 1000), ring.Meta{Timestamp: r.now}); o != Outcome(frame.ReasonICMPv6) {
		t.Fatalf("MLD query: outcome %v", o)
	}
	if d := r.next(); d != 500*time.Millisecond {
		t.Fatalf("MLD answer due in %v", d)
	}
	r.at(r.next())
	r.wantRecords("MLD general query", rec(frame.RecordModeIsExclude, group6, nil))
	r.one(mldQuery(t, 2, group6, 1000, srcA6), ring.Meta{Timestamp: r.now})
	r.at(r.next())
	r.wantRecords("MLD group-and-source query", rec(frame.RecordModeIsInclude, group6, []netip.Addr{srcA6}))

	// Invalid queries are counted and change nothing.
	badSum := igmpQuery(t, 3, netip.Addr{}, 10, 2, 125)
	badSum[len(badSum)-1] ^= 1
	withSources := igmpQuery(t, 3, netip.Addr{}, 10, 2, 125, srcA4)
	badLen := append(igmpQuery(t, 2, netip.Addr{}, 10, 0, 0), 0, 0) // 10 bytes: no version
	binary.BigEndian.PutUint16(badLen[14+2:], binary.BigEndian.Uint16(badLen[14+2:])+2)
	binary.BigEndian.PutUint16(badLen[14+10:], 0)
	binary.BigEndian.PutUint16(badLen[14+10:], ^refSum(badLen[14:14+24]))
	global := mldQuery(t, 2, netip.Addr{}, 1000)
	copy(global[14+8:], owned6.AsSlice()) // not link-local (checksum now wrong too)
	hop := mldQuery(t, 2, netip.Addr{}, 1000)
	hop[14+7] = 255
	noRA := mldQuery(t, 2, netip.Addr{}, 1000)
	noRA[14+40+2] = frame.IPv6OptionPadN // the Router Alert option becomes padding
	before := r.e.Counters().Multicast.InvalidQueries
	for _, f := range [][]byte{badSum, withSources, badLen, global, hop, noRA} {
		r.one(f, ring.Meta{Timestamp: r.now})
	}
	if got := r.e.Counters().Multicast.InvalidQueries - before; got != 6 {
		t.Errorf("%d invalid queries counted, want 6", got)
	}
	if d := r.next(); d != -1 {
		t.Errorf("an invalid query scheduled an answer in %v", d)
	}
	if c := r.e.Counters(); c.Check() != nil || c.Multicast.IGMPQueries == 0 || c.Multicast.MLDQueries == 0 {
		t.Errorf("counters %+v", c.Multicast)
	}
}

// TestMulticastOlderQuerier: an IGMPv2 query puts the interface in IGMPv2
// mode (RFC 3376 section 7.2.1): answers are IGMPv2 reports to the group,
// a join is an unsolicited v2 report, a leave an IGMPv2 leave unless
// another host's report was the last heard; an IGMPv1 querier makes the
// reports v1 and silences leaves; MLDv1 likewise. After the Older Version
// Querier Present Timeout the interface speaks IGMPv3 again.
func TestMulticastOlderQuerier(t *testing.T) {
	r := newMrig(t, nil)
	p := r.bind(ap(netip.Addr{}, 5000))
	must(t, p.JoinGroup(group4))
	for r.next() != -1 {
		r.at(r.next())
	}
	r.records()

	legacy := func(what string, typ uint8, dst, group netip.Addr) {
		t.Helper()
		rs := r.reports()
		if len(rs) != 1 || rs[0].typ != typ || rs[0].dst != dst || rs[0].group != group {
			t.Errorf("%s: reports %+v, want type %#x to %v about %v", what, rs, typ, dst, group)
		}
	}
	// IGMPv2 general query, Max Resp Time 2 s.
	r.one(igmpQuery(t, 2, netip.Addr{}, 20, 0, 0), ring.Meta{Timestamp: r.now})
	if d := r.next(); d != time.Second {
		t.Fatalf("v2 answer due in %v", d)
	}
	r.at(time.Second)
	legacy("v2 answer", frame.IGMPv2MembershipReport, group4, group4)
	// A join: a v2 report at once, one more within 10 s.
	must(t, p.JoinGroup(group4b))
	legacy("v2 join", frame.IGMPv2MembershipReport, group4b, group4b)
	if d := r.next(); d != 5*time.Second {
		t.Fatalf("v2 repeat due in %v", d)
	}
	r.at(r.next())
	legacy("v2 join, repeated", frame.IGMPv2MembershipReport, group4b, group4b)
	// A leave: the engine sent the last report, so an IGMPv2 leave.
	must(t, p.LeaveGroup(group4b))
	legacy("v2 leave", frame.IGMPv2LeaveGroup, frame.IPv4AllRouters, group4b)
	// Another host's report stands for ours: our pending answer is
	// cancelled, and no leave follows.
	r.one(igmpQuery(t, 2, group4, 20, 0, 0), ring.Meta{Timestamp: r.now})
	heard := igmpQuery(t, 2, group4, 0, 0, 0)
	heard[14+24] = frame.IGMPv2MembershipReport
	binary.BigEndian.PutUint16(heard[14+24+2:], 0)
	binary.BigEndian.PutUint16(heard[14+24+2:], ^refSum(heard[14+24:]))
	if o := r.one(heard, ring.Meta{Timestamp: r.now, Type: ring.PacketMulticast}); o != OutcomeIGMP {
		t.Fatalf("report: outcome %v", o)
	}
	if d := r.next(); d != -1 {
		t.Errorf("answer still due in %v after another host's report", d)
	}
	must(t, p.LeaveGroup(group4))
	if rs := r.reports(); len(rs) != 0 {
		t.Errorf("a leave after another host reported: %+v", rs)
	}
	if c := r.e.Counters().Multicast; c.ReportsHeard != 1 {
		t.Errorf("ReportsHeard %d", c.ReportsHeard)
	}

	// IGMPv1: v1 reports, no leave.
	r.one(igmpQuery(t, 1, netip.Addr{}, 0, 0, 0), ring.Meta{Timestamp: r.now})
	must(t, p.JoinGroup(group4))
	legacy("v1 join", frame.IGMPv1MembershipReport, group4, group4)
	r.at(r.next())
	r.reports()
	must(t, p.LeaveGroup(group4))
	if rs := r.reports(); len(rs) != 0 {
		t.Errorf("a leave in IGMPv1 mode: %+v", rs)
	}

	// After the Older Version Querier Present Timeout (2 × 125 s + 10 s
	// by default), IGMPv3 again.
	r.at(260 * time.Second)
	must(t, p.JoinGroup(group4))
	r.wantRecords("v3 again", recordString(frame.RecordChangeToExclude, group4, nil))

	// MLDv1: reports to the group and a done to all-routers.
	r.one(mldQuery(t, 1, netip.Addr{}, 1000), ring.Meta{Timestamp: r.now})
	must(t, p.JoinGroup(group6))
	legacy("MLDv1 join", frame.MLDv1Report, group6, group6)
	must(t, p.LeaveGroup(group6))
	legacy("MLDv1 done", frame.MLDv1Done, frame.IPv6AllRouters, group6)
}

// TestMulticastDelivery: a datagram to a group reaches the ports bound to
// its port on the group or the wildcard, when the group is joined on the
// interface and the port's own filter lets the source in; as in Linux,
// the IPv4 interface filter drops what no membership wants before UDP,
// while IPv6 leaves it to the sockets' filters.
func TestMulticastDelivery(t *testing.T) {
	r := newMrig(t, nil)
	wild := r.bind(ap(netip.Addr{}, 5000)) // both families
	bound := r.bind(ap(ssm4, 5000))
	must(t, wild.JoinSourceGroup(ssm4, srcA4))
	must(t, wild.JoinSourceGroup(group6, srcA6))
	r.records()
	dg := func(src, dst netip.Addr) []byte {
		return udpFrame(t, ap(src, 40000), ap(dst, 5000), []byte("m"))
	}
	m := ring.Meta{Type: ring.PacketMulticast}
	for _, tc := range []struct {
		name string
		f    []byte
		want Outcome
		to   []*Port
	}{
		{"included source", dg(srcA4, ssm4), OutcomeDelivered, []*Port{wild, bound}},
		{"other source, IPv4", dg(srcB4, ssm4), OutcomeOtherHost, nil},
		{"not joined", dg(srcA4, group4), OutcomeOtherHost, nil},
		{"other port", udpFrame(t, ap(srcA4, 40000), ap(ssm4, 5001), nil), OutcomeNoPortMulti, nil},
		{"included source, IPv6", dg(srcA6, group6), OutcomeDelivered, []*Port{wild}},
		{"other source, IPv6: the IP layer passes it, the port's filter not", dg(netip.MustParseAddr("fd00:5::2"), group6), OutcomeNoPortMulti, nil},
	} {
		before := map[*Port]uint64{wild: wild.Info().InDatagrams, bound: bound.Info().InDatagrams}
		if got := r.one(tc.f, m); got != tc.want {
			t.Errorf("%s: outcome %v, want %v", tc.name, got, tc.want)
		}
		for p, n := range before {
			if got := p.Info().InDatagrams - n; got != uint64(len(slices.DeleteFunc(slices.Clone(tc.to), func(q *Port) bool { return q != p }))) {
				t.Errorf("%s: %v got %d", tc.name, p, got)
			}
		}
	}
	// bound joins too, from source B only: then A reaches only wild.
	must(t, bound.JoinSourceGroup(ssm4, srcB4))
	r.one(dg(srcA4, ssm4), m)
	r.one(dg(srcB4, ssm4), m)
	if w, b := wild.Info().InDatagrams, bound.Info().InDatagrams; w != 3 || b != 2 {
		t.Errorf("with two filters: wildcard %d, bound %d datagrams; want 3 and 2", w, b)
	}
	if c := r.e.Counters(); c.UDP.IgnoredMulti != 2 || c.Check() != nil {
		t.Errorf("IgnoredMulti %d", c.UDP.IgnoredMulti)
	}
}

// TestMulticastOwnGroups: started, the engine joins all-systems and
// all-nodes (not reported) and the solicited-node groups of its owned
// IPv6 addresses (reported with MLDv2), puts their MAC addresses on the
// interface, and on Close leaves them, takes the addresses off and closes
// the socket that held them.
func TestMulticastOwnGroups(t *testing.T) {
	r := newMrig(t, &Config{VLAN: 33})
	r.m.link = nil
	link := r.link
	r.m.randN = func(int64) int64 { return 0 }
	if err := r.m.joinOwn(link); err != nil {
		t.Fatal(err)
	}
	sn := solicitedNode(owned6)
	var got []string
	for _, g := range r.e.Groups() {
		got = append(got, fmt.Sprintf("%v engine=%v reported=%v", g.Group, g.Engine, g.Reported))
		if !link.has(g.Group) {
			t.Errorf("%v: MAC address not on the interface", g.Group)
		}
	}
	want := []string{"224.0.0.1 engine=true reported=false", "ff02::1 engine=true reported=false", sn.String() + " engine=true reported=true"}
	if !slices.Equal(got, want) {
		t.Errorf("groups %q, want %q", got, want)
	}
	rs := r.reports()
	if len(rs) == 0 || !slices.Equal(rs[0].records, []string{recordString(frame.RecordChangeToExclude, sn, nil)}) ||
		len(rs[0].vlans) != 1 || rs[0].vlans[0].ID() != 33 {
		t.Errorf("reports %+v", rs)
	}
	if err := r.e.Close(); err != nil {
		t.Fatal(err)
	}
	if len(link.macs) != 0 || !link.closed {
		t.Errorf("after Close: MAC addresses %v, socket closed %v", link.macs, link.closed)
	}
}

// TestMulticastQueryAllocs: a query costs no allocation on the worker
// that reads it when the answer is already scheduled sooner.
func TestMulticastQueryAllocs(t *testing.T) {
	r := newMrig(t, nil)
	p := r.bind(ap(netip.Addr{}, 5000))
	must(t, p.JoinGroup(group4))
	q := igmpQuery(t, 3, netip.Addr{}, 100, 2, 125)
	b := new(fakeBatch).add(q, ring.Meta{Timestamp: r.now})
	br := r.ref(b)
	r.frac = 0
	r.w.handleBatch(br)
	r.frac = 0.9
	if n := testing.AllocsPerRun(100, func() { r.w.handleBatch(br) }); n != 0 {
		t.Errorf("%v allocations per query", n)
	}
}
