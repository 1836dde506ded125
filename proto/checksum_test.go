package proto

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// refChecksum is the naive reference: RFC 1071 section 4.1 taken
// literally, one big-endian byte pair at a time, the carry folded back
// after every addition, an odd last byte padded with a zero byte.
func refChecksum(b []byte, initial uint16) uint16 {
	s := uint32(initial)
	for ; len(b) >= 2; b = b[2:] {
		s += uint32(b[0])<<8 | uint32(b[1])
		s = s&0xffff + s>>16
	}
	if len(b) == 1 {
		s += uint32(b[0]) << 8
		s = s&0xffff + s>>16
	}
	return uint16(s)
}

// refFold reduces x modulo 2^16-1 the slow way, keeping the convention that
// only a zero input gives 0x0000 and every other multiple gives 0xFFFF.
func refFold(x uint64) uint16 {
	if x == 0 {
		return 0
	}
	r := uint16(x % 0xffff)
	if r == 0 {
		return 0xffff
	}
	return r
}

func TestRefChecksumRFC1071Example(t *testing.T) {
	// RFC 1071 section 3: the bytes 00 01 f2 03 f4 f5 f6 f7 sum to ddf2.
	b := []byte{0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7}
	if got := refChecksum(b, 0); got != 0xddf2 {
		t.Fatalf("reference sum = %#04x, want 0xddf2", got)
	}
	if got := Checksum(b, 0); got != 0xddf2 {
		t.Fatalf("Checksum = %#04x, want 0xddf2", got)
	}
}

// fill returns n bytes of the named pattern.
func fill(r *rand.Rand, pattern string, n int) []byte {
	b := make([]byte, n)
	switch pattern {
	case "random":
		for i := range b {
			b[i] = byte(r.Uint32())
		}
	case "ones":
		for i := range b {
			b[i] = 0xff
		}
	case "zeros":
	case "sparse": // mostly zero with a few 0xFF: long zero runs, some carries
		for i := range b {
			if r.IntN(64) == 0 {
				b[i] = 0xff
			}
		}
	default:
		panic(pattern)
	}
	return b
}

// TestChecksumEveryLengthAndAlignment compares Checksum (the fast path on
// this architecture, whichever it is) and sumPortable with the reference
// for every length 0..2048 at every start offset 0..7 of random data, and
// at two offsets of data that is all ones, all zeros or sparse. The buffer
// around each slice holds other bytes, so reading outside would show.
func TestChecksumEveryLengthAndAlignment(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	const maxLen = 2048
	initials := []uint16{0, 1, 0xffff, 0x8000, 0xfffe, 0x1234}
	for _, pattern := range []string{"random", "ones", "zeros", "sparse"} {
		buf := fill(r, pattern, maxLen+16)
		if pattern != "random" { // random guard bytes around the pattern
			for i := range 8 {
				buf[i] = byte(r.Uint32() | 1)
				buf[len(buf)-1-i] = byte(r.Uint32() | 1)
			}
		}
		aligns := []int{0, 1, 2, 3, 4, 5, 6, 7}
		if pattern != "random" {
			aligns = []int{0, 3} // keeps the test quick under -race
		}
		for _, align := range aligns {
			for n := 0; n <= maxLen; n++ {
				start := 8 + align
				if start+n > len(buf) {
					start = len(buf) - n
				}
				b := buf[start : start+n]
				initial := initials[(n+align)%len(initials)]
				want := refChecksum(b, initial)
				if got := Checksum(b, initial); got != want {
					t.Fatalf("%s: Checksum(len %d, offset %d, initial %#04x) = %#04x, want %#04x",
						pattern, n, align, initial, got, want)
				}
				if got := Fold(sumPortable(b, uint64(initial))); got != want {
					t.Fatalf("%s: sumPortable(len %d, offset %d, initial %#04x) folds to %#04x, want %#04x",
						pattern, n, align, initial, got, want)
				}
			}
		}
	}
}

