//go:build linux

package xdp

import (
	"sync/atomic"
	"testing"
	"unsafe"
)

// fakeRing is an xskRing over Go memory, with both indexes starting at
// start, for testing the index arithmetic without a socket.
func fakeRing(size, start uint32) (*xskRing, *atomic.Uint32, *atomic.Uint32) {
	mem := make([]byte, 64)
	r := &xskRing{
		mem:   mem,
		prod:  (*atomic.Uint32)(unsafe.Pointer(&mem[0])),
		cons:  (*atomic.Uint32)(unsafe.Pointer(&mem[8])),
		flags: (*atomic.Uint32)(unsafe.Pointer(&mem[16])),
		mask:  size - 1,
		size:  size,
	}
	r.prod.Store(start)
	r.cons.Store(start)
	r.cachedProd, r.cachedCons = start, start
	return r, r.prod, r.cons
}

// TestRingIndexesWrap drives a producer and a consumer view of one ring
// across the 2^32 wrap of the free-running indexes.
func TestRingIndexesWrap(t *testing.T) {
	const size = 8
	prod, p, c := fakeRing(size, ^uint32(0)-20)
	cons := &xskRing{prod: p, cons: c, mask: size - 1, size: size, cachedProd: prod.cachedProd, cachedCons: prod.cachedCons}
	produced, consumed := 0, 0
	for step := range 200 {
		// Produce up to 5, as the room allows.
		n := min(prod.free(5), 5)
		if n > size {
			t.Fatalf("step %d: %d free in a ring of %d", step, n, size)
		}
		prod.cachedProd += n
		prod.submit()
		produced += int(n)
		// Consume up to 3.
		k := min(cons.available(3), 3)
		if k > size {
			t.Fatalf("step %d: %d available in a ring of %d", step, k, size)
		}
		cons.consume(k)
		consumed += int(k)
		if inRing := produced - consumed; inRing < 0 || inRing > size {
			t.Fatalf("step %d: %d entries in a ring of %d", step, inRing, size)
		}
		if got := int(p.Load() - c.Load()); got != produced-consumed {
			t.Fatalf("step %d: indexes say %d entries, counts %d", step, got, produced-consumed)
		}
	}
	if consumed < 200 {
		t.Fatalf("consumed only %d entries", consumed)
	}
	if p.Load() > 1000 {
		t.Fatalf("the indexes did not wrap: producer at %d", p.Load())
	}
	// A full ring has no room, an empty one nothing to read.
	for prod.free(1) > 0 {
		prod.cachedProd++
		prod.submit()
	}
	if n := cons.available(size + 1); n != size {
		t.Fatalf("full ring: %d available", n)
	}
	cons.consume(size)
	if prod.free(size) != size || cons.available(1) != 0 {
		t.Fatal("drained ring not empty")
	}
}
