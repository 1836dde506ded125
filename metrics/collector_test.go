package metrics

import (
	"bytes"
	"io"
	"maps"
	"net/http/httptest"
	"net/netip"
	"os/exec"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/pktengine/pktengine/engine"
	"github.com/pktengine/pktengine/internal/labtest"
)

// The engine is a Source.
var _ Source = (*engine.Engine)(nil)

// snapshot is a Source that returns fixed counters and ports.
type snapshot struct {
	counters engine.Counters
	ports    []engine.PortInfo
}

func (s *snapshot) Counters() engine.Counters { return s.counters }
func (s *snapshot) Ports() []engine.PortInfo  { return slices.Clone(s.ports) }

// wantSeries maps each engine-wide series to the Counters field it must
// export (a path for reflect). Written out by hand, not derived from the
// collector's tables, so that a wrong field there shows up here.
var wantSeries = map[string]string{
	"pktengine_udp_in_datagrams_total":                    "UDP.InDatagrams",
	"pktengine_udp_no_ports_total":                        "UDP.NoPorts",
	"pktengine_udp_in_errors_total":                       "UDP.InErrors",
	"pktengine_udp_out_datagrams_total":                   "UDP.OutDatagrams",
	"pktengine_udp_rcvbuf_errors_total":                   "UDP.RcvbufErrors",
	"pktengine_udp_sndbuf_errors_total":                   "UDP.SndbufErrors",
	"pktengine_udp_in_csum_errors_total":                  "UDP.InCsumErrors",
	"pktengine_udp_ignored_multi_total":                   "UDP.IgnoredMulti",
	"pktengine_frames_total":                              "FramesIn",
	"pktengine_frame_bytes_total":                         "BytesIn",
	"pktengine_arp_answered_total":                        "ARPAnswered",
	"pktengine_ndp_answered_total":                        "NDPAnswered",
	"pktengine_ping_answered_total":                       "PingAnswered",
	"pktengine_neighbors_learned_total":                   "NeighborsLearned",
	"pktengine_icmp_sent_total":                           "ICMPSent",
	"pktengine_icmp_rate_limited_total":                   "ICMPRateLimited",
	"pktengine_icmp_suppressed_total":                     "ICMPSuppressed",
	`pktengine_service_guard_drops_total{guard="loop"}`:   "GuardLoop",
	`pktengine_service_guard_drops_total{guard="source"}`: "GuardSource",
	`pktengine_service_guard_drops_total{guard="group"}`:  "GuardNonUnicast",
	`pktengine_service_guard_drops_total{guard="rate"}`:   "GuardRateLimited",
	`pktengine_service_guard_drops_total{guard="total"}`:  "GuardTotalLimited",
	"pktengine_tx_frames_total":                           "TXFrames",
	"pktengine_tx_errors_total":                           "TXErrors",
	"pktengine_tx_dropped_total":                          "TXDropped",
	"pktengine_ring_packets_total":                        "RingPackets",
	"pktengine_ring_drops_total":                          "RingDrops",
	"pktengine_ring_freezes_total":                        "RingFreezes",
	"pktengine_link_downs_total":                          "LinkDowns",
	"pktengine_link_ups_total":                            "LinkUps",
	"pktengine_igmp_queries_total":                        "Multicast.IGMPQueries",
	"pktengine_mld_queries_total":                         "Multicast.MLDQueries",
	"pktengine_multicast_invalid_queries_total":           "Multicast.InvalidQueries",
	"pktengine_multicast_reports_heard_total":             "Multicast.ReportsHeard",
	"pktengine_igmp_reports_total":                        "Multicast.IGMPReports",
	"pktengine_mld_reports_total":                         "Multicast.MLDReports",
	"pktengine_multicast_answers_limited_total":           "Multicast.AnswersLimited",
	"pktengine_multicast_groups":                          "Multicast.Groups",

	`pktengine_ip_reasm_reqds_total{family="ipv4"}`:    "IP.ReasmReqds",
	`pktengine_ip_reasm_oks_total{family="ipv4"}`:      "IP.ReasmOKs",
	`pktengine_ip_reasm_fails_total{family="ipv4"}`:    "IP.ReasmFails",
	`pktengine_ip_reasm_timeout_total{family="ipv4"}`:  "IP.ReasmTimeout",
	`pktengine_ip_reasm_overlaps_total{family="ipv4"}`: "IP.ReasmOverlaps",
	`pktengine_ip_in_hdr_errors_total{family="ipv4"}`:  "IP.InHdrErrors",
	`pktengine_ip_frag_oks_total{family="ipv4"}`:       "IP.FragOKs",
	`pktengine_ip_frag_fails_total{family="ipv4"}`:     "IP.FragFails",
	`pktengine_ip_frag_creates_total{family="ipv4"}`:   "IP.FragCreates",
	`pktengine_ip_reasm_reqds_total{family="ipv6"}`:    "IP6.ReasmReqds",
	`pktengine_ip_reasm_oks_total{family="ipv6"}`:      "IP6.ReasmOKs",
	`pktengine_ip_reasm_fails_total{family="ipv6"}`:    "IP6.ReasmFails",
	`pktengine_ip_reasm_timeout_total{family="ipv6"}`:  "IP6.ReasmTimeout",
	`pktengine_ip_reasm_overlaps_total{family="ipv6"}`: "IP6.ReasmOverlaps",
	`pktengine_ip_in_hdr_errors_total{family="ipv6"}`:  "IP6.InHdrErrors",
	`pktengine_ip_frag_oks_total{family="ipv6"}`:       "IP6.FragOKs",
	`pktengine_ip_frag_fails_total{family="ipv6"}`:     "IP6.FragFails",
	`pktengine_ip_frag_creates_total{family="ipv6"}`:   "IP6.FragCreates",
	"pktengine_reasm_evictions_total":                  "ReasmEvictions",
	"pktengine_reasm_source_evictions_total":           "ReasmSourceEvictions",
	"pktengine_reasm_queues":                           "ReasmQueues",
	"pktengine_reasm_fragments":                        "ReasmFragments",
	"pktengine_reasm_memory_bytes":                     "ReasmMemoryInUse",
	"pktengine_reasm_memory_limit_bytes":               "ReasmMemoryLimit",
	"pktengine_icmp_errors_in_total":                   "ICMPErrorsIn",
	"pktengine_icmp_errors_delivered_total":            "ICMPErrorsDelivered",
	"pktengine_icmp_errors_unmatched_total":            "ICMPErrorsUnmatched",
	"pktengine_icmp_errors_invalid_total":              "ICMPErrorsInvalid",
	"pktengine_pmtu_updates_total":                     "PMTUUpdates",
	"pktengine_icmp_time_exceeded_sent_total":          "ICMPTimeExceededSent",
	"pktengine_icmp_param_problem_sent_total":          "ICMPParamProblemSent",
	"pktengine_xdp_rx_dropped_total":                   "XDP.RxDropped",
	"pktengine_xdp_rx_ring_full_total":                 "XDP.RxRingFull",
	"pktengine_xdp_rx_fill_ring_empty_total":           "XDP.RxFillRingEmpty",
	"pktengine_xdp_rx_invalid_descs_total":             "XDP.RxInvalidDescs",
	"pktengine_xdp_tx_invalid_descs_total":             "XDP.TxInvalidDescs",
	"pktengine_xdp_tx_ring_empty_total":                "XDP.TxRingEmpty",
	"pktengine_xdp_received_total":                     "XDP.Received",
	"pktengine_xdp_filtered_total":                     "XDP.Filtered",
	"pktengine_xdp_transmitted_total":                  "XDP.Transmitted",
	"pktengine_xdp_completed_total":                    "XDP.Completed",
	"pktengine_xdp_tx_dropped_total":                   "XDP.TXDropped",
	"pktengine_xdp_steered_total":                      "XDP.Steered",
	"pktengine_xdp_passed_total":                       "XDP.Passed",
	"pktengine_xdp_no_socket_total":                    "XDP.NoSocket",
	"pktengine_xdp_frame_checks_total":                 "XDP.FrameChecks",
	"pktengine_xdp_frame_check_failures_total":         "XDP.FrameCheckFailures",
}

