package frame

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/pktengine/pktengine/proto"
)

// checkDecode decodes f, compares every field with the reference decoder,
// checks the offsets' invariants, exercises the views the verdict allows
// and compares checksum verdicts with the reference. It is the body of
// FuzzDecode and of the mutation test.
func checkDecode(t *testing.T, f []byte) {
	t.Helper()
	orig := clone(f)
	var p Packet
	r := p.Decode(f)
	want := refDecode(f)
	if !bytes.Equal(f, orig) {
		t.Fatalf("Decode modified the frame")
	}
	if r != want.reason {
		t.Fatalf("Decode = %v, reference %v\nframe %x", r, want.reason, f)
	}
	if r >= NumReasons || r.String() == "" {
		t.Fatalf("bad reason %d", r)
	}
	if int(p.NumVLANs) != len(want.vlans) {
		t.Fatalf("NumVLANs = %d, reference %d", p.NumVLANs, len(want.vlans))
	}
	for i := range want.vlans {
		if p.VLANs[i] != want.vlans[i] {
			t.Fatalf("VLAN %d = %+v, reference %+v", i, p.VLANs[i], want.vlans[i])
		}
	}
	if want.etherType >= 0 && int(p.EtherType) != want.etherType {
		t.Fatalf("EtherType = %#x, reference %#x", p.EtherType, want.etherType)
	}
	if want.l3 >= 0 && int(p.L3Off) != want.l3 {
		t.Fatalf("L3Off = %d, reference %d", p.L3Off, want.l3)
	}
	if int(p.IPVersion) != want.ipVersion {
		t.Fatalf("IPVersion = %d, reference %d", p.IPVersion, want.ipVersion)
	}
	if want.end >= 0 && int(p.End) != want.end {
		t.Fatalf("End = %d, reference %d", p.End, want.end)
	}
	if want.protocol >= 0 && int(p.Protocol) != want.protocol {
		t.Fatalf("Protocol = %d, reference %d", p.Protocol, want.protocol)
	}
	if want.l4 >= 0 {
		if int(p.L4Off) != want.l4 || int(p.PayloadOff) != want.payload || int(p.L4End) != want.l4end {
			t.Fatalf("L4Off/PayloadOff/L4End = %d/%d/%d, reference %d/%d/%d",
				p.L4Off, p.PayloadOff, p.L4End, want.l4, want.payload, want.l4end)
		}
	}
	var wf Flags
	for _, c := range []struct {
		on bool
		f  Flags
	}{
		{want.udp, FlagUDP}, {want.fragment, FlagFragment}, {want.more, FlagMoreFragments},
		{want.partial, FlagUDPIncomplete}, {want.options, FlagIPv4Options}, {want.ext, FlagIPv6ExtHeaders},
		{want.routing, FlagIPv6Routing}, {want.end >= 0 && want.end < len(f), FlagPadded},
	} {
		if c.on {
			wf |= c.f
		}
	}
	if p.Flags != wf {
		t.Fatalf("Flags = %08b, reference %08b (reason %v)", p.Flags, wf, r)
	}
	for _, o := range []uint32{p.L3Off, p.L4Off, p.PayloadOff, p.L4End, p.End} {
		if int(o) > len(f) {
			t.Fatalf("offset %d past the frame (%d bytes): %+v", o, len(f), p)
		}
	}
	if r.Malformed() {
		return
	}

	// Offsets of an accepted frame are ordered and in bounds.
	if !(p.L3Off <= p.L4Off && p.L4Off <= p.PayloadOff && p.PayloadOff <= p.L4End &&
		p.L4End <= p.End && int(p.End) <= len(f)) {
		t.Fatalf("offsets out of order: %+v len %d", p, len(f))
	}
	// The views the verdict allows can be read without panicking.
	_ = p.Src(f)
	_ = p.Dst(f)
	_ = p.Payload(f)
	_ = p.Datagram(f)
	e := p.Ethernet(f)
	_, _ = e.Source(), e.Destination()
	switch p.IPVersion {
	case 4:
		ip := p.IPv4(f)
		if !ip.IsValid() {
			t.Fatalf("IPv4 view of accepted frame not valid")
		}
		_ = ip.Options()
		_ = ip.Payload()
		got := p.VerifyIPv4HeaderChecksum(f)
		ok := refSum(f[p.L3Off:p.L3Off+uint32(ip.HeaderLength())]) == 0xffff
		if (got == ReasonOK) != ok {
			t.Fatalf("VerifyIPv4HeaderChecksum = %v, reference valid=%v", got, ok)
		}
		if ip.IsChecksumValid() != ok {
			t.Fatalf("IPv4.IsChecksumValid = %v, reference %v", !ok, ok)
		}
	case 6:
		ip := p.IPv6(f)
		if !ip.IsValid() {
			t.Fatalf("IPv6 view of accepted frame not valid")
		}
		c, cr := ip.WalkExtensionHeaders()
		if cr != ReasonOK && cr != ReasonNonFirstFragment {
			t.Fatalf("WalkExtensionHeaders on accepted packet: %v", cr)
		}
		if cr == ReasonOK && int(p.L3Off)+c.Offset != int(p.L4Off) {
			t.Fatalf("walk offset %d vs L4Off %d", c.Offset, p.L4Off)
		}
	}
	switch r {
	case ReasonOK, ReasonUDPFragment:
		u := p.UDP(f)
		if len(u) < UDPHeaderLen {
			t.Fatalf("UDP view too short")
		}
		if r == ReasonOK {
			if !u.IsValid() || int(u.Length()) != len(u) {
				t.Fatalf("UDP view: length %d, view %d", u.Length(), len(u))
			}
			var src, dst []byte
			if p.IPVersion == 4 {
				src, dst = p.IPv4(f).SourceSlice(), p.IPv4(f).DestinationSlice()
			} else {
				src, dst = p.IPv6(f).SourceSlice(), p.IPv6(f).DestinationSlice()
			}
			wantCk := refUDPChecksumOK(p.IPVersion == 6, src, dst, u)
			if got := p.VerifyUDPChecksum(f); got != wantCk {
				t.Fatalf("VerifyUDPChecksum = %v, reference %v", got, wantCk)
			}
			checkReply(t, f, &p)
		} else if got := p.VerifyUDPChecksum(f); got != ReasonUDPFragment {
			t.Fatalf("VerifyUDPChecksum(fragment) = %v", got)
		}
	case ReasonARP:
		a := p.ARP(f)
		if !a.IsValid() {
			t.Fatalf("ARP view not valid")
		}
		_, _, _, _ = a.SenderMAC(), a.SenderIP(), a.TargetMAC(), a.TargetIP()
	case ReasonICMPv4:
		m := p.ICMPv4(f)
		_, _, _ = m.Type(), m.Code(), m.IsChecksumValid()
	case ReasonICMPv6:
		m := p.ICMPv6(f)
		_, _, _ = m.Type(), m.Code(), m.IsChecksumValid(p.IPv6(f).PseudoHeaderSum(proto.IPProtoICMPv6, uint32(len(m))))
		if m.IsNeighborMessage() {
			_ = m.NDPTarget()
			_, _ = m.SourceLinkAddress()
			_, _ = m.TargetLinkAddress()
			_ = m.NDPOptionsValid()
		}
		var out [1500]byte
		_, _ = AnswerNeighborSolicitation(out[:], f, &p, macB)
	}
}

