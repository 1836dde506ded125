package frame

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"net/netip"
	"sync"
	"syscall"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/ip4defrag"
	"github.com/gopacket/gopacket/ip6defrag"
	"github.com/gopacket/gopacket/layers"

	"github.com/pktengine/pktengine/proto"
)

// buildAll writes every frame of s for mtu with UDPFragmenter.
func buildAll(t testing.TB, s *UDPSpec, mtu int, id uint32) [][]byte {
	t.Helper()
	var f UDPFragmenter
	if err := f.Reset(s, mtu, id); err != nil {
		t.Fatalf("Reset: %v", err)
	}
	out := make([][]byte, f.Fragments())
	for i := range out {
		out[i] = make([]byte, f.FrameLen(i)+7) // a little slack: Build must return the length
		n, err := f.Build(out[i], i)
		if err != nil || n != f.FrameLen(i) {
			t.Fatalf("Build %d: %d, %v (FrameLen %d)", i, n, err, f.FrameLen(i))
		}
		out[i] = out[i][:n]
	}
	return out
}

// checkFragments checks the frames of s against the rules of RFC 791 and
// RFC 8200 with Decode and the views, and returns the UDP datagram they
// carry, put together naively.
func checkFragments(t testing.TB, s *UDPSpec, mtu int, id uint32, frames [][]byte) []byte {
	t.Helper()
	var whole []byte
	for i, f := range frames {
		var p Packet
		r := p.Decode(f)
		last := i == len(frames)-1
		ipLen := int(p.End - p.L3Off)
		if ipLen > mtu {
			t.Fatalf("fragment %d: %d bytes of IP, MTU %d", i, ipLen, mtu)
		}
		if len(frames) == 1 {
			if r != ReasonOK || p.IsFragment() || p.VerifyChecksums(f) != ReasonOK {
				t.Fatalf("unfragmented datagram: %v %v", r, p.VerifyChecksums(f))
			}
			want := make([]byte, UDPFrameLen(s))
			BuildUDP(want, s)
			if !bytes.Equal(f, want) {
				t.Fatal("single frame differs from BuildUDP's")
			}
			return f[p.L4Off:p.L4End]
		}
		if !p.IsFragment() || (p.Flags&FlagMoreFragments != 0) == last {
			t.Fatalf("fragment %d of %d: flags %b", i, len(frames), p.Flags)
		}
		if i == 0 && r != ReasonUDPFragment || i > 0 && r != ReasonNonFirstFragment {
			t.Fatalf("fragment %d: %v", i, r)
		}
		if !bytes.Equal(p.Ethernet(f), frames[0][:p.L3Off]) {
			t.Fatalf("fragment %d: link header differs", i)
		}
		var off int
		var data []byte
		if p.IPVersion == 4 {
			ip := p.IPv4(f)
			ttl := s.TTL
			if ttl == 0 {
				ttl = DefaultTTL
			}
			if !ip.IsChecksumValid() || ip.ID() != s.ID || ip.DontFragment() || ip.TTL() != ttl ||
				ip.Protocol() != proto.IPProtoUDP || ip.Source() != s.Src.Addr() || ip.Destination() != s.Dst.Addr() {
				t.Fatalf("fragment %d: IPv4 header %x", i, ip[:ip.HeaderLength()])
			}
			// Options: all in the first, only the copied ones later
			// (RFC 791), the others NOPs so that the length stays.
			opts := ip.Options()
			if len(opts) != len(s.Options) {
				t.Fatalf("fragment %d: %d bytes of options, want %d", i, len(opts), len(s.Options))
			}
			if i == 0 && !bytes.Equal(opts, s.Options) {
				t.Fatalf("first fragment options %x, want %x", opts, s.Options)
			}
			for rest := opts; i > 0 && len(rest) > 0; {
				typ, o, next, ok := NextIPv4Option(rest)
				if !ok {
					break
				}
				if typ != IPv4OptionNOP && typ&0x80 == 0 {
					t.Fatalf("fragment %d carries option %d, which is not copied", i, typ)
				}
				_ = o
				rest = next
			}
			off = int(ip.FragmentOffset())
			data = ip.Payload()
		} else {
			ip := p.IPv6(f)
			c, _ := ip.WalkExtensionHeaders()
			if !c.HasFragment || c.FragmentID != id || ip.Source() != s.Src.Addr() || ip.Destination() != s.Dst.Addr() ||
				ip.FlowLabel() != s.FlowLabel&0xfffff || ip.TrafficClass() != s.TOS {
				t.Fatalf("fragment %d: IPv6 header %+v", i, c)
			}
			if c.ExtHeaders != len(s.ExtHeaders)+1 && i == 0 {
				t.Fatalf("fragment %d: %d extension headers", i, c.ExtHeaders)
			}
			off = int(c.FragmentOffset)
			data = f[p.L4Off:p.End]
			if i == 0 {
				data = f[int(p.L3Off)+IPv6HeaderLen+extLen(s.ExtHeaders)+IPv6FragmentHeaderLen : p.End]
			}
		}
		if off != len(whole) || off%8 != 0 || !last && len(data)%8 != 0 {
			t.Fatalf("fragment %d at %d with %d bytes; %d so far", i, off, len(data), len(whole))
		}
		whole = append(whole, data...)
	}
	return whole
}

