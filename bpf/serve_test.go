package bpf

import (
	"bytes"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	xbpf "golang.org/x/net/bpf"

	"github.com/pktengine/pktengine/frame"
	"github.com/pktengine/pktengine/proto"
)

// The serve filter's tests: an engine with an owned and a shared address
// of each family (serveSpec), a peer, and an address that is not the
// engine's.
var (
	owned4, shared4, bcast4 = netip.MustParseAddr("198.18.0.1"), netip.MustParseAddr("198.18.0.10"), netip.MustParseAddr("198.18.0.255")
	owned6, shared6         = netip.MustParseAddr("fd00::1"), netip.MustParseAddr("fd00::10")
	peer4, other4           = netip.MustParseAddr("198.18.0.2"), netip.MustParseAddr("198.18.0.99")
	peer6, other6           = netip.MustParseAddr("fd00::2"), netip.MustParseAddr("fd00::99")
)

// serveSpec is an engine with an owned and a shared address of each
// family, both IPv4 addresses in one /24. kernel turns on the tests of
// Linux ancillary data (the packet type, the VLAN tag in metadata), which
// x/net/bpf's VM cannot run.
func serveSpec(expr string, kernel bool) *ServeSpec {
	return &ServeSpec{
		Addrs:          []ServeAddr{{owned4, true}, {shared4, false}, {owned6, true}, {shared6, false}},
		Broadcasts:     []netip.Addr{bcast4, bcast4},
		Expr:           expr,
		IgnoreOutgoing: kernel,
		VLANAncillary:  kernel,
	}
}

var updateGolden = flag.Bool("update", false, "rewrite the golden programs of TestServeFilterGolden")

// TestServeFilterGolden pins the program instruction for instruction
// (testdata/serve), so that a change to it is always deliberate: first
// made from engine/filter.go when the program moved here, rewritten (go
// test -run TestServeFilterGolden -update) when the program learnt to
// test VLANs and to pass IGMP and MLD; TestServeFilter and
// TestServeFilterMulticastVLAN say what each version accepts.
func TestServeFilterGolden(t *testing.T) {
	mustAddr := netip.MustParseAddr
	for name, spec := range map[string]*ServeSpec{
		"basic": serveSpec("", true),
		"expr":  serveSpec("src host 198.18.0.2 or src host fd00::2", true),
		"vm":    serveSpec("", false),
		"v4only": {
			Addrs:          []ServeAddr{{mustAddr("198.18.0.1"), true}, {mustAddr("198.18.1.1"), false}, {mustAddr("198.18.2.1"), false}},
			Broadcasts:     []netip.Addr{mustAddr("198.18.2.3")},
			IgnoreOutgoing: true,
			VLANAncillary:  true,
		},
		"v6only": {Addrs: []ServeAddr{{mustAddr("fd00::1"), false}}, IgnoreOutgoing: true, VLANAncillary: true},
		"vlan100": func() *ServeSpec {
			s := serveSpec("", true)
			s.VLANID = 100
			return s
		}(),
	} {
		raw, err := ServeFilter(spec)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		checkGolden(t, filepath.Join("testdata", "serve", name+".ddd"), raw)
	}
}

// checkGolden compares prog with the "tcpdump -ddd" text in file.
func checkGolden(t *testing.T, file string, prog []xbpf.RawInstruction) {
	t.Helper()
	var got bytes.Buffer
	if err := FormatDDD(&got, prog); err != nil {
		t.Fatal(err)
	}
	if *updateGolden {
		if err := os.WriteFile(file, got.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if got.String() != string(want) {
		old, err := parseDDD(bytes.NewReader(want))
		if err != nil {
			t.Fatal(err)
		}
		t.Errorf("%s: the program differs from the golden one (%d instructions, want %d):\n%s", file, len(prog), len(old), firstDifference(prog, old))
	}
}

func firstDifference(got, want []xbpf.RawInstruction) string {
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			return "at " + image(got[i], i) + ", want " + image(want[i], i)
		}
	}
	return "one is a prefix of the other"
}

