package bench

import (
	"os"
	"testing"
)

// TestMain lets the test binary serve as the harness's children, as the
// pktengine binary does.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == ChildCommand {
		os.Exit(ChildMain(os.Args[2:]))
	}
	os.Exit(m.Run())
}
