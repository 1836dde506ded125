package frame

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/pktengine/pktengine/proto"
)

var (
	g4a  = netip.MustParseAddr("239.1.2.3")
	g4b  = netip.MustParseAddr("232.1.1.1")
	s4a  = netip.MustParseAddr("198.18.0.9")
	s4b  = netip.MustParseAddr("10.1.2.3")
	g6a  = netip.MustParseAddr("ff15::1234")
	g6b  = netip.MustParseAddr("ff35::8000:1")
	s6a  = netip.MustParseAddr("fd00::9")
	s6b  = netip.MustParseAddr("2001:db8::1")
	ll6  = netip.MustParseAddr("fe80::1")
	rec4 = []GroupRecord{
		{Type: RecordModeIsExclude, Group: g4a},
		{Type: RecordChangeToInclude, Group: g4b, Sources: []netip.Addr{s4a, s4b}},
		{Type: RecordAllowNewSources, Group: g4b, Sources: []netip.Addr{s4a}, AuxData: []byte{1, 2, 3, 4}},
		{Type: RecordBlockOldSources, Group: g4a, Sources: []netip.Addr{s4b}},
		{Type: RecordModeIsInclude, Group: g4a, Sources: []netip.Addr{s4a}},
		{Type: RecordChangeToExclude, Group: g4b},
	}
	rec6 = []GroupRecord{
		{Type: RecordChangeToExclude, Group: g6a},
		{Type: RecordModeIsInclude, Group: g6b, Sources: []netip.Addr{s6a, s6b}},
		{Type: RecordBlockOldSources, Group: g6b, Sources: []netip.Addr{s6b}, AuxData: make([]byte, 8)},
		{Type: RecordModeIsExclude, Group: g6a},
		{Type: RecordAllowNewSources, Group: g6b, Sources: []netip.Addr{s6a}},
		{Type: RecordChangeToInclude, Group: g6a},
	}
)

// checkIGMPFrame checks the IP header every IGMP message carries (RFC
// 3376 section 4, as Linux sends it) and returns the message.
func checkIGMPFrame(t testing.TB, f []byte, dst netip.Addr) IGMP {
	t.Helper()
	var p Packet
	if r := p.Decode(f); r != ReasonOtherIPProtocol || p.Protocol != proto.IPProtoIGMP {
		t.Fatalf("decodes as %v protocol %d", r, p.Protocol)
	}
	ip := p.IPv4(f)
	if ip.TTL() != 1 || ip.TOS() != IGMPTOS || !ip.DontFragment() || !ip.IsChecksumValid() || ip.Destination() != dst ||
		!bytes.Equal(ip.Options(), IPv4RouterAlert[:]) {
		t.Fatalf("IPv4 header %x", ip[:ip.HeaderLength()])
	}
	if Ethernet(f).Destination() != IPv4MulticastMAC(dst.As4()) {
		t.Fatalf("destination MAC %v for %v", Ethernet(f).Destination(), dst)
	}
	m := p.IGMP(f)
	if !m.IsChecksumValid() {
		t.Fatal("IGMP checksum")
	}
	return m
}

// checkMLDFrame checks the headers of an MLD message (RFC 3810 section 5)
// and returns it.
func checkMLDFrame(t testing.TB, f []byte, dst netip.Addr) MLD {
	t.Helper()
	var p Packet
	if r := p.Decode(f); r != ReasonICMPv6 {
		t.Fatalf("decodes as %v", r)
	}
	ip := p.IPv6(f)
	if ip.HopLimit() != 1 || ip.Destination() != dst || ip.NextHeader() != proto.IPProtoHopByHop ||
		!bytes.Equal(ip[IPv6HeaderLen:IPv6HeaderLen+8], mldHopByHop[:]) || p.L4Off != p.L3Off+48 {
		t.Fatalf("IPv6 headers %x", f[p.L3Off:p.L4Off])
	}
	if Ethernet(f).Destination() != IPv6MulticastMAC(dst.As16()) {
		t.Fatalf("destination MAC %v", Ethernet(f).Destination())
	}
	m := p.ICMPv6(f)
	if !m.IsChecksumValid(ip.PseudoHeaderSum(proto.IPProtoICMPv6, uint32(len(m)))) {
		t.Fatal("ICMPv6 checksum")
	}
	return MLD(m)
}

