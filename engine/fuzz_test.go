package engine

import (
	"net/netip"
	"testing"

	"github.com/pktengine/pktengine/frame"
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

	f.Fuzz(func(t *testing.T, fr []byte, status uint32, typ uint8, tci uint16) {
		r := newRig(t, &Config{QueueDepth: 2, Guard: Guard{AnySource: true, AnswerGroup: true, SourceRate: -1}})
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
