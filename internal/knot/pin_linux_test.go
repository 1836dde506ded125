package knot

import (
	"os/exec"
	"runtime"
	"strconv"
	"testing"
)

// TestPinThreads pins a child process of the test to one CPU, thread by
// thread, and checks it; then widens it again and CheckPinned fails.
func TestPinThreads(t *testing.T) {
	if runtime.NumCPU() < 2 {
		t.Skip("needs two CPUs to tell pinned from unpinned")
	}
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	pid := cmd.Process.Pid
	cpu := runtime.NumCPU() - 1
	n, err := PinThreads(pid, cpu)
	if err != nil || n < 1 {
		t.Fatalf("PinThreads: %d threads, %v", n, err)
	}
	if m, err := CheckPinned(pid, cpu); err != nil || m != n {
		t.Fatalf("CheckPinned after pinning %d threads: %d, %v", n, m, err)
	}
	if _, err := CheckPinned(pid, 0); err == nil {
		t.Errorf("CheckPinned(pid, 0) passed for threads pinned to %d", cpu)
	}
	if out, err := exec.Command("taskset", "-a", "-p", "-c", "0,"+itoa(cpu), itoa(pid)).CombinedOutput(); err != nil {
		t.Skipf("taskset: %v: %s", err, out)
	}
	if _, err := CheckPinned(pid, cpu); err == nil {
		t.Error("CheckPinned passed for threads that may run on two CPUs")
	}
	cpus, err := ThreadCPUs(pid)
	if err != nil || len(cpus[pid]) != 2 {
		t.Errorf("ThreadCPUs: %v, %v", cpus, err)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
