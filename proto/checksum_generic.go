package proto

// sum adds b to the accumulator. A faster version for little-endian 64-bit
// machines may replace this file; see the checksum tests for the reference.
func sum(b []byte, acc uint64) uint64 { return sumPortable(b, acc) }