// distinctCounters gives every counter its own value (1, 2, 3, ... in
// field order, the outcomes included) and returns the paths of the
// uint64 fields it set.
func distinctCounters(c *engine.Counters) (paths []string) {
	next := 0.0
	var walk func(v reflect.Value, path string)
	walk = func(v reflect.Value, path string) {
		switch v.Kind() {
		case reflect.Struct:
			for i := range v.NumField() {
				p := v.Type().Field(i).Name
				if path != "" {
					p = path + "." + p
				}
				walk(v.Field(i), p)
			}
		case reflect.Array:
			for i := range v.Len() {
				walk(v.Index(i), path+"[]")
			}
		case reflect.Uint64:
			next++
			v.SetUint(uint64(next))
			if !strings.HasSuffix(path, "[]") {
				paths = append(paths, path)
			}
		}
	}
	walk(reflect.ValueOf(c).Elem(), "")
	return paths
}

func field(c *engine.Counters, path string) uint64 {
	v := reflect.ValueOf(c).Elem()
	for name := range strings.SplitSeq(path, ".") {
		v = v.FieldByName(name)
	}
	return v.Uint()
}

var testPorts = []engine.PortInfo{
	{Port: 7, Service: "echo", Inline: true, InDatagrams: 5, OutDatagrams: 4, Suppressed: 1},
	{Addr: netip.MustParseAddr("198.18.0.1"), Port: 5000, QueueLen: 3, QueueCap: 1024, InDatagrams: 9, Drops: 2},
	// A label value with every character the text format escapes.
	{Addr: netip.MustParseAddr("fd00::1"), Port: 53, Service: "a\"b\\c\nd", QueueCap: 16},
}