// serveFrames builds the frames of the serve filter's tests.
type serveFrames struct{ t *testing.T }

func (b serveFrames) udp(src, dst netip.Addr, port uint16) []byte {
	return udpFrame(b.t, frame.UDPSpec{Src: netip.AddrPortFrom(src, 40000), Dst: netip.AddrPortFrom(dst, port), Payload: []byte("x")})
}

// icmp is an ICMP or ICMPv6 message of type typ, with target in the place
// of a Neighbor Solicitation's target. Checksums are wrong: the filter does
// not read them.
func (b serveFrames) icmp(src, dst netip.Addr, typ uint8, target netip.Addr) []byte {
	f := udpFrame(b.t, frame.UDPSpec{Src: netip.AddrPortFrom(src, 0), Dst: netip.AddrPortFrom(dst, 0), Payload: make([]byte, 16)})
	l4 := frame.EthernetHeaderLen + frame.IPv6HeaderLen
	if src.Is4() {
		f[frame.EthernetHeaderLen+9] = proto.IPProtoICMP
		l4 = frame.EthernetHeaderLen + 20
	} else {
		f[frame.EthernetHeaderLen+6] = proto.IPProtoICMPv6
		if target.IsValid() {
			t16 := target.As16()
			copy(f[l4+8:], t16[:])
		}
	}
	f[l4] = typ
	return f
}

func (b serveFrames) arp(sender, target netip.Addr) []byte {
	buf := make([]byte, 64)
	n, err := frame.BuildARP(buf, &frame.ARPSpec{Op: frame.ARPRequest, SenderIP: sender, TargetIP: target})
	if err != nil {
		b.t.Fatal(err)
	}
	return buf[:frame.PadEthernet(buf, n)]
}

func (b serveFrames) na(src, dst netip.Addr) []byte {
	buf := make([]byte, 128)
	n, err := frame.BuildNeighborAdvertisement(buf, &frame.IPSpec{Src: src, Dst: dst}, src, frame.NDPFlagSolicited, frame.MAC{})
	if err != nil {
		b.t.Fatal(err)
	}
	return buf[:n]
}

func (b serveFrames) fragment(dst netip.Addr, off int) []byte {
	s := &frame.UDPSpec{Src: netip.AddrPortFrom(peer4, 1), Dst: netip.AddrPortFrom(dst, 7), Payload: make([]byte, 64)}
	buf := make([]byte, 256)
	n, err := frame.BuildUDPFragment(buf, s, frame.Fragment{Offset: off, Length: 16})
	if err != nil {
		b.t.Fatal(err)
	}
	return buf[:n]
}

// tagged inserts an 802.1Q tag with VLAN ID 0 (a priority tag, which the
// engine takes for untagged) into f: the filter's layout with a tag in
// the frame.
func (b serveFrames) tagged(f []byte) []byte { return b.vlan(f, 0) }

// vlan inserts an 802.1Q tag with VLAN ID id into f, as a second (inner)
// tag is left in the frame when the kernel strips the outer one, or as a
// backend that leaves tags in the frame hands it over.
func (b serveFrames) vlan(f []byte, id uint16) []byte {
	buf := append(f[:len(f):len(f)], make([]byte, frame.VLANTagLen)...)
	n, err := frame.InsertVLANTag(buf, len(f), frame.VLANTag{TCI: frame.MakeTCI(3, false, id)})
	if err != nil {
		b.t.Fatal(err)
	}
	return buf[:n]
}

