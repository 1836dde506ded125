package queue

import (
	"fmt"
	"math/bits"
	"reflect"
)

// MaxCapacity is the largest capacity NewSPSC and NewMPSC accept.
// At 2^30 slots even a one-byte element makes a gigabyte of queue, far past
// any sensible per-port buffer.
const MaxCapacity = 1 << 30

// cacheLine is the stride used to keep the producer's and consumer's
// hot words apart. Cache lines are 64 bytes on x86-64, but Intel's spatial
// prefetcher pulls lines in adjacent pairs, so two indices 64 bytes apart
// still ping-pong; Apple's arm64 cores have 128-byte lines outright. 128
// bytes covers both at the cost of a few hundred bytes per queue (the same
// choice as crossbeam's CachePadded and folly's hardware_destructive_
// interference_size).
const cacheLine = 128

// pad separates fields written by different goroutines.
type pad [cacheLine]byte

// roundCapacity validates a requested capacity and rounds it up to a power of
// two, so that a position maps to its slot with a mask instead of a
// division.
func roundCapacity(capacity int) (uint64, error) {
	if capacity < 1 || capacity > MaxCapacity {
		return 0, fmt.Errorf("queue: capacity %d out of range [1, %d]", capacity, MaxCapacity)
	}
	return 1 << bits.Len64(uint64(capacity-1)), nil
}

// holdsPointers reports whether values of T contain pointers the
// garbage collector follows. Dequeue zeroes a slot it has read only for such
// types: a slot that keeps a []byte, string or *T keeps its target alive
// until the producer comes round and overwrites it, which for a queue of
// 4096 slots on a quiet port can be forever. Clearing costs one extra store
// into a line the consumer has just read (plus a write barrier while the
// collector runs); pointer-free elements such as frame descriptors of
// offsets and lengths skip it because stale copies of them are harmless.
func holdsPointers[T any]() bool {
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
