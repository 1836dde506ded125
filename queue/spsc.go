package queue

import "sync/atomic"

// SPSC is a bounded single-producer, single-consumer FIFO queue.
//
// One goroutine at a time may call Enqueue and EnqueueBatch (the producer)
// and one goroutine at a time may call Dequeue and DequeueBatch (the
// consumer); the two may be different goroutines and run concurrently. Len
// and Cap are safe from any goroutine. An SPSC must be created with NewSPSC
// and must not be copied.
//
// If T holds pointers (slices, strings, pointers, interfaces), the consumer
// clears each slot it empties, so a quiet queue does not keep dequeued
// values reachable; for pointer-free T it leaves stale copies in place.
//
// The protocol, with positions counted from 0 forever and slot = pos & mask:
//
//	              head                     tail
//	               v                        v
//	  +----+----+----+----+----+----+----+----+
//	  |    |    | v0 | v1 | v2 | v3 | v4 |    |   slots 0..7 of a queue of 8
//	  +----+----+----+----+----+----+----+----+
//	              \_____ tail-head = 5 _____/
//
//	producer                              consumer
//	--------                              --------
//	t := tail            (own index)      h := head            (own index)
//	if t-headCache == cap {               if h == tailCache {
//	    headCache = head.Load()  <--.  .-->   tailCache = tail.Load()
//	    if still full: fail          \/       if still empty: fail
//	}                                /\   }
//	buf[t&mask] = v                 /  \  v = buf[h&mask]; clear the slot
//	tail.Store(t+1)  -- publishes -'    '- head.Store(h+1)  -- frees the slot
//
// Each side writes only its own index and reads the other's. The store of
// tail comes after the slot write, so a consumer that loads the new tail also
// sees the value; the store of head comes after the slot read, so a producer
// that loads the new head may overwrite the slot. Each side keeps a private
// copy of the other's index (headCache, tailCache) and reloads it only when
// the copy says full or empty: while the queue is neither, the producer and
// consumer touch only their own cache lines and the slots, and the line
// holding the other's index stops bouncing between cores.
type SPSC[T any] struct {
	_ pad

	// Read-only after NewSPSC.
	buf       []T
	mask      uint64
	zeroSlots bool // T holds pointers: clear slots on dequeue (see holdsPointers)

	_ pad

	// Producer's line.
	tail      atomic.Uint64 // next position to write; stored only by the producer
	headCache uint64        // producer's last view of head: never ahead of it, so never unsafe

	_ pad

	// Consumer's line.
	head      atomic.Uint64 // next position to read; stored only by the consumer
	tailCache uint64        // consumer's last view of tail: never ahead of it

	_ pad
}

// NewSPSC returns an empty queue that holds at least capacity values. The
// capacity is rounded up to a power of two; Cap reports the result. It is
// an error if capacity is below 1 or above MaxCapacity. All memory is
// allocated here, none afterwards.
func NewSPSC[T any](capacity int) (*SPSC[T], error) {
	n, err := roundCapacity(capacity)
	if err != nil {
		return nil, err
	}
	return &SPSC[T]{
		buf:       make([]T, n),
		mask:      n - 1,
		zeroSlots: holdsPointers[T](),
	}, nil
}

// Cap returns the number of values the queue can hold.
func (q *SPSC[T]) Cap() int { return len(q.buf) }

// Len returns the number of values in the queue. Called by the producer it
// is an upper bound (the consumer can only shrink it), called by the
// consumer a lower bound (the producer can only grow it), and called from
// elsewhere a snapshot of some moment during the call.
func (q *SPSC[T]) Len() int {
	// head first: tail only grows, so tail >= this head and the
	// difference cannot underflow. It can exceed the capacity if the
	// consumer freed and the producer refilled slots between the loads.
	h := q.head.Load()
	t := q.tail.Load()
	return int(min(t-h, q.mask+1))
}

// Enqueue appends v and reports whether there was room. A false return means
// the queue is full; v was not stored and the caller should count the drop.
// Producer only.
func (q *SPSC[T]) Enqueue(v T) bool {
	t := q.tail.Load()
	if t-q.headCache > q.mask {
		q.headCache = q.head.Load()
		if t-q.headCache > q.mask {
			return false
		}
	}
	q.buf[t&q.mask] = v
	q.tail.Store(t + 1)
	return true
}

// EnqueueBatch appends as many values from the front of vs as fit and
// returns how many it appended, from 0 to len(vs). The values vs[n:] that did
// not fit were not stored. All n values become visible to the consumer at
// once, with one atomic store. Producer only.
func (q *SPSC[T]) EnqueueBatch(vs []T) int {
	if len(vs) == 0 {
		return 0
	}
	size := q.mask + 1
	t := q.tail.Load()
	free := size - (t - q.headCache)
	if free < uint64(len(vs)) {
		q.headCache = q.head.Load()
		free = size - (t - q.headCache)
	}
	n := min(uint64(len(vs)), free)
	if n == 0 {
		return 0
	}
	// Up to two copies: to the end of buf, then from its start.
	i := t & q.mask
	c := copy(q.buf[i:], vs[:n])
	copy(q.buf, vs[c:n])
	q.tail.Store(t + n)
	return int(n)
}

// Dequeue removes and returns the oldest value. The boolean is false, and the
// value the zero T, when the queue is empty. Consumer only.
func (q *SPSC[T]) Dequeue() (T, bool) {
	h := q.head.Load()
	if h == q.tailCache {
		q.tailCache = q.tail.Load()
		if h == q.tailCache {
			var zero T
			return zero, false
		}
	}
	slot := &q.buf[h&q.mask]
	v := *slot
	if q.zeroSlots {
		var zero T
		*slot = zero
	}
	q.head.Store(h + 1)
	return v, true
}

// DequeueBatch moves up to len(out) of the oldest values into out, oldest
// first, and returns how many it moved. The slots are freed for the producer
// all at once, with one atomic store. Consumer only.
func (q *SPSC[T]) DequeueBatch(out []T) int {
	if len(out) == 0 {
		return 0
	}
	h := q.head.Load()
	avail := q.tailCache - h
	if avail < uint64(len(out)) {
		q.tailCache = q.tail.Load()
		avail = q.tailCache - h
	}
	n := min(uint64(len(out)), avail)
	if n == 0 {
		return 0
	}
	i := h & q.mask
	c := copy(out[:n], q.buf[i:])
	copy(out[c:n], q.buf)
	if q.zeroSlots {
		clear(q.buf[i : i+uint64(c)])
		clear(q.buf[:n-uint64(c)])
	}
	q.head.Store(h + n)
	return int(n)
}
