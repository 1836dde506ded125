package engine

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/pktengine/pktengine/frame"
)

// TestNeighborTableBounded: neither made-up senders nor sends to made-up
// destinations grow the table past maxNeighbors, and a real neighbour
// that speaks up after a flood is still learned.
func TestNeighborTableBounded(t *testing.T) {
	n := newNeighbors()
	addr := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}) }
	mac := frame.MAC{0x02, 0, 0, 0, 0, 0x09}
	for i := range 3 * maxNeighbors {
		n.learn(addr(i), mac, int64(i), true)
	}
	if len(n.m) > maxNeighbors {
		t.Fatalf("learning from %d senders grew the table to %d entries", 3*maxNeighbors, len(n.m))
	}
	real := netip.MustParseAddr("198.18.0.2")
	if !n.learn(real, macPeer, 1, true) {
		t.Fatal("a full table refused a real neighbour")
	}
	if got, _, ok := n.lookup(real); !ok || got != macPeer {
		t.Fatalf("lookup after a flood: %v %v", got, ok)
	}

	// Pending entries count too; once the table is nothing but next hops
	// being resolved, a further one is refused, not added.
	p := newNeighbors()
	var err error
	for i := 0; i <= maxNeighbors && err == nil; i++ {
		_, _, err = p.want(addr(i), 0, 1)
	}
	if !errors.Is(err, errNeighborTableFull) || len(p.m) != maxNeighbors {
		t.Fatalf("after %d unresolved next hops: err %v, %d entries", maxNeighbors+1, err, len(p.m))
	}
	// A learned entry makes room for a pending one only by eviction of
	// learned entries, never of pending ones.
	if p.learn(real, macPeer, 1, true) {
		t.Error("a learned entry evicted a next hop being resolved")
	}
}
