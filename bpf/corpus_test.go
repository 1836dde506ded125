package bpf

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/pktengine/pktengine/frame"
	"github.com/pktengine/pktengine/proto"
)

// testFrame is one frame of the differential corpus, with the metadata a
// live AF_PACKET socket would attach to it.
type testFrame struct {
	name string
	b    []byte
}

var (
	corpusV4 = []string{"198.18.0.1", "198.18.0.2", "198.19.255.1", "10.1.2.3", "1.2.3.4", "5.6.7.8"}
	corpusV6 = []string{"fd00::1", "fd00::2", "fd12::1", "2001:db8::1"}
	// Ports the expressions test, neighbours of range ends, and extremes.
	corpusPorts = []uint16{7, 53, 80, 123, 9, 10, 15, 20, 21, 443, 1024, 0, 65535}
	corpusMACs  = []frame.MAC{
		{0x02, 0, 0, 0, 0, 1}, {0x02, 0, 0, 0, 0, 2}, {0x01, 0x02, 0x03, 0x04, 0x05, 0x06},
		frame.BroadcastMAC, {0x01, 0x00, 0x5e, 0x00, 0x00, 0x01}, {0x33, 0x33, 0, 0, 0, 1},
	}
	corpusTags = [][]frame.VLANTag{
		nil, nil, nil,
		{{TPID: proto.EtherTypeVLAN, TCI: 10}},
		{{TPID: proto.EtherTypeVLAN, TCI: frame.MakeTCI(5, false, 20)}},
		{{TPID: proto.EtherTypeQinQ, TCI: 100}, {TPID: proto.EtherTypeVLAN, TCI: 20}},
		{{TPID: etherTypeQinQOld, TCI: 10}},
	}
)

