package frame

import (
	"fmt"
	"iter"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/pktengine/pktengine/proto"
)

// Frames of every kind the package knows, built with its own builders (the
// seed exchange checks the builders against captured bytes), for the fuzz
// seeds, the mutation tests and the differential test against gopacket.

var (
	macA = MAC{0x02, 0x00, 0x00, 0x00, 0x00, 0x0a}
	macB = MAC{0x02, 0x00, 0x00, 0x00, 0x00, 0x0b}
	v4A  = netip.MustParseAddrPort("198.18.0.1:40000")
	v4B  = netip.MustParseAddrPort("198.18.0.2:7")
	v6A  = netip.MustParseAddrPort("[fd00::1]:40000")
	v6B  = netip.MustParseAddrPort("[fd00::2]:7")
)

type sample struct {
	name  string
	frame []byte
}

func mustBuild(t testing.TB, s *UDPSpec) []byte {
	t.Helper()
	buf := make([]byte, 70000)
	n, err := BuildUDP(buf, s)
	if err != nil {
		t.Fatalf("BuildUDP: %v", err)
	}
	return buf[:n]
}

var vlanSets = [][]VLANTag{
	nil,
	{{TCI: MakeTCI(0, false, 100)}},
	{{TCI: MakeTCI(3, true, 10)}, {TCI: MakeTCI(5, false, 4094)}},
	{{TPID: proto.EtherTypeVLAN, TCI: 7}, {TPID: proto.EtherTypeVLAN, TCI: 8}}, // double 802.1Q, seen in the wild
}

// udpSpecs returns a variety of UDP specs over both families.
func udpSpecs() map[string]*UDPSpec {
	out := map[string]*UDPSpec{}
	payloads := map[string][]byte{"empty": nil, "odd": []byte("hello"), "test": []byte("TEST"), "1k": make([]byte, 1000)}
	for i := range payloads["1k"] {
		payloads["1k"][i] = byte(i * 7)
	}
	for vi, vl := range vlanSets {
		for pn, pl := range payloads {
			out[fmt.Sprintf("v4/vlan%d/%s", vi, pn)] = &UDPSpec{SrcMAC: macA, DstMAC: macB, VLANs: vl, Src: v4A, Dst: v4B, Payload: pl, ID: 0x1234, DontFragment: true, TOS: 0xb8}
			out[fmt.Sprintf("v6/vlan%d/%s", vi, pn)] = &UDPSpec{SrcMAC: macA, DstMAC: macB, VLANs: vl, Src: v6A, Dst: v6B, Payload: pl, TOS: 0x20, FlowLabel: 0xabcde}
		}
		out[fmt.Sprintf("v4opts/vlan%d", vi)] = &UDPSpec{SrcMAC: macA, DstMAC: macB, VLANs: vl, Src: v4A, Dst: v4B, Payload: []byte("opt"),
			Options: []byte{IPv4OptionRouterAlert, 4, 0, 0, IPv4OptionNOP, IPv4OptionNOP, IPv4OptionNOP, IPv4OptionEOL}}
		out[fmt.Sprintf("v6ext/vlan%d", vi)] = &UDPSpec{SrcMAC: macA, DstMAC: macB, VLANs: vl, Src: v6A, Dst: v6B, Payload: []byte("ext"),
			ExtHeaders: []IPv6ExtHeader{
				{Type: proto.IPProtoHopByHop, Data: []byte{5, 2, 0, 0}}, // router alert
				{Type: proto.IPProtoDstOpts, Data: []byte{1, 4, 0, 0, 0, 0}},
				{Type: proto.IPProtoRouting, Data: []byte{0, 0, 0, 0, 0, 0}}, // type 0, segments left 0
				{Type: proto.IPProtoAH, Data: make([]byte, 10)},
				{Type: proto.IPProtoDstOpts, Data: nil},
			}}
	}
	out["v4/nocsum"] = &UDPSpec{SrcMAC: macA, DstMAC: macB, Src: v4A, Dst: v4B, Payload: []byte("x"), NoChecksum: true}
	out["v6/atomic-fragment"] = &UDPSpec{SrcMAC: macA, DstMAC: macB, Src: v6A, Dst: v6B, Payload: []byte("atomic"),
		ExtHeaders: []IPv6ExtHeader{{Type: proto.IPProtoFragment, Data: []byte{0, 0, 0, 0, 0, 9}}}}
	return out
}

