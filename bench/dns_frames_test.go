package bench

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/miekg/dns"

	"github.com/pktengine/pktengine/frame"
)

var (
	testGenMAC  = frame.MAC{2, 0, 0, 0, 0, 0xfd}
	testRespMAC = frame.MAC{2, 0, 0, 0, 0, 2}
	testGenSrc  = netip.MustParseAddr("198.18.0.101")
	testDst     = netip.MustParseAddrPort("198.18.0.2:53")
)

// answer builds the frame a server sends back for the query frame q:
// addresses swapped, the DNS message made by miekg/dns with rcode, edit
// applied to it.
func answer(t *testing.T, q []byte, rcode int, edit func(*dns.Msg)) []byte {
	t.Helper()
	var p frame.Packet
	if r := p.Decode(q); r != frame.ReasonOK {
		t.Fatalf("query frame: %v", r)
	}
	var m dns.Msg
	if err := m.Unpack(q[p.PayloadOff:p.L4End]); err != nil {
		t.Fatal(err)
	}
	r := new(dns.Msg)
	r.SetRcode(&m, rcode)
	r.Authoritative = true
	if rcode == dns.RcodeSuccess {
		rr, _ := dns.NewRR(m.Question[0].Name + " 3600 IN A 198.18.128.1")
		r.Answer = append(r.Answer, rr)
	}
	if edit != nil {
		edit(r)
	}
	msg, err := r.Pack()
	if err != nil {
		t.Fatal(err)
	}
	u := frame.UDP(q[p.L4Off:])
	spec := &frame.UDPSpec{SrcMAC: testRespMAC, DstMAC: testGenMAC,
		Src: testDst, Dst: netip.AddrPortFrom(testGenSrc, u.SourcePort()), Payload: msg}
	b := make([]byte, frame.UDPFrameLen(spec))
	n, err := frame.BuildUDP(b, spec)
	if err != nil {
		t.Fatal(err)
	}
	return b[:n]
}

