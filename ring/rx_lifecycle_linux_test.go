package ring_test

import (
	"context"
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/pktengine/pktengine/internal/labtest"
	"github.com/pktengine/pktengine/ring"
)

// TestReleaseOutOfOrder holds every slot of a V2 ring in single-frame
// batches and releases them in reverse. The kernel must not get any slot
// back before the oldest is released: a frame sent meanwhile is dropped
// (the kernel's next slot is still ours), not written over a frame a
// consumer may still be reading.
func TestReleaseOutOfOrder(t *testing.T) {
	l := labtest.New(t, nil)
	a, b := l.A(), l.B()
	// 2048-byte frames in 64 KiB blocks: 32 slots, the smallest V2 ring.
	rx := hostRX(t, b, &ring.RXConfig{Version: ring.V2, FrameCount: 1, BatchSize: 1, Filter: udpDstPortFilter(t, testPort)})
	tx := hostTX(t, a, nil)
	const slots = 32
	for i := range slots {
		sendFrames(t, tx, udpFrameAB(a, b, 40000, testPort, seqPayload(i)).build())
	}
	batches := make([]*ring.Batch, slots)
	for i := range batches {
		batches[i] = new(ring.Batch)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := rx.ReadInto(ctx, batches[i]); err != nil {
			t.Fatal(err)
		}
		cancel()
		_, _, p, _ := parsedUDP(batches[i].Data(0))
		if s, _ := payloadSeq(p); s != i {
			t.Fatalf("batch %d holds frame %d", i, s)
		}
	}
	// The ring is all ours now: ReadInto has nothing to offer.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	var extra ring.Batch
	if err := rx.ReadInto(ctx, &extra); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("ReadInto on a ring held by consumers: %v", err)
	}
	cancel()

	for i := slots - 1; i >= 1; i-- {
		batches[i].Release()
	}
	sendFrames(t, tx, udpFrameAB(a, b, 40000, testPort, seqPayload(1000)).build())
	st := waitStats(t, rx, func(st ring.Stats) bool { return st.Packets == slots+1 })
	if st.Packets != slots+1 || st.Drops != 1 {
		t.Fatalf("with the oldest slot still held, stats %+v: want the new frame dropped", st)
	}
	// Batch 0's data is untouched.
	_, _, p, _ := parsedUDP(batches[0].Data(0))
	if s, _ := payloadSeq(p); s != 0 {
		t.Fatalf("held frame changed to %d", s)
	}
	batches[0].Release()
	batches[0].Release() // twice is harmless

	// Everything went back at once: a full ring's worth fits again.
	for i := range slots {
		sendFrames(t, tx, udpFrameAB(a, b, 40000, testPort, seqPayload(2000+i)).build())
	}
	got := collect(t, rx, slots, 20*time.Millisecond, nil)
	if len(got) != slots {
		t.Fatalf("after release: %d frames, want %d", len(got), slots)
	}
	if st, _ := rx.Stats(); st.Drops != 1 {
		t.Errorf("drops %d after the ring was given back, want still 1", st.Drops)
	}
}

// TestCloseWhileHeld closes the ring from another goroutine while
// consumers still read frames of batches they hold and a reader waits for
// more. Run under -race; unmapping too early would crash the test.
func TestCloseWhileHeld(t *testing.T) {
	versions(t, func(t *testing.T, v ring.Version) {
		l := labtest.New(t, nil)
		a, b := l.A(), l.B()
		rx := hostRX(t, b, &ring.RXConfig{Version: v, BatchSize: 4, RetireTimeout: time.Millisecond, Filter: udpDstPortFilter(t, testPort)})
		tx := hostTX(t, a, nil)
		for i := range 64 {
			sendFrames(t, tx, udpFrameAB(a, b, 40000, testPort, seqPayload(i)).build())
			if v == ring.V3 && i%16 == 15 {
				time.Sleep(3 * time.Millisecond) // several blocks
			}
		}

		var held []*ring.Batch
		for range 3 {
			bt := new(ring.Batch)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if err := rx.ReadInto(ctx, bt); err != nil {
				t.Fatal(err)
			}
			cancel()
			held = append(held, bt)
		}

		stop := make(chan struct{})
		var consumers sync.WaitGroup
		for _, bt := range held {
			consumers.Go(func() {
				defer bt.Release()
				sum := 0
				for {
					for data := range bt.All() {
						for _, c := range data {
							sum += int(c)
						}
					}
					select {
					case <-stop:
						if sum == 0 {
							t.Error("read nothing")
						}
						return
					default:
					}
				}
			})
		}

		// A reader that keeps reading until the ring closes; it may find
		// more frames first, then has to be woken by Close.
		readerDone := make(chan error, 1)
		go func() {
			var bt ring.Batch
			defer bt.Release()
			for {
				if err := rx.ReadInto(context.Background(), &bt); err != nil {
					readerDone <- err
					return
				}
			}
		}()

		time.Sleep(20 * time.Millisecond)
		closed := make(chan error, 1)
		go func() { closed <- rx.Close() }()
		within(t, closed, nil, "Close while batches are held")
		within(t, readerDone, ring.ErrClosed, "a reader waiting when Close came")
		// The consumers still read their frames after Close.
		time.Sleep(20 * time.Millisecond)
		close(stop)
		consumers.Wait()

		var bt ring.Batch
		if err := rx.ReadInto(context.Background(), &bt); !errors.Is(err, ring.ErrClosed) {
			t.Errorf("ReadInto after Close: %v", err)
		}
		if _, _, err := rx.Read(context.Background(), make([]byte, 100)); !errors.Is(err, ring.ErrClosed) {
			t.Errorf("Read after Close: %v", err)
		}
		if _, err := rx.Stats(); !errors.Is(err, ring.ErrClosed) {
			t.Errorf("Stats after Close: %v", err)
		}
		if err := rx.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
	})
}

