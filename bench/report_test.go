package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/pktengine/pktengine/loadgen"
)

// fakeReport is a report as Run would fill it, with round numbers.
func fakeReport() *Report {
	c, _ := DefaultConfig().withDefaults()
	r := &Report{Date: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC), Config: c,
		Machine: Machine{Kernel: "Linux 6.1", CPU: "Test CPU", CPUs: 2, Go: "go1.26"}}
	mk := func(name string, engine bool, zl float64, p99at10 time.Duration, alloc, allocUnpaced uint64) ResponderResult {
		rr := ResponderResult{ResponderInfo: ResponderInfo{Name: name, Engine: engine}}
		rr.ZeroLoss = newStat([]float64{zl * 0.98, zl, zl * 1.01})
		rr.MaxSent = newStat([]float64{900e3})
		rr.MaxDelivered = newStat([]float64{zl * 1.2})
		rr.CPU = newStat([]float64{1500})
		rr.Softirq = newStat([]float64{700})
		rr.Searches = []Search{{Rate: zl, Points: []Point{
			{Offered: 0, Sent: 900e3, Delivered: zl * 1.2, Loss: 0.5},
			{Offered: zl, Sent: zl, Delivered: zl, Pass: true},
		}}}
		for _, f := range c.LatencyLoads {
			d := float64(p99at10) * (1 + f)
			rr.Latency = append(rr.Latency, LatencyResult{Load: f, Rate: f * zl,
				P50: newStat([]float64{d / 4}), P90: newStat([]float64{d / 2}), P99: newStat([]float64{d}),
				P999: newStat([]float64{2 * d}), Max: newStat([]float64{3 * d}), Loss: newStat([]float64{0})})
		}
		rr.Alloc = Alloc{Replies: 1e6, Bytes: alloc}
		rr.Alloc.compute()
		rr.AllocUnpaced = Alloc{Replies: 1e5, Bytes: allocUnpaced, Mallocs: allocUnpaced / 8}
		rr.AllocUnpaced.compute()
		return rr
	}
	r.Responders = []ResponderResult{
		mk("kernel", false, 20e3, 300*time.Microsecond, 52e6, 52e5),
		mk("kernel-batch", false, 100e3, 200*time.Microsecond, 52e6, 52e5),
		mk("engine-v2", true, 400e3, 100*time.Microsecond, 0, 0),
		mk("engine-v3", true, 500e3, 900*time.Microsecond, 100, 1000),
		mk("engine-xdp", true, 650e3, 120*time.Microsecond, 0, 0),
		{ResponderInfo: ResponderInfo{Name: "broken", Engine: true}, Error: "no replies"},
	}
	// engine-v3's CPU ticks are the tick-aliased kind (below its own
	// time); the goals must go by the process's own time.
	for i, cpu := range []struct{ tick, own float64 }{{9000, 9500}, {2000, 2100}, {900, 1000}, {50, 800}, {550, 590}} {
		r.Responders[i].CPU = newStat([]float64{cpu.tick})
		r.Responders[i].OwnCPU = newStat([]float64{cpu.own})
	}
	gb := func(name string, rate float64, mallocs uint64) GenBackendResult {
		g := GenBackendResult{Backend: name, Arrived: newStat([]float64{rate}), Sent: newStat([]float64{rate}),
			VsTrafgen: newStat([]float64{rate / 0.8e6}), Alloc: Alloc{Replies: uint64(rate), Mallocs: mallocs}}
		g.Alloc.compute()
		return g
	}
	r.Generator = &GeneratorResult{Ours: newStat([]float64{1e6}), Trafgen: newStat([]float64{0.8e6}), Line: newStat([]float64{1.2e6}),
		Backends: []GenBackendResult{gb("tpacket", 1e6, 0), gb("xdp", 1.1e6, 2), gb("live", 3e6, 10)}, PeerProgram: true, Chosen: "live"}
	r.finish()
	return r
}

