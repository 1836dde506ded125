package loadgen

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/pktengine/pktengine/frame"
	"github.com/pktengine/pktengine/proto"
)

// naiveSum is RFC 1071 done the slow, obvious way: 16-bit big-endian words,
// end-around carry after every addition, an odd byte padded with zero.
func naiveSum(b []byte) uint32 {
	var s uint32
	for i := 0; i < len(b); i += 2 {
		w := uint32(b[i]) << 8
		if i+1 < len(b) {
			w |= uint32(b[i+1])
		}
		s += w
		s = s&0xffff + s>>16
	}
	return s
}

// checkFrame verifies a generated frame against a from-scratch reference:
// decode, the IPv4 header checksum, the UDP checksum over an explicitly
// built pseudo-header, and the addresses, ports and signature.
func checkFrame(t *testing.T, b []byte, wantSrc, wantDst netip.AddrPort, sig Signature) {
	t.Helper()
	var p frame.Packet
	if r := p.Decode(b); r != frame.ReasonOK {
		t.Fatalf("decode: %v", r)
	}
	if p.Src(b) != wantSrc || p.Dst(b) != wantDst {
		t.Fatalf("flow %v -> %v, want %v -> %v", p.Src(b), p.Dst(b), wantSrc, wantDst)
	}
	udp := b[p.L4Off:p.L4End]
	var pseudo []byte
	if p.IPVersion == 4 {
		ip := b[p.L3Off:p.L4Off]
		if naiveSum(ip) != 0xffff {
			t.Fatalf("IPv4 header checksum %#04x wrong", binary.BigEndian.Uint16(ip[10:]))
		}
		pseudo = append(pseudo, ip[12:20]...)
		pseudo = append(pseudo, 0, proto.IPProtoUDP)
		pseudo = binary.BigEndian.AppendUint16(pseudo, uint16(len(udp)))
	} else {
		ip := b[p.L3Off:p.L4Off]
		pseudo = append(pseudo, ip[8:40]...)
		pseudo = binary.BigEndian.AppendUint32(pseudo, uint32(len(udp)))
		pseudo = append(pseudo, 0, 0, 0, proto.IPProtoUDP)
	}
	if c := binary.BigEndian.Uint16(udp[6:]); c == 0 {
		t.Fatal("UDP checksum 0")
	}
	if s := naiveSum(append(pseudo, udp...)); s != 0xffff {
		t.Fatalf("UDP checksum %#04x wrong (sum %#04x)", binary.BigEndian.Uint16(udp[6:]), s)
	}
	got, ok := ParseSignature(p.Payload(b))
	if !ok || got != sig {
		t.Fatalf("signature %+v, want %+v", got, sig)
	}
}

// testTemplate is NewTemplate of testSpec(v6, size).
func testTemplate(tb testing.TB, v6 bool, size int) *Template {
	tb.Helper()
	spec := testSpec(v6, size)
	tm, err := NewTemplate(&spec)
	if err != nil {
		tb.Fatal(err)
	}
	return tm
}

func testSpec(v6 bool, size int) Spec {
	s := Spec{
		SrcMAC:   frame.MAC{2, 0, 0, 0, 0, 1},
		DstMAC:   frame.MAC{2, 0, 0, 0, 0, 2},
		Src:      netip.MustParseAddrPort("198.18.0.101:61000"),
		Dst:      netip.MustParseAddrPort("198.18.0.2:7"),
		SrcAddrs: 3, SrcPorts: 7, DstPorts: 2,
		Size: size,
	}
	if v6 {
		s.Src = netip.MustParseAddrPort("[fd00::101]:61000")
		s.Dst = netip.MustParseAddrPort("[fd00::2]:7")
	}
	return s
}

// TestTemplateChecksums writes thousands of frames per RFC 2544 size over
// every flow, with random signatures, into one reused buffer, and checks
// each against the naive reference.
func TestTemplateChecksums(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, v6 := range []bool{false, true} {
		sizes := append([]int{MinSize(v6, 0)}, RFC2544Sizes...)
		for _, size := range sizes {
			if size < MinSize(v6, 0) {
				continue
			}
			t.Run(fmt.Sprintf("v6=%v/%d", v6, size), func(t *testing.T) {
				tm := testTemplate(t, v6, size)
				if tm.Len() != size-FCSLen || tm.NumFlows() != 42 {
					t.Fatalf("len %d flows %d", tm.Len(), tm.NumFlows())
				}
				buf := make([]byte, 2048)
				for i := range 3000 {
					f := i % tm.NumFlows()
					sig := Signature{Tag: uint16(rng.Uint32()), Stream: uint16(rng.Uint32()), Seq: rng.Uint64() & seqMask, Time: rng.Int64()}
					if i%7 == 0 {
						sig = Signature{Tag: 0xffff, Stream: 0xffff, Seq: seqMask, Time: -1}
					}
					n := tm.Write(buf, f, sig)
					src, dst := tm.Flow(f)
					checkFrame(t, buf[:n], src, dst, sig)
				}
			})
		}
	}
}

