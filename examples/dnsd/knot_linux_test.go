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
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/pktengine/pktengine/examples/dnsd/internal/dnstest"
	"github.com/pktengine/pktengine/internal/lab"
)

// knotd is a Knot DNS server started by a test inside a lab namespace,
// with its own configuration, run directory and storage in a temporary
// directory: never the system's service.
type knotd struct {
	cmd  *exec.Cmd
	log  syncBuffer
	done chan error
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

// needCommand skips the test if a program is missing, or fails it when
// CI=true: CI installs them (knot, knot-dnsutils).
func needCommand(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is not installed (CI=true: failing instead of skipping): %v", name, err)
	}
	t.Skipf("%s is not installed (Debian: apt-get install knot knot-dnsutils): %v", name, err)
	return ""
}

// knotConfig is a knot.conf serving one zone on the given addresses: one
// UDP worker, the CHAOS identity, version and NSID off (dnsd has none of
// them), the zone file read whole and never written back.
func knotConfig(dir, origin, zoneFile string, listen []netip.AddrPort) string {
	var ls []string
	for _, ap := range listen {
		ls = append(ls, fmt.Sprintf("%s@%d", ap.Addr(), ap.Port()))
	}
	return fmt.Sprintf(`server:
    rundir: "%[1]s/run"
    listen: [ %[2]s ]
    udp-workers: 1
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
`, dir, strings.Join(ls, ", "), origin, zoneFile)
}

// startKnot starts knotd in h, serving zoneFile for origin on listen, and
// returns once it answers the zone's SOA query on the first address.
func startKnot(t *testing.T, h *lab.Host, origin, zoneFile string, listen []netip.AddrPort) *knotd {
	t.Helper()
	needCommand(t, "knotd")
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
	if err := os.WriteFile(conf, []byte(knotConfig(dir, origin, zf, listen)), 0o644); err != nil {
		t.Fatal(err)
	}
	k := &knotd{done: make(chan error, 1)}
	// ip netns exec runs knotd in h's namespace (and in a mount namespace
	// of its own); knotd stays in the foreground, its log on stderr.
	k.cmd = h.Command(context.Background(), "knotd", "-c", conf)
	k.cmd.Stdout, k.cmd.Stderr = &k.log, &k.log
	if err := k.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { k.done <- k.cmd.Wait() }()
	t.Cleanup(func() {
		k.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-k.done:
		case <-time.After(10 * time.Second):
			k.cmd.Process.Kill()
			<-k.done
		}
		if t.Failed() {
			t.Logf("knotd's log:\n%s", k.log.String())
		}
	})

	soa := dnstest.Query(0xFFFF, origin, dns.TypeSOA, false, 0)
	for start := time.Now(); ; time.Sleep(50 * time.Millisecond) {
		select {
		case err := <-k.done:
			t.Fatalf("knotd exited: %v\n%s", err, k.log.String())
		default:
		}
		if resp, err := askOnce(h, listen[0], soa, 200*time.Millisecond); err == nil && len(resp) > 3 && resp[3]&0xF == 0 && resp[2]&0x04 != 0 {
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
