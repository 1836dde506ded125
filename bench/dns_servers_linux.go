//go:build linux

package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/pktengine/pktengine/internal/knot"
	"github.com/pktengine/pktengine/internal/lab"
)

// dnsServer is one DNS server process in the responder namespace, pinned
// to the responder CPU: knotd, or dnsd in one of its modes.
type dnsServer struct {
	name    string
	pid     int
	cpu     int
	threads int // threads pinned to cpu, checked

	knot *knot.Server // knot-udp, knot-xdp

	cmd    *exec.Cmd // dnsd
	exited chan struct{}
	err    error
	lines  chan string // dnsd's standard output, line by line
	log    lab.Buffer  // dnsd's standard error

	xdpHost *lab.Host // where knot-xdp attached its XDP program
}

// dnsdCounters is a line dnsd writes on SIGUSR1 (examples/dnsd, report.go).
type dnsdCounters struct {
	Answered   uint64 `json:"answered"`
	Dropped    uint64 `json:"dropped"`
	SendErrors uint64 `json:"send_errors"`
	RingDrops  uint64 `json:"ring_drops"`  // the engine's, in conn and inline modes
	QueueDrops uint64 `json:"queue_drops"` // the engine's port queue (conn mode)
	TxDrops    uint64 `json:"tx_drops"`    // the engine's transmit buffers
	Mallocs    uint64 `json:"mallocs"`
	TotalAlloc uint64 `json:"total_alloc"`
	NumGC      uint32 `json:"num_gc"`
}

// dnsTools are the programs the benchmark runs.
type dnsTools struct {
	dnsd, knotd, dnsperf string
	dnsdEngine           []string // DNSConfig.DnsdEngine
	// Why a program is missing: the responders that need it fail with
	// this instead of running.
	dnsdErr, knotdErr, dnsperfErr error
}

// findDNSTools looks the programs up as DNSConfig says.
func findDNSTools(c *DNSConfig, self string) dnsTools {
	t := dnsTools{dnsdEngine: c.DnsdEngine}
	switch {
	case c.Dnsd != "":
		t.dnsd = c.Dnsd
		if _, err := os.Stat(c.Dnsd); err != nil {
			t.dnsdErr = err
		}
	default:
		beside := filepath.Join(filepath.Dir(self), "dnsd")
		if st, err := os.Stat(beside); err == nil && !st.IsDir() {
			t.dnsd = beside
		} else if t.dnsd, err = exec.LookPath("dnsd"); err != nil {
			t.dnsdErr = fmt.Errorf("dnsd is neither beside %s nor on $PATH (make builds bin/dnsd; or --dnsd PATH)", self)
		}
	}
	look := func(path, name string) (string, error) {
		if path != "" {
			return path, nil
		}
		p, err := knot.LookPath(name)
		if err != nil {
			return "", fmt.Errorf("%s is not installed (scripts/deps.sh installs it): %w", name, err)
		}
		return p, nil
	}
	t.knotd, t.knotdErr = look(c.Knotd, "knotd")
	t.dnsperf, t.dnsperfErr = look(c.Dnsperf, "dnsperf")
	return t
}

// soaQuery is the query that checks a server answers: the zone's SOA.
func soaQuery() []byte {
	q, _ := dnsQuery{Name: dnsOrigin, Type: dnsTypeSOA}.wire()
	q[0], q[1] = 0x53, 0x4f
	return q
}

// startDNSServer starts responder name in b, pinned to cpu, serving the
// zone in zoneFile at addr port 53, and returns once it answers the SOA
// query from a and every one of its threads is pinned to cpu.
func startDNSServer(ctx context.Context, name string, a, b *lab.Host, cpu int, addr netip.Addr, zoneFile, dir string, tools *dnsTools) (*dnsServer, error) {
	s := &dnsServer{name: name, cpu: cpu}
	taskset := []string{"taskset", "-c", strconv.Itoa(cpu)}
	ask := netip.AddrPortFrom(addr, 53)
	switch name {
	case "knot-udp", "knot-xdp":
		if tools.knotdErr != nil {
			return nil, tools.knotdErr
		}
		setup := &knot.Setup{Binary: tools.knotd, Dir: dir, Origin: dnsOrigin, ZoneFile: zoneFile, Prefix: taskset}
		if name == "knot-xdp" {
			// No listen address: no UDP socket at all, only the XDP
			// program and its AF_XDP socket.
			setup.XDPIface, setup.XDPPort = b.Iface, 53
			s.xdpHost = b
		} else {
			setup.Listen = []netip.AddrPort{ask}
		}
		k, err := knot.Start(b, setup)
		if err != nil {
			return nil, err
		}
		s.knot, s.pid = k, k.PID()
		if err := k.WaitServing(a, ask, soaQuery(), 30*time.Second); err != nil {
			return nil, errors.Join(err, s.close())
		}
		// Knot set its workers' affinity itself: re-pin them all.
		if _, err := knot.PinThreads(s.pid, cpu); err != nil {
			return nil, errors.Join(err, s.close())
		}
		if name == "knot-xdp" && !strings.Contains(k.Log(), "native mode") {
			return nil, errors.Join(fmt.Errorf("knotd did not start XDP in native mode:\n%s", k.Log()), s.close())
		}
	default:
		if tools.dnsdErr != nil {
			return nil, tools.dnsdErr
		}
		mode := strings.TrimPrefix(name, "dnsd-")
		args := append(taskset, tools.dnsd, "--iface", b.Iface, "--addr", addr.String(), "--zone", zoneFile, "--mode", mode)
		if mode != "kernel" {
			args = append(args, tools.dnsdEngine...)
		}
		s.cmd = b.Command(context.Background(), args[0], args[1:]...)
		s.cmd.Stderr = &s.log
		s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		out, err := s.cmd.StdoutPipe()
		if err != nil {
			return nil, err
		}
		if err := s.cmd.Start(); err != nil {
			return nil, fmt.Errorf("bench: start dnsd: %w", err)
		}
		s.pid = s.cmd.Process.Pid
		s.exited, s.lines = make(chan struct{}), make(chan string, 16)
		go func() {
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				s.lines <- sc.Text()
			}
			close(s.lines)
		}()
		go func() {
			s.err = s.cmd.Wait()
			close(s.exited)
		}()
		if err := waitDNSAnswer(ctx, a, ask, s.exited, 30*time.Second); err != nil {
			return nil, errors.Join(fmt.Errorf("%w\n%s", err, s.log.String()), s.close())
		}
	}
	n, err := knot.CheckPinned(s.pid, cpu)
	if err != nil {
		return nil, errors.Join(err, s.close())
	}
	s.threads = n
	return s, nil
}

