package proto

import (
	"encoding/binary"
	"math/bits"
)

// The Internet checksum (RFC 1071) is the 16-bit ones'-complement of the
// ones'-complement sum of the data taken as big-endian 16-bit words. The
// sum is commutative and associative, and independent of byte order as
// long as the same order is used throughout, which lets checksum() add 64
// bits at a time and fold at the end.
//
// Conventions in this package, as in gVisor's tcpip/checksum:
//   - a "sum" is the folded ones'-complement sum, not yet complemented;
//   - a "checksum" is what goes on the wire: the complement of a sum.

// Checksum returns the ones'-complement sum of buf added to initial, folded
// to 16 bits. It does not complement the result. An odd trailing byte is
// padded with a zero byte, as RFC 1071 prescribes.
//
// Of the two ones'-complement zeros the result is 0x0000 only when initial
// and every byte of buf are zero; any other sum congruent to zero comes out
// as 0xFFFF. So data that includes a correct checksum sums to 0xFFFF, and
// the checksum to store is ^Checksum(data with the field zeroed, initial).
//
// On amd64, arm64, ppc64le and loong64 it reads eight bytes at a time with
// native loads (checksum_unsafe.go); elsewhere, or with the purego build
// tag, it uses a portable loop. Both return identical results.
func Checksum(buf []byte, initial uint16) uint16 {
	return checksum(buf, initial)
}

// Combine adds two folded sums in ones'-complement arithmetic.
func Combine(a, b uint16) uint16 {
	s := uint32(a) + uint32(b)
	return uint16(s + s>>16)
}

// Fold folds a 64-bit ones'-complement accumulator into 16 bits. The
// result is 0 only for acc == 0; other multiples of 0xFFFF give 0xFFFF.
func Fold(acc uint64) uint16 {
	// Adding a word to itself rotated by half its width puts the sum of its
	// two halves, end-around carry included, in the upper half: the carry
	// out of the lower half lands in bit 0 of the upper half, and the carry
	// out of the upper half falls off the top. 64 -> 32 -> 16 bits.
	s := acc + bits.RotateLeft64(acc, 32)
	t := uint32(s>>32) + bits.RotateLeft32(uint32(s>>32), 16)
	return uint16(t >> 16)
}

