//go:build linux

package engine

import (
	"time"

	"golang.org/x/sys/unix"
)

// threadCPU returns the user+system time of the calling OS thread; lock
// the goroutine to its thread around a measurement.
func threadCPU() time.Duration {
	var ru unix.Rusage
	unix.Getrusage(unix.RUSAGE_THREAD, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
