//go:build linux

package xdp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pktengine/pktengine/frame"
	"github.com/pktengine/pktengine/internal/lab"
	"github.com/pktengine/pktengine/internal/labtest"
	"github.com/pktengine/pktengine/ring"
)

// fullChecksums is the lab for exchanges with kernel sockets: a local
// socket on veth hands the peer a partial UDP checksum (the pseudo-header
// sum, CHECKSUM_PARTIAL), and unlike a packet ring AF_XDP has no flag to
// say so: a reply swapped in place would carry it back, and the client's
// kernel would drop it. With transmit checksum offload off, the kernel
// completes checksums in software, as a real NIC does on the wire.
var fullChecksums = &lab.Config{Offloads: map[string]bool{"tx": false}}

// inIface is lab.OnInterface for work on h's lab interface that returns
// only an error: it runs fn in h's namespace, where a socket or a program
// attachment has to be made.
func inIface(h *lab.Host, fn func(ifi *net.Interface) error) error {
	_, err := lab.OnInterface(h, func(ifi *net.Interface) (struct{}, error) { return struct{}{}, fn(ifi) })
	return err
}

// xdpLab is a lab whose host A serves its addresses with the steering
// program and one AF_XDP socket on queue 0.
type xdpLab struct {
	l    *lab.Lab
	a, b *lab.Host
	ifi  *net.Interface // A's lab interface
	prog *Program
	sock *Socket
}

func newXDPLab(t testing.TB, labCfg *lab.Config, cfg *Config) *xdpLab {
	t.Helper()
	return newXDPLabProgram(t, labCfg, nil, cfg)
}

// newXDPLabProgram is newXDPLab with a ProgramConfig (whose Addrs are
// replaced by A's addresses).
func newXDPLabProgram(t testing.TB, labCfg *lab.Config, pcfg *ProgramConfig, cfg *Config) *xdpLab {
	t.Helper()
	var pc ProgramConfig
	if pcfg != nil {
		pc = *pcfg
	}
	x := &xdpLab{l: labtest.New(t, labCfg)}
	x.a, x.b = x.l.A(), x.l.B()
	err := inIface(x.a, func(ifi *net.Interface) error {
		x.ifi = ifi
		pc.Addrs = []netip.Addr{x.a.IPv4.Addr(), x.a.IPv6.Addr()}
		var err error
		x.prog, err = Attach(x.ifi, &pc)
		if err != nil {
			return err
		}
		// Cleanups run last-registered first: the socket closes, then
		// the program is detached and checked gone, then the lab goes.
		t.Cleanup(func() { x.closeProgram(t) })
		if x.sock, err = Listen(x.ifi, 0, cfg); err != nil {
			return err
		}
		t.Cleanup(func() { x.sock.Close() })
		return x.prog.Register(x.sock)
	})
	if err != nil {
		t.Fatalf("xdp lab: %+v", err)
	}
	return x
}

// closeProgram detaches the program and fails the test if an XDP program
// is still on the interface afterwards.
func (x *xdpLab) closeProgram(t testing.TB) {
	if err := x.prog.Close(); err != nil {
		t.Errorf("Program.Close: %v", err)
	}
	if att := x.attachment(t); att.mode != xdpAttachedNone {
		t.Errorf("an XDP program is still attached after Close: %+v", att)
	}
}

