//go:build linux

package engine

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pktengine/pktengine/frame"
	"github.com/pktengine/pktengine/internal/lab"
	"github.com/pktengine/pktengine/internal/labtest"
	"github.com/pktengine/pktengine/ring"
)

// The lab tests run the engine in host A of a two-namespace lab and talk
// to it from host B with clients no test wrote: the kernel's UDP sockets
// through Go's net package.

// openEngine opens an engine on h's lab interface. When the test ends it
// is closed and the outcome invariant checked on its final counters.
func openEngine(t *testing.T, h *lab.Host, cfg *Config) *Engine {
	t.Helper()
	return labtest.OpenChecked(t, h, func(ifi *net.Interface) (*Engine, error) { return Open(ifi, labConfig(cfg)) }, checkCounters)
}

// checkCounters checks the outcome invariant on e's counters.
func checkCounters(e *Engine) error {
	c := e.Counters()
	return c.Check()
}

// countersWhen returns e's counters once done says they are complete, or
// the last ones read after timeout. A worker publishes its counters after
// it has handed the batch's answers to the kernel, so a client can hold
// the last answer a moment before its count is visible.
func countersWhen(e *Engine, timeout time.Duration, done func(c *Counters) bool) Counters {
	deadline := time.Now().Add(timeout)
	for {
		c := e.Counters()
		if done(&c) || time.Now().After(deadline) {
			return c
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// openLabTX opens a transmit ring for a test's hand-made frames, for
// labtest.Open.
func openLabTX(ifi *net.Interface) (ring.Transmitter, error) { return ring.NewTransmitter(ifi, nil) }

// capture records the frames arriving at h from mac, with a ring of its
// own, until the test ends.
type capture struct {
	mu     sync.Mutex
	frames [][]byte
}

func startCapture(t *testing.T, h *lab.Host, from net.HardwareAddr, outgoing bool) *capture {
	t.Helper()
	rx := labtest.Open(t, h, func(ifi *net.Interface) (*ring.RX, error) {
		return ring.NewRX(ifi, &ring.RXConfig{Version: ring.V2, IgnoreOutgoing: !outgoing})
	})
	c := &capture{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		for {
			n, _, err := rx.Read(context.Background(), buf)
			if err != nil {
				return
			}
			if bytes.Equal(buf[6:12], from) {
				c.mu.Lock()
				c.frames = append(c.frames, bytes.Clone(buf[:n]))
				c.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() {
		rx.Close()
		<-done
	})
	return c
}

func (c *capture) take() [][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	f := c.frames
	c.frames = nil
	return f
}

// roundTrip sends msg from a kernel socket in h to dst and returns what
// comes back, or the read error. Nothing else may follow: one request, one
// answer.
func roundTrip(t *testing.T, h *lab.Host, dst netip.AddrPort, msg string) (string, error) {
	t.Helper()
	conn := labtest.DialUDP(t, h, dst)
	defer conn.Close()
	buf := make([]byte, 2048)
	n, err := lab.Exchange(conn, []byte(msg), buf, labtest.Timeout)
	if err != nil {
		return "", err
	}
	conn.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if m, err := conn.Read(buf[n:]); err == nil {
		t.Errorf("a second answer from %v: %q", dst, buf[n:n+m])
	}
	return string(buf[:n]), nil
}

// checkSent verifies every UDP and ICMP frame in frames with the naive
// checksum, and returns how many of each it saw.
func checkSent(t *testing.T, frames [][]byte) (udp, icmp int) {
	t.Helper()
	for _, f := range frames {
		var p frame.Packet
		switch p.Decode(f) {
		case frame.ReasonOK:
			checkUDPFrame(t, f)
			udp++
		case frame.ReasonICMPv4:
			if refSum(p.IPv4(f)[:p.L4Off-p.L3Off]) != 0xffff || refSum(p.ICMPv4(f)) != 0xffff {
				t.Errorf("bad ICMP checksums in %x", f)
			}
			icmp++
		case frame.ReasonICMPv6:
			msg, ip := p.ICMPv6(f), p.IPv6(f)
			if msg.Type() < 128 && !msg.IsChecksumValid(ip.PseudoHeaderSum(58, uint32(len(msg)))) {
				t.Errorf("bad ICMPv6 checksum in %x", f)
			}
			if msg.Type() == frame.ICMPv6DestUnreachable {
				icmp++
			}
		}
	}
	return udp, icmp
}

// TestLabOwned runs the engine on addresses the kernel does not have:
// the peer finds them by ARP and NDP, gets its echo, and gets connection
// refused for a closed port from the engine's own ICMP.
func TestLabOwned(t *testing.T) {
	l := labtest.New(t, nil)
	a, b := l.A(), l.B()
	own4 := netip.MustParseAddr("198.18.0.100")
	own6 := netip.MustParseAddr("fd00::100")
	e := openEngine(t, a, &Config{Addrs: []netip.Prefix{netip.PrefixFrom(own4, 32), netip.PrefixFrom(own6, 64)}})
	for _, ai := range e.Addrs() {
		if !ai.Owned {
			t.Fatalf("%v not owned", ai.Prefix)
		}
	}
	if ai := e.Addrs()[0]; ai.Prefix.Bits() != 24 {
		t.Errorf("on-link prefix of %v not taken from the kernel's /24", ai.Prefix)
	}
	if _, err := e.HandleService(netip.AddrPortFrom(netip.Addr{}, 7), Echo); err != nil {
		t.Fatal(err)
	}
	sent := startCapture(t, b, a.MAC, false)

	for _, dst := range []netip.Addr{own4, own6} {
		got, err := roundTrip(t, b, netip.AddrPortFrom(dst, 7), "TEST")
		if err != nil || got != "TEST" {
			t.Fatalf("echo via %v: %q, %v", dst, got, err)
		}
		_, err = roundTrip(t, b, netip.AddrPortFrom(dst, 9999), "anyone?")
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("closed port on %v: %v, want ECONNREFUSED", dst, err)
		}
	}
	time.Sleep(50 * time.Millisecond)
	udp, icmp := checkSent(t, sent.take())
	if udp != 2 || icmp != 2 {
		t.Errorf("peer received %d UDP and %d ICMP frames from the engine, want 2 and 2", udp, icmp)
	}
	c := e.Counters()
	if c.ARPAnswered == 0 || c.NDPAnswered == 0 {
		t.Errorf("ARP answered %d, NDP answered %d", c.ARPAnswered, c.NDPAnswered)
	}
	if c.ICMPSent != 2 || c.UDP.NoPorts != 2 || c.UDP.InDatagrams != 2 || c.UDP.OutDatagrams != 2 {
		t.Errorf("ICMP sent %d, Udp %+v", c.ICMPSent, c.UDP)
	}
}

// TestLabShared runs the engine on the kernel's own addresses: the
// engine answers its port and the kernel stays silent about it, while
// for an unbound port the kernel (alone) answers with ICMP.
func TestLabShared(t *testing.T) {
	l := labtest.New(t, nil)
	a, b := l.A(), l.B()
	// Through the qdisc, so that A's own packet taps see the engine's
	// frames beside the kernel's (a bypassing frame skips them).
	e := openEngine(t, a, &Config{KeepQdisc: true})
	if _, err := e.HandleService(netip.AddrPortFrom(netip.Addr{}, 7), Echo); err != nil {
		t.Fatal(err)
	}
	fromA := startCapture(t, b, a.MAC, false) // everything A sends, as B receives it
	for _, dst := range []netip.Addr{a.IPv4.Addr(), a.IPv6.Addr()} {
		got, err := roundTrip(t, b, netip.AddrPortFrom(dst, 7), "TEST")
		if err != nil || got != "TEST" {
			t.Fatalf("echo via %v: %q, %v", dst, got, err)
		}
	}
	time.Sleep(50 * time.Millisecond)
	udp, icmp := checkSent(t, fromA.take())
	if udp != 2 || icmp != 0 {
		t.Errorf("A sent %d UDP and %d ICMP frames for the echo port, want 2 and 0", udp, icmp)
	}

	for _, dst := range []netip.Addr{a.IPv4.Addr(), a.IPv6.Addr()} {
		_, err := roundTrip(t, b, netip.AddrPortFrom(dst, 9999), "anyone?")
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("closed port on %v: %v, want ECONNREFUSED from the kernel", dst, err)
		}
	}
	time.Sleep(50 * time.Millisecond)
	if _, icmp := checkSent(t, fromA.take()); icmp != 2 {
		t.Errorf("A sent %d ICMP errors for two closed-port probes, want 2 (the kernel's alone)", icmp)
	}

	// A kernel program cannot take the engine's port, and the engine
	// cannot take a kernel program's.
	_, err := a.ListenUDP("udp4", &net.UDPAddr{IP: a.IPv4.Addr().AsSlice(), Port: 7})
	if !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("kernel bind of the engine's port: %v, want EADDRINUSE", err)
	}
	labtest.ListenUDP(t, a, netip.AddrPortFrom(a.IPv6.Addr(), 4000))
	if _, err := e.Bind(netip.AddrPortFrom(a.IPv6.Addr(), 4000)); !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("engine bind of a kernel program's port: %v, want EADDRINUSE", err)
	}
	c := e.Counters()
	// A packet ring sees the kernel's datagrams too; AF_XDP only the
	// engine's ports (its program leaves the rest to the kernel).
	wantKernel := uint64(2)
	if labBackend == BackendXDP {
		wantKernel = 0
	}
	if c.Outcomes[OutcomeKernel] != wantKernel || c.ICMPSent != 0 || c.UDP.NoPorts != 0 {
		t.Errorf("left to the kernel %d, ICMP sent %d, NoPorts %d; want %d, 0, 0", c.Outcomes[OutcomeKernel], c.ICMPSent, c.UDP.NoPorts, wantKernel)
	}
}

// TestLabPortAPI: Recv and Reply, and Send to a peer the engine has to
// resolve itself.
func TestLabPortAPI(t *testing.T) {
	l := labtest.New(t, nil)
	a, b := l.A(), l.B()
	e := openEngine(t, a, &Config{Workers: 2})
	p, err := e.Bind(netip.AddrPortFrom(netip.Addr{}, 5000))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	go func() {
		ds := make([]Datagram, 8)
		for {
			n, err := p.Recv(ctx, ds)
			if err != nil {
				return
			}
			for i := range ds[:n] {
				reply := append([]byte("re: "), ds[i].Payload...)
				if err := p.Reply(&ds[i], reply); err != nil {
					t.Error(err)
				}
			}
		}
	}()
	for _, dst := range []netip.Addr{a.IPv4.Addr(), a.IPv6.Addr()} {
		got, err := roundTrip(t, b, netip.AddrPortFrom(dst, 5000), "hello")
		if err != nil || got != "re: hello" {
			t.Fatalf("via %v: %q, %v", dst, got, err)
		}
	}

	for _, peer := range []netip.Addr{b.IPv4.Addr(), b.IPv6.Addr()} {
		k := labtest.ListenUDP(t, b, netip.AddrPortFrom(peer, 6000))
		q, err := e.Bind(netip.AddrPortFrom(netip.Addr{}, 0))
		if err != nil {
			t.Fatal(err)
		}
		if err := q.Send(netip.AddrPortFrom(peer, 6000), []byte("unsolicited")); err != nil {
			t.Fatalf("Send to %v: %v", peer, err)
		}
		k.SetReadDeadline(time.Now().Add(3 * time.Second))
		buf := make([]byte, 100)
		n, from, err := k.ReadFromUDPAddrPort(buf)
		k.Close()
		if err != nil || string(buf[:n]) != "unsolicited" {
			t.Fatalf("peer read %q, %v", buf[:n], err)
		}
		want := a.IPv4.Addr()
		if peer.Is6() {
			want = a.IPv6.Addr()
		}
		if from.Port() != q.Addr().Port() || from.Addr().Unmap() != want {
			t.Errorf("datagram from %v, want %v port %d", from, want, q.Addr().Port())
		}
	}
	if c := e.Counters(); c.NeighborsLearned < 2 {
		t.Errorf("NeighborsLearned %d", c.NeighborsLearned)
	}
}

// TestLabNoAllocs sends thousands of echo requests from raw frames on B
// and checks with runtime.MemStats that the engine allocates nothing per
// datagram.
func TestLabNoAllocs(t *testing.T) {
	l := labtest.New(t, nil)
	a, b := l.A(), l.B()
	e := openEngine(t, a, &Config{RXVersion: ring.V2})
	if _, err := e.HandleService(netip.AddrPortFrom(netip.Addr{}, 7), Echo); err != nil {
		t.Fatal(err)
	}
	tx := labtest.Open(t, b, openLabTX)
	req := udpFrame(t, netip.AddrPortFrom(b.IPv4.Addr(), 40000), netip.AddrPortFrom(a.IPv4.Addr(), 7), []byte("TEST"),
		func(s *frame.UDPSpec) {
			s.SrcMAC = frame.MAC(b.MAC)
			s.DstMAC = frame.MAC(a.MAC)
		})
	const n = 20000
	// Poll the published worker counters: Counters also reads the
	// rings' statistics, which allocates.
	out := func() uint64 {
		var s counterSet
		var total uint64
		for _, w := range e.workers {
			w.published.read(&s)
			total += s[cOutDatagrams]
		}
		return total
	}
	wait := func(want uint64) {
		deadline := time.Now().Add(10 * time.Second)
		for out() < want && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
	}
	// Send in chunks and wait for each to be echoed, so that the
	// receive ring never overflows however slow the engine runs (the
	// race detector slows it a lot).
	sent := uint64(0)
	send := func(k int) {
		for i := range k {
			buf, err := tx.Next(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if err := tx.Commit(copy(buf, req)); err != nil {
				t.Fatal(err)
			}
			if i%256 == 255 || i == k-1 {
				tx.Flush()
				sent += uint64(i%256 + 1)
				wait(sent)
			}
		}
	}
	send(1000) // warm up: batch refs, buffers
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	send(n)
	runtime.ReadMemStats(&after)
	c := e.Counters()
	if c.UDP.OutDatagrams != 1000+n {
		t.Fatalf("only %d of %d echoed (ring drops %d)", c.UDP.OutDatagrams, 1000+n, c.RingDrops)
	}
	allocs := after.Mallocs - before.Mallocs
	t.Logf("%d allocations for %d datagrams", allocs, n)
	if allocs > n/100 {
		t.Errorf("%d allocations while echoing %d datagrams: the path allocates", allocs, n)
	}
}
