package frame

import (
	"bytes"
	"testing"

	"github.com/pktengine/pktengine/proto"
)

// FuzzIPv6Walk feeds arbitrary IPv6 packets (fixed header forced to
// version 6 with the fuzzer's payload length) to WalkExtensionHeaders and
// compares with the reference walk inside refDecode.
func FuzzIPv6Walk(f *testing.F) {
	for _, s := range sampleFrames(f) {
		var p Packet
		p.Decode(s.frame)
		if p.IPVersion == 6 {
			f.Add(s.frame[p.L3Off:])
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) < IPv6HeaderLen {
			return
		}
		ip := IPv6(b)
		ip[0] = 0x60 | ip[0]&0x0f
		if IPv6HeaderLen+int(ip.PayloadLength()) > len(b) {
			ip.SetPayloadLength(uint16(len(b) - IPv6HeaderLen))
		}
		c, r := ip.WalkExtensionHeaders()
		frame := append(make([]byte, 12, 14+len(b)), 0x86, 0xdd)
		frame = append(frame, b...)
		ref := refDecode(frame)
		walkReasons := map[Reason]bool{
			ReasonIPv6ExtHeaderTruncated: true, ReasonIPv6HopByHopNotFirst: true, ReasonIPv6TooManyExtHeaders: true,
			ReasonIPv6BadOptions: true, ReasonIPv6UnknownOption: true, ReasonIPv6AHTooShort: true, ReasonNonFirstFragment: true,
		}
		switch {
		case walkReasons[ref.reason]:
			if r != ref.reason {
				t.Fatalf("walk %v, reference %v", r, ref.reason)
			}
		default:
			if r != ReasonOK {
				t.Fatalf("walk %v, reference got past it to %v", r, ref.reason)
			}
			if int(c.Protocol) != ref.protocol || 14+c.Offset != ref.l4 || c.HasRouting != ref.routing {
				t.Fatalf("chain %+v, reference protocol %d l4 %d", c, ref.protocol, ref.l4)
			}
		}
		if c.Offset < IPv6HeaderLen || c.Offset > IPv6HeaderLen+int(ip.PayloadLength()) {
			t.Fatalf("offset %d out of the packet", c.Offset)
		}
		if c.ExtHeaders > MaxIPv6ExtHeaders {
			t.Fatalf("%d extension headers walked", c.ExtHeaders)
		}
	})
}

// FuzzARP checks the ARP view and ARPReplyInPlace on arbitrary packets:
// no panics, and a reply to a request swaps the right fields.
func FuzzARP(f *testing.F) {
	for _, s := range sampleFrames(f) {
		if Ethernet(s.frame).Type() == proto.EtherTypeARP {
			f.Add(s.frame[14:])
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		frame := append([]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0x08, 0x06}, b...)
		var p Packet
		r := p.Decode(frame)
		a := ARP(frame[14:])
		switch {
		case len(b) < ARPLen:
			if r != ReasonARPTruncated {
				t.Fatalf("%d bytes: %v", len(b), r)
			}
			return
		case !a.IsValid():
			if r != ReasonARPUnsupported {
				t.Fatalf("unsupported: %v", r)
			}
			return
		case r != ReasonARP:
			t.Fatalf("valid ARP: %v", r)
		}
		req := clone(frame)
		n, err := ARPReplyInPlace(frame, &p, macB)
		if a.Op() != ARPReply && req[14+7] == byte(ARPRequest) && req[14+6] == 0 {
			t.Fatalf("request not answered: %v", err)
		}
		if err != nil {
			if !bytes.Equal(frame, req) {
				t.Fatal("refusal modified the frame")
			}
			return
		}
		q := ARP(req[14:])
		if n != 14+ARPLen || a.Op() != ARPReply || a.TargetMAC() != q.SenderMAC() || a.TargetIP() != q.SenderIP() ||
			a.SenderIP() != q.TargetIP() || a.SenderMAC() != macB || Ethernet(frame).Destination() != q.SenderMAC() ||
			!bytes.Equal(frame[14+ARPLen:], req[14+ARPLen:]) {
			t.Fatalf("reply %x to %x", frame, req)
		}
	})
}