// TestChecksumLargeRandom checks big buffers (jumbo frames, maximum
// datagrams and beyond) at random offsets.
func TestChecksumLargeRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	big := fill(r, "random", 1<<20)
	for range 12 {
		n := r.IntN(len(big) - 8)
		off := r.IntN(len(big) - n)
		b := big[off : off+n]
		initial := uint16(r.Uint32())
		want := refChecksum(b, initial)
		if got := Checksum(b, initial); got != want {
			t.Fatalf("Checksum(len %d, offset %d) = %#04x, want %#04x", n, off, got, want)
		}
		if got := Fold(sumPortable(b, uint64(initial))); got != want {
			t.Fatalf("sumPortable(len %d, offset %d) folds to %#04x, want %#04x", n, off, got, want)
		}
	}
	ones := fill(r, "ones", 1<<20) // every add carries
	if got, want := Checksum(ones, 0xffff), refChecksum(ones, 0xffff); got != want {
		t.Fatalf("Checksum(1 MiB of 0xFF) = %#04x, want %#04x", got, want)
	}
}

// TestSumPortableAccumulator checks that sumPortable accepts any 64-bit
// accumulator, including values whose additions must carry out of bit 63.
func TestSumPortableAccumulator(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	accs := []uint64{0, 1, 0xffff, 1 << 63, math.MaxUint64, math.MaxUint64 - 1, math.MaxUint64 - 0xffff}
	for range 50 {
		accs = append(accs, r.Uint64())
	}
	for _, pattern := range []string{"random", "ones"} {
		for _, n := range []int{0, 1, 2, 7, 8, 9, 63, 64, 65, 100, 1500} {
			b := fill(r, pattern, n)
			for _, acc := range accs {
				want := refChecksum(b, refFold(acc))
				if got := Fold(sumPortable(b, acc)); got != want {
					t.Errorf("%s: Fold(sumPortable(len %d, %#x)) = %#04x, want %#04x", pattern, n, acc, got, want)
				}
			}
		}
	}
}

func TestFold(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	xs := []uint64{0, 1, 0xfffe, 0xffff, 0x10000, 0x1fffe, 0xffffffff, 1 << 32,
		0xffff_ffff_ffff, math.MaxUint64, math.MaxUint64 - 1, 0xffff * 0x10001}
	for range 100000 {
		xs = append(xs, r.Uint64()>>r.UintN(64))
	}
	for _, x := range xs {
		if got, want := Fold(x), refFold(x); got != want {
			t.Fatalf("Fold(%#x) = %#04x, want %#04x", x, got, want)
		}
	}
}

func TestCombine(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	edges := []uint16{0, 1, 0x7fff, 0x8000, 0xfffe, 0xffff}
	check := func(a, b uint16) {
		t.Helper()
		want := refFold(uint64(a) + uint64(b))
		if got := Combine(a, b); got != want {
			t.Fatalf("Combine(%#04x, %#04x) = %#04x, want %#04x", a, b, got, want)
		}
	}
	for _, a := range edges {
		for _, b := range edges {
			check(a, b)
		}
	}
	for range 200000 {
		check(uint16(r.Uint32()), uint16(r.Uint32()))
	}
}

// Seed vectors: the UDP echo exchange captured in
// /work/shared/seeds/001_*.txt (lnxclient 10.10.12.166 port 32787 sends
// "TEST" to lnxserver 10.10.11.66 port 7 and gets it back).
var (
	echoRequestIPv4 = []byte{
		0x45, 0x00, 0x00, 0x20, // version 4, IHL 5, DSCP 0, total length 32
		0x00, 0x00, 0x40, 0x00, // ID 0, flags DF, fragment offset 0
		0x3e, 0x11, 0x10, 0xd2, // TTL 62, protocol UDP, header checksum 0x10d2
		0x0a, 0x0a, 0x0c, 0xa6, // source 10.10.12.166
		0x0a, 0x0a, 0x0b, 0x42, // destination 10.10.11.66
	}
	echoReplyIPv4 = []byte{
		0x45, 0x00, 0x00, 0x20,
		0x00, 0x00, 0x40, 0x00,
		0x40, 0x11, 0x0e, 0xd2, // TTL 64, header checksum 0x0ed2
		0x0a, 0x0a, 0x0b, 0x42,
		0x0a, 0x0a, 0x0c, 0xa6,
	}
	echoRequestUDP = []byte{
		0x80, 0x13, 0x00, 0x07, // source port 32787, destination port 7
		0x00, 0x0c, 0xac, 0x26, // length 12, checksum 0xac26
		'T', 'E', 'S', 'T',
	}
	echoReplyUDP = []byte{
		0x00, 0x07, 0x80, 0x13,
		0x00, 0x0c, 0xac, 0x26,
		'T', 'E', 'S', 'T',
	}
)

