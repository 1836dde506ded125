//go:build linux

package bench

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
)

// userHZ is the unit of the tick counts in /proc/stat and /proc/PID/stat
// (USER_HZ, 100 on every Linux architecture Go supports).
const userHZ = 100

// tickNs is one tick in nanoseconds.
const tickNs = 1e9 / userHZ

// cpuTicks are one CPU's counters from /proc/stat.
type cpuTicks struct {
	Busy    uint64 // user + nice + system
	Softirq uint64
}

// readCPUTicks reads the line of /proc/stat for cpu.
func readCPUTicks(cpu int) (cpuTicks, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return cpuTicks{}, err
	}
	return parseCPUTicks(b, cpu)
}

func parseCPUTicks(b []byte, cpu int) (cpuTicks, error) {
	name := "cpu" + strconv.Itoa(cpu)
	for line := range bytes.Lines(b) {
		f := strings.Fields(string(line))
		if len(f) < 8 || f[0] != name {
			continue
		}
		var v [7]uint64
		for i := range v {
			n, err := strconv.ParseUint(f[i+1], 10, 64)
			if err != nil {
				return cpuTicks{}, fmt.Errorf("/proc/stat %s: %w", name, err)
			}
			v[i] = n
		}
		// user nice system idle iowait irq softirq
		return cpuTicks{Busy: v[0] + v[1] + v[2], Softirq: v[6]}, nil
	}
	return cpuTicks{}, fmt.Errorf("/proc/stat has no %s", name)
}

// cpuSample is what a trial reads from /proc before and after its run:
// the responder CPU's ticks, the responder process's ticks and the
// kernel's backlog drops.
type cpuSample struct {
	cpu          cpuTicks
	own          uint64
	backlogDrops uint64
}

// sampleCPU reads the counters of CPU cpu and process pid.
func sampleCPU(cpu, pid int) (cpuSample, error) {
	var s cpuSample
	var err1, err2, err3 error
	s.cpu, err1 = readCPUTicks(cpu)
	s.own, err2 = readProcTicks(pid)
	s.backlogDrops, err3 = readBacklogDrops()
	return s, errors.Join(err1, err2, err3)
}

// setCPU fills in p's backlog drops and, given p.Replies, its CPU costs
// per reply between two samples.
func (p *Point) setCPU(before, after cpuSample) {
	p.BacklogDrops = after.backlogDrops - before.backlogDrops
	if p.Replies > 0 {
		p.CPU = float64(after.cpu.Busy-before.cpu.Busy) * tickNs / float64(p.Replies)
		p.OwnCPU = float64(after.own-before.own) * tickNs / float64(p.Replies)
		p.Softirq = float64(after.cpu.Softirq-before.cpu.Softirq) * tickNs / float64(p.Replies)
	}
}

// readProcTicks returns a process's user+system ticks, all threads.
func readProcTicks(pid int) (uint64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	return parseProcTicks(b)
}

func parseProcTicks(b []byte) (uint64, error) {
	// The command name can hold spaces and parentheses; the fields
	// after the last ')' are fixed. utime and stime are fields 14 and
	// 15, the 12th and 13th after it.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("malformed /proc/PID/stat")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("malformed /proc/PID/stat")
	}
	u, err1 := strconv.ParseUint(f[11], 10, 64)
	s, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("malformed /proc/PID/stat")
	}
	return u + s, nil
}

// machine describes the host.
func machine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), Go: runtime.Version(), LoadBefore: loadavg()}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = "Linux " + strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	return m
}

// loadavg returns the three load averages of /proc/loadavg.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// readBacklogDrops returns the frames dropped for a full per-CPU input
// backlog, summed over CPUs: the second column of /proc/net/softnet_stat.
func readBacklogDrops() (uint64, error) {
	b, err := os.ReadFile("/proc/net/softnet_stat")
	if err != nil {
		return 0, err
	}
	return parseBacklogDrops(b)
}

func parseBacklogDrops(b []byte) (uint64, error) {
	var n uint64
	for line := range bytes.Lines(b) {
		f := strings.Fields(string(line))
		if len(f) < 2 {
			continue
		}
		v, err := strconv.ParseUint(f[1], 16, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/net/softnet_stat: %w", err)
		}
		n += v
	}
	return n, nil
}