// sumPortable is the portable sum: it adds b, taken as big-endian 16-bit
// words, to the accumulator acc with the carries added back, and returns
// the new accumulator (not folded). Its main loop has the same shape as the
// fast path's, four independent add-with-carry chains of two words, so that
// a 64-bit CPU can overlap them; only the loads differ (bounds-checked
// big-endian reads instead of native unsafe ones). The tests check it
// directly against the naive reference on every architecture.
func sumPortable(b []byte, acc uint64) uint64 {
	var a1, a2, a3, c uint64
	a0 := acc
	for len(b) >= 64 {
		w := b[:64:64] // one bounds check for the block
		a0, c = bits.Add64(a0, binary.BigEndian.Uint64(w[0:]), 0)
		a0, c = bits.Add64(a0, binary.BigEndian.Uint64(w[8:]), c)
		a0, _ = bits.Add64(a0, 0, c)
		a1, c = bits.Add64(a1, binary.BigEndian.Uint64(w[16:]), 0)
		a1, c = bits.Add64(a1, binary.BigEndian.Uint64(w[24:]), c)
		a1, _ = bits.Add64(a1, 0, c)
		a2, c = bits.Add64(a2, binary.BigEndian.Uint64(w[32:]), 0)
		a2, c = bits.Add64(a2, binary.BigEndian.Uint64(w[40:]), c)
		a2, _ = bits.Add64(a2, 0, c)
		a3, c = bits.Add64(a3, binary.BigEndian.Uint64(w[48:]), 0)
		a3, c = bits.Add64(a3, binary.BigEndian.Uint64(w[56:]), c)
		a3, _ = bits.Add64(a3, 0, c)
		b = b[64:]
	}
	for len(b) >= 8 {
		a1, c = bits.Add64(a1, binary.BigEndian.Uint64(b), 0)
		a1, _ = bits.Add64(a1, 0, c)
		b = b[8:]
	}
	// The last 0..7 bytes: their words added plainly (the total is below
	// 2^34, no carry to lose). An odd last byte is the high byte of its
	// 16-bit word, which is RFC 1071's padding with a zero byte.
	var last uint64
	if len(b) >= 4 {
		last = uint64(binary.BigEndian.Uint32(b))
		b = b[4:]
	}
	if len(b) >= 2 {
		last += uint64(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		last += uint64(b[0]) << 8
	}
	a0, c = bits.Add64(a0, a1, 0)
	a0, c = bits.Add64(a0, a2, c)
	a0, c = bits.Add64(a0, a3, c)
	a0, c = bits.Add64(a0, last, c)
	a0, _ = bits.Add64(a0, 0, c)
	return a0
}

// PseudoHeaderSum returns the folded sum of the pseudo-header that UDP, TCP
// and ICMPv6 checksums cover: source and destination address, protocol and
// upper-layer length. For IPv4 (RFC 768) src and dst are 4 bytes and length
// is the UDP length; for IPv6 (RFC 8200 section 8.1) they are 16 bytes and
// length is the 32-bit upper-layer packet length. The layout differs between
// the two but, the sum being order-independent within 16-bit words, the sum
// of both is the sum of the addresses, the protocol and the length.
// Addresses of other (even) lengths are summed with Checksum.
func PseudoHeaderSum(src, dst []byte, protocol uint8, length uint32) uint16 {
	// Each term is below 2^35, so the plain additions cannot overflow.
	acc := addressSum(src) + addressSum(dst) +
		uint64(protocol) + uint64(length>>16) + uint64(length&0xffff)
	return Fold(acc)
}

// addressSum returns an unfolded sum of an address, below 2^35.
func addressSum(a []byte) uint64 {
	switch len(a) {
	case 4:
		return uint64(binary.BigEndian.Uint32(a))
	case 16:
		a = a[:16:16]
		return uint64(binary.BigEndian.Uint32(a[0:])) +
			uint64(binary.BigEndian.Uint32(a[4:])) +
			uint64(binary.BigEndian.Uint32(a[8:])) +
			uint64(binary.BigEndian.Uint32(a[12:]))
	}
	return uint64(Checksum(a, 0))
}

// FinishUDP turns a folded sum over pseudo-header, header and data into the
// value for the UDP checksum field: its complement, with 0 sent as 0xFFFF,
// because a transmitted 0 means "no checksum" (RFC 768).
func FinishUDP(sum uint16) uint16 {
	return udpField(^sum)
}

// Update16 returns checksum field value cksum updated for one 16-bit word of
// the covered data changing from old to new, by RFC 1624 equation 3:
// HC' = ~(~HC + ~m + m'). Unlike equation 2 it never produces a stray 0
// from a nonzero checksum's -0 ambiguity.
func Update16(cksum, old, new uint16) uint16 {
	return ^Fold(uint64(^cksum) + uint64(^old) + uint64(new))
}

// The updates add their terms in a 64-bit accumulator and fold once rather
// than folding after every addition. The result is the same: both are the
// ones'-complement sum, and both give 0x0000 only when every term is zero
// (see TestUpdateIsEquation3). A 32-bit term counts as its two 16-bit
// halves, since 2^16 = 1 modulo 2^16-1, and complementing it complements
// both halves.

// Update32 is Update16 for a 32-bit word (for example an IPv4 address).
func Update32(cksum uint16, old, new uint32) uint16 {
	return ^Fold(uint64(^cksum) + uint64(^old) + uint64(new))
}

// UpdateBytes is Update16 for a run of covered bytes changing from old to
// new, such as a 4- or 16-byte address. old and new must have the same
// length (the shorter one counts) and start at an even offset in the
// covered data. The length should be even; if it is odd, the last byte is
// taken as the first byte of a 16-bit word whose second byte is unchanged.
func UpdateBytes(cksum uint16, old, new []byte) uint16 {
	n := min(len(old), len(new))
	old, new = old[:n], new[:n]
	acc := uint64(^cksum)
	for len(old) >= 4 && len(new) >= 4 {
		acc += uint64(^binary.BigEndian.Uint32(old)) + uint64(binary.BigEndian.Uint32(new))
		old, new = old[4:], new[4:]
	}
	if len(old) >= 2 && len(new) >= 2 {
		acc += uint64(^binary.BigEndian.Uint16(old)) + uint64(binary.BigEndian.Uint16(new))
		old, new = old[2:], new[2:]
	}
	if len(old) == 1 && len(new) == 1 {
		// (n<<8 | x) - (o<<8 | x) = (n<<8) - (o<<8) for the unchanged x.
		acc += uint64(^(uint16(old[0]) << 8)) + uint64(uint16(new[0])<<8)
	}
	return ^Fold(acc)
}

// The UDP checksum field has two values that the arithmetic above does not
// know about (RFC 768): 0 means "no checksum" (allowed in IPv4 only) and
// must stay 0 whatever changes, and a computed checksum of 0 is sent as
// 0xFFFF, its equal in ones'-complement arithmetic. The updates themselves
// need no special case: a field of 0xFFFF is ~0, the "negative zero" sum,
// which equation 3 handles like any other value. Only the result needs
// mapping, since equation 3 returns 0 when the new sum is 0xFFFF.
//
// UpdateUDP16, UpdateUDP32 and UpdateUDPBytes apply both rules around
// Update16, Update32 and UpdateBytes.

// UpdateUDP16 is Update16 for a UDP checksum field value cksum.
func UpdateUDP16(cksum, old, new uint16) uint16 {
	if cksum == 0 {
		return 0
	}
	return udpField(Update16(cksum, old, new))
}

// UpdateUDP32 is Update32 for a UDP checksum field value cksum.
func UpdateUDP32(cksum uint16, old, new uint32) uint16 {
	if cksum == 0 {
		return 0
	}
	return udpField(Update32(cksum, old, new))
}

// UpdateUDPBytes is UpdateBytes for a UDP checksum field value cksum.
func UpdateUDPBytes(cksum uint16, old, new []byte) uint16 {
	if cksum == 0 {
		return 0
	}
	return udpField(UpdateBytes(cksum, old, new))
}

// udpField maps a computed checksum of 0 to 0xFFFF for the UDP field.
func udpField(c uint16) uint16 {
	if c == 0 {
		return 0xffff
	}
	return c
}
