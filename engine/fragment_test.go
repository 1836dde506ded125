package engine

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/pktengine/pktengine/frame"
	"github.com/pktengine/pktengine/proto"
	"github.com/pktengine/pktengine/reassembly"
	"github.com/pktengine/pktengine/ring"
)

// The fragment path without rings: fragments go into the worker as a
// ring would hand them over, answers come out of fakeTX, and a reference
// reassembler (package reassembly, in a fresh instance) puts the engine's
// fragments back together to check them.

// fragments returns the frames of a datagram from src to dst with
// payload, fragmented for mtu as a sending kernel would (UDPFragmenter),
// with identification id.
func fragments(tb testing.TB, src, dst netip.AddrPort, payload []byte, mtu int, id uint32, mod ...func(*frame.UDPSpec)) [][]byte {
	tb.Helper()
	s := &frame.UDPSpec{SrcMAC: macPeer, DstMAC: macEngine, Src: src, Dst: dst, Payload: payload, ID: uint16(id)}
	for _, m := range mod {
		m(s)
	}
	var uf frame.UDPFragmenter
	if err := uf.Reset(s, mtu, id); err != nil {
		tb.Fatal(err)
	}
	var out [][]byte
	for i := range uf.Fragments() {
		buf := make([]byte, uf.FrameLen(i))
		n, err := uf.Build(buf, i)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, buf[:n])
	}
	return out
}

// fragmentBatch puts frames into one batch with metadata m.
func fragmentBatch(frames [][]byte, m ring.Meta) *fakeBatch {
	b := new(fakeBatch)
	for _, f := range frames {
		b.add(f, m)
	}
	return b
}

// reassemble puts the frames the engine sent back together with a fresh
// reassembler and returns the datagram's frame, checked as the engine
// checks a frame (IPv4 header checksum, UDP checksum by an independent
// sum). A single unfragmented frame is returned as it is.
func reassemble(tb testing.TB, frames [][]byte) []byte {
	tb.Helper()
	if len(frames) == 1 {
		checkUDPFrame(tb, frames[0])
		return frames[0]
	}
	r, err := reassembly.New(nil)
	if err != nil {
		tb.Fatal(err)
	}
	for i, f := range frames {
		var p frame.Packet
		p.Decode(f)
		if !p.IsFragment() {
			tb.Fatalf("frame %d of %d is not a fragment", i, len(frames))
		}
		if p.IPVersion == 4 {
			if p.IPv4(f).DontFragment() {
				tb.Errorf("IPv4 fragment %d has DF set", i)
			}
			if p.VerifyIPv4HeaderChecksum(f) != frame.ReasonOK {
				tb.Errorf("IPv4 fragment %d: bad header checksum", i)
			}
		}
		res := r.Add(f, &p, time.Unix(1, 0))
		if res.Datagram != nil {
			if i != len(frames)-1 {
				tb.Fatalf("datagram complete after %d of %d fragments", i+1, len(frames))
			}
			out := bytes.Clone(res.Datagram.Frame())
			checkUDPFrame(tb, out)
			return out
		}
		if res.Outcome != reassembly.Held {
			tb.Fatalf("fragment %d: %v", i, res.Outcome)
		}
	}
	tb.Fatalf("the %d fragments do not complete a datagram", len(frames))
	return nil
}

func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i>>8)
	}
	return b
}

// TestEchoReassembled: a datagram of up to 65,507 bytes (65,527 over
// IPv6) arrives in fragments; echo sends it back whole, as fragments the
// peer can put together, from and to the right addresses, with a stripped
// VLAN tag in every fragment.
func TestEchoReassembled(t *testing.T) {
	for _, tc := range []struct {
		name     string
		src, dst netip.AddrPort
		size     int
		m        ring.Meta
		vlan     uint16 // Config.VLAN
	}{
		{"ipv4 1473", ap(peer4, 40000), ap(owned4, 7), 1473, ring.Meta{}, 0},
		{"ipv4 8192", ap(peer4, 40000), ap(owned4, 7), 8192, ring.Meta{}, 0},
		{"ipv4 65507", ap(peer4, 40000), ap(owned4, 7), frame.MaxUDPPayloadIPv4, ring.Meta{}, 0},
		{"ipv6 1453", ap(peer6, 40000), ap(owned6, 7), 1453, ring.Meta{}, 0},
		{"ipv6 65527", ap(peer6, 40000), ap(owned6, 7), frame.MaxUDPPayloadIPv6, ring.Meta{}, 0},
		{"ipv4 shared vlan", ap(peer4, 40000), ap(shared4, 7), 3000, ring.Meta{Status: tpStatusVLANValid, VLANTCI: 100}, 100},
		{"ipv6 vlan", ap(peer6, 40000), ap(owned6, 7), 5000, ring.Meta{Status: tpStatusVLANValid, VLANTCI: 42}, 42},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, &Config{VLAN: tc.vlan})
			if _, err := r.e.HandleService(ap(netip.Addr{}, 7), Echo); err != nil {
				t.Fatal(err)
			}
			payload := pattern(tc.size)
			in := fragments(t, tc.src, tc.dst, payload, 1500, 0x5151)
			orig := make([][]byte, len(in))
			for i := range in {
				orig[i] = clone(in[i])
			}
			out := r.batch(fragmentBatch(in, tc.m))
			for i, o := range out[:len(out)-1] {
				if o != OutcomeFragmentHeld {
					t.Fatalf("fragment %d: %v, want fragment-held", i, o)
				}
			}
			if o := out[len(out)-1]; o != OutcomeFragmentReassembled {
				t.Fatalf("last fragment: %v", o)
			}
			for i := range in {
				if !bytes.Equal(in[i], orig[i]) {
					t.Fatal("the engine wrote into a received frame")
				}
			}
			sent := r.tx.take()
			if tag, _, tagged := tc.m.VLAN(); tagged {
				for i, f := range sent {
					var p frame.Packet
					p.Decode(f)
					if p.NumVLANs != 1 || p.VLANs[0].TCI != tag {
						t.Fatalf("answer fragment %d: VLANs %v, want %d", i, p.VLANs[:p.NumVLANs], tag)
					}
					sent[i] = untag(f)
				}
			}
			for i, f := range sent {
				if len(f) > frame.EthernetHeaderLen+1500 {
					t.Fatalf("answer fragment %d: %d bytes, more than the MTU", i, len(f))
				}
			}
			f := reassemble(t, sent)
			var p frame.Packet
			if p.Decode(f) != frame.ReasonOK {
				t.Fatal("the answer does not decode")
			}
			if p.Src(f) != tc.dst || p.Dst(f) != tc.src || !bytes.Equal(p.Payload(f), payload) {
				t.Fatalf("answer %v -> %v, %d bytes (want %v -> %v, %d bytes, the same)",
					p.Src(f), p.Dst(f), len(p.Payload(f)), tc.dst, tc.src, len(payload))
			}
			if frame.Ethernet(f).Source() != macEngine || frame.Ethernet(f).Destination() != macPeer {
				t.Errorf("answer MACs %v -> %v", frame.Ethernet(f).Source(), frame.Ethernet(f).Destination())
			}
			c := r.e.Counters()
			if err := c.Check(); err != nil {
				t.Error(err)
			}
			ip := &c.IP
			if tc.src.Addr().Is6() {
				ip = &c.IP6
			}
			n := uint64(len(in))
			if ip.ReasmReqds != n || ip.ReasmOKs != 1 || ip.ReasmFails != 0 || ip.FragOKs != 1 || ip.FragCreates != uint64(len(sent)) {
				t.Errorf("Ip counters %+v; want %d ReasmReqds, 1 ReasmOKs, 1 FragOKs, %d FragCreates", *ip, n, len(sent))
			}
			if c.Reassembled[OutcomeDelivered] != 1 || c.UDP.InDatagrams != 1 || c.UDP.OutDatagrams != 1 ||
				c.Outcomes[OutcomeFragmentHeld] != n-1 || c.TXFrames != uint64(len(sent)) {
				t.Errorf("counters: reassembled delivered %d, Udp %+v, held %d, TXFrames %d",
					c.Reassembled[OutcomeDelivered], c.UDP, c.Outcomes[OutcomeFragmentHeld], c.TXFrames)
			}
			if c.ReasmQueues != 0 || c.ReasmFragments != 0 || c.ReasmMemoryLimit == 0 {
				t.Errorf("gauges after completion: %d queues, %d fragments held, limit %d", c.ReasmQueues, c.ReasmFragments, c.ReasmMemoryLimit)
			}
		})
	}
}