// sampleFrames returns one frame of every kind: UDP specs, fragments, ARP,
// ICMP, TCP, and oddities.
func sampleFrames(t testing.TB) []sample {
	var out []sample
	for name, s := range udpSpecs() {
		out = append(out, sample{name, mustBuild(t, s)})
	}
	out = append(out, sample{"seed/request", seedRequest}, sample{"seed/reply", seedReply})

	// Fragments of a 100-byte datagram.
	big := make([]byte, 100)
	for _, fam := range []struct {
		name     string
		src, dst netip.AddrPort
	}{{"v4", v4A, v4B}, {"v6", v6A, v6B}} {
		s := &UDPSpec{SrcMAC: macA, DstMAC: macB, Src: fam.src, Dst: fam.dst, Payload: big, ID: 77}
		for _, f := range []Fragment{{Offset: 0, Length: 48, ID: 5}, {Offset: 48, Length: 60, ID: 5}, {Offset: 0, Length: 8, ID: 5}} {
			buf := make([]byte, 256)
			n, err := BuildUDPFragment(buf, s, f)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, sample{fmt.Sprintf("%s/frag%d+%d", fam.name, f.Offset, f.Length), buf[:n]})
		}
	}

	buf := make([]byte, 2000)
	n, err := BuildARP(buf, &ARPSpec{Op: ARPRequest, SenderMAC: macA, SenderIP: v4A.Addr(), TargetIP: v4B.Addr()})
	if err != nil {
		t.Fatal(err)
	}
	out = append(out, sample{"arp/request", clone(buf[:n])})
	n = PadEthernet(buf, n)
	out = append(out, sample{"arp/request-padded", clone(buf[:n])})

	n, err = BuildICMPv4DestUnreachable(buf, &IPSpec{SrcMAC: macB, DstMAC: macA, Src: v4B.Addr(), Dst: v4A.Addr()},
		ICMPv4CodePortUnreach, seedRequest[14:46])
	if err != nil {
		t.Fatal(err)
	}
	out = append(out, sample{"icmpv4/unreachable", clone(buf[:n])})
	v6req := mustBuild(t, &UDPSpec{SrcMAC: macA, DstMAC: macB, Src: v6A, Dst: v6B, Payload: []byte("q")})
	n, err = BuildICMPv6DestUnreachable(buf, &IPSpec{SrcMAC: macB, DstMAC: macA, Src: v6B.Addr(), Dst: v6A.Addr()},
		ICMPv6CodePortUnreachable, v6req[14:])
	if err != nil {
		t.Fatal(err)
	}
	out = append(out, sample{"icmpv6/unreachable", clone(buf[:n])})
	n, err = BuildNeighborAdvertisement(buf, &IPSpec{SrcMAC: macB, DstMAC: macA, Src: v6B.Addr(), Dst: v6A.Addr()},
		v6B.Addr(), NDPFlagSolicited|NDPFlagOverride, macB)
	if err != nil {
		t.Fatal(err)
	}
	out = append(out, sample{"icmpv6/na", clone(buf[:n])})
	out = append(out, sample{"icmpv6/ns", neighborSolicitation(t, v6A.Addr(), v6B.Addr(), true)})

	// TCP: a UDP frame with the protocol changed (and the header checksum
	// fixed), and an unknown EtherType.
	tcp := mustBuild(t, &UDPSpec{SrcMAC: macA, DstMAC: macB, Src: v4A, Dst: v4B, Payload: make([]byte, 12)})
	IPv4(tcp[14:]).SetProtocol(proto.IPProtoTCP)
	IPv4(tcp[14:]).SetChecksum(IPv4(tcp[14:]).CalculateChecksum())
	out = append(out, sample{"v4/tcp", tcp})
	lldp := clone(seedRequest)
	Ethernet(lldp).SetType(0x88cc)
	out = append(out, sample{"lldp", lldp})
	// Map order is random; the mutation tests want the same frames in the
	// same order every run.
	slices.SortFunc(out, func(a, b sample) int { return strings.Compare(a.name, b.name) })
	return out
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }

// neighborSolicitation builds a Neighbor Solicitation from src (or :: if
// src is invalid) for target, with a source link-layer option if withSLLA.
func neighborSolicitation(t testing.TB, src, target netip.Addr, withSLLA bool) []byte {
	t.Helper()
	if !src.IsValid() {
		src = netip.IPv6Unspecified()
	}
	t16 := target.As16()
	snm := netip.AddrFrom16([16]byte{0: 0xff, 1: 0x02, 11: 0x01, 12: 0xff, 13: t16[13], 14: t16[14], 15: t16[15]})
	msgLen := NDPNeighborMessageLen
	if withSLLA {
		msgLen += 8
	}
	buf := make([]byte, EthernetHeaderLen+IPv6HeaderLen+msgLen)
	putLink(buf, macA, IPv6MulticastMAC(snm.As16()), nil, proto.EtherTypeIPv6)
	ip := IPv6(buf[14:])
	putIPv6(ip, 0, 0, uint16(msgLen), 255, src, snm)
	ip.SetNextHeader(proto.IPProtoICMPv6)
	m := ICMPv6(buf[54:])
	m.SetType(ICMPv6NeighborSolicitation)
	m.SetNDPTarget(target)
	if withSLLA {
		m[24], m[25] = NDPOptSourceLinkAddr, 1
		copy(m[26:32], macA[:])
	}
	m.SetChecksum(m.CalculateChecksum(ip.PseudoHeaderSum(proto.IPProtoICMPv6, uint32(msgLen))))
	return buf
}

// mutations yields deterministic random damage of the samples, taken in
// turn, each with the sample it came from: 20,000 frames, 2,000 with
// -short. rng is drawn from only by mutate, in order.
func mutations(rng *rand.Rand, samples []sample) iter.Seq2[sample, []byte] {
	n := 20000
	if testing.Short() {
		n = 2000
	}
	return func(yield func(sample, []byte) bool) {
		for i := range n {
			s := samples[i%len(samples)]
			if !yield(s, mutate(rng, s.frame)) {
				return
			}
		}
	}
}

// mutate returns a damaged copy of f: bit flips, a byte set to a boundary
// value, a length field nudged, truncation or extension.
func mutate(rng *rand.Rand, f []byte) []byte {
	g := clone(f)
	for k := rng.IntN(3) + 1; k > 0; k-- {
		if len(g) == 0 {
			return g
		}
		switch rng.IntN(6) {
		case 0:
			i := rng.IntN(len(g))
			g[i] ^= 1 << rng.IntN(8)
		case 1:
			i := rng.IntN(len(g))
			g[i] = []byte{0, 1, 0x7f, 0x80, 0xff, 5, 6, 0x45, 0x60, 17, 44}[rng.IntN(11)]
		case 2:
			g = g[:rng.IntN(len(g)+1)]
		case 3:
			g = append(g, make([]byte, rng.IntN(20))...)
		case 4: // nudge a 16-bit word (length fields live in words)
			if len(g) >= 2 {
				i := rng.IntN(len(g) - 1)
				v := uint16(g[i])<<8 | uint16(g[i+1])
				v += uint16(rng.IntN(17)) - 8
				g[i], g[i+1] = byte(v>>8), byte(v)
			}
		case 5:
			i := rng.IntN(len(g))
			g[i] = byte(rng.Uint32())
		}
	}
	return g
}

// endpoint makes an address and port from fuzz input: the IPv4 address a,
// or fd00::a for IPv6.
func endpoint(v6 bool, a uint32, port uint16) netip.AddrPort {
	if v6 {
		var b [16]byte
		b[0] = 0xfd
		b[12], b[13], b[14], b[15] = byte(a>>24), byte(a>>16), byte(a>>8), byte(a)
		return netip.AddrPortFrom(netip.AddrFrom16(b), port)
	}
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{byte(a >> 24), byte(a >> 16), byte(a >> 8), byte(a)}), port)
}