// TestTemplateZeroChecksum picks a run tag that makes the UDP sum come out
// as ones'-complement zero, which must be sent as 0xFFFF.
func TestTemplateZeroChecksum(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		tm := testTemplate(t, v6, 128)
		sig := Signature{Stream: 3, Seq: 12345, Time: 1700000000123456789}
		// With tag 0 the sum is s; a tag of ^s makes it 0xFFFF, i.e. the
		// complement is 0.
		s := proto.Fold(uint64(tm.flows[5].udpSum) + sig.sum())
		sig.Tag = ^s
		buf := make([]byte, tm.Len())
		tm.Write(buf, 5, sig)
		var p frame.Packet
		p.Decode(buf)
		if c := p.UDP(buf).Checksum(); c != 0xffff {
			t.Fatalf("v6=%v: checksum %#04x, want 0xffff", v6, c)
		}
		src, dst := tm.Flow(5)
		checkFrame(t, buf, src, dst, sig)
	}
}

func TestTemplateFlowOrder(t *testing.T) {
	tm := testTemplate(t, false, 64)
	i := 0
	for dp := range 2 {
		for sa := range 3 {
			for sp := range 7 {
				src, dst := tm.Flow(i)
				wantSrc := netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, 0, byte(101 + sa)}), uint16(61000+sp))
				wantDst := netip.AddrPortFrom(tm.Spec().Dst.Addr(), uint16(7+dp))
				if src != wantSrc || dst != wantDst {
					t.Fatalf("flow %d: %v -> %v, want %v -> %v", i, src, dst, wantSrc, wantDst)
				}
				i++
			}
		}
	}
	if lo, hi := tm.SourcePorts(); lo != 61000 || hi != 61006 {
		t.Fatalf("source ports %d-%d", lo, hi)
	}
}

func TestTemplateFlowsOption(t *testing.T) {
	// Flows alone spreads over source ports.
	spec := Spec{Src: netip.MustParseAddrPort("198.18.0.1:1000"), Dst: netip.MustParseAddrPort("198.18.0.2:7"), Flows: 100}
	tm, err := NewTemplate(&spec)
	if err != nil {
		t.Fatal(err)
	}
	if src, _ := tm.Flow(99); src.Port() != 1099 || tm.NumFlows() != 100 {
		t.Fatalf("flow 99 from %v of %d", src, tm.NumFlows())
	}
	// Flows below the product takes the first ones.
	spec = testSpec(false, 64)
	spec.Flows = 10
	if tm, err = NewTemplate(&spec); err != nil || tm.NumFlows() != 10 {
		t.Fatalf("flows %v, %v", tm, err)
	}
	if src, _ := tm.Flow(9); src != netip.MustParseAddrPort("198.18.0.102:61002") {
		t.Fatalf("flow 9 from %v", src)
	}
	// An address range crossing an octet boundary carries.
	spec = testSpec(false, 64)
	spec.Src = netip.MustParseAddrPort("198.18.0.255:5")
	spec.SrcPorts, spec.DstPorts = 1, 1
	if tm, err = NewTemplate(&spec); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, tm.Len())
	for f := range tm.NumFlows() {
		src, dst := tm.Flow(f)
		tm.Write(buf, f, Signature{Seq: uint64(f)})
		checkFrame(t, buf, src, dst, Signature{Seq: uint64(f)})
	}
	if src, _ := tm.Flow(2); src.Addr() != netip.MustParseAddr("198.18.1.1") {
		t.Fatalf("flow 2 from %v", src)
	}
}

func TestTemplateErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*Spec)
		want error
	}{
		{"ipv6 64", func(s *Spec) { *s = testSpec(true, 64) }, ErrSize},
		{"ipv4 63", func(s *Spec) { s.Size = 63 }, ErrSize},
		{"mixed families", func(s *Spec) { s.Dst = netip.MustParseAddrPort("[fd00::2]:7") }, frame.ErrAddressFamily},
		{"no source", func(s *Spec) { s.Src = netip.AddrPort{} }, frame.ErrAddressFamily},
		{"ports past 65535", func(s *Spec) { s.Src = netip.MustParseAddrPort("198.18.0.1:65530") }, ErrFlows},
		{"too many flows", func(s *Spec) { s.Flows = 43 }, ErrFlows},
		{"past the last address", func(s *Spec) { s.Src = netip.MustParseAddrPort("255.255.255.254:5") }, ErrFlows},
		{"too many", func(s *Spec) { s.SrcPorts, s.SrcAddrs = 65536, 100 }, ErrFlows},
	} {
		spec := testSpec(false, 64)
		tc.mod(&spec)
		if _, err := NewTemplate(&spec); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	if n := MinSize(true, 1); n != 88 {
		t.Errorf("MinSize(v6, 1 tag) = %d", n)
	}
}

func TestTemplateVLAN(t *testing.T) {
	spec := testSpec(false, 68)
	spec.VLANs = []frame.VLANTag{{TCI: frame.MakeTCI(0, false, 10)}}
	tm, err := NewTemplate(&spec)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, tm.Len())
	sig := Signature{Tag: 1, Seq: 2, Time: 3}
	tm.Write(buf, 4, sig)
	src, dst := tm.Flow(4)
	checkFrame(t, buf, src, dst, sig)
}

func TestSignatureRoundTrip(t *testing.T) {
	b := make([]byte, SignatureLen)
	s := Signature{Tag: 0xbeef, Stream: 0x1234, Seq: 0xa5a5_5a5a_0f0f, Time: -42}
	s.Put(b)
	if got, ok := ParseSignature(b); !ok || got != s {
		t.Fatalf("%+v", got)
	}
	if _, ok := ParseSignature(b[:17]); ok {
		t.Fatal("short payload parsed")
	}
	// The sum helper agrees with summing the bytes.
	if got, want := proto.Fold(s.sum()), uint16(naiveSum(b)); got != want && !(got == 0xffff && want == 0) {
		t.Fatalf("sum %#x, want %#x", got, want)
	}
}

func TestTemplateWriteAllocs(t *testing.T) {
	tm := testTemplate(t, true, 512)
	buf := make([]byte, 2048)
	var seq uint64
	if n := testing.AllocsPerRun(1000, func() {
		seq++
		tm.Write(buf, int(seq%uint64(tm.NumFlows())), Signature{Seq: seq})
	}); n != 0 {
		t.Fatalf("%v allocations per Write", n)
	}
}

func BenchmarkTemplateWrite(b *testing.B) {
	for _, v6 := range []bool{false, true} {
		for _, size := range []int{128, 1518} {
			b.Run(fmt.Sprintf("v6=%v/%d", v6, size), func(b *testing.B) {
				tm := testTemplate(b, v6, size)
				buf := make([]byte, 2048)
				b.ReportAllocs()
				b.SetBytes(int64(tm.Len()))
				sig := Signature{Tag: 7}
				nf := tm.NumFlows()
				f := 0
				for i := 0; b.Loop(); i++ {
					sig.Seq = uint64(i)
					sig.Time = int64(i)
					tm.Write(buf, f, sig)
					if f++; f == nf {
						f = 0
					}
				}
			})
		}
	}
}

func TestTXSlotSize(t *testing.T) {
	for n, want := range map[int]int{60: 128, 96: 128, 97: 256, 1514: 2048, 1518: 2048, 2017: 4096} {
		if got := txSlotSize(n); got != want {
			t.Errorf("txSlotSize(%d) = %d, want %d", n, got, want)
		}
	}
}

// TestTemplateRewrite rewrites one buffer that already holds a frame of
// the template (as an AF_XDP frame does) from flow to flow, with random
// signatures, and checks every frame against the naive reference; Write
// once, then Rewrite only.
func TestTemplateRewrite(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, v6 := range []bool{false, true} {
		tm := testTemplate(t, v6, 128)
		buf := make([]byte, 2048)
		tm.Write(buf, 0, Signature{})
		for range 2000 {
			f := rng.IntN(tm.NumFlows())
			sig := Signature{Tag: uint16(rng.Uint32()), Stream: uint16(rng.Uint32()), Seq: rng.Uint64() & seqMask, Time: rng.Int64()}
			n := tm.Rewrite(buf, f, sig)
			src, dst := tm.Flow(f)
			checkFrame(t, buf[:n], src, dst, sig)
		}
		if n := testing.AllocsPerRun(100, func() { tm.Rewrite(buf, 1, Signature{Seq: 9}) }); n != 0 {
			t.Errorf("Rewrite allocates %v times", n)
		}
	}
}
