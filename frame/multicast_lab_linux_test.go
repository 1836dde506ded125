package frame_test

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/pktengine/pktengine/frame"
	"github.com/pktengine/pktengine/internal/labtest"
	"github.com/pktengine/pktengine/proto"
	"github.com/pktengine/pktengine/ring"
)

// TestMulticastAgainstKernel makes Linux the oracle for IGMP and MLD, both
// ways. Host B's lab interface becomes the port of a bridge that snoops
// IGMPv3/MLDv2 and acts as querier:
//
//   - the reports the builders write, sent from host A, must create the
//     bridge's group database entries (the bridge checks checksums,
//     lengths and, for MLD, the Hop-by-Hop Router Alert);
//   - the queries the bridge sends (general, and group-specific after a
//     leave) must parse with the version and timings it was configured
//     with;
//   - the reports host A's kernel sends when a socket joins a group must
//     parse into the record the join means.
func TestMulticastAgainstKernel(t *testing.T) {
	l := labtest.New(t, nil)
	a, b := l.A(), l.B()
	// The bridge: a 2.5 s query response interval (25 in tenths of a
	// second, 2500 ms), a 1 s last-member interval, general queries every
	// 3 s (so that one comes soon whenever the test looks).
	// (Above 12.7 s the bridge writes the IGMPv3 Max Resp Code without
	// the floating-point form of RFC 3376 4.1.1, which Linux's own host
	// side, like ParseIGMPQuery, decodes: scapy checks that form.)
	if _, err := b.Sysctl("net.ipv6.conf.default.accept_dad", "0"); err != nil {
		t.Fatal(err)
	}
	// A captures everything on its interface, its own frames included.
	rx := labtest.Open(t, a, func(ifi *net.Interface) (*ring.RX, error) { return ring.NewRX(ifi, nil) })
	tx := labtest.Open(t, a, func(ifi *net.Interface) (ring.Transmitter, error) { return ring.NewTransmitter(ifi, nil) })

	labtest.Bridge(t, b, "br0", "mcast_snooping 1 mcast_igmp_version 3 mcast_mld_version 2 mcast_querier 1 "+
		"mcast_query_response_interval 250 mcast_last_member_interval 100 mcast_query_interval 300 "+
		"mcast_startup_query_interval 100")

	// The bridge's general queries, IGMPv3 and MLDv2, as it comes up.
	q4 := waitQuery(t, rx, 4, netip.IPv4Unspecified())
	q6 := waitQuery(t, rx, 6, netip.IPv6Unspecified())
	for _, q := range []frame.MulticastQuery{q4, q6} {
		wantV := 3
		if q.Group.Is6() {
			wantV = 2
		}
		if q.Version != wantV || q.MaxResponse != 2500*time.Millisecond || q.QQI != 3*time.Second || q.QRV != 2 {
			t.Errorf("bridge's general query reads %+v", q)
		}
	}

	// Reports from A's builders join groups on the bridge.
	g4, g4s, g4v2 := netip.MustParseAddr("239.1.2.3"), netip.MustParseAddr("232.1.1.1"), netip.MustParseAddr("239.2.2.2")
	g6, g6s, g6v1 := netip.MustParseAddr("ff15::1234"), netip.MustParseAddr("ff35::8000:1"), netip.MustParseAddr("ff15::5678")
	src4, src6 := netip.MustParseAddr("10.1.2.3"), netip.MustParseAddr("fd00::99")
	ll := netip.MustParseAddr("fe80::a:1")
	s4 := &frame.IPSpec{SrcMAC: frame.MAC(a.MAC), Src: a.IPv4.Addr()}
	s6 := &frame.IPSpec{SrcMAC: frame.MAC(a.MAC), Src: ll}
	send := func(build func([]byte) (int, error)) {
		t.Helper()
		labtest.SendBuilt(t, tx, 1, func(buf []byte, _ int) (int, error) { return build(buf) })
	}
	send(func(buf []byte) (int, error) {
		return frame.BuildIGMPv3Report(buf, s4, []frame.GroupRecord{
			{Type: frame.RecordModeIsExclude, Group: g4},
			{Type: frame.RecordAllowNewSources, Group: g4s, Sources: []netip.Addr{src4}},
		})
	})
	send(func(buf []byte) (int, error) { return frame.BuildIGMPv2Report(buf, s4, g4v2) })
	send(func(buf []byte) (int, error) {
		return frame.BuildMLDv2Report(buf, s6, []frame.GroupRecord{
			{Type: frame.RecordChangeToExclude, Group: g6},
			{Type: frame.RecordModeIsInclude, Group: g6s, Sources: []netip.Addr{src6}},
		})
	})
	send(func(buf []byte) (int, error) { return frame.BuildMLDv1Report(buf, s6, g6v1) })
	want := []string{g4.String(), g4s.String() + " src " + src4.String(), g4v2.String(), g6.String(), g6s.String() + " src " + src6.String(), g6v1.String()}
	var have []string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		have = labtest.BridgeGroups(t, b, "br0")
		if containsAll(have, want) {
			break
		}
	}
	if !containsAll(have, want) {
		t.Errorf("bridge groups %q, want %q", have, want)
	}

	// A leave draws a group-specific query with the last-member interval.
	send(func(buf []byte) (int, error) { return frame.BuildIGMPv2Leave(buf, s4, g4v2) })
	if q := waitQuery(t, rx, 4, g4v2); q.Version != 3 || q.MaxResponse != time.Second {
		t.Errorf("group-specific query after the leave reads %+v", q)
	}
	send(func(buf []byte) (int, error) { return frame.BuildMLDv1Done(buf, s6, g6v1) })
	if q := waitQuery(t, rx, 6, g6v1); q.Version != 2 || q.MaxResponse != time.Second {
		t.Errorf("group-specific MLD query after the done reads %+v", q)
	}

	// A's kernel reports a socket's joins: IGMPv3 and MLDv2 reports with
	// a record that changes to exclude-nothing for the group.
	for _, g := range []netip.Addr{netip.MustParseAddr("239.9.9.9"), netip.MustParseAddr("ff15::9999")} {
		network := "udp4"
		if g.Is6() {
			network = "udp6"
		}
		labtest.Open(t, a, func(ifi *net.Interface) (*net.UDPConn, error) {
			return net.ListenMulticastUDP(network, ifi, &net.UDPAddr{IP: g.AsSlice(), Port: 9999})
		})
		if rec, ok := waitReport(t, rx, g); !ok || rec.typ != frame.RecordChangeToExclude || rec.sources != 0 {
			t.Errorf("%v: kernel's report reads %+v", g, rec)
		}
	}
}

