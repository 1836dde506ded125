package queue

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestDoorbellWaitReturnsWhenNotEmpty(t *testing.T) {
	bell := NewDoorbell()
	if err := bell.Wait(context.Background(), func() bool { return false }); err != nil {
		t.Fatalf("Wait with a non-empty queue = %v", err)
	}
	if bell.armed.Load() {
		t.Fatal("Wait left the bell armed")
	}
}

func TestDoorbellWaitCancelled(t *testing.T) {
	bell := NewDoorbell()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := bell.Wait(ctx, func() bool { return true }); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait on an empty queue past its deadline = %v", err)
	}
	if bell.armed.Load() {
		t.Fatal("Wait left the bell armed after its context ended")
	}
}

func TestDoorbellRingWakes(t *testing.T) {
	bell := NewDoorbell()
	// Ringing with nobody waiting leaves no wakeup behind.
	bell.Ring()
	if len(bell.wake) != 0 {
		t.Fatal("Ring with nobody waiting queued a wakeup")
	}
	var full bool
	var mu sync.Mutex
	done := make(chan error)
	go func() {
		done <- bell.Wait(context.Background(), func() bool {
			mu.Lock()
			defer mu.Unlock()
			return !full
		})
	}()
	for !bell.armed.Load() {
		runtime.Gosched()
	}
	mu.Lock()
	full = true
	mu.Unlock()
	bell.Ring()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Ring did not wake the waiter")
	}
}

// TestDoorbellNoLostWakeup plays ping-pong: the producer enqueues one value,
// rings, and waits until the consumer has taken it; the consumer sleeps on
// the doorbell whenever the queue is empty. Every round the producer's
// enqueue lands somewhere in the consumer's way to sleep, and since nothing
// else would wake the consumer, a single lost wakeup stalls the game.
func TestDoorbellNoLostWakeup(t *testing.T) {
	rounds := 20_000
	if testing.Short() {
		rounds = 2_000
	}
	for _, kind := range queueKinds {
		t.Run(kind.name, func(t *testing.T) {
			q := mustQueue(t, kind, 4)
			bell := NewDoorbell()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var taken atomic.Int64
			var stalled atomic.Int64
			var wg sync.WaitGroup
			wg.Go(func() {
				defer cancel()
				for r := range rounds {
					q.Enqueue(r)
					bell.Ring()
					deadline := time.Now().Add(5 * time.Second)
					for taken.Load() <= int64(r) {
						if time.Now().After(deadline) {
							stalled.Store(int64(r) + 1)
							return
						}
						runtime.Gosched()
					}
				}
			})
			empty := func() bool { return q.Len() == 0 }
			sleeps := 0
			for taken.Load() < int64(rounds) {
				if _, ok := q.Dequeue(); ok {
					taken.Add(1)
					continue
				}
				sleeps++
				if bell.Wait(ctx, empty) != nil {
					break
				}
			}
			wg.Wait()
			if r := stalled.Load(); r != 0 {
				t.Fatalf("round %d: the consumer slept through a value (Len %d)", r-1, q.Len())
			}
			t.Logf("%d rounds, consumer waited %d times", rounds, sleeps)
		})
	}
}

func TestDoorbellAllocs(t *testing.T) {
	bell := NewDoorbell()
	q := queueMust(NewSPSC[int](4))
	q.Enqueue(1)
	ctx := context.Background()
	if a := testing.AllocsPerRun(100, func() {
		bell.Ring()
		bell.Wait(ctx, func() bool { return q.Len() == 0 })
	}); a != 0 {
		t.Errorf("Ring+Wait: %v allocations per run, want 0", a)
	}
}