func TestReportGoals(t *testing.T) {
	r := fakeReport()
	want := map[string]bool{
		"pktengine echo zero-loss rate >= 3x kernel-batch":                                        true,  // 650k / 100k
		"pktengine echo zero-loss rate >= 20x kernel":                                             true,  // 650k / 20k = 32.5
		"pktengine echo zero-loss rate >= 95% of the lab's line rate":                             false, // 650k / 1.2M
		"pktengine p99 latency at 10% load no worse than kernel UDP's":                            true,  // engine-v2 110µs vs 220µs
		"pktengine gen frames/s >= trafgen's, one core":                                           true,
		"AF_XDP echo CPU per reply <= 1/3 of batched kernel UDP's":                                true,  // own 590 / 2100
		"AF_XDP echo CPU per reply <= 0.75x the TPACKET engine's":                                 true,  // own 590 / 800 (ticks 550 / 50)
		"AF_XDP echo zero-loss rate >= 1.15x the TPACKET engine's":                                true,  // 650k / 500k
		"pktengine gen --backend xdp frames/s >= 1.2x trafgen's, one core":                        true,  // 1.1M / 800k
		"pktengine gen --backend live frames/s >= 4x trafgen's into a stack-bound peer, one core": false, // 3M / 800k
		"0 bytes allocated per packet in the engine's steady state":                               false, // engine-v3: 125 allocations in 100k unpaced replies
		"0 allocations per packet in pktengine gen, every backend":                                true,
	}
	if len(r.Goals) != len(want) {
		t.Fatalf("%d goals: %+v", len(r.Goals), r.Goals)
	}
	for _, g := range r.Goals {
		met, ok := want[g.Goal]
		if !ok || met != g.Met {
			t.Errorf("goal %q met=%v (%s), want %v", g.Goal, g.Met, g.Measured, met)
		}
	}
	if len(r.Ratios) != 6 || r.Ratios[0].Value != 20 || r.Ratios[0].Paired.Median != 20 {
		t.Fatalf("ratios %+v", r.Ratios)
	}
	// Without an engine nothing can be met, and nothing panics.
	r.Responders = r.Responders[:2]
	r.Generator = nil
	r.finish()
	for _, g := range r.Goals {
		if g.Met || g.Measured != "not measured" {
			t.Errorf("goal %+v without an engine", g)
		}
	}
}

func TestReportTable(t *testing.T) {
	r := fakeReport()
	r.Command = "pktengine bench --trials 3"
	var b bytes.Buffer
	if err := r.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, s := range []string{
		"engine-v3", "500k [490k-505k]", "broken", "error: no replies",
		"engine-v3 / kernel-batch   5.0x   5.0x [5.0x-5.0x]", "pktengine gen --backend xdp      1.10M", "1.38x [1.38x-1.38x]", "trafgen  ", "line rate",
		"the responder runs used pktengine gen --backend live",
		"[met  ] pktengine echo zero-loss rate >= 3x kernel-batch", "[short] 0 bytes allocated",
		"reproduce: pktengine bench --trials 3", "50.0kfps: 248µs / 990µs / 1.98ms",
	} {
		if !strings.Contains(out, s) {
			t.Errorf("table lacks %q:\n%s", s, out)
		}
	}
}

func TestReportJSON(t *testing.T) {
	r := fakeReport()
	var b bytes.Buffer
	if err := r.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(b.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if back.Responders[3].ZeroLoss.Median != 500e3 || back.Config.TrialDuration != time.Second || len(back.Goals) != 12 {
		t.Fatalf("round trip lost data: %+v", back.Responders[3].ZeroLoss)
	}
}

func TestReportSVG(t *testing.T) {
	r := fakeReport()
	var b bytes.Buffer
	if err := r.WriteSVG(&b); err != nil {
		t.Fatal(err)
	}
	// Well-formed XML, an <svg> root, a marker per trial and a latency
	// point per load and percentile line.
	counts := svgElements(t, b.Bytes())
	// 5 responders: 2 search points and 3 latency loads × 2 lines each.
	if counts["svg"] != 1 || counts["circle"] != 5*2+5*3*2 || counts["polyline"] != 5*2 {
		t.Fatalf("elements %v", counts)
	}
	for _, s := range []string{"engine-v2: zero-loss 400kfps", palette["engine-v3"], "10%"} {
		if !strings.Contains(b.String(), s) {
			t.Errorf("svg lacks %q", s)
		}
	}
	// An empty report still draws.
	empty := &Report{Config: r.Config}
	b.Reset()
	if err := empty.WriteSVG(&b); err != nil || !strings.Contains(b.String(), "no latency measured") {
		t.Fatalf("empty report: %v", err)
	}
}

// svgElements checks that svg is well-formed XML and counts its
// elements by name.
func svgElements(t *testing.T, svg []byte) map[string]int {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(svg))
	counts := map[string]int{}
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("SVG: %v\n%s", err, svg)
		}
		if se, ok := tok.(xml.StartElement); ok {
			counts[se.Name.Local]++
		}
	}
	return counts
}

