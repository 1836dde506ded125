package proto

import (
	"encoding/binary"
	"math/bits"
)

// The Internet checksum (RFC 1071) is the 16-bit ones'-complement of the
// ones'-complement sum of the data taken as big-endian 16-bit words. The sum
// is commutative and associative and independent of byte order as long as
// the same order is used throughout, which lets sum() add 64 bits at a time
// and fold at the end.
//
// Conventions in this package, as in gVisor's tcpip/checksum:
//   - a "sum" is the folded ones'-complement sum, not yet complemented;
//   - a "checksum" is what goes on the wire: the complement of a sum.

// Checksum returns the ones'-complement sum of buf added to initial, folded
// to 16 bits. It does not complement the result. An odd trailing byte is
// padded with a zero byte, as RFC 1071 prescribes.
func Checksum(buf []byte, initial uint16) uint16 {
	return Fold(sum(buf, uint64(initial)))
}

// Combine adds two folded sums in ones'-complement arithmetic.
func Combine(a, b uint16) uint16 {
	s := uint32(a) + uint32(b)
	return uint16(s + s>>16)
}

// Fold folds a 64-bit ones'-complement accumulator into 16 bits.
func Fold(acc uint64) uint16 {
	// 64 -> 33 bits -> 17 bits -> 16 bits; each step adds the carries back.
	acc = (acc >> 32) + (acc & 0xffffffff)
	acc = (acc >> 16) + (acc & 0xffff)
	acc = (acc >> 16) + (acc & 0xffff)
	acc = (acc >> 16) + (acc & 0xffff)
	return uint16(acc)
}

// sumPortable is the fallback sum: eight bytes per step with the carry
// added back, then the tail. It treats the data as big-endian words.
func sumPortable(b []byte, acc uint64) uint64 {
	var carry uint64
	for len(b) >= 32 {
		acc, carry = bits.Add64(acc, binary.BigEndian.Uint64(b[0:8]), 0)
		acc, carry = bits.Add64(acc, binary.BigEndian.Uint64(b[8:16]), carry)
		acc, carry = bits.Add64(acc, binary.BigEndian.Uint64(b[16:24]), carry)
		acc, carry = bits.Add64(acc, binary.BigEndian.Uint64(b[24:32]), carry)
		acc += carry
		b = b[32:]
	}
	for len(b) >= 8 {
		acc, carry = bits.Add64(acc, binary.BigEndian.Uint64(b), 0)
		acc += carry
		b = b[8:]
	}
	if len(b) >= 4 {
		acc, carry = bits.Add64(acc, uint64(binary.BigEndian.Uint32(b)), 0)
		acc += carry
		b = b[4:]
	}
	if len(b) >= 2 {
		acc, carry = bits.Add64(acc, uint64(binary.BigEndian.Uint16(b)), 0)
		acc += carry
		b = b[2:]
	}
	if len(b) == 1 {
		acc, carry = bits.Add64(acc, uint64(b[0])<<8, 0)
		acc += carry
	}
	return acc
}

// PseudoHeaderSum returns the folded sum of the pseudo-header that UDP, TCP
// and ICMPv6 checksums cover: source and destination address, protocol and
// upper-layer length. For IPv4 (RFC 768) src and dst are 4 bytes and length
// is the UDP length; for IPv6 (RFC 8200 section 8.1) they are 16 bytes and
// length is the 32-bit upper-layer packet length. The layout differs between
// the two but, the sum being order-independent within 16-bit words, the sum
// of both is the sum of the addresses, the protocol and the length.
func PseudoHeaderSum(src, dst []byte, protocol uint8, length uint32) uint16 {
	acc := sum(src, 0)
	acc = sum(dst, acc)
	acc += uint64(protocol) + uint64(length>>16) + uint64(length&0xffff)
	return Fold(acc)
}

// FinishUDP turns a folded sum over pseudo-header, header and data into the
// value for the UDP checksum field: its complement, with 0 sent as 0xFFFF,
// because a transmitted 0 means "no checksum" (RFC 768).
func FinishUDP(sum uint16) uint16 {
	c := ^sum
	if c == 0 {
		return 0xffff
	}
	return c
}

// Update16 returns checksum field value cksum updated for one 16-bit word of
// the covered data changing from old to new, by RFC 1624 equation 3:
// HC' = ~(~HC + ~m + m'). Unlike equation 2 it never produces a stray 0
// from a nonzero checksum's -0 ambiguity.
func Update16(cksum, old, new uint16) uint16 {
	return ^Combine(Combine(^cksum, ^old), new)
}

// Update32 is Update16 for a 32-bit word (for example an IPv4 address).
func Update32(cksum uint16, old, new uint32) uint16 {
	s := Combine(^cksum, ^uint16(old>>16))
	s = Combine(s, ^uint16(old))
	s = Combine(s, uint16(new>>16))
	s = Combine(s, uint16(new))
	return ^s
}

// UpdateBytes is Update16 for a run of covered bytes changing from old to
// new, such as a 4- or 16-byte address. old and new must have the same even
// length.
func UpdateBytes(cksum uint16, old, new []byte) uint16 {
	s := ^cksum
	for i := 0; i+1 < len(old) && i+1 < len(new); i += 2 {
		s = Combine(s, ^binary.BigEndian.Uint16(old[i:]))
		s = Combine(s, binary.BigEndian.Uint16(new[i:]))
	}
	return ^s
}
