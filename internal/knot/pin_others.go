//go:build !linux

package knot

import (
	"fmt"
	"runtime"
)

var errUnsupported = fmt.Errorf("knot: thread affinity is not supported on %s", runtime.GOOS)

// PinThreads pins every thread of process pid to cpu; it needs Linux.
func PinThreads(pid, cpu int) (int, error) { return 0, errUnsupported }

// ThreadCPUs returns the CPUs each thread of pid may run on; it needs Linux.
func ThreadCPUs(pid int) (map[int][]int, error) { return nil, errUnsupported }

// CheckPinned checks that every thread of pid may run on cpu only; it
// needs Linux.
func CheckPinned(pid, cpu int) (int, error) { return 0, errUnsupported }