func (x *xdpLab) attachment(t testing.TB) xdpAttachment {
	t.Helper()
	var att xdpAttachment
	if err := x.a.Do(func() error {
		var err error
		att, err = queryXDP(x.ifi.Index)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return att
}

// echo answers UDP datagrams in place until ctx ends: the received
// descriptor is rewritten with frame.ReplyInPlace and transmitted as it
// is. every, if not nil, runs after each batch on the owner goroutine.
func echo(ctx context.Context, s *Socket, every func(*Batch)) error {
	var b Batch
	var p frame.Packet
	for {
		if err := s.ReadInto(ctx, &b); err != nil {
			return err
		}
		for i := range b.Len() {
			data := b.Data(i)
			if p.Decode(data) != frame.ReasonOK {
				continue
			}
			n, err := frame.ReplyInPlace(data, &p, 0)
			if err != nil {
				continue
			}
			if err := b.Transmit(i, data[:n]); err != nil {
				return err
			}
		}
		if every != nil {
			every(&b)
		}
		if err := s.Flush(); err != nil {
			return err
		}
	}
}

func startEcho(t *testing.T, s *Socket, every func(*Batch)) (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- echo(ctx, s, every) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			err = <-errc
			if errors.Is(err, context.Canceled) {
				err = nil
			}
		})
		return err
	}
	t.Cleanup(func() { stop() })
	return stop
}

// roundTrip sends msg from host h to dst over kernel UDP and returns the
// answer.
func roundTrip(h *lab.Host, network string, dst netip.AddrPort, msg []byte) ([]byte, error) {
	c, err := h.DialUDP(network, nil, net.UDPAddrFromAddrPort(dst))
	if err != nil {
		return nil, err
	}
	defer c.Close()
	buf := make([]byte, 2048)
	for try := 0; try < 5; try++ {
		if _, err := c.Write(msg); err != nil {
			return nil, err
		}
		c.SetReadDeadline(time.Now().Add(time.Second))
		n, err := c.Read(buf)
		if err == nil {
			return buf[:n], nil
		}
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			return nil, err
		}
	}
	return nil, fmt.Errorf("no answer from %v", dst)
}

func TestLabEcho(t *testing.T) {
	t.Run("native", func(t *testing.T) { testEcho(t, nil) })
	t.Run("generic", func(t *testing.T) { testEcho(t, &ProgramConfig{Generic: true}) })
}

func testEcho(t *testing.T, pcfg *ProgramConfig) {
	x := newXDPLabProgram(t, fullChecksums, pcfg, nil)
	if att := x.attachment(t); pcfg != nil && pcfg.Generic && att.mode != xdpAttachedSKB {
		t.Fatalf("attachment %+v, want generic (SKB) mode", att)
	}
	var queues int
	if err := x.a.Do(func() error {
		var err error
		queues, err = RXQueues(x.ifi)
		return err
	}); err != nil || queues < 1 {
		t.Fatalf("RXQueues: %d, %v", queues, err)
	}
	t.Logf("%s has %d RX queues", x.ifi.Name, queues)
	if x.sock.Mode() != ModeCopy {
		t.Logf("bound in %v mode (veth offers copy mode only, so far)", x.sock.Mode())
	}
	stop := startEcho(t, x.sock, nil)
	for _, tc := range []struct {
		network string
		dst     netip.Addr
	}{{"udp4", x.a.IPv4.Addr()}, {"udp6", x.a.IPv6.Addr()}} {
		for i := range 3 {
			msg := fmt.Appendf(nil, "hello %s %d", tc.network, i)
			got, err := roundTrip(x.b, tc.network, netip.AddrPortFrom(tc.dst, 7), msg)
			if err != nil {
				t.Fatalf("%s: %v", tc.network, err)
			}
			if !bytes.Equal(got, msg) {
				t.Fatalf("%s: got %q, want %q", tc.network, got, msg)
			}
		}
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	st, err := x.sock.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Received < 6 || st.Transmitted < 6 {
		t.Errorf("stats %+v: want at least 6 frames each way", st)
	}
	ps, err := x.prog.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if ps[ClassUDPv4] < 3 || ps[ClassUDPv6] < 3 {
		t.Errorf("program stats %v", ps)
	}
	c, err := x.sock.CheckFrames()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v; %v", st, c)
}

// TestLabPassThrough checks that what the engine does not serve reaches
// the kernel: UDP to another address of the same interface (after ARP,
// which the program passes too), and TCP to the engine's own address.
func TestLabPassThrough(t *testing.T) {
	x := newXDPLab(t, fullChecksums, nil)
	startEcho(t, x.sock, nil)
	extra := netip.MustParseAddr("198.18.0.101")
	if out, err := exec.Command("ip", "-n", x.a.Name, "addr", "add", extra.String()+"/24", "dev", x.a.Iface).CombinedOutput(); err != nil {
		t.Fatalf("ip addr add: %v: %s", err, out)
	}
	kernel, err := x.a.ListenUDP("udp4", &net.UDPAddr{IP: extra.AsSlice(), Port: 7})
	if err != nil {
		t.Fatal(err)
	}
	defer kernel.Close()
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := kernel.ReadFrom(buf)
			if err != nil {
				return
			}
			kernel.WriteTo(append([]byte("kernel:"), buf[:n]...), from)
		}
	}()
	got, err := roundTrip(x.b, "udp4", netip.AddrPortFrom(extra, 7), []byte("ping"))
	if err != nil || string(got) != "kernel:ping" {
		t.Fatalf("kernel socket on another address: %q, %v", got, err)
	}

	var ln net.Listener
	if err := x.a.Do(func() error {
		var err error
		ln, err = net.Listen("tcp4", netip.AddrPortFrom(x.a.IPv4.Addr(), 8080).String())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			c.Write([]byte("tcp ok"))
			c.Close()
		}
	}()
	var conn net.Conn
	if err := x.b.Do(func() error {
		var err error
		conn, err = net.DialTimeout("tcp4", netip.AddrPortFrom(x.a.IPv4.Addr(), 8080).String(), 3*time.Second)
		return err
	}); err != nil {
		t.Fatalf("TCP to the engine's address: %v", err)
	}
	defer conn.Close()
	conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	buf := make([]byte, 16)
	n, _ := conn.Read(buf)
	if string(buf[:n]) != "tcp ok" {
		t.Fatalf("TCP answer %q", buf[:n])
	}
	ps, err := x.prog.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if ps[ClassPassed] == 0 || ps[ClassARP] != 0 {
		t.Errorf("program stats %v: want passed frames and no ARP steered (the neighbours are static, and .101 is the kernel's)", ps)
	}
}

