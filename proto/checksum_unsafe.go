//go:build (amd64 || arm64 || ppc64le || loong64) && !purego

package proto

import (
	"math/bits"
	"unsafe"
)

// This file is the only one in the package that uses unsafe. It reads the
// data as native (little-endian) 64-bit words, which these architectures
// load from any address at full speed. riscv64 is left out on purpose:
// misaligned loads there may trap and be emulated by the kernel, so it
// takes the portable path (as does any build with the purego tag).
//
// Why little-endian words give the big-endian sum. Reading a 64-bit word
// little-endian gives sum(w[k] * 2^(16k)) where w[k] are its 16-bit words
// with their bytes swapped. Ones'-complement (end-around carry) addition is
// addition modulo 2^64-1, and 2^16 = 1 modulo 2^16-1, which divides 2^64-1;
// so folding the 64-bit accumulator to 16 bits yields the ones'-complement
// sum of the byte-swapped 16-bit words. Swapping the bytes of a 16-bit value
// multiplies it by 2^8 modulo 2^16-1 (hi*2^16 + lo*2^8 = hi + lo*2^8), and
// multiplication distributes over the sum, so the sum of swapped words is
// the swapped sum (RFC 1071 section 2(B), "byte order independence"). One
// bswap16 of the folded result therefore gives the big-endian sum, and both
// representations of zero map to themselves (0x0000 and 0xFFFF), so the
// canonical folded value is the same as the portable path's.

// load64 reads the native-endian word at p+off. The conversion is allowed
// at any alignment because uint64 holds no pointers (checkptr agrees).
func load64(p unsafe.Pointer, off int) uint64 {
	return *(*uint64)(unsafe.Add(p, off))
}

// checksum is Checksum for these architectures. It sums b read as
// little-endian 64-bit words, zero-padded at the end, folds the sum to 16
// bits, swaps its bytes and adds initial.
//
// The main loop keeps four accumulators, each fed by a two-word add-with-
// carry chain that ends by adding its carry back (ADD, ADC, ADC $0 on
// amd64). The chains are independent, so the CPU runs them in parallel
// (flags are renamed); a single long chain would be limited to one word
// per cycle by the latency of the carry. Four accumulators of two words
// keep every loaded word in a register on amd64 without spilling; longer
// chains made the compiler spill loads to the stack and ran slower. See
// BenchmarkChecksum for the figures.
//
// Pointers stay inside b: the loop runs while more than 64 bytes remain and
// the tail reads backwards from its end, so no pointer past the last byte
// is ever formed (unsafe.Pointer rule 3, enforced by -race's checkptr).
func checksum(b []byte, initial uint16) uint16 {
	n := uintptr(len(b))
	if n < 8 {
		return finish(loadShort(b), initial)
	}
	p := unsafe.Pointer(unsafe.SliceData(b))
	var a0, a1, a2, a3, c uint64
	for n > 64 {
		a0, c = bits.Add64(a0, load64(p, 0), 0)
		a0, c = bits.Add64(a0, load64(p, 8), c)
		a0, _ = bits.Add64(a0, 0, c)
		a1, c = bits.Add64(a1, load64(p, 16), 0)
		a1, c = bits.Add64(a1, load64(p, 24), c)
		a1, _ = bits.Add64(a1, 0, c)
		a2, c = bits.Add64(a2, load64(p, 32), 0)
		a2, c = bits.Add64(a2, load64(p, 40), c)
		a2, _ = bits.Add64(a2, 0, c)
		a3, c = bits.Add64(a3, load64(p, 48), 0)
		a3, c = bits.Add64(a3, load64(p, 56), c)
		a3, _ = bits.Add64(a3, 0, c)
		p = unsafe.Add(p, 64)
		n -= 64
	}
	// 1 <= n <= 64 bytes remain at p.
	if n > 32 {
		a0, c = bits.Add64(a0, load64(p, 0), 0)
		a0, c = bits.Add64(a0, load64(p, 8), c)
		a0, _ = bits.Add64(a0, 0, c)
		a1, c = bits.Add64(a1, load64(p, 16), 0)
		a1, c = bits.Add64(a1, load64(p, 24), c)
		a1, _ = bits.Add64(a1, 0, c)
		p = unsafe.Add(p, 32)
		n -= 32
	}
	if n > 16 {
		a2, c = bits.Add64(a2, load64(p, 0), 0)
		a2, c = bits.Add64(a2, load64(p, 8), c)
		a2, _ = bits.Add64(a2, 0, c)
		p = unsafe.Add(p, 16)
		n -= 16
	}
	if n > 8 {
		a3, c = bits.Add64(a3, load64(p, 0), 0)
		a3, _ = bits.Add64(a3, 0, c)
		p = unsafe.Add(p, 8)
		n -= 8
	}
	// 1 <= n <= 8 bytes remain, and len(b) >= 8: load the last eight bytes
	// of b and shift out the 8-n already counted. The first remaining byte
	// sits at an even offset in b, so it lands in the low byte of a
	// little-endian 16-bit word, as it must; an odd last byte is followed by
	// zero bits, which is RFC 1071's padding.
	last := load64(p, int(n)-8) >> (64 - 8*n)
	a0, c = bits.Add64(a0, a1, 0)
	a0, c = bits.Add64(a0, a2, c)
	a0, c = bits.Add64(a0, a3, c)
	a0, c = bits.Add64(a0, last, c)
	a0, _ = bits.Add64(a0, 0, c)
	return finish(a0, initial)
}

// finish folds the little-endian accumulator acc, swaps it into big-endian
// order and adds initial.
func finish(acc uint64, initial uint16) uint16 {
	return Combine(bits.ReverseBytes16(Fold(acc)), initial)
}

// loadShort returns b (len(b) < 8) as a little-endian word padded with zeros.
func loadShort(b []byte) uint64 {
	var x uint64
	off := uintptr(0)
	p := unsafe.Pointer(unsafe.SliceData(b))
	if len(b)&4 != 0 {
		x = uint64(*(*uint32)(p))
		off = 4
	}
	if len(b)&2 != 0 {
		x |= uint64(*(*uint16)(unsafe.Add(p, off))) << (8 * off)
		off += 2
	}
	if len(b)&1 != 0 {
		x |= uint64(*(*uint8)(unsafe.Add(p, off))) << (8 * off)
	}
	return x
}
