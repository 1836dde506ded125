package lab

import "os"

// TB is the part of testing.TB that New and SkipUnlessPrivileged use. It is
// declared here so that lab does not import testing.
//
// Deprecated: tests use internal/labtest.
type TB interface {
	Helper()
	Cleanup(func())
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
	Skipf(format string, args ...any)
}

// New creates a lab for a test and removes it when the test ends.
//
// Deprecated: use labtest.New. New remains until ring's tests, which are
// being rewritten on another branch, have moved to labtest.
func New(tb TB, cfg *Config) *Lab {
	tb.Helper()
	SkipUnlessPrivileged(tb)
	l, err := Create(cfg)
	if err != nil {
		tb.Fatalf("lab: %v", err)
	}
	tb.Cleanup(func() {
		if err := l.Close(); err != nil {
			tb.Errorf("lab: %v", err)
		}
	})
	return l
}

// SkipUnlessPrivileged skips the test unless the process can build a lab,
// and fails it instead when CI=true.
//
// Deprecated: use labtest.NeedPrivileges. SkipUnlessPrivileged remains
// until ring's tests have moved to labtest.
func SkipUnlessPrivileged(tb TB) {
	tb.Helper()
	if err := CheckPrivileges(); err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("lab: privileged test cannot run: %v (CI=true: failing instead of skipping)", err)
		}
		tb.Skipf("lab: skipping privileged test: %v", err)
	}
}