// TestReassembledQueued: a reassembled datagram reaches a queued port
// whole, copied (also for a ZeroCopy port: the reassembler's buffer goes
// back at once), and a connected port's peer filter applies to it.
func TestReassembledQueued(t *testing.T) {
	for _, zc := range []bool{false, true} {
		r := newRig(t, &Config{ZeroCopy: zc})
		p, err := r.e.Bind(ap(owned6, 5353))
		if err != nil {
			t.Fatal(err)
		}
		payload := pattern(20000)
		r.batch(fragmentBatch(fragments(t, ap(peer6, 1000), ap(owned6, 5353), payload, 1500, 1), ring.Meta{}))
		r.batch(fragmentBatch(fragments(t, ap(peer6, 1001), ap(owned6, 5353), payload[:3000], 1280, 2), ring.Meta{}))
		ds := make([]Datagram, 4)
		n, err := p.Recv(t.Context(), ds)
		if err != nil || n != 2 {
			t.Fatalf("ZeroCopy %v: Recv %d, %v", zc, n, err)
		}
		if !bytes.Equal(ds[0].Payload, payload) || !bytes.Equal(ds[1].Payload, payload[:3000]) || ds[1].Src != ap(peer6, 1001) {
			t.Fatalf("ZeroCopy %v: received %d and %d bytes from %v", zc, len(ds[0].Payload), len(ds[1].Payload), ds[1].Src)
		}
		p.Release(ds[:n])

		// Connected to peer6:1000, the port no longer takes 1001's.
		if err := p.Connect(ap(peer6, 1000)); err != nil {
			t.Fatal(err)
		}
		r.batch(fragmentBatch(fragments(t, ap(peer6, 1001), ap(owned6, 5353), payload, 1500, 3), ring.Meta{}))
		c := r.e.Counters()
		if c.Reassembled[OutcomeNoPort] != 1 || c.UDP.NoPorts != 1 || c.ICMPSent != 1 {
			t.Errorf("ZeroCopy %v: from another peer: reassembled no-port %d, NoPorts %d, ICMPSent %d; want 1, 1, 1",
				zc, c.Reassembled[OutcomeNoPort], c.UDP.NoPorts, c.ICMPSent)
		}
	}
}

// TestFragmentBigBuffersBounded: a port keeps at most maxBigBufs
// reassembled datagrams; more are dropped and counted as a full queue.
func TestFragmentBigBuffersBounded(t *testing.T) {
	r := newRig(t, nil)
	p, err := r.e.Bind(ap(owned4, 5000))
	if err != nil {
		t.Fatal(err)
	}
	for i := range maxBigBufs + 3 {
		r.batch(fragmentBatch(fragments(t, ap(peer4, 1000), ap(owned4, 5000), pattern(4000), 1500, uint32(i)), ring.Meta{}))
	}
	c := r.e.Counters()
	if c.Reassembled[OutcomeDelivered] != maxBigBufs || c.Reassembled[OutcomeQueueFull] != 3 || c.UDP.RcvbufErrors != 3 {
		t.Fatalf("delivered %d, queue-full %d, RcvbufErrors %d; want %d, 3, 3",
			c.Reassembled[OutcomeDelivered], c.Reassembled[OutcomeQueueFull], c.UDP.RcvbufErrors, maxBigBufs)
	}
	ds := make([]Datagram, 32)
	n, _ := p.Recv(t.Context(), ds)
	p.Release(ds[:n])
	r.batch(fragmentBatch(fragments(t, ap(peer4, 1000), ap(owned4, 5000), pattern(4000), 1500, 99), ring.Meta{}))
	if c := r.e.Counters(); c.Reassembled[OutcomeDelivered] != maxBigBufs+1 {
		t.Fatalf("after release: delivered %d", c.Reassembled[OutcomeDelivered])
	}
}

