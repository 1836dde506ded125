//go:build linux

package main

import (
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"testing"

	"github.com/pktengine/pktengine/engine"
	"github.com/pktengine/pktengine/examples/dnsd/zone"
	"github.com/pktengine/pktengine/internal/labtest"
)

// TestInlineUnderLoad: dnsperf in the peer namespace sends the zone's
// questions (zone.Templates) to dnsd inline at a bounded rate; every query
// is answered, and the responder's process allocates less than once per
// hundred queries (the exec of dnsperf itself accounts for a few hundred
// allocations). The rate is logged, not asserted: the machine is shared.
func TestInlineUnderLoad(t *testing.T) {
	dnsperf := labtest.NeedTool(t, "dnsperf")
	l := labtest.New(t, nil)
	a, b := l.A(), l.B()
	z, err := zone.LoadFile(testZone, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	e := labtest.Open(t, a, func(ifi *net.Interface) (*engine.Engine, error) {
		return engine.Open(ifi, &engine.Config{Addrs: []netip.Prefix{netip.PrefixFrom(inlineV4, 32)}})
	})
	var st stats
	h := newInlineHandler(z, e.Interface().MTU, &st)
	if _, err := e.Handle(netip.AddrPortFrom(inlineV4, 53), h); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(t.TempDir(), "queries")
	f, err := os.Create(data)
	if err != nil {
		t.Fatal(err)
	}
	ts := z.Templates(&zone.TemplateConfig{NXDomain: 10})
	if err := zone.WriteDnsperf(f, ts); err != nil {
		t.Fatal(err)
	}
	f.Close()

	const passes = 200
	cmd := b.Command(t.Context(), dnsperf, "-s", inlineV4.String(), "-d", data, "-n", strconv.Itoa(passes), "-Q", "30000", "-t", "5")
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	out, err := cmd.CombinedOutput()
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatalf("dnsperf: %v\n%s", err, out)
	}
	sent := matchInt(t, out, `Queries sent:\s+(\d+)`)
	completed := matchInt(t, out, `Queries completed:\s+(\d+)`)
	if want := passes * len(ts); sent != want || completed != sent {
		t.Errorf("dnsperf sent %d queries (want %d), %d completed\n%s", sent, want, completed, out)
	}
	mallocs := after.Mallocs - before.Mallocs
	// Under the race detector sync.Pool drops buffers: not counted there.
	if !raceEnabled && mallocs*100 > uint64(sent) {
		t.Errorf("%d allocations for %d queries", mallocs, sent)
	}
	qps := regexp.MustCompile(`Queries per second:\s+([0-9.]+)`).FindSubmatch(out)
	t.Logf("%d queries, %d allocations in the process meanwhile (%.4f per query); dnsperf: %s queries/s at most 30000 offered (shared machine); %v",
		sent, mallocs, float64(mallocs)/float64(sent), qps[1], st.attrs())
}

func matchInt(t *testing.T, out []byte, re string) int {
	t.Helper()
	m := regexp.MustCompile(re).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no %q in dnsperf's output:\n%s", re, out)
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}
