//go:build linux

package loadgen

import (
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// pinThread locks the calling goroutine to its OS thread, restricts the
// thread to cpu and sets its timer slack to 1 µs, so that the pacer's
// nanosleep wakes on time rather than up to 50 µs late. The caller must
// not unlock: the thread keeps its affinity and slack.
func pinThread(cpu int) error {
	runtime.LockOSThread()
	var set unix.CPUSet
	set.Set(cpu)
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		return os.NewSyscallError("sched_setaffinity", err)
	}
	return os.NewSyscallError("prctl PR_SET_TIMERSLACK", unix.Prctl(unix.PR_SET_TIMERSLACK, 1000, 0, 0, 0))
}