func TestServeFilter(t *testing.T) {
	b := serveFrames{t}
	tcp := b.udp(peer4, owned4, 80)
	tcp[14+9] = proto.IPProtoTCP
	ns := func(src, target netip.Addr) []byte {
		return b.icmp(src, netip.MustParseAddr("ff02::1:ff00:1"), frame.ICMPv6NeighborSolicitation, target)
	}
	cases := []struct {
		name string
		f    []byte
		want bool
	}{
		{"udp owned4", b.udp(peer4, owned4, 7), true},
		{"udp shared4 any port", b.udp(peer4, shared4, 33333), true},
		{"udp owned6", b.udp(peer6, owned6, 7), true},
		{"udp shared6", b.udp(peer6, shared6, 9), true},
		{"udp other4", b.udp(peer4, other4, 7), false},
		{"udp other6", b.udp(peer6, other6, 7), false},
		{"udp directed broadcast", b.udp(peer4, bcast4, 7), true},
		{"udp limited broadcast", b.udp(peer4, netip.MustParseAddr("255.255.255.255"), 7), true},
		{"udp multicast4", b.udp(peer4, netip.MustParseAddr("239.1.1.1"), 7), true},
		{"udp multicast6", b.udp(peer6, netip.MustParseAddr("ff02::fb"), 5353), true},
		{"udp fragment", b.fragment(owned4, 16), true},
		{"tcp owned", tcp, false},
		{"arp for owned", b.arp(peer4, owned4), true},
		{"arp for shared", b.arp(peer4, shared4), true},
		{"arp for other", b.arp(peer4, other4), false},
		{"ns for owned", ns(peer6, owned6), true},
		{"ns for shared", ns(peer6, shared6), false},
		{"na to engine", b.na(peer6, shared6), true},
		{"na to other", b.na(peer6, other6), false},
		{"ping owned4", b.icmp(peer4, owned4, frame.ICMPv4Echo, netip.Addr{}), true},
		{"ping shared4", b.icmp(peer4, shared4, frame.ICMPv4Echo, netip.Addr{}), false},
		{"ping owned6", b.icmp(peer6, owned6, frame.ICMPv6EchoRequest, netip.Addr{}), true},
		{"ping shared6", b.icmp(peer6, shared6, frame.ICMPv6EchoRequest, netip.Addr{}), false},
		// ICMP errors reach the port that sent the datagram they quote,
		// on shared addresses too.
		{"port unreachable to shared4", b.icmp(peer4, shared4, frame.ICMPv4DestUnreachable, netip.Addr{}), true},
		{"time exceeded to shared4", b.icmp(peer4, shared4, frame.ICMPv4TimeExceeded, netip.Addr{}), true},
		{"parameter problem to shared4", b.icmp(peer4, shared4, frame.ICMPv4ParameterProblem, netip.Addr{}), true},
		{"redirect to shared4", b.icmp(peer4, shared4, frame.ICMPv4Redirect, netip.Addr{}), false},
		{"port unreachable to other4", b.icmp(peer4, other4, frame.ICMPv4DestUnreachable, netip.Addr{}), false},
		{"ICMPv6 unreachable to shared6", b.icmp(peer6, shared6, frame.ICMPv6DestUnreachable, netip.Addr{}), true},
		{"packet too big to owned6", b.icmp(peer6, owned6, frame.ICMPv6PacketTooBig, netip.Addr{}), true},
		{"ICMPv6 time exceeded to shared6", b.icmp(peer6, shared6, frame.ICMPv6TimeExceeded, netip.Addr{}), true},
		{"ICMPv6 parameter problem to shared6", b.icmp(peer6, shared6, frame.ICMPv6ParameterProblem, netip.Addr{}), true},
		{"ICMPv6 unreachable to other6", b.icmp(peer6, other6, frame.ICMPv6DestUnreachable, netip.Addr{}), false},
		{"ICMPv6 type 5 to shared6", b.icmp(peer6, shared6, 5, netip.Addr{}), false},
		{"tagged udp owned4", b.tagged(b.udp(peer4, owned4, 7)), true},
		{"tagged udp other6", b.tagged(b.udp(peer6, other6, 7)), false},
		{"tagged arp", b.tagged(b.arp(peer4, owned4)), true},
		{"tagged ns", b.tagged(ns(peer6, owned6)), true},
	}
	// The x/net/bpf VM runs the program without the packet-type test;
	// the evaluator runs it with, for frames received and sent.
	noType := serveVM(t, serveSpec("", false))
	withType := serveVM(t, serveSpec("", true))
	for _, tc := range cases {
		if got := noType.run(t, tc.f, meta{}); got != tc.want {
			t.Errorf("%s: accepted %v, want %v", tc.name, got, tc.want)
		}
		if got := withType.run(t, tc.f, meta{pktType: 0}); got != tc.want {
			t.Errorf("%s, IgnoreOutgoing: accepted %v, want %v", tc.name, got, tc.want)
		}
		if withType.run(t, tc.f, meta{pktType: packetOutgoing}) {
			t.Errorf("%s, IgnoreOutgoing: accepted an outgoing frame", tc.name)
		}
	}

	// An expression narrows UDP but leaves ARP and NDP alone.
	expr := "src host 198.18.0.2 or src host fd00::2"
	narrow := serveVM(t, serveSpec(expr, false))
	for _, tc := range []struct {
		name string
		f    []byte
		want bool
	}{
		{"udp from peer", b.udp(peer4, owned4, 7), true},
		{"udp from peer6", b.udp(peer6, owned6, 7), true},
		{"udp from elsewhere", b.udp(netip.MustParseAddr("198.18.0.3"), owned4, 7), false},
		{"arp from elsewhere", b.arp(netip.MustParseAddr("198.18.0.3"), owned4), true},
		{"ns from elsewhere", ns(netip.MustParseAddr("fd00::3"), owned6), true},
		{"udp to other", b.udp(peer4, other4, 7), false},
	} {
		if got := narrow.run(t, tc.f, meta{}); got != tc.want {
			t.Errorf("%q, %s: accepted %v, want %v", expr, tc.name, got, tc.want)
		}
	}
}