// headerChecksum computes the IPv4 header checksum with the field as zero.
func headerChecksum(h []byte) uint16 {
	return ^Combine(Checksum(h[:10], 0), Checksum(h[12:], 0))
}

func TestSeedIPv4HeaderChecksum(t *testing.T) {
	for _, tc := range []struct {
		name string
		hdr  []byte
		want uint16
	}{
		{"request", echoRequestIPv4, 0x10d2},
		{"reply", echoReplyIPv4, 0x0ed2},
	} {
		if got := headerChecksum(tc.hdr); got != tc.want {
			t.Errorf("%s: header checksum = %#04x, want %#04x", tc.name, got, tc.want)
		}
		if got := Checksum(tc.hdr, 0); got != 0xffff {
			t.Errorf("%s: sum over header with checksum = %#04x, want 0xffff", tc.name, got)
		}
	}
	// The reply differs by TTL (62 -> 64, in the word shared with the
	// protocol) and by the swapped addresses, which leave the sum alone.
	got := Update16(0x10d2, 0x3e11, 0x4011)
	if got != 0x0ed2 {
		t.Errorf("Update16 for TTL 62 -> 64 = %#04x, want 0x0ed2", got)
	}
}

func TestSeedUDPChecksum(t *testing.T) {
	for _, tc := range []struct {
		name     string
		src, dst []byte
		udp      []byte
	}{
		{"request", echoRequestIPv4[12:16], echoRequestIPv4[16:20], echoRequestUDP},
		{"reply", echoReplyIPv4[12:16], echoReplyIPv4[16:20], echoReplyUDP},
	} {
		pseudo := PseudoHeaderSum(tc.src, tc.dst, IPProtoUDP, uint32(len(tc.udp)))
		zeroed := append([]byte(nil), tc.udp...)
		zeroed[6], zeroed[7] = 0, 0
		if got := FinishUDP(Checksum(zeroed, pseudo)); got != 0xac26 {
			t.Errorf("%s: UDP checksum = %#04x, want 0xac26", tc.name, got)
		}
		if got := Checksum(tc.udp, pseudo); got != 0xffff {
			t.Errorf("%s: sum over pseudo-header and datagram = %#04x, want 0xffff", tc.name, got)
		}
		// The same from the literal RFC 768 pseudo-header bytes.
		lit := append(ipv4PseudoHeader(tc.src, tc.dst, IPProtoUDP, uint16(len(tc.udp))), zeroed...)
		if got := ^refChecksum(lit, 0); got != 0xac26 {
			t.Errorf("%s: reference UDP checksum = %#04x, want 0xac26", tc.name, got)
		}
	}
}

// ipv4PseudoHeader lays out the RFC 768 pseudo-header:
//
//	 0      7 8     15 16    23 24    31
//	+--------+--------+--------+--------+
//	|          source address           |
//	+--------+--------+--------+--------+
//	|        destination address        |
//	+--------+--------+--------+--------+
//	|  zero  |protocol|   UDP length    |
//	+--------+--------+--------+--------+
func ipv4PseudoHeader(src, dst []byte, protocol uint8, length uint16) []byte {
	b := make([]byte, 0, 12)
	b = append(b, src...)
	b = append(b, dst...)
	b = append(b, 0, protocol)
	return binary.BigEndian.AppendUint16(b, length)
}

// ipv6PseudoHeader lays out the RFC 8200 section 8.1 pseudo-header:
//
//	+-----------------------------------------------+
//	|          Source Address (16 bytes)            |
//	+-----------------------------------------------+
//	|        Destination Address (16 bytes)         |
//	+-----------------------------------------------+
//	|          Upper-Layer Packet Length            |
//	+-----------------------------------------------+
//	|                 zero (3 bytes)  | Next Header |
//	+-----------------------------------------------+
func ipv6PseudoHeader(src, dst []byte, next uint8, length uint32) []byte {
	b := make([]byte, 0, 40)
	b = append(b, src...)
	b = append(b, dst...)
	b = binary.BigEndian.AppendUint32(b, length)
	return append(b, 0, 0, 0, next)
}

