package loadgen_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/pktengine/pktengine/internal/lab"
	"github.com/pktengine/pktengine/internal/labtest"
	"github.com/pktengine/pktengine/loadgen"
	"github.com/pktengine/pktengine/ring"
)

// neighbour makes host h send frames for addr to mac: the generator's
// source addresses are not configured anywhere, so that the generator's
// kernel drops the replies early (see docs/bench/gen.md).
func neighbour(t *testing.T, h *lab.Host, addr netip.Addr, mac net.HardwareAddr) {
	t.Helper()
	labtest.Run(t, h, "ip", "neigh", "replace", addr.String(), "lladdr", mac.String(), "dev", h.Iface, "nud", "permanent")
}

// newGenerator opens a generator on h's lab interface, closed when the
// test ends.
func newGenerator(t testing.TB, h *lab.Host, cfg *loadgen.Config) *loadgen.Generator {
	t.Helper()
	return labtest.Open(t, h, func(ifi *net.Interface) (*loadgen.Generator, error) { return loadgen.New(ifi, cfg) })
}

// echoAddrs returns the generator's source address and the echo's
// address, port 7 on b, in IPv4 or IPv6, and has b send the source's
// frames to a's MAC.
func echoAddrs(t *testing.T, a, b *lab.Host, v6 bool) (src netip.Addr, dst netip.AddrPort) {
	t.Helper()
	src, dst = netip.MustParseAddr("198.18.0.101"), netip.AddrPortFrom(b.IPv4.Addr(), 7)
	if v6 {
		src, dst = netip.MustParseAddr("fd00::101"), netip.AddrPortFrom(b.IPv6.Addr(), 7)
	}
	neighbour(t, b, src, a.MAC)
	return src, dst
}

// checkEchoRun checks the summary of a run of 1001 frames at 5000/s
// against an echo: what arrives adds up, with no duplicates or foreign
// replies, and latencies and the duration are plausible.
func checkEchoRun(t *testing.T, s *loadgen.Summary) {
	t.Helper()
	// A loaded machine may lose a few replies in the kernel echo's
	// socket buffer; what arrives must add up.
	if s.Received+s.Lost != s.Sent || s.Received < s.Sent/2 {
		t.Fatalf("received %d lost %d of %d", s.Received, s.Lost, s.Sent)
	}
	if s.Seq.Duplicates != 0 || s.Foreign != 0 {
		t.Fatalf("duplicates %d foreign %d", s.Seq.Duplicates, s.Foreign)
	}
	if s.Latency.Count != s.Received || s.Latency.Min <= 0 || s.Latency.Max > 5*time.Second {
		t.Fatalf("latency %+v", s.Latency)
	}
	// 1001 frames at 5000/s take 200 ms at least: the pacer never runs
	// ahead of the rate (by more than its bucket).
	if s.Duration < 150*time.Millisecond {
		t.Fatalf("1001 frames at 5000/s sent in %v", s.Duration)
	}
}

// TestLabEcho: generator on A, kernel echo on B, both address families,
// two workers; every frame is accounted for, latencies are plausible, and
// a second run on the same generator keeps its counts apart.
func TestLabEcho(t *testing.T) {
	l := labtest.New(t, nil)
	a, b := l.A(), l.B()
	for _, v6 := range []bool{false, true} {
		src, dst := echoAddrs(t, a, b, v6)
		served := labtest.EchoUDP(t, b, dst)
		g := newGenerator(t, a, &loadgen.Config{
			Spec:    loadgen.Spec{Src: netip.AddrPortFrom(src, 0), Dst: dst, Flows: 16, Size: 128},
			Workers: 2,
		})
		if lo, hi := g.Template().SourcePorts(); lo != loadgen.DefaultSrcPort || hi != loadgen.DefaultSrcPort+15 {
			t.Fatalf("source ports %d-%d", lo, hi)
		}
		var reports int
		for run := range 2 {
			s, err := g.Run(context.Background(), loadgen.Load{Rate: 5000, Count: 1001}, func(loadgen.Progress) { reports++ })
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("v6=%v run %d:\n%s", v6, run, s)
			if s.Sent != 1001 || s.TX.Committed != 1001 || s.TX.WrongFormat != 0 {
				t.Fatalf("sent %d, tx %+v", s.Sent, s.TX)
			}
			if s.RingDrops != 0 {
				t.Fatalf("ring drops %d", s.RingDrops)
			}
			checkEchoRun(t, s)
		}
		if served.Load() < 1001 {
			t.Fatalf("echo served %d", served.Load())
		}
		if reports != 0 {
			t.Fatalf("%d progress reports in runs shorter than the interval", reports)
		}
	}
}

