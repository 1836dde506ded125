package knot

import (
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"

	"golang.org/x/sys/unix"
)

// threads lists the thread IDs of process pid.
func threads(pid int) ([]int, error) {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return nil, err
	}
	var tids []int
	for _, task := range tasks {
		if tid, err := strconv.Atoi(task.Name()); err == nil {
			tids = append(tids, tid)
		}
	}
	return tids, nil
}

// PinThreads pins every thread of process pid to cpu and returns how many
// it pinned. Knot DNS sets its workers' CPU affinity itself (its XDP
// worker lands on CPU 0, beside a load generator), so a fair comparison
// re-pins every thread in /proc/PID/task once it has started them all;
// `taskset -a -p -c CPU PID` does the same from a shell.
func PinThreads(pid, cpu int) (int, error) {
	tids, err := threads(pid)
	if err != nil {
		return 0, err
	}
	var set unix.CPUSet
	set.Set(cpu)
	for _, tid := range tids {
		if err := unix.SchedSetaffinity(tid, &set); err != nil {
			return 0, fmt.Errorf("knot: pin thread %d of %d: %w", tid, pid, err)
		}
	}
	return len(tids), nil
}

// ThreadCPUs returns the CPUs each thread of pid may run on.
func ThreadCPUs(pid int) (map[int][]int, error) {
	tids, err := threads(pid)
	if err != nil {
		return nil, err
	}
	cpus := make(map[int][]int)
	for _, tid := range tids {
		var set unix.CPUSet
		if err := unix.SchedGetaffinity(tid, &set); err != nil {
			return nil, fmt.Errorf("knot: affinity of thread %d of %d: %w", tid, pid, err)
		}
		for c := range max(runtime.NumCPU(), 1024) {
			if set.IsSet(c) {
				cpus[tid] = append(cpus[tid], c)
			}
		}
	}
	return cpus, nil
}

// CheckPinned checks that every thread of pid may run on cpu only, and
// returns how many threads it has.
func CheckPinned(pid, cpu int) (int, error) {
	cpus, err := ThreadCPUs(pid)
	if err != nil {
		return 0, err
	}
	for tid, cs := range cpus {
		if !slices.Equal(cs, []int{cpu}) {
			return 0, fmt.Errorf("knot: thread %d of process %d may run on CPUs %v, not only on %d", tid, pid, cs, cpu)
		}
	}
	return len(cpus), nil
}
