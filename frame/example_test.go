package frame_test

import (
	"fmt"
	"net/netip"

	"github.com/pktengine/pktengine/frame"
)

// A responder's per-frame work: decode, check, answer in place.
func Example() {
	buf := make([]byte, 128)
	n, _ := frame.BuildUDP(buf, &frame.UDPSpec{
		SrcMAC:       frame.MAC{0x00, 0x05, 0x85, 0x88, 0xcc, 0xdb},
		DstMAC:       frame.MAC{0x00, 0xd0, 0xb7, 0x1f, 0xfe, 0xe6},
		Src:          netip.MustParseAddrPort("10.10.12.166:32787"),
		Dst:          netip.MustParseAddrPort("10.10.11.66:7"),
		TTL:          62,
		DontFragment: true,
		Payload:      []byte("TEST"),
	})
	f := buf[:frame.PadEthernet(buf, n)] // as it arrives: 60 bytes

	var p frame.Packet
	var counts [frame.NumReasons]uint64
	r := p.Decode(f)
	counts[r]++
	if r == frame.ReasonOK {
		r = p.VerifyChecksums(f)
	}
	fmt.Println(r, p.Src(f), "->", p.Dst(f), len(f), p.Len(), string(p.Payload(f)))

	m, _ := frame.ReplyInPlace(f, &p, 64)
	var q frame.Packet
	q.Decode(f[:m])
	fmt.Printf("%v -> %v ttl %d ip checksum %#04x udp checksum %#04x\n",
		q.Src(f), q.Dst(f), q.IPv4(f).TTL(), q.IPv4(f).Checksum(), q.UDP(f).Checksum())
	// Output:
	// ok 10.10.12.166:32787 -> 10.10.11.66:7 60 46 TEST
	// 10.10.11.66:7 -> 10.10.12.166:32787 ttl 64 ip checksum 0x0ed2 udp checksum 0xac26
}

// A load generator decodes one template and rewrites it per packet; the
// checksums follow incrementally.
func ExamplePacket_SetSrcChecksummed() {
	buf := make([]byte, 128)
	n, _ := frame.BuildUDP(buf, &frame.UDPSpec{
		Src:     netip.MustParseAddrPort("[fd00::1]:40000"),
		Dst:     netip.MustParseAddrPort("[fd00::2]:7"),
		Payload: []byte("TEST"),
	})
	f := buf[:n]
	var p frame.Packet
	p.Decode(f)
	for port := uint16(40001); port <= 40003; port++ {
		p.SetSrcChecksummed(f, netip.AddrPortFrom(p.SrcAddr(f), port))
		fmt.Println(p.Src(f), p.VerifyUDPChecksum(f))
	}
	// Output:
	// [fd00::1]:40001 ok
	// [fd00::1]:40002 ok
	// [fd00::1]:40003 ok
}

func ExampleReason() {
	var p frame.Packet
	for _, f := range [][]byte{
		make([]byte, 10),
		{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x08, 0x06},
	} {
		r := p.Decode(f)
		fmt.Println(r, r.Malformed())
	}
	// Output:
	// truncated-ethernet true
	// arp-truncated true
}