// TestLabDuration runs by time with progress reports, V2 receive ring,
// sendmmsg transmitter and the interface's own source address.
func TestLabDuration(t *testing.T) {
	l := labtest.New(t, nil)
	a, b := l.A(), l.B()
	dst := netip.AddrPortFrom(b.IPv4.Addr(), 7)
	labtest.EchoUDP(t, b, dst)
	g := newGenerator(t, a, &loadgen.Config{
		Spec:     loadgen.Spec{Dst: dst},
		Interval: 100 * time.Millisecond,
		RX:       &ring.RXConfig{Version: ring.V2},
		TX:       &ring.TXConfig{Method: ring.TXSendmmsg},
	})
	if c := g.Config(); c.Src.Addr() != a.IPv4.Addr() || c.DstMAC.String() != b.MAC.String() {
		t.Fatalf("defaults: src %v dst MAC %v", c.Src, c.DstMAC)
	}
	var lines []string
	s, err := g.Run(context.Background(), loadgen.Load{Rate: 2000, Duration: 350 * time.Millisecond}, func(p loadgen.Progress) {
		lines = append(lines, p.String())
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s\n%s", strings.Join(lines, "\n"), s)
	if s.Sent == 0 || s.Sent > 700+1 || s.Received == 0 {
		t.Fatalf("sent %d received %d at 2000/s for 350 ms", s.Sent, s.Received)
	}
	if len(lines) < 2 || !strings.Contains(lines[0], "p99") {
		t.Fatalf("progress %q", lines)
	}

	// A cancelled context stops an endless run without an error.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	s, err = g.Run(ctx, loadgen.Load{Rate: 1000}, nil)
	if err != nil || s.Sent == 0 {
		t.Fatalf("cancelled run: %v, sent %d", err, s.Sent)
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := g.Run(context.Background(), loadgen.Load{Count: 1}, nil); !errors.Is(err, ring.ErrClosed) {
		t.Fatalf("run after close: %v", err)
	}
}

// BenchmarkLabSend measures the generator unpaced into a veth, one worker,
// 64-byte frames, to a MAC nobody has so the peer drops them on arrival.
func BenchmarkLabSend(b *testing.B) {
	l := labtest.New(b, nil)
	a := l.A()
	g := newGenerator(b, a, &loadgen.Config{
		Spec:     loadgen.Spec{Dst: netip.AddrPortFrom(l.B().IPv4.Addr(), 9), DstMAC: [6]byte{2, 0, 0, 0, 0, 0xfe}},
		SendOnly: true,
	})
	b.SetBytes(int64(g.Template().Len()))
	b.ReportAllocs()
	b.ResetTimer()
	s, err := g.Run(context.Background(), loadgen.Load{Count: uint64(b.N)}, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(s.SentRate, "frames/s")
}

// TestLabReceiveTimestamps: latency comes from the kernel's per-frame
// receive timestamps, so a V3 receive ring whose blocks wait 50 ms to
// retire at this rate does not add those 50 ms (a block fills with 100
// frames in that time, so without per-frame stamps the median would be
// about 25 ms).
func TestLabReceiveTimestamps(t *testing.T) {
	l := labtest.New(t, nil)
	a, b := l.A(), l.B()
	dst := netip.AddrPortFrom(b.IPv4.Addr(), 7)
	labtest.EchoUDP(t, b, dst)
	g := newGenerator(t, a, &loadgen.Config{Spec: loadgen.Spec{Dst: dst}, RX: &ring.RXConfig{Version: ring.V3, RetireTimeout: 50 * time.Millisecond}})
	s, err := g.Run(context.Background(), loadgen.Load{Rate: 2000, Duration: 300 * time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s", s)
	if s.Received < s.Sent/2 || s.Latency.P50 > 5*time.Millisecond {
		t.Fatalf("%d of %d replies, median latency %v", s.Received, s.Sent, s.Latency.P50)
	}
}