// gather collects c on a pedantic registry, which checks every metric
// against its description, and returns the samples by series.
func gather(t *testing.T, c prometheus.Collector) map[string]float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	return samples(fams)
}

// samples flattens families into series ("name{k="v",...}") and values.
func samples(fams []*dto.MetricFamily) map[string]float64 {
	out := map[string]float64{}
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+`"`+l.GetValue()+`"`)
			}
			s := f.GetName()
			if len(labels) > 0 {
				slices.Sort(labels)
				s += "{" + strings.Join(labels, ",") + "}"
			}
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				out[s] = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				out[s] = m.GetGauge().GetValue()
			default:
				out[s] = -1 // summaries, histograms: present, not compared
			}
		}
	}
	return out
}

// TestCollectorExportsEveryCounter: every field of engine.Counters is
// exported, each under its own name, with its own value; every port
// carries its six series.
func TestCollectorExportsEveryCounter(t *testing.T) {
	src := &snapshot{ports: testPorts}
	paths := distinctCounters(&src.counters)
	got := gather(t, NewCollector(src))

	exported := map[string]bool{}
	for series, path := range wantSeries {
		exported[path] = true
		if v, ok := got[series]; !ok || v != float64(field(&src.counters, path)) {
			t.Errorf("%s = %v (present %v), want %s = %d", series, v, ok, path, field(&src.counters, path))
		}
	}
	for _, p := range paths {
		if !exported[p] {
			t.Errorf("Counters.%s is not exported", p)
		}
	}
	for o := range engine.NumOutcomes {
		series := `pktengine_frame_outcomes_total{outcome="` + o.String() + `"}`
		if v := got[series]; v != float64(src.counters.Outcomes[o]) {
			t.Errorf("%s = %v, want %d", series, v, src.counters.Outcomes[o])
		}
		series = `pktengine_reassembled_outcomes_total{outcome="` + o.String() + `"}`
		if v := got[series]; v != float64(src.counters.Reassembled[o]) {
			t.Errorf("%s = %v, want %d", series, v, src.counters.Reassembled[o])
		}
	}
	for _, p := range testPorts {
		labels := `{local="` + p.Local() + `",service="` + p.Service + `"}`
		for name, want := range map[string]float64{
			"pktengine_port_in_datagrams_total":  float64(p.InDatagrams),
			"pktengine_port_out_datagrams_total": float64(p.OutDatagrams),
			"pktengine_port_drops_total":         float64(p.Drops),
			"pktengine_port_suppressed_total":    float64(p.Suppressed),
			"pktengine_port_queue_length":        float64(p.QueueLen),
			"pktengine_port_queue_capacity":      float64(p.QueueCap),
		} {
			if v, ok := got[name+labels]; !ok || v != want {
				t.Errorf("%s%s = %v (present %v), want %v", name, labels, v, ok, want)
			}
		}
	}
	if want := len(wantSeries) + 2*int(engine.NumOutcomes) + 6*len(testPorts); len(got) != want {
		t.Errorf("%d series, want %d", len(got), want)
	}
}

// trafficSnapshot is a consistent snapshot: its outcomes add up to its
// frames.
func trafficSnapshot() *snapshot {
	var c engine.Counters
	c.Outcomes[engine.OutcomeDelivered] = 7
	c.Outcomes[engine.OutcomeNoPort] = 2
	c.Outcomes[engine.OutcomeOtherHost] = 1
	c.FramesIn, c.BytesIn = 10, 1000
	c.UDP.InDatagrams, c.UDP.NoPorts, c.UDP.OutDatagrams = 7, 2, 4
	c.ARPAnswered, c.LinkDowns, c.LinkUps = 1, 2, 1
	return &snapshot{counters: c, ports: testPorts}
}