// FuzzICMPv6 checks the ICMPv6 and NDP views and the solicitation answer
// on arbitrary messages carried in a valid IPv6 header.
func FuzzICMPv6(f *testing.F) {
	f.Add(neighborSolicitation(f, v6A.Addr(), v6B.Addr(), true)[54:])
	f.Add(neighborSolicitation(f, v6A.Addr(), v6B.Addr(), false)[54:])
	for _, s := range sampleFrames(f) {
		var p Packet
		if p.Decode(s.frame) == ReasonICMPv6 {
			f.Add(clone(p.ICMPv6(s.frame)))
		}
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		if len(msg) > 1400 {
			return
		}
		frame := make([]byte, 14+40+len(msg))
		putLink(frame, macA, macB, nil, proto.EtherTypeIPv6)
		ip := IPv6(frame[14:])
		putIPv6(ip, 0, 0, uint16(len(msg)), 255, v6A.Addr(), v6B.Addr())
		ip.SetNextHeader(proto.IPProtoICMPv6)
		copy(frame[54:], msg)
		var p Packet
		r := p.Decode(frame)
		if len(msg) < ICMPHeaderLen {
			if r != ReasonICMPv6Truncated {
				t.Fatalf("%d bytes: %v", len(msg), r)
			}
			return
		}
		if r != ReasonICMPv6 {
			t.Fatalf("Decode = %v", r)
		}
		m := p.ICMPv6(frame)
		pseudo := ip.PseudoHeaderSum(proto.IPProtoICMPv6, uint32(len(m)))
		if m.IsChecksumValid(pseudo) != (refSum(v6A.Addr().AsSlice(), v6B.Addr().AsSlice(), []byte{0, 0, byte(len(m) >> 8), byte(len(m)), 0, 58}, m) == 0xffff) {
			t.Fatal("ICMPv6 checksum verdict differs from the reference")
		}
		if m.IsNeighborMessage() {
			_ = m.NDPTarget()
			_, slla := m.SourceLinkAddress()
			if m.NDPOptionsValid() {
				// Every option found must lie within the message.
				if o, ok := m.NDPOption(NDPOptSourceLinkAddr); ok != slla && len(o) >= 8 {
					t.Fatal("NDPOption and SourceLinkAddress disagree")
				}
			}
		}
		buf := make([]byte, 200)
		n, err := AnswerNeighborSolicitation(buf, frame, &p, macB)
		if err != nil {
			return
		}
		if m.Type() != ICMPv6NeighborSolicitation || !m.NDPOptionsValid() {
			t.Fatal("answered something that is not a valid solicitation")
		}
		var q Packet
		if r := q.Decode(buf[:n]); r != ReasonICMPv6 {
			t.Fatalf("answer decodes as %v", r)
		}
		na := q.ICMPv6(buf[:n])
		if na.Type() != ICMPv6NeighborAdvertisement || na.NDPTarget() != m.NDPTarget() ||
			!na.IsChecksumValid(q.IPv6(buf[:n]).PseudoHeaderSum(proto.IPProtoICMPv6, uint32(len(na)))) {
			t.Fatalf("bad answer %x", buf[:n])
		}
	})
}

// FuzzIncremental checks the incremental checksum setters against a full
// recomputation for arbitrary UDP frames and new endpoints.
func FuzzIncremental(f *testing.F) {
	f.Add(uint32(0x0a0a0ca6), uint16(32787), uint32(0xc6120001), uint16(7), false, []byte("TEST"))
	f.Add(uint32(0), uint16(0), uint32(0xffffffff), uint16(0xffff), true, []byte{})
	f.Fuzz(func(t *testing.T, a uint32, pa uint16, b uint32, pb uint16, v6 bool, payload []byte) {
		s := &UDPSpec{Src: v4A, Dst: v4B, Payload: payload}
		if v6 {
			s.Src, s.Dst = v6A, v6B
		}
		if UDPFrameLen(s) < 0 {
			return
		}
		tmpl := mustBuild(t, s)
		var p Packet
		if r := p.Decode(tmpl); r != ReasonOK {
			t.Fatal(r)
		}
		s2 := *s
		s2.Src = endpoint(v6, a, pa)
		s2.Dst = endpoint(v6, b, pb)
		p.SetSrcChecksummed(tmpl, s2.Src)
		p.SetDstChecksummed(tmpl, s2.Dst)
		if want := mustBuild(t, &s2); !bytes.Equal(tmpl, want) {
			t.Fatalf("incremental\n got %x\nwant %x", tmpl, want)
		}
	})
}