// groupRecordView is what an IGMPv3 group record and an MLDv2 address
// record have in common: the same fields, only the address family differs.
type groupRecordView interface {
	~[]byte
	Type() uint8
	MulticastAddress() netip.Addr
	NumberOfSources() int
	Source(i int) netip.Addr
	AuxData() []byte
}

// checkGroupRecords reads the records in rest with next and checks them
// against want, and that nothing follows the last one.
func checkGroupRecords[R groupRecordView](t testing.TB, rest []byte, want []GroupRecord, next func([]byte) (R, []byte, bool)) {
	t.Helper()
	for i, w := range want {
		r, after, ok := next(rest)
		if !ok || r.Type() != w.Type || r.MulticastAddress() != w.Group || r.NumberOfSources() != len(w.Sources) ||
			!bytes.Equal(r.AuxData(), w.AuxData) {
			t.Fatalf("record %d: %x", i, r)
		}
		for j, src := range w.Sources {
			if r.Source(j) != src {
				t.Fatalf("record %d source %d: %v", i, j, r.Source(j))
			}
		}
		rest = after
	}
	if len(rest) != 0 {
		t.Fatalf("%d bytes after the records", len(rest))
	}
}

func build(t testing.TB, fn func([]byte) (int, error)) []byte {
	t.Helper()
	buf := make([]byte, 4096)
	n, err := fn(buf)
	if err != nil {
		t.Fatal(err)
	}
	return buf[:n]
}

// TestIGMPv3Report builds a report with a record of every type and reads
// it back with the views and with gopacket.
func TestIGMPv3Report(t *testing.T) {
	s := &IPSpec{SrcMAC: macA, Src: s4a, ID: 7, VLANs: []VLANTag{{TCI: 3}}}
	f := build(t, func(b []byte) (int, error) { return BuildIGMPv3Report(b, s, rec4) })
	m := checkIGMPFrame(t, f, IGMPv3Routers)
	if m.Type() != IGMPv3MembershipReport || int(m.NumberOfGroupRecords()) != len(rec4) || len(m) != IGMPv3ReportLen(rec4) {
		t.Fatalf("report %x", m)
	}
	checkGroupRecords(t, m.GroupRecords(), rec4, NextIGMPv3GroupRecord)
	// gopacket.
	pkt := gopacket.NewPacket(f, layers.LayerTypeEthernet, gopacket.Default)
	g, ok := pkt.Layer(layers.LayerTypeIGMP).(*layers.IGMP)
	if !ok || g.Type != layers.IGMPMembershipReportV3 || int(g.NumberOfGroupRecords) != len(rec4) {
		t.Fatalf("gopacket: %v", pkt)
	}
	for i, want := range rec4 {
		gr := g.GroupRecords[i]
		if uint8(gr.Type) != want.Type || !gr.MulticastAddress.Equal(want.Group.AsSlice()) || int(gr.NumberOfSources) != len(want.Sources) ||
			int(gr.AuxDataLen) != len(want.AuxData)/4 {
			t.Fatalf("gopacket record %d: %+v", i, gr)
		}
		for j, src := range want.Sources {
			if !gr.SourceAddresses[j].Equal(src.AsSlice()) {
				t.Fatalf("gopacket record %d source %d: %v", i, j, gr.SourceAddresses[j])
			}
		}
	}
}

// TestIGMPv2Messages: reports and leaves of IGMPv1 and v2.
func TestIGMPv2Messages(t *testing.T) {
	s := &IPSpec{SrcMAC: macA, Src: s4a}
	for _, c := range []struct {
		fn  func([]byte, *IPSpec, netip.Addr) (int, error)
		typ uint8
		dst netip.Addr
	}{
		{BuildIGMPv2Report, IGMPv2MembershipReport, g4a},
		{BuildIGMPv2Leave, IGMPv2LeaveGroup, IPv4AllRouters},
		{BuildIGMPv1Report, IGMPv1MembershipReport, g4a},
	} {
		f := build(t, func(b []byte) (int, error) { return c.fn(b, s, g4a) })
		m := checkIGMPFrame(t, f, c.dst)
		if len(m) != IGMPHeaderLen || m.Type() != c.typ || m.MaxRespCode() != 0 || m.GroupAddress() != g4a {
			t.Fatalf("type %#x: %x", c.typ, m)
		}
		pkt := gopacket.NewPacket(f, layers.LayerTypeEthernet, gopacket.Default)
		g, ok := pkt.Layer(layers.LayerTypeIGMP).(*layers.IGMPv1or2)
		if !ok || uint8(g.Type) != c.typ || !g.GroupAddress.Equal(g4a.AsSlice()) {
			t.Fatalf("gopacket: %v", pkt)
		}
	}
}

