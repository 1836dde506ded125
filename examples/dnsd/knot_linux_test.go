//go:build linux

package main

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/pktengine/pktengine/examples/dnsd/internal/dnstest"
	"github.com/pktengine/pktengine/internal/knot"
	"github.com/pktengine/pktengine/internal/lab"
	"github.com/pktengine/pktengine/internal/labtest"
)

// startKnot starts knotd (internal/knot) in h, serving zoneFile for
// origin as o says, stops it when the test ends, and returns once it
// answers the zone's SOA query at ask from host from.
func startKnot(t *testing.T, h, from *lab.Host, origin, zoneFile string, o knot.Options, ask netip.AddrPort) *knot.Server {
	t.Helper()
	knotd, err := knot.LookPath("knotd")
	if err != nil {
		knotd = labtest.NeedTool(t, "knotd")
	}
	k, err := knot.Start(h, &knot.Setup{Binary: knotd, Dir: t.TempDir(), Origin: origin, ZoneFile: zoneFile, Options: o})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := k.Stop(); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			t.Logf("knotd's log:\n%s", k.Log())
		}
	})
	if err := k.WaitServing(from, ask, dnstest.Query(0xFFFF, origin, dns.TypeSOA, false, 0), 20*time.Second); err != nil {
		t.Fatal(err)
	}
	return k
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

// TestKnotXDP runs Knot DNS in XDP mode in the lab, as the DNS benchmark
// will (README.md, "Knot DNS in XDP mode"): with no UDP socket, only its
// XDP program and AF_XDP socket on A's interface, it answers B; and every
// one of its threads can be pinned to one CPU.
func TestKnotXDP(t *testing.T) {
	l := labtest.New(t, nil)
	a, b := l.A(), l.B()
	ask := netip.AddrPortFrom(a.IPv4.Addr(), 53)
	k := startKnot(t, a, b, testOrigin, testZone, knot.Options{XDPIface: a.Iface, XDPPort: 53}, ask)

	cpu := runtime.NumCPU() - 1
	n, err := knot.PinThreads(k.PID(), cpu)
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
	cpus, err := knot.ThreadCPUs(k.PID())
	if err != nil {
		t.Fatal(err)
	}
	for tid, cs := range cpus {
		if len(cs) != 1 || cs[0] != cpu {
			t.Errorf("thread %d of knotd may run on CPUs %v after pinning to %d", tid, cs, cpu)
		}
	}
	if !strings.Contains(k.Log(), "XDP") {
		t.Errorf("knotd's log does not mention XDP:\n%s", k.Log())
	}
	t.Logf("%d threads of knotd pinned to CPU %d; log:\n%s", n, cpu, k.Log())
}
