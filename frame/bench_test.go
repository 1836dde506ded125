package frame

import (
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// The figures these report are in docs/bench/frame.md.

func benchDecode(b *testing.B, f []byte) {
	var p Packet
	b.ReportAllocs()
	b.SetBytes(int64(len(f)))
	for b.Loop() {
		if p.Decode(f) != ReasonOK {
			b.Fatal("decode failed")
		}
	}
}

func BenchmarkDecodeIPv4UDP(b *testing.B) { benchDecode(b, seedRequest) }

func BenchmarkDecodeVLANIPv6UDP(b *testing.B) {
	benchDecode(b, mustBuild(b, udpSpecs()["v6/vlan1/test"]))
}

func BenchmarkDecodeQinQIPv6UDP(b *testing.B) {
	benchDecode(b, mustBuild(b, udpSpecs()["v6/vlan2/test"]))
}

func BenchmarkDecodeIPv6ExtUDP(b *testing.B) {
	benchDecode(b, mustBuild(b, udpSpecs()["v6ext/vlan0"]))
}

// BenchmarkDecodeDispatchKey is what an engine does per frame: decode and
// take the destination to dispatch on.
func BenchmarkDecodeDispatchKey(b *testing.B) {
	f := seedRequest
	var p Packet
	var sink netip.AddrPort
	b.ReportAllocs()
	b.SetBytes(int64(len(f)))
	for b.Loop() {
		if p.Decode(f) == ReasonOK {
			sink = p.Dst(f)
		}
	}
	_ = sink
}

func benchVerify(b *testing.B, f []byte) {
	var p Packet
	if p.Decode(f) != ReasonOK {
		b.Fatal("decode failed")
	}
	b.ReportAllocs()
	b.SetBytes(int64(p.L4End - p.L4Off))
	for b.Loop() {
		if p.VerifyChecksums(f) != ReasonOK {
			b.Fatal("verify failed")
		}
	}
}

func BenchmarkVerifyIPv4UDP(b *testing.B) { benchVerify(b, seedRequest) }

func BenchmarkVerifyIPv6UDP(b *testing.B) { benchVerify(b, mustBuild(b, udpSpecs()["v6/vlan0/test"])) }

func BenchmarkVerifyIPv4UDP1k(b *testing.B) { benchVerify(b, mustBuild(b, udpSpecs()["v4/vlan0/1k"])) }

func benchReply(b *testing.B, f []byte) {
	f = clone(f)
	var p Packet
	if p.Decode(f) != ReasonOK {
		b.Fatal("decode failed")
	}
	b.ReportAllocs()
	b.SetBytes(int64(p.Len()))
	for b.Loop() {
		// Replying twice restores the frame, so p stays valid.
		ReplyInPlace(f, &p, 64)
	}
}

func BenchmarkReplyInPlaceIPv4(b *testing.B) { benchReply(b, seedRequest) }

func BenchmarkReplyInPlaceIPv6(b *testing.B) {
	benchReply(b, mustBuild(b, udpSpecs()["v6/vlan0/test"]))
}

// BenchmarkEchoPath is decode, verify, reply: a responder's whole per-frame
// header work.
func BenchmarkEchoPath(b *testing.B) {
	f := clone(seedRequest)
	var p Packet
	b.ReportAllocs()
	b.SetBytes(int64(len(f)))
	for b.Loop() {
		if p.Decode(f) != ReasonOK || p.VerifyChecksums(f) != ReasonOK {
			b.Fatal("bad frame")
		}
		ReplyInPlace(f, &p, 64)
	}
}

func benchBuild(b *testing.B, s *UDPSpec) {
	buf := make([]byte, 2048)
	b.ReportAllocs()
	b.SetBytes(int64(UDPFrameLen(s)))
	for b.Loop() {
		if _, err := BuildUDP(buf, s); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBuildUDPIPv4(b *testing.B) { benchBuild(b, seedRequestSpec()) }

func BenchmarkBuildUDPIPv6(b *testing.B) { benchBuild(b, udpSpecs()["v6/vlan1/test"]) }

func BenchmarkBuildUDPIPv4_1k(b *testing.B) { benchBuild(b, udpSpecs()["v4/vlan0/1k"]) }

// BenchmarkTemplateSetSrc is the load generator's per-packet rewrite: new
// source address and port on a template, checksums updated incrementally.
func BenchmarkTemplateSetSrc(b *testing.B) {
	f := clone(seedRequest)
	var p Packet
	if p.Decode(f) != ReasonOK {
		b.Fatal("decode failed")
	}
	base := seedClient.Addr().As4()
	b.ReportAllocs()
	b.SetBytes(int64(p.Len()))
	i := 0
	for b.Loop() {
		i++
		a := base
		a[3] = byte(i)
		p.SetSrcChecksummed(f, netip.AddrPortFrom(netip.AddrFrom4(a), uint16(i)))
	}
	if p.VerifyChecksums(f) != ReasonOK {
		b.Fatal("checksums broken")
	}
}

// BenchmarkGopacketParser decodes the same frame with gopacket's
// DecodingLayerParser (preallocated layers, its fastest mode), for scale.
func BenchmarkGopacketParser(b *testing.B) {
	var eth layers.Ethernet
	var ip4 layers.IPv4
	var udp layers.UDP
	var payload gopacket.Payload
	parser := gopacket.NewDecodingLayerParser(layers.LayerTypeEthernet, &eth, &ip4, &udp, &payload)
	decoded := make([]gopacket.LayerType, 0, 4)
	f := seedRequest
	b.ReportAllocs()
	b.SetBytes(int64(len(f)))
	for b.Loop() {
		if err := parser.DecodeLayers(f, &decoded); err != nil || len(decoded) != 4 {
			b.Fatal(err, decoded)
		}
	}
}
