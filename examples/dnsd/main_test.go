package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/pktengine/pktengine/examples/dnsd/internal/dnstest"
	"github.com/pktengine/pktengine/examples/dnsd/zone"
)

const (
	testZone   = "testdata/example.com.zone"
	testOrigin = "example.com."
	goldenFile = "testdata/knot-answers.txt"
)

// TestMain lets the lab tests run this test binary as dnsd itself.
func TestMain(m *testing.M) {
	if os.Getenv("DNSD_TEST_AS_DNSD") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestUsage(t *testing.T) {
	for _, c := range []struct {
		args []string
		want error
		text string
	}{
		{[]string{"--bogus"}, errUsage, "bogus"},
		{[]string{"--addr", "198.18.0.1"}, errUsage, "--zone is required"},
		{[]string{"--addr", "nonsense", "--zone", testZone}, errUsage, "--addr"},
		{[]string{"--addr", "198.18.0.1", "--zone", testZone, "--port", "0"}, errUsage, "--port"},
		{[]string{"--addr", "198.18.0.1", "--zone", testZone, "--mode", "fast"}, errUsage, "--mode"},
		{[]string{"--addr", "198.18.0.1", "--zone", testZone, "--mode", "inline"}, errUsage, "--iface"},
		{[]string{"--addr", "198.18.0.1", "--zone", testZone, "extra"}, errUsage, "unexpected"},
		{[]string{"--addr", "198.18.0.1", "--zone", testZone, "--mode", "conn"}, errUsage, "--iface"},
		{[]string{"--addr", "198.18.0.1", "--zone", "testdata/missing.zone", "--mode", "kernel"}, os.ErrNotExist, "missing.zone"},
	} {
		var out bytes.Buffer
		err := run(context.Background(), c.args, &out, &out)
		if !errors.Is(err, c.want) || !strings.Contains(err.Error()+out.String(), c.text) {
			t.Errorf("run(%q) = %v, want %v mentioning %q", c.args, err, c.want, c.text)
		}
	}
}

func TestPrintQueries(t *testing.T) {
	var out, errs bytes.Buffer
	if err := run(context.Background(), []string{"--zone", testZone, "--print-queries"}, &out, &errs); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) < 50 || lines[0] != "example.com. A" || !slices.Contains(lines, "_sip._udp.example.com. SRV") {
		t.Errorf("%d lines: %q...", len(lines), lines[:min(5, len(lines))])
	}
}

// TestInlineAllocs: the inline handler's work per query, everything but
// the engine's Reply, allocates nothing.
func TestInlineAllocs(t *testing.T) {
	z, err := zone.LoadFile(testZone, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	gs, err := dnstest.ReadGoldenFile(goldenFile)
	if err != nil {
		t.Fatal(err)
	}
	var st stats
	h := newInlineHandler(z, 1500, &st)
	sent := 0
	// The engine's ReplyInPlace hands the query in a frame with room up
	// to the MTU: the answer written over it is the one written apart.
	frame := make([]byte, 1472)
	apart := make([]byte, h.size)
	for _, g := range gs {
		want := h.answer(g.Query, apart)
		n, ok := h.answerOver(frame[:copy(frame, g.Query)])
		if !ok || !bytes.Equal(frame[:n], want) {
			t.Fatalf("%s: written over the query:\n%x\nwritten apart:\n%x", g.Name, frame[:n], want)
		}
	}
	if _, ok := h.answerOver(frame[: 12 : zone.MinResponseBuffer-1]); ok {
		t.Error("answered in a buffer smaller than zone.MinResponseBuffer")
	}
	allocs := testing.AllocsPerRun(10, func() {
		for _, g := range gs {
			n, _ := h.answerOver(frame[:copy(frame, g.Query)])
			sent += n
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations for %d queries", allocs, len(gs))
	}
	if sent == 0 || st.kinds[zone.Answer].Load() == 0 || st.kinds[zone.Dropped].Load() == 0 {
		t.Errorf("nothing answered or dropped: %v", st.attrs())
	}
}
