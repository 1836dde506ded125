//go:build linux

package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/pktengine/pktengine/engine"
	"github.com/pktengine/pktengine/examples/dnsd/internal/dnstest"
	"github.com/pktengine/pktengine/examples/dnsd/zone"
	"github.com/pktengine/pktengine/internal/knot"
	"github.com/pktengine/pktengine/internal/lab"
	"github.com/pktengine/pktengine/internal/labtest"
)

var updateGolden = flag.Bool("update-golden", false, "record Knot DNS's answers in testdata/knot-answers.txt")

// The lab of the Knot comparison: host A runs Knot DNS on its own
// addresses, dnsd on a kernel socket on a second pair of addresses the
// kernel has, and dnsd inline and dnsd on the engine's Conn on a third and
// a fourth pair that the engine owns; host B asks all four the same
// questions from kernel sockets.
var (
	knotV4, knotV6     = netip.MustParseAddr("198.18.0.1"), netip.MustParseAddr("fd00::1")
	kernelV4, kernelV6 = netip.MustParseAddr("198.18.0.11"), netip.MustParseAddr("fd00::11")
	inlineV4, inlineV6 = netip.MustParseAddr("198.18.0.12"), netip.MustParseAddr("fd00::12")
	connV4, connV6     = netip.MustParseAddr("198.18.0.13"), netip.MustParseAddr("fd00::13")
)

type dnsLab struct {
	lab                  *lab.Lab
	zone                 *zone.Zone
	kernel, inline, conn stats
}

// startLab builds the lab and starts the three servers.
func startLab(t *testing.T) *dnsLab {
	t.Helper()
	l := labtest.New(t, nil)
	a := l.A()
	labtest.NeedTool(t, "knotd")
	cmd := exec.Command("ip", "-n", a.Name, "-batch", "-")
	cmd.Stdin = strings.NewReader(fmt.Sprintf("addr add %s/24 dev %s\naddr add %s/64 dev %s nodad\n", kernelV4, a.Iface, kernelV6, a.Iface))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ip: %v: %s", err, out)
	}

	z, err := zone.LoadFile(testZone, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	d := &dnsLab{lab: l, zone: z}
	startKnot(t, a, a, testOrigin, testZone, knot.Options{Listen: []netip.AddrPort{netip.AddrPortFrom(knotV4, 53), netip.AddrPortFrom(knotV6, 53)}}, netip.AddrPortFrom(knotV4, 53))

	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	for _, addr := range []netip.Addr{kernelV4, kernelV6} {
		pc, err := a.ListenPacket("udp", netip.AddrPortFrom(addr, 53).String())
		if err != nil {
			t.Fatal(err)
		}
		served := make(chan error, 1)
		go func() { served <- serveDNSServer(ctx, pc, z, &d.kernel) }()
		t.Cleanup(func() {
			cancel()
			if err := <-served; err != nil {
				t.Errorf("serveDNSServer: %v", err)
			}
			pc.Close()
		})
	}

	e := labtest.Open(t, a, func(ifi *net.Interface) (*engine.Engine, error) {
		return engine.Open(ifi, &engine.Config{Addrs: []netip.Prefix{
			netip.PrefixFrom(inlineV4, 32), netip.PrefixFrom(inlineV6, 128),
			netip.PrefixFrom(connV4, 32), netip.PrefixFrom(connV6, 128),
		}})
	})
	h := newInlineHandler(z, e.Interface().MTU, &d.inline)
	for _, addr := range []netip.Addr{inlineV4, inlineV6} {
		if _, err := e.Handle(netip.AddrPortFrom(addr, 53), h); err != nil {
			t.Fatal(err)
		}
	}
	for _, addr := range []netip.Addr{connV4, connV6} {
		served := make(chan error, 1)
		go func() { served <- serveConn(ctx, e, netip.AddrPortFrom(addr, 53), z, &d.conn) }()
		t.Cleanup(func() {
			cancel()
			if err := <-served; err != nil {
				t.Errorf("serveConn: %v", err)
			}
		})
	}
	return d
}

// TestKnotOracle asks Knot DNS and dnsd (kernel, inline and conn modes) every
// query of dnstest.Cases, over IPv4, and a sample over IPv6, and requires
// the same answers, but for the deliberate differences of
// dnstest.Deliberate, where dnsd must answer as that says.
func TestKnotOracle(t *testing.T) {
	d := startLab(t)
	b := d.lab.B()
	cases := dnstest.Cases(testOrigin, d.zone.Names())
	type server struct {
		name string
		a    *asker
	}
	for _, family := range []struct {
		name                       string
		knot, kernel, inline, conn netip.Addr
		sample                     int
	}{
		{"IPv4", knotV4, kernelV4, inlineV4, connV4, 1},
		{"IPv6", knotV6, kernelV6, inlineV6, connV6, 7},
	} {
		t.Run(family.name, func(t *testing.T) {
			knot := newAsker(t, b, netip.AddrPortFrom(family.knot, 53), testOrigin)
			servers := []server{
				{"kernel", newAsker(t, b, netip.AddrPortFrom(family.kernel, 53), testOrigin)},
				{"inline", newAsker(t, b, netip.AddrPortFrom(family.inline, 53), testOrigin)},
				{"conn", newAsker(t, b, netip.AddrPortFrom(family.conn, 53), testOrigin)},
			}
			var golden []dnstest.Golden
			compared := 0
			for i, c := range cases {
				if i%family.sample != 0 {
					continue
				}
				want, err := knot.ask(c.Query)
				if err != nil {
					t.Fatalf("%s: Knot: %v", c.Name, err)
				}
				golden = append(golden, dnstest.Golden{Name: c.Name, Query: c.Query, Response: want})
				for _, s := range servers {
					got, err := s.a.ask(c.Query)
					if err != nil {
						t.Fatalf("%s: %s: %v", c.Name, s.name, err)
					}
					if why, ok := dnstest.Deliberate(c.Name); ok {
						if diffs := dnstest.CheckDeliberate(c.Name, c.Query, got); len(diffs) > 0 {
							t.Errorf("%s (%s: %s): %s: %s", c.Name, family.name, why, s.name, strings.Join(diffs, "; "))
						}
						continue
					}
					if diffs := dnstest.Compare(want, got); len(diffs) > 0 {
						t.Errorf("%s (%s): %s differs from Knot: %s\nquery %x", c.Name, family.name, s.name, strings.Join(diffs, "; "), c.Query)
					}
					compared++
				}
			}
			t.Logf("%d answers compared with Knot's", compared)
			if *updateGolden && family.name == "IPv4" {
				var buf bytes.Buffer
				if err := dnstest.WriteGolden(&buf, golden); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(goldenFile, buf.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
	t.Logf("kernel mode: %v", d.kernel.attrs())
	t.Logf("inline mode: %v", d.inline.attrs())
	t.Logf("conn mode: %v", d.conn.attrs())
}