func TestPseudoHeaderSum(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	ones4 := []byte{0xff, 0xff, 0xff, 0xff}
	ones16 := fill(r, "ones", 16)
	zero16 := make([]byte, 16)
	type addrs struct{ src, dst []byte }
	v4 := []addrs{{ones4, ones4}, {make([]byte, 4), make([]byte, 4)}}
	v6 := []addrs{{ones16, ones16}, {zero16, zero16}, {ones16, zero16}}
	for range 2000 {
		v4 = append(v4, addrs{fill(r, "random", 4), fill(r, "random", 4)})
		v6 = append(v6, addrs{fill(r, "random", 16), fill(r, "random", 16)})
	}
	protos := []uint8{IPProtoUDP, IPProtoTCP, IPProtoICMPv6, 0, 0xff}
	for i, a := range v4 {
		p := protos[i%len(protos)]
		for _, length := range []uint16{0, 8, 12, 0xffff, uint16(r.Uint32())} {
			want := refChecksum(ipv4PseudoHeader(a.src, a.dst, p, length), 0)
			if got := PseudoHeaderSum(a.src, a.dst, p, uint32(length)); got != want {
				t.Fatalf("IPv4 %x -> %x proto %d length %d: got %#04x, want %#04x", a.src, a.dst, p, length, got, want)
			}
		}
	}
	for i, a := range v6 {
		p := protos[i%len(protos)]
		for _, length := range []uint32{0, 8, 0xffff, 0x10000, math.MaxUint32, r.Uint32()} {
			want := refChecksum(ipv6PseudoHeader(a.src, a.dst, p, length), 0)
			if got := PseudoHeaderSum(a.src, a.dst, p, length); got != want {
				t.Fatalf("IPv6 %x -> %x next %d length %d: got %#04x, want %#04x", a.src, a.dst, p, length, got, want)
			}
		}
	}
	// Other even lengths go through Checksum; the sum is the same as
	// for the IPv6 layout.
	for n := 0; n <= 40; n += 2 {
		src, dst := fill(r, "random", n), fill(r, "ones", n)
		want := refChecksum(ipv6PseudoHeader(src, dst, IPProtoUDP, 1234), 0)
		if got := PseudoHeaderSum(src, dst, IPProtoUDP, 1234); got != want {
			t.Fatalf("%d-byte addresses: got %#04x, want %#04x", n, got, want)
		}
	}
}

func TestFinishUDP(t *testing.T) {
	for _, tc := range []struct{ sum, want uint16 }{
		{0xffff, 0xffff}, // computed checksum 0 is sent as all ones
		{0x0000, 0xffff},
		{0x53d9, 0xac26},
		{0xfffe, 0x0001},
	} {
		if got := FinishUDP(tc.sum); got != tc.want {
			t.Errorf("FinishUDP(%#04x) = %#04x, want %#04x", tc.sum, got, tc.want)
		}
	}
}

// randomCovered returns random data of an even length in [8, 1500], mostly
// short, whose first word is nonzero: covered data is never all zero in
// practice (an IPv4 header has its version, a pseudo-header its protocol),
// and only all-zero data tells the two zeros apart (see
// TestUpdateAllZeroData).
func randomCovered(r *rand.Rand) []byte {
	n := 8 + 2*r.IntN(60)
	if r.IntN(10) == 0 {
		n = 8 + 2*r.IntN(747)
	}
	b := fill(r, "random", n)
	b[0] |= 0x40
	return b
}

// checksumOf is the full recomputation the incremental updates must match.
func checksumOf(b []byte) uint16 { return ^Checksum(b, 0) }

