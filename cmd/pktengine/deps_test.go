package main

import (
	"errors"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/pktengine/pktengine/internal/labtest"
)

// TestBinaryDoesNotLinkTesting: the pktengine binary must not link the
// testing package, nor the test-only helpers of internal/labtest. A plain
// library that imports testing (internal/lab once did, for a helper that
// took a testing.TB) brings testing's flags and code into every program
// that imports it.
func TestBinaryDoesNotLinkTesting(t *testing.T) {
	goTool := labtest.NeedTool(t, "go")
	// The test runs in the package's directory: "." is cmd/pktengine,
	// without its test files, for every platform's build of it.
	for _, goos := range []string{"linux", "darwin"} {
		cmd := exec.Command(goTool, "list", "-deps", ".")
		cmd.Env = append(cmd.Environ(), "GOOS="+goos)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("GOOS=%s go list -deps: %v\n%s", goos, err, stderrOf(err))
		}
		deps := strings.Fields(string(out))
		if len(deps) < 10 || !slices.Contains(deps, "github.com/pktengine/pktengine/internal/lab") {
			t.Fatalf("GOOS=%s go list -deps lists %d packages, without internal/lab:\n%s", goos, len(deps), out)
		}
		for _, pkg := range []string{"testing", "github.com/pktengine/pktengine/internal/labtest"} {
			if slices.Contains(deps, pkg) {
				t.Errorf("GOOS=%s: the pktengine binary links %s", goos, pkg)
			}
		}
	}
}

func stderrOf(err error) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return string(ee.Stderr)
	}
	return ""
}
