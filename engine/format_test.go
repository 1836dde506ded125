package engine

import (
	"bufio"
	"encoding/json"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"github.com/pktengine/pktengine/internal/pcap"
	"github.com/pktengine/pktengine/ring"
)

func trafficRig(t *testing.T) *testRig {
	r := newRig(t, nil)
	r.e.HandleService(ap(netip.Addr{}, 7), Echo)
	r.e.Bind(ap(owned4, 5000))
	r.one(udpFrame(t, ap(peer4, 1), ap(owned4, 7), []byte("a")), ring.Meta{})
	r.one(udpFrame(t, ap(peer4, 1), ap(owned4, 5000), []byte("b")), ring.Meta{})
	r.one(udpFrame(t, ap(peer4, 1), ap(owned4, 5001), []byte("c")), ring.Meta{})
	r.one(arpRequest(t, peer4, owned4), ring.Meta{})
	return r
}

// TestPrometheus parses the exposition line by line: every sample
// belongs to a declared metric, and the outcome samples add up to the
// frames total.
func TestPrometheus(t *testing.T) {
	r := trafficRig(t)
	rec := httptest.NewRecorder()
	MetricsHandler(r.e).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Errorf("Content-Type %q", ct)
	}
	declared := map[string]string{}
	values := map[string]float64{}
	var outcomes, frames float64
	sc := bufio.NewScanner(strings.NewReader(rec.Body.String()))
	for sc.Scan() {
		line := sc.Text()
		if f, ok := strings.CutPrefix(line, "# TYPE "); ok {
			name, typ, _ := strings.Cut(f, " ")
			declared[name] = typ
			continue
		}
		if strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		series, num := line[:i], line[i+1:]
		v, err := strconv.ParseFloat(num, 64)
		if err != nil {
			t.Fatalf("bad sample %q", line)
		}
		name, _, _ := strings.Cut(series, "{")
		if _, ok := declared[name]; !ok {
			t.Errorf("sample of undeclared metric: %q", line)
		}
		values[series] = v
		switch name {
		case "pktengine_frame_outcomes_total":
			outcomes += v
		case "pktengine_frames_total":
			frames = v
		}
	}
	if frames != 4 || outcomes != frames {
		t.Errorf("frames %v, outcomes %v", frames, outcomes)
	}
	for series, want := range map[string]float64{
		`pktengine_udp_in_datagrams_total`:                                  2,
		`pktengine_udp_no_ports_total`:                                      1,
		`pktengine_arp_answered_total`:                                      1,
		`pktengine_frame_outcomes_total{outcome="delivered"}`:               2,
		`pktengine_frame_outcomes_total{outcome="arp"}`:                     1,
		`pktengine_port_in_datagrams_total{local="*:7",service="echo"}`:     1,
		`pktengine_port_out_datagrams_total{local="*:7",service="echo"}`:    1,
		`pktengine_port_queue_length{local="198.18.0.1:5000",service=""}`:   1,
		`pktengine_port_queue_capacity{local="198.18.0.1:5000",service=""}`: 1024,
		`pktengine_link_downs_total`:                                        0,
		`pktengine_link_ups_total`:                                          0,
		`pktengine_service_guard_drops_total{guard="total"}`:                0,
	} {
		if got, ok := values[series]; !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", series, got, ok, want)
		}
	}
}

func TestTextFormats(t *testing.T) {
	r := trafficRig(t)
	c := r.e.Counters()
	var b strings.Builder
	WriteNetstat(&b, &c.UDP)
	for _, want := range []string{"Udp:\n", "    2 packets received\n", "    1 packets to unknown port received\n", "    1 packets sent\n", "IgnoredMulti: 0\n"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("netstat output lacks %q:\n%s", want, b.String())
		}
	}
	b.Reset()
	WritePorts(&b, r.e.Ports())
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 3 || !strings.Contains(lines[1], "*:7") || !strings.Contains(lines[1], "echo") ||
		!strings.Contains(lines[1], "inline") || !strings.Contains(lines[2], "1/1024") {
		t.Errorf("port table:\n%s", b.String())
	}
	b.Reset()
	WriteOutcomes(&b, &c)
	if !strings.Contains(b.String(), "2 delivered") || !strings.Contains(b.String(), "1 no-port") {
		t.Errorf("outcomes:\n%s", b.String())
	}
	b.Reset()
	c.GuardTotalLimited, c.LinkDowns, c.LinkUps = 5, 2, 1
	WriteEngine(&b, &c)
	for _, want := range []string{"Engine:\n", "    3 frames sent, 0 transmit errors\n", "1 ARP and 0 NDP requests answered",
		"0 rate-limited, 5 over the total cap\n", "    link: 2 down, 1 up\n", "    kernel ring: 0 packets"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("engine counters lack %q:\n%s", want, b.String())
		}
	}
}

func TestCountersJSON(t *testing.T) {
	r := trafficRig(t)
	c := r.e.Counters()
	c.LinkDowns, c.LinkUps, c.GuardTotalLimited = 3, 2, 1
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"Outcomes":{"arp":1,"delivered":2,"no-port":1}`) {
		t.Errorf("outcomes in JSON: %s", b)
	}
	for _, want := range []string{`"LinkDowns":3`, `"LinkUps":2`, `"GuardTotalLimited":1`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("JSON lacks %s: %s", want, b)
		}
	}
	var back Counters
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back != c {
		t.Errorf("round trip changed the counters:\n%+v\n%+v", back, c)
	}
	if err := json.Unmarshal([]byte(`{"Outcomes":{"bogus":1}}`), &back); err == nil {
		t.Error("unknown outcome accepted")
	}
}

// recordWriter is a FrameWriter that keeps what it is given.
type recordWriter struct {
	frames  [][]byte
	origLen []int
}

func (w *recordWriter) WriteFrame(ns int64, f []byte, origLen int) error {
	w.frames = append(w.frames, append([]byte(nil), f...))
	w.origLen = append(w.origLen, origLen)
	return nil
}

func TestCapture(t *testing.T) {
	for _, dropped := range []bool{false, true} {
		rec := &recordWriter{}
		r := newRig(t, &Config{Capture: rec, CaptureDropped: dropped})
		r.e.HandleService(ap(netip.Addr{}, 7), Echo)
		echo := udpFrame(t, ap(peer4, 1), ap(owned4, 7), []byte("kept"))
		bad := clone(echo)
		bad[len(bad)-1] ^= 0xff // breaks the UDP checksum
		r.one(echo, ring.Meta{Status: tpStatusVLANValid, VLANTCI: 5, Length: len(echo)})
		r.one(bad, ring.Meta{})
		want := 2
		if dropped {
			want = 1
		}
		if len(rec.frames) != want {
			t.Fatalf("CaptureDropped=%v: %d frames recorded, want %d", dropped, len(rec.frames), want)
		}
		if !dropped {
			// The stripped tag is put back for the file.
			if f := rec.frames[0]; len(f) != len(echo)+4 || f[12] != 0x81 || f[15] != 5 || rec.origLen[0] != len(echo)+4 {
				t.Errorf("captured %x (orig %d)", f, rec.origLen[0])
			}
		}
		if last := rec.frames[len(rec.frames)-1]; string(last) != string(bad) {
			t.Errorf("the dropped frame was not recorded as received")
		}
	}
}

// The pcap writer the CLI uses is a FrameWriter.
var _ FrameWriter = (*pcap.Writer)(nil)
