package queue

import "sync/atomic"

// MPSC is a bounded multi-producer, single-consumer FIFO queue: several
// fanout workers feeding one port.
//
// Any number of goroutines may call Enqueue and EnqueueBatch concurrently;
// one goroutine at a time may call Dequeue and DequeueBatch. Len and Cap are
// safe from any goroutine. Values from one producer come out in the order
// that producer put them in; values from different producers interleave in
// the order their positions were claimed. An MPSC must be created with
// NewMPSC and must not be copied.
//
// If T holds pointers (slices, strings, pointers, interfaces), the consumer
// clears each slot it empties, so a quiet queue does not keep dequeued
// values reachable; for pointer-free T it leaves stale copies in place.
//
// The protocol. Producers claim positions by advancing tail with a
// compare-and-swap, write the values into the claimed slots, then publish
// the claim by storing p+1 into the sequence number of the claim's first
// slot p, with the claim's length beside it. The consumer reads at head; it
// knows position p is ready when the sequence number of p's slot is p+1,
// and it then owns the whole claimed run. It frees slots by storing head.
//
//	      head                 tail
//	       v                    v
//	  ... | A0 | A1 | A2 | B0 | B1 | ...     claims: A = [p, p+3), B = [p+3, p+5)
//	       seq=p+1        seq=old            A published (run 3), B claimed, not yet
//	       run=3                             published: the consumer takes A0-A2
//	                                         and waits at B0.
//
//	producer (claim of k >= 1)                consumer
//	--------------------------                --------
//	p := tail.Load()                          p := head (own index)
//	h := headCache, or head.Load()            if p == runEnd {           (run used up)
//	     if that says full                        s := &slot[p&mask]
//	k := min(k, cap-(p-h))                        if s.seq.Load() != p+1: empty
//	if k == 0: fail (full)                        runEnd = p + s.run
//	CAS tail p -> p+k, or retry               }
//	write slots p .. p+k-1                    read n slots from p, up to runEnd
//	slot[p].run = k                           and on into the next runs;
//	slot[p].seq.Store(p+1)  -- publishes      clear them if T holds pointers
//	                                          head.Store(p+n)  -- frees n slots
//
// Why it is safe:
//   - A producer writes slots only below h+cap for an h it loaded from head,
//     and the consumer stored head only after reading those slots.
//   - A value is written before the store of seq that publishes it, and the
//     consumer reads it only after loading that seq.
//   - The consumer looks at sequence numbers only at run starts, and there
//     p+1 cannot be stale: a slot's number is 0, or q+1 for the last run
//     start q that used the slot, and q = p only once p is published.
//
// Costs: one CAS and one atomic store per claim for a producer, one atomic
// load per run and one atomic store per call for the consumer, whatever the
// batch sizes. Producers read head only when their shared cached copy says
// the queue is full, so while it is not, the consumer's line stays in the
// consumer's cache. (Vyukov's bounded queue, which this follows in spirit,
// pays an atomic store per value on each side; Go's atomic stores are full
// barriers, so per-value stores cap batched throughput.)
//
// A producer that is descheduled between its claim and its publish holds up
// the consumer at that position: later values, even ones already published
// by other producers, become visible only when it resumes. Nothing is lost
// or reordered. Producers do not block in between, so the delay is as long
// as the scheduler keeps that producer off a CPU: usually nothing, a time
// slice on an oversubscribed machine. Len counts such claimed positions.
type MPSC[T any] struct {
	_ pad

	// Read-only after NewMPSC.
	slots     []mpscSlot[T]
	mask      uint64
	zeroSlots bool // T holds pointers: clear slots on dequeue (see holdsPointers)

	_ pad

	// Producers' line.
	tail      atomic.Uint64 // next position to claim; advanced by CAS
	headCache atomic.Uint64 // a recent head, never ahead of it; refreshed when it says full

	_ pad

	// Consumer's line.
	head   atomic.Uint64 // next position to read; stored only by the consumer
	runEnd uint64        // consumer only: positions [head, runEnd) are published

	_ pad
}

type mpscSlot[T any] struct {
	seq atomic.Uint64 // p+1 once the claim starting at position p is published
	run uint32        // at a claim's first slot: the claim's length
	val T
}

// NewMPSC returns an empty queue that holds at least capacity values. The
// capacity is rounded up to a power of two; Cap reports the result. It is
// an error if capacity is below 1 or above MaxCapacity. All memory is
// allocated here, none afterwards.
func NewMPSC[T any](capacity int) (*MPSC[T], error) {
	n, err := roundCapacity(capacity)
	if err != nil {
		return nil, err
	}
	return &MPSC[T]{
		slots:     make([]mpscSlot[T], n),
		mask:      n - 1,
		zeroSlots: holdsPointers[T](),
	}, nil
}

