//go:build linux

package robust_test

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pktengine/pktengine/engine"
	"github.com/pktengine/pktengine/internal/lab"
	"github.com/pktengine/pktengine/loadgen"
)

// overloadEnv sets the default of -robust.overload, for runs that cannot
// pass a flag to this package alone (`go test ./...`).
const overloadEnv = "PKTENGINE_ROBUST_OVERLOAD"

var overloadFor = flag.Duration("robust.overload", envDuration(overloadEnv, 15*time.Second),
	"how long TestOverload offers ten times the zero-loss rate (default from $"+overloadEnv+", else 15s)")

const (
	echoPort = 7
	slowPort = 8 // next to echo: one generator template covers both
)

// TestOverload floods the engine for -robust.overload (15 s by default,
// 60 s in `make robust`): the generator sends as fast as it can, half to
// the inline echo service and half to a port whose consumer takes 4
// datagrams every 4 ms (at most 1000 a second, queue depth 256), after a
// short search for the engine's zero-loss echo rate to compare with.
// Then:
//
//   - every frame the generator's kernel accepted is accounted for,
//     exactly: the ring received what was sent, and that is the sum of
//     what echo answered, what the slow port took, the slow port's
//     queue overflows and the ring's own drops;
//   - the engine allocated nothing per frame and its resident memory did
//     not grow with the traffic (figures logged for docs/bench/robust.md);
//   - one second after the load stopped, a probe burst is answered in
//     full with no ring drop, and datagrams to the slow port are all
//     delivered again.
//
// The issue asks for ten times the zero-loss rate. Flat out is the most a
// generator on the same two cores can offer: on veth the sender's CPU
// also runs the receiving side's kernel path, so the achieved multiple
// (logged) is what the machine allows, typically two to six. The slow
// port overflows whatever the multiple: its consumer's 1000 a second is
// far below any flood. The assertions are equalities of counters, never
// rates: how much gets dropped depends on the machine, that every drop is
// counted does not.
func TestOverload(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the overload run takes a while")
	}
	a, b, e := echoLab(t, &engine.Config{QueueDepth: 256}, echoPort)
	slow := bind(t, e, slowPort)
	ctx, cancel := context.WithCancel(context.Background())
	consumerDone := slowConsumer(ctx, slow, 4, 4*time.Millisecond)
	defer func() { cancel(); <-consumerDone }()

	// The generator sends from an address B does not have, so that B's
	// kernel drops the echo replies on arrival instead of answering each
	// with an ICMP error (its RX ring still sees them, for the probes).
	src := netip.AddrPortFrom(netip.MustParseAddr("198.18.0.50"), loadgen.DefaultSrcPort)
	echoSpec := loadgen.Spec{Src: src, Dst: netip.AddrPortFrom(a.IPv4.Addr(), echoPort), SrcPorts: 64}
	loadSpec := echoSpec
	loadSpec.DstPorts = 2 // echo and the slow port, alternately

	zl := zeroLossRate(t, func(rate float64) (float64, bool) {
		s := runGen(t, b, &loadgen.Config{Spec: echoSpec, Drain: 100 * time.Millisecond},
			loadgen.Load{Rate: rate, Duration: 250 * time.Millisecond})
		return s.SentRate, s.Lost == 0
	})
	t.Logf("zero-loss echo rate %s (RFC 2544 search, 250 ms trials); flooding for %v", loadgen.FormatRate(zl), *overloadFor)

	// A short flood first, so that every page of the rings and queues
	// has been touched before memory is measured.
	flood := &loadgen.Config{Spec: loadSpec, SendOnly: true}
	runGen(t, b, flood, loadgen.Load{Duration: time.Second})
	waitSettled(t, e, slow, 5*time.Second)

	before := takeSample(t, e, b)
	sum := runGen(t, b, flood, loadgen.Load{Duration: *overloadFor})
	stopped := time.Now()
	settled(t, e)
	after := takeSample(t, e, b)

	d := after.c.sub(before.c)
	ringIn := d["RingPackets"]
	echoIn := after.echo.InDatagrams - before.echo.InDatagrams
	slowIn := after.slow.InDatagrams - before.slow.InDatagrams
	overflows := after.slow.Drops - before.slow.Drops
	ringDrops := d["RingDrops"]
	other := d["FramesIn"] - echoIn - slowIn - overflows
	t.Logf("sent %d frames in %v (%s, %.1fx the zero-loss rate); veth refused %d (the sender was told: ENOBUFS)",
		sum.TX.Sent, sum.Duration.Round(time.Millisecond), loadgen.FormatRate(sum.SentRate), sum.SentRate/zl,
		after.link.TxDropped-before.link.TxDropped)
	t.Logf("ring took %d: echoed %d, slow port got %d, its queue overflowed %d, ring dropped %d, other %d",
		ringIn, echoIn, slowIn, overflows, ringDrops, other)

	// Every frame the sending kernel accepted reached the engine's ring:
	// on veth, a frame either enters the peer's receive path or the
	// sender's sendmmsg fails with ENOBUFS and it is not counted as sent.
	if sum.TX.Sent != ringIn {
		t.Errorf("sent %d, but the ring saw %d", sum.TX.Sent, ringIn)
	}
	// And the ring's frames end in the engine's counters, exactly.
	if ringIn != d["FramesIn"]+ringDrops {
		t.Errorf("ring %d != handled %d + ring drops %d", ringIn, d["FramesIn"], ringDrops)
	}
	if got := echoIn + slowIn + overflows + ringDrops; got != sum.TX.Sent {
		t.Errorf("sent %d != echoed %d + slow port %d + overflows %d + ring drops %d = %d (other outcomes: %s)",
			sum.TX.Sent, echoIn, slowIn, overflows, ringDrops, got, d.outcomes())
	}
	if d["outcome:queue-full"] != overflows || d["UDP.RcvbufErrors"] != overflows {
		t.Errorf("the slow port's %d overflows are not the engine's queue-full %d and RcvbufErrors %d",
			overflows, d["outcome:queue-full"], d["UDP.RcvbufErrors"])
	}
	if d["outcome:delivered"] != echoIn+slowIn {
		t.Errorf("delivered %d, want %d echoed + %d to the slow port", d["outcome:delivered"], echoIn, slowIn)
	}
	if sum.TX.Sent == 0 || overflows == 0 {
		t.Errorf("no overload: sent %d, slow port overflows %d", sum.TX.Sent, overflows)
	}

	// Memory. The receive path allocates nothing per frame; what the
	// test itself allocates meanwhile (timers, logs) is a few hundred
	// objects a second.
	mallocs := after.mem.Mallocs - before.mem.Mallocs
	t.Logf("memory: VmRSS %d -> %d KiB (peak %d KiB), Go heap in use %d -> %d KiB, %d allocations for %d frames",
		before.rssKiB, after.rssKiB, after.hwmKiB, before.mem.HeapInuse>>10, after.mem.HeapInuse>>10, mallocs, ringIn)
	if perSec := float64(mallocs) / sum.Duration.Seconds(); perSec > 5000 {
		t.Errorf("%d allocations in %v (%.0f a second, %.4f per frame): the engine allocates under load",
			mallocs, sum.Duration, perSec, float64(mallocs)/float64(ringIn))
	}
	// A leak of even one byte per frame would show as megabytes here;
	// the bound leaves room for the Go heap's own growth and the race
	// detector's shadow memory.
	if growth := int64(after.rssKiB) - int64(before.rssKiB); growth > 32<<10 {
		t.Errorf("resident memory grew by %d KiB over %d frames", growth, ringIn)
	}

	// Recovery: one second after the load stopped, the engine answers a
	// probe burst in full and the slow port takes datagrams again.
	waitSettled(t, e, slow, time.Until(stopped.Add(time.Second)))
	time.Sleep(time.Until(stopped.Add(time.Second)))
	c0 := e.Counters()
	slow0 := slow.Info()
	// 2000 probes fit in the receive ring (4096 slots) whatever the
	// engine's speed, and 200 datagrams in the slow port's empty queue.
	probe := runGen(t, b, &loadgen.Config{Spec: echoSpec, Drain: time.Second}, loadgen.Load{Rate: 10000, Count: 2000})
	slowProbe := runGen(t, b, &loadgen.Config{Spec: loadgen.Spec{Src: src, Dst: netip.AddrPortFrom(a.IPv4.Addr(), slowPort)}, SendOnly: true},
		loadgen.Load{Rate: 5000, Count: 200})
	c1 := settled(t, e)
	slow1 := slow.Info()
	if probe.Lost != 0 || c1.RingDrops != c0.RingDrops {
		t.Errorf("1 s after the load: %d of %d probes lost, %d ring drops", probe.Lost, probe.Sent, c1.RingDrops-c0.RingDrops)
	}
	if in, drops := slow1.InDatagrams-slow0.InDatagrams, slow1.Drops-slow0.Drops; in != slowProbe.TX.Sent || drops != 0 {
		t.Errorf("1 s after the load: the slow port got %d of %d datagrams, %d overflowed (frames in %d, ring drops %d, ring packets %d; XDP %+v -> %+v)",
			in, slowProbe.TX.Sent, drops, c1.FramesIn-c0.FramesIn, c1.RingDrops-c0.RingDrops, c1.RingPackets-c0.RingPackets, c0.XDP, c1.XDP)
	}
	t.Logf("1 s after the load: %d/%d probes answered, p99 %v", probe.Received, probe.Sent, probe.Latency.P99)
	if robustBackend == engine.BackendXDP {
		checkUMEM(t, e, sum.Duration)
	}
}