// TestUpdateMatchesRecomputation changes 2, 4, 16 and odd numbers of bytes
// at random even offsets and checks every update helper against computing
// the checksum again from scratch.
func TestUpdateMatchesRecomputation(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	for i := range 20000 {
		b := randomCovered(r)
		cksum := checksumOf(b)
		width := []int{2, 4, 16, 1, 3, 5}[i%6]
		if width > len(b)-2 {
			width = 2
		}
		off := 2 + 2*r.IntN((len(b)-2-width)/2+1) // keep b[0] nonzero
		old := append([]byte(nil), b[off:off+width]...)
		switch r.IntN(4) { // new values, including the extremes
		case 0:
			for j := range width {
				b[off+j] = 0
			}
		case 1:
			for j := range width {
				b[off+j] = 0xff
			}
		default:
			for j := range width {
				b[off+j] = byte(r.Uint32())
			}
		}
		new := b[off : off+width]
		want := checksumOf(b)
		if got := UpdateBytes(cksum, old, new); got != want {
			t.Fatalf("UpdateBytes(%#04x, %x, %x) = %#04x, want %#04x", cksum, old, new, got, want)
		}
		switch width {
		case 2:
			o, n := binary.BigEndian.Uint16(old), binary.BigEndian.Uint16(new)
			if got := Update16(cksum, o, n); got != want {
				t.Fatalf("Update16(%#04x, %#04x, %#04x) = %#04x, want %#04x", cksum, o, n, got, want)
			}
		case 4:
			o, n := binary.BigEndian.Uint32(old), binary.BigEndian.Uint32(new)
			if got := Update32(cksum, o, n); got != want {
				t.Fatalf("Update32(%#04x, %#08x, %#08x) = %#04x, want %#04x", cksum, o, n, got, want)
			}
		}
	}
}

// forceSum rewrites the 16-bit word at even offset k of b so that the
// folded sum of b becomes target (nonzero). When the word needed is a
// ones'-complement zero, zeroWord picks 0x0000 rather than 0xFFFF.
func forceSum(b []byte, k int, target uint16, zeroWord bool) {
	binary.BigEndian.PutUint16(b[k:], 0)
	rest := Checksum(b, 0)
	// word + rest = target  =>  word = target - rest = target + ~rest.
	w := Combine(target, ^rest)
	if w == 0xffff && zeroWord {
		w = 0
	}
	binary.BigEndian.PutUint16(b[k:], w)
}

// TestUpdateResultIsZero covers the edge where the updated data sums to
// 0xFFFF, so the checksum is 0x0000: Update16 must return 0x0000 like a
// full recomputation, and the UDP helpers must return 0xFFFF (RFC 768's
// "computed zero is sent as all ones"), like FinishUDP.
func TestUpdateResultIsZero(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 16))
	for i := range 5000 {
		b := randomCovered(r)
		cksum := checksumOf(b)
		k := 2 + 2*r.IntN(len(b)/2-1)
		old := binary.BigEndian.Uint16(b[k:])
		forceSum(b, k, 0xffff, i%2 == 0)
		new := binary.BigEndian.Uint16(b[k:])
		if Checksum(b, 0) != 0xffff {
			t.Fatal("forceSum did not give the sum 0xFFFF")
		}
		if got := Update16(cksum, old, new); got != 0 {
			t.Fatalf("Update16(%#04x, %#04x, %#04x) = %#04x, want 0 (sum 0xFFFF)", cksum, old, new, got)
		}
		udpField := FinishUDP(Checksum(b, 0))
		if udpField != 0xffff {
			t.Fatalf("FinishUDP(0xFFFF) = %#04x", udpField)
		}
		// In UDP the field before the change held FinishUDP of the old sum.
		if got := UpdateUDP16(FinishUDP(^cksum), old, new); got != udpField {
			t.Fatalf("UpdateUDP16 to sum 0xFFFF = %#04x, want %#04x", got, udpField)
		}
		var ob, nb [2]byte
		binary.BigEndian.PutUint16(ob[:], old)
		binary.BigEndian.PutUint16(nb[:], new)
		if got := UpdateUDPBytes(FinishUDP(^cksum), ob[:], nb[:]); got != udpField {
			t.Fatalf("UpdateUDPBytes to sum 0xFFFF = %#04x, want %#04x", got, udpField)
		}
	}
}