// TestDNSFrames writes queries for a range of sequence numbers and tags,
// checks each frame (checksums, port, ID, the query itself), answers it
// and matches the answer back to its sequence number.
func TestDNSFrames(t *testing.T) {
	qs := benchQueries(30)
	tm, err := newDNSTemplates(qs, testGenMAC, testRespMAC, testGenSrc, testDst)
	if err != nil {
		t.Fatal(err)
	}
	if len(tm.frames) != len(qs) || tm.meanLen < 64 || tm.maxLen() > 128 {
		t.Fatalf("%d frames of %g bytes on average, at most %d", len(tm.frames), tm.meanLen, tm.maxLen())
	}
	buf := make([]byte, 256)
	for _, tag := range []uint16{1, 2, 63, 64, 65535} {
		for _, seq := range []uint64{0, 1, 15, 16, 17, 1000, 65535 * dnsPorts, dnsSeqWindow - 1, dnsSeqWindow, 5*dnsSeqWindow + 12345} {
			n := tm.write(buf, seq, tag)
			f := buf[:n]
			var p frame.Packet
			if r := p.Decode(f); r != frame.ReasonOK {
				t.Fatalf("tag %d seq %d: %v", tag, seq, r)
			}
			if r := p.VerifyChecksums(f); r != frame.ReasonOK {
				t.Fatalf("tag %d seq %d: %v", tag, seq, r)
			}
			u := frame.UDP(f[p.L4Off:])
			q := qs[seq%uint64(len(qs))]
			var m dns.Msg
			if err := m.Unpack(f[p.PayloadOff:p.L4End]); err != nil {
				t.Fatal(err)
			}
			if u.SourcePort() != dnsPort(tag, seq) || u.DestinationPort() != 53 || m.Id != uint16(seq/dnsPorts) ||
				m.Question[0].Name != q.Name || m.Question[0].Qtype != q.Type {
				t.Fatalf("tag %d seq %d: port %d, %v", tag, seq, u.SourcePort(), &m)
			}

			// The answer, matched back.
			rcode := int(q.Rcode)
			reply := answer(t, f, rcode, nil)
			port, msg, ok := dnsReplyParts(reply)
			if !ok {
				t.Fatal("reply not parsed")
			}
			low, ok := dnsLowSeq(tag, port, binary.BigEndian.Uint16(msg))
			if !ok || low != seq%dnsSeqWindow {
				t.Fatalf("tag %d seq %d: low %d, %v", tag, seq, low, ok)
			}
			if _, ok := dnsLowSeq(tag+1, port, binary.BigEndian.Uint16(msg)); ok {
				t.Errorf("tag %d seq %d: taken for tag %d", tag, seq, tag+1)
			}
			full, ok := dnsFullSeq(low, seq+1+seq%7)
			if !ok || full != seq {
				t.Fatalf("tag %d seq %d: full %d, %v", tag, seq, full, ok)
			}
			qi := int(full % uint64(len(qs)))
			if !tm.check(msg, qi) {
				t.Errorf("tag %d seq %d: the answer does not check", tag, seq)
			}
			// What must not pass: another RCODE, another question, not
			// a response, another query's slot.
			for what, bad := range map[string][]byte{
				"rcode":       answer(t, f, dns.RcodeServerFailure, nil),
				"question":    answer(t, f, rcode, func(r *dns.Msg) { r.Question[0].Qtype = dns.TypeMX }),
				"name case":   answer(t, f, rcode, func(r *dns.Msg) { r.Question[0].Name = "H" + r.Question[0].Name[1:] }),
				"no QR":       answer(t, f, rcode, func(r *dns.Msg) { r.Response = false }),
				"no question": answer(t, f, rcode, func(r *dns.Msg) { r.Question = nil }),
			} {
				_, msg, _ := dnsReplyParts(bad)
				if tm.check(msg, qi) {
					t.Errorf("tag %d seq %d: a reply with the wrong %s checks", tag, seq, what)
				}
			}
			if other := (qi + 1) % len(qs); qs[other] != q && tm.check(msg, other) {
				t.Errorf("tag %d seq %d: the answer checks for query %d too", tag, seq, other)
			}
		}
	}
}

func TestDNSFullSeq(t *testing.T) {
	const w = dnsSeqWindow
	for _, c := range []struct {
		low, next, want uint64
		ok              bool
	}{
		{0, 0, 0, false},
		{0, 1, 0, true},
		{5, 5, 0, false}, // not sent yet
		{5, 6, 5, true},
		{5, w + 3, 5, true},
		{5, w + 6, w + 5, true},
		{w - 1, w + 2, w - 1, true},
		{7, 3*w + 5, 2*w + 7, true},
		{w, 3 * w, 0, false}, // not low bits
	} {
		got, ok := dnsFullSeq(c.low, c.next)
		if got != c.want || ok != c.ok {
			t.Errorf("dnsFullSeq(%d, %d) = %d, %v; want %d, %v", c.low, c.next, got, ok, c.want, c.ok)
		}
	}
}

func TestDNSPorts(t *testing.T) {
	lo, hi := dnsPortRange()
	seen := make(map[uint16]bool)
	for tag := range uint16(dnsTags) {
		for seq := range uint64(dnsPorts) {
			p := dnsPort(tag, seq)
			if p < lo || p > hi || seen[p] {
				t.Fatalf("tag %d seq %d: port %d (range %d-%d, seen %v)", tag, seq, p, lo, hi, seen[p])
			}
			seen[p] = true
		}
	}
	if len(seen) != int(hi-lo)+1 {
		t.Errorf("%d ports in a range of %d", len(seen), hi-lo+1)
	}
	if _, ok := dnsLowSeq(0, lo-1, 0); ok {
		t.Error("a port below the range is taken")
	}
	if _, ok := dnsLowSeq(0, hi+1, 0); ok {
		t.Error("a port above the range is taken")
	}
}