// checkReply rewrites a copy of an accepted UDP frame with ReplyInPlace
// and checks that the checksum verdicts did not change, that addresses
// and ports are swapped, and that replying to the reply gives the request
// back (TTL aside).
func checkReply(t *testing.T, f []byte, p *Packet) {
	t.Helper()
	g := clone(f)
	n, err := ReplyInPlace(g, p, 64)
	if p.Flags&(FlagIPv4Options|FlagIPv6ExtHeaders) != 0 {
		if err != ErrNotInPlace {
			t.Fatalf("ReplyInPlace with options/ext headers: %v", err)
		}
		return
	}
	src, dst := p.SrcAddr(f), p.DstAddr(f)
	group := func(a netip.Addr) bool { return a.IsMulticast() || a.Is4() && a.As4()[0] >= 240 }
	if f[0]&1 != 0 || group(src) || group(dst) {
		if err != ErrNotUnicast || !bytes.Equal(g, f) {
			t.Fatalf("ReplyInPlace to a group: %v", err)
		}
		return
	}
	if err != nil {
		t.Fatalf("ReplyInPlace: %v", err)
	}
	var q Packet
	if r := q.Decode(g[:n]); r != ReasonOK {
		t.Fatalf("reply decodes as %v", r)
	}
	if q.Src(g) != p.Dst(f) || q.Dst(g) != p.Src(f) {
		t.Fatalf("reply %v -> %v, request %v -> %v", q.Src(g), q.Dst(g), p.Src(f), p.Dst(f))
	}
	if a, b := p.VerifyChecksums(f), q.VerifyChecksums(g); a != b {
		t.Fatalf("checksum verdict changed by ReplyInPlace: %v -> %v", a, b)
	}
	ttl := f[p.L3Off+ipv4TTL]
	if p.IPVersion == 6 {
		ttl = f[p.L3Off+ipv6HopLimit]
	}
	if ttl == 0 || f[6]&1 != 0 {
		return // ReplyInPlace reads 0 as DefaultTTL; a group source MAC has no reply
	}
	if _, err := ReplyInPlace(g, &q, ttl); err != nil {
		t.Fatal(err)
	}
	if p.IPVersion == 4 && IPv4(f[p.L3Off:]).Checksum() == 0xffff && IPv4(g[q.L3Off:]).Checksum() == 0 {
		// RFC 1624 equation 3 turns a -0 checksum into +0 when the TTL
		// goes back; both are the same sum. Not a difference.
		binary.BigEndian.PutUint16(g[q.L3Off+ipv4Checksum:], 0xffff)
	}
	if !bytes.Equal(g[:n], f[:n]) {
		t.Fatalf("reply of reply differs:\n got %x\nwant %x", g[:n], f[:n])
	}
}

func FuzzDecode(f *testing.F) {
	for _, s := range sampleFrames(f) {
		f.Add(s.frame)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		checkDecode(t, b)
	})
}

// TestDecodeMutations runs checkDecode on deterministic random damage of
// every sample, so a plain `go test` covers what the fuzzer explores.
func TestDecodeMutations(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	samples := sampleFrames(t)
	for _, s := range samples {
		checkDecode(t, s.frame)
	}
	for s, g := range mutations(rng, samples) {
		t.Run("", func(t *testing.T) {
			defer func() {
				if e := recover(); e != nil {
					t.Fatalf("%s mutated: panic %v\nframe %x", s.name, e, g)
				}
			}()
			checkDecode(t, g)
		})
		if t.Failed() {
			t.Fatalf("sample %s, mutated frame %x", s.name, g)
		}
	}
}
