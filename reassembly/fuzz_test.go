package reassembly

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/pktengine/pktengine/frame"
	"github.com/pktengine/pktengine/proto"
)

// fuzzSource returns sender i (0 to 7) of a family: IPv4 hosts, and IPv6
// addresses of which each pair shares a /64.
func fuzzSource(i int, fam int) netip.Addr {
	if fam == 0 {
		return netip.AddrFrom4([4]byte{198, 18, 1, byte(i)})
	}
	return netip.AddrFrom16([16]byte{0: 0xfd, 7: byte(i / 2), 15: byte(i)})
}

// fuzzKey picks a datagram from a key byte: family, one of 8 sources, one
// of 4 identifications (and a high part IPv4 drops).
func fuzzKey(k byte) rawFrag {
	fam := int(k & 1)
	return rawFrag{
		src: fuzzSource(int(k>>1&7), fam),
		dst: [2]netip.Addr{b4, b6}[fam],
		id:  uint32(k>>4&3) | uint32(k>>6)<<16,
	}
}

// fuzzFrag turns 6 bytes into a fragment: legal and illegal offsets,
// lengths and flags, over a handful of datagram keys, so that datagrams
// collide, overlap and exhaust memory.
func fuzzFrag(b []byte) []byte {
	k, offHi, offLo, n, fl, seed := b[0], b[1], b[2], b[3], b[4], b[5]
	f := fuzzKey(k)
	f.more, f.df, f.tos = fl&1 != 0, fl&2 != 0, fl>>2&3
	if fl&16 != 0 {
		f.off = int(offLo&31) * 8
	} else {
		f.off = int(uint16(offHi)<<8|uint16(offLo)) & 0x1fff * 8
	}
	size := int(n)
	if fl&64 != 0 {
		size *= 8
	}
	if fl&32 != 0 {
		size &^= 7
	}
	f.data = make([]byte, size)
	for i := range f.data {
		f.data[i] = seed + byte(i)
	}
	if f.off == 0 && fl&128 != 0 {
		if f.src.Is4() {
			f.opts = []byte{frame.IPv4OptionRouterAlert, 4, 0, 0}
		} else {
			f.ext = []frame.IPv6ExtHeader{{Type: proto.IPProtoHopByHop, Data: []byte{5, 2, 0, 0, 1, 0}}}
		}
	}
	if f.off == 0 && seed&3 == 3 {
		f.proto = []uint8{proto.IPProtoTCP, proto.IPProtoICMPv6, proto.IPProtoDstOpts, proto.IPProtoNoNext}[seed>>2&3]
	}
	return f.build()
}

// fuzzDatagram turns 4 bytes into all the fragments of one datagram, in an
// order the last byte picks, so that datagrams complete.
func fuzzDatagram(b []byte) [][]byte {
	f := fuzzKey(b[0])
	f.id |= 4 // apart from fuzzFrag's datagrams
	size := 8 + int(b[1])*8 + int(b[2]&7)
	nfrag := 1 + int(b[2]>>3&7)
	per := max(8, size/nfrag&^7)
	var out [][]byte
	for off := 0; off < size; off += per {
		g := f
		g.off, g.more = off, off+per < size
		if b[2]&0x40 != 0 { // ECN: the first fragment's and the others'
			g.tos = b[3] >> 2 & 3
			if off == 0 {
				g.tos = b[3] & 3
			}
		}
		g.data = make([]byte, min(per, size-off))
		for i := range g.data {
			g.data[i] = b[3] ^ byte(off+i)
		}
		out = append(out, g.build())
	}
	// Rotate by b[3] and maybe reverse.
	r := int(b[3]) % len(out)
	out = append(out[r:], out[:r]...)
	if b[3]&0x80 != 0 {
		for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
			out[i], out[j] = out[j], out[i]
		}
	}
	return out
}

// FuzzReassembly runs a sequence of operations (fragments, the clock
// moving, expiry reports, releases, raw frames) on a small Reassembler,
// so that its memory and queue limits bite, and on the reference model,
// and compares every result, report and counter.
func FuzzReassembly(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 4, 0x11, 1, 0, 0, 1, 0, 4, 0x10, 2})
	f.Add([]byte{0, 1, 0, 0, 200, 0x31, 7, 0, 1, 0, 25, 200, 0x30, 7, 5, 200, 6})
	f.Add(bytes.Repeat([]byte{2, 3, 0x12, 0x34, 255, 0x61, 9}, 40))
	f.Add(bytes.Repeat([]byte{1, 9, 0x7f, 0xf0, 4, 0x21, 3, 3, 0x0b, 0x30, 0x01, 255, 0x61, 4}, 30))
	f.Add([]byte{4, 20, 0x45, 0, 0, 28, 0, 1, 0x20, 0, 64, 17, 0, 0, 198, 18, 0, 1, 198, 18, 0, 2, 1, 2, 3, 4, 5, 6, 7, 8})
	f.Fuzz(func(t *testing.T, ops []byte) { runOps(t, ops) })
}

