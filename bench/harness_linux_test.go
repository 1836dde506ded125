//go:build linux

package bench

import (
	"bytes"
	"context"
	"io"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/pktengine/pktengine/internal/labtest"
)

// logWriter sends the harness's progress lines to the test log.
type logWriter struct{ t *testing.T }

func (w logWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

// logTable writes rep's tables to the test log.
func logTable(t *testing.T, rep interface{ WriteTable(io.Writer) error }) {
	var table bytes.Buffer
	rep.WriteTable(&table)
	t.Log("\n" + table.String())
}

// TestLabRun runs the whole harness with tiny trials: every responder
// answers, the searches find rates, the generators are compared, the
// allocation figures tell the kernel's per-datagram address from the
// engine's nothing, and the lab is gone afterwards.
func TestLabRun(t *testing.T) {
	labtest.NeedPrivileges(t)
	cfg := Config{
		Trials: 1, TrialDuration: 60 * time.Millisecond, Drain: 40 * time.Millisecond,
		Precision: 0.1, MaxSteps: 3, LatencyLoads: []float64{0.5},
		RPS: true, // the longer path: steering and the line rate
	}
	// Executable is empty: the children run from this test binary (TestMain).
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rep, err := Run(ctx, &cfg, logWriter{t})
	if err != nil {
		t.Fatal(err)
	}
	logTable(t, rep)

	if len(rep.Responders) != len(Responders()) {
		t.Fatalf("%d responders measured", len(rep.Responders))
	}
	found := 0
	for _, rr := range rep.Responders {
		if rr.Error != "" {
			t.Errorf("%s: %s", rr.Name, rr.Error)
			continue
		}
		// On a busy machine a 60 ms trial can lose a frame at any rate,
		// so a single responder's search may find nothing; but every
		// search ran, and the unpaced trial got replies.
		if len(rr.Searches) != 1 || len(rr.Searches[0].Points) < 2 && !rr.GeneratorLimited || rr.MaxSent.Median <= 0 || rr.MaxDelivered.Median <= 0 {
			t.Errorf("%s: %d searches, unpaced sent %v delivered %v", rr.Name, len(rr.Searches), rr.MaxSent, rr.MaxDelivered)
		}
		if rr.ZeroLoss.Median > 0 {
			found++
			if len(rr.Latency) != 1 || len(rr.Latency[0].Points) != 1 {
				t.Errorf("%s: latency %+v", rr.Name, rr.Latency)
			}
		}
		if rr.Alloc.Replies == 0 || rr.AllocUnpaced.Replies == 0 {
			t.Errorf("%s: no replies counted: %+v", rr.Name, rr.Alloc)
		}
		// net.UDPConn.ReadFrom and ipv4.PacketConn.ReadBatch allocate
		// the source address of every datagram; the engine nothing.
		if rr.Engine && rr.AllocUnpaced.MallocsPerReply >= 0.01 {
			t.Errorf("%s: %.3g allocations per reply", rr.Name, rr.AllocUnpaced.MallocsPerReply)
		}
		if !rr.Engine && rr.Alloc.MallocsPerReply < 1 {
			t.Errorf("%s: %.3g allocations per reply, want at least the address", rr.Name, rr.Alloc.MallocsPerReply)
		}
	}
	if found == 0 {
		t.Error("no responder passed a single trial")
	}
	g := rep.Generator
	if g == nil || g.Error != "" || g.Ours.Median <= 0 || g.Line.Median <= 0 || len(g.Backends) != 3 || g.Chosen == "" {
		t.Fatalf("generator comparison %+v", g)
	}
	for _, b := range g.Backends {
		if b.Error != "" || b.Arrived.Median <= 0 || b.Alloc.Replies == 0 {
			t.Errorf("gen --backend %s: %+v", b.Backend, b)
		}
	}
	if _, err := exec.LookPath("trafgen"); err == nil && (g.TrafgenError != "" || g.Trafgen.Median <= 0) {
		t.Errorf("trafgen: %s", g.TrafgenError)
	}
	if len(rep.Goals) != 12 || rep.Machine.Kernel == "" {
		t.Errorf("goals %d, machine %+v", len(rep.Goals), rep.Machine)
	}
	var svg bytes.Buffer
	if err := rep.WriteSVG(&svg); err != nil || !strings.Contains(svg.String(), "engine-v2") {
		t.Errorf("svg: %v", err)
	}
	if left := labtest.Namespaces(t); len(left) != 0 {
		t.Errorf("namespaces left behind: %v", left)
	}
}
