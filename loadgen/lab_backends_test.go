package loadgen_test

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/pktengine/pktengine/internal/lab"
	"github.com/pktengine/pktengine/internal/labtest"
	"github.com/pktengine/pktengine/loadgen"
	"github.com/pktengine/pktengine/xdp"
)

// peerProgram attaches an XDP program with no addresses (it passes
// everything) to h's interface until the test ends: frames redirected
// into a veth, as the live backend's are, arrive only if the peer end
// runs one.
func peerProgram(t *testing.T, h *lab.Host) {
	t.Helper()
	var p *xdp.Program
	if err := h.Do(func() error {
		ifi, err := h.Interface()
		if err != nil {
			return err
		}
		p, err = xdp.Attach(ifi, nil)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
}

// TestLabBackends runs the generator on its AF_XDP and live backends
// against the kernel's UDP echo, both address families, two workers (and
// two queues for AF_XDP): every frame is sent with the right signature
// (the echo answers only frames with valid checksums, and the replies
// match the streams and sequence numbers), paced, with latencies, and a
// second run on the same generator keeps its counts apart.
func TestLabBackends(t *testing.T) {
	for _, backend := range []loadgen.Backend{loadgen.BackendXDP, loadgen.BackendLive} {
		t.Run(backend.String(), func(t *testing.T) {
			l := labtest.New(t, nil)
			a, b := l.A(), l.B()
			workers := 2
			if backend == loadgen.BackendXDP {
				for _, h := range []*lab.Host{a, b} {
					if out, err := h.Command(context.Background(), "ethtool", "-L", h.Iface, "rx", "2", "tx", "2").CombinedOutput(); err != nil {
						t.Logf("ethtool -L: %v %s: one worker", err, out)
						workers = 1
					}
				}
			} else {
				peerProgram(t, b)
			}
			for _, v6 := range []bool{false, true} {
				src, dst := echoAddrs(t, a, b, v6)
				served := labtest.EchoUDP(t, b, dst)
				g := newGenerator(t, a, &loadgen.Config{
					Spec:    loadgen.Spec{Src: netip.AddrPortFrom(src, 0), Dst: dst, Flows: 16, Size: 128},
					Workers: workers,
					Backend: backend,
				})
				for run := range 2 {
					s, err := g.Run(context.Background(), loadgen.Load{Rate: 5000, Count: 1001}, nil)
					if err != nil {
						t.Fatal(err)
					}
					t.Logf("v6=%v run %d:\n%s", v6, run, s)
					if s.Sent != 1001 || s.TX.Committed != 1001 || s.Backend != backend {
						t.Fatalf("sent %d, tx %+v, backend %v", s.Sent, s.TX, s.Backend)
					}
					if s.Stale != 0 {
						t.Fatalf("stale %d", s.Stale)
					}
					checkEchoRun(t, s)
				}
				if served.Load() < 1001 {
					t.Fatalf("echo served %d", served.Load())
				}
				// An AF_XDP socket holds its queue: the next family's
				// generator needs it.
				if err := g.Close(); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// TestLabBackendErrors: what the AF_XDP and live backends cannot do fails
// New with the reason.
func TestLabBackendErrors(t *testing.T) {
	l := labtest.New(t, nil)
	a, b := l.A(), l.B()
	dst := netip.AddrPortFrom(b.IPv4.Addr(), 7)
	for _, tc := range []struct {
		name string
		cfg  loadgen.Config
		want string
	}{
		{"xdp workers", loadgen.Config{Backend: loadgen.BackendXDP, Workers: 2}, "2 workers, but veth0 has 1 queue"},
		{"live ranges", loadgen.Config{Backend: loadgen.BackendLive, Spec: loadgen.Spec{DstPorts: 2}}, "varies the source port only"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.cfg
			c.Spec.Dst = dst
			err := a.Do(func() error {
				ifi, err := net.InterfaceByName(a.Iface)
				if err != nil {
					return err
				}
				g, err := loadgen.New(ifi, &c)
				if err == nil {
					g.Close()
				}
				return err
			})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New: %v, want an error saying %q", err, tc.want)
			}
		})
	}
}