// TestContextCancel wakes a parked reader through its context.
func TestContextCancel(t *testing.T) {
	l := labtest.New(t, nil)
	rx := hostRX(t, l.B(), &ring.RXConfig{Version: ring.V2, Filter: udpDstPortFilter(t, testPort)})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, _, err := rx.Read(ctx, make([]byte, 2048))
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	cancel()
	within(t, done, context.Canceled, "Read parked when its context was cancelled")
}

// TestReadDeadline wakes a parked reader, and fails later calls on an
// empty ring, at its read deadline; frames that are ready come first, and
// the zero time lifts it.
func TestReadDeadline(t *testing.T) {
	l := labtest.New(t, nil)
	a, b := l.A(), l.B()
	rx := hostRX(t, b, &ring.RXConfig{Version: ring.V2, Filter: udpDstPortFilter(t, testPort)})
	tx := hostTX(t, a, nil)
	done := make(chan error, 1)
	go func() {
		var batch ring.Batch
		done <- rx.ReadInto(context.Background(), &batch)
	}()
	time.Sleep(20 * time.Millisecond)
	if err := rx.SetReadDeadline(time.Now().Add(20 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	within(t, done, os.ErrDeadlineExceeded, "ReadInto parked when its deadline passed")
	sendFrames(t, tx, udpFrameAB(a, b, 40000, testPort, seqPayload(7)).build())
	waitStats(t, rx, func(st ring.Stats) bool { return st.Packets == 1 })
	var batch ring.Batch
	if err := rx.ReadInto(context.Background(), &batch); err != nil || batch.Len() != 1 {
		t.Fatalf("ReadInto past the deadline with a frame ready: %d frames, %v", batch.Len(), err)
	}
	if err := rx.ReadInto(context.Background(), &batch); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("ReadInto past the deadline on an empty ring: %v", err)
	}
	rx.SetReadDeadline(time.Time{})
	go func() { done <- rx.ReadInto(context.Background(), &batch) }()
	sendFrames(t, tx, udpFrameAB(a, b, 40000, testPort, seqPayload(8)).build())
	within(t, done, nil, "ReadInto after the deadline was lifted")
}

func TestReadCopies(t *testing.T) {
	versions(t, func(t *testing.T, v ring.Version) {
		l := labtest.New(t, nil)
		a, b := l.A(), l.B()
		rx := hostRX(t, b, &ring.RXConfig{Version: v, RetireTimeout: time.Millisecond, Filter: udpDstPortFilter(t, testPort)})
		tx := hostTX(t, a, nil)
		const n = 50
		for i := range n {
			sendFrames(t, tx, udpFrameAB(a, b, 40000, testPort, seqPayload(i)).build())
		}
		buf := make([]byte, 2048)
		short := make([]byte, 20)
		for i := range n {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			p := buf
			if i == 7 {
				p = short
			}
			k, m, err := rx.Read(ctx, p)
			cancel()
			if err != nil {
				t.Fatal(err)
			}
			if m.Length != 50 || (i == 7 && k != 20) || (i != 7 && k != 50) {
				t.Fatalf("frame %d: copied %d, length %d", i, k, m.Length)
			}
			if i == 7 {
				continue
			}
			_, _, pl, _ := parsedUDP(buf[:k])
			if s, _ := payloadSeq(pl); s != i {
				t.Fatalf("frame %d carries %d", i, s)
			}
		}
	})
}

// TestReadIntoAllocs checks the zero-allocation path: frames ready,
// background context, one Batch reused.
func TestReadIntoAllocs(t *testing.T) {
	versions(t, func(t *testing.T, v ring.Version) {
		l := labtest.New(t, nil)
		a, b := l.A(), l.B()
		rx := hostRX(t, b, &ring.RXConfig{Version: v, BatchSize: 1, RetireTimeout: time.Millisecond, BlockSize: 4096, BlockCount: 256, Filter: udpDstPortFilter(t, testPort)})
		tx := hostTX(t, a, nil)
		const runs = 50
		// One frame per V2 batch; one V3 block each, by pausing between
		// frames past the retire timeout.
		for i := range 2 * runs {
			sendFrames(t, tx, udpFrameAB(a, b, 40000, testPort, seqPayload(i)).build())
			if v == ring.V3 {
				time.Sleep(3 * time.Millisecond)
			}
		}
		if st := waitStats(t, rx, func(st ring.Stats) bool { return st.Packets == 2*runs }); st.Packets != 2*runs || st.Drops != 0 {
			t.Fatalf("stats %+v, want %d frames in the ring", st, 2*runs)
		}
		var bt ring.Batch
		// Created once: with frames ready ReadInto never parks, so even a
		// cancellable context costs nothing; it only bounds a failure.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := rx.ReadInto(ctx, &bt); err != nil { // warm up the batch's slice
			t.Fatal(err)
		}
		allocs := testing.AllocsPerRun(runs, func() {
			if err := rx.ReadInto(ctx, &bt); err != nil {
				t.Fatal(err)
			}
			for data, m := range bt.All() {
				_, _ = data, m
			}
		})
		bt.Release()
		if allocs != 0 {
			t.Errorf("ReadInto allocates %.1f times per call", allocs)
		}
	})
}
