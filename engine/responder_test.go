package engine

import (
	"bytes"
	"errors"
	"net/netip"
	"syscall"
	"testing"

	"github.com/pktengine/pktengine/frame"
	"github.com/pktengine/pktengine/ring"
)

// answerQuestion is a handler's in-place answer: the request's bytes
// reversed, then " is the answer", written over the request.
func answerQuestion(payload []byte) int {
	q := payload
	a := payload[:cap(payload)]
	for i, j := 0, len(q)-1; i < j; i, j = i+1, j-1 {
		a[i], a[j] = q[j], q[i]
	}
	return len(q) + copy(a[len(q):], " is the answer")
}

// TestReplyInPlace: an inline handler's answer written over its request
// leaves as a valid datagram back to the sender, with the engine's TTL,
// a stripped VLAN tag restored and a full checksum (also where the request
// carried a partial one); one that cannot be turned around in place (to a
// broadcast address) is answered through Reply, with the same bytes.
func TestReplyInPlace(t *testing.T) {
	r := newRig(t, &Config{TTL: 33})
	var errs []error
	if _, err := r.e.Handle(ap(netip.Addr{}, 53), HandlerFunc(func(rs *Responder, d *Datagram) {
		errs = append(errs, rs.ReplyInPlace(answerQuestion))
	})); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		src, dst netip.AddrPort
		m        ring.Meta
	}{
		{"ipv4", ap(peer4, 32787), ap(owned4, 53), ring.Meta{}},
		{"ipv6", ap(peer6, 32787), ap(owned6, 53), ring.Meta{}},
		{"ipv4 shared", ap(peer4, 40000), ap(shared4, 53), ring.Meta{}},
		{"ipv4 vlan", ap(peer4, 40000), ap(owned4, 53), ring.Meta{Status: tpStatusVLANValid, VLANTCI: frame.MakeTCI(3, false, 0)}},
		{"ipv6 partial", ap(peer6, 40000), ap(owned6, 53), ring.Meta{Status: tpStatusCsumNotReady}},
		{"ipv4 broadcast", ap(peer4, 40000), ap(bcast4, 53), ring.Meta{Type: ring.PacketBroadcast}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			errs = errs[:0]
			question := []byte("what is six times seven?")
			want := append(bytes.Clone(question), " is the answer"...)
			answerQuestion(want[:len(question):len(want)])
			f := udpFrame(t, tc.src, tc.dst, question)
			orig := bytes.Clone(f)
			if o := r.one(f, tc.m); o != OutcomeDelivered {
				t.Fatalf("outcome %v", o)
			}
			if !bytes.Equal(f, orig) {
				t.Fatal("the received frame was modified")
			}
			if len(errs) != 1 || errs[0] != nil {
				t.Fatalf("ReplyInPlace: %v", errs)
			}
			out := r.tx.take()
			if len(out) != 1 {
				t.Fatalf("%d frames sent, want 1", len(out))
			}
			reply := out[0]
			if tc.m.Status&tpStatusVLANValid != 0 && frame.Ethernet(reply).VLAN().TCI() != tc.m.VLANTCI {
				t.Fatal("VLAN tag not restored")
			}
			p := checkUDPFrame(t, reply) // lengths and checksums
			wantSrc := tc.dst
			if tc.dst.Addr() == bcast4 {
				wantSrc = ap(owned4, 53)
			}
			if p.Src(reply) != wantSrc || p.Dst(reply) != tc.src {
				t.Errorf("reply %v -> %v, want %v -> %v", p.Src(reply), p.Dst(reply), wantSrc, tc.src)
			}
			if !bytes.Equal(p.Payload(reply), want) {
				t.Errorf("payload %q, want %q", p.Payload(reply), want)
			}
			if p.IPVersion == 4 && p.IPv4(reply).TTL() != 33 || p.IPVersion == 6 && p.IPv6(reply).HopLimit() != 33 {
				t.Error("not the engine's TTL")
			}
		})
	}

	// Nothing to send, and an answer longer than the buffer allows.
	errs = errs[:0]
	r.one(udpFrame(t, ap(peer4, 1), ap(owned4, 53), []byte("q")), ring.Meta{})
	r.e.Handle(ap(netip.Addr{}, 54), HandlerFunc(func(rs *Responder, d *Datagram) {
		errs = append(errs, rs.ReplyInPlace(func(p []byte) int { return 0 }), rs.ReplyInPlace(func(p []byte) int { return cap(p) + 1 }))
	}))
	r.one(udpFrame(t, ap(peer4, 1), ap(owned4, 54), []byte("q")), ring.Meta{})
	if len(errs) != 3 || errs[1] != nil || !errors.Is(errs[2], syscall.EMSGSIZE) {
		t.Errorf("errors %v, want [nil nil EMSGSIZE]", errs)
	}
	if out := r.tx.take(); len(out) != 1 {
		t.Errorf("%d frames sent, want 1 (the first question's)", len(out))
	}
}

// TestReplyInPlaceAllocs: answering in place allocates nothing.
func TestReplyInPlaceAllocs(t *testing.T) {
	r := newRig(t, nil)
	r.tx.discard = true
	if _, err := r.e.Handle(ap(netip.Addr{}, 53), HandlerFunc(func(rs *Responder, d *Datagram) {
		rs.ReplyInPlace(answerQuestion)
	})); err != nil {
		t.Fatal(err)
	}
	b := new(fakeBatch)
	for i := range 32 {
		b.add(udpFrame(t, ap(peer4, uint16(40000+i)), ap(owned4, 53), []byte("question")), ring.Meta{Timestamp: 1})
		b.add(udpFrame(t, ap(peer6, uint16(40000+i)), ap(owned6, 53), []byte("question")), ring.Meta{Timestamp: 1})
	}
	br := &batchRef{free: r.w.free}
	br.b = b
	allocs := testing.AllocsPerRun(100, func() { r.w.handleBatch(br) })
	if allocs > 0 {
		t.Errorf("%v allocations per batch of %d, want 0", allocs, len(b.frames))
	}
	if c := r.e.Counters(); c.UDP.OutDatagrams != c.UDP.InDatagrams || c.UDP.OutDatagrams == 0 {
		t.Errorf("%d datagrams in, %d out", c.UDP.InDatagrams, c.UDP.OutDatagrams)
	}
}