// TestLabOverloadAccounting floods the socket while the responder holds
// batches for a while and releases them from other goroutines, so that the
// RX ring overflows and the fill ring runs dry, and checks after every
// batch and at the end that every UMEM frame is accounted for.
func TestLabOverloadAccounting(t *testing.T) {
	x := newXDPLab(t, nil, &Config{FrameCount: 256, FillSize: 64, RXSize: 64, TXSize: 64, CompletionSize: 64, BatchSize: 16})
	// Batches go to a releaser goroutine, which gives their frames back
	// late and returns the Batch to the pool.
	pool := make(chan *Batch, 16)
	for range cap(pool) {
		pool <- new(Batch)
	}
	releases := make(chan *Batch, 16)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for b := range releases {
			time.Sleep(50 * time.Microsecond)
			b.Release()
			pool <- b
		}
	}()
	var checkErr error
	checks := 0
	stop := startEcho(t, x.sock, func(b *Batch) {
		spare := <-pool
		*spare, *b = *b, *spare
		releases <- spare
		if c, err := x.sock.CheckFrames(); err != nil && checkErr == nil {
			checkErr = fmt.Errorf("after %d batches: %v: %w", checks, c, err)
		}
		checks++
	})
	// Flood from B: several kernel sockets, as fast as they go.
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	var fw sync.WaitGroup
	for range 3 {
		fw.Add(1)
		go func() {
			defer fw.Done()
			c, err := x.b.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(x.a.IPv4.Addr(), 7)))
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			msg := make([]byte, 18)
			for ctx.Err() == nil {
				c.Write(msg)
			}
		}()
	}
	fw.Wait()
	time.Sleep(50 * time.Millisecond)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	close(releases)
	wg.Wait()
	if checkErr != nil {
		t.Fatal(checkErr)
	}
	// Quiet now: flush and reclaim what is in flight, and every frame
	// is free or with the kernel for receiving.
	for range 100 {
		x.sock.Flush()
		if c, _ := x.sock.CheckFrames(); c.TX == 0 && c.Completion == 0 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	c, err := x.sock.CheckFrames()
	if err != nil {
		t.Fatal(err)
	}
	if c.Held != 0 || c.TX != 0 || c.Completion != 0 || c.Free+c.Fill+c.KernelRX != c.Total {
		t.Errorf("after the flood: %v", c)
	}
	st, _ := x.sock.Stats()
	t.Logf("%d checks; %+v; %v", checks, st, c)
	if st.Kernel.RxRingFull+st.Kernel.RxFillRingEmptyDescs+st.Kernel.RxDropped == 0 {
		t.Errorf("no overload seen (kernel stats %+v): the test did not test what it says", st.Kernel)
	}
	if st.Received == 0 || st.Completed == 0 {
		t.Errorf("stats %+v", st)
	}
	// After Close, CheckFrames is the count taken as UMEM went: every
	// batch released, so nothing held.
	if err := x.sock.Close(); err != nil {
		t.Fatal(err)
	}
	final, err := x.sock.CheckFrames()
	if err != nil {
		t.Fatalf("CheckFrames after Close: %v", err)
	}
	if final.Held != 0 || final.Sum() != final.Total {
		t.Errorf("final count %v", final)
	}
}