// sample is what TestOverload compares before and after the load.
type sample struct {
	c              counts
	echo, slow     engine.PortInfo
	link           linkStats
	mem            runtime.MemStats
	rssKiB, hwmKiB uint64
}

func takeSample(t *testing.T, e *engine.Engine, sender *lab.Host) sample {
	t.Helper()
	var s sample
	c := settled(t, e)
	s.c = flatten(&c)
	s.echo = portInfo(t, e, echoPort)
	s.slow = portInfo(t, e, slowPort)
	s.link = mustLinkStats(t, sender)
	runtime.GC()
	runtime.ReadMemStats(&s.mem)
	s.rssKiB, s.hwmKiB = rss(t)
	return s
}

// outcomes lists the nonzero outcome counts of m.
func (m counts) outcomes() string {
	o := counts{}
	for k, v := range m {
		if strings.HasPrefix(k, "outcome:") {
			o[k] = v
		}
	}
	return o.nonzero()
}

// rss returns VmRSS and VmHWM of this process in KiB.
func rss(t *testing.T) (cur, peak uint64) {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), ":")
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		n, _ := strconv.ParseUint(f[0], 10, 64)
		switch k {
		case "VmRSS":
			cur = n
		case "VmHWM":
			peak = n
		}
	}
	return cur, peak
}

