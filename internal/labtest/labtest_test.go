package labtest

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
)

// recorder is a testing.TB that records how a helper ended the test:
// Skipf and Fatalf record and stop the goroutine, as the real ones do.
type recorder struct {
	testing.TB // nil: calling anything not overridden panics
	ended      string
	msg        string
}

func (r *recorder) Helper() {}

func (r *recorder) Skipf(format string, args ...any) {
	r.ended, r.msg = "skip", fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func (r *recorder) Fatalf(format string, args ...any) {
	r.ended, r.msg = "fatal", fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// outcome runs fn with a recorder on a goroutine of its own and returns
// how it ended: "skip", "fatal" or "" for carrying on.
func outcome(fn func(tb testing.TB)) *recorder {
	r := &recorder{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(r)
	}()
	<-done
	return r
}

// TestNeedTool: a missing program skips the test with a message naming
// it, except under CI=true, where it fails the test; a present one
// carries on with its path.
func TestNeedTool(t *testing.T) {
	const missing = "pktengine-no-such-program"
	for _, tc := range []struct {
		ci, want string
	}{
		{"", "skip"},
		{"false", "skip"},
		{"true", "fatal"},
	} {
		t.Setenv("CI", tc.ci)
		r := outcome(func(tb testing.TB) { NeedTool(tb, missing) })
		if r.ended != tc.want || !strings.Contains(r.msg, missing) || !strings.Contains(r.msg, "scripts/deps.sh") {
			t.Errorf("CI=%q, missing program: ended %q with %q, want %s naming it and scripts/deps.sh", tc.ci, r.ended, r.msg, tc.want)
		}
		var path string
		r = outcome(func(tb testing.TB) { path = NeedTool(tb, "sh") })
		if r.ended != "" || !strings.HasSuffix(path, "/sh") {
			t.Errorf("CI=%q, sh: ended %q (%s) with path %q, want it found", tc.ci, r.ended, r.msg, path)
		}
	}
}