// TestLabTXLinkDown sends with the interface down: send(2) says
// ENETDOWN and the frames stay on the TX ring, where nothing can take
// them back, until the link is up (they go then) or the socket closes
// (the final count has them in TX: never sent).
func TestLabTXLinkDown(t *testing.T) {
	x := newXDPLab(t, nil, &Config{FrameCount: 64, TXSize: 32, CompletionSize: 32})
	setLink := func(state string) {
		t.Helper()
		if out, err := x.a.Command(context.Background(), "ip", "link", "set", x.a.Iface, state).CombinedOutput(); err != nil {
			t.Fatalf("ip link set %s: %v %s", state, err, out)
		}
	}
	f := udpFrame(t, ours4, other4, nil, nil)
	send := func(n int) error {
		for range n {
			buf, err := x.sock.Next(context.Background())
			if err != nil {
				return err
			}
			if err := x.sock.Commit(copy(buf, f)); err != nil {
				return err
			}
		}
		return x.sock.Flush()
	}
	setLink("down")
	const n = 10
	if err := send(n); !errors.Is(err, syscall.ENETDOWN) {
		t.Fatalf("Flush with the link down: %v, want ENETDOWN", err)
	}
	if c, err := x.sock.CheckFrames(); err != nil || c.TX+c.Completion != n {
		t.Fatalf("with the link down: %v, %v; want %d frames in TX", c, err, n)
	}
	setLink("up")
	var st Stats
	deadline := time.Now().Add(3 * time.Second)
	for st.Completed < n && time.Now().Before(deadline) {
		x.sock.Flush()
		st, _ = x.sock.Stats()
		time.Sleep(time.Millisecond)
	}
	if st.Completed != n || st.TXDropped != 0 {
		t.Errorf("after the link came back: %+v, want the %d frames completed", st, n)
	}
	// Stranded at close: the final count says so.
	setLink("down")
	if err := send(3); !errors.Is(err, syscall.ENETDOWN) {
		t.Fatalf("Flush with the link down: %v, want ENETDOWN", err)
	}
	if err := x.sock.Close(); err != nil {
		t.Fatal(err)
	}
	c, err := x.sock.CheckFrames()
	if err != nil {
		t.Fatal(err)
	}
	if c.TX+c.Completion != 3 || c.Sum() != c.Total {
		t.Errorf("final count %v, want 3 frames never sent", c)
	}
}

