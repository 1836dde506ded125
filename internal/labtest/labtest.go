// Package labtest is how pktengine's privileged tests use a namespace lab
// (internal/lab): one way to build a lab, to open a ring, an engine or a
// generator on a lab interface, to open a kernel UDP socket in a host, to
// do a UDP round trip, to run a program in a host and to put a host's lab
// interface on a bridge whose group database the test reads, and one way
// to skip a test that lacks a privilege or a program. To run a function in a
// host's namespace, tests call lab.Host.Do.
//
// A test that cannot run here skips with a message that says why, except
// under CI=true, where it fails instead: CI must never pass by skipping.
// Everything a helper opens is closed, and every lab removed, in
// t.Cleanup, so also when the test fails.
//
// labtest imports testing: only tests and other test helpers import it.
// It imports nothing of pktengine but internal/lab, so that the tests of
// any package, internal ones included, can use it without an import cycle.
package labtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pktengine/pktengine/internal/lab"
)

// Timeout is how long RoundTrip waits for an answer.
const Timeout = 3 * time.Second

// skip skips the test with the message, or fails it with the message when
// the environment has CI=true.
func skip(tb testing.TB, format string, args ...any) {
	tb.Helper()
	if os.Getenv("CI") == "true" {
		tb.Fatalf(format+" (CI=true: failing instead of skipping)", args...)
	}
	tb.Skipf(format, args...)
}

// NeedPrivileges skips the test unless the process can build a lab:
// CAP_NET_ADMIN, CAP_NET_RAW and CAP_SYS_ADMIN, a working ip(8), and the
// ability to create a network namespace (see lab.CheckPrivileges). Under
// CI=true it fails the test instead.
func NeedPrivileges(tb testing.TB) {
	tb.Helper()
	if err := lab.CheckPrivileges(); err != nil {
		skip(tb, "lab: privileged test cannot run: %v (run as root, or with CAP_NET_ADMIN, CAP_NET_RAW and CAP_SYS_ADMIN)", err)
	}
}

// NeedTool returns the path of the program name, which the test runs. It
// skips the test when the program is not installed, and fails it instead
// under CI=true (scripts/deps.sh installs every program the tests run).
func NeedTool(tb testing.TB, name string) string {
	tb.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		skip(tb, "%s is not installed (scripts/deps.sh installs it): %v", name, err)
	}
	return path
}

// New builds a lab for the test (nil cfg: two hosts joined by a veth pair)
// and removes it when the test ends. It skips the test as NeedPrivileges
// does, and also when cfg asks for VLAN subinterfaces the kernel does not
// support; any other failure to build the lab fails the test.
func New(tb testing.TB, cfg *lab.Config) *lab.Lab {
	tb.Helper()
	NeedPrivileges(tb)
	l, err := lab.Create(cfg)
	if errors.Is(err, lab.ErrVLANUnsupported) {
		tb.Skip(lab.ErrVLANUnsupported)
	}
	if err != nil {
		tb.Fatalf("lab: %v", err)
	}
	tb.Cleanup(func() {
		if err := l.Close(); err != nil {
			tb.Errorf("lab: %v", err)
		}
	})
	return l
}

// Namespaces lists the named namespaces of this process's labs, sorted,
// hidden ones included: a test that has closed its labs expects none.
func Namespaces(tb testing.TB) []string {
	tb.Helper()
	ents, err := os.ReadDir("/run/netns")
	if err != nil && !os.IsNotExist(err) {
		tb.Fatal(err)
	}
	var names []string
	prefix := fmt.Sprintf("pkte-%d-", os.Getpid())
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), prefix) {
			names = append(names, e.Name())
		}
	}
	return names
}

// Open opens something on h's lab interface: open runs inside h's
// namespace with the interface (see lab.OnInterface). An error fails the
// test. What open returns is closed when the test ends, and an error from
// that Close fails the test; closing it earlier as well is fine for the
// many things whose Close is idempotent (rings, engines, generators).
func Open[T io.Closer](tb testing.TB, h *lab.Host, open func(ifi *net.Interface) (T, error)) T {
	tb.Helper()
	return OpenChecked(tb, h, open, nil)
}

// OpenChecked is Open with check, when not nil, called on what was opened
// after it has been closed at the end of the test: for invariants that
// hold once everything is counted, such as the engine's outcome invariant
// on its final counters. An error from check fails the test.
func OpenChecked[T io.Closer](tb testing.TB, h *lab.Host, open func(ifi *net.Interface) (T, error), check func(T) error) T {
	tb.Helper()
	v, err := lab.OnInterface(h, open)
	if err != nil {
		tb.Fatalf("opening on %s in %s: %v", h.Iface, h.Name, err)
	}
	tb.Cleanup(func() {
		if err := v.Close(); err != nil {
			tb.Errorf("closing what was open on %s in %s: %v", h.Iface, h.Name, err)
		}
		if check == nil {
			return
		}
		if err := check(v); err != nil {
			tb.Error(err)
		}
	})
	return v
}