// TestFragmentOutcomes: each kind of bad fragment ends in its own
// outcome, the ICMPv6 Parameter Problems Linux sends are sent (to
// unicast sources, for owned addresses only), and the counters add up.
func TestFragmentOutcomes(t *testing.T) {
	r := newRig(t, nil)
	if _, err := r.e.HandleService(ap(netip.Addr{}, 7), Echo); err != nil {
		t.Fatal(err)
	}
	frag := func(src, dst netip.AddrPort, payloadLen, off, n int, id uint32) []byte {
		s := &frame.UDPSpec{SrcMAC: macPeer, DstMAC: macEngine, Src: src, Dst: dst, Payload: make([]byte, payloadLen), ID: uint16(id)}
		buf := make([]byte, 4096)
		k, err := frame.BuildUDPFragment(buf, s, frame.Fragment{Offset: off, Length: n, ID: id})
		if err != nil {
			t.Fatal(err)
		}
		return buf[:k]
	}
	src4, dst4 := ap(peer4, 40000), ap(owned4, 7)
	src6, dst6 := ap(peer6, 40000), ap(owned6, 7)
	badSum := frag(src4, dst4, 100, 0, 32, 50)
	badSum[frame.EthernetHeaderLen+10] ^= 0xff
	unaligned := frag(src6, dst6, 100, 0, 32, 60)
	// Make the IPv6 first fragment 4 bytes shorter: not a multiple of 8.
	unaligned = unaligned[:len(unaligned)-4]
	binary.BigEndian.PutUint16(unaligned[frame.EthernetHeaderLen+4:], binary.BigEndian.Uint16(unaligned[frame.EthernetHeaderLen+4:])-4)
	cases := []struct {
		name  string
		f     []byte
		m     ring.Meta
		want  Outcome
		param bool // an ICMPv6 Parameter Problem goes out
	}{
		{"first", frag(src4, dst4, 100, 0, 32, 1), ring.Meta{}, OutcomeFragmentHeld, false},
		{"duplicate", frag(src4, dst4, 100, 0, 32, 1), ring.Meta{}, OutcomeFragmentDuplicate, false},
		{"overlap", frag(src4, dst4, 100, 16, 32, 1), ring.Meta{}, OutcomeFragmentOverlap, false},
		{"zero length", frag(src4, dst4, 100, 0, 32, 2)[:frame.EthernetHeaderLen+20], ring.Meta{}, Outcome(frame.ReasonIPv4TotalLengthPastEnd), false},
		{"bad header checksum", badSum, ring.Meta{}, Outcome(frame.ReasonIPv4BadHeaderChecksum), false},
		{"to another host", frag(src4, ap(netip.MustParseAddr("198.18.0.99"), 7), 100, 0, 32, 3), ring.Meta{}, OutcomeOtherHost, false},
		{"ipv6 first", frag(src6, dst6, 100, 0, 32, 4), ring.Meta{}, OutcomeFragmentHeld, false},
		{"ipv6 last, ending before the held data", frag(src6, dst6, 16, 16, 8, 4), ring.Meta{}, OutcomeFragmentInconsistent, false},
		{"ipv6 unaligned", unaligned, ring.Meta{}, OutcomeFragmentUnaligned, true},
		{"ipv6 unaligned, to a shared address", func() []byte {
			f := clone(unaligned)
			d := shared6.As16()
			copy(f[frame.EthernetHeaderLen+24:], d[:])
			return f
		}(), ring.Meta{}, OutcomeFragmentUnaligned, false},
		{"ipv6 unaligned, link-layer multicast", unaligned, ring.Meta{Type: ring.PacketMulticast}, OutcomeFragmentUnaligned, false},
	}
	for _, tc := range cases {
		before := r.e.Counters()
		got := r.one(tc.f, tc.m)
		if got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
		sent := r.tx.take()
		if tc.param != (len(sent) == 1) || len(sent) > 1 {
			t.Errorf("%s: %d frames sent, want a Parameter Problem: %v", tc.name, len(sent), tc.param)
		}
		if tc.param && len(sent) == 1 {
			var p frame.Packet
			if p.Decode(sent[0]) != frame.ReasonICMPv6 || p.ICMPv6(sent[0]).Type() != frame.ICMPv6ParameterProblem ||
				p.DstAddr(sent[0]) != peer6 || p.SrcAddr(sent[0]) != owned6 {
				t.Errorf("%s: sent %x", tc.name, sent[0])
			}
			m := p.ICMPv6(sent[0])
			if ptr := binary.BigEndian.Uint32(m[4:]); m.Code() != 0 || ptr != 4 {
				t.Errorf("%s: Parameter Problem code %d pointer %d, want 0 and 4 (Payload Length)", tc.name, m.Code(), ptr)
			}
		}
		r.checkOneFrameCounted(t, tc.name, before)
	}
	c := r.e.Counters()
	if c.IP.ReasmOverlaps != 1 || c.IP.ReasmFails != 1 || c.IP6.InHdrErrors != 3 || c.IP6.ReasmFails != 1 || c.ICMPParamProblemSent != 1 {
		t.Errorf("Ip %+v, Ip6 %+v, %d Parameter Problems", c.IP, c.IP6, c.ICMPParamProblemSent)
	}
}

