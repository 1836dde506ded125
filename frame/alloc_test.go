package frame

import (
	"net/netip"
	"testing"
)

// The receive and reply paths must not allocate: a packet engine touches
// them millions of times a second.
func TestZeroAllocs(t *testing.T) {
	v4 := clone(seedRequest)
	v6 := mustBuild(t, udpSpecs()["v6/vlan2/test"])
	ext := mustBuild(t, udpSpecs()["v6ext/vlan1"])
	arp := clone(sampleFrames(t)[0].frame)
	for _, s := range sampleFrames(t) {
		if s.name == "arp/request" {
			arp = clone(s.frame)
		}
	}
	ns := neighborSolicitation(t, v6A.Addr(), v6B.Addr(), true)
	out := make([]byte, 2048)
	var p Packet
	var sink netip.AddrPort
	spec := seedRequestSpec()
	src := netip.MustParseAddrPort("198.18.7.9:5555")
	src6 := netip.MustParseAddrPort("[fd00::7:9]:5555")
	big := &UDPSpec{Src: v6A, Dst: v6B, Payload: make([]byte, MaxUDPPayloadIPv6)}
	var frag UDPFragmenter

	cases := []struct {
		name string
		fn   func()
	}{
		{"Decode IPv4", func() { p.Decode(v4) }},
		{"Decode VLAN IPv6", func() { p.Decode(v6) }},
		{"Decode IPv6 ext", func() { p.Decode(ext) }},
		{"Src/Dst IPv4", func() { p.Decode(v4); sink = p.Src(v4); sink = p.Dst(v4) }},
		{"Src/Dst IPv6", func() { p.Decode(v6); sink = p.Src(v6); sink = p.Dst(v6) }},
		{"VerifyChecksums IPv4", func() { p.Decode(v4); p.VerifyChecksums(v4) }},
		{"VerifyChecksums IPv6", func() { p.Decode(v6); p.VerifyChecksums(v6) }},
		{"ReplyInPlace IPv4", func() { p.Decode(v4); ReplyInPlace(v4, &p, 64) }},
		{"ReplyInPlace IPv6", func() { p.Decode(v6); ReplyInPlace(v6, &p, 64) }},
		{"FillUDPChecksum", func() { p.Decode(v6); p.FillUDPChecksum(v6) }},
		{"SetSrcChecksummed", func() { p.Decode(v4); p.SetSrcChecksummed(v4, src); p.SetSrcChecksummed(v4, seedClient) }},
		{"SetSrcChecksummed IPv6", func() { p.Decode(v6); p.SetDstChecksummed(v6, src6); p.SetDstChecksummed(v6, v6B) }},
		{"ARPReplyInPlace", func() { p.Decode(arp); ARPReplyInPlace(arp, &p, macB) }},
		{"AnswerNeighborSolicitation", func() { p.Decode(ns); AnswerNeighborSolicitation(out, ns, &p, macB) }},
		{"BuildUDP", func() { BuildUDP(out, spec) }},
		{"UDPFragmenter", func() {
			frag.Reset(big, 1500, 1)
			for i := range frag.Fragments() {
				frag.Build(out, i)
			}
		}},
		{"Reason.String", func() { _ = ReasonUDPBadChecksum.String() }},
	}
	for _, c := range cases {
		if n := testing.AllocsPerRun(100, c.fn); n != 0 {
			t.Errorf("%s: %v allocations per run", c.name, n)
		}
	}
	_ = sink
}