// TestUpdateUDPFromAllOnesField starts from a UDP field of 0xFFFF (a
// computed checksum of zero) and checks that updates from there agree with
// recomputation, including the change 0xFFFF -> 0x0000 of a covered word,
// the one case where equation 3 itself returns 0xFFFF.
func TestUpdateUDPFromAllOnesField(t *testing.T) {
	r := rand.New(rand.NewPCG(17, 18))
	for i := range 5000 {
		b := randomCovered(r)
		k := 2 + 2*r.IntN(len(b)/2-1)
		j := 2 + 2*r.IntN(len(b)/2-1)
		if i%3 == 0 && j != k {
			binary.BigEndian.PutUint16(b[k:], 0xffff)
			forceSum(b, j, 0xffff, false)
		} else {
			forceSum(b, k, 0xffff, false)
		}
		field := FinishUDP(Checksum(b, 0))
		if field != 0xffff {
			t.Fatal("setup: field is not 0xFFFF")
		}
		old := binary.BigEndian.Uint16(b[k:])
		var new uint16
		if old == 0xffff && i%2 == 0 {
			new = 0
		} else {
			new = uint16(r.Uint32())
		}
		binary.BigEndian.PutUint16(b[k:], new)
		want := FinishUDP(Checksum(b, 0))
		if got := UpdateUDP16(field, old, new); got != want {
			t.Fatalf("UpdateUDP16(0xffff, %#04x, %#04x) = %#04x, want %#04x", old, new, got, want)
		}
		// Plain Update16 agrees up to the representation of zero.
		if got := Update16(field, old, new); FinishUDP(^got) != want {
			t.Fatalf("Update16(0xffff, %#04x, %#04x) = %#04x, want %#04x or 0", old, new, got, want)
		}
	}
}

func TestUpdateUDPKeepsNoChecksum(t *testing.T) {
	if got := UpdateUDP16(0, 7, 32787); got != 0 {
		t.Errorf("UpdateUDP16(0, ...) = %#04x, want 0 (no checksum stays none)", got)
	}
	if got := UpdateUDP32(0, 0x0a0a0ca6, 0x0a0a0b42); got != 0 {
		t.Errorf("UpdateUDP32(0, ...) = %#04x, want 0", got)
	}
	if got := UpdateUDPBytes(0, []byte{1, 2, 3, 4}, []byte{5, 6, 7, 8}); got != 0 {
		t.Errorf("UpdateUDPBytes(0, ...) = %#04x, want 0", got)
	}
}

// TestUpdateUDP32 checks UpdateUDP32 against recomputation for a UDP
// datagram whose pseudo-header address changes (NAT-style rewrite).
func TestUpdateUDP32(t *testing.T) {
	r := rand.New(rand.NewPCG(19, 20))
	for range 5000 {
		src, dst := fill(r, "random", 4), fill(r, "random", 4)
		udp := randomCovered(r)
		udp[6], udp[7] = 0, 0
		field := FinishUDP(Checksum(udp, PseudoHeaderSum(src, dst, IPProtoUDP, uint32(len(udp)))))
		old := binary.BigEndian.Uint32(src)
		newSrc := fill(r, "random", 4)
		want := FinishUDP(Checksum(udp, PseudoHeaderSum(newSrc, dst, IPProtoUDP, uint32(len(udp)))))
		if got := UpdateUDP32(field, old, binary.BigEndian.Uint32(newSrc)); got != want {
			t.Fatalf("UpdateUDP32(%#04x, %x, %x) = %#04x, want %#04x", field, src, newSrc, got, want)
		}
	}
}

// TestUpdateAllZeroData documents the one place where incremental update
// and recomputation disagree: data that becomes all zero sums to 0x0000,
// checksum 0xFFFF, while equation 3 yields the other zero, checksum 0x0000.
// Real covered data is never all zero (IPv4 version, pseudo-header
// protocol), and both checksums verify as a ones'-complement zero.
func TestUpdateAllZeroData(t *testing.T) {
	b := []byte{0x12, 0x34, 0, 0}
	cksum := checksumOf(b) // ^0x1234
	binary.BigEndian.PutUint16(b, 0)
	if got := checksumOf(b); got != 0xffff {
		t.Fatalf("checksum of zeros = %#04x, want 0xffff", got)
	}
	if got := Update16(cksum, 0x1234, 0); got != 0x0000 {
		t.Fatalf("Update16 to all-zero data = %#04x, want 0x0000 (the other zero)", got)
	}
}

func TestChecksumAllocs(t *testing.T) {
	b := make([]byte, 1500)
	src, dst := make([]byte, 16), make([]byte, 16)
	var sink uint16
	for name, f := range map[string]func(){
		"Checksum":          func() { sink += Checksum(b, sink) },
		"PseudoHeaderSum/4": func() { sink += PseudoHeaderSum(src[:4], dst[:4], IPProtoUDP, 1480) },
		"PseudoHeaderSum/6": func() { sink += PseudoHeaderSum(src, dst, IPProtoUDP, 1460) },
		"UpdateBytes":       func() { sink += UpdateBytes(sink, src, dst) },
	} {
		if n := testing.AllocsPerRun(100, f); n != 0 {
			t.Errorf("%s allocates %v times per run, want 0", name, n)
		}
	}
}

