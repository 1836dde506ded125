package ring

import (
	"fmt"
	"math/bits"
	"reflect"
)

// Per-port queues.
//
// The engine hands datagrams from its RX goroutines to port consumers
// through bounded in-memory queues: SPSC when one RX goroutine feeds a port,
// MPSC when several fanout workers do. Both behave like a kernel socket
// buffer under UDP: when the queue is full the enqueue fails at once and the
// caller drops the datagram and counts it, as the kernel counts
// RcvbufErrors. Nothing blocks, nothing allocates after construction, and
// there are no locks: a full or an empty queue is reported at once, never
// waited on. (One limit of MPSC, a consumer held up by a producer that was
// descheduled mid-enqueue, is described on the type.) A consumer that would
// rather sleep than poll an empty queue waits on a Doorbell.
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

// MaxQueueCapacity is the largest capacity NewSPSC and NewMPSC accept.
// At 2^30 slots even a one-byte element makes a gigabyte of queue, far past
// any sensible per-port buffer.
const MaxQueueCapacity = 1 << 30

// queueCacheLine is the stride used to keep the producer's and consumer's
// hot words apart. Cache lines are 64 bytes on x86-64, but Intel's spatial
// prefetcher pulls lines in adjacent pairs, so two indices 64 bytes apart
// still ping-pong; Apple's arm64 cores have 128-byte lines outright. 128
// bytes covers both at the cost of a few hundred bytes per queue (the same
// choice as crossbeam's CachePadded and folly's hardware_destructive_
// interference_size).
const queueCacheLine = 128

// queuePad separates fields written by different goroutines.
type queuePad [queueCacheLine]byte

// queueSize validates a requested capacity and rounds it up to a power of
// two, so that a position maps to its slot with a mask instead of a
// division.
func queueSize(capacity int) (uint64, error) {
	if capacity < 1 || capacity > MaxQueueCapacity {
		return 0, fmt.Errorf("ring: queue capacity %d out of range [1, %d]", capacity, MaxQueueCapacity)
	}
	return 1 << bits.Len64(uint64(capacity-1)), nil
}

// queueHoldsPointers reports whether values of T contain pointers the
// garbage collector follows. Dequeue zeroes a slot it has read only for such
// types: a slot that keeps a []byte, string or *T keeps its target alive
// until the producer comes round and overwrites it, which for a queue of
// 4096 slots on a quiet port can be forever. Clearing costs one extra store
// into a line the consumer has just read (plus a write barrier while the
// collector runs); pointer-free elements such as frame descriptors of
// offsets and lengths skip it because stale copies of them are harmless.
func queueHoldsPointers[T any]() bool {
	return typeHoldsPointers(reflect.TypeFor[T]())
}

func typeHoldsPointers(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Bool,
		reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.Complex64, reflect.Complex128:
		return false
	case reflect.Array:
		return t.Len() > 0 && typeHoldsPointers(t.Elem())
	case reflect.Struct:
		for i := range t.NumField() {
			if typeHoldsPointers(t.Field(i).Type) {
				return true
			}
		}
		return false
	default:
		// Pointer, UnsafePointer, Slice, String, Map, Chan, Func, Interface.
		return true
	}
}
