//go:build linux

package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/sys/unix"

	"github.com/pktengine/pktengine/examples/dnsd/internal/dnstest"
	"github.com/pktengine/pktengine/internal/lab"
	"github.com/pktengine/pktengine/internal/labtest"
)

// knotd is a Knot DNS server started by a test inside a lab namespace,
// with its own configuration, run directory and storage in a temporary
// directory: never the system's service.
type knotd struct {
	cmd    *exec.Cmd
	log    syncBuffer
	exited chan struct{} // closed when knotd has exited, with err set
	err    error
}

// syncBuffer collects a child's output for failure messages.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// knotOptions says where Knot DNS listens: kernel UDP (and TCP) sockets on
// addresses, and XDP on an interface.
type knotOptions struct {
	listen   []netip.AddrPort
	xdpIface string // "" for none
	xdpPort  uint16
}

// knotConfig is a knot.conf serving one zone: one UDP worker, the CHAOS
// identity, version and NSID off (dnsd has none of them), the zone file
// read whole and never written back. With XDP, Knot attaches its XDP
// program to the interface in native mode (veth has it) and answers
// UDP to the port from AF_XDP sockets, one worker per RX queue.
func knotConfig(dir, origin, zoneFile string, o knotOptions) string {
	var ls []string
	for _, ap := range o.listen {
		ls = append(ls, fmt.Sprintf("%s@%d", ap.Addr(), ap.Port()))
	}
	listen, xdp := "", ""
	if len(ls) > 0 {
		listen = fmt.Sprintf("    listen: [ %s ]\n", strings.Join(ls, ", "))
	}
	if o.xdpIface != "" {
		xdp = fmt.Sprintf("xdp:\n    listen: [ %s@%d ]\n", o.xdpIface, o.xdpPort)
	}
	return fmt.Sprintf(`server:
    rundir: "%[1]s/run"
%[2]s    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
    identity: ""
    version: ""
    nsid: ""
log:
  - target: stderr
    any: info
database:
    storage: "%[1]s/db"
zone:
  - domain: %[3]s
    file: "%[4]s"
    storage: "%[1]s/db"
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: none
%[5]s`, dir, listen, origin, zoneFile, xdp)
}

// startKnot starts knotd in h, serving zoneFile for origin as o says, and
// returns once it answers the zone's SOA query at ask from host from.
func startKnot(t *testing.T, h, from *lab.Host, origin, zoneFile string, o knotOptions, ask netip.AddrPort) *knotd {
	t.Helper()
	knotdPath := labtest.NeedTool(t, "knotd")
	dir := t.TempDir()
	for _, d := range []string{"run", "db"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	zf := filepath.Join(dir, filepath.Base(zoneFile))
	data, err := os.ReadFile(zoneFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(zf, data, 0o644); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "knot.conf")
	if err := os.WriteFile(conf, []byte(knotConfig(dir, origin, zf, o)), 0o644); err != nil {
		t.Fatal(err)
	}
	k := &knotd{exited: make(chan struct{})}
	// ip netns exec runs knotd in h's namespace (and in a mount namespace
	// of its own); knotd stays in the foreground, its log on stderr.
	k.cmd = h.Command(context.Background(), knotdPath, "-c", conf)
	k.cmd.Stdout, k.cmd.Stderr = &k.log, &k.log
	if err := k.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		k.err = k.cmd.Wait()
		close(k.exited)
	}()
	t.Cleanup(func() {
		k.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-k.exited:
		case <-time.After(10 * time.Second):
			k.cmd.Process.Kill()
			<-k.exited
		}
		if t.Failed() {
			t.Logf("knotd's log:\n%s", k.log.String())
		}
	})

	soa := dnstest.Query(0xFFFF, origin, dns.TypeSOA, false, 0)
	for start := time.Now(); ; time.Sleep(50 * time.Millisecond) {
		select {
		case <-k.exited:
			t.Fatalf("knotd exited: %v\n%s", k.err, k.log.String())
		default:
		}
		if resp, err := askOnce(from, ask, soa, 200*time.Millisecond); err == nil && len(resp) > 3 && resp[3]&0xF == 0 && resp[2]&0x04 != 0 {
			return k
		}
		if time.Since(start) > 20*time.Second {
			t.Fatalf("knotd does not serve %s:\n%s", origin, k.log.String())
		}
	}
}

// askOnce sends one query from a kernel socket in h and waits for the
// answer with its ID.
func askOnce(h *lab.Host, dst netip.AddrPort, q []byte, wait time.Duration) ([]byte, error) {
	c, err := dialHost(h, dst)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if _, err := c.Write(q); err != nil {
		return nil, err
	}
	c.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, 65535)
	for {
		n, err := c.Read(buf)
		if err != nil {
			return nil, err
		}
		if n >= 2 && bytes.Equal(buf[:2], q[:2]) {
			return bytes.Clone(buf[:n]), nil
		}
	}
}

func dialHost(h *lab.Host, dst netip.AddrPort) (*net.UDPConn, error) {
	network := "udp4"
	if dst.Addr().Is6() {
		network = "udp6"
	}
	return h.DialUDP(network, nil, net.UDPAddrFromAddrPort(dst))
}

