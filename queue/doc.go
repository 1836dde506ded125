// Package queue holds the bounded, lock-free in-memory queues that carry
// datagrams from pktengine's receive goroutines to the consumers of its
// ports, and the Doorbell a consumer sleeps on while its queue is empty.
// It has nothing to do with the kernel's packet rings (package ring): the
// values queued here are whatever the engine makes of a frame.
//
// SPSC serves a port fed by one receive goroutine, MPSC one fed by several
// fanout workers. Both behave like a kernel socket buffer under UDP: when
// the queue is full the enqueue fails at once and the caller drops the
// datagram and counts it, as the kernel counts RcvbufErrors. Nothing
// blocks, nothing allocates after construction, and there are no locks: a
// full or an empty queue is reported at once, never waited on. (One limit
// of MPSC, a consumer held up by a producer that was descheduled
// mid-enqueue, is described on the type.) A consumer that would rather
// sleep than poll an empty queue waits on a Doorbell:
//
//	q, _ := queue.NewSPSC[Datagram](4096)
//	bell := queue.NewDoorbell()
//
//	// producer
//	if q.Enqueue(d) {
//		bell.Ring()
//	} else {
//		drops++
//	}
//
//	// consumer
//	for {
//		if n := q.DequeueBatch(buf); n > 0 {
//			...
//			continue
//		}
//		if err := bell.Wait(ctx, func() bool { return q.Len() == 0 }); err != nil {
//			return err
//		}
//	}
//
// # Design
//
// Indices are free-running uint64 positions; a position p lives in slot
// p & (capacity-1). At one enqueue per nanosecond a uint64 wraps after 584
// years, so the code never handles wraparound of the positions themselves,
// only of the slot index.
//
// Memory ordering comes from sync/atomic, whose operations are sequentially
// consistent in Go's memory model: a plain write to a slot followed by an
// atomic store of an index (or sequence number) happens before any plain
// read of that slot by a goroutine that observed the store with an atomic
// load. The race detector understands exactly this pattern, so the stress
// tests run under -race check the protocols, not just the results.
package queue
