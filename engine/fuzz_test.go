package engine

import (
	"bytes"
	"net/netip"
	"testing"
	"time"

	"github.com/pktengine/pktengine/frame"
	"github.com/pktengine/pktengine/reassembly"
	"github.com/pktengine/pktengine/ring"
)

// FuzzDispatch feeds arbitrary frames, with arbitrary ring metadata,
// through the worker as a fake ring would, with every kind of port
// bound. Each frame must end in exactly one outcome, the snapshot
// invariant must hold, and every UDP frame the engine sends must carry
// valid checksums unless the ring claimed the input's was verified.
func FuzzDispatch(f *testing.F) {
	seed := func(fr []byte, status uint32, typ uint8) { f.Add(fr, status, typ, uint16(0)) }
	seed(udpFrame(f, ap(peer4, 40000), ap(owned4, 7), []byte("TEST")), 0, 0)
	seed(udpFrame(f, ap(peer6, 40000), ap(owned6, 7), []byte("TEST")), tpStatusCsumNotReady, 0)
	seed(udpFrame(f, ap(peer4, 40000), ap(owned4, 19), nil), 0, 0)
	seed(udpFrame(f, ap(peer4, 40000), ap(owned4, 13), nil), tpStatusVLANValid, 0)
	seed(udpFrame(f, ap(peer4, 40000), ap(owned4, 4242), []byte("closed")), 0, 0)
	seed(udpFrame(f, ap(peer4, 40000), ap(bcast4, 5000), []byte("group")), 0, 1)
	seed(udpFrame(f, ap(peer6, 40000), ap(owned6, 5000), []byte("q")), 0, 0)
	seed(arpRequest(f, peer4, owned4), 0, 1)
	seed(neighborSolicitation(f, peer6, owned6), 0, 2)
	seed(echoRequest(f, peer4, owned4), 0, 0)
	seed(tagged(udpFrame(f, ap(peer4, 40000), ap(owned4, 7), []byte("inner tag"))), 0, 0)
	seed(udpFragment(f, ap(peer4, 1), ap(owned4, 7), 0, 16), 0, 0)
	for _, fr := range fragments(f, ap(peer6, 1), ap(owned6, 7), pattern(100), 1280, 3) {
		seed(fr, 0, 0)
	}
	seed(fragments(f, ap(peer4, 1), ap(owned4, 7), pattern(2000), 1500, 4)[1], tpStatusVLANValid, 0)

	f.Fuzz(func(t *testing.T, fr []byte, status uint32, typ uint8, tci uint16) {
		r := newRig(t, &Config{QueueDepth: 2, Guard: Guard{AnySource: true, AnswerGroup: true, SourceRate: -1},
			ReassemblyMemory: reassembly.MinMemoryLimit})
		for _, s := range Services() {
			if _, err := r.e.HandleService(ap(netip.Addr{}, s.Port()), s); err != nil {
				t.Fatal(err)
			}
		}
		r.e.Bind(ap(owned6, 5000))
		r.e.Bind(ap(netip.IPv4Unspecified(), 5000))
		m := ring.Meta{Status: ring.Status(status), Type: ring.PacketType(typ % 5), VLANTCI: tci, Timestamp: 1}
		in := clone(fr)
		b := new(fakeBatch).add(fr, m).add(fr, m) // twice: the second sees a non-empty queue
		out := r.batch(b)
		for _, o := range out {
			if o >= NumOutcomes {
				t.Fatalf("frame ended in no single outcome: %v", out)
			}
		}
		c := r.e.Counters()
		if err := c.Check(); err != nil {
			t.Fatal(err)
		}
		if string(in) != string(fr) {
			t.Fatal("the engine wrote into a received frame")
		}
		if m.Status.ChecksumValid() {
			return
		}
		for _, sent := range r.tx.take() {
			var p frame.Packet
			if p.Decode(sent) == frame.ReasonOK {
				checkUDPFrame(t, sent)
			}
		}
	})
}