// checkUDPDatagram checks a UDP datagram against s with the naive
// checksum of ref_test.go.
func checkUDPDatagram(t testing.TB, s *UDPSpec, u []byte) {
	t.Helper()
	if len(u) != UDPHeaderLen+len(s.Payload) || !bytes.Equal(u[UDPHeaderLen:], s.Payload) {
		t.Fatalf("datagram of %d bytes, want %d", len(u), UDPHeaderLen+len(s.Payload))
	}
	h := UDP(u)
	if h.SourcePort() != s.Src.Port() || h.DestinationPort() != s.Dst.Port() || int(h.Length()) != len(u) {
		t.Fatalf("UDP header %x", u[:8])
	}
	src, dst := s.Src.Addr().AsSlice(), s.Dst.Addr().AsSlice()
	if s.NoChecksum && s.Src.Addr().Is4() {
		if h.Checksum() != 0 {
			t.Fatal("checksum present")
		}
		return
	}
	if r := refUDPChecksumOK(s.Src.Addr().Is6(), src, dst, u); r != ReasonOK {
		t.Fatalf("checksum: %v", r)
	}
}

// defragGopacket reassembles frames with gopacket's ip4defrag or
// ip6defrag, an independent implementation, and returns the UDP datagram.
func defragGopacket(t testing.TB, frames [][]byte) []byte {
	t.Helper()
	d4 := ip4defrag.NewIPv4Defragmenter()
	d6 := ip6defrag.NewIPv6Defragmenter()
	for i, f := range frames {
		pkt := gopacket.NewPacket(f, layers.LayerTypeEthernet, gopacket.Default)
		if ip, ok := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4); ok {
			out, err := d4.DefragIPv4(ip)
			if err != nil {
				t.Fatalf("ip4defrag: fragment %d: %v", i, err)
			}
			if out != nil {
				if i != len(frames)-1 {
					t.Fatalf("ip4defrag complete after %d of %d fragments", i+1, len(frames))
				}
				return out.Payload
			}
			continue
		}
		ip, _ := pkt.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
		fh, _ := pkt.Layer(layers.LayerTypeIPv6Fragment).(*layers.IPv6Fragment)
		if ip == nil || fh == nil {
			t.Fatalf("fragment %d: gopacket finds no IPv6 fragment: %v", i, pkt)
		}
		if out := d6.DefragIPv6(ip, fh); out != nil {
			if out.NextHeader != layers.IPProtocolUDP || i != len(frames)-1 {
				t.Fatalf("ip6defrag: next header %v after %d of %d", out.NextHeader, i+1, len(frames))
			}
			return out.Payload
		}
	}
	t.Fatal("gopacket did not complete the datagram")
	return nil
}

