package bpf

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	xbpf "golang.org/x/net/bpf"

	"github.com/pktengine/pktengine/frame"
	"github.com/pktengine/pktengine/proto"
)

// compileRaw is CompileRaw for an expression the test expects to compile.
func compileRaw(t testing.TB, expr string, o *Options) []xbpf.RawInstruction {
	t.Helper()
	raw, err := CompileRaw(expr, o)
	if err != nil {
		t.Fatalf("%q: %v", expr, err)
	}
	return raw
}

func TestSyntaxErrors(t *testing.T) {
	checkSyntaxErrors(t, []syntaxCase{
		{"udp and", 8, "expected a primitive"},
		{"udp port", 9, "expected a port number or service name"},
		{"udp port nosuchservice", 10, "unknown port name \"nosuchservice\""},
		{"udp port 65536", 10, "out of range (at most 65535)"},
		{"udp port http", 10, "port \"http\" is tcp"},
		{"(udp", 5, "expected \")\" to close the \"(\" at column 1"},
		{"udp)", 4, "expected \"and\", \"or\" or the end"},
		{"host example.com", 6, "host names are not resolved"},
		{"host 300.1.1.1", 6, "not an IPv4 address"},
		{"net 10.1.2.3/8", 5, "non-network bits set"},
		{"net fd00::1/8", 5, "non-network bits set"},
		{"vlan 4096", 6, "vlan 4096 out of range (at most 4095)"},
		{"ip proto 256", 10, "proto 256 out of range (at most 255)"},
		{"ip proto udp", 10, "expected a protocol number or \\name"},
		{"tcp[13] & 2 != 0 and", 21, "expected a primitive"},
		{"udp & tcp", 5, "expected \"and\", \"or\" or the end"},
		{"udp and 53", 9, "has no qualifier to inherit"},
		{"ether", 6, "after \"ether\""},
		{"ether host 1.2.3.4", 12, "expected a MAC address"},
		{"ip port 53", 9, "\"ip\" cannot qualify a port"},
		{"tcp host 1.2.3.4", 10, "\"tcp\" cannot qualify an IPv4 host"},
		{"ip host fd00::1", 9, "\"ip\" cannot qualify an IPv6 host"},
		{"portrange 20", 11, "expected a port range low-high"},
		{"gateway 1.2.3.4", 1, "\"gateway\" is not supported"},
		{"udp $", 5, "unexpected character \"$\""},
		{"less", 5, "expected a number after \"less\""},
		{"ether proto 0x10000", 13, "out of range (at most 65535)"},
		{"not", 4, "expected a primitive"},
	})
}

// syntaxCase is an expression that Compile must refuse with a
// *SyntaxError at column col whose message contains want; an empty want
// means the expression must compile.
type syntaxCase struct {
	expr string
	col  int
	want string
}

func checkSyntaxErrors(t *testing.T, cases []syntaxCase) {
	t.Helper()
	for _, tt := range cases {
		_, err := Compile(tt.expr, nil)
		if tt.want == "" {
			if err != nil {
				t.Errorf("%q: %v", tt.expr, err)
			}
			continue
		}
		var se *SyntaxError
		if !errors.As(err, &se) {
			t.Errorf("%q: error %v, want a *SyntaxError", tt.expr, err)
			continue
		}
		if se.Column != tt.col || !strings.Contains(se.Msg, tt.want) {
			t.Errorf("%q: column %d %q, want column %d containing %q", tt.expr, se.Column, se.Msg, tt.col, tt.want)
		}
		if !strings.HasPrefix(err.Error(), fmt.Sprintf("bpf: column %d: ", tt.col)) {
			t.Errorf("%q: message %q does not lead with the column", tt.expr, err)
		}
	}
}

