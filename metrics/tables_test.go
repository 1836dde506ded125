package metrics

import (
	"errors"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pktengine/pktengine/engine"
	"github.com/pktengine/pktengine/xdp"
)

func testStatus() *engine.Status {
	return &engine.Status{
		Interface: "veth0",
		MAC:       "02:00:00:00:00:01",
		Addrs: []engine.AddrInfo{
			{Prefix: netip.MustParsePrefix("198.18.0.1/24")},
			{Prefix: netip.MustParsePrefix("fd00::100/64"), Owned: true},
		},
		Workers:   2,
		RXVersion: "TPACKET_V2",
		Started:   time.Date(2026, 11, 23, 6, 0, 0, 0, time.UTC),
		LinkUp:    true,
		Ports:     testPorts,
		Counters:  trafficSnapshot().counters,
		VLAN:      100,
		Groups: []engine.GroupInfo{
			{Group: netip.MustParseAddr("239.1.2.3"), Exclude: true, Ports: 2, Reported: true},
			{Group: netip.MustParseAddr("232.1.1.1"), Sources: []netip.Addr{netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")}, Ports: 1, Reported: true},
			{Group: netip.MustParseAddr("ff02::1"), Exclude: true, Engine: true},
		},
	}
}

func TestWriteStatus(t *testing.T) {
	st := testStatus()
	var b strings.Builder
	if err := WriteStatus(&b, st); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"pktengine on veth0 (02:00:00:00:00:01), 2 worker(s), rx ring TPACKET_V2, up since 2026-11-23 06:00:00\n",
		"addresses: 198.18.0.1/24 (shared with the kernel), fd00::100/64 (owned); link up; VLAN 100\n",
		"239.1.2.3  exclude  -", "232.1.1.1  include  10.0.0.1,10.0.0.2  1", "ff02::1    exclude  -                  0      yes     no",
		"Udp:\n", "    7 packets received\n", "    2 packets to unknown port received\n", "    4 packets sent\n", "IgnoredMulti: 0\n",
		"Frames: 10 in, 1000 bytes\n", "    7 delivered\n", "    2 no-port\n", "    1 other-host\n",
		"Engine:\n", "1 ARP and 0 NDP requests answered", "    link: 2 down, 1 up\n", "    kernel ring: 0 packets",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "queue-full") || strings.Contains(out, "WARNING") {
		t.Errorf("zero outcomes shown, or a warning for a consistent snapshot:\n%s", out)
	}
	lines := strings.Split(out, "\n")
	table := lines[3:7] // after the heading and its blank line
	if !strings.HasPrefix(strings.TrimSpace(table[0]), "Local Address:Port") ||
		!strings.Contains(table[1], "*:7") || !strings.Contains(table[1], "echo") || !strings.Contains(table[1], "inline") ||
		!strings.Contains(table[2], "198.18.0.1:5000") || !strings.Contains(table[2], " - ") || !strings.Contains(table[2], "3/1024") ||
		!strings.Contains(table[3], "[fd00::1]:53") {
		t.Errorf("port table:\n%s", strings.Join(table, "\n"))
	}

	// A snapshot whose outcomes do not add up says so.
	st.Counters.FramesIn++
	st.LinkUp = false
	b.Reset()
	WriteStatus(&b, st)
	if !strings.Contains(b.String(), "WARNING: engine: 11 frames in but outcomes sum to 10") || !strings.Contains(b.String(), "link DOWN") {
		t.Errorf("inconsistent snapshot, link down:\n%s", b.String())
	}
}

// TestWriteStatusShowsEveryCounter: every counter's value is printed
// (the outcomes when nonzero, as they all are here).
func TestWriteStatusShowsEveryCounter(t *testing.T) {
	st := testStatus()
	st.Counters = engine.Counters{}
	paths := distinctCounters(&st.Counters)
	st.Ports = nil
	var b strings.Builder
	WriteStatus(&b, st)
	printed := map[uint64]bool{}
	for _, f := range strings.FieldsFunc(b.String(), func(r rune) bool { return r == ' ' || r == '\n' || r == ',' }) {
		if v, err := strconv.ParseUint(f, 10, 64); err == nil {
			printed[v] = true
		}
	}
	var missing []uint64
	// Every scalar counter, and the two arrays of outcomes.
	for v := uint64(1); v <= uint64(len(paths)+2*int(engine.NumOutcomes)); v++ {
		if !printed[v] {
			missing = append(missing, v)
		}
	}
	if len(missing) > 0 {
		t.Errorf("the values %v (counters in field order) are not shown:\n%s", missing, b.String())
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestWriteStatusError(t *testing.T) {
	if err := WriteStatus(failingWriter{}, testStatus()); err == nil || err.Error() != "disk full" {
		t.Errorf("error %v, want the writer's", err)
	}
}

// TestWriteStatusXDP: an AF_XDP engine's heading says so, and its sockets
// are listed with their frame counts.
func TestWriteStatusXDP(t *testing.T) {
	st := testStatus()
	st.Backend, st.RXVersion = "xdp", ""
	st.XDP = &engine.XDPStatus{Mode: "copy", Sockets: []engine.XDPSocketStatus{{
		Queue: 0, Mode: "copy", FrameSize: 2048, FrameCount: 4096, TXBudget: 256,
		Frames: xdp.FrameCounts{Total: 4096, Free: 2048, Fill: 2048},
	}}}
	st.Counters.XDP.Steered, st.Counters.XDP.Received = 12, 10
	var b strings.Builder
	if err := WriteStatus(&b, st); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"2 worker(s), AF_XDP, copy mode, up since",
		"AF_XDP:\n    program: 12 steered",
		"10 received",
		"queue 0: copy mode, 4096 frames of 2048 bytes, TX budget 256; total 4096: free 2048 + fill 2048",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("status lacks %q:\n%s", want, b.String())
		}
	}
}