// TestUDPFragmenter builds datagrams of the sizes that matter over the
// MTUs that matter and checks the fragments by the RFCs and by gopacket's
// defragmenters.
func TestUDPFragmenter(t *testing.T) {
	hbh := []IPv6ExtHeader{{Type: proto.IPProtoHopByHop, Data: []byte{5, 2, 0, 0, 1, 0}}}
	opts := []byte{IPv4OptionRouterAlert, 4, 0, 0, IPv4OptionRecordRoute, 7, 4, 0, 0, 0, 0, IPv4OptionEOL} // RA is copied, RR is not
	for _, c := range []struct {
		src, dst netip.AddrPort
		sizes    []int
		mtus     []int
		opts     []byte
		ext      []IPv6ExtHeader
		vlans    []VLANTag
	}{
		{v4A, v4B, []int{0, 1472, 1473, 1480, 1481, 2952, 2953, 8192, 30000, MaxUDPPayloadIPv4}, []int{1500, 9000, 576}, nil, nil, nil},
		{v4A, v4B, []int{100, 2000}, []int{68}, nil, nil, nil},
		{v4A, v4B, []int{3000, MaxUDPPayloadIPv4 - 12}, []int{1500}, opts, nil, []VLANTag{{TCI: 5}}},
		{v6A, v6B, []int{0, 1232, 1233, 1452, 1453, 8192, MaxUDPPayloadIPv4, MaxUDPPayloadIPv6}, []int{1500, 1280, 9000}, nil, nil, nil},
		{v6A, v6B, []int{5000, MaxUDPPayloadIPv6 - 8}, []int{1280}, nil, hbh, []VLANTag{{TCI: 1}, {TCI: 2}}},
	} {
		for _, n := range c.sizes {
			for _, mtu := range c.mtus {
				s := &UDPSpec{SrcMAC: macA, DstMAC: macB, Src: c.src, Dst: c.dst, ID: uint16(n), TOS: 0x20, FlowLabel: 0x12345,
					Options: c.opts, ExtHeaders: c.ext, VLANs: c.vlans, Payload: make([]byte, n)}
				for i := range s.Payload {
					s.Payload[i] = byte(i*31 + n)
				}
				frames := buildAll(t, s, mtu, 0xfeedf00d)
				u := checkFragments(t, s, mtu, 0xfeedf00d, frames)
				checkUDPDatagram(t, s, u)
				// The fewest fragments the MTU allows.
				l3 := IPv4MinHeaderLen + len(c.opts)
				if c.src.Addr().Is6() {
					l3 = IPv6HeaderLen + extLen(c.ext) + IPv6FragmentHeaderLen
				}
				if len(frames) > 1 {
					per := (mtu - l3) &^ 7
					if want := (UDPHeaderLen + n + per - 1) / per; len(frames) != want {
						t.Errorf("%d bytes over MTU %d: %d fragments, want %d", n, mtu, len(frames), want)
					}
					if g := defragGopacket(t, frames); !bytes.Equal(g, u) {
						t.Errorf("%d bytes over MTU %d: gopacket reassembles %d bytes that differ", n, mtu, len(g))
					}
				}
			}
		}
	}
}

// TestUDPFragmenterRandom: random specs, sizes and MTUs against gopacket.
func TestUDPFragmenterRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	for range 300 {
		s := randomSpec(rng)
		s.DontFragment = false
		limit := MaxUDPPayloadIPv4 - len(s.Options)
		mtu := 68 + rng.IntN(9000)
		if s.Src.Addr().Is6() {
			limit = MaxUDPPayloadIPv6
			mtu = IPv6MinMTU + rng.IntN(8000)
		}
		s.Payload = make([]byte, rng.IntN(limit+1))
		for i := range s.Payload {
			s.Payload[i] = byte(rng.Uint32())
		}
		id := rng.Uint32()
		frames := buildAll(t, s, mtu, id)
		u := checkFragments(t, s, mtu, id, frames)
		checkUDPDatagram(t, s, u)
		if len(frames) > 1 && !s.NoChecksum {
			if g := defragGopacket(t, frames); !bytes.Equal(g, u) {
				t.Fatalf("gopacket reassembles differently")
			}
		}
	}
}