func TestRejectsAll(t *testing.T) {
	for _, expr := range []string{"ip and arp", "udp and not udp", "vlan 10 and not vlan 20 and vlan"} {
		_, err := Compile(expr, nil)
		if expr == "vlan 10 and not vlan 20 and vlan" {
			continue // satisfiable with nested tags; only checks it compiles
		}
		if !errors.Is(err, ErrRejectsAll) {
			t.Errorf("%q: %v, want ErrRejectsAll", expr, err)
		}
	}
	prog, err := Compile("", nil)
	if err != nil || len(prog) != 1 || prog[0] != (xbpf.RetConstant{Val: DefaultSnapLen}) {
		t.Errorf("empty expression: %v %v, want a single accept", prog, err)
	}
}

// TestTooLong: more than BPF_MAXINSNS instructions is an error, never a
// truncated program; just below it the program is valid and reaches
// every port through widened jumps.
func TestTooLong(t *testing.T) {
	ports := func(n int) string {
		var b strings.Builder
		b.WriteString("udp dst port 1")
		for i := 2; i <= n; i++ {
			fmt.Fprintf(&b, " or %d", i)
		}
		return b.String()
	}
	_, err := Compile(ports(2100), nil)
	if err == nil || !strings.Contains(err.Error(), "limit of 4096") {
		t.Fatalf("2100 ports: %v, want the instruction limit error", err)
	}
	raw, err := CompileRaw(ports(1000), &Options{VLAN: VLANInPacket})
	if err != nil {
		t.Fatalf("1000 ports: %v", err)
	}
	far := 0
	for _, ins := range raw {
		if ins.Op == bpfJMP|bpfJA {
			far++
		}
	}
	if len(raw) <= 256 || far == 0 {
		t.Fatalf("1000 ports: %d instructions, %d ja: want a long program with widened jumps", len(raw), far)
	}
	m := newVM(t, raw)
	buf := make([]byte, 256)
	for _, port := range []uint16{1, 500, 999, 1000, 1001, 2000} {
		for _, dst := range []string{"198.18.0.1", "fd00::1"} {
			src := "198.18.0.2"
			if strings.Contains(dst, ":") {
				src = "fd00::2"
			}
			n, err := frame.BuildUDP(buf, &frame.UDPSpec{
				Src: netip.AddrPortFrom(netip.MustParseAddr(src), 9), Dst: netip.AddrPortFrom(netip.MustParseAddr(dst), port),
			})
			if err != nil {
				t.Fatal(err)
			}
			if got, want := m.run(t, buf[:n], meta{}), port <= 1000; got != want {
				t.Errorf("port %d to %s: accepted %v, want %v", port, dst, got, want)
			}
		}
	}
}

func TestNestingAndSizeLimits(t *testing.T) {
	deep := strings.Repeat("(", 10000) + "udp" + strings.Repeat(")", 10000)
	if _, err := Compile(deep, nil); err == nil || !strings.Contains(err.Error(), "nested more than") {
		t.Errorf("deep nesting: %v", err)
	}
	huge := strings.Repeat("udp or ", maxExprLen/7+1) + "udp"
	if _, err := Compile(huge, nil); err == nil {
		t.Errorf("huge expression accepted")
	}
}

// TestPrecedence: "and" and "or" are equal and left-associative.
func TestPrecedence(t *testing.T) {
	a := compileRaw(t, "tcp or udp and port 53", nil)
	b := compileRaw(t, "(tcp or udp) and port 53", nil)
	if formatD(a) != formatD(b) {
		t.Errorf("tcp or udp and port 53 differs from (tcp or udp) and port 53")
	}
	c, _ := CompileRaw("tcp or (udp and port 53)", nil)
	if formatD(a) == formatD(c) {
		t.Errorf("precedence ignored: same as tcp or (udp and port 53)")
	}
}

// udpFrame builds a test frame.
func udpFrame(t testing.TB, s frame.UDPSpec) []byte {
	t.Helper()
	buf := make([]byte, 512)
	n, err := frame.BuildUDP(buf, &s)
	if err != nil {
		t.Fatal(err)
	}
	return buf[:n]
}