// TestFragmentTimeExceeded: a datagram whose first fragment came but
// which never completes draws an ICMP Time Exceeded (code 1) when its
// time is up, to an owned address only; one whose first fragment never
// came draws none.
func TestFragmentTimeExceeded(t *testing.T) {
	r := newRig(t, nil)
	t0 := int64(1_000_000_000)
	for _, tc := range []struct {
		src, dst netip.AddrPort
		frames   [][]byte
	}{
		{ap(peer4, 40000), ap(owned4, 7), nil},
		{ap(peer6, 40000), ap(owned6, 7), nil},
	} {
		fs := fragments(t, tc.src, tc.dst, pattern(3000), 1500, 7)
		r.batch(fragmentBatch(fs[:1], ring.Meta{Timestamp: t0})) // the first, not the rest: reported
		sharedAddr := shared4
		if tc.src.Addr().Is6() {
			sharedAddr = shared6
		}
		shared := fragments(t, tc.src, ap(sharedAddr, 7), pattern(3000), 1500, 8)[:1] // to a shared address: the kernel reports
		r.batch(fragmentBatch(shared, ring.Meta{Timestamp: t0}))
		lastOnly := fragments(t, tc.src, tc.dst, pattern(3000), 1500, 9)
		r.batch(fragmentBatch(lastOnly[len(lastOnly)-1:], ring.Meta{Timestamp: t0})) // no first fragment: no report
	}
	r.tx.take()
	if c := r.e.Counters(); c.ReasmQueues != 6 || !r.w.frag.busy {
		t.Fatalf("%d datagrams under reassembly (busy %v), want 6", c.ReasmQueues, r.w.frag.busy)
	}
	// 59 s later: the IPv4 ones have timed out, the IPv6 ones not yet.
	r.w.fragmentTick(t0 + int64(59*time.Second))
	r.w.flush()
	r.w.publish()
	sent := r.tx.take()
	if len(sent) != 1 {
		t.Fatalf("after 59 s: %d frames sent, want 1 Time Exceeded", len(sent))
	}
	checkTimeExceeded(t, sent[0], owned4, peer4)
	r.w.fragmentTick(t0 + int64(61*time.Second))
	r.w.flush()
	r.w.publish()
	sent = r.tx.take()
	if len(sent) != 1 {
		t.Fatalf("after 61 s: %d frames sent, want 1 Time Exceeded", len(sent))
	}
	checkTimeExceeded(t, sent[0], owned6, peer6)
	c := r.e.Counters()
	if c.IP.ReasmTimeout != 3 || c.IP6.ReasmTimeout != 3 || c.ICMPTimeExceededSent != 2 || c.ReasmQueues != 0 || r.w.frag.busy {
		t.Errorf("ReasmTimeout %d and %d, Time Exceeded sent %d, queues %d, busy %v; want 3, 3, 2, 0, false",
			c.IP.ReasmTimeout, c.IP6.ReasmTimeout, c.ICMPTimeExceededSent, c.ReasmQueues, r.w.frag.busy)
	}
}

func checkTimeExceeded(t *testing.T, f []byte, from, to netip.Addr) {
	t.Helper()
	var p frame.Packet
	r := p.Decode(f)
	if p.SrcAddr(f) != from || p.DstAddr(f) != to {
		t.Fatalf("Time Exceeded %v -> %v, want %v -> %v", p.SrcAddr(f), p.DstAddr(f), from, to)
	}
	if from.Is4() {
		m := p.ICMPv4(f)
		if r != frame.ReasonICMPv4 || m.Type() != frame.ICMPv4TimeExceeded || m.Code() != 1 || !m.IsChecksumValid() {
			t.Fatalf("not an ICMP Time Exceeded code 1: %x", f)
		}
		// It quotes the first fragment's header (offset 0, MF).
		q := frame.IPv4(m[frame.ICMPHeaderLen:])
		if q.Destination() != from || q[6]&0x20 == 0 {
			t.Errorf("quote %x", m[frame.ICMPHeaderLen:])
		}
		return
	}
	m := p.ICMPv6(f)
	if r != frame.ReasonICMPv6 || m.Type() != frame.ICMPv6TimeExceeded || m.Code() != 1 ||
		!m.IsChecksumValid(p.IPv6(f).PseudoHeaderSum(proto.IPProtoICMPv6, uint32(len(m)))) {
		t.Fatalf("not an ICMPv6 Time Exceeded code 1: %x", f)
	}
}

// TestFragmentsOff: with reassembly off, fragments are counted by what
// Decode says and dropped, as before.
func TestFragmentsOff(t *testing.T) {
	r := newRig(t, &Config{ReassemblyMemory: -1})
	fs := fragments(t, ap(peer4, 1), ap(owned4, 7), pattern(3000), 1500, 1)
	out := r.batch(fragmentBatch(fs, ring.Meta{}))
	if out[0] != Outcome(frame.ReasonUDPFragment) || out[1] != Outcome(frame.ReasonNonFirstFragment) {
		t.Fatalf("outcomes %v", out)
	}
	if c := r.e.Counters(); c.IP.ReasmReqds != 0 || c.ReasmMemoryLimit != 0 {
		t.Fatalf("counters with reassembly off: %+v", c.IP)
	}
}

// TestFragmentAllocs: once warm, the fragment path allocates nothing:
// reassembly, dispatch, echo and the answer's fragments.
func TestFragmentAllocs(t *testing.T) {
	r := newRig(t, nil)
	r.tx.discard = true
	if _, err := r.e.HandleService(ap(netip.Addr{}, 7), Echo); err != nil {
		t.Fatal(err)
	}
	b4 := fragmentBatch(fragments(t, ap(peer4, 40000), ap(owned4, 7), pattern(8192), 1500, 1), ring.Meta{Timestamp: 1})
	b6 := fragmentBatch(fragments(t, ap(peer6, 40000), ap(owned6, 7), pattern(8192), 1500, 1), ring.Meta{Timestamp: 1, Status: tpStatusVLANValid, VLANTCI: frame.MakeTCI(5, false, 0)}) // a priority tag, served untagged
	br := &batchRef{free: r.w.free}
	run := func() {
		for _, b := range []*fakeBatch{b4, b6} {
			br.b = b
			r.w.handleBatch(br)
		}
	}
	run()
	if allocs := testing.AllocsPerRun(100, run); allocs != 0 {
		t.Errorf("%v allocations per pair of fragmented echoes, want 0", allocs)
	}
	if c := r.e.Counters(); c.Reassembled[OutcomeDelivered] != 204 || c.UDP.OutDatagrams != 204 {
		t.Errorf("delivered %d, answered %d; want 204", c.Reassembled[OutcomeDelivered], c.UDP.OutDatagrams)
	}
}

