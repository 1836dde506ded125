//go:build linux

package robust_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pktengine/pktengine/bench/gen"
	"github.com/pktengine/pktengine/engine"
	"github.com/pktengine/pktengine/internal/lab"
	"github.com/pktengine/pktengine/ring"
)

// syncBuffer is a bytes.Buffer for a logger that several goroutines use.
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

// echoOnce sends msg from h to dst with a kernel socket and returns the
// answer, or the error after timeout.
func echoOnce(h *lab.Host, dst netip.AddrPort, msg string, timeout time.Duration) (string, error) {
	c, err := h.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(dst))
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(timeout))
	if _, err := c.Write([]byte(msg)); err != nil {
		return "", err
	}
	buf := make([]byte, 2048)
	n, err := c.Read(buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

// echoWithin retries echoOnce until it gets msg back or limit passes.
func echoWithin(h *lab.Host, dst netip.AddrPort, msg string, limit time.Duration) (time.Duration, error) {
	start := time.Now()
	for {
		got, err := echoOnce(h, dst, msg, 100*time.Millisecond)
		if err == nil && got == msg {
			return time.Since(start), nil
		}
		if err == nil {
			err = errors.New("wrong answer " + got)
		}
		if time.Since(start) > limit {
			return time.Since(start), err
		}
	}
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %v: %v: %s", name, args, err, out)
	}
}

// closeWithin closes e and fails the test if that takes longer than
// limit.
func closeWithin(t *testing.T, e *engine.Engine, limit time.Duration) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- e.Close() }()
	select {
	case err := <-done:
		return err
	case <-time.After(limit):
		t.Fatalf("Close has not returned after %v", limit)
		return nil
	}
}