func TestNiceStep(t *testing.T) {
	for _, tc := range []struct{ max, want float64 }{
		{1e6, 200e3}, {530e3, 200e3}, {90, 20}, {1, 0.2}, {0, 1},
	} {
		if got := niceStep(tc.max, 5); got != tc.want {
			t.Errorf("niceStep(%v) = %v, want %v", tc.max, got, tc.want)
		}
	}
}

func TestConfig(t *testing.T) {
	c, err := Config{}.withDefaults()
	if err != nil || c.Trials != 3 || len(c.Responders) != len(Responders()) || c.ResponderCPU != 1 {
		t.Fatalf("%+v, %v", c, err)
	}
	d, err := DemoConfig().withDefaults()
	if err != nil || d.TrialDuration >= c.TrialDuration {
		t.Fatalf("demo %+v, %v", d, err)
	}
	for _, bad := range []Config{
		{Responders: []string{"nginx"}},
		{GenCPU: 1, ResponderCPU: 1},
		{LossTolerance: 1},
		{LatencyLoads: []float64{1.5}},
		{TrialDuration: time.Millisecond},
		{Precision: 2},
	} {
		if _, err := bad.withDefaults(); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
	names := map[string]bool{}
	for _, r := range Responders() {
		names[r.Name] = true
	}
	for _, n := range []string{"kernel", "kernel-batch", "engine-v2", "engine-v3"} {
		if !names[n] {
			t.Errorf("responder %s missing", n)
		}
	}
}

// TestChildProtocol drives a child in-process through pipes: requests it
// does not know get an error line, and the end of its input ends it.
func TestChildProtocol(t *testing.T) {
	var out bytes.Buffer
	err := runChild(context.Background(), &childSpec{Role: "juggler"}, strings.NewReader(""), &out)
	if err == nil || !strings.Contains(out.String(), `"error":"unknown role \"juggler\""`) {
		t.Fatalf("%v: %s", err, out.String())
	}
	out.Reset()
	err = runChild(context.Background(), &childSpec{Role: roleResponder, Responder: "nginx"}, strings.NewReader(""), &out)
	if !errors.Is(err, errUnknownResponder) || !strings.Contains(out.String(), "unknown responder") {
		t.Fatalf("%v: %s", err, out.String())
	}
	if ChildMain(nil) != 2 || ChildMain([]string{"{"}) != 2 {
		t.Fatal("ChildMain accepted bad arguments")
	}
}

func TestPrefixWriter(t *testing.T) {
	var b bytes.Buffer
	w := &prefixWriter{w: &b, prefix: "> "}
	io.WriteString(w, "one\ntw")
	io.WriteString(w, "o\nthree")
	if b.String() != "> one\n> two\n" {
		t.Fatalf("%q", b.String())
	}
}

func TestSIFormat(t *testing.T) {
	if s := statRate(newStat([]float64{1e6, 1.1e6, 0.9e6})); s != "1.00M [900k-1.10M]" {
		t.Fatal(s)
	}
	if s := loadgen.FormatDuration(1500 * time.Nanosecond); s != "1.50µs" {
		t.Fatal(s)
	}
}

func TestReportSave(t *testing.T) {
	r := fakeReport()
	dir := t.TempDir() + "/results"
	j, s, err := r.Save(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(j, "/bench-20260501-120000.json") || !strings.HasSuffix(s, "/bench-20260501-120000.svg") {
		t.Fatalf("%s %s", j, s)
	}
	b, err := os.ReadFile(j)
	if err != nil || !json.Valid(b) {
		t.Fatalf("%v", err)
	}
}
