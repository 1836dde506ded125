package loadgen

import (
	"testing"

	"github.com/pktengine/pktengine/frame"
)

// reply turns a generated frame into the echo a responder would send.
func reply(t testing.TB, b []byte) []byte {
	var p frame.Packet
	if r := p.Decode(b); r != frame.ReasonOK {
		t.Fatal(r)
	}
	n, err := frame.ReplyInPlace(b, &p, 0)
	if err != nil {
		t.Fatal(err)
	}
	return b[:n]
}

func TestReceiverHandle(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		tm := testTemplate(t, v6, 128)
		r := &receiver{tag: 9, streams: []*SeqTracker{NewSeqTracker(0), NewSeqTracker(0)}}
		buf := make([]byte, 256)
		send := func(tag, stream uint16, seq uint64, sent, rcvd int64) {
			n := tm.Write(buf, int(seq)%tm.NumFlows(), Signature{Tag: tag, Stream: stream, Seq: seq, Time: sent})
			r.handle(reply(t, buf[:n]), rcvd)
		}
		for seq := range uint64(100) {
			send(9, uint16(seq%2), seq/2, 1000, 1000+int64(seq)*10)
		}
		send(9, 0, 3, 0, 0)   // duplicate
		send(8, 0, 60, 0, 0)  // stale
		send(9, 2, 0, 0, 0)   // no such stream
		r.handle(buf[:20], 0) // runt
		var s Summary
		s.Sent = 100
		r.finish0(&s)
		if s.Received != 100 || s.Seq.Duplicates != 1 || s.Stale != 1 || s.Foreign != 2 || r.frames != 104 {
			t.Fatalf("v6=%v: %+v frames %d", v6, s, r.frames)
		}
		if s.Latency.Min != 0 || s.Latency.Max != 990 || s.Latency.Count != 100 {
			t.Fatalf("latency %+v", s.Latency)
		}
	}
}

func TestReceiverHandleAllocs(t *testing.T) {
	tm := testTemplate(t, false, 64)
	r := &receiver{tag: 1, streams: []*SeqTracker{NewSeqTracker(0)}}
	buf := make([]byte, 128)
	n := tm.Write(buf, 0, Signature{Tag: 1})
	b := reply(t, buf[:n])
	if a := testing.AllocsPerRun(1000, func() { r.handle(b, 5) }); a != 0 {
		t.Fatalf("%v allocations", a)
	}
}

func BenchmarkReceiverHandle(b *testing.B) {
	tm := testTemplate(b, false, 64)
	r := &receiver{tag: 1, streams: []*SeqTracker{NewSeqTracker(0)}}
	frames := make([][]byte, 256)
	for i := range frames {
		buf := make([]byte, 128)
		n := tm.Write(buf, i%tm.NumFlows(), Signature{Tag: 1, Seq: uint64(i), Time: 100})
		frames[i] = reply(b, buf[:n])
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(frames[0])))
	for i := 0; b.Loop(); i++ {
		if i&255 == 0 {
			r.streams[0].Reset()
		}
		r.handle(frames[i&255], 200)
	}
}