// TestSendFragments: Port.Send and Responder.Reply fragment what exceeds
// the MTU, up to the UDP limit, and refuse more with EMSGSIZE, sending
// nothing.
func TestSendFragments(t *testing.T) {
	r := newRig(t, nil)
	tx := r.e.tx.(*fakeTX)
	p, err := r.e.Bind(ap(netip.Addr{}, 5000))
	if err != nil {
		t.Fatal(err)
	}
	// The peers' solicitations teach the engine their MAC addresses.
	r.one(arpRequest(t, peer4, owned4), ring.Meta{Type: ring.PacketBroadcast})
	r.one(neighborSolicitation(t, peer6, owned6), ring.Meta{Type: ring.PacketMulticast})
	r.tx.take()
	for _, tc := range []struct {
		to     netip.AddrPort
		size   int
		frames int
	}{
		{ap(peer4, 9), frame.MaxUDPPayloadIPv4, 45},
		{ap(peer4, 9), 1472, 1},
		{ap(peer4, 9), 1473, 2},
		{ap(peer6, 9), frame.MaxUDPPayloadIPv6, 46},
		{ap(peer6, 9), 1452, 1},
		{ap(peer6, 9), 1453, 2},
	} {
		payload := pattern(tc.size)
		if err := p.Send(tc.to, payload); err != nil {
			t.Fatalf("Send of %d bytes to %v: %v", tc.size, tc.to, err)
		}
		sent := tx.take()
		if len(sent) != tc.frames {
			t.Fatalf("Send of %d bytes to %v: %d frames, want %d", tc.size, tc.to, len(sent), tc.frames)
		}
		f := reassemble(t, sent)
		var pk frame.Packet
		pk.Decode(f)
		if !bytes.Equal(pk.Payload(f), payload) || pk.Dst(f) != tc.to {
			t.Fatalf("Send of %d bytes: %d bytes to %v arrive", tc.size, len(pk.Payload(f)), pk.Dst(f))
		}
	}
	for _, tc := range []struct {
		to   netip.AddrPort
		size int
	}{{ap(peer4, 9), frame.MaxUDPPayloadIPv4 + 1}, {ap(peer6, 9), frame.MaxUDPPayloadIPv6 + 1}} {
		if err := p.Send(tc.to, make([]byte, tc.size)); !errors.Is(err, syscall.EMSGSIZE) {
			t.Errorf("Send of %d bytes to %v: %v, want EMSGSIZE", tc.size, tc.to, err)
		}
		if sent := tx.take(); len(sent) != 0 {
			t.Errorf("Send of %d bytes: %d frames sent", tc.size, len(sent))
		}
	}
	c := r.e.Counters()
	if c.IP.FragOKs != 2 || c.IP.FragCreates != 47 || c.IP6.FragOKs != 2 || c.IP6.FragCreates != 48 {
		t.Errorf("Ip %+v, Ip6 %+v", c.IP, c.IP6)
	}

	// An inline handler's Reply fragments too.
	big := pattern(20000)
	if _, err := r.e.Handle(ap(netip.Addr{}, 6000), HandlerFunc(func(rs *Responder, d *Datagram) {
		if err := rs.Reply(big); err != nil {
			t.Error(err)
		}
		if err := rs.Reply(make([]byte, frame.MaxUDPPayloadIPv4+1)); !errors.Is(err, syscall.EMSGSIZE) {
			t.Errorf("Reply of 65,508 bytes: %v", err)
		}
	})); err != nil {
		t.Fatal(err)
	}
	r.one(udpFrame(t, ap(peer4, 40000), ap(owned4, 6000), []byte("q")), ring.Meta{})
	f := reassemble(t, r.tx.take())
	var pk frame.Packet
	pk.Decode(f)
	if !bytes.Equal(pk.Payload(f), big) || pk.Src(f) != ap(owned4, 6000) {
		t.Fatalf("Reply: %d bytes from %v", len(pk.Payload(f)), pk.Src(f))
	}
}

// sentDatagram builds the datagram a port of the engine sent (from from to
// to), as an ICMP error would quote it.
func sentDatagram(tb testing.TB, from, to netip.AddrPort, n int) []byte {
	tb.Helper()
	f := udpFrame(tb, from, to, make([]byte, n))
	var p frame.Packet
	p.Decode(f)
	return p.Datagram(f)
}

// icmpErrorFrame builds an ICMP or ICMPv6 error from router to dst,
// quoting orig.
func icmpErrorFrame(tb testing.TB, router, dst netip.Addr, typ, code uint8, word uint32, orig []byte) []byte {
	tb.Helper()
	buf := make([]byte, 2048)
	s := &frame.IPSpec{SrcMAC: macPeer, DstMAC: macEngine, Src: router, Dst: dst, TTL: 64}
	var n int
	var err error
	if router.Is4() {
		n, err = frame.BuildICMPv4Error(buf, s, typ, code, word, orig)
	} else {
		n, err = frame.BuildICMPv6Error(buf, s, typ, code, word, orig)
	}
	if err != nil {
		tb.Fatal(err)
	}
	return buf[:n]
}