// FuzzFragments feeds the fragments of one datagram to echo in any order,
// with gaps, duplicates and overlaps, some of them cut, some corrupted,
// some over IPv6, some tagged: every frame must end in exactly one
// outcome, the snapshot invariants must hold, whatever the engine sends
// must fit the MTU, and every datagram it answers with must put itself
// together into a valid UDP datagram that (unless the input was
// corrupted) is the request, turned around.
//
// The input: byte 0 picks the family (bit 0), a VLAN tag (bit 1) and a
// ring batch per fragment or one for all (bit 2); bytes 1-2 the payload
// length; then 4 bytes per fragment: offset and length in 8-byte units,
// flags (bit 0: cut the last byte, bit 1: corrupt byte 2 of the
// fragment's IP header, bit 2: send it twice), and the corruption's XOR.
func FuzzFragments(f *testing.F) {
	f.Add([]byte{0, 0x07, 0xd0, 0, 185, 0, 0, 185, 70, 0, 0})
	f.Add([]byte{1, 0x07, 0xd0, 185, 70, 0, 0, 0, 185, 4, 0})
	f.Add([]byte{4, 0x00, 0x40, 0, 4, 0, 0, 2, 4, 0, 0, 4, 6, 0, 0})
	f.Add([]byte{3, 0x03, 0x00, 0, 8, 1, 0, 8, 90, 2, 0x40})
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) < 3 {
			return
		}
		v6, tagged, oneBatch := in[0]&1 != 0, in[0]&2 != 0, in[0]&4 == 0
		size := int(in[1])<<8 | int(in[2])
		src, dst := ap(peer4, 40000), ap(owned4, 7)
		if v6 {
			src, dst = ap(peer6, 40000), ap(owned6, 7)
		}
		payload := pattern(size)
		s := &frame.UDPSpec{SrcMAC: macPeer, DstMAC: macEngine, Src: src, Dst: dst, Payload: payload, ID: 0x4242}
		l4 := frame.UDPHeaderLen + size
		m := ring.Meta{Timestamp: 1}
		if tagged {
			m.Status, m.VLANTCI = tpStatusVLANValid, 12
		}
		r := newRig(t, &Config{ReassemblyMemory: reassembly.MinMemoryLimit})
		if _, err := r.e.HandleService(ap(netip.Addr{}, 7), Echo); err != nil {
			t.Fatal(err)
		}
		corrupted := false
		b := new(fakeBatch)
		nframes := 0
		for rest := in[3:]; len(rest) >= 4 && nframes < 200; rest = rest[4:] {
			off, n := int(rest[0])*8, int(rest[1])*8
			if off >= l4 {
				continue
			}
			if n == 0 || off+n > l4 {
				n = l4 - off // up to the end: the last fragment
			}
			buf := make([]byte, 70000)
			k, err := frame.BuildUDPFragment(buf, s, frame.Fragment{Offset: off, Length: n, ID: 0x4242})
			if err != nil {
				continue
			}
			fr := buf[:k]
			if rest[2]&1 != 0 && k > frame.EthernetHeaderLen+1 {
				fr = fr[:k-1]
			}
			if rest[2]&2 != 0 && rest[3] != 0 {
				fr[frame.EthernetHeaderLen+2] ^= rest[3]
				corrupted = true
			}
			copies := 1 + int(rest[2]>>2&1)
			for range copies {
				b.add(fr, m)
				nframes++
				if !oneBatch {
					r.batch(b)
					b = new(fakeBatch)
				}
			}
		}
		if b.len() > 0 {
			r.batch(b)
		}
		c := r.e.Counters()
		if err := c.Check(); err != nil {
			t.Fatal(err)
		}
		if c.FramesIn != uint64(nframes) {
			t.Fatalf("%d frames in, %d sent", c.FramesIn, nframes)
		}
		ref, err := reassembly.New(nil)
		if err != nil {
			t.Fatal(err)
		}
		answers := 0
		for _, out := range r.tx.take() {
			if len(out) > frame.EthernetHeaderLen+frame.VLANTagLen+1500 {
				t.Fatalf("a %d-byte frame sent on a 1500-byte MTU", len(out))
			}
			if tagged {
				out = untag(out)
			}
			var p frame.Packet
			reason := p.Decode(out)
			var whole []byte
			switch {
			case reason == frame.ReasonOK:
				whole = out
			case p.IsFragment():
				res := ref.Add(out, &p, time.Unix(1, 0))
				if res.Datagram == nil {
					continue
				}
				whole = clone(res.Datagram.Frame())
				ref.Release(res.Datagram)
			default:
				continue // ICMP
			}
			answers++
			pk := checkUDPFrame(t, whole)
			if !corrupted && (!bytes.Equal(pk.Payload(whole), payload) || pk.Src(whole) != dst || pk.Dst(whole) != src) {
				t.Fatalf("answer %v -> %v, %d bytes; want %v -> %v, the %d-byte request", pk.Src(whole), pk.Dst(whole), len(pk.Payload(whole)), dst, src, size)
			}
		}
		if !corrupted && uint64(answers) != c.UDP.OutDatagrams {
			t.Fatalf("%d answers put together, %d sent", answers, c.UDP.OutDatagrams)
		}
	})
}