// scrape gets /metrics from Handler(src) as Prometheus would.
func scrape(t *testing.T, src Source) string {
	t.Helper()
	rec := httptest.NewRecorder()
	Handler(src).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("GET /metrics: %d %s", rec.Code, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Errorf("Content-Type %q", ct)
	}
	return rec.Body.String()
}

// TestExpositionParses reads a scrape with the client library's own text
// parser, with the legacy (strict) name rules: the engine's series, the
// Go runtime's and the process's are there, and the outcomes add up to
// the frames.
func TestExpositionParses(t *testing.T) {
	body := scrape(t, trafficSnapshot())
	parser := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("%v\n%s", err, body)
	}
	for name, f := range fams {
		if !strings.HasPrefix(name, "pktengine_") && !strings.HasPrefix(name, "go_") && !strings.HasPrefix(name, "process_") {
			t.Errorf("unexpected family %s", name)
		}
		if f.GetHelp() == "" {
			t.Errorf("%s has no help", name)
		}
	}
	want := []string{"pktengine_frames_total", "pktengine_frame_outcomes_total", "pktengine_port_queue_capacity", "go_goroutines", "go_memstats_alloc_bytes"}
	if runtime.GOOS == "linux" {
		want = append(want, "process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds")
	}
	for _, name := range want {
		if fams[name] == nil {
			t.Errorf("no %s in the scrape", name)
		}
	}
	got := samples(slices.Collect(maps.Values(fams)))
	var outcomes float64
	for _, m := range fams["pktengine_frame_outcomes_total"].GetMetric() {
		outcomes += m.GetCounter().GetValue()
	}
	if frames := got["pktengine_frames_total"]; frames != 10 || outcomes != frames {
		t.Errorf("frames %v, outcomes %v", frames, outcomes)
	}
	for series, want := range map[string]float64{
		`pktengine_udp_in_datagrams_total`:                                                 7,
		`pktengine_frame_outcomes_total{outcome="delivered"}`:                              7,
		`pktengine_frame_outcomes_total{outcome="other-host"}`:                             1,
		`pktengine_port_in_datagrams_total{local="*:7",service="echo"}`:                    5,
		`pktengine_port_queue_length{local="198.18.0.1:5000",service=""}`:                  3,
		`pktengine_port_queue_capacity{local="[fd00::1]:53",service="a"b\c` + "\n" + `d"}`: 16,
		`pktengine_link_downs_total`:                                                       2,
	} {
		if v, ok := got[series]; !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v", series, v, ok, want)
		}
	}
}

// TestPromtool has Prometheus's own checker parse and lint a scrape.
// promtool comes with Debian's prometheus package.
func TestPromtool(t *testing.T) {
	promtool := labtest.NeedTool(t, "promtool")
	body := scrape(t, trafficSnapshot())
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(body)
	out, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) != 0 {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}

	// promtool can fail: a counter without its _total suffix is a lint
	// problem.
	cmd = exec.Command(promtool, "check", "metrics")
	cmd.Stdin = io.MultiReader(strings.NewReader("# HELP pktengine_bad A counter.\n# TYPE pktengine_bad counter\npktengine_bad 1\n"))
	if out, err := cmd.CombinedOutput(); err == nil {
		t.Errorf("promtool accepted a badly named counter:\n%s", out)
	}
}

// backendSnapshot is a snapshot that says its backend.
type backendSnapshot struct {
	snapshot
	backend engine.Backend
	mode    string
}

func (s *backendSnapshot) Backend() (engine.Backend, string) { return s.backend, s.mode }

// TestCollectorBackendInfo: a source that says its backend gets the
// pktengine_backend_info series; one that does not, none.
func TestCollectorBackendInfo(t *testing.T) {
	src := &backendSnapshot{snapshot: *trafficSnapshot(), backend: engine.BackendXDP, mode: "copy"}
	got := gather(t, NewCollector(src))
	if v, ok := got[`pktengine_backend_info{backend="xdp",xdp_mode="copy"}`]; !ok || v != 1 {
		t.Errorf("backend info %v (present %v); series: %v", v, ok, slices.Sorted(maps.Keys(got)))
	}
	for series := range gather(t, NewCollector(trafficSnapshot())) {
		if strings.HasPrefix(series, "pktengine_backend_info") {
			t.Errorf("%s from a source that does not say its backend", series)
		}
	}
}