// TestMLDv2Report builds a report with a record of every type and reads
// it back with the views and with gopacket.
func TestMLDv2Report(t *testing.T) {
	s := &IPSpec{SrcMAC: macA, Src: ll6}
	f := build(t, func(b []byte) (int, error) { return BuildMLDv2Report(b, s, rec6) })
	m := checkMLDFrame(t, f, MLDv2Routers)
	if m.Type() != MLDv2Report || int(m.NumberOfAddressRecords()) != len(rec6) || len(m) != MLDv2ReportLen(rec6) {
		t.Fatalf("report %x", m)
	}
	checkGroupRecords(t, m.AddressRecords(), rec6, NextMLDv2AddressRecord)
	pkt := gopacket.NewPacket(f, layers.LayerTypeEthernet, gopacket.Default)
	g, ok := pkt.Layer(layers.LayerTypeMLDv2MulticastListenerReport).(*layers.MLDv2MulticastListenerReportMessage)
	if !ok || int(g.NumberOfMulticastAddressRecords) != len(rec6) {
		t.Fatalf("gopacket: %v", pkt)
	}
	for i, want := range rec6 {
		gr := g.MulticastAddressRecords[i]
		if uint8(gr.RecordType) != want.Type || !gr.MulticastAddress.Equal(want.Group.AsSlice()) || int(gr.N) != len(want.Sources) ||
			!bytes.Equal(gr.AuxiliaryData, want.AuxData) && len(want.AuxData) > 0 {
			t.Fatalf("gopacket record %d: %+v", i, gr)
		}
		for j, src := range want.Sources {
			if !gr.SourceAddresses[j].Equal(src.AsSlice()) {
				t.Fatalf("gopacket record %d source %d", i, j)
			}
		}
	}
	// Before the interface has a link-local address: from ::.
	s.Src = netip.IPv6Unspecified()
	checkMLDFrame(t, build(t, func(b []byte) (int, error) { return BuildMLDv2Report(b, s, rec6[:1]) }), MLDv2Routers)
}

// TestMLDv1Messages: MLDv1 reports and dones.
func TestMLDv1Messages(t *testing.T) {
	s := &IPSpec{SrcMAC: macA, Src: ll6}
	for _, c := range []struct {
		fn    func([]byte, *IPSpec, netip.Addr) (int, error)
		typ   uint8
		dst   netip.Addr
		layer gopacket.LayerType
	}{
		{BuildMLDv1Report, MLDv1Report, g6a, layers.LayerTypeMLDv1MulticastListenerReport},
		{BuildMLDv1Done, MLDv1Done, IPv6AllRouters, layers.LayerTypeMLDv1MulticastListenerDone},
	} {
		f := build(t, func(b []byte) (int, error) { return c.fn(b, s, g6a) })
		m := checkMLDFrame(t, f, c.dst)
		if len(m) != MLDv1Len || m.Type() != c.typ || m.MulticastAddress() != g6a {
			t.Fatalf("type %d: %x", c.typ, m)
		}
		pkt := gopacket.NewPacket(f, layers.LayerTypeEthernet, gopacket.Default)
		if pkt.Layer(c.layer) == nil {
			t.Fatalf("gopacket: %v", pkt)
		}
	}
}

