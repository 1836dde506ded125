package bpf

import (
	"bytes"
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
// family, both IPv4 addresses in one /24.
func serveSpec(expr string, ignoreOutgoing bool) *ServeSpec {
	return &ServeSpec{
		Addrs:          []ServeAddr{{owned4, true}, {shared4, false}, {owned6, true}, {shared6, false}},
		Broadcasts:     []netip.Addr{bcast4, bcast4},
		Expr:           expr,
		IgnoreOutgoing: ignoreOutgoing,
	}
}

// TestServeFilterGolden: the program is instruction for instruction the
// one the engine attached when it wrote it by hand (testdata/serve, made
// from engine/filter.go before the program moved here).
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
		},
		"v6only": {Addrs: []ServeAddr{{mustAddr("fd00::1"), false}}, IgnoreOutgoing: true},
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
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	if err := FormatDDD(&got, prog); err != nil {
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

// tagged inserts an 802.1Q tag into f, as a second (inner) tag is left in
// the frame when the kernel strips the outer one.
func (b serveFrames) tagged(f []byte) []byte {
	buf := append(f[:len(f):len(f)], make([]byte, frame.VLANTagLen)...)
	n, err := frame.InsertVLANTag(buf, len(f), frame.VLANTag{TCI: 100})
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