// waitSettled waits, up to limit, for the engine to have handled its
// rings and for the slow port's queue to be empty.
func waitSettled(t *testing.T, e *engine.Engine, slow *engine.Port, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(max(limit, 10*time.Millisecond))
	for {
		c := e.Counters()
		if c.FramesIn+c.RingDrops == c.RingPackets && slow.Info().QueueLen == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("the engine is still busy %v after the load: %d handled + %d dropped of %d, slow queue %d",
				limit, c.FramesIn, c.RingDrops, c.RingPackets, slow.Info().QueueLen)
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// runGen runs the generator in h once.
func runGen(t *testing.T, h *lab.Host, cfg *loadgen.Config, load loadgen.Load) *loadgen.Summary {
	t.Helper()
	s, err := runGenErr(h, cfg, load)
	if err != nil {
		t.Fatalf("generator: %v", err)
	}
	return s
}

// zeroLossRate finds the highest rate at which trial loses nothing, by
// RFC 2544 section 26.1's binary search with short trials. trial returns
// the rate the generator achieved and whether nothing was lost; the
// bounds move to achieved rates, not asked ones, so that a generator
// starved of CPU on a shared machine makes the search coarse, not wrong.
// It needs no precision: TestOverload asserts accounting, not rates.
func zeroLossRate(t *testing.T, trial func(rate float64) (sent float64, ok bool)) float64 {
	t.Helper()
	top, ok := trial(0)
	if ok {
		// Nothing lost with the generator flat out: the rate is at least
		// that; the logs say so.
		t.Logf("nothing lost with the generator flat out (%s)", loadgen.FormatRate(top))
		return top
	}
	lo, hi := 0.0, top
	for range 7 {
		mid := (lo + hi) / 2
		sent, ok := trial(mid)
		t.Logf("trial at %s: achieved %s, lost nothing: %v", loadgen.FormatRate(mid), loadgen.FormatRate(sent), ok)
		if ok {
			lo = max(lo, sent)
		} else {
			hi = min(hi, sent)
		}
		if hi <= lo*1.02 {
			break
		}
	}
	if lo == 0 {
		t.Fatalf("no zero-loss rate found below %s", loadgen.FormatRate(hi))
	}
	return lo
}

// takeCounts returns the engine's settled counters, flattened.
func takeCounts(t *testing.T, e *engine.Engine) counts {
	t.Helper()
	c := settled(t, e)
	return flatten(&c)
}
