package loadgen

import (
	"net/netip"
	"testing"

	"golang.org/x/net/bpf"

	"github.com/pktengine/pktengine/frame"
	"github.com/pktengine/pktengine/proto"
)

func TestReplyFilter(t *testing.T) {
	vm, err := bpf.NewVM(ReplyFilter(61000, 61009))
	if err != nil {
		t.Fatal(err)
	}
	build := func(src, dst string, mod func(b []byte, p *frame.Packet)) []byte {
		s := frame.UDPSpec{Src: netip.MustParseAddrPort(src), Dst: netip.MustParseAddrPort(dst), Payload: make([]byte, 30)}
		buf := make([]byte, 256)
		n, err := frame.BuildUDP(buf, &s)
		if err != nil {
			t.Fatal(err)
		}
		b := buf[:n]
		if mod != nil {
			var p frame.Packet
			p.Decode(b)
			mod(b, &p)
		}
		return b
	}
	withOptions := func() []byte {
		s := frame.UDPSpec{Src: netip.MustParseAddrPort("198.18.0.2:7"), Dst: netip.MustParseAddrPort("198.18.0.101:61005"),
			Options: []byte{1, 1, 1, 0}, Payload: make([]byte, 30)}
		buf := make([]byte, 256)
		n, _ := frame.BuildUDP(buf, &s)
		return buf[:n]
	}
	for _, tc := range []struct {
		name  string
		frame []byte
		want  int
	}{
		{"v4 first port", build("198.18.0.2:7", "198.18.0.101:61000", nil), replySnapLen},
		{"v4 last port", build("198.18.0.2:7", "198.18.0.101:61009", nil), replySnapLen},
		{"v4 below", build("198.18.0.2:7", "198.18.0.101:60999", nil), 0},
		{"v4 above", build("198.18.0.2:7", "198.18.0.101:61010", nil), 0},
		{"v4 source port in range", build("198.18.0.2:61000", "198.18.0.101:7", nil), 0},
		{"v4 options", withOptions(), replySnapLen},
		{"v4 fragment", build("198.18.0.2:7", "198.18.0.101:61000", func(b []byte, p *frame.Packet) {
			p.IPv4(b).SetFlagsFragmentOffset(0, 64)
		}), 0},
		{"v4 tcp", build("198.18.0.2:7", "198.18.0.101:61000", func(b []byte, p *frame.Packet) {
			p.IPv4(b).SetProtocol(proto.IPProtoTCP)
		}), 0},
		{"v6", build("[fd00::2]:7", "[fd00::101]:61003", nil), replySnapLen},
		{"v6 other port", build("[fd00::2]:7", "[fd00::101]:1", nil), 0},
		{"v6 ext header", build("[fd00::2]:7", "[fd00::101]:61003", func(b []byte, p *frame.Packet) {
			p.IPv6(b).SetNextHeader(proto.IPProtoDstOpts)
		}), 0},
		{"arp", make([]byte, 60), 0},
	} {
		got, err := vm.Run(tc.frame)
		if err != nil || got != tc.want {
			t.Errorf("%s: %d, %v; want %d", tc.name, got, err, tc.want)
		}
	}
}

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
