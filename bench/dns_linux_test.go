//go:build linux

package bench

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/pktengine/pktengine/internal/knot"
	"github.com/pktengine/pktengine/internal/labtest"
)

// buildDnsd builds examples/dnsd into a temporary directory.
func buildDnsd(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "dnsd")
	out, err := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-o", bin, "github.com/pktengine/pktengine/examples/dnsd").CombinedOutput()
	if err != nil {
		t.Fatalf("go build examples/dnsd: %v\n%s", err, out)
	}
	return bin
}

// needProgram returns the path of a program the test runs: on $PATH or in
// sbin, else the test skips (fails under CI=true).
func needProgram(t *testing.T, name string) string {
	t.Helper()
	if p, err := knot.LookPath(name); err == nil {
		return p
	}
	return labtest.NeedTool(t, name)
}

// TestDNSLabRun runs the whole DNS benchmark with tiny trials: every server
// starts pinned (Knot's threads re-pinned), answers the generator right,
// the searches run, dnsperf runs beside, dnsd's allocations are read (the
// kernel mode's dns.Server allocates per query, inline mode does not),
// and the lab is gone afterwards.
func TestDNSLabRun(t *testing.T) {
	labtest.NeedPrivileges(t)
	cfg := DNSConfig{
		Names: 200, Trials: 1, TrialDuration: 60 * time.Millisecond, Drain: 40 * time.Millisecond,
		Precision: 0.2, MaxSteps: 2, LatencyLoads: []float64{0.5}, LossTolerance: 0.001,
		Dnsd: buildDnsd(t), Knotd: needProgram(t, "knotd"), Dnsperf: needProgram(t, "dnsperf"),
	}
	// Executable is empty: the children run from this test binary (TestMain).
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	rep, err := RunDNS(ctx, &cfg, logWriter{t})
	if err != nil {
		t.Fatal(err)
	}
	logTable(t, rep)

	if len(rep.Responders) != len(DNSResponders()) || rep.Queries.Queries != 440 || rep.Queries.NXDomain != 40 || rep.Queries.Frame < 64 {
		t.Fatalf("%d responders, queries %+v", len(rep.Responders), rep.Queries)
	}
	found := 0
	for _, rr := range rep.Responders {
		if rr.Error != "" {
			t.Errorf("%s: %s", rr.Name, rr.Error)
			continue
		}
		if len(rr.Searches) != 1 || rr.MaxSent.Median <= 0 || rr.MaxDelivered.Median <= 0 {
			t.Errorf("%s: %d searches, unpaced sent %v answered %v", rr.Name, len(rr.Searches), rr.MaxSent, rr.MaxDelivered)
		}
		if rr.Wrong != 0 {
			t.Errorf("%s: %d wrong answers", rr.Name, rr.Wrong)
		}
		// Knot runs a handful of threads, a Go program a few more.
		if rr.Threads < 2 {
			t.Errorf("%s: %d threads pinned", rr.Name, rr.Threads)
		}
		if rr.ZeroLoss.Median > 0 {
			found++
			if len(rr.Latency) != 1 || len(rr.Latency[0].Points) != 1 {
				t.Errorf("%s: latency %+v", rr.Name, rr.Latency)
			}
			// dnsperf ran at half the rate if it can offer that.
			if rate := rr.ZeroLoss.Median / 2; rate <= cfg.DnsperfMax && (len(rr.Dnsperf) != 1 || rr.Dnsperf[0].Error != "" || rr.Dnsperf[0].Sent == 0 || rr.Dnsperf[0].Completed == 0) {
				t.Errorf("%s: dnsperf at %.0f/s: %+v", rr.Name, rate, rr.Dnsperf)
			}
		}
		switch {
		case strings.HasPrefix(rr.Name, "knot-"):
			if rr.Alloc.Replies != 0 {
				t.Errorf("%s: allocations measured: %+v", rr.Name, rr.Alloc)
			}
		case rr.Alloc.Replies == 0 || rr.AllocUnpaced.Replies == 0:
			t.Errorf("%s: no answers counted: %+v", rr.Name, rr.Alloc)
		case rr.Name == "dnsd-inline" && rr.AllocUnpaced.MallocsPerReply >= 0.01:
			t.Errorf("%s: %.3g allocations per answer", rr.Name, rr.AllocUnpaced.MallocsPerReply)
		case rr.Name == "dnsd-kernel" && rr.Alloc.MallocsPerReply < 1:
			// dns.Server unpacks every query into a dns.Msg.
			t.Errorf("%s: %.3g allocations per answer, want at least one", rr.Name, rr.Alloc.MallocsPerReply)
		}
	}
	if found == 0 {
		t.Error("no server passed a single trial")
	}
	if len(rep.Goals) != 3 || rep.Machine.Kernel == "" || !strings.Contains(rep.Queries.Versions, "Knot DNS") {
		t.Errorf("goals %d, machine %+v, versions %q", len(rep.Goals), rep.Machine, rep.Queries.Versions)
	}
	var svg bytes.Buffer
	if err := rep.WriteSVG(&svg); err != nil || !strings.Contains(svg.String(), "dnsd-inline") {
		t.Errorf("svg: %v", err)
	}
	if left := labtest.Namespaces(t); len(left) != 0 {
		t.Errorf("namespaces left behind: %v", left)
	}
}
