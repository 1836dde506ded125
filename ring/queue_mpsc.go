package ring

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
// The protocol is Dmitry Vyukov's bounded array queue, specialised to one
// consumer. Every slot carries a sequence number that says whose turn it is;
// for the slot of position p (slot p & mask):
//
//	seq == p        free: the producer that claims p may write it
//	seq == p+1      full: holds p's value, the consumer may read it
//	seq == p+cap    freed by the consumer: free again for position p+cap
//
//	producer                                   consumer
//	--------                                   --------
//	p := tail.Load()                           p := head (own index)
//	s := &slot[p&mask]                         s := &slot[p&mask]
//	switch s.seq.Load() - p {                  if s.seq.Load() != p+1: empty
//	case 0:  CAS tail p -> p+1, or retry       v := s.val; zero it
//	         s.val = v                         s.seq.Store(p+cap) -> slot free
//	         s.seq.Store(p+1) -> publishes     head.Store(p+1)
//	case <0: full (p-cap not yet consumed)
//	case >0: tail moved on; reload, retry
//	}
//
// The compare-and-swap on tail is the only point where producers contend;
// after winning position p a producer owns its slot until it publishes. The
// consumer never touches tail, and producers never read head, so the
// consumer's index stays in the consumer's cache.
//
// A batch enqueue claims a run of k positions with one compare-and-swap.
// The consumer frees positions strictly in order, so if the slot of the
// run's last position p+k-1 is free (seq == p+k-1) every slot before it is
// free too; the producer checks the last slot, and if it is not yet free
// finds the longest free run by binary search over the sequence numbers.
//
// A producer that is descheduled between its claim and its publish holds up
// the consumer at that position: later values, even ones already published
// by other producers, become visible only when it resumes. Nothing is lost or
// reordered, and with producers that do not block in between (they do not)
// the delay is a scheduler quantum at worst.
//
// Slots are packed, not padded to a cache line each: adjacent positions are
// usually written by the same producer in a batch and read by the consumer
// in sequence, and padding would multiply the memory of a queue of small
// descriptors by eight.
type MPSC[T any] struct {
	_ queuePad

	// Read-only after NewMPSC.
	slots     []mpscSlot[T]
	mask      uint64
	zeroSlots bool // T holds pointers: clear slots on dequeue (see queueHoldsPointers)

	_ queuePad

	tail atomic.Uint64 // next position to claim; advanced by producers' CAS

	_ queuePad

	head atomic.Uint64 // next position to read; stored only by the consumer

	_ queuePad
}

type mpscSlot[T any] struct {
	seq atomic.Uint64
	val T
}

// NewMPSC returns an empty queue that holds at least capacity values. The
// capacity is rounded up to a power of two (and to at least 2); Cap reports
// the result. It is an error if capacity is below 1 or above
// MaxQueueCapacity. All memory is allocated here, none afterwards.
func NewMPSC[T any](capacity int) (*MPSC[T], error) {
	n, err := queueSize(capacity)
	if err != nil {
		return nil, err
	}
	q := &MPSC[T]{
		slots:     make([]mpscSlot[T], n),
		mask:      n - 1,
		zeroSlots: queueHoldsPointers[T](),
	}
	for i := range q.slots {
		q.slots[i].seq.Store(uint64(i))
	}
	return q, nil
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
	p := q.tail.Load()
	for {
		s := &q.slots[p&q.mask]
		switch d := int64(s.seq.Load() - p); {
		case d == 0:
			if q.tail.CompareAndSwap(p, p+1) {
				s.val = v
				s.seq.Store(p + 1)
				return true
			}
			p = q.tail.Load()
		case d < 0:
			// The slot still holds position p-cap: full. (p cannot be
			// stale here: whoever claimed p saw seq == p first, and
			// sequence numbers only grow.)
			return false
		default:
			p = q.tail.Load()
		}
	}
}

// EnqueueBatch appends as many values from the front of vs as fit and
// returns how many it appended, from 0 to len(vs). The values vs[n:] that did
// not fit were not stored. The n values occupy consecutive positions, claimed
// with one compare-and-swap, so no other producer's values come between
// them. Safe for concurrent producers.
func (q *MPSC[T]) EnqueueBatch(vs []T) int {
	want := min(uint64(len(vs)), q.mask+1)
	if want == 0 {
		return 0
	}
	for {
		p := q.tail.Load()
		k, full := q.freeRun(p, want)
		if full {
			return 0
		}
		if k == 0 || !q.tail.CompareAndSwap(p, p+k) {
			continue // another producer moved tail; start over from the new one
		}
		for i := range k {
			s := &q.slots[(p+i)&q.mask]
			s.val = vs[i]
			s.seq.Store(p + i + 1)
		}
		return int(k)
	}
}

// freeRun returns the length k <= want of the run of free slots starting at
// position p, or full if the slot of p itself is still occupied. k == 0
// without full means p is stale: another producer already claimed it.
// A nonzero k is only a candidate until tail is swapped from p to p+k.
func (q *MPSC[T]) freeRun(p, want uint64) (k uint64, full bool) {
	isFree := func(pos uint64) bool { return q.slots[pos&q.mask].seq.Load() == pos }
	switch d := int64(q.slots[p&q.mask].seq.Load() - p); {
	case d < 0:
		return 0, true
	case d > 0:
		return 0, false
	}
	if want == 1 || isFree(p+want-1) {
		return want, false
	}
	// The first slot is free, the last is not. Free slots form a prefix
	// (the consumer frees in order), so binary-search its end. A slot
	// seen free stays free until tail passes it, which the CAS detects.
	lo, hi := uint64(1), want-1 // invariant: slot lo-1 seen free; answer in [lo, hi]
	for lo < hi {
		mid := lo + (hi-lo+1)/2
		if isFree(p + mid - 1) {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return lo, false
}

// Dequeue removes and returns the oldest value. The boolean is false, and the
// value the zero T, when the queue is empty, or when the oldest position has
// been claimed by a producer that has not finished writing it. Consumer only.
func (q *MPSC[T]) Dequeue() (T, bool) {
	p := q.head.Load()
	s := &q.slots[p&q.mask]
	if s.seq.Load() != p+1 {
		var zero T
		return zero, false
	}
	v := s.val
	if q.zeroSlots {
		var zero T
		s.val = zero
	}
	s.seq.Store(p + q.mask + 1)
	q.head.Store(p + 1)
	return v, true
}

// DequeueBatch moves up to len(out) of the oldest published values into
// out, oldest first, and returns how many it moved. It stops early at the
// first position not yet published. Consumer only.
func (q *MPSC[T]) DequeueBatch(out []T) int {
	p := q.head.Load()
	size := q.mask + 1
	n := 0
	for n < len(out) {
		s := &q.slots[p&q.mask]
		if s.seq.Load() != p+1 {
			break
		}
		out[n] = s.val
		if q.zeroSlots {
			var zero T
			s.val = zero
		}
		s.seq.Store(p + size)
		p++
		n++
	}
	if n > 0 {
		q.head.Store(p)
	}
	return n
}