// TestHandMadeFrames runs expressions over hand-made frames: options,
// fragments, tags, and frames cut short where a program loads.
func TestHandMadeFrames(t *testing.T) {
	v4 := func(dst string, port uint16) frame.UDPSpec {
		return frame.UDPSpec{Src: netip.MustParseAddrPort("198.18.0.2:4000"), Dst: netip.AddrPortFrom(netip.MustParseAddr(dst), port)}
	}
	v6 := func(dst string, port uint16) frame.UDPSpec {
		return frame.UDPSpec{Src: netip.MustParseAddrPort("[fd00::2]:4000"), Dst: netip.AddrPortFrom(netip.MustParseAddr(dst), port)}
	}
	withOpts := v4("198.18.0.1", 7)
	withOpts.Options = []byte{0x94, 4, 0, 0, 1, 1, 1, 0} // router alert + NOPs: IHL 7
	tagged := v4("198.18.0.1", 7)
	tagged.VLANs = []frame.VLANTag{{TPID: proto.EtherTypeVLAN, TCI: 42}}
	frag := v4("198.18.0.1", 7)
	frag.Payload = make([]byte, 32)
	buf := make([]byte, 512)
	n, _ := frame.BuildUDPFragment(buf, &frag, frame.Fragment{Offset: 16, Length: 24})
	laterFragment := append([]byte(nil), buf[:n]...)
	n, _ = frame.BuildUDPFragment(buf, &frag, frame.Fragment{Offset: 0, Length: 16})
	firstFragment := append([]byte(nil), buf[:n]...)
	arp := make([]byte, 60)
	n, _ = frame.BuildARP(arp, &frame.ARPSpec{Op: frame.ARPRequest, SenderIP: netip.MustParseAddr("198.18.0.2"), TargetIP: netip.MustParseAddr("198.18.0.1")})
	arp = arp[:n]

	frames := map[string][]byte{
		"v4:7":          udpFrame(t, v4("198.18.0.1", 7)),
		"v4:8":          udpFrame(t, v4("198.18.0.1", 8)),
		"v4other:7":     udpFrame(t, v4("198.18.0.9", 7)),
		"v4opts:7":      udpFrame(t, withOpts),
		"v6:7":          udpFrame(t, v6("fd00::1", 7)),
		"v6:2000":       udpFrame(t, v6("fd00::1", 2000)),
		"v6other:7":     udpFrame(t, v6("fd00:1::1", 7)),
		"tagged42:7":    udpFrame(t, tagged),
		"frag-first:7":  firstFragment,
		"frag-later:7":  laterFragment,
		"arp":           arp,
		"v4:7-trunc":    udpFrame(t, v4("198.18.0.1", 7))[:36],
		"v4opts:7-cut":  udpFrame(t, withOpts)[:44],
		"v6:7-trunc":    udpFrame(t, v6("fd00::1", 7))[:56],
		"tagged42:7-16": udpFrame(t, tagged)[:16],
	}
	tests := []struct {
		expr   string
		opt    *Options
		accept []string
	}{
		{"ip", nil, []string{"v4:7", "v4:8", "v4other:7", "v4opts:7", "frag-first:7", "frag-later:7", "v4:7-trunc", "v4opts:7-cut"}},
		{"arp", nil, []string{"arp"}},
		{"ip proto 17", nil, []string{"v4:7", "v4:8", "v4other:7", "v4opts:7", "frag-first:7", "frag-later:7", "v4:7-trunc", "v4opts:7-cut"}},
		{"ip6 proto 17", nil, []string{"v6:7", "v6:2000", "v6other:7", "v6:7-trunc"}},
		{"udp dst port 7", nil, []string{"v4:7", "v4other:7", "v4opts:7", "v6:7", "v6other:7", "frag-first:7"}},
		{"udp dst port 8 or udp dst port 2000", nil, []string{"v4:8", "v6:2000"}},
		{"udp dst portrange 7-8", nil, []string{"v4:7", "v4:8", "v4other:7", "v4opts:7", "v6:7", "v6other:7", "frag-first:7"}},
		{"udp dst port 7 and dst host 198.18.0.1", nil, []string{"v4:7", "v4opts:7", "frag-first:7"}},
		{"dst net fd00::/64", nil, []string{"v6:7", "v6:2000", "v6:7-trunc"}},
		// Tagged frames are "not UDP" when the tag is still in the frame.
		{"arp or not udp", &Options{VLAN: VLANInPacket}, []string{"arp", "tagged42:7", "tagged42:7-16"}},
		{"vlan 42 and udp dst port 7", &Options{VLAN: VLANInPacket}, []string{"tagged42:7"}},
		{"vlan 43 and udp dst port 7", &Options{VLAN: VLANInPacket}, nil},
		{"vlan", &Options{VLAN: VLANInPacket}, []string{"tagged42:7", "tagged42:7-16"}},
		// With the tag in ancillary data, a tag left in the frame is
		// not one.
		{"not vlan and udp dst port 7", nil, []string{"v4:7", "v4other:7", "v4opts:7", "v6:7", "v6other:7", "frag-first:7"}},
	}
	for _, tt := range tests {
		raw, err := CompileRaw(tt.expr, tt.opt)
		if err != nil {
			t.Errorf("%s: %v", tt.expr, err)
			continue
		}
		m := newVM(t, raw)
		want := make(map[string]bool)
		for _, a := range tt.accept {
			if frames[a] == nil {
				t.Fatalf("%s: no frame %q", tt.expr, a)
			}
			want[a] = true
		}
		for name, b := range frames {
			if got := m.run(t, b, meta{}); got != want[name] {
				t.Errorf("%s on %s: accepted %v, want %v\n%s", tt.expr, name, got, want[name], formatD(raw))
			}
		}
	}
}