// TestGroupRecordErrors: records the builders refuse.
func TestGroupRecordErrors(t *testing.T) {
	s4 := &IPSpec{Src: s4a}
	s6 := &IPSpec{Src: ll6}
	for _, r := range []GroupRecord{
		{Type: 0, Group: g4a},
		{Type: 7, Group: g4a},
		{Type: 1, Group: s4a},                                 // not multicast
		{Type: 1, Group: g6a},                                 // wrong family
		{Type: 1, Group: g4a, Sources: []netip.Addr{s6a}},     // source of the wrong family
		{Type: 1, Group: g4a, AuxData: []byte{1}},             // not a whole word
		{Type: 1, Group: g4a, Sources: make([]netip.Addr, 1)}, // the zero Addr
	} {
		if _, err := BuildIGMPv3Report(make([]byte, 4096), s4, []GroupRecord{r}); err != ErrGroupRecord {
			t.Errorf("%+v: %v", r, err)
		}
	}
	if _, err := BuildMLDv2Report(make([]byte, 4096), s6, []GroupRecord{{Type: 1, Group: g4a}}); err != ErrGroupRecord {
		t.Errorf("IPv4 group in MLD: %v", err)
	}
	if _, err := BuildMLDv2Report(make([]byte, 4096), s6, []GroupRecord{{Type: 1, Group: netip.MustParseAddr("::ffff:239.1.1.1")}}); err != ErrGroupRecord {
		t.Errorf("mapped group: %v", err)
	}
	if _, err := BuildIGMPv2Report(make([]byte, 4096), s4, s4b); err != ErrGroupRecord {
		t.Errorf("unicast group: %v", err)
	}
	if _, err := BuildMLDv1Done(make([]byte, 4096), s6, g4a); err != ErrGroupRecord {
		t.Errorf("IPv4 group: %v", err)
	}
	if _, err := BuildIGMPv3Report(make([]byte, 50), s4, rec4); err != ErrShortBuffer {
		t.Errorf("short buffer: %v", err)
	}
	if _, err := BuildIGMPv3Report(make([]byte, 4096), s6, rec4); err != ErrAddressFamily {
		t.Errorf("IPv6 source: %v", err)
	}
	if _, err := BuildMLDv2Report(make([]byte, 4096), s4, rec6); err != ErrAddressFamily {
		t.Errorf("IPv4 source: %v", err)
	}
}

// igmpQuery builds an IGMP query frame: an 8-byte v1/v2 query if v3 is
// false, else a v3 query with the given fields.
func igmpQuery(group netip.Addr, mrc uint8, v3 bool, sFlag bool, qrv, qqic uint8, sources ...netip.Addr) []byte {
	l4 := IGMPHeaderLen
	if v3 {
		l4 = IGMPv3QueryMinLen + 4*len(sources)
	}
	dst := IPv4AllSystems
	if group.IsValid() && !group.IsUnspecified() {
		dst = group
	} else {
		group = netip.IPv4Unspecified()
	}
	buf := make([]byte, 200)
	off, n, _ := igmpFrame(buf, &IPSpec{SrcMAC: macB, Src: s4b}, dst, l4)
	m := IGMP(buf[off:n])
	m[0], m[1] = IGMPMembershipQuery, mrc
	g := group.As4()
	copy(m[4:8], g[:])
	if v3 {
		putQuerySources(m[8:], sFlag, qrv, qqic, sources)
	}
	binary.BigEndian.PutUint16(m[2:], m.CalculateChecksum())
	return buf[:n]
}

// putQuerySources writes what an IGMPv3 or MLDv2 query has after the
// group address, laid out alike in both (RFC 3376 4.1, RFC 3810 5.1): the
// S flag and QRV, the QQIC, the number of sources and the sources.
func putQuerySources(b []byte, sFlag bool, qrv, qqic uint8, sources []netip.Addr) {
	b[0] = qrv & 7
	if sFlag {
		b[0] |= 8
	}
	b[1] = qqic
	binary.BigEndian.PutUint16(b[2:], uint16(len(sources)))
	off := 4
	for _, s := range sources {
		off += copy(b[off:], s.AsSlice())
	}
}

// mldQuery builds an MLD query frame: 24 bytes if !v2.
func mldQuery(group netip.Addr, mrc uint16, v2 bool, sFlag bool, qrv, qqic uint8, sources ...netip.Addr) []byte {
	l4 := MLDv1Len
	if v2 {
		l4 = MLDv2QueryMinLen + 16*len(sources)
	}
	dst := IPv6AllNodes
	if group.IsValid() && !group.IsUnspecified() {
		dst = group
	} else {
		group = netip.IPv6Unspecified()
	}
	buf := make([]byte, 400)
	ip, off, n, _ := mldFrame(buf, &IPSpec{SrcMAC: macB, Src: ll6}, dst, l4)
	m := ICMPv6(buf[off:n])
	m[0] = MLDQuery
	binary.BigEndian.PutUint16(m[4:], mrc)
	g := group.As16()
	copy(m[8:24], g[:])
	if v2 {
		putQuerySources(m[24:], sFlag, qrv, qqic, sources)
	}
	m.SetChecksum(m.CalculateChecksum(ip.PseudoHeaderSum(proto.IPProtoICMPv6, uint32(l4))))
	return buf[:n]
}