// waitQuery reads frames from rx until a query for group of the family
// arrives (10 s at most) and returns it parsed.
func waitQuery(t *testing.T, rx *ring.RX, fam int, group netip.Addr) frame.MulticastQuery {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	buf := make([]byte, 4096)
	for {
		n, _, err := rx.Read(ctx, buf)
		if err != nil {
			t.Fatalf("no IPv%d query for %v: %v", fam, group, err)
		}
		f := buf[:n]
		var p frame.Packet
		var q frame.MulticastQuery
		switch r := p.Decode(f); {
		case fam == 4 && r == frame.ReasonOtherIPProtocol && p.Protocol == proto.IPProtoIGMP:
			if p.IGMP(f).Type() != frame.IGMPMembershipQuery {
				continue
			}
			if !p.IGMP(f).IsChecksumValid() {
				t.Fatal("kernel's IGMP query: checksum")
			}
			q, err = frame.ParseIGMPQuery(p.IGMP(f))
		case fam == 6 && r == frame.ReasonICMPv6 && p.ICMPv6(f).Type() == frame.MLDQuery:
			q, err = frame.ParseMLDQuery(frame.MLD(p.ICMPv6(f)))
		default:
			continue
		}
		if err != nil {
			t.Fatalf("kernel's query %x: %v", f, err)
		}
		if q.Group == group {
			return q
		}
	}
}

type kernelRecord struct {
	typ     uint8
	sources int
}

// waitReport reads frames from rx until a report with a record for group
// arrives (5 s at most).
func waitReport(t *testing.T, rx *ring.RX, group netip.Addr) (kernelRecord, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	buf := make([]byte, 4096)
	for {
		n, _, err := rx.Read(ctx, buf)
		if err != nil {
			return kernelRecord{}, false
		}
		f := buf[:n]
		var p frame.Packet
		switch r := p.Decode(f); {
		case group.Is4() && r == frame.ReasonOtherIPProtocol && p.Protocol == proto.IPProtoIGMP &&
			p.IGMP(f).Type() == frame.IGMPv3MembershipReport:
			m := p.IGMP(f)
			if !m.IsChecksumValid() {
				t.Fatal("kernel's IGMPv3 report: checksum")
			}
			if rec, ok := findRecord(t, m, m.GroupRecords(), int(m.NumberOfGroupRecords()), frame.NextIGMPv3GroupRecord, group); ok {
				return rec, true
			}
		case group.Is6() && r == frame.ReasonICMPv6 && p.ICMPv6(f).Type() == frame.MLDv2Report:
			m := frame.MLD(p.ICMPv6(f))
			if rec, ok := findRecord(t, m, m.AddressRecords(), int(m.NumberOfAddressRecords()), frame.NextMLDv2AddressRecord, group); ok {
				return rec, true
			}
		}
	}
}

// groupRecord is what an IGMPv3 group record and an MLDv2 address record
// have in common.
type groupRecord interface {
	Type() uint8
	MulticastAddress() netip.Addr
	NumberOfSources() int
}

// findRecord reads the count records of report (rest, read with next) and
// returns the one for group, if there is one.
func findRecord[R groupRecord](t *testing.T, report, rest []byte, count int, next func([]byte) (R, []byte, bool), group netip.Addr) (kernelRecord, bool) {
	t.Helper()
	for i := range count {
		rec, after, ok := next(rest)
		if !ok {
			t.Fatalf("kernel's report %x: record %d", report, i)
		}
		if rec.MulticastAddress() == group {
			return kernelRecord{rec.Type(), rec.NumberOfSources()}, true
		}
		rest = after
	}
	return kernelRecord{}, false
}

func containsAll(have, want []string) bool {
	for _, w := range want {
		if !slices.Contains(have, w) {
			return false
		}
	}
	return true
}