// TestAncillary checks the metadata forms in the evaluator: the default
// VLAN mode on a frame whose tag the kernel removed, and "inbound".
func TestAncillary(t *testing.T) {
	raw := compileRaw(t, "inbound and vlan 42 and udp dst port 7 and dst host 198.18.0.1", &Options{SnapLen: 128})
	untagged := udpFrame(t, frame.UDPSpec{Src: netip.MustParseAddrPort("198.18.0.2:9"), Dst: netip.MustParseAddrPort("198.18.0.1:7")})
	tests := []struct {
		md   meta
		want uint32
	}{
		{meta{vlanPresent: true, vlanTCI: 42}, 128},
		{meta{vlanPresent: true, vlanTCI: 0xa000 | 42}, 128}, // priority bits ignored
		{meta{vlanPresent: true, vlanTCI: 43}, 0},
		{meta{}, 0},
		{meta{vlanPresent: true, vlanTCI: 42, pktType: packetOutgoing}, 0},
		{meta{vlanPresent: true, vlanTCI: 42, pktType: 1}, 128},
	}
	for _, tt := range tests {
		got, err := evalRaw(raw, untagged, tt.md)
		if err != nil {
			t.Fatal(err)
		}
		if got != tt.want {
			t.Errorf("%+v: returned %d, want %d\n%s", tt.md, got, tt.want, formatD(raw))
		}
	}
}

// TestIPv4HeaderLength: the transport header is found through the IHL,
// for every legal header length.
func TestIPv4HeaderLength(t *testing.T) {
	raw := compileRaw(t, "udp dst port 7", nil)
	m := newVM(t, raw)
	for opts := 0; opts <= 40; opts += 4 {
		o := make([]byte, opts)
		for i := range o {
			o[i] = 1
		}
		for _, port := range []uint16{7, 8} {
			b := udpFrame(t, frame.UDPSpec{Src: netip.MustParseAddrPort("198.18.0.2:7"), Dst: netip.AddrPortFrom(netip.MustParseAddr("198.18.0.1"), port), Options: o})
			if got := m.run(t, b, meta{}); got != (port == 7) {
				t.Errorf("IHL %d, dst port %d: accepted %v", 5+opts/4, port, got)
			}
		}
	}
}