// TestParseIGMPQuery: the versions by length and code (RFC 3376 7.1), the
// fields, and the floating-point codes.
func TestParseIGMPQuery(t *testing.T) {
	for _, c := range []struct {
		name string
		f    []byte
		want MulticastQuery
		srcs []netip.Addr
	}{
		{"v1 general", igmpQuery(netip.Addr{}, 0, false, false, 0, 0), MulticastQuery{Version: 1, MaxResponse: 10 * time.Second}, nil},
		{"v2 general", igmpQuery(netip.Addr{}, 100, false, false, 0, 0), MulticastQuery{Version: 2, MaxResponse: 10 * time.Second}, nil},
		{"v2 group", igmpQuery(g4a, 10, false, false, 0, 0), MulticastQuery{Version: 2, Group: g4a, MaxResponse: time.Second}, nil},
		{"v3 general", igmpQuery(netip.Addr{}, 100, true, false, 2, 125), MulticastQuery{Version: 3, MaxResponse: 10 * time.Second, QRV: 2, QQI: 125 * time.Second}, nil},
		{"v3 float", igmpQuery(g4a, 0x8f, true, true, 7, 0xff), MulticastQuery{Version: 3, Group: g4a, MaxResponse: 248 * 100 * time.Millisecond, SuppressRouterProcessing: true, QRV: 7, QQI: 31744 * time.Second}, nil},
		{"v3 sources", igmpQuery(g4b, 0x80, true, false, 2, 0x80, s4a, s4b), MulticastQuery{Version: 3, Group: g4b, MaxResponse: 128 * 100 * time.Millisecond, QRV: 2, QQI: 128 * time.Second}, []netip.Addr{s4a, s4b}},
	} {
		var p Packet
		p.Decode(c.f)
		q, err := ParseIGMPQuery(p.IGMP(c.f))
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		checkQuery(t, c.name, q, c.want, netip.IPv4Unspecified(), c.srcs)
		if !p.IGMP(c.f).IsChecksumValid() {
			t.Errorf("%s: checksum", c.name)
		}
		// gopacket agrees on version and fields; its decoding of
		// floating-point codes swaps exponent and mantissa, so only
		// codes below 128 are compared.
		pkt := gopacket.NewPacket(c.f, layers.LayerTypeEthernet, gopacket.Default)
		switch g := pkt.Layer(layers.LayerTypeIGMP).(type) {
		case *layers.IGMPv1or2:
			if q.Version == 3 || !g.GroupAddress.Equal(q.Group.AsSlice()) || q.Version == 2 && g.MaxResponseTime != q.MaxResponse {
				t.Errorf("%s: gopacket %+v", c.name, g)
			}
		case *layers.IGMP:
			if q.Version != 3 || !g.GroupAddress.Equal(q.Group.AsSlice()) || g.SupressRouterProcessing != q.SuppressRouterProcessing ||
				g.RobustnessValue != q.QRV || int(g.NumberOfSources) != q.NumberOfSources() ||
				p.IGMP(c.f).MaxRespCode() < 128 && g.MaxResponseTime != q.MaxResponse {
				t.Errorf("%s: gopacket %+v", c.name, g)
			}
		default:
			t.Errorf("%s: gopacket %v", c.name, pkt)
		}
	}
	// Lengths no version has are ignored, truncated source lists refused.
	v3 := igmpQuery(g4a, 10, true, false, 2, 125, s4a, s4b)
	var p Packet
	p.Decode(v3)
	m := p.IGMP(v3)
	for n := 9; n < 12; n++ {
		if _, err := ParseIGMPQuery(m[:n]); err != ErrQueryLength {
			t.Errorf("%d bytes: %v", n, err)
		}
	}
	if _, err := ParseIGMPQuery(m[:len(m)-1]); err != ErrQueryTruncated {
		t.Errorf("truncated sources: %v", err)
	}
	if q, err := ParseIGMPQuery(m[:12]); err != ErrQueryTruncated || q.Version != 0 {
		t.Errorf("12 bytes claiming 2 sources: %v", err)
	}
	if _, err := ParseIGMPQuery(m[:7]); err != ErrNotQuery {
		t.Errorf("7 bytes: %v", err)
	}
	rep := build(t, func(b []byte) (int, error) { return BuildIGMPv2Report(b, &IPSpec{Src: s4a}, g4a) })
	p.Decode(rep)
	if _, err := ParseIGMPQuery(p.IGMP(rep)); err != ErrNotQuery {
		t.Errorf("report: %v", err)
	}
}