// Cap returns the number of values the queue can hold.
func (q *MPSC[T]) Cap() int { return len(q.slots) }

// Len returns the number of values in the queue, counting positions that
// producers have claimed but not yet finished writing. It is a snapshot
// that was true at some moment during the call.
func (q *MPSC[T]) Len() int {
	// head first: tail never falls behind head, so no underflow.
	h := q.head.Load()
	t := q.tail.Load()
	return int(min(t-h, q.mask+1))
}

// Enqueue appends v and reports whether there was room. A false return means
// the queue is full; v was not stored and the caller should count the drop.
// Safe for concurrent producers.
func (q *MPSC[T]) Enqueue(v T) bool {
	for {
		p, free, ok := q.claimable(1)
		if !ok {
			return false
		}
		if free == 0 || !q.tail.CompareAndSwap(p, p+1) {
			continue
		}
		s := &q.slots[p&q.mask]
		s.val = v
		s.run = 1
		s.seq.Store(p + 1)
		return true
	}
}

// EnqueueBatch appends as many values from the front of vs as fit and
// returns how many it appended, from 0 to len(vs). The values vs[n:] that did
// not fit were not stored. The n values occupy consecutive positions,
// claimed with one compare-and-swap and published with one atomic store, so
// no other producer's values come between them. Safe for concurrent
// producers.
func (q *MPSC[T]) EnqueueBatch(vs []T) int {
	want := min(uint64(len(vs)), q.mask+1)
	if want == 0 {
		return 0
	}
	for {
		p, free, ok := q.claimable(want)
		if !ok {
			return 0
		}
		k := min(want, free)
		if k == 0 || !q.tail.CompareAndSwap(p, p+k) {
			continue
		}
		i := p & q.mask
		for j := range k {
			q.slots[(i+j)&q.mask].val = vs[j]
		}
		s := &q.slots[i]
		s.run = uint32(k)
		s.seq.Store(p + 1)
		return int(k)
	}
}

// claimable returns the current tail p and how many positions from p are
// free, judged by the cached head, or by head itself when the cache shows
// fewer than want. ok is false when the queue is full. free == 0 with ok
// means p went stale while head was loaded: try again. The answer is only a
// candidate until tail is swapped from p.
func (q *MPSC[T]) claimable(want uint64) (p, free uint64, ok bool) {
	size := q.mask + 1
	p = q.tail.Load()
	hc := q.headCache.Load()
	used := p - hc
	if used <= size && size-used >= want {
		return p, size - used, true
	}
	h := q.head.Load()
	if h != hc {
		q.headCache.Store(h) // may move it back past another producer's store: harmless
	}
	used = p - h
	switch {
	case used > size:
		// h > p: tail moved on past the p we loaded.
		return p, 0, true
	case used == size:
		// Full: p <= tail, so tail-head >= size when head was loaded.
		return p, 0, false
	}
	return p, size - used, true
}

// Dequeue removes and returns the oldest value. The boolean is false, and the
// value the zero T, when the queue is empty, or when the oldest position has
// been claimed by a producer that has not finished writing it. Consumer only.
func (q *MPSC[T]) Dequeue() (T, bool) {
	p := q.head.Load()
	if p == q.runEnd && !q.nextRun(p) {
		var zero T
		return zero, false
	}
	s := &q.slots[p&q.mask]
	v := s.val
	if q.zeroSlots {
		var zero T
		s.val = zero
	}
	q.head.Store(p + 1)
	return v, true
}

// DequeueBatch moves up to len(out) of the oldest published values into
// out, oldest first, and returns how many it moved. It stops early at the
// first position not yet published. The slots are freed for the producers
// all at once, with one atomic store. Consumer only.
func (q *MPSC[T]) DequeueBatch(out []T) int {
	h := q.head.Load()
	p := h
	for n := uint64(len(out)); p-h < n; {
		if p == q.runEnd && !q.nextRun(p) {
			break
		}
		end := min(q.runEnd, h+n)
		for ; p < end; p++ {
			s := &q.slots[p&q.mask]
			out[p-h] = s.val
			if q.zeroSlots {
				var zero T
				s.val = zero
			}
		}
	}
	if p == h {
		return 0
	}
	q.head.Store(p)
	return int(p - h)
}

// nextRun checks whether the claim starting at position p has been
// published and if so extends runEnd to its end.
func (q *MPSC[T]) nextRun(p uint64) bool {
	s := &q.slots[p&q.mask]
	if s.seq.Load() != p+1 {
		return false
	}
	q.runEnd = p + uint64(s.run)
	return true
}