// igmp is an IGMP message of type typ about group to dst, with the
// Router Alert option its builders write. Checksums do not matter here.
func (b serveFrames) igmp(typ uint8, dst netip.Addr) []byte {
	buf := make([]byte, 128)
	n, err := frame.BuildIGMPv2Report(buf, &frame.IPSpec{Src: peer4, Dst: dst}, netip.MustParseAddr("239.1.2.3"))
	if err != nil {
		b.t.Fatal(err)
	}
	buf[frame.EthernetHeaderLen+frame.IPv4MinHeaderLen+len(frame.IPv4RouterAlert)] = typ
	return buf[:frame.PadEthernet(buf, n)]
}

// mld is an ICMPv6 message of type typ behind the Hop-by-Hop header of
// MLD, to dst.
func (b serveFrames) mld(typ uint8, dst netip.Addr) []byte {
	buf := make([]byte, 128)
	n, err := frame.BuildMLDv1Report(buf, &frame.IPSpec{Src: netip.MustParseAddr("fe80::2"), Dst: dst}, netip.MustParseAddr("ff15::1"))
	if err != nil {
		b.t.Fatal(err)
	}
	buf[frame.EthernetHeaderLen+frame.IPv6HeaderLen+8] = typ
	return buf[:n]
}

// TestServeFilterMulticastVLAN: IGMP and MLD queries, and the reports of
// other hosts that an IGMPv1/v2 or MLDv1 host listens for, pass whole;
// other membership messages do not. Frames of the VLAN served pass whole,
// those of another VLAN pass cut to OtherVLANSnapLen, for the engine to
// count, if the program would otherwise accept them, whether the tag is in
// metadata or in the frame.
func TestServeFilterMulticastVLAN(t *testing.T) {
	b := serveFrames{t}
	all4, all6 := netip.MustParseAddr("224.0.0.1"), netip.MustParseAddr("ff02::1")
	group4, group6 := netip.MustParseAddr("239.1.2.3"), netip.MustParseAddr("ff15::1")
	full, short := uint32(DefaultSnapLen), uint32(OtherVLANSnapLen)
	snap := func(spec *ServeSpec, f []byte, m meta) uint32 {
		t.Helper()
		raw, err := ServeFilter(spec)
		if err != nil {
			t.Fatal(err)
		}
		r, err := evalRaw(raw, f, m)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	for _, tc := range []struct {
		name string
		f    []byte
		want uint32
	}{
		{"igmp query to all-systems", b.igmp(frame.IGMPMembershipQuery, all4), full},
		{"igmp query to a group", b.igmp(frame.IGMPMembershipQuery, group4), full},
		{"igmp query to owned4", b.igmp(frame.IGMPMembershipQuery, owned4), full},
		{"igmp query to shared4", b.igmp(frame.IGMPMembershipQuery, shared4), full},
		{"igmp query to another host (the engine checks)", b.igmp(frame.IGMPMembershipQuery, other4), full},
		{"igmpv1 report", b.igmp(frame.IGMPv1MembershipReport, group4), full},
		{"igmpv2 report", b.igmp(frame.IGMPv2MembershipReport, group4), full},
		{"igmpv2 leave", b.igmp(frame.IGMPv2LeaveGroup, frame.IPv4AllRouters), 0},
		{"igmpv3 report", b.igmp(frame.IGMPv3MembershipReport, frame.IGMPv3Routers), 0},
		{"tagged igmp query", b.tagged(b.igmp(frame.IGMPMembershipQuery, all4)), full},
		{"mld query to all-nodes", b.mld(frame.MLDQuery, all6), full},
		{"mld query to a group", b.mld(frame.MLDQuery, group6), full},
		{"mld query to owned6", b.mld(frame.MLDQuery, owned6), full},
		{"mld query to another host (the engine checks)", b.mld(frame.MLDQuery, other6), full},
		{"mldv1 report", b.mld(frame.MLDv1Report, group6), full},
		{"mldv1 done", b.mld(frame.MLDv1Done, frame.IPv6AllRouters), 0},
		{"mldv2 report", b.mld(frame.MLDv2Report, frame.MLDv2Routers), 0},
		{"echo request behind hop-by-hop", b.mld(frame.ICMPv6EchoRequest, owned6), 0},
		{"tagged mld query", b.tagged(b.mld(frame.MLDQuery, all6)), full},
	} {
		if got := snap(serveSpec("", true), tc.f, meta{}); got != tc.want {
			t.Errorf("%s: returns %d, want %d", tc.name, got, tc.want)
		}
		if got := snap(serveSpec("", false), tc.f, meta{}); got != tc.want {
			t.Errorf("%s, without ancillary loads: returns %d, want %d", tc.name, got, tc.want)
		}
	}

	udp := b.udp(peer4, owned4, 7)
	other := b.udp(peer4, other4, 7)
	tag := func(id uint16) meta { return meta{vlanPresent: true, vlanTCI: frame.MakeTCI(5, false, id)} }
	for _, tc := range []struct {
		name       string
		f          []byte
		m          meta
		want0      uint32 // serving untagged frames
		want100    uint32 // serving VLAN 100
		noAncil0   uint32 // the same without ancillary loads (the tag in metadata unseen)
		noAncil100 uint32
	}{
		{"untagged", udp, meta{}, full, short, full, short},
		{"priority tag in metadata", udp, tag(0), full, short, full, short},
		{"vlan 100 in metadata", udp, tag(100), short, full, full, short},
		{"vlan 200 in metadata", udp, tag(200), short, short, full, short},
		{"vlan 100 in the frame", b.vlan(udp, 100), meta{}, short, full, short, full},
		{"vlan 200 in the frame", b.vlan(udp, 200), meta{}, short, short, short, short},
		{"priority tag in the frame", b.vlan(udp, 0), meta{}, full, short, full, short},
		{"vlan 100 in metadata, 100 in the frame", b.vlan(udp, 100), tag(100), short, short, short, full},
		{"vlan 100 in metadata, priority tag in the frame", b.vlan(udp, 0), tag(100), short, short, full, short},
		{"arp on vlan 100", b.arp(peer4, owned4), tag(100), short, full, full, short},
		{"ns on vlan 200", b.na(peer6, shared6), tag(200), short, short, full, short},
		{"not the engine's, vlan 100", other, tag(100), 0, 0, 0, 0},
		{"not the engine's, vlan 200", other, tag(200), 0, 0, 0, 0},
	} {
		for _, c := range []struct {
			vlan      uint16
			ancillary bool
			want      uint32
		}{{0, true, tc.want0}, {100, true, tc.want100}, {0, false, tc.noAncil0}, {100, false, tc.noAncil100}} {
			spec := serveSpec("", c.ancillary)
			spec.VLANID = c.vlan
			if got := snap(spec, tc.f, tc.m); got != c.want {
				t.Errorf("%s, serving vlan %d (ancillary %v): returns %d, want %d", tc.name, c.vlan, c.ancillary, got, c.want)
			}
		}
	}
	// An expression narrows the datagrams of the engine's VLAN; those of
	// another VLAN pass cut, to be counted, whatever it says.
	spec := serveSpec("src host 198.18.0.3", true)
	spec.VLANID = 100
	if got := snap(spec, udp, tag(100)); got != 0 {
		t.Errorf("the expression does not narrow the served VLAN: %d", got)
	}
	if got := snap(spec, udp, tag(200)); got != short {
		t.Errorf("a datagram of another VLAN with an expression: %d, want %d", got, short)
	}
	if _, err := ServeFilter(&ServeSpec{VLANID: 4095}); err == nil {
		t.Error("VLAN 4095 was accepted")
	}
}

func serveVM(t *testing.T, s *ServeSpec) vm {
	t.Helper()
	raw, err := ServeFilter(s)
	if err != nil {
		t.Fatal(err)
	}
	return newVM(t, raw)
}

func TestServeFilterErrors(t *testing.T) {
	if _, err := ServeFilter(serveSpec("udp port", true)); err == nil {
		t.Error("a bad expression compiled")
	}
	if _, err := ServeFilter(&ServeSpec{Addrs: []ServeAddr{{}}}); err == nil {
		t.Error("an invalid address was accepted")
	}
	if _, err := ServeFilter(&ServeSpec{Broadcasts: []netip.Addr{owned6}}); err == nil {
		t.Error("an IPv6 broadcast address was accepted")
	}
	raw, err := ServeFilter(serveSpec("udp", true))
	if err != nil {
		t.Fatal(err)
	}
	prog, _ := xbpf.Disassemble(raw)
	if ext, ok := prog[0].(xbpf.LoadExtension); !ok || ext.Num != xbpf.ExtType {
		t.Errorf("the filter does not start by rejecting outgoing frames: %v", prog[0])
	}
	// Jumps never overflow, however far; the program's length is the
	// limit: 30 addresses of each family fit, 200 do not.
	// (40 of each family take 3884 instructions.)
	var many []ServeAddr
	for i := range 200 {
		many = append(many,
			ServeAddr{netip.AddrFrom4([4]byte{10, 0, byte(i), 1}), true},
			ServeAddr{netip.AddrFrom16([16]byte{0: 0xfd, 14: byte(i), 15: 1}), true})
	}
	if _, err := ServeFilter(&ServeSpec{Addrs: many[:60], IgnoreOutgoing: true}); err != nil {
		t.Errorf("60 addresses: %v", err)
	}
	if _, err := ServeFilter(&ServeSpec{Addrs: many, IgnoreOutgoing: true}); err == nil || !strings.Contains(err.Error(), "kernel's limit") {
		t.Errorf("400 addresses: %v, want too many instructions", err)
	}
}