// TestParseMLDQuery: the versions by length (RFC 3810 8.1) and the fields.
func TestParseMLDQuery(t *testing.T) {
	for _, c := range []struct {
		name string
		f    []byte
		want MulticastQuery
		srcs []netip.Addr
	}{
		{"v1 general", mldQuery(netip.Addr{}, 10000, false, false, 0, 0), MulticastQuery{Version: 1, MaxResponse: 10 * time.Second}, nil},
		{"v1 group", mldQuery(g6a, 1000, false, false, 0, 0), MulticastQuery{Version: 1, Group: g6a, MaxResponse: time.Second}, nil},
		{"v2 general", mldQuery(netip.Addr{}, 10000, true, false, 2, 125), MulticastQuery{Version: 2, MaxResponse: 10 * time.Second, QRV: 2, QQI: 125 * time.Second}, nil},
		{"v2 float", mldQuery(g6a, 0xffff, true, true, 3, 0x81), MulticastQuery{Version: 2, Group: g6a, MaxResponse: 8387584 * time.Millisecond, SuppressRouterProcessing: true, QRV: 3, QQI: 136 * time.Second}, nil},
		{"v2 sources", mldQuery(g6b, 0x8000, true, false, 2, 10, s6a, s6b), MulticastQuery{Version: 2, Group: g6b, MaxResponse: 32768 * time.Millisecond, QRV: 2, QQI: 10 * time.Second}, []netip.Addr{s6a, s6b}},
	} {
		var p Packet
		if r := p.Decode(c.f); r != ReasonICMPv6 {
			t.Fatalf("%s: %v", c.name, r)
		}
		q, err := ParseMLDQuery(MLD(p.ICMPv6(c.f)))
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		checkQuery(t, c.name, q, c.want, netip.IPv6Unspecified(), c.srcs)
		pkt := gopacket.NewPacket(c.f, layers.LayerTypeEthernet, gopacket.Default)
		if q.Version == 2 {
			g, ok := pkt.Layer(layers.LayerTypeMLDv2MulticastListenerQuery).(*layers.MLDv2MulticastListenerQueryMessage)
			if !ok || g.MaximumResponseDelay() != q.MaxResponse || g.QQI() != q.QQI || g.QueriersRobustnessVariable != q.QRV ||
				g.SuppressRoutersideProcessing != q.SuppressRouterProcessing || int(g.NumberOfSources) != q.NumberOfSources() ||
				!g.MulticastAddress.Equal(q.Group.AsSlice()) {
				t.Errorf("%s: gopacket %+v", c.name, pkt.Layer(layers.LayerTypeMLDv2MulticastListenerQuery))
			}
		} else if pkt.Layer(layers.LayerTypeMLDv1MulticastListenerQuery) == nil {
			t.Errorf("%s: gopacket %v", c.name, pkt)
		}
	}
	f := mldQuery(g6a, 10, true, false, 2, 125, s6a)
	var p Packet
	p.Decode(f)
	m := MLD(p.ICMPv6(f))
	for n := 25; n < 28; n++ {
		if _, err := ParseMLDQuery(m[:n]); err != ErrQueryLength {
			t.Errorf("%d bytes: %v", n, err)
		}
	}
	if _, err := ParseMLDQuery(m[:len(m)-1]); err != ErrQueryTruncated {
		t.Errorf("truncated sources: %v", err)
	}
	if _, err := ParseMLDQuery(m[:23]); err != ErrNotQuery {
		t.Errorf("23 bytes: %v", err)
	}
}

