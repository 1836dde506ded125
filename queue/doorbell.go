package queue

import (
	"context"
	"sync/atomic"
)

// Doorbell lets a queue's consumer sleep while the queue is empty and lets
// producers wake it. A consumer that polls instead needs none of this; a
// consumer that would otherwise spin on an idle port uses Wait:
//
//	bell := queue.NewDoorbell()
//
//	// producer, after each successful Enqueue or EnqueueBatch:
//	bell.Ring()
//
//	// consumer:
//	for {
//		n := q.DequeueBatch(buf)
//		if n == 0 {
//			if err := bell.Wait(ctx, func() bool { return q.Len() == 0 }); err != nil {
//				return err
//			}
//			continue
//		}
//		...
//	}
//
// While the consumer is awake, Ring costs one atomic load of a word that is
// written only when the consumer goes to sleep or is woken. No wakeup is
// lost: Wait announces itself (armed = true) before it looks at the queue a
// last time, and producers publish before they Ring, which looks at armed.
// With sequentially consistent atomics at least one side sees the other's
// write: either the consumer sees the value and stays awake, or the
// producer sees armed and sends the wakeup.
//
// A wakeup can be early: Wait may return when the queue is empty again (a
// stale wakeup from a race the consumer won anyway), so callers loop, as
// above. One Doorbell serves one consumer.
type Doorbell struct {
	_     pad
	armed atomic.Bool
	wake  chan struct{} // capacity 1: a pending wakeup is never lost, never queued twice
	_     pad
}

// NewDoorbell returns a Doorbell with nobody waiting.
func NewDoorbell() *Doorbell {
	return &Doorbell{wake: make(chan struct{}, 1)}
}

// Ring wakes the consumer if it is waiting, or about to. Producers call it
// after publishing values; calling it once per batch is enough.
func (d *Doorbell) Ring() {
	if d.armed.Load() && d.armed.CompareAndSwap(true, false) {
		select {
		case d.wake <- struct{}{}:
		default: // a wakeup is already pending
		}
	}
}

// Wait sleeps until a producer rings or ctx is done, unless empty reports
// false once Wait has armed the bell, in which case it returns at once.
// empty must report whether the queue has nothing for the consumer, for
// example q.Len() == 0. Wait returns nil after a wakeup, which may be
// early, and ctx.Err() if ctx ended the wait. Consumer only.
func (d *Doorbell) Wait(ctx context.Context, empty func() bool) error {
	d.armed.Store(true)
	if !empty() {
		d.armed.Store(false)
		return nil
	}
	select {
	case <-d.wake:
		return nil
	case <-ctx.Done():
		d.armed.Store(false)
		return ctx.Err()
	}
}