// waitDNSAnswer waits until the server at ask answers the SOA query from
// a, or fails after timeout or once exited is closed.
func waitDNSAnswer(ctx context.Context, a *lab.Host, ask netip.AddrPort, exited <-chan struct{}, timeout time.Duration) error {
	q := soaQuery()
	start := time.Now()
	for {
		select {
		case <-exited:
			return errors.New("bench: the server exited")
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		resp, err := a.RoundTrip(ask, q, 200*time.Millisecond)
		if err == nil && knot.Answered(q, resp) {
			return nil
		}
		if time.Since(start) > timeout {
			return fmt.Errorf("bench: no answer at %s after %v: %v", ask, timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stats returns dnsd's counters (nil for Knot, which has none to give):
// it sends SIGUSR1 and reads the line dnsd writes.
func (s *dnsServer) stats() (*dnsdCounters, error) {
	if s.cmd == nil {
		return nil, nil
	}
	for len(s.lines) > 0 { // an answer to an earlier request that came late
		<-s.lines
	}
	if err := s.cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		return nil, err
	}
	select {
	case line, ok := <-s.lines:
		if !ok {
			return nil, fmt.Errorf("bench: %s exited: %s", s.name, s.log.String())
		}
		var c dnsdCounters
		if err := json.Unmarshal([]byte(line), &c); err != nil {
			return nil, fmt.Errorf("bench: %s's counters %q: %w", s.name, line, err)
		}
		return &c, nil
	case <-time.After(5 * time.Second):
		return nil, fmt.Errorf("bench: %s wrote no counters within 5 s of SIGUSR1", s.name)
	}
}

// logText returns what the server logged.
func (s *dnsServer) logText() string {
	if s.knot != nil {
		return s.knot.Log()
	}
	return s.log.String()
}

// close stops the server: SIGTERM, SIGKILL after ten seconds. It checks
// that knot-xdp took its XDP program with it.
func (s *dnsServer) close() error {
	var err error
	if s.knot != nil {
		err = s.knot.Stop()
	} else if s.cmd != nil {
		s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.exited:
			if s.err != nil {
				err = fmt.Errorf("bench: %s: %v\n%s", s.name, s.err, s.log.String())
			}
		case <-time.After(10 * time.Second):
			s.cmd.Process.Kill()
			<-s.exited
			err = fmt.Errorf("bench: %s did not stop within 10 s of SIGTERM: killed", s.name)
		}
	}
	if s.xdpHost != nil {
		err = errors.Join(err, detachXDP(s.xdpHost))
	}
	return err
}

// detachXDP removes an XDP program left on h's interface, which would
// change how the next responders receive.
func detachXDP(h *lab.Host) error {
	out, err := exec.Command("ip", "-n", h.Name, "-d", "link", "show", "dev", h.Iface).CombinedOutput()
	if err != nil {
		return fmt.Errorf("bench: ip link show: %v: %s", err, out)
	}
	if !bytes.Contains(out, []byte("prog/xdp")) {
		return nil
	}
	if out, err := exec.Command("ip", "-n", h.Name, "link", "set", "dev", h.Iface, "xdp", "off").CombinedOutput(); err != nil {
		return fmt.Errorf("bench: knotd left its XDP program attached and ip could not remove it: %v: %s", err, out)
	}
	return nil
}

// checkPinned checks that every thread of the server is still pinned.
func checkPinned(s *dnsServer) (int, error) {
	n, err := knot.CheckPinned(s.pid, s.cpu)
	if err != nil {
		return 0, fmt.Errorf("bench: %s: %w", s.name, err)
	}
	return n, nil
}

// linkDrops reads the dropped counters of h's interface (`ip -s link`):
// on the generator's side of the veth, tx dropped counts frames veth could
// not queue to the peer (its XDP ring, or the receiving CPU's backlog); on
// the servers' side, rx dropped counts frames its XDP program could not
// redirect, because the AF_XDP socket's ring was full.
func linkDrops(h *lab.Host) (rx, tx uint64, err error) {
	out, err := exec.Command("ip", "-n", h.Name, "-j", "-s", "link", "show", "dev", h.Iface).Output()
	if err != nil {
		return 0, 0, fmt.Errorf("bench: ip -s link: %w", err)
	}
	var links []struct {
		Stats struct {
			RX struct{ Dropped uint64 } `json:"rx"`
			TX struct{ Dropped uint64 } `json:"tx"`
		} `json:"stats64"`
	}
	if err := json.Unmarshal(out, &links); err != nil || len(links) != 1 {
		return 0, 0, fmt.Errorf("bench: ip -s link: %q: %v", out, err)
	}
	return links[0].Stats.RX.Dropped, links[0].Stats.TX.Dropped, nil
}
