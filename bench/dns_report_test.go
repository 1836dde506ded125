package bench

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

const dnsperfOutput = `DNS Performance Testing Tool
Version 2.10.0

[Status] Command line: dnsperf -s 198.18.77.2 -d queries.txt -l 5 -c 4 -q 200
[Status] Sending queries (to 198.18.77.2:53)
[Status] Started at: Thu Dec  3 22:02:12 2026
[Status] Stopping after 5.000000 seconds
[Status] Testing complete (time limit)

Statistics:

  Queries sent:         261553
  Queries completed:    261550 (100.00%)
  Queries lost:         3 (0.00%)

  Response codes:       NOERROR 261550 (100.00%)
  Average packet size:  request 35, response 57
  Run time (s):         5.002099
  Queries per second:   52288.049477

  Average Latency (s):  0.002049 (min 0.000020, max 0.090986)
  Latency StdDev (s):   0.002733

`

func TestParseDnsperf(t *testing.T) {
	s, err := parseDnsperf(dnsperfOutput)
	if err != nil {
		t.Fatal(err)
	}
	want := DnsperfStats{Sent: 261553, Completed: 261550, Lost: 3, QPS: 52288.049477, Seconds: 5.002099,
		Mean: 2049e3, Min: 20e3, Max: 90986e3, StdDev: 2733e3}
	near := func(a, b float64) bool { return a == b || (a-b)/b < 1e-9 && (b-a)/b < 1e-9 }
	if s.Sent != want.Sent || s.Completed != want.Completed || s.Lost != want.Lost || !near(s.QPS, want.QPS) || !near(s.Seconds, want.Seconds) ||
		!near(s.Mean, want.Mean) || !near(s.Min, want.Min) || !near(s.Max, want.Max) || !near(s.StdDev, want.StdDev) {
		t.Errorf("got %+v\nwant %+v", s, want)
	}

	// Nothing answered: no standard deviation line, zeros.
	none := `Statistics:

  Queries sent:         100
  Queries completed:    0 (0.00%)
  Queries lost:         100 (100.00%)

  Response codes:       
  Average packet size:  request 34, response 0
  Run time (s):         0.300130
  Queries per second:   0.000000

  Average Latency (s):  0.000000 (min 0.000000, max 0.000000)
`
	if s, err := parseDnsperf(none); err != nil || s.Sent != 100 || s.Lost != 100 || s.Completed != 0 || s.Mean != 0 {
		t.Errorf("%+v, %v", s, err)
	}

	for name, out := range map[string]string{
		"empty":       "",
		"no lost":     strings.Replace(dnsperfOutput, "Queries lost:", "Queries missing:", 1),
		"bad number":  strings.Replace(dnsperfOutput, "261553", "many", 1),
		"bad latency": strings.Replace(dnsperfOutput, "(min 0.000020, max 0.090986)", "(least 0.000020)", 1),
	} {
		if _, err := parseDnsperf(out); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestDNSConfig(t *testing.T) {
	c, err := DNSConfig{}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Responders) != 5 || c.Names != 10000 || c.Trials != 3 || c.GenCPU == c.ResponderCPU || c.LossTolerance != 0 {
		t.Errorf("defaults %+v", c)
	}
	if d := DefaultDNSConfig(); d.LossTolerance != 0.001 || d.SkipDnsperf {
		t.Errorf("DefaultDNSConfig %+v", d)
	}
	if d := DemoDNSConfig(); d.Trials != 1 || d.TrialDuration >= time.Second || !d.SkipDnsperf {
		t.Errorf("DemoDNSConfig %+v", d)
	}
	for name, c := range map[string]DNSConfig{
		"unknown":   {Responders: []string{"bind"}},
		"twice":     {Responders: []string{"knot-udp", "knot-udp"}},
		"same CPU":  {GenCPU: 1, ResponderCPU: 1},
		"names":     {Names: 1 << 16},
		"tolerance": {LossTolerance: 1},
		"load":      {LatencyLoads: []float64{1.5}},
		"trial":     {TrialDuration: time.Millisecond},
	} {
		if _, err := c.withDefaults(); err == nil {
			t.Errorf("%s: no error", name)
		} else if name == "unknown" && !errors.Is(err, errUnknownResponder) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// dnsResult is a measured responder with zero-loss rates per round, CPU per
// answer and unpaced allocations.
func dnsResult(name string, rates []float64, cpu float64, mallocs, answers uint64) DNSResponderResult {
	rr := DNSResponderResult{Threads: 6}
	rr.Name, rr.CPULoad = name, 0.9
	rr.Engine = strings.HasPrefix(name, "dnsd-") && name != "dnsd-kernel"
	for _, r := range rates {
		rr.Searches = append(rr.Searches, Search{Rate: r, Points: []Point{{Sent: 2 * r, Delivered: r}, {Offered: r, Sent: r, Delivered: r, Pass: true}}})
	}
	rr.summarizeSearches([]float64{0.5, 0.9})
	for i := range rr.Latency {
		rr.Latency[i].Points = []Point{{Offered: rr.Latency[i].Rate, Replies: 1000, CPU: cpu, OwnCPU: cpu / 2, Pass: true}}
	}
	if strings.HasPrefix(name, "dnsd-") {
		rr.AllocUnpaced = Alloc{Replies: answers, Mallocs: mallocs, Bytes: 64 * mallocs}
		rr.Alloc = rr.AllocUnpaced
	}
	rr.summarizeLatency()
	rr.Others = newStat([]float64{0, 0.5})
	return rr
}

func goal(r *DNSReport, name string) Goal {
	for _, g := range r.Goals {
		if g.Goal == name {
			return g
		}
	}
	return Goal{}
}

func TestDNSReportGoals(t *testing.T) {
	report := func(inline, knot []float64, inlineCPU, knotCPU float64, conn, kernel []float64, mallocs uint64) *DNSReport {
		r := &DNSReport{Config: DefaultDNSConfig(), Date: time.Date(2026, 12, 3, 22, 0, 0, 0, time.UTC)}
		r.Responders = []DNSResponderResult{
			dnsResult("knot-udp", []float64{100e3, 110e3, 90e3}, 8000, 0, 0),
			dnsResult("knot-xdp", knot, knotCPU, 0, 0),
			dnsResult("dnsd-kernel", kernel, 9000, 20e6, 1e6),
			dnsResult("dnsd-conn", conn, 7000, 10e6, 1e6),
			dnsResult("dnsd-inline", inline, inlineCPU, mallocs, 3e6),
		}
		r.finish()
		return r
	}
	r := report([]float64{300e3, 310e3, 320e3}, []float64{250e3, 400e3, 260e3}, 1000, 1500, []float64{30e3, 33e3, 36e3}, []float64{20e3, 20e3, 20e3}, 3)
	// Round by round: 1.2x, 0.78x, 1.23x: the median is 1.2x.
	if g := goal(r, dnsGoalInline); !g.Met || !strings.Contains(g.Measured, "1.20x") {
		t.Errorf("inline goal: %+v", g)
	}
	if g := goal(r, dnsGoalConn); !g.Met || !strings.Contains(g.Measured, "1.65x") {
		t.Errorf("conn goal: %+v", g)
	}
	if g := goal(r, dnsGoalAlloc); !g.Met || !strings.Contains(g.Measured, "3 allocations") {
		t.Errorf("alloc goal: %+v", g)
	}
	if len(r.Ratios) != 5 {
		t.Errorf("%d ratios", len(r.Ratios))
	}

	// Faster but dearer; slower; too few more; an allocation per query.
	r = report([]float64{300e3, 310e3, 320e3}, []float64{250e3, 250e3, 250e3}, 2000, 1500, []float64{29e3, 29e3, 29e3}, []float64{20e3, 20e3, 20e3}, 3e6)
	for _, name := range []string{dnsGoalInline, dnsGoalConn, dnsGoalAlloc} {
		if g := goal(r, name); g.Met || g.Measured == "" {
			t.Errorf("%s: %+v", name, g)
		}
	}
	// Less of the CPU's time but more of the process's own: not met.
	r = report([]float64{300e3, 310e3, 320e3}, []float64{250e3, 250e3, 250e3}, 1000, 1500, nil, nil, 0)
	for i := range r.Responders {
		if rr := &r.Responders[i]; rr.Name == "dnsd-inline" {
			rr.Latency[len(rr.Latency)-1].Points[0].OwnCPU = 2000
			rr.summarizeLatency()
		}
	}
	r.finish()
	if g := goal(r, dnsGoalInline); g.Met || !strings.Contains(g.Measured, "own 2.00µs vs 750ns (more)") {
		t.Errorf("inline goal with more CPU of its own: %+v", g)
	}
	r = report([]float64{200e3, 200e3, 200e3}, []float64{250e3, 250e3, 250e3}, 1000, 1500, nil, []float64{20e3}, 0)
	if g := goal(r, dnsGoalInline); g.Met {
		t.Errorf("slower inline met the goal: %+v", g)
	}

	// Without the responders, nothing is measured, nothing is met.
	r = &DNSReport{Config: DefaultDNSConfig(), Responders: []DNSResponderResult{{ResponderResult: ResponderResult{ResponderInfo: ResponderInfo{Name: "dnsd-inline"}, Error: "no dnsd"}}}}
	r.finish()
	if len(r.Goals) != 3 {
		t.Fatalf("%d goals", len(r.Goals))
	}
	for _, g := range r.Goals {
		if g.Met || g.Measured != "not measured" {
			t.Errorf("%+v", g)
		}
	}
}

func TestDNSReportOutput(t *testing.T) {
	r := &DNSReport{Config: DefaultDNSConfig(), Date: time.Date(2026, 12, 3, 22, 0, 0, 0, time.UTC), Command: "pktengine bench --dns",
		Queries: DNSQueries{Zone: dnsOrigin, Names: 10000, Queries: 22000, NXDomain: 2000, Frame: 83, Sources: dnsPorts}}
	r.Responders = []DNSResponderResult{
		dnsResult("knot-xdp", []float64{250e3, 260e3, 270e3}, 1500, 0, 0),
		dnsResult("dnsd-inline", []float64{300e3, 310e3, 320e3}, 1000, 0, 3e6),
		{ResponderResult: ResponderResult{ResponderInfo: ResponderInfo{Name: "knot-udp"}, Error: "knotd is not installed\nSECOND-LINE"}},
	}
	r.Responders[0].Drops = DNSDrops{XDPRing: 5, VethQueue: 7}
	r.Responders[1].Dnsperf = []DnsperfResult{{Rate: 30e3, DnsperfStats: DnsperfStats{Sent: 30000, Completed: 30000, QPS: 29990, Mean: 150e3, Max: 2e6}}, {Error: "dnsperf: exit status 1"}}
	r.finish()

	var table bytes.Buffer
	if err := r.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"knot-xdp", "dnsd-inline", "260k [250k-270k]", "error: knotd is not installed", "dnsperf", "30.0k: 30.0k done, lost 0 of 30000", "dnsperf: exit status 1", "[met  ] " + dnsGoalAlloc, "[short] " + dnsGoalConn, "reproduce: pktengine bench --dns", "knot-xdp     veth queue 7, AF_XDP ring 5", "dnsd-inline  none counted", "25% [0-50%]"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}
	if strings.Contains(table.String(), "SECOND-LINE") {
		t.Errorf("the table shows more than an error's first line:\n%s", table.String())
	}

	var svg bytes.Buffer
	if err := r.WriteSVG(&svg); err != nil {
		t.Fatal(err)
	}
	if svgElements(t, svg.Bytes())["svg"] != 1 {
		t.Errorf("no <svg> root:\n%s", svg.String())
	}
	for _, want := range []string{"dnsd-inline: 310k q/s", palette["dnsd-inline"], palette["knot-xdp"]} {
		if !strings.Contains(svg.String(), want) {
			t.Errorf("SVG lacks %q", want)
		}
	}

	dir := t.TempDir()
	j, s, err := r.Save(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(j, "bench-dns-2026-12-03T2200.json") || !strings.HasSuffix(s, ".svg") {
		t.Errorf("saved as %s, %s", j, s)
	}
	b, err := os.ReadFile(j)
	if err != nil {
		t.Fatal(err)
	}
	var back DNSReport
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if len(back.Responders) != 3 || back.Responders[1].ZeroLoss.Median != 310e3 || back.Responders[1].Dnsperf[0].QPS != 29990 || len(back.Goals) != 3 {
		t.Errorf("JSON round trip: %+v", back.Responders)
	}
}