// TestICMPErrorsToPort: an ICMP error quoting a datagram a port sent
// reaches that port with Linux's errno, fails a connected port's next
// receive (hard errors only) and send, once; errors that match no port,
// or are malformed, are counted and dropped.
func TestICMPErrorsToPort(t *testing.T) {
	r := newRig(t, nil)
	unconn, err := r.e.Bind(ap(owned4, 5000))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := r.e.Bind(ap(owned4, 5001))
	if err != nil {
		t.Fatal(err)
	}
	if err := conn.Connect(ap(peer4, 9)); err != nil {
		t.Fatal(err)
	}
	conn6, err := r.e.Bind(ap(shared6, 5002))
	if err != nil {
		t.Fatal(err)
	}
	if err := conn6.Connect(ap(peer6, 9)); err != nil {
		t.Fatal(err)
	}
	router4, router6 := netip.MustParseAddr("198.18.0.254"), netip.MustParseAddr("fd00::fe")

	// Every Destination Unreachable code, Time Exceeded and Parameter
	// Problem to the unconnected port: each is queued with Linux's
	// errno; none fails a receive.
	var want []frame.Errno
	send4 := func(typ, code uint8) {
		r.one(icmpErrorFrame(t, router4, owned4, typ, code, 0, sentDatagram(t, ap(owned4, 5000), ap(peer4, 9), 20)), ring.Meta{})
	}
	for code := range uint8(16) {
		send4(frame.ICMPv4DestUnreachable, code)
		errno, _, _ := frame.ICMPv4ErrorErrno(frame.ICMPv4DestUnreachable, code)
		want = append(want, errno)
	}
	send4(frame.ICMPv4TimeExceeded, 0)
	send4(frame.ICMPv4ParameterProblem, 0)
	want = append(want, frame.EHOSTUNREACH, frame.EPROTO)
	es := make([]ICMPError, 32)
	n := unconn.ReadErrors(es)
	if n != maxPortErrors {
		t.Fatalf("ReadErrors: %d, want the last %d", n, maxPortErrors)
	}
	for i, e := range es[:n] {
		w := want[len(want)-n+i]
		if e.Errno != w || e.Src != ap(owned4, 5000) || e.Dst != ap(peer4, 9) || e.From != router4 || len(e.Header()) != 28 {
			t.Errorf("error %d: %+v (%v), want %v about %v -> %v from %v", i, e, &e, w, ap(owned4, 5000), ap(peer4, 9), router4)
		}
	}
	if unconn.ReadErrors(es) != 0 {
		t.Error("errors delivered twice")
	}
	if got := es[maxPortErrors-1].Error(); got != "protocol error (ICMP parameter problem from 198.18.0.254 for 198.18.0.2:9)" {
		t.Errorf("Error() = %q", got)
	}
	if !errors.Is(&es[0], syscall.ENETUNREACH) && es[0].Errno == frame.ENETUNREACH && syscall.ENETUNREACH == 101 {
		t.Error("an ICMPError is not errors.Is its errno")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if _, err := unconn.Recv(ctx, make([]Datagram, 1)); !errors.Is(err, ctx.Err()) || ctx.Err() == nil {
		t.Errorf("unconnected Recv after errors: %v, want to wait", err)
	}

	// A soft error (host unreachable) does not fail the connected port;
	// a hard one (port unreachable) fails its next receive, once.
	r.one(icmpErrorFrame(t, router4, owned4, frame.ICMPv4DestUnreachable, frame.ICMPv4CodeHostUnreach, 0,
		sentDatagram(t, ap(owned4, 5001), ap(peer4, 9), 4)), ring.Meta{})
	if errno := conn.takeError(); errno != 0 {
		t.Errorf("host unreachable left %v pending", errno)
	}
	r.one(icmpErrorFrame(t, peer4, owned4, frame.ICMPv4DestUnreachable, frame.ICMPv4CodePortUnreach, 0,
		sentDatagram(t, ap(owned4, 5001), ap(peer4, 9), 4)), ring.Meta{})
	r.one(udpFrame(t, ap(peer4, 9), ap(owned4, 5001), []byte("queued")), ring.Meta{})
	ds := make([]Datagram, 1)
	if _, err := conn.Recv(t.Context(), ds); !errors.Is(err, syscall.ECONNREFUSED) || err.Error() != "read udp 198.18.0.1:5001: recvfrom: connection refused" {
		t.Errorf("connected Recv after port unreachable: %v, want connection refused", err)
	}
	if n, err := conn.Recv(t.Context(), ds); err != nil || string(ds[0].Payload) != "queued" {
		t.Errorf("the next Recv: %d, %v", n, err)
	}
	conn.Release(ds)
	// ... and a send, if it comes first.
	r.one(icmpErrorFrame(t, peer4, owned4, frame.ICMPv4DestUnreachable, frame.ICMPv4CodePortUnreach, 0,
		sentDatagram(t, ap(owned4, 5001), ap(peer4, 9), 4)), ring.Meta{})
	if err := conn.Send(ap(peer4, 9), []byte("x")); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("connected Send after port unreachable: %v", err)
	}
	// About a datagram to another peer: not this connected port's.
	r.one(icmpErrorFrame(t, peer4, owned4, frame.ICMPv4DestUnreachable, frame.ICMPv4CodePortUnreach, 0,
		sentDatagram(t, ap(owned4, 5001), ap(peer4, 10), 4)), ring.Meta{})
	// IPv6 port unreachable and Packet Too Big, on a shared address.
	r.one(icmpErrorFrame(t, peer6, shared6, frame.ICMPv6DestUnreachable, frame.ICMPv6CodePortUnreachable, 0,
		sentDatagram(t, ap(shared6, 5002), ap(peer6, 9), 4)), ring.Meta{})
	if errno := conn6.takeError(); errno != frame.ECONNREFUSED {
		t.Errorf("IPv6 port unreachable: pending %v", errno)
	}
	r.one(icmpErrorFrame(t, router6, shared6, frame.ICMPv6PacketTooBig, 0, 1400,
		sentDatagram(t, ap(shared6, 5002), ap(peer6, 9), 1400)), ring.Meta{})
	if errno := conn6.takeError(); errno != frame.EMSGSIZE {
		t.Errorf("Packet Too Big: pending %v", errno)
	}
	if got := r.e.PathMTU(peer6); got != 1400 {
		t.Errorf("path MTU after Packet Too Big 1400: %d", got)
	}

	// Unmatched and invalid.
	r.one(icmpErrorFrame(t, router4, owned4, frame.ICMPv4DestUnreachable, 3, 0, sentDatagram(t, ap(owned4, 6999), ap(peer4, 9), 4)), ring.Meta{})
	r.one(icmpErrorFrame(t, router4, owned4, frame.ICMPv4DestUnreachable, 3, 0, sentDatagram(t, ap(peer4, 5000), ap(owned4, 9), 4)), ring.Meta{})
	bad := icmpErrorFrame(t, router4, owned4, frame.ICMPv4DestUnreachable, 3, 0, sentDatagram(t, ap(owned4, 5000), ap(peer4, 9), 4))
	bad[len(bad)-1] ^= 1
	r.one(bad, ring.Meta{})
	short := sentDatagram(t, ap(owned4, 5000), ap(peer4, 9), 4)[:24]
	r.one(icmpErrorFrame(t, router4, owned4, frame.ICMPv4DestUnreachable, 3, 0, short), ring.Meta{})
	r.one(icmpErrorFrame(t, router4, owned4, frame.ICMPv4TimeExceeded, 1, 0, sentDatagram(t, ap(owned4, 5000), ap(peer4, 9), 4)), ring.Meta{})
	c := r.e.Counters()
	// 18 to the unconnected port (Fragmentation Needed among them, with
	// no MTU: the path MTU drops to 552, as Linux's min_pmtu), 4 to the
	// connected ones, 2 over IPv6; 3 unmatched, 3 invalid.
	if c.ICMPErrorsIn != 29 || c.ICMPErrorsDelivered != 23 || c.ICMPErrorsUnmatched != 3 || c.ICMPErrorsInvalid != 3 ||
		c.PMTUUpdates != 2 || c.ICMPSent != 0 || c.TXFrames != 0 {
		t.Errorf("ICMP errors in %d, delivered %d, unmatched %d, invalid %d, PMTU updates %d; %d ICMP sent, %d frames sent",
			c.ICMPErrorsIn, c.ICMPErrorsDelivered, c.ICMPErrorsUnmatched, c.ICMPErrorsInvalid, c.PMTUUpdates, c.ICMPSent, c.TXFrames)
	}
	if err := c.Check(); err != nil {
		t.Error(err)
	}
}

