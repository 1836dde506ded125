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
	corpusV4 = []string{"198.18.0.1", "198.18.0.2", "198.19.255.1", "10.1.2.3", "1.2.3.4", "5.6.7.8", "0.0.0.10"}
	corpusV6 = []string{"fd00::1", "fd00::2", "fd12::1", "2001:db8::1"}
	// Destinations of the arithmetic frames: multicast and broadcast too.
	arithV4 = []string{"198.18.0.1", "224.0.0.1", "239.255.255.250", "255.255.255.255", "0.0.0.0", "198.18.0.255", "10.1.2.3"}
	arithV6 = []string{"fd00::1", "ff02::1", "ff05::1:3", "fe80::1"}
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

	addArith(r, add, build, patch)

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
	fields := []int{12, 13, 14, 15, 16, 17, 20, 21, 22, 23, 27, 30, 34, 36, 38, 42, 47, 54, 56}
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

// addArith adds the frames of byte offsets and arithmetic: random payloads
// and header fields (TOS, TTL, lengths), TCP flags and data offsets, ICMP
// and ICMPv6 types and codes, IGMP, PIM and VRRP, multicast and broadcast
// destinations, extension-header and Authentication Header chains for
// protochain, and 802.2 LLC and SNAP frames for the non-IP protocol names.
func addArith(r *rand.Rand, add func(string, []byte), build func(bool) (netip.AddrPort, netip.AddrPort, *frame.UDPSpec), patch func([]byte, uint8)) {
	buf := make([]byte, 2048)
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return b
	}
	l4 := func(b []byte) (int, bool) {
		l2 := 14
		for et := binary.BigEndian.Uint16(b[12:]); et == proto.EtherTypeVLAN || et == proto.EtherTypeQinQ || et == etherTypeQinQOld; et = binary.BigEndian.Uint16(b[l2-2:]) {
			l2 += 4
		}
		switch binary.BigEndian.Uint16(b[l2-2:]) {
		case proto.EtherTypeIPv4:
			return l2 + 4*int(b[l2]&0xf), false
		default:
			off, nh := l2+40, b[l2+6]
			for proto.IsIPv6ExtensionHeader(nh) && off+8 <= len(b) {
				if nh == proto.IPProtoFragment {
					return off + 8, true
				}
				nh, off = b[off], off+(int(b[off+1])+1)*8
			}
			return off, true
		}
	}
	type kind struct {
		p      uint8
		fields func(h []byte)
	}
	tcpFlags := []byte{0x02, 0x12, 0x10, 0x18, 0x01, 0x04, 0x11, 0x14, 0xc2, 0x00}
	kinds := []kind{
		{proto.IPProtoUDP, func(h []byte) {
			h[8] = []byte{0x01, 0x81, 0x85, 0x00}[r.IntN(4)] // DNS QR, opcode, AA
			h[10] = byte(r.Uint32())
		}},
		{proto.IPProtoTCP, func(h []byte) {
			h[12] = byte(5+r.IntN(11)) << 4
			h[13] = tcpFlags[r.IntN(len(tcpFlags))]
		}},
		{proto.IPProtoICMP, func(h []byte) {
			h[0] = []byte{0, 3, 8, 11, 5, 13}[r.IntN(6)]
			h[1] = byte(r.IntN(5))
		}},
		{proto.IPProtoICMPv6, func(h []byte) {
			h[0] = []byte{128, 129, 135, 136, 1, 2, 3, 4, 143}[r.IntN(9)]
			h[1] = byte(r.IntN(6))
		}},
		{2, func(h []byte) { h[0] = []byte{0x11, 0x16, 0x17, 0x22}[r.IntN(4)] }}, // IGMP
		{103, func(h []byte) { h[0] = byte(0x20 | r.IntN(9)) }},                  // PIM
		{112, func(h []byte) { h[0] = []byte{0x21, 0x31}[r.IntN(2)] }},           // VRRP
		{ipProtoSCTP, func(h []byte) {}},
		{9, func(h []byte) { h[0] = 1 }}, // IGRP
	}
	for i := 0; i < 360; i++ {
		v6 := i%3 == 2
		_, _, s := build(v6)
		dst := netip.MustParseAddr(arithV4[r.IntN(len(arithV4))])
		if v6 {
			dst = netip.MustParseAddr(arithV6[r.IntN(len(arithV6))])
		}
		s.Dst = netip.AddrPortFrom(dst, s.Dst.Port())
		s.Payload = random(8 + r.IntN(56))
		s.TOS, s.TTL = byte(r.Uint32()), byte(r.IntN(3))*60+byte(r.IntN(8))
		n, err := frame.BuildUDP(buf, s)
		if err != nil {
			panic(err)
		}
		b := buf[:n]
		k := kinds[r.IntN(len(kinds))]
		patch(b, k.p)
		if off, _ := l4(b); off+16 <= len(b) {
			k.fields(b[off:])
		}
		add(fmt.Sprintf("arith#%d", i), b)
	}
	// protochain: chains of extension headers (some longer than the walk),
	// Authentication Headers, and protocols behind them.
	hbh := frame.IPv6ExtHeader{Type: proto.IPProtoHopByHop, Data: make([]byte, 6)}
	dstOpts := frame.IPv6ExtHeader{Type: proto.IPProtoDstOpts, Data: make([]byte, 14)}
	rt := frame.IPv6ExtHeader{Type: proto.IPProtoRouting, Data: make([]byte, 6)}
	ah := frame.IPv6ExtHeader{Type: proto.IPProtoAH, Data: make([]byte, 10)}
	chains := [][]frame.IPv6ExtHeader{
		{hbh}, {hbh, dstOpts}, {hbh, rt, dstOpts}, {dstOpts, dstOpts, dstOpts, dstOpts, dstOpts},
		{hbh, dstOpts, dstOpts, dstOpts, dstOpts, dstOpts, dstOpts, dstOpts},
		{hbh, dstOpts, dstOpts, dstOpts, dstOpts, dstOpts, dstOpts, dstOpts, dstOpts, dstOpts},
		{ah}, {hbh, ah}, {rt},
	}
	for i := 0; i < 120; i++ {
		_, _, s := build(true)
		s.ExtHeaders = chains[r.IntN(len(chains))]
		s.Payload = random(r.IntN(24))
		var n int
		var err error
		if i%4 == 3 {
			s.Payload = random(40)
			n, err = frame.BuildUDPFragment(buf, s, frame.Fragment{Offset: 8 * r.IntN(2), Length: 16, ID: 9})
		} else {
			n, err = frame.BuildUDP(buf, s)
		}
		if err != nil {
			panic(err)
		}
		b := buf[:n]
		patch(b, []uint8{proto.IPProtoUDP, proto.IPProtoTCP, proto.IPProtoICMPv6, proto.IPProtoNoNext, 103}[r.IntN(5)])
		add(fmt.Sprintf("chain#%d", i), b)
	}
	for i := 0; i < 30; i++ {
		// IPv4 with an Authentication Header (tcpdump's walk differs).
		_, _, s := build(false)
		s.Payload = random(24)
		n, err := frame.BuildUDP(buf, s)
		if err != nil {
			panic(err)
		}
		b := buf[:n]
		patch(b, proto.IPProtoAH)
		off, _ := l4(b)
		b[off], b[off+1] = []uint8{proto.IPProtoTCP, proto.IPProtoUDP, proto.IPProtoAH}[r.IntN(3)], byte(r.IntN(3))
		add(fmt.Sprintf("ah4#%d", i), b)
	}
	// MPLS label stacks and PPPoE sessions around IP.
	encap := func(b []byte, et uint16, hdr []byte) []byte {
		out := append(append([]byte(nil), b[:12]...), byte(et>>8), byte(et))
		return append(append(out, hdr...), b[14:]...)
	}
	for i := 0; i < 90; i++ {
		v6 := i%2 == 1
		_, _, s := build(v6)
		s.VLANs = nil
		s.Payload = random(r.IntN(24))
		n, err := frame.BuildUDP(buf, s)
		if err != nil {
			panic(err)
		}
		patch(buf[:n], []uint8{proto.IPProtoUDP, proto.IPProtoUDP, proto.IPProtoTCP, proto.IPProtoICMP}[r.IntN(4)])
		if i%3 == 2 {
			ppp := []uint16{0x0021, 0x0057, 0x0281, 0x0023, 0x0806}[r.IntN(5)]
			if r.IntN(2) == 0 {
				ppp = map[bool]uint16{false: 0x0021, true: 0x0057}[v6]
			}
			hdr := []byte{0x11, 0, 0, byte(r.IntN(5)), 0, byte(n - 14 + 2), byte(ppp >> 8), byte(ppp)}
			add(fmt.Sprintf("pppoes#%d", i), encap(buf[:n], etherTypePPPoES, hdr))
			continue
		}
		var labels []byte
		depth := 1 + r.IntN(3)
		for d := 0; d < depth; d++ {
			label := uint32(r.IntN(5)) << 12
			if d == depth-1 && r.IntN(8) != 0 {
				label |= 0x100 // bottom of stack
			}
			labels = append(labels, byte(label>>24), byte(label>>16), byte(label>>8), 64)
		}
		add(fmt.Sprintf("mpls#%d", i), encap(buf[:n], etherTypeMPLS, labels))
	}
	// 802.2 LLC and SNAP frames and the EtherTypes of the protocol names.
	llc := [][]byte{
		{0xfe, 0xfe, 0x03, 0x81}, {0xfe, 0xfe, 0x03, 0x82}, {0xfe, 0xfe, 0x03, 0x83, 0, 0, 0, 0x11},
		{0xfe, 0xfe, 0x03, 0x83, 0, 0, 0, 0x0f}, {0xfe, 0xfe, 0x03, 0x83, 0, 0, 0, 0x14},
		{0xfe, 0xfe, 0x03, 0x83, 0, 0, 0, 0x18}, {0xfe, 0xfe, 0x03, 0x83, 0, 0, 0, 0x1b},
		{0x42, 0x42, 0x03}, {0xe0, 0xe0, 0x03}, {0xff, 0xff}, {0xf0, 0xf0, 0x03}, {0x06, 0x06, 0x03},
		{0xaa, 0xaa, 0x03, 0x08, 0x00, 0x07, 0x80, 0x9b}, {0xaa, 0xaa, 0x03, 0, 0, 0, 0x80, 0xf3},
		{0xaa, 0xaa, 0x03, 0, 0, 0, 0x81, 0x37}, {0xaa, 0xaa, 0x03, 0, 0, 0, 0x08, 0x00},
		{0x26, 0x42, 0x03}, {0xfe, 0x42, 0x03},
	}
	for i := 0; i < 120; i++ {
		b := random(60)
		copy(b, corpusMACs[r.IntN(len(corpusMACs))][:])
		tags := [][]byte{nil, nil, nil, {0x81, 0x00, 0x00, 0x0a}}[r.IntN(4)]
		b = append(append(append([]byte(nil), b[:12]...), tags...), b[12:]...)
		l := 12 + len(tags)
		if i%2 == 0 {
			binary.BigEndian.PutUint16(b[l:], uint16(40+r.IntN(1400)))
			copy(b[l+2:], llc[r.IntN(len(llc))])
			if r.IntN(3) == 0 {
				b[l+4] = []byte{0x00, 0x01, 0x05, 0x09, 0x0f, 0x43, 0x63, 0x6f, 0xaf, 0xe3, 0x87, 0x13}[r.IntN(12)] // control
			}
		} else {
			et := []uint16{0x809b, 0x80f3, 0x8137, 0x6001, 0x6002, 0x6003, 0x6004, 0x6007, 0x9000, 0x0800, 0x8863, 0x8864, 0x8847}[r.IntN(13)]
			binary.BigEndian.PutUint16(b[l:], et)
		}
		add(fmt.Sprintf("llc#%d", i), b)
	}
}
