//go:build linux

package robust_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pktengine/pktengine/engine"
	"github.com/pktengine/pktengine/internal/lab"
	"github.com/pktengine/pktengine/internal/labtest"
	"github.com/pktengine/pktengine/loadgen"
	"github.com/pktengine/pktengine/ring"
)

// echoOnce sends msg from h to dst with a kernel socket and returns the
// answer, or the error after timeout.
func echoOnce(h *lab.Host, dst netip.AddrPort, msg string, timeout time.Duration) (string, error) {
	got, err := h.RoundTrip(dst, []byte(msg), timeout)
	return string(got), err
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

// echoBefore fails the test unless the echo service at dst answers h
// within a second: the engine serves before the test breaks something.
func echoBefore(t *testing.T, h *lab.Host, dst netip.AddrPort) {
	t.Helper()
	if _, err := echoWithin(h, dst, "before", time.Second); err != nil {
		t.Fatalf("echo before: %v", err)
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
// while it serves, with either ring version, under the default
// LinkResume policy: the engine counts and logs each outage and resumes.
// The kernel unhooks a packet socket from a device that goes down and
// hooks it up again when the device comes back, so the same rings and
// workers answer again, without a restart, as soon as the link is up.
// The engine must not stop, the outcome invariant must hold and Close
// must be clean.
func TestInterfaceDownUp(t *testing.T) {
	for _, v := range []ring.Version{ring.V2, ring.V3} {
		t.Run(v.String(), func(t *testing.T) {
			var logs lab.Buffer
			a, b, e := echoLab(t, &engine.Config{RXVersion: v, Logger: slog.New(slog.NewTextHandler(&logs, nil))}, echoPort)
			dst := netip.AddrPortFrom(a.IPv4.Addr(), echoPort)
			echoBefore(t, b, dst)
			const rounds = 3
			for round := range rounds {
				setLink(t, a, "down")
				waitLink(t, e, false, uint64(round+1), uint64(round))
				if got, err := echoOnce(b, dst, "while down", 200*time.Millisecond); err == nil {
					t.Errorf("round %d: answered %q while the link was down", round, got)
				}
				setLink(t, a, "up")
				took, err := echoWithin(b, dst, "after", 5*time.Second)
				if err != nil {
					t.Fatalf("round %d: no echo within %v of the link coming back: %v\nengine log:\n%s", round, took, err, logs.String())
				}
				waitLink(t, e, true, uint64(round+1), uint64(round+1))
				t.Logf("round %d: answering again %v after `ip link set up`", round, took.Round(time.Millisecond))
			}
			select {
			case <-e.Done():
				t.Fatalf("the engine stopped under LinkResume: %v", e.Err())
			default:
			}
			// A worker publishes its counters after it has sent the
			// batch's answers, so the last echo can reach the client a
			// moment before it is counted.
			c := e.Counters()
			for deadline := time.Now().Add(time.Second); c.UDP.OutDatagrams < 4 && time.Now().Before(deadline); {
				time.Sleep(time.Millisecond)
				c = e.Counters()
			}
			if err := c.Check(); err != nil {
				t.Error(err)
			}
			if c.UDP.OutDatagrams < 4 {
				t.Errorf("%d echo answers counted, want at least 4", c.UDP.OutDatagrams)
			}
			log := logs.String()
			if n := strings.Count(log, "msg=\"link down\""); n != rounds {
				t.Errorf("%d \"link down\" records, want %d:\n%s", n, rounds, log)
			}
			if n := strings.Count(log, "msg=\"link up\""); n != rounds {
				t.Errorf("%d \"link up\" records, want %d:\n%s", n, rounds, log)
			}
		})
	}
}

// setLink runs `ip link set IFACE up|down` in h.
func setLink(t *testing.T, h *lab.Host, state string) {
	t.Helper()
	labtest.Run(t, h, "ip", "link", "set", h.Iface, state)
}

// waitLink waits until the engine reports the link state up and the
// given counts of outages and recoveries: the kernel's notification
// reaches the engine's monitor a moment after `ip` returns.
func waitLink(t *testing.T, e *engine.Engine, up bool, downs, ups uint64) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		c := e.Counters()
		if e.LinkUp() == up && c.LinkDowns == downs && c.LinkUps == ups {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("link up %v, %d downs, %d ups; want %v, %d, %d", e.LinkUp(), c.LinkDowns, c.LinkUps, up, downs, ups)
		}
		time.Sleep(time.Millisecond)
	}
}

// waitStopped waits for Done and checks that Err wraps want and names
// the interface.
func waitStopped(t *testing.T, e *engine.Engine, iface string, want error, limit time.Duration) {
	t.Helper()
	select {
	case <-e.Done():
	case <-time.After(limit):
		t.Fatalf("the engine has not stopped %v later", limit)
	}
	err := e.Err()
	if !errors.Is(err, want) || !strings.Contains(err.Error(), iface) {
		t.Errorf("Err() = %v, want an error wrapping %v that names %s", err, want, iface)
	} else {
		t.Logf("Err() = %v", err)
	}
}

// TestLinkFail: under LinkFail the engine stops when its link goes down,
// with an error wrapping ENETDOWN; Close is still needed and quick, and
// the final counters add up.
func TestLinkFail(t *testing.T) {
	a, b, e := echoLab(t, &engine.Config{OnLinkDown: engine.LinkFail}, echoPort)
	echoBefore(t, b, netip.AddrPortFrom(a.IPv4.Addr(), echoPort))
	setLink(t, a, "down")
	start := time.Now()
	waitStopped(t, e, a.Iface, syscall.ENETDOWN, 5*time.Second)
	t.Logf("stopped %v after `ip link set down` returned", time.Since(start).Round(10*time.Microsecond))
	// Coming back changes nothing: the engine has stopped.
	setLink(t, a, "up")
	if _, err := echoOnce(b, netip.AddrPortFrom(a.IPv4.Addr(), echoPort), "after", 300*time.Millisecond); err == nil {
		t.Error("a stopped engine answered")
	}
	if err := closeWithin(t, e, 5*time.Second); err != nil {
		t.Errorf("Close after stopping: %v", err)
	}
	st := e.Status()
	if err := st.Counters.Check(); err != nil {
		t.Error(err)
	}
	if st.Counters.LinkDowns != 1 || st.LinkUp {
		t.Errorf("LinkDowns %d, LinkUp %v; want 1, false", st.Counters.LinkDowns, st.LinkUp)
	}
	if !errors.Is(e.Err(), syscall.ENETDOWN) {
		t.Errorf("Close changed Err to %v", e.Err())
	}

	// An interface that is down at Open fails Open under LinkFail.
	setLink(t, a, "down")
	if e, err := tryOpen(a, &engine.Config{OnLinkDown: engine.LinkFail}); !errors.Is(err, syscall.ENETDOWN) {
		if e != nil {
			e.Close()
		}
		t.Errorf("Open on a down interface under LinkFail: %v, want ENETDOWN", err)
	}
}

// TestInterfaceDeleted deletes the engine's interface (`ip link del` in
// its namespace, which takes the veth pair away) under either policy:
// the engine stops by itself with an error wrapping ENODEV that names
// the interface, not ENETDOWN (the kernel closes a device before it
// unregisters it), and Close returns promptly.
func TestInterfaceDeleted(t *testing.T) {
	for _, policy := range []engine.LinkPolicy{engine.LinkResume, engine.LinkFail} {
		t.Run(policy.String(), func(t *testing.T) {
			a, b, e := echoLab(t, &engine.Config{OnLinkDown: policy}, echoPort)
			p := bind(t, e, 5000)
			echoBefore(t, b, netip.AddrPortFrom(a.IPv4.Addr(), echoPort))
			labtest.Run(t, a, "ip", "link", "del", a.Iface)
			start := time.Now()
			waitStopped(t, e, a.Iface, syscall.ENODEV, 5*time.Second)
			t.Logf("stopped %v after `ip link del` returned", time.Since(start).Round(10*time.Microsecond))
			if err := p.Send(netip.AddrPortFrom(b.IPv4.Addr(), 9), []byte("anyone?")); err == nil {
				t.Error("Send on a removed interface succeeded")
			}
			if err := closeWithin(t, e, 5*time.Second); err != nil {
				t.Errorf("Close after the interface was removed: %v", err)
			}
			// openEngine's cleanup checks the final counters.
		})
	}
}

// TestPeerNamespaceDeleted deletes the peer's namespace under a running
// engine, which destroys the veth pair and with it the engine's
// interface. The engine stops by itself with an error wrapping ENODEV.
// Nothing may hang: Close returns promptly and cleanly, a waiting Recv
// returns net.ErrClosed, and what the application tries meanwhile fails
// with an error that says the device is gone.
func TestPeerNamespaceDeleted(t *testing.T) {
	a, b, e := echoLab(t, nil, echoPort)
	p := bind(t, e, 5000)
	echoBefore(t, b, netip.AddrPortFrom(a.IPv4.Addr(), echoPort))
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

	// The engine notices by itself: the veth went with the namespace.
	waitStopped(t, e, a.Iface, syscall.ENODEV, 5*time.Second)

	err := p.Send(netip.AddrPortFrom(b.IPv4.Addr(), 9), []byte("anyone?"))
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
	// openEngine's cleanup checks the final counters.
}

// TestOwnNamespaceNameDeleted deletes the name of the engine's own
// namespace while it serves. The namespace lives on as long as the
// engine's sockets hold it, so the engine keeps answering the peer, and
// closes cleanly afterwards.
func TestOwnNamespaceNameDeleted(t *testing.T) {
	a, b, e := echoLab(t, nil, echoPort)
	dst := netip.AddrPortFrom(a.IPv4.Addr(), echoPort)
	run(t, "ip", "netns", "del", a.Name)
	if _, err := echoWithin(b, dst, "after", 2*time.Second); err != nil {
		t.Errorf("echo after the engine's namespace lost its name: %v", err)
	}
	if _, err := e.Bind(netip.AddrPortFrom(netip.Addr{}, 5000)); err != nil {
		t.Errorf("Bind in a namespace without a name: %v", err)
	}
	if err := e.Err(); err != nil {
		t.Errorf("the engine stopped: %v", err)
	}
	if err := closeWithin(t, e, 5*time.Second); err != nil {
		t.Errorf("Close: %v", err)
	}
	// openEngine's cleanup checks the final counters.
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
	a, b, e := echoLab(t, &engine.Config{Workers: 2, ZeroCopy: zeroCopy}, echoPort)
	p := bind(t, e, slowPort)

	holder := bind(t, e, slowPort+1)

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

	genDone := make(chan *loadgen.Summary, 1)
	go func() {
		s, err := runGenErr(b, &loadgen.Config{
			Spec:     loadgen.Spec{Dst: netip.AddrPortFrom(a.IPv4.Addr(), echoPort), DstPorts: 3, SrcPorts: 64},
			SendOnly: true,
		}, loadgen.Load{Duration: 2 * time.Second})
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
		if sig, ok := loadgen.ParseSignature(held[i].Payload); !ok || sig.Tag == 0 {
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
	// openEngine's cleanup checks the final counters.
}

// runGenErr is runGen for goroutines that must not call t.Fatal.
func runGenErr(h *lab.Host, cfg *loadgen.Config, load loadgen.Load) (*loadgen.Summary, error) {
	cfg.Load = load
	return lab.OnInterface(h, func(ifi *net.Interface) (*loadgen.Summary, error) {
		return loadgen.Run(context.Background(), ifi, cfg, nil)
	})
}

// TestStatusAfterClose: `pktengine serve` prints its final status after
// closing the engine, so that every frame the workers took is counted.
// Status must work then, list the ports the engine had with their final
// counters, and include the rings' last statistics.
func TestStatusAfterClose(t *testing.T) {
	a, b, e := echoLab(t, nil, echoPort)
	const queuedPort, echoes, queued = 5000, 20, 5
	if _, err := e.Bind(netip.AddrPortFrom(netip.Addr{}, queuedPort)); err != nil {
		t.Fatal(err)
	}
	for i := range echoes {
		msg := fmt.Sprintf("echo %d", i)
		if got, err := echoOnce(b, netip.AddrPortFrom(a.IPv4.Addr(), echoPort), msg, time.Second); err != nil || got != msg {
			t.Fatalf("echo %d: %q, %v", i, got, err)
		}
	}
	c := labtest.DialUDP(t, b, netip.AddrPortFrom(a.IPv4.Addr(), queuedPort))
	for range queued {
		if _, err := c.Write([]byte("queued")); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(3 * time.Second)
	for portInfo(t, e, queuedPort).InDatagrams < queued {
		if time.Now().After(deadline) {
			t.Fatalf("port %d has %d datagrams, want %d", queuedPort, portInfo(t, e, queuedPort).InDatagrams, queued)
		}
		time.Sleep(time.Millisecond)
	}
	if err := closeWithin(t, e, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	st := e.Status()
	if len(st.Ports) != 2 {
		t.Fatalf("Status after Close lists %d ports, want 2: %+v", len(st.Ports), st.Ports)
	}
	if p := st.Ports[0]; p.Port != echoPort || p.InDatagrams != echoes || p.OutDatagrams != echoes {
		t.Errorf("echo port after Close: %+v, want %d in and out", p, echoes)
	}
	if p := st.Ports[1]; p.Port != queuedPort || p.InDatagrams != queued || p.QueueLen != queued {
		t.Errorf("queued port after Close: %+v, want %d in and queued", p, queued)
	}
	if err := st.Counters.Check(); err != nil {
		t.Error(err)
	}
	if st.Counters.FramesIn < echoes+queued || st.Counters.RingPackets < echoes+queued {
		t.Errorf("after Close: %d frames in, %d in the rings; want at least %d", st.Counters.FramesIn, st.Counters.RingPackets, echoes+queued)
	}
	if !errors.Is(e.Err(), net.ErrClosed) {
		t.Errorf("Err after Close: %v, want net.ErrClosed", e.Err())
	}
}
