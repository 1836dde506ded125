package bpf

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/pktengine/pktengine/frame"
	"github.com/pktengine/pktengine/proto"
)

// TestReplyFilterGolden: the program is the one the load generator wrote
// by hand before it moved here.
func TestReplyFilterGolden(t *testing.T) {
	raw, err := ReplyFilter(61000, 61009, 128)
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "testdata/reply/61000-61009.ddd", raw)
}

func TestReplyFilter(t *testing.T) {
	const snap = 128
	raw, err := ReplyFilter(61000, 61009, snap)
	if err != nil {
		t.Fatal(err)
	}
	m := newVM(t, raw)
	build := func(src, dst string, mod func(b []byte, p *frame.Packet)) []byte {
		b := udpFrame(t, frame.UDPSpec{Src: netip.MustParseAddrPort(src), Dst: netip.MustParseAddrPort(dst), Payload: make([]byte, 30)})
		if mod != nil {
			var p frame.Packet
			p.Decode(b)
			mod(b, &p)
		}
		return b
	}
	withOptions := udpFrame(t, frame.UDPSpec{Src: netip.MustParseAddrPort("198.18.0.2:7"), Dst: netip.MustParseAddrPort("198.18.0.101:61005"),
		Options: []byte{1, 1, 1, 0}, Payload: make([]byte, 30)})
	for _, tc := range []struct {
		name  string
		frame []byte
		want  bool
	}{
		{"v4 first port", build("198.18.0.2:7", "198.18.0.101:61000", nil), true},
		{"v4 last port", build("198.18.0.2:7", "198.18.0.101:61009", nil), true},
		{"v4 below", build("198.18.0.2:7", "198.18.0.101:60999", nil), false},
		{"v4 above", build("198.18.0.2:7", "198.18.0.101:61010", nil), false},
		{"v4 source port in range", build("198.18.0.2:61000", "198.18.0.101:7", nil), false},
		{"v4 options", withOptions, true},
		{"v4 fragment", build("198.18.0.2:7", "198.18.0.101:61000", func(b []byte, p *frame.Packet) {
			p.IPv4(b).SetFlagsFragmentOffset(0, 64)
		}), false},
		{"v4 tcp", build("198.18.0.2:7", "198.18.0.101:61000", func(b []byte, p *frame.Packet) {
			p.IPv4(b).SetProtocol(proto.IPProtoTCP)
		}), false},
		{"v6", build("[fd00::2]:7", "[fd00::101]:61003", nil), true},
		{"v6 other port", build("[fd00::2]:7", "[fd00::101]:1", nil), false},
		{"v6 ext header", build("[fd00::2]:7", "[fd00::101]:61003", func(b []byte, p *frame.Packet) {
			p.IPv6(b).SetNextHeader(proto.IPProtoDstOpts)
		}), false},
		{"arp", make([]byte, 60), false},
	} {
		if got := m.run(t, tc.frame, meta{}); got != tc.want {
			t.Errorf("%s: accepted %v, want %v", tc.name, got, tc.want)
		}
		if n, _ := evalRaw(raw, tc.frame, meta{}); tc.want && n != snap {
			t.Errorf("%s: keeps %d bytes, want %d", tc.name, n, snap)
		}
	}
}

// TestReplyFilterIsPortrange: on every corpus frame the reply filter and
// the compiled "udp dst portrange lo-hi" agree.
func TestReplyFilterIsPortrange(t *testing.T) {
	frames := corpus(t)
	for _, r := range [][2]uint16{{7, 7}, {9, 21}, {0, 65535}, {1024, 65535}} {
		raw, err := ReplyFilter(r[0], r[1], 0)
		if err != nil {
			t.Fatal(err)
		}
		expr := fmt.Sprintf("udp dst portrange %d-%d", r[0], r[1])
		got, ref := newVM(t, raw), newVM(t, compileRaw(t, expr, nil))
		matched := 0
		for _, f := range frames {
			g := got.run(t, f.b, meta{})
			if g != ref.run(t, f.b, meta{}) {
				t.Fatalf("%q: %s: reply filter %v, compiler %v", expr, f.name, g, !g)
			}
			if g {
				matched++
			}
		}
		if matched == 0 {
			t.Errorf("%q matched no corpus frame", expr)
		}
	}
}
