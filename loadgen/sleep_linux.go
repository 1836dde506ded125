//go:build linux

package loadgen

import (
	"time"

	"golang.org/x/sys/unix"
)

// preciseSleep sleeps for d with nanosleep(2), which the kernel serves
// from a high-resolution timer, blocking the thread (the runtime hands
// its P to another thread meanwhile). It reports whether it slept.
func preciseSleep(d time.Duration) bool {
	ts := unix.NsecToTimespec(int64(d))
	unix.Nanosleep(&ts, nil)
	return true
}