// TestUDPFragmenterErrors: the limits, EMSGSIZE as a kernel socket says
// it, and nothing written.
func TestUDPFragmenterErrors(t *testing.T) {
	var f UDPFragmenter
	for _, c := range []struct {
		s    *UDPSpec
		mtu  int
		err  error
		size bool // EMSGSIZE
	}{
		{&UDPSpec{Src: v4A, Dst: v4B, Payload: make([]byte, MaxUDPPayloadIPv4+1)}, 1500, ErrPayloadTooLarge, true},
		{&UDPSpec{Src: v4A, Dst: v4B, Payload: make([]byte, MaxUDPPayloadIPv4-3), Options: make([]byte, 4)}, 1500, ErrPayloadTooLarge, true},
		{&UDPSpec{Src: v6A, Dst: v6B, Payload: make([]byte, MaxUDPPayloadIPv6+1)}, 1500, ErrPayloadTooLarge, true},
		{&UDPSpec{Src: v6A, Dst: v6B, Payload: make([]byte, MaxUDPPayloadIPv6), ExtHeaders: []IPv6ExtHeader{{Type: proto.IPProtoDstOpts}}}, 1500, ErrPayloadTooLarge, true},
		{&UDPSpec{Src: v4A, Dst: v4B, Payload: make([]byte, 1473), DontFragment: true}, 1500, ErrDontFragment, true},
		{&UDPSpec{Src: v4A, Dst: v4B, Payload: make([]byte, 10)}, 67, ErrMTU, false},
		{&UDPSpec{Src: v6A, Dst: v6B, Payload: make([]byte, 10)}, 1279, ErrMTU, false},
		{&UDPSpec{Src: v4A, Dst: v6B}, 1500, ErrAddressFamily, false},
		{&UDPSpec{Src: v6A, Dst: v6B, ExtHeaders: []IPv6ExtHeader{{Type: proto.IPProtoFragment, Data: make([]byte, 6)}}}, 1500, ErrExtHeaders, false},
	} {
		err := f.Reset(c.s, c.mtu, 0)
		if err != c.err || errors.Is(err, syscall.EMSGSIZE) != c.size {
			t.Errorf("%v", err)
		}
		if _, err := f.Build(make([]byte, 2048), 0); err == nil {
			t.Errorf("Build after failed Reset (%v) succeeded", c.err)
		}
	}
	// The largest datagrams pass.
	for _, s := range []*UDPSpec{
		{Src: v4A, Dst: v4B, Payload: make([]byte, MaxUDPPayloadIPv4)},
		{Src: v6A, Dst: v6B, Payload: make([]byte, MaxUDPPayloadIPv6)},
		{Src: v4A, Dst: v4B, Payload: make([]byte, 1472), DontFragment: true},
	} {
		if err := f.Reset(s, 1500, 0); err != nil {
			t.Errorf("%d bytes: %v", len(s.Payload), err)
		}
	}
	if err := f.Reset(&UDPSpec{Src: v4A, Dst: v4B, Payload: make([]byte, 3000)}, 1500, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Build(make([]byte, 2048), 3); err != ErrFragmentIdx {
		t.Errorf("index past the end: %v", err)
	}
	if _, err := f.Build(make([]byte, 2048), -1); err != ErrFragmentIdx {
		t.Errorf("negative index: %v", err)
	}
	if _, err := f.Build(make([]byte, 100), 0); err != ErrShortBuffer {
		t.Errorf("short buffer: %v", err)
	}
	if f.FrameLen(3) != -1 || f.FrameLen(0) != 14+1500 || !f.Fragmented() {
		t.Errorf("FrameLen %d %d", f.FrameLen(3), f.FrameLen(0))
	}
}

// TestFragmentIDs: successive identifications for one pair are
// consecutive from an unpredictable start; other pairs and other
// generators start elsewhere.
func TestFragmentIDs(t *testing.T) {
	g, h := NewFragmentIDs(), NewFragmentIDs()
	a, b, c := v6A.Addr(), v6B.Addr(), netip.MustParseAddr("fd00::99")
	first := g.Next(a, b)
	for i := uint32(1); i < 100; i++ {
		if id := g.Next(a, b); id != first+i {
			t.Fatalf("id %d: %#x, want %#x", i, id, first+i)
		}
	}
	// Other pairs, and the same pair in another generator, are
	// unrelated (equal by chance once in 2^32).
	if g.Next(a, c) == first+100 || g.Next(b, a) == first+100 || h.Next(a, b) == first {
		t.Error("identifications related across pairs or generators")
	}
	// Concurrent use (run with -race).
	var wg sync.WaitGroup
	seen := make([][]uint32, 4)
	for w := range seen {
		wg.Go(func() {
			for range 1000 {
				seen[w] = append(seen[w], h.Next(a, c))
			}
		})
	}
	wg.Wait()
	all := map[uint32]bool{}
	for _, s := range seen {
		for _, id := range s {
			if all[id] {
				t.Fatalf("identification %#x drawn twice", id)
			}
			all[id] = true
		}
	}
	if n := testing.AllocsPerRun(100, func() { g.Next(a, b) }); n != 0 {
		t.Errorf("Next: %v allocations", n)
	}
}

// TestFrameFragmenter fragments complete frames as they are, checks each
// fragment by the RFCs' rules and reassembles them with gopacket.
func TestFrameFragmenter(t *testing.T) {
	opts := []byte{IPv4OptionRouterAlert, 4, 0, 0, IPv4OptionRecordRoute, 7, 4, 0, 0, 0, 0, IPv4OptionEOL}
	hbh := IPv6ExtHeader{Type: proto.IPProtoHopByHop, Data: []byte{5, 2, 0, 0, 1, 0}}
	rt := IPv6ExtHeader{Type: proto.IPProtoRouting, Data: append([]byte{4, 0, 0, 0, 0, 0}, make([]byte, 16)...)} // SRH-like, segments left 0
	dst := IPv6ExtHeader{Type: proto.IPProtoDstOpts, Data: make([]byte, 6)}
	for _, c := range []struct {
		name     string
		s        *UDPSpec
		mtus     []int
		unfrag   int // extension-header bytes repeated in every fragment
		fragable int // extension-header bytes after the Fragment header
	}{
		{"ipv4", &UDPSpec{Src: v4A, Dst: v4B, ID: 5}, []int{1500, 576, 9000}, 0, 0},
		{"ipv4 options", &UDPSpec{Src: v4A, Dst: v4B, Options: opts, VLANs: []VLANTag{{TCI: 9}}}, []int{1500, 68}, 0, 0},
		{"ipv6", &UDPSpec{Src: v6A, Dst: v6B}, []int{1500, 1280}, 0, 0},
		{"ipv6 hbh", &UDPSpec{Src: v6A, Dst: v6B, ExtHeaders: []IPv6ExtHeader{hbh}}, []int{1500}, 8, 0},
		{"ipv6 dst opts", &UDPSpec{Src: v6A, Dst: v6B, ExtHeaders: []IPv6ExtHeader{dst}}, []int{1500}, 0, 8},
		{"ipv6 hbh routing dst", &UDPSpec{Src: v6A, Dst: v6B, ExtHeaders: []IPv6ExtHeader{hbh, dst, rt, dst}}, []int{1280}, 8 + 8 + 24, 8},
	} {
		for _, n := range []int{100, 3000, MaxUDPPayloadIPv4 - len(c.s.Options) - len(c.s.ExtHeaders)*24} {
			s := *c.s
			s.SrcMAC, s.DstMAC = macA, macB
			s.Payload = make([]byte, n)
			for i := range s.Payload {
				s.Payload[i] = byte(i*5 + n)
			}
			whole := mustBuild(t, &s)
			var p Packet
			if r := p.Decode(whole); r != ReasonOK {
				t.Fatalf("%s: %v", c.name, r)
			}
			for _, mtu := range c.mtus {
				var f FrameFragmenter
				if err := f.Reset(whole, &p, mtu, 0xa1b2c3d4); err != nil {
					t.Fatalf("%s %d/%d: %v", c.name, n, mtu, err)
				}
				frames := make([][]byte, f.Fragments())
				for i := range frames {
					frames[i] = make([]byte, f.FrameLen(i))
					if m, err := f.Build(frames[i], i); err != nil || m != len(frames[i]) {
						t.Fatalf("%s: Build %d: %d %v", c.name, i, m, err)
					}
				}
				if len(frames) == 1 {
					if !bytes.Equal(frames[0], whole) {
						t.Fatalf("%s: the unfragmented frame changed", c.name)
					}
					continue
				}
				var data []byte
				for i, fr := range frames {
					var q Packet
					q.Decode(fr)
					if !q.IsFragment() || int(q.End-q.L3Off) > mtu || (q.Flags&FlagMoreFragments != 0) != (i < len(frames)-1) ||
						!bytes.Equal(fr[:q.L3Off], whole[:p.L3Off]) {
						t.Fatalf("%s %d/%d: fragment %d: %x", c.name, n, mtu, i, fr[:min(len(fr), 80)])
					}
					if q.IPVersion == 4 {
						ip := q.IPv4(fr)
						if !ip.IsChecksumValid() || ip.ID() != 0xc3d4 || int(ip.FragmentOffset()) != len(data) || len(ip.Options()) != len(c.s.Options) {
							t.Fatalf("%s: fragment %d header %x", c.name, i, ip[:ip.HeaderLength()])
						}
						data = append(data, ip.Payload()...)
						continue
					}
					ip := q.IPv6(fr)
					hdr := IPv6HeaderLen + c.unfrag
					fh := IPv6Fragment(ip[hdr:])
					ch, _ := ip.WalkExtensionHeaders()
					if !ch.HasFragment || ch.FragmentID != 0xa1b2c3d4 || int(fh.FragmentOffset()) != len(data) ||
						i == 0 && ch.Protocol != proto.IPProtoUDP || i > 0 && ch.Offset != hdr+IPv6FragmentHeaderLen {
						t.Fatalf("%s: fragment %d: %x", c.name, i, ip[:hdr+8])
					}
					data = append(data, ip[hdr+IPv6FragmentHeaderLen:]...)
				}
				// The fragmentable part is the original's, byte for byte.
				want := whole[int(p.L4Off)-c.fragable:]
				if q := p.L3Off; p.IPVersion == 4 {
					want = whole[int(q)+IPv4(whole[q:]).HeaderLength():]
				}
				if !bytes.Equal(data, want) {
					t.Fatalf("%s %d/%d: fragments carry %d bytes that differ from the %d of the datagram", c.name, n, mtu, len(data), len(want))
				}
				if c.unfrag == 0 && c.fragable == 0 {
					if g := defragGopacket(t, frames); !bytes.Equal(g, whole[p.L4Off:p.End]) {
						t.Fatalf("%s %d/%d: gopacket reassembles differently", c.name, n, mtu)
					}
				}
			}
		}
	}
	// Refusals.
	var f FrameFragmenter
	df := mustBuild(t, &UDPSpec{Src: v4A, Dst: v4B, DontFragment: true, Payload: make([]byte, 3000)})
	var p Packet
	p.Decode(df)
	if err := f.Reset(df, &p, 1500, 1); err != ErrDontFragment {
		t.Errorf("DF: %v", err)
	}
	frag := buildAll(t, &UDPSpec{Src: v6A, Dst: v6B, Payload: make([]byte, 3000)}, 1500, 1)[0]
	p.Decode(frag)
	if err := f.Reset(frag, &p, 1500, 1); err != ErrNotInPlace {
		t.Errorf("a fragment: %v", err)
	}
	big := mustBuild(t, &UDPSpec{Src: v4A, Dst: v4B, Payload: make([]byte, MaxUDPPayloadIPv4)})
	var bp Packet
	bp.Decode(big)
	buf := make([]byte, 2048)
	if n := testing.AllocsPerRun(20, func() {
		if err := f.Reset(big, &bp, 1500, 1); err != nil || f.Fragments() != 45 {
			t.Fatal(err)
		}
		for i := range f.Fragments() {
			f.Build(buf, i)
		}
	}); n != 0 {
		t.Errorf("%v allocations", n)
	}
}