// asker asks one server the comparison's queries, from one socket.
type asker struct {
	c        *net.UDPConn
	sentinel []byte
	buf      []byte
}

func newAsker(t *testing.T, h *lab.Host, dst netip.AddrPort, origin string) *asker {
	t.Helper()
	c, err := dialHost(h, dst)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &asker{c: c, sentinel: dnstest.Query(0xFFFF, origin, dns.TypeSOA, false, 0), buf: make([]byte, 65535)}
}

// ask sends q and returns the answer to it, nil if there is none. To tell
// "no answer" from "not yet" without a timeout per query, it sends a
// well-formed query after q and waits for that one's answer: a server
// answers in order, except dns.Server, which answers each query on its own
// goroutine, so a missing answer gets a little longer to turn up.
func (a *asker) ask(q []byte) ([]byte, error) {
	if _, err := a.c.Write(q); err != nil {
		return nil, err
	}
	if _, err := a.c.Write(a.sentinel); err != nil {
		return nil, err
	}
	matches := func(b []byte) bool { return len(q) >= 2 && len(b) >= 2 && bytes.Equal(b[:2], q[:2]) }
	var resp []byte
	a.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		n, err := a.c.Read(a.buf)
		if err != nil {
			return nil, fmt.Errorf("no answer to the sentinel query: %w", err)
		}
		b := a.buf[:n]
		if matches(b) && resp == nil {
			resp = bytes.Clone(b)
		}
		if bytes.Equal(b[:2], a.sentinel[:2]) {
			break
		}
	}
	if resp == nil {
		a.c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		for {
			n, err := a.c.Read(a.buf)
			if err != nil {
				break
			}
			if matches(a.buf[:n]) {
				resp = bytes.Clone(a.buf[:n])
				break
			}
		}
	}
	return resp, nil
}

// pinThreads pins every thread of process pid to cpu and returns how many
// it pinned. Knot DNS sets its workers' CPU affinity itself (its XDP
// worker lands on CPU 0, beside a load generator), so a fair comparison
// re-pins every thread in /proc/PID/task after it started.
func pinThreads(pid, cpu int) (int, error) {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return 0, err
	}
	var set unix.CPUSet
	set.Set(cpu)
	for _, task := range tasks {
		tid, err := strconv.Atoi(task.Name())
		if err != nil {
			continue
		}
		if err := unix.SchedSetaffinity(tid, &set); err != nil {
			return 0, fmt.Errorf("thread %d: %w", tid, err)
		}
	}
	return len(tasks), nil
}

// threadCPUs returns the CPUs each thread of pid may run on.
func threadCPUs(pid int) (map[int][]int, error) {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return nil, err
	}
	cpus := make(map[int][]int)
	for _, task := range tasks {
		tid, err := strconv.Atoi(task.Name())
		if err != nil {
			continue
		}
		var set unix.CPUSet
		if err := unix.SchedGetaffinity(tid, &set); err != nil {
			return nil, err
		}
		for c := range runtime.NumCPU() {
			if set.IsSet(c) {
				cpus[tid] = append(cpus[tid], c)
			}
		}
	}
	return cpus, nil
}

// TestKnotXDP runs Knot DNS in XDP mode in the lab, as the DNS benchmark
// will (README.md, "Knot DNS in XDP mode"): with no UDP socket, only its
// XDP program and AF_XDP socket on A's interface, it answers B; and every
// one of its threads can be pinned to one CPU.
func TestKnotXDP(t *testing.T) {
	l := labtest.New(t, nil)
	a, b := l.A(), l.B()
	ask := netip.AddrPortFrom(a.IPv4.Addr(), 53)
	k := startKnot(t, a, b, testOrigin, testZone, knotOptions{xdpIface: a.Iface, xdpPort: 53}, ask)

	cpu := runtime.NumCPU() - 1
	n, err := pinThreads(k.cmd.Process.Pid, cpu)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []struct {
		name string
		t    uint16
		an   int
	}{{"WwW.Example.COM.", dns.TypeA, 2}, {"many.example.com.", dns.TypeA, 0}, {"_sip._udp.example.com.", dns.TypeSRV, 1}} {
		resp, err := askOnce(b, ask, dnstest.Query(0x5353, q.name, q.t, false, 0), 3*time.Second)
		if err != nil {
			t.Fatalf("%s: %v", q.name, err)
		}
		var m dns.Msg
		if err := m.Unpack(resp); err != nil || len(m.Answer) != q.an || m.Question[0].Name != q.name {
			t.Errorf("%s: %v (%v)", q.name, &m, err)
		}
	}
	cpus, err := threadCPUs(k.cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	for tid, cs := range cpus {
		if len(cs) != 1 || cs[0] != cpu {
			t.Errorf("thread %d of knotd may run on CPUs %v after pinning to %d", tid, cs, cpu)
		}
	}
	if !strings.Contains(k.log.String(), "XDP") {
		t.Errorf("knotd's log does not mention XDP:\n%s", k.log.String())
	}
	t.Logf("%d threads of knotd pinned to CPU %d; log:\n%s", n, cpu, k.log.String())
}