// TestPathMTU: Fragmentation Needed lowers the path MTU (never below 552
// for IPv4, 1280 for IPv6, never raised by a message), sends to that
// destination fragment to it, and it expires after 10 minutes.
func TestPathMTU(t *testing.T) {
	var c pmtuCache
	now := int64(1e18)
	d4, d6 := netip.MustParseAddr("203.0.113.7"), netip.MustParseAddr("2001:db8::7")
	steps := []struct {
		dst    netip.Addr
		mtu    int
		change bool
		want   int
	}{
		{d4, 1400, true, 1400},
		{d4, 1450, false, 1400}, // not raised
		{d4, 1000, true, 1000},
		{d4, 68, true, MinPMTU4},
		{d6, 1500, false, 0}, // not below the link's
		{d6, 1000, true, MinPMTU6},
	}
	for _, s := range steps {
		if got := c.update(s.dst, s.mtu, 1500, now); got != s.change {
			t.Errorf("update %v to %d: changed %v, want %v", s.dst, s.mtu, got, s.change)
		}
		got, ok := c.lookup(s.dst, now)
		if s.want == 0 && ok || s.want != 0 && got != s.want {
			t.Errorf("after %v %d: path MTU %d (%v), want %d", s.dst, s.mtu, got, ok, s.want)
		}
	}
	if _, ok := c.lookup(d4, now+int64(PMTUExpiry)-1); !ok {
		t.Error("expired before 10 minutes")
	}
	if _, ok := c.lookup(d4, now+int64(PMTUExpiry)); ok || c.active(now+int64(PMTUExpiry)) {
		t.Error("still there after 10 minutes")
	}
	// Bounded: a flood of destinations keeps at most 1024 entries.
	for i := range 5000 {
		c.update(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), 1000, 1500, now)
	}
	n := 0
	for i := range c.sets {
		for _, en := range c.sets[i] {
			if en.expires > now {
				n++
			}
		}
	}
	if n > pmtuSets*pmtuWays {
		t.Errorf("%d entries", n)
	}

	// Through the engine: a Fragmentation Needed for a datagram a port
	// sent makes its next large datagrams fragment to 1000.
	r := newRig(t, nil)
	tx := r.e.tx.(*fakeTX)
	p, err := r.e.Bind(ap(owned4, 5000))
	if err != nil {
		t.Fatal(err)
	}
	r.one(arpRequest(t, peer4, owned4), ring.Meta{Type: ring.PacketBroadcast})
	r.tx.take()
	r.one(icmpErrorFrame(t, netip.MustParseAddr("198.18.0.254"), owned4, frame.ICMPv4DestUnreachable, frame.ICMPv4CodeFragNeeded, 1000,
		sentDatagram(t, ap(owned4, 5000), ap(peer4, 9), 1400)), ring.Meta{Timestamp: time.Now().UnixNano()})
	if got := r.e.PathMTU(peer4); got != 1000 {
		t.Fatalf("path MTU %d, want 1000", got)
	}
	if err := p.Send(ap(peer4, 9), pattern(1400)); err != nil {
		t.Fatal(err)
	}
	sent := tx.take()
	if len(sent) != 2 || len(sent[0]) != frame.EthernetHeaderLen+1000-4 {
		t.Fatalf("%d frames of %d bytes, want 2, the first of %d", len(sent), len(sent[0]), frame.EthernetHeaderLen+996)
	}
	reassemble(t, sent)
	// Echo of a single 1400-byte frame from that peer: fragmented too.
	if _, err := r.e.HandleService(ap(netip.Addr{}, 7), Echo); err != nil {
		t.Fatal(err)
	}
	prio := frame.MakeTCI(3, false, 0) // a priority tag: served untagged, put back on the answer
	r.one(udpFrame(t, ap(peer4, 4000), ap(owned4, 7), pattern(1400)), ring.Meta{Timestamp: time.Now().UnixNano(), Status: tpStatusVLANValid, VLANTCI: prio})
	sent = r.tx.take()
	if len(sent) != 2 {
		t.Fatalf("echo: %d frames, want 2", len(sent))
	}
	for i := range sent {
		var pk frame.Packet
		pk.Decode(sent[i])
		if pk.NumVLANs != 1 || pk.VLANs[0].TCI != prio {
			t.Fatalf("echo fragment %d: VLANs %v", i, pk.VLANs[:pk.NumVLANs])
		}
		sent[i] = untag(sent[i])
	}
	f := reassemble(t, sent)
	var pk frame.Packet
	pk.Decode(f)
	if !bytes.Equal(pk.Payload(f), pattern(1400)) || pk.Dst(f) != ap(peer4, 4000) {
		t.Fatal("echo answer wrong")
	}
}

