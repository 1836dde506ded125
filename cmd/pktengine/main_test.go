package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/pktengine/pktengine/internal/lab"
	"github.com/pktengine/pktengine/internal/labtest"
)

// beMain makes the test binary act as the pktengine command when a test
// starts it as a child (demo and serve tests run the engine in another
// network namespace through `ip netns exec`, which needs a program).
const beMain = "PKTENGINE_TEST_BE_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(beMain) == "1" {
		ctx, stop := signalContext()
		code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
		stop()
		os.Exit(code)
	}
	os.Exit(m.Run())
}

// pktengineIn returns the command that runs this test binary as
// `pktengine args...` in h's network namespace (see beMain).
func pktengineIn(ctx context.Context, t *testing.T, h *lab.Host, args ...string) *exec.Cmd {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := h.Command(ctx, self, args...)
	cmd.Env = append(os.Environ(), beMain+"=1")
	return cmd
}

// TestDemo runs `pktengine demo` — the README's main command — end to end:
// lab, engine child, kernel UDP client over IPv4 and IPv6, ICMP port
// unreachable, stat, SIGTERM.
func TestDemo(t *testing.T) {
	labtest.NeedPrivileges(t)
	t.Setenv(beMain, "1")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	if code := run(ctx, []string{"demo"}, &out, &errb); code != 0 {
		t.Fatalf("demo exited %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errb.String())
	}
	for _, want := range []string{
		`echo over IPv4             198.18.0.10:7      -> "TEST"`,
		`echo over IPv6             [fd00::10]:7       -> "TEST"`,
		"connection refused",
		"packets received",
		"engine: exited cleanly",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("demo output lacks %q:\n%s", want, out.String())
		}
	}
}
