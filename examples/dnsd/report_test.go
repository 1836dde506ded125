package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"testing"

	"github.com/pktengine/pktengine/examples/dnsd/zone"
)

// reportSink keeps TestReport's allocations on the heap.
var reportSink *[64]byte

func testStats() *stats {
	var st stats
	st.count(zone.Outcome{Kind: zone.Answer})
	st.count(zone.Outcome{Kind: zone.Answer, Truncated: true})
	st.count(zone.Outcome{Kind: zone.NXDomain})
	st.count(zone.Outcome{Kind: zone.Dropped})
	st.sendErrors.Add(1)
	return &st
}

func parseReport(t *testing.T, line []byte) map[string]uint64 {
	t.Helper()
	m := make(map[string]uint64)
	if err := json.Unmarshal(line, &m); err != nil {
		t.Fatalf("%q: %v", line, err)
	}
	return m
}

// TestReport writes the counters line three times: it has every counter;
// allocations between two lines show in the second; the lines themselves
// count for nothing.
func TestReport(t *testing.T) {
	var out bytes.Buffer
	r := &reporter{st: testStats(), w: &out}
	line := func() []byte {
		t.Helper()
		out.Reset()
		if err := r.report(); err != nil {
			t.Fatal(err)
		}
		if b := out.Bytes(); len(b) == 0 || b[len(b)-1] != '\n' || bytes.Count(b, []byte("\n")) != 1 {
			t.Fatalf("not one line: %q", b)
		}
		return bytes.Clone(out.Bytes())
	}
	first := parseReport(t, line())
	for k, want := range map[string]uint64{"answer": 2, "nxdomain": 1, "dropped": 1, "nodata": 0, "badvers": 0, "truncated": 1, "send_errors": 1, "answered": 3} {
		if got, ok := first[k]; !ok || got != want {
			t.Errorf("%s = %d (present %v), want %d", k, got, ok, want)
		}
	}
	if len(first) != int(zone.NumKinds)+6 {
		t.Errorf("%d fields: %v", len(first), first)
	}

	const n = 1000
	for range n {
		reportSink = new([64]byte)
	}
	second := parseReport(t, line())
	if d := second["mallocs"] - first["mallocs"]; d < n {
		t.Errorf("mallocs grew by %d over %d allocations", d, n)
	}
	if d := second["total_alloc"] - first["total_alloc"]; d < 64*n {
		t.Errorf("total_alloc grew by %d over %d bytes", d, 64*n)
	}

	// Two lines back to back, into the buffer as it is: what reporting
	// allocates (its line's buffer growing, say) is taken out.
	out.Reset()
	r.report()
	r.report()
	ls := bytes.SplitAfter(out.Bytes(), []byte("\n"))
	third, fourth := parseReport(t, ls[0]), parseReport(t, ls[1])
	if d := fourth["mallocs"] - third["mallocs"]; d != 0 {
		t.Errorf("mallocs grew by %d between two reports", d)
	}
}

// TestReportOnSignal: every signal on the channel is a line.
func TestReportOnSignal(t *testing.T) {
	pr, pw := io.Pipe()
	sigs := make(chan os.Signal)
	ctx, cancel := context.WithCancel(context.Background())
	wait := reportOnSignal(ctx, &reporter{st: testStats(), w: pw}, sigs)
	lines := bufio.NewScanner(pr)
	for range 3 {
		sigs <- os.Interrupt // any signal: the channel is the caller's
		if !lines.Scan() {
			t.Fatal(lines.Err())
		}
		if m := parseReport(t, lines.Bytes()); m["answered"] != 3 {
			t.Errorf("line %s", lines.Bytes())
		}
	}
	cancel()
	wait()
}