// TestInterfaceDownUp takes the engine's interface down and up again
// while it serves, with either ring version. The engine has no setting
// for this (see docs/SECURITY.md, "Faults"); what it does today, and
// what this test holds it to, is to resume: the kernel unhooks a packet
// socket from a device that goes down and hooks it up again when the
// device comes back, so the same rings and workers answer again, without
// a restart, as soon as the link is up. It also checks that the engine
// survived intact: the outcome invariant holds and Close is clean.
func TestInterfaceDownUp(t *testing.T) {
	for _, v := range []ring.Version{ring.V2, ring.V3} {
		t.Run(v.String(), func(t *testing.T) {
			l := lab.New(t, nil)
			a, b := l.A(), l.B()
			var logs syncBuffer
			e := openEngine(t, a, &engine.Config{RXVersion: v, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			if _, err := e.HandleService(netip.AddrPortFrom(netip.Addr{}, echoPort), engine.Echo); err != nil {
				t.Fatal(err)
			}
			dst := netip.AddrPortFrom(a.IPv4.Addr(), echoPort)
			if _, err := echoWithin(b, dst, "before", time.Second); err != nil {
				t.Fatalf("echo before: %v", err)
			}
			for round := range 3 {
				out, err := a.Command(context.Background(), "ip", "link", "set", a.Iface, "down").CombinedOutput()
				if err != nil {
					t.Fatalf("link down: %v %s", err, out)
				}
				if got, err := echoOnce(b, dst, "while down", 200*time.Millisecond); err == nil {
					t.Errorf("round %d: answered %q while the link was down", round, got)
				}
				out, err = a.Command(context.Background(), "ip", "link", "set", a.Iface, "up").CombinedOutput()
				if err != nil {
					t.Fatalf("link up: %v %s", err, out)
				}
				took, err := echoWithin(b, dst, "after", 5*time.Second)
				if err != nil {
					t.Fatalf("round %d: no echo within %v of the link coming back: %v\nengine log:\n%s", round, took, err, logs.String())
				}
				t.Logf("round %d: answering again %v after `ip link set up`", round, took.Round(time.Millisecond))
			}
			c := e.Counters()
			if err := c.Check(); err != nil {
				t.Error(err)
			}
			if c.UDP.OutDatagrams < 4 {
				t.Errorf("%d echo answers counted, want at least 4", c.UDP.OutDatagrams)
			}
		})
	}
}

// TestPeerNamespaceDeleted deletes the peer's namespace under a running
// engine, which destroys the veth pair and with it the engine's
// interface. Nothing may hang: Close returns promptly and cleanly, a
// waiting Recv returns net.ErrClosed, and what the application tries
// meanwhile fails with an error that says the device is gone.
func TestPeerNamespaceDeleted(t *testing.T) {
	l := lab.New(t, nil)
	a, b := l.A(), l.B()
	e, err := tryOpen(a, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.HandleService(netip.AddrPortFrom(netip.Addr{}, echoPort), engine.Echo); err != nil {
		t.Fatal(err)
	}
	p, err := e.Bind(netip.AddrPortFrom(netip.Addr{}, 5000))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := echoWithin(b, netip.AddrPortFrom(a.IPv4.Addr(), echoPort), "before", time.Second); err != nil {
		t.Fatalf("echo before: %v", err)
	}
	recvErr := make(chan error, 1)
	go func() {
		ds := make([]engine.Datagram, 4)
		_, err := p.Recv(context.Background(), ds)
		recvErr <- err
	}()

	run(t, "ip", "netns", "del", b.Name)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := a.InterfaceByName(a.Iface); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("A's interface still exists 10 s after the peer's namespace was deleted")
		}
		time.Sleep(5 * time.Millisecond)
	}

	err = p.Send(netip.AddrPortFrom(b.IPv4.Addr(), 9), []byte("anyone?"))
	if !errors.Is(err, syscall.ENXIO) && !errors.Is(err, syscall.ENODEV) && !errors.Is(err, syscall.ENETDOWN) {
		t.Errorf("Send on a vanished interface: %v, want ENXIO, ENODEV or ENETDOWN", err)
	}
	st := e.Status() // must not block or panic
	if err := st.Counters.Check(); err != nil {
		t.Error(err)
	}
	if err := closeWithin(t, e, 5*time.Second); err != nil {
		t.Errorf("Close after the interface vanished: %v", err)
	}
	select {
	case err := <-recvErr:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("Recv: %v, want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Recv still waiting 5 s after Close")
	}
	c := e.Counters()
	if err := c.Check(); err != nil {
		t.Error(err)
	}
}

// TestOwnNamespaceNameDeleted deletes the name of the engine's own
// namespace while it serves. The namespace lives on as long as the
// engine's sockets hold it, so the engine keeps answering the peer, and
// closes cleanly afterwards.
func TestOwnNamespaceNameDeleted(t *testing.T) {
	l := lab.New(t, nil)
	a, b := l.A(), l.B()
	e, err := tryOpen(a, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.HandleService(netip.AddrPortFrom(netip.Addr{}, echoPort), engine.Echo); err != nil {
		t.Fatal(err)
	}
	dst := netip.AddrPortFrom(a.IPv4.Addr(), echoPort)
	run(t, "ip", "netns", "del", a.Name)
	if _, err := echoWithin(b, dst, "after", 2*time.Second); err != nil {
		t.Errorf("echo after the engine's namespace lost its name: %v", err)
	}
	if _, err := e.Bind(netip.AddrPortFrom(netip.Addr{}, 5000)); err != nil {
		t.Errorf("Bind in a namespace without a name: %v", err)
	}
	if err := closeWithin(t, e, 5*time.Second); err != nil {
		t.Errorf("Close: %v", err)
	}
	c := e.Counters()
	if err := c.Check(); err != nil {
		t.Error(err)
	}
}

// TestCloseUnderLoad closes the engine from one goroutine while the
// generator floods it, a consumer receives and replies on a queued port,
// another goroutine reads counters and ports, and a second Close races
// the first; with queued datagrams copied (the default) and pointing into
// the ring (Config.ZeroCopy). Under the race detector (make test) this is
// also the data race check of the shutdown path. Datagrams a consumer
// still holds must stay readable after Close until it releases them: with
// ZeroCopy that means the closed ring stays mapped until then.
func TestCloseUnderLoad(t *testing.T) {
	for _, zeroCopy := range []bool{false, true} {
		name := "copy"
		if zeroCopy {
			name = "zero-copy"
		}
		t.Run(name, func(t *testing.T) { closeUnderLoad(t, zeroCopy) })
	}
}

func closeUnderLoad(t *testing.T, zeroCopy bool) {
	l := lab.New(t, nil)
	a, b := l.A(), l.B()
	e, err := tryOpen(a, &engine.Config{Workers: 2, ZeroCopy: zeroCopy})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.HandleService(netip.AddrPortFrom(netip.Addr{}, echoPort), engine.Echo); err != nil {
		t.Fatal(err)
	}
	p, err := e.Bind(netip.AddrPortFrom(netip.Addr{}, slowPort))
	if err != nil {
		t.Fatal(err)
	}

	holder, err := e.Bind(netip.AddrPortFrom(netip.Addr{}, slowPort+1))
	if err != nil {
		t.Fatal(err)
	}

	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() { // a consumer that receives and replies until the port closes
		defer wg.Done()
		ds := make([]engine.Datagram, 32)
		for {
			n, err := p.Recv(context.Background(), ds)
			if err != nil {
				if !errors.Is(err, net.ErrClosed) {
					t.Errorf("Recv: %v", err)
				}
				return
			}
			for i := range ds[:n] {
				p.Reply(&ds[i], ds[i].Payload) // fails once closed; that is fine
			}
		}
	}()
	// A consumer that takes one batch and holds it across Close.
	held := make([]engine.Datagram, 32)
	heldN := make(chan int, 1)
	go func() {
		n, err := holder.Recv(context.Background(), held)
		if err != nil {
			t.Errorf("Recv: %v", err)
		}
		heldN <- n
	}()
	wg.Add(1)
	go func() { // an observer
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			c := e.Counters()
			if err := c.Check(); err != nil {
				t.Error(err)
			}
			e.Ports()
			e.Status()
		}
	}()

	genDone := make(chan *gen.Summary, 1)
	go func() {
		s, err := runGenErr(b, &gen.Config{
			Spec:     gen.Spec{Dst: netip.AddrPortFrom(a.IPv4.Addr(), echoPort), DstPorts: 3, SrcPorts: 64},
			SendOnly: true,
		}, gen.Load{Duration: 2 * time.Second})
		if err != nil {
			t.Errorf("generator: %v", err)
		}
		genDone <- s
	}()
	// Close once the load is in full swing. (With ZeroCopy the held
	// datagrams pin the ring, so the engine soon takes nothing more; its
	// ring still counts the frames it drops.)
	deadline := time.Now().Add(10 * time.Second)
	for e.Counters().RingPackets < 20000 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	errs := make(chan error, 2)
	for range 2 {
		go func() { errs <- e.Close() }()
	}
	for range 2 {
		select {
		case err := <-errs:
			if err != nil {
				t.Errorf("Close under load: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Close under load has not returned after 10 s")
		}
	}
	close(stop)
	wg.Wait()
	// The held datagrams read as they arrived (the generator's
	// signature with the run tag it chose) until they are released, even
	// from a closed ring.
	n := <-heldN
	if n == 0 {
		t.Fatal("the holding consumer received nothing")
	}
	for i := range held[:n] {
		if sig, ok := gen.ParseSignature(held[i].Payload); !ok || sig.Tag == 0 {
			t.Errorf("held datagram %d after Close: payload %x", i, held[i].Payload)
		}
	}
	holder.Release(held)
	if s := <-genDone; s != nil {
		c := e.Counters()
		t.Logf("generator sent %d frames; the engine's ring took %d, handled %d and dropped %d before it closed",
			s.TX.Sent, c.RingPackets, c.FramesIn, c.RingDrops)
	}
	if _, err := e.Bind(netip.AddrPortFrom(netip.Addr{}, 5001)); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Bind after Close: %v, want net.ErrClosed", err)
	}
	c := e.Counters()
	if err := c.Check(); err != nil {
		t.Error(err)
	}
}

// runGenErr is runGen for goroutines that must not call t.Fatal.
func runGenErr(h *lab.Host, cfg *gen.Config, load gen.Load) (*gen.Summary, error) {
	var s *gen.Summary
	cfg.Load = load
	err := h.Do(func() error {
		ifi, err := h.Interface()
		if err != nil {
			return err
		}
		s, err = gen.Run(context.Background(), ifi, cfg, nil)
		return err
	})
	return s, err
}
