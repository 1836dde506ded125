//go:build linux

package xdp

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// TestLabReadIntoContextAndClose checks that a parked reader returns the
// context's error when it ends, and ErrClosed when another goroutine
// closes the socket; and that a batch still held after Close stays
// readable until it is released.
func TestLabReadIntoContextAndClose(t *testing.T) {
	x := newXDPLab(t, fullChecksums, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	var b Batch
	if err := x.sock.ReadInto(ctx, &b); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("ReadInto with no traffic and a deadline: %v", err)
	}

	// Receive one frame and keep its batch across Close.
	c, err := x.b.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(x.a.IPv4.Addr(), 7)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("kept across Close")); err != nil {
		t.Fatal(err)
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel2()
	if err := x.sock.ReadInto(ctx2, &b); err != nil {
		t.Fatal(err)
	}
	kept := b
	b = Batch{}

	errc := make(chan error, 1)
	go func() { errc <- x.sock.ReadInto(context.Background(), &b) }()
	time.Sleep(50 * time.Millisecond) // let it park
	if err := x.sock.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("parked ReadInto after Close: %v, want ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not wake the parked reader")
	}
	// UMEM is still mapped for the kept batch.
	data := kept.Data(0)
	if got := string(data[len(data)-len("kept across Close"):]); got != "kept across Close" {
		t.Fatalf("kept frame reads %q", got)
	}
	kept.Release()
	if err := x.sock.ReadInto(context.Background(), &b); !errors.Is(err, ErrClosed) {
		t.Fatalf("ReadInto after Close: %v", err)
	}
	if _, err := x.sock.Next(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Next after Close: %v", err)
	}
	if err := x.sock.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// TestLabStarvedReaderResumes holds every received batch until the fill
// ring is empty and the reader waits with no frame to give the kernel;
// releasing them from another goroutine must wake it.
func TestLabStarvedReaderResumes(t *testing.T) {
	const frames = 64
	x := newXDPLab(t, fullChecksums, &Config{FrameCount: frames, FillSize: 32, RXSize: 32, TXSize: 32, CompletionSize: 32, BatchSize: 8})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	var held []*Batch
	received := 0
	readErr := make(chan error, 1)
	go func() {
		for {
			b := new(Batch)
			if err := x.sock.ReadInto(ctx, b); err != nil {
				readErr <- err
				return
			}
			mu.Lock()
			held = append(held, b)
			received += b.Len()
			mu.Unlock()
		}
	}()
	c, err := x.b.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(x.a.IPv4.Addr(), 7)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	go func() {
		for ctx.Err() == nil {
			c.Write([]byte("starve"))
			time.Sleep(100 * time.Microsecond)
		}
	}()
	count := func() int { mu.Lock(); defer mu.Unlock(); return received }
	// Every frame but the transmit reserve ends up held: the fill ring
	// had half of them, the reader refilled the rest, and nothing comes
	// back.
	receivable := frames - x.sock.txReserve
	deadline := time.Now().Add(10 * time.Second)
	for count() < receivable {
		if time.Now().After(deadline) {
			t.Fatalf("received %d frames, want all %d held", count(), receivable)
		}
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond)
	if n := count(); n != receivable {
		t.Fatalf("received %d frames with every frame held, want %d", n, receivable)
	}

	mu.Lock()
	for _, b := range held {
		b.Release()
	}
	held = nil
	mu.Unlock()
	for count() < 2*receivable {
		if time.Now().After(deadline) {
			t.Fatalf("the reader did not resume after the release: %d frames", count())
		}
		time.Sleep(time.Millisecond)
	}
	st, _ := x.sock.Stats()
	if st.Waits == 0 {
		t.Errorf("stats %+v: the reader never waited for frames", st)
	}
	cancel()
	if err := <-readErr; !errors.Is(err, context.Canceled) {
		t.Errorf("reader: %v", err)
	}
	mu.Lock()
	for _, b := range held {
		b.Release()
	}
	mu.Unlock()
}

// TestLabNextWhileReceiveHoldsAll checks the transmit reserve: with every
// other frame held in batches, Next still lends a frame (an ARP or ICMP
// answer must go out even when the receive side has all it can take).
func TestLabNextWhileReceiveHoldsAll(t *testing.T) {
	const frames = 64
	x := newXDPLab(t, fullChecksums, &Config{FrameCount: frames, FillSize: 32, RXSize: 32, TXSize: 32, CompletionSize: 32, BatchSize: 8})
	c, err := x.b.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(x.a.IPv4.Addr(), 7)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			c.Write([]byte("hold"))
			time.Sleep(100 * time.Microsecond)
		}
	}()
	var held []*Batch
	received := 0
	for received < frames-x.sock.txReserve {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		b := new(Batch)
		err := x.sock.ReadInto(ctx, b)
		cancel()
		if err != nil {
			t.Fatalf("after %d frames: %v", received, err)
		}
		held = append(held, b)
		received += b.Len()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	buf, err := x.sock.Next(ctx)
	if err != nil {
		t.Fatalf("Next with every receivable frame held: %v", err)
	}
	n := copy(buf, udpFrame(t, x.a.IPv4.Addr(), x.b.IPv4.Addr(), nil, nil))
	if err := x.sock.Commit(n); err != nil {
		t.Fatal(err)
	}
	if err := x.sock.Flush(); err != nil {
		t.Fatal(err)
	}
	for _, b := range held {
		b.Release()
	}
	if c, err := x.sock.CheckFrames(); err != nil {
		t.Fatalf("%v: %v", c, err)
	}
}
