//go:build linux

package robust_test

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestMain fails the run if the tests leave file descriptors or
// goroutines behind: every engine, ring, lab and socket they open must be
// gone once they return, whether they passed or failed.
func TestMain(m *testing.M) {
	// The runtime's network poller opens its epoll and eventfd
	// descriptors on first use and keeps them: start it before counting.
	if r, w, err := os.Pipe(); err == nil {
		r.Close()
		w.Close()
	}
	fds0 := openFDs()
	g0 := runtime.NumGoroutine()
	code := m.Run()
	if err := checkLeaks(fds0, g0, 10*time.Second); err != nil {
		fmt.Fprintln(os.Stderr, "robust:", err)
		code = 1
	}
	os.Exit(code)
}

// checkLeaks waits up to wait for the process to be back at fds0 and g0
// goroutines (closing and exiting take a moment), then says what is left.
func checkLeaks(fds0 map[int]string, g0 int, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for {
		fds := openFDs()
		var leaked []string
		for _, fd := range slices.Sorted(maps.Keys(fds)) {
			if _, ok := fds0[fd]; !ok {
				leaked = append(leaked, fmt.Sprintf("%d -> %s", fd, fds[fd]))
			}
		}
		g := runtime.NumGoroutine()
		if len(leaked) == 0 && g <= g0 {
			return nil
		}
		if time.Now().After(deadline) {
			var b strings.Builder
			if len(leaked) > 0 {
				fmt.Fprintf(&b, "%d file descriptors leaked: %s\n", len(leaked), strings.Join(leaked, ", "))
			}
			if g > g0 {
				fmt.Fprintf(&b, "%d goroutines before the tests, %d after:\n", g0, g)
				pprof.Lookup("goroutine").WriteTo(&b, 1)
			}
			return fmt.Errorf("leaks:\n%s", b.String())
		}
		runtime.GC() // runs finalizers of anything dropped unclosed
		time.Sleep(50 * time.Millisecond)
	}
}

// openFDs returns the process's open file descriptors and what each
// refers to, leaving out the directory read to list them.
func openFDs() map[int]string {
	const dir = "/proc/self/fd"
	entries, err := os.ReadDir(dir)
	if err != nil {
		panic(err)
	}
	fds := make(map[int]string, len(entries))
	self := fmt.Sprintf("/proc/%d/fd", os.Getpid())
	for _, e := range entries {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		target, err := os.Readlink(filepath.Join(dir, e.Name()))
		if err != nil || target == self {
			continue // gone meanwhile, or the listing itself
		}
		fds[fd] = target
	}
	return fds
}