// corpus builds the differential test's frames: UDP (and UDP patched into
// TCP, SCTP and other protocols) over IPv4 with and without options and
// IPv6 with extension headers, first and later fragments, VLAN tags, ARP,
// ICMP, broadcast and multicast, each also cut short at the offsets
// filters load from, plus random truncations and byte mutations. It is
// deterministic.
func corpus(t testing.TB) []testFrame {
	t.Helper()
	r := rand.New(rand.NewPCG(1, 2))
	var out []testFrame
	add := func(name string, b []byte) { out = append(out, testFrame{name, append([]byte(nil), b...)}) }
	buf := make([]byte, 2048)
	pick4 := func() netip.Addr { return netip.MustParseAddr(corpusV4[r.IntN(len(corpusV4))]) }
	pick6 := func() netip.Addr { return netip.MustParseAddr(corpusV6[r.IntN(len(corpusV6))]) }
	pickPort := func() uint16 { return corpusPorts[r.IntN(len(corpusPorts))] }
	pickMAC := func() frame.MAC { return corpusMACs[r.IntN(len(corpusMACs))] }
	pickTags := func() []frame.VLANTag { return corpusTags[r.IntN(len(corpusTags))] }
	ipv4Options := [][]byte{nil, nil, {1, 1, 1, 0}, {0x94, 4, 0, 0, 1, 1, 1, 0}, make40()}
	extHeaders := [][]frame.IPv6ExtHeader{
		nil, nil,
		{{Type: proto.IPProtoHopByHop, Data: make([]byte, 4)}},
		{{Type: proto.IPProtoDstOpts, Data: make([]byte, 12)}},
		{{Type: proto.IPProtoRouting, Data: []byte{0, 0, 0, 0, 0, 0}}},
		{{Type: proto.IPProtoHopByHop, Data: make([]byte, 4)}, {Type: proto.IPProtoDstOpts, Data: make([]byte, 4)}},
	}
	// Protocols UDP frames are patched into, so that tcp/sctp/icmp
	// primitives see both matches and near misses.
	patchProtos := []uint8{proto.IPProtoUDP, proto.IPProtoUDP, proto.IPProtoTCP, proto.IPProtoTCP, ipProtoSCTP, proto.IPProtoICMP, proto.IPProtoICMPv6, 47}

	build := func(v6 bool) (netip.AddrPort, netip.AddrPort, *frame.UDPSpec) {
		var src, dst netip.Addr
		if v6 {
			src, dst = pick6(), pick6()
		} else {
			src, dst = pick4(), pick4()
		}
		s := &frame.UDPSpec{
			SrcMAC: pickMAC(), DstMAC: pickMAC(), VLANs: pickTags(),
			Src: netip.AddrPortFrom(src, pickPort()), Dst: netip.AddrPortFrom(dst, pickPort()),
			ID: uint16(r.Uint32()), Payload: make([]byte, r.IntN(40)),
		}
		if v6 {
			s.ExtHeaders = extHeaders[r.IntN(len(extHeaders))]
		} else {
			s.Options = ipv4Options[r.IntN(len(ipv4Options))]
		}
		return s.Src, s.Dst, s
	}
	// patch rewrites the transport protocol number of a built frame.
	patch := func(b []byte, p uint8) {
		l2 := 14
		for et := binary.BigEndian.Uint16(b[12:]); et == proto.EtherTypeVLAN || et == proto.EtherTypeQinQ || et == etherTypeQinQOld; et = binary.BigEndian.Uint16(b[l2-2:]) {
			l2 += 4
		}
		switch binary.BigEndian.Uint16(b[l2-2:]) {
		case proto.EtherTypeIPv4:
			b[l2+9] = p
		case proto.EtherTypeIPv6:
			// Patch the last Next Header in the chain.
			off, nh := l2+6, b[l2+6]
			pos := l2 + 40
			for proto.IsIPv6ExtensionHeader(nh) && nh != proto.IPProtoFragment {
				off, nh = pos, b[pos]
				pos += 8 * (int(b[pos+1]) + 1)
			}
			if nh == proto.IPProtoFragment {
				off = pos
			}
			b[off] = p
		}
	}

	for i := 0; i < 420; i++ {
		_, _, s := build(i%3 == 2)
		n, err := frame.BuildUDP(buf, s)
		if err != nil {
			t.Fatalf("BuildUDP: %v", err)
		}
		patch(buf[:n], patchProtos[r.IntN(len(patchProtos))])
		add(fmt.Sprintf("udp#%d", i), buf[:n])
	}
	for i := 0; i < 160; i++ {
		_, _, s := build(i%2 == 1)
		s.Payload = make([]byte, 40)
		// A first fragment (with the UDP header) and a later one.
		for _, f := range []frame.Fragment{{Offset: 0, Length: 24, ID: 7}, {Offset: 24, Length: 24, ID: 7}} {
			n, err := frame.BuildUDPFragment(buf, s, f)
			if err != nil {
				t.Fatalf("BuildUDPFragment: %v", err)
			}
			add(fmt.Sprintf("frag%d#%d", f.Offset, i), buf[:n])
		}
	}
	for i := 0; i < 60; i++ {
		s := &frame.ARPSpec{
			Op: frame.ARPRequest, SenderMAC: pickMAC(), SenderIP: pick4(), TargetIP: pick4(), VLANs: pickTags(),
		}
		if i%2 == 1 {
			s.Op, s.TargetMAC = frame.ARPReply, pickMAC()
		}
		n, err := frame.BuildARP(buf, s)
		if err != nil {
			t.Fatalf("BuildARP: %v", err)
		}
		if i%5 == 0 {
			binary.BigEndian.PutUint16(buf[12+4*len(s.VLANs):], etherTypeRARP)
		}
		add(fmt.Sprintf("arp#%d", i), buf[:frame.PadEthernet(buf, n)])
	}
	for i := 0; i < 60; i++ {
		_, _, orig := build(i%2 == 1)
		on, _ := frame.BuildUDP(buf[1024:], orig)
		quoted := buf[1024+14+4*len(orig.VLANs) : 1024+on]
		spec := &frame.IPSpec{SrcMAC: pickMAC(), DstMAC: pickMAC(), VLANs: pickTags()}
		var n int
		var err error
		if i%2 == 1 {
			spec.Src, spec.Dst = pick6(), pick6()
			n, err = frame.BuildICMPv6DestUnreachable(buf, spec, 4, quoted)
		} else {
			spec.Src, spec.Dst = pick4(), pick4()
			n, err = frame.BuildICMPv4DestUnreachable(buf, spec, 3, quoted)
		}
		if err != nil {
			t.Fatalf("ICMP builder: %v", err)
		}
		add(fmt.Sprintf("icmp#%d", i), buf[:n])
	}
	// Odd link layers: 802.3 length fields with an LLC header, and
	// EtherTypes nothing matches.
	for i, et := range []uint16{0x0026, 0x05dc, 0x05dd, 0x88cc, 0x8035, 0x9000} {
		b := make([]byte, 60)
		copy(b, corpusMACs[i%len(corpusMACs)][:])
		binary.BigEndian.PutUint16(b[12:], et)
		b[14], b[15] = 0x42, 0x42
		add(fmt.Sprintf("link%#x", et), b)
	}

	// Truncations: every whole frame cut at the offsets programs load
	// from, and at random lengths.
	whole := len(out)
	cuts := []int{0, 1, 12, 13, 14, 15, 18, 20, 21, 23, 24, 26, 28, 30, 33, 34, 36, 38, 42, 46, 50, 54, 55, 56, 57, 58, 60, 62}
	for i := 0; i < whole; i++ {
		f := out[i]
		c := cuts[r.IntN(len(cuts))]
		if c < len(f.b) {
			add(f.name+fmt.Sprintf("/cut%d", c), f.b[:c])
		}
		if i%2 == 0 {
			c = r.IntN(len(f.b))
			add(f.name+fmt.Sprintf("/cut%d", c), f.b[:c])
		}
	}
	// Mutations: a byte changed at a field filters read.
	fields := []int{12, 13, 14, 16, 17, 20, 21, 23, 27, 34, 36, 38, 54, 56}
	for i := 0; i < whole; i++ {
		if i%3 != 1 {
			continue
		}
		b := append([]byte(nil), out[i].b...)
		off := fields[r.IntN(len(fields))]
		if off < len(b) {
			b[off] = byte(r.Uint32())
			add(out[i].name+fmt.Sprintf("/mut%d", off), b)
		}
	}
	return out
}

func make40() []byte {
	b := make([]byte, 40)
	for i := range b {
		b[i] = 1 // NOP options
	}
	b[39] = 0
	return b
}