// ListenUDP opens a kernel UDP socket in h bound to addr (port 0 picks
// one), closed when the test ends.
func ListenUDP(tb testing.TB, h *lab.Host, addr netip.AddrPort) *net.UDPConn {
	tb.Helper()
	c, err := h.ListenUDP(lab.UDPNetwork(addr.Addr()), net.UDPAddrFromAddrPort(addr))
	if err != nil {
		tb.Fatalf("listening on %v in %s: %v", addr, h.Name, err)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}

// DialUDP opens a kernel UDP socket in h connected to dst, closed when the
// test ends.
func DialUDP(tb testing.TB, h *lab.Host, dst netip.AddrPort) *net.UDPConn {
	tb.Helper()
	c, err := h.DialUDP(lab.UDPNetwork(dst.Addr()), nil, net.UDPAddrFromAddrPort(dst))
	if err != nil {
		tb.Fatalf("connecting to %v from %s: %v", dst, h.Name, err)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}

// RoundTrip sends payload from a new kernel UDP socket in h to dst and
// returns the first answer, or the error that came instead: a timeout
// after Timeout, or ECONNREFUSED when dst's host answered with an ICMP
// port unreachable (see lab.Host.RoundTrip). It does not fail the test,
// so that tests can expect either.
func RoundTrip(tb testing.TB, h *lab.Host, dst netip.AddrPort, payload string) (string, error) {
	tb.Helper()
	b, err := h.RoundTrip(dst, []byte(payload), Timeout)
	return string(b), err
}

// EchoUDP runs a kernel UDP echo server in h on addr until the test ends:
// every datagram goes back to its sender. It returns the count of the
// datagrams answered.
func EchoUDP(tb testing.TB, h *lab.Host, addr netip.AddrPort) *atomic.Uint64 {
	tb.Helper()
	c := ListenUDP(tb, h, addr)
	var n atomic.Uint64
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 65536)
		for {
			k, from, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			if _, err := c.WriteToUDPAddrPort(buf[:k], from); err == nil {
				n.Add(1)
			}
		}
	}()
	// Registered after ListenUDP's Close, so it runs before it: close,
	// then wait for the server to see it.
	tb.Cleanup(func() { c.Close(); <-done })
	return &n
}

// Run runs the program name in h (see lab.Host.Command) and returns its
// standard output and standard error together; a failure fails the test
// with that output.
func Run(tb testing.TB, h *lab.Host, name string, args ...string) string {
	tb.Helper()
	out, err := h.Command(context.Background(), name, args...).CombinedOutput()
	if err != nil {
		tb.Fatalf("%s %q in %s: %v: %s", name, args, h.Name, err, out)
	}
	return string(out)
}

// Bridge makes h's lab interface the one port of a new bridge in h,
// named name and created with options, ip-link(8)'s for "type bridge"
// (for example "mcast_snooping 1 mcast_querier 1"), and brings it up. It
// goes with h's namespace when the lab is removed; a failure fails the
// test.
func Bridge(tb testing.TB, h *lab.Host, name, options string) {
	tb.Helper()
	Run(tb, h, "ip", append([]string{"link", "add", name, "type", "bridge"}, strings.Fields(options)...)...)
	Run(tb, h, "ip", "link", "set", h.Iface, "master", name)
	Run(tb, h, "ip", "link", "set", name, "up")
}

// BridgeGroups lists the group database entries of h's bridge name (see
// Bridge) on its port, h's lab interface, as "group" or "group src
// source". A failure to read them fails the test.
func BridgeGroups(tb testing.TB, h *lab.Host, name string) []string {
	tb.Helper()
	// Output, not Run: a warning on standard error must not spoil the
	// JSON.
	out, err := h.Command(context.Background(), "bridge", "-j", "mdb", "show", "dev", name).Output()
	if err != nil {
		var stderr []byte
		if ee, ok := errors.AsType[*exec.ExitError](err); ok {
			stderr = ee.Stderr
		}
		tb.Fatalf("bridge mdb show dev %s in %s: %v: %s", name, h.Name, err, stderr)
	}
	var mdb []struct {
		MDB []struct {
			Port string `json:"port"`
			Grp  string `json:"grp"`
			Src  string `json:"src"`
		} `json:"mdb"`
	}
	if err := json.Unmarshal(out, &mdb); err != nil {
		tb.Fatalf("bridge mdb show dev %s in %s: %v\n%s", name, h.Name, err, out)
	}
	var groups []string
	for _, d := range mdb {
		for _, e := range d.MDB {
			if e.Port != h.Iface {
				continue
			}
			g := e.Grp
			if e.Src != "" {
				g += " src " + e.Src
			}
			groups = append(groups, g)
		}
	}
	return groups
}

// Transmitter is the part of a ring.Transmitter (or any frame sender of
// that shape) that Send uses; labtest names it rather than importing ring,
// whose own tests use labtest.
type Transmitter interface {
	Next(ctx context.Context) ([]byte, error)
	Commit(n int) error
	Flush() error
}

// Send copies each frame into tx, commits it and flushes them all; any
// failure fails the test.
func Send(tb testing.TB, tx Transmitter, frames ...[]byte) {
	tb.Helper()
	SendBuilt(tb, tx, len(frames), func(buf []byte, i int) (int, error) {
		if len(frames[i]) > len(buf) {
			return 0, fmt.Errorf("a %d-byte frame does not fit a %d-byte transmit buffer", len(frames[i]), len(buf))
		}
		return copy(buf, frames[i]), nil
	})
}

// SendBuilt has build write frames 0 to n-1 straight into tx's buffers
// (a builder such as frame.FrameFragmenter.Build, which returns the
// frame's length), commits each and flushes them all; any error fails
// the test.
func SendBuilt(tb testing.TB, tx Transmitter, n int, build func(buf []byte, i int) (int, error)) {
	tb.Helper()
	for i := range n {
		buf, err := tx.Next(context.Background())
		if err != nil {
			tb.Fatal(err)
		}
		m, err := build(buf, i)
		if err != nil {
			tb.Fatal(err)
		}
		if err := tx.Commit(m); err != nil {
			tb.Fatal(err)
		}
	}
	if err := tx.Flush(); err != nil {
		tb.Fatal(err)
	}
}