// TestMaxRespCode: the floating-point codes of RFC 3376 4.1.1 and RFC
// 3810 5.1.3, at their edges, and monotonic.
func TestMaxRespCode(t *testing.T) {
	for code, want := range map[uint8]int{0: 0, 1: 1, 127: 127, 0x80: 128, 0x81: 136, 0x8f: 248, 0x90: 256, 0xf0: 16 << 10, 0xff: 31744} {
		if got := DecodeMaxRespCode(code); got != want {
			t.Errorf("IGMP code %#x: %d, want %d", code, got, want)
		}
	}
	for code, want := range map[uint16]int{0: 0, 32767: 32767, 0x8000: 32768, 0x8001: 32776, 0x8fff: 65528, 0xffff: 8387584} {
		if got := DecodeMLDMaxRespCode(code); got != want {
			t.Errorf("MLD code %#x: %d, want %d", code, got, want)
		}
	}
	for c := 1; c < 256; c++ {
		if DecodeMaxRespCode(uint8(c)) <= DecodeMaxRespCode(uint8(c-1)) {
			t.Fatalf("IGMP code %#x not above %#x", c, c-1)
		}
	}
	for c := 1; c < 65536; c++ {
		if DecodeMLDMaxRespCode(uint16(c)) <= DecodeMLDMaxRespCode(uint16(c-1)) {
			t.Fatalf("MLD code %#x not above %#x", c, c-1)
		}
	}
}

// TestMulticastAllocs: builders and parsers do not allocate.
func TestMulticastAllocs(t *testing.T) {
	buf := make([]byte, 4096)
	s4, s6 := &IPSpec{Src: s4a}, &IPSpec{Src: ll6}
	q4 := igmpQuery(g4a, 10, true, false, 2, 125, s4a)
	q6 := mldQuery(g6a, 10, true, false, 2, 125, s6a)
	var sink MulticastQuery
	for name, fn := range map[string]func(){
		"BuildIGMPv3Report": func() { BuildIGMPv3Report(buf, s4, rec4) },
		"BuildMLDv2Report":  func() { BuildMLDv2Report(buf, s6, rec6) },
		"BuildIGMPv2Leave":  func() { BuildIGMPv2Leave(buf, s4, g4a) },
		"BuildMLDv1Report":  func() { BuildMLDv1Report(buf, s6, g6a) },
		"ParseIGMPQuery":    func() { sink, _ = ParseIGMPQuery(IGMP(q4[38:])); _ = sink.Source(0) },
		"ParseMLDQuery":     func() { sink, _ = ParseMLDQuery(MLD(q6[62:])); _ = sink.Source(0) },
	} {
		if n := testing.AllocsPerRun(100, fn); n != 0 {
			t.Errorf("%s: %v allocations", name, n)
		}
	}
}

// FuzzMulticastQuery: arbitrary messages never panic the parsers, and an
// accepted query's sources lie within it.
func FuzzMulticastQuery(f *testing.F) {
	f.Add([]byte(igmpQuery(g4a, 0x8f, true, true, 7, 0xff, s4a)[38:]), false)
	f.Add([]byte(mldQuery(g6a, 0x8000, true, false, 2, 10, s6a)[62:]), true)
	f.Fuzz(func(t *testing.T, b []byte, v6 bool) {
		var q MulticastQuery
		var err error
		if v6 {
			q, err = ParseMLDQuery(MLD(b))
		} else {
			q, err = ParseIGMPQuery(IGMP(b))
		}
		if err != nil {
			return
		}
		for i := range q.NumberOfSources() {
			_ = q.Source(i)
		}
		if q.Version < 1 || q.Version > 3 || v6 && q.Version > 2 {
			t.Fatalf("version %d", q.Version)
		}
		for rest := b[8:]; ; {
			var ok bool
			if v6 {
				_, rest, ok = NextMLDv2AddressRecord(rest)
			} else {
				_, rest, ok = NextIGMPv3GroupRecord(rest)
			}
			if !ok {
				break
			}
		}
	})
}

// checkQuery compares a parsed query q with want, whose zero Group stands
// for unspecified (the general query's group), and q's sources with srcs.
func checkQuery(t *testing.T, name string, q, want MulticastQuery, unspecified netip.Addr, srcs []netip.Addr) {
	t.Helper()
	got := q
	got.sources, got.alen = nil, 0
	if !want.Group.IsValid() {
		want.Group = unspecified
	}
	if !sameQuery(got, want) || q.NumberOfSources() != len(srcs) {
		t.Errorf("%s: %+v, want %+v", name, got, want)
	}
	for i, s := range srcs {
		if q.Source(i) != s {
			t.Errorf("%s: source %d %v", name, i, q.Source(i))
		}
	}
}

// sameQuery compares the fields of two queries, sources apart.
func sameQuery(a, b MulticastQuery) bool {
	return a.Version == b.Version && a.Group == b.Group && a.MaxResponse == b.MaxResponse &&
		a.SuppressRouterProcessing == b.SuppressRouterProcessing && a.QRV == b.QRV && a.QQI == b.QQI
}