func TestSnapLen(t *testing.T) {
	prog, err := Compile("udp", &Options{SnapLen: 96})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, ins := range prog {
		if r, ok := ins.(xbpf.RetConstant); ok && r.Val == 96 {
			found = true
		}
	}
	if !found {
		t.Errorf("no ret #96 in\n%v", prog)
	}
}

// TestOptimizerPreservesMeaning compares optimised and plain programs on
// frames padded far beyond every offset a program reads, where no load
// can fail and the two must agree exactly.
func TestOptimizerPreservesMeaning(t *testing.T) {
	frames := corpus(t)
	for _, expr := range append(append([]string(nil), diffExprs...), ancillaryExprs...) {
		checkOptimizer(t, expr, frames[:400])
	}
}

func checkOptimizer(t testing.TB, expr string, frames []testFrame) {
	t.Helper()
	for _, mode := range []VLANMode{VLANAncillary, VLANInPacket} {
		o := &Options{VLAN: mode}
		e, err := parseLower(expr, o, newLowerer(o))
		if err != nil {
			return
		}
		opt, err := generateWith(e, 1, true)
		if err != nil {
			continue
		}
		plain, err := generateWith(e, 1, false)
		if err != nil {
			t.Fatalf("%q: optimised program compiles but the plain one does not: %v", expr, err)
		}
		ro, err := assemble(opt)
		if err != nil {
			t.Fatalf("%q: %v", expr, err)
		}
		rp, err := assemble(plain)
		if err != nil {
			t.Fatalf("%q: %v", expr, err)
		}
		padded := make([]byte, 1024)
		for _, f := range frames {
			clear(padded)
			copy(padded, f.b)
			for _, md := range []meta{{}, {pktType: packetOutgoing, vlanPresent: true, vlanTCI: 10}} {
				a, _ := evalRaw(ro, padded, md)
				b, _ := evalRaw(rp, padded, md)
				if a != b {
					t.Fatalf("%q (mode %d) on %s: optimised %d, plain %d\noptimised:\n%splain:\n%s", expr, mode, f.name, a, b, formatD(ro), formatD(rp))
				}
			}
		}
	}
}

// TestServiceNames: a name with different TCP and UDP ports narrows an
// unqualified "port" to TCP, one known for UDP alone narrows it to UDP,
// as libpcap's pcap_nametoport does.
func TestServiceNames(t *testing.T) {
	db := map[string]uint16{"split/tcp": 1000, "split/udp": 2000, "udponly/udp": 3000, "both/tcp": 4000, "both/udp": 4000}
	o := &Options{VLAN: VLANInPacket, LookupPort: func(name, transport string) (uint16, bool) {
		p, ok := db[name+"/"+transport]
		return p, ok
	}}
	same := func(a, b string) {
		t.Helper()
		if formatD(compileRaw(t, a, o)) != formatD(compileRaw(t, b, o)) {
			t.Errorf("%q compiles differently from %q", a, b)
		}
	}
	same("port split", "tcp port 1000")
	same("udp port split", "udp port 2000")
	same("port udponly", "udp port 3000")
	same("port both", "port 4000")
	same("portrange both-udponly", "portrange 4000-3000")
	same("udp portrange both-udponly", "udp portrange 3000-4000")
	same("portrange split-udponly", "portrange 1000-3000")
	if _, err := Compile("tcp port udponly", o); err == nil || !strings.Contains(err.Error(), "is udp") {
		t.Errorf("tcp port udponly: %v", err)
	}
}