// FuzzChecksum compares the fast and portable paths with the reference on
// arbitrary data, start offsets and initial values.
func FuzzChecksum(f *testing.F) {
	f.Add([]byte{}, uint16(0), uint8(0))
	f.Add([]byte{0xff}, uint16(0xffff), uint8(0))
	f.Add(append(append([]byte{}, echoRequestIPv4...), echoRequestUDP...), uint16(0), uint8(1))
	f.Add(make([]byte, 130), uint16(1), uint8(3))
	f.Fuzz(func(t *testing.T, data []byte, initial uint16, offset uint8) {
		b := data[min(int(offset%8), len(data)):]
		want := refChecksum(b, initial)
		if got := Checksum(b, initial); got != want {
			t.Fatalf("Checksum(%x, %#04x) = %#04x, want %#04x", b, initial, got, want)
		}
		if got := Fold(sumPortable(b, uint64(initial))); got != want {
			t.Fatalf("sumPortable(%x, %#04x) folds to %#04x, want %#04x", b, initial, got, want)
		}
	})
}

// Example of computing and verifying the IPv4 header checksum of the
// captured echo request.
func ExampleChecksum() {
	hdr := append([]byte(nil), echoRequestIPv4...)
	hdr[10], hdr[11] = 0, 0
	cksum := ^Checksum(hdr, 0)
	binary.BigEndian.PutUint16(hdr[10:], cksum)
	fmt.Printf("%#04x %v\n", cksum, Checksum(hdr, 0) == 0xffff)
	// Output: 0x10d2 true
}

// update16Eq3 is RFC 1624 equation 3 written out with Combine, one
// ones'-complement addition at a time: HC' = ~(~HC + ~m + m').
func update16Eq3(hc, m, m1 uint16) uint16 { return ^Combine(Combine(^hc, ^m), m1) }

// TestUpdateIsEquation3 checks that the single-fold updates give exactly
// what equation 3 gives when applied word by word, for every input,
// including the ones that produce either representation of zero.
func TestUpdateIsEquation3(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	edges := []uint16{0, 1, 0x00ff, 0x7fff, 0x8000, 0xff00, 0xfffe, 0xffff}
	var cases [][3]uint16
	for _, a := range edges {
		for _, b := range edges {
			for _, c := range edges {
				cases = append(cases, [3]uint16{a, b, c})
			}
		}
	}
	for range 100000 {
		cases = append(cases, [3]uint16{uint16(r.Uint32()), uint16(r.Uint32()), uint16(r.Uint32())})
	}
	for i, tc := range cases {
		hc, m, m1 := tc[0], tc[1], tc[2]
		want := update16Eq3(hc, m, m1)
		if got := Update16(hc, m, m1); got != want {
			t.Fatalf("Update16(%#04x, %#04x, %#04x) = %#04x, equation 3 gives %#04x", hc, m, m1, got, want)
		}
		// 32 bits: two words, the second taken from another case.
		o := cases[(i+1)%len(cases)]
		old, new := uint32(m)<<16|uint32(o[1]), uint32(m1)<<16|uint32(o[2])
		want32 := update16Eq3(update16Eq3(hc, m, m1), o[1], o[2])
		if got := Update32(hc, old, new); got != want32 {
			t.Fatalf("Update32(%#04x, %#08x, %#08x) = %#04x, equation 3 gives %#04x", hc, old, new, got, want32)
		}
		var ob, nb [4]byte
		binary.BigEndian.PutUint32(ob[:], old)
		binary.BigEndian.PutUint32(nb[:], new)
		if got := UpdateBytes(hc, ob[:], nb[:]); got != want32 {
			t.Fatalf("UpdateBytes(%#04x, %x, %x) = %#04x, equation 3 gives %#04x", hc, ob, nb, got, want32)
		}
		if got := UpdateBytes(hc, ob[:2], nb[:2]); got != want {
			t.Fatalf("UpdateBytes(%#04x, %x, %x) = %#04x, equation 3 gives %#04x", hc, ob[:2], nb[:2], got, want)
		}
	}
}
