package frame

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"net/netip"
	"sync/atomic"
)

// FragmentIDs draws fragment identifications that an off-path attacker
// cannot predict, for IPv6 Fragment headers (RFC 7739) and the
// Identification of fragmented IPv4 datagrams (RFC 6864 asks the same of
// it).
//
// It is the hash-based selection algorithm RFC 7739 describes: the
// identification for a (source, destination) pair is
//
//	F(src, dst, secret) + counter[G(src, dst, secret)]
//
// where F and G are a keyed hash (here SHA-256 over a 32-byte random
// secret and the two addresses) and the counter is one of a table of
// counters, each incremented on use. Successive datagrams to one
// destination get successive values from a random starting point, so none
// repeats before 2^32 datagrams (2^16 for IPv4's 16 bits) have been sent to
// that pair; values for different destinations are unrelated, so seeing
// one's identifications tells nothing about another's (the attacks on
// global counters that RFC 7739 describes). Linux does the same
// with siphash and its ip_idents table.
//
// A FragmentIDs is safe for concurrent use; Next does not allocate.
type FragmentIDs struct {
	secret   [32]byte
	counters [fragmentIDBuckets]atomic.Uint32
}

// fragmentIDBuckets is the size of the counter table: enough that pairs
// rarely share a counter (sharing only advances it faster).
const fragmentIDBuckets = 2048

// NewFragmentIDs returns a generator keyed with a secret from crypto/rand,
// its counters starting at random values.
func NewFragmentIDs() *FragmentIDs {
	g := &FragmentIDs{}
	rand.Read(g.secret[:]) // never fails (Go 1.24)
	var seed [4 * fragmentIDBuckets]byte
	rand.Read(seed[:])
	for i := range g.counters {
		g.counters[i].Store(binary.LittleEndian.Uint32(seed[4*i:]))
	}
	return g
}

// Next returns the identification for the next fragmented datagram from
// src to dst (both IPv4 or both IPv6; an IPv4 sender uses the low 16 bits).
func (g *FragmentIDs) Next(src, dst netip.Addr) uint32 {
	var in [32 + 16 + 16]byte
	copy(in[:32], g.secret[:])
	s, d := src.As16(), dst.As16()
	copy(in[32:48], s[:])
	copy(in[48:64], d[:])
	h := sha256.Sum256(in[:])
	f := binary.BigEndian.Uint32(h[0:])
	b := binary.BigEndian.Uint32(h[4:]) % fragmentIDBuckets
	return f + g.counters[b].Add(1)
}