// runOps runs the operations ops encodes on a Reassembler and on the
// reference, comparing everything after every step, and returns the
// Reassembler's final counters.
func runOps(t testing.TB, ops []byte) Stats {
	r := mustNew(t, &Config{MemoryLimit: MinMemoryLimit, MaxDatagrams: 3})
	ref := newRef(r)
	now := t0
	var out []*Datagram
	for step := 0; len(ops) > 0; step++ {
		op := ops[0]
		ops = ops[1:]
		var bs [][]byte
		switch op % 8 {
		case 0, 1, 2:
			if len(ops) < 6 {
				return r.Stats()
			}
			bs = [][]byte{fuzzFrag(ops[:6])}
			ops = ops[6:]
		case 3:
			if len(ops) < 4 {
				return r.Stats()
			}
			bs = fuzzDatagram(ops[:4])
			ops = ops[4:]
		case 4: // a raw IP packet
			if len(ops) < 1 || len(ops) < 1+int(ops[0]) {
				return r.Stats()
			}
			et := proto.EtherTypeIPv4
			if op&8 != 0 {
				et = proto.EtherTypeIPv6
			}
			b := binary.BigEndian.AppendUint16(append(append([]byte{}, macB[:]...), macA[:]...), et)
			bs = [][]byte{append(b, ops[1:1+int(ops[0])]...)}
			ops = ops[1+int(ops[0]):]
		case 5:
			now = now.Add(time.Duration(op>>3) * 2 * time.Second)
		case 6:
			var e Expired
			ok := r.NextExpired(now, &e)
			want, wantOK := ref.nextExpired(now)
			if ok != wantOK || ok && !bytes.Equal(e.Frame, want) {
				t.Fatalf("step %d: NextExpired %v %x, reference %v %x", step, ok, e.Frame, wantOK, want)
			}
		case 7:
			if len(out) > 0 {
				r.Release(out[0])
				ref.out--
				out = out[1:]
			}
		}
		for _, b := range bs {
			var p frame.Packet
			p.Decode(b)
			if !p.IsFragment() && op%8 != 0 {
				continue // an engine passes fragments only; fuzzFrag's others test Malformed
			}
			res := r.Add(b, &p, now)
			want := ref.add(b, &p, now)
			if res.Outcome != want.o || res.SendParamProblem != want.sendPP || res.ParamProblem != want.pp {
				t.Fatalf("step %d: %v %v %+v, reference %v %v %+v\nframe %x", step, res.Outcome, res.SendParamProblem, res.ParamProblem, want.o, want.sendPP, want.pp, b)
			}
			if res.Datagram != nil {
				if !bytes.Equal(res.Datagram.Frame(), want.frame) {
					t.Fatalf("step %d: datagram\n%x\nreference\n%x", step, res.Datagram.Frame(), want.frame)
				}
				out = append(out, res.Datagram)
			}
		}
		if err := r.check(); err != nil {
			t.Fatalf("step %d: %v", step, err)
		}
		got, want := r.Stats(), ref.snapshot()
		got.MemoryLimit = 0
		if got != want {
			t.Fatalf("step %d: stats\n%+v\nreference\n%+v", step, got, want)
		}
	}
	return r.Stats()
}

// TestAgainstReference runs long random operation sequences through
// runOps, biased towards the cases that matter, and checks that they
// reached every outcome.
func TestAgainstReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var seen [NumOutcomes]uint64
	var evictions, sourceEvictions uint64
	rounds := 24
	if testing.Short() {
		rounds = 6
	}
	for round := range rounds {
		var ops []byte
		// Even rounds: few keys, small offsets, so that datagrams
		// complete and collide. Odd rounds: many sources, any offset,
		// larger fragments and a slow clock, so that memory runs out.
		dense := round%2 == 0
		pDatagram, pFrag, pClock, pExpired, pRelease := 15, 80, 85, 88, 97
		if !dense {
			pDatagram, pFrag, pClock, pExpired, pRelease = 3, 94, 95, 96, 98
		}
		for range 1500 {
			switch x := rng.IntN(100); {
			case x < pDatagram:
				b := make([]byte, 4)
				for i := range b {
					b[i] = byte(rng.Uint32())
				}
				if dense {
					b[1] &= 0x3f
				}
				ops = append(append(ops, 3), b...)
			case x < pFrag:
				op := byte(rng.IntN(3))
				b := make([]byte, 6)
				for i := range b {
					b[i] = byte(rng.Uint32())
				}
				if dense {
					b[4] |= 16
					b[0] &= 0x37 // few keys
				} else {
					b[4] |= 64 // up to 2 KiB
				}
				if rng.IntN(3) > 0 {
					b[4] |= 32 // aligned
				}
				ops = append(append(ops, op), b...)
			case x < pClock:
				ops = append(ops, 5|byte(rng.IntN(8))<<3) // up to 14 s
			case x < pExpired:
				ops = append(ops, 6)
			case x < pRelease:
				ops = append(ops, 7)
			default:
				n := rng.IntN(80)
				raw := make([]byte, n)
				for i := range raw {
					raw[i] = byte(rng.Uint32())
				}
				if n > 20 {
					raw[0] = 0x45
					binary.BigEndian.PutUint16(raw[2:], uint16(n))
					raw[6] = byte(rng.IntN(4)) << 5
				}
				ops = append(append(ops, 4, byte(n)), raw...)
			}
		}
		st := runOps(t, ops)
		for i, n := range st.Fragments {
			seen[i] += n
		}
		evictions += st.Evictions
		sourceEvictions += st.SourceEvictions
	}
	for o, n := range seen {
		if n == 0 && Outcome(o) != Held && Outcome(o) != Malformed {
			t.Errorf("no fragment ended %v", Outcome(o))
		}
	}
	if evictions == 0 || sourceEvictions == 0 || sourceEvictions == evictions {
		t.Errorf("evictions %d, by source %d: the memory policy was not exercised", evictions, sourceEvictions)
	}
	t.Logf("outcomes %v, evictions %d (%d by source)", seen, evictions, sourceEvictions)
}