// untag removes a frame's outer VLAN tag, for the reference reassembler.
func untag(f []byte) []byte {
	u, _, _ := frame.RemoveVLANTag(clone(f))
	return u
}

// BenchmarkEchoFragmented is the engine's own work for the echo of a
// fragmented datagram, without rings: reassembly of the request's
// fragments, dispatch, the answer turned around in place and written out
// as fragments into (fake) transmit slots. One op is one datagram.
func BenchmarkEchoFragmented(b *testing.B) {
	for _, size := range []int{1472, 1473, 8192, frame.MaxUDPPayloadIPv4} {
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			r := newRig(b, nil)
			r.tx.discard = true
			if _, err := r.e.HandleService(ap(netip.Addr{}, 7), Echo); err != nil {
				b.Fatal(err)
			}
			fb := fragmentBatch(fragments(b, ap(peer4, 40000), ap(owned4, 7), pattern(size), 1500, 1), ring.Meta{Timestamp: 1})
			br := &batchRef{free: r.w.free}
			br.b = fb
			r.w.handleBatch(br) // the reassembler's memory is allocated at the first fragment
			b.ReportAllocs()
			b.SetBytes(int64(size))
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			cpu := threadCPU()
			for b.Loop() {
				br.b = fb
				r.w.handleBatch(br)
			}
			cpu = threadCPU() - cpu
			if cpu > 0 {
				b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/reply")
			}
			if c := r.e.Counters(); c.UDP.OutDatagrams != uint64(b.N)+1 {
				b.Fatalf("%d answers for %d requests", c.UDP.OutDatagrams, b.N)
			}
		})
	}
}

// TestPingReassembled: a ping of 5,000 bytes (fragments in, for each
// family) is answered with the whole echo reply in fragments.
func TestPingReassembled(t *testing.T) {
	r := newRig(t, nil)
	for _, tc := range []struct{ src, dst netip.Addr }{{peer4, owned4}, {peer6, owned6}} {
		payload := pattern(5000)
		buf := make([]byte, 8000)
		n, err := frame.BuildUDP(buf, &frame.UDPSpec{SrcMAC: macPeer, DstMAC: macEngine, Src: ap(tc.src, 1), Dst: ap(tc.dst, 2), Payload: payload})
		if err != nil {
			t.Fatal(err)
		}
		f := buf[:n]
		var p frame.Packet
		p.Decode(f)
		msg := f[p.L4Off:p.End]
		clear(msg[:8])
		if tc.src.Is4() {
			f[p.L3Off+9] = proto.IPProtoICMP
			fixIPv4Checksum(f[p.L3Off:p.L4Off])
			msg[0] = frame.ICMPv4Echo
			m := frame.ICMPv4(msg)
			m.SetChecksum(m.CalculateChecksum())
		} else {
			f[p.L3Off+6] = proto.IPProtoICMPv6
			msg[0] = frame.ICMPv6EchoRequest
			m := frame.ICMPv6(msg)
			m.SetChecksum(m.CalculateChecksum(p.IPv6(f).PseudoHeaderSum(proto.IPProtoICMPv6, uint32(len(msg)))))
		}
		p.Decode(f)
		var ff frame.FrameFragmenter
		if err := ff.Reset(f, &p, 1500, 77); err != nil {
			t.Fatal(err)
		}
		var frags [][]byte
		for i := range ff.Fragments() {
			b := make([]byte, ff.FrameLen(i))
			ff.Build(b, i)
			frags = append(frags, b)
		}
		out := r.batch(fragmentBatch(frags, ring.Meta{}))
		if out[len(out)-1] != OutcomeFragmentReassembled {
			t.Fatalf("%v: outcomes %v", tc.dst, out)
		}
		sent := r.tx.take()
		if len(sent) != len(frags) {
			t.Fatalf("%v: %d reply frames for %d request fragments", tc.dst, len(sent), len(frags))
		}
		ref, _ := reassembly.New(nil)
		var whole []byte
		for _, s := range sent {
			var sp frame.Packet
			sp.Decode(s)
			if res := ref.Add(s, &sp, time.Unix(1, 0)); res.Datagram != nil {
				whole = clone(res.Datagram.Frame())
			}
		}
		var rp frame.Packet
		reason := rp.Decode(whole)
		if tc.src.Is4() {
			m := rp.ICMPv4(whole)
			if reason != frame.ReasonICMPv4 || m.Type() != frame.ICMPv4EchoReply || !m.IsChecksumValid() || !bytes.Equal(m[8:], payload) {
				t.Fatalf("IPv4 reply: %v, type %d", reason, m.Type())
			}
		} else {
			m := rp.ICMPv6(whole)
			if reason != frame.ReasonICMPv6 || m.Type() != frame.ICMPv6EchoReply || !bytes.Equal(m[8:], payload) ||
				!m.IsChecksumValid(rp.IPv6(whole).PseudoHeaderSum(proto.IPProtoICMPv6, uint32(len(m)))) {
				t.Fatalf("IPv6 reply: %v, type %d", reason, m.Type())
			}
		}
		if rp.SrcAddr(whole) != tc.dst || rp.DstAddr(whole) != tc.src {
			t.Fatalf("reply %v -> %v", rp.SrcAddr(whole), rp.DstAddr(whole))
		}
	}
	c := r.e.Counters()
	if c.PingAnswered != 2 || c.Reassembled[Outcome(frame.ReasonICMPv4)] != 1 || c.Reassembled[Outcome(frame.ReasonICMPv6)] != 1 {
		t.Errorf("PingAnswered %d, reassembled icmp %d/%d", c.PingAnswered, c.Reassembled[Outcome(frame.ReasonICMPv4)], c.Reassembled[Outcome(frame.ReasonICMPv6)])
	}
}