// TestLabCloseRemovesProgram checks with netlink and with ip(8) that no
// XDP program is left on the interface after Close.
func TestLabCloseRemovesProgram(t *testing.T) {
	x := newXDPLab(t, nil, nil)
	att := x.attachment(t)
	if att.mode != xdpAttachedDrv || att.progID == 0 {
		t.Fatalf("attachment %+v, want a native program", att)
	}
	if out, _ := exec.Command("ip", "-n", x.a.Name, "link", "show", "dev", x.a.Iface).CombinedOutput(); !strings.Contains(string(out), "prog/xdp") {
		t.Fatalf("ip link show does not show the program:\n%s", out)
	}
	x.closeProgram(t)
	if out, _ := exec.Command("ip", "-n", x.a.Name, "link", "show", "dev", x.a.Iface).CombinedOutput(); strings.Contains(string(out), "xdp") {
		t.Fatalf("ip link show still shows XDP after Close:\n%s", out)
	}
	if err := x.prog.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestLabZeroAllocs holds the receive, transmit-in-place and flush path,
// and the Next/Commit/Flush path, to zero allocations per frame.
func TestLabZeroAllocs(t *testing.T) {
	x := newXDPLab(t, fullChecksums, &Config{BatchSize: 1})
	const runs = 100
	c, err := x.b.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(x.a.IPv4.Addr(), 7)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for range runs + 10 {
		if _, err := c.Write([]byte("allocs")); err != nil {
			t.Fatal(err)
		}
	}
	// The datagrams are on the RX ring once the program has counted them.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		ps, _ := x.prog.Stats()
		if ps[ClassUDPv4] >= runs+10 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("program stats %v", ps)
		}
	}
	var b Batch
	var p frame.Packet
	ctx := context.Background()
	var loopErr error
	allocs := testing.AllocsPerRun(runs, func() {
		if err := x.sock.ReadInto(ctx, &b); err != nil {
			loopErr = err
			return
		}
		for i := range b.Len() {
			data := b.Data(i)
			if p.Decode(data) == frame.ReasonOK {
				if n, err := frame.ReplyInPlace(data, &p, 0); err == nil {
					b.Transmit(i, data[:n])
				}
			}
		}
		if err := x.sock.Flush(); err != nil {
			loopErr = err
		}
	})
	if loopErr != nil {
		t.Fatal(loopErr)
	}
	if allocs != 0 {
		t.Errorf("receive and reply in place: %v allocations per batch, want 0", allocs)
	}
	b.Release()

	// One UMEM per queue: the transmit-only socket takes queue 0 over.
	x.sock.Close()
	var s *Socket
	if err := x.a.Do(func() error {
		var err error
		s, err = Listen(x.ifi, 0, &Config{TXOnly: true})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tmpl := udpFrame(t, x.a.IPv4.Addr(), x.b.IPv4.Addr(), nil, nil)
	if n, err := s.Prefill(tmpl); err != nil || n != s.FrameCount() {
		t.Fatalf("Prefill: %d, %v", n, err)
	}
	allocs = testing.AllocsPerRun(runs, func() {
		for range 8 {
			buf, err := s.Next(ctx)
			if err != nil {
				loopErr = err
				return
			}
			buf[len(tmpl)-1]++ // vary the payload
			if err := s.Commit(len(tmpl)); err != nil {
				loopErr = err
			}
		}
		if err := s.Flush(); err != nil {
			loopErr = err
		}
	})
	if loopErr != nil {
		t.Fatal(loopErr)
	}
	if allocs != 0 {
		t.Errorf("Next, Commit and Flush: %v allocations per 8 frames, want 0", allocs)
	}
	if _, err := s.CheckFrames(); err != nil {
		t.Error(err)
	}
}

// TestLabTXOnlySender sends from a transmit-only socket, the generator's
// way: the template is written into every frame once, and each frame only
// has its source port rewritten (checksum updated) before Commit. A kernel
// socket in B counts what arrives.
func TestLabTXOnlySender(t *testing.T) {
	l := labtest.New(t, nil)
	a, bh := l.A(), l.B()
	conn, err := bh.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(bh.IPv4.Addr(), 9000)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	s := labtest.Open(t, a, func(ifi *net.Interface) (*Socket, error) {
		return Listen(ifi, 0, &Config{TXOnly: true, FrameCount: 256, TXSize: 64, CompletionSize: 64})
	})
	tmpl := liveTemplate(t, a, bh, false, []byte(livePayload))
	if _, err := s.Prefill(tmpl); err != nil {
		t.Fatal(err)
	}
	var p frame.Packet
	if p.Decode(tmpl) != frame.ReasonOK {
		t.Fatal("template")
	}
	const total = 200 // within the receiver's default buffer
	ctx := context.Background()
	for i := range total {
		buf, err := s.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		p.SetSrcChecksummed(buf, netip.AddrPortFrom(a.IPv4.Addr(), uint16(40000+i%8)))
		if err := s.Commit(len(tmpl)); err != nil {
			t.Fatal(err)
		}
		if i%32 == 31 {
			if err := s.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	got, ports := 0, map[uint16]bool{}
	buf := make([]byte, 2048)
	for got < total {
		conn.SetReadDeadline(time.Now().Add(2 * time.Second))
		n, from, err := conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			break
		}
		if string(buf[:n]) == livePayload {
			got++
			ports[from.Port()] = true
		}
	}
	if got != total || len(ports) != 8 {
		st, _ := s.Stats()
		t.Fatalf("received %d of %d frames from %d ports; %+v", got, total, len(ports), st)
	}
	for range 100 {
		if c, _ := s.CheckFrames(); c.TX == 0 {
			break
		}
		s.Flush()
		time.Sleep(time.Millisecond)
	}
	c, err := s.CheckFrames()
	if err != nil || c.Free != c.Total {
		t.Fatalf("%v, %v: every frame should be free again", c, err)
	}
}

// TestLabVLANTagged sends an 802.1Q-tagged datagram from a packet socket in
// B and checks that it reaches the AF_XDP socket with its tag in the frame
// (veth hands XDP the frame as sent) when the program steers tagged
// frames, and the kernel otherwise.
func TestLabVLANTagged(t *testing.T) {
	l := labtest.New(t, nil)
	a, bh := l.A(), l.B()
	detachAll(t, a)
	var sock *Socket
	prog, err := attachIn(t, a, &ProgramConfig{Addrs: []netip.Addr{a.IPv4.Addr()}, VLAN: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := inIface(a, func(ifi *net.Interface) error {
		var err error
		if sock, err = Listen(ifi, 0, nil); err != nil {
			return err
		}
		return prog.Register(sock)
	}); err != nil {
		t.Fatal(err)
	}
	defer sock.Close()
	tx := labtest.Open(t, bh, func(ifi *net.Interface) (ring.Transmitter, error) { return ring.NewTransmitter(ifi, nil) })
	s := &frame.UDPSpec{SrcMAC: frame.MAC(bh.MAC), DstMAC: frame.MAC(a.MAC), VLANs: []frame.VLANTag{{TPID: 0x8100, TCI: 42}},
		Src: netip.AddrPortFrom(bh.IPv4.Addr(), 40000), Dst: netip.AddrPortFrom(a.IPv4.Addr(), 7), Payload: []byte("tagged")}
	f := make([]byte, frame.UDPFrameLen(s))
	n, err := frame.BuildUDP(f, s)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	labtest.Send(t, tx, f[:n])
	var b Batch
	if err := sock.ReadInto(ctx, &b); err != nil {
		t.Fatal(err)
	}
	defer b.Release()
	got := b.Data(0)
	if !bytes.Equal(got, f[:n]) {
		t.Fatalf("received % x\nsent     % x", got, f[:n])
	}
	if ps, _ := prog.Stats(); ps[ClassUDPv4] != 1 {
		t.Errorf("program stats %v", ps)
	}
}

// TestLabTwoQueues gives both veth ends two channels, opens one socket per
// receive queue, as the engine will, and checks that flows spread over
// both queues and every datagram is answered.
func TestLabTwoQueues(t *testing.T) {
	l := labtest.New(t, fullChecksums)
	a, bh := l.A(), l.B()
	for _, h := range []*lab.Host{a, bh} {
		if out, err := h.Command(context.Background(), "ethtool", "-L", h.Iface, "rx", "2", "tx", "2").CombinedOutput(); err != nil {
			t.Fatalf("ethtool -L in %s: %v: %s", h.Name, err, out)
		}
	}
	detachAll(t, a)
	prog, err := attachIn(t, a, &ProgramConfig{Addrs: []netip.Addr{a.IPv4.Addr()}})
	if err != nil {
		t.Fatal(err)
	}
	var socks []*Socket
	if err := inIface(a, func(ifi *net.Interface) error {
		n, err := RXQueues(ifi)
		if err != nil {
			return err
		}
		if n != 2 {
			return fmt.Errorf("RXQueues = %d, want 2", n)
		}
		for q := range n {
			s, err := Listen(ifi, q, nil)
			if err != nil {
				return err
			}
			t.Cleanup(func() { s.Close() })
			socks = append(socks, s)
			if err := prog.Register(s); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	var stops []func() error
	for _, s := range socks {
		stops = append(stops, startEcho(t, s, nil))
	}
	for i := range 32 {
		msg := fmt.Appendf(nil, "flow %d", i)
		got, err := roundTrip(bh, "udp4", netip.AddrPortFrom(a.IPv4.Addr(), 7), msg)
		if err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("flow %d: %q, %v", i, got, err)
		}
	}
	for q, s := range socks {
		if err := stops[q](); err != nil {
			t.Fatal(err)
		}
		st, _ := s.Stats()
		t.Logf("queue %d: %d received", q, st.Received)
		if st.Received == 0 {
			t.Errorf("queue %d received nothing: the flows did not spread", q)
		}
	}
	if ps, _ := prog.Stats(); ps[ClassNoSocket] != 0 {
		t.Errorf("program stats %v: frames found no socket", ps)
	}
}

// TestLabRXWaiting: Stats counts the frames on the RX ring that nobody
// has taken yet, before and after Close, so that Received + RXWaiting is
// everything the kernel delivered.
func TestLabRXWaiting(t *testing.T) {
	x := newXDPLab(t, nil, nil)
	c, err := x.b.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(x.a.IPv4.Addr(), 7)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	send := func(n int) {
		for range n {
			if _, err := c.Write([]byte("wait")); err != nil {
				t.Fatal(err)
			}
		}
	}
	waitFor := func(want uint64) Stats {
		t.Helper()
		deadline := time.Now().Add(3 * time.Second)
		for {
			st, _ := x.sock.Stats()
			if st.Received+st.RXWaiting >= want || time.Now().After(deadline) {
				return st
			}
			time.Sleep(time.Millisecond)
		}
	}
	send(5)
	if st := waitFor(5); st.RXWaiting != 5 || st.Received != 0 {
		t.Fatalf("5 sent, none read: waiting %d, received %d", st.RXWaiting, st.Received)
	}
	var b Batch
	if err := x.sock.ReadInto(context.Background(), &b); err != nil {
		t.Fatal(err)
	}
	b.Release()
	if st, _ := x.sock.Stats(); st.RXWaiting != 0 || st.Received != 5 {
		t.Fatalf("after reading: waiting %d, received %d", st.RXWaiting, st.Received)
	}
	send(3)
	waitFor(8)
	if err := x.sock.Close(); err != nil {
		t.Fatal(err)
	}
	if st, err := x.sock.Stats(); !errors.Is(err, ErrClosed) || st.RXWaiting != 3 || st.Received != 5 {
		t.Fatalf("after Close: waiting %d, received %d, %v; want 3, 5, ErrClosed", st.RXWaiting, st.Received, err)
	}
}
