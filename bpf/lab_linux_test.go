package bpf_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/mdlayher/packet"
	xbpf "golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/pktengine/pktengine/bpf"
	"github.com/pktengine/pktengine/frame"
	"github.com/pktengine/pktengine/internal/lab"
	"github.com/pktengine/pktengine/internal/labtest"
	"github.com/pktengine/pktengine/proto"
	"github.com/pktengine/pktengine/ring"
)

// labSender writes frames from host a to host b's MAC through a raw packet
// socket, so the test controls tags, addresses and ports exactly.
type labSender struct {
	c   *packet.Conn
	dst net.HardwareAddr
}

func newLabSender(t *testing.T, a, b *lab.Host) *labSender {
	t.Helper()
	// Protocol 0: a send-only socket that never receives.
	c := labtest.Open(t, a, func(ifi *net.Interface) (*packet.Conn, error) { return packet.Listen(ifi, packet.Raw, 0, nil) })
	return &labSender{c: c, dst: b.MAC}
}

func (s *labSender) send(t *testing.T, n int, spec frame.UDPSpec) {
	t.Helper()
	buf := make([]byte, 256)
	spec.DstMAC = frame.MAC(s.dst)
	spec.SrcMAC = frame.MAC{0x02, 0, 0, 0, 0, 0x99}
	for i := range n {
		spec.Payload = []byte(fmt.Sprintf("pkte%04d", i))
		l, err := frame.BuildUDP(buf, &spec)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.c.WriteTo(buf[:l], &packet.Addr{HardwareAddr: s.dst}); err != nil {
			t.Fatal(err)
		}
	}
}

// drain reads rx until it has been quiet for a while and returns the
// frames.
func drain(t *testing.T, rx *ring.RX) (frames [][]byte, metas []ring.Meta) {
	t.Helper()
	var b ring.Batch
	defer b.Release()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
		err := rx.ReadInto(ctx, &b)
		cancel()
		if errors.Is(err, context.DeadlineExceeded) {
			return frames, metas
		}
		if err != nil {
			t.Fatal(err)
		}
		for data, m := range b.All() {
			frames = append(frames, append([]byte(nil), data...))
			metas = append(metas, m)
		}
	}
}

// TestLabFilter attaches compiled filters to packet rings in a namespace
// lab and sends matching and non-matching frames: frames the filter
// rejects never reach a ring (the ring and PACKET_STATISTICS both show
// only the matches), and frames it accepts all do. It also shows why the
// default VLAN mode is ancillary: the kernel strips the tag before the
// filter runs, so in-packet tag tests never match a received frame.
func TestLabFilter(t *testing.T) {
	l := labtest.New(t, nil)
	a, b := l.A(), l.B()
	dstHost := b.IPv4.Addr()
	mustRaw := func(expr string, o *bpf.Options) []xbpf.RawInstruction {
		raw, err := bpf.CompileRaw(expr, o)
		if err != nil {
			t.Fatalf("%q: %v", expr, err)
		}
		return raw
	}
	type sub struct {
		name   string
		filter []xbpf.RawInstruction
		want   int
		rx     *ring.RX
	}
	subs := []*sub{
		// Untagged and tagged matches: with the tag stripped, a filter
		// without "vlan" sees the inner packet.
		{name: "udp dst port and host", filter: mustRaw(fmt.Sprintf("udp dst port 7000 and dst host %s", dstHost), nil), want: 40 + 20 + 20 + 20},
		{name: "vlan 10 ancillary", filter: mustRaw("vlan 10 and udp dst port 7000", nil), want: 20},
		{name: "vlan 10 in-packet", filter: mustRaw("vlan 10 and udp dst port 7000", &bpf.Options{VLAN: bpf.VLANInPacket}), want: 0},
		{name: "untagged only", filter: mustRaw("not vlan and udp dst port 7000", nil), want: 40 + 20 + 10 + 10},
		{name: "snap length 64", filter: mustRaw(fmt.Sprintf("inbound and udp dst portrange 7000-7001 and dst host %s", dstHost), &bpf.Options{SnapLen: 64}),
			want: 40 + 20 + 20 + 30 + 20},
	}
	for _, s := range subs {
		s.rx = labtest.Open(t, b, func(ifi *net.Interface) (*ring.RX, error) {
			return ring.NewRX(ifi, &ring.RXConfig{Version: ring.V2, Filter: s.filter})
		})
	}

	snd := newLabSender(t, a, b)
	src4 := netip.AddrPortFrom(a.IPv4.Addr(), 40000)
	to := func(addr netip.Addr, port uint16) netip.AddrPort { return netip.AddrPortFrom(addr, port) }
	snd.send(t, 40, frame.UDPSpec{Src: src4, Dst: to(dstHost, 7000)})                                    // match
	snd.send(t, 20, frame.UDPSpec{Src: src4, Dst: to(dstHost, 7000), Options: []byte{1, 1, 1, 0}})       // match, IHL 6
	snd.send(t, 20, frame.UDPSpec{Src: src4, Dst: to(dstHost, 7000), VLANs: []frame.VLANTag{{TCI: 10}}}) // match, tagged
	snd.send(t, 10, frame.UDPSpec{Src: src4, Dst: to(netip.MustParseAddr("198.18.0.77"), 7000)})         // other host
	snd.send(t, 30, frame.UDPSpec{Src: src4, Dst: to(dstHost, 7001)})                                    // other port
	snd.send(t, 20, frame.UDPSpec{Src: src4, Dst: to(dstHost, 7000), VLANs: []frame.VLANTag{{TCI: 11}}}) // other VLAN
	snd.send(t, 10, frame.UDPSpec{Src: netip.AddrPortFrom(a.IPv6.Addr(), 40000), Dst: to(b.IPv6.Addr(), 7000)})

	for _, s := range subs {
		frames, metas := drain(t, s.rx)
		st, err := s.rx.Stats()
		if err != nil {
			t.Fatal(err)
		}
		if len(frames) != s.want {
			t.Errorf("%s: %d frames in the ring, want %d", s.name, len(frames), s.want)
		}
		if st.Packets != uint64(s.want) || st.Drops != 0 {
			t.Errorf("%s: PACKET_STATISTICS %d packets %d drops, want %d and 0", s.name, st.Packets, st.Drops, s.want)
		}
		for i, f := range frames {
			p, ok := udpDst(f)
			if !ok || p < 7000 || p > 7001 || metas[i].Type == ring.PacketOutgoing {
				t.Errorf("%s: unexpected frame in ring: % x", s.name, f)
				break
			}
		}
		if s.name == "snap length 64" {
			for _, f := range frames {
				if len(f) > 64 {
					t.Errorf("%s: %d-byte frame", s.name, len(f))
					break
				}
			}
		}
	}
}

// udpDst returns the destination port of an (untagged) IPv4 or IPv6 UDP
// frame.
func udpDst(f []byte) (uint16, bool) {
	if len(f) < 14 {
		return 0, false
	}
	switch uint16(f[12])<<8 | uint16(f[13]) {
	case proto.EtherTypeIPv4:
		if len(f) < 34 || f[23] != proto.IPProtoUDP {
			return 0, false
		}
		off := 14 + 4*int(f[14]&0xf) + 2
		if len(f) < off+2 {
			return 0, false
		}
		return uint16(f[off])<<8 | uint16(f[off+1]), true
	case proto.EtherTypeIPv6:
		if len(f) < 58 || f[20] != proto.IPProtoUDP {
			return 0, false
		}
		return uint16(f[56])<<8 | uint16(f[57]), true
	}
	return 0, false
}

// TestLabAttachLock exercises AttachFD and Lock on a plain packet socket:
// the attached program decides what is read, DropAll lets nothing
// through, and a locked filter cannot be replaced.
func TestLabAttachLock(t *testing.T) {
	l := labtest.New(t, nil)
	a, b := l.A(), l.B()
	// packet.Config.Filter attaches before bind, as ring.NewRX does.
	c := labtest.Open(t, b, func(ifi *net.Interface) (*packet.Conn, error) {
		return packet.Listen(ifi, packet.Raw, unix.ETH_P_ALL, &packet.Config{Filter: bpf.DropAll()})
	})
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	attach := func(prog []xbpf.RawInstruction) error {
		var err error
		if cerr := rc.Control(func(fd uintptr) { err = bpf.AttachFD(int(fd), prog) }); cerr != nil {
			t.Fatal(cerr)
		}
		return err
	}
	raw, err := bpf.CompileRaw("inbound and udp dst port 7002", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := attach(raw); err != nil {
		t.Fatalf("AttachFD: %v", err)
	}
	snd := newLabSender(t, a, b)
	src := netip.AddrPortFrom(a.IPv4.Addr(), 40000)
	sendAndRead := func() (got int) {
		snd.send(t, 10, frame.UDPSpec{Src: src, Dst: netip.AddrPortFrom(b.IPv4.Addr(), 7002)})
		snd.send(t, 10, frame.UDPSpec{Src: src, Dst: netip.AddrPortFrom(b.IPv4.Addr(), 7003)})
		buf := make([]byte, 2048)
		for {
			c.SetReadDeadline(time.Now().Add(150 * time.Millisecond))
			n, _, err := c.ReadFrom(buf)
			if err != nil {
				return got
			}
			if p, ok := udpDst(buf[:n]); !ok || p != 7002 {
				t.Errorf("filter let through % x", buf[:n])
			}
			got++
		}
	}
	if got := sendAndRead(); got != 10 {
		t.Errorf("read %d frames, want 10", got)
	}
	if err := attach(bpf.DropAll()); err != nil {
		t.Fatalf("AttachFD(DropAll()): %v", err)
	}
	if err := bpf.Lock(rc); err != nil {
		t.Fatalf("Lock: %v", err)
	}
	if err := attach(raw); !errors.Is(err, unix.EPERM) {
		t.Errorf("AttachFD after Lock: %v, want EPERM", err)
	}
	if got := sendAndRead(); got != 0 {
		t.Errorf("read %d frames through DropAll, want 0", got)
	}
	if err := attach(nil); err == nil {
		t.Errorf("AttachFD(nil) succeeded")
	}
}

// TestLabServeFilterVLAN runs the engine's serve filter in the kernel: the
// kernel's checker takes it (scratch memory, ancillary loads), the tag the
// kernel strips on receive is what its VLAN test reads, and a frame of
// another VLAN reaches the ring cut to OtherVLANSnapLen while one of the
// VLAN served arrives whole.
func TestLabServeFilterVLAN(t *testing.T) {
	l := labtest.New(t, nil)
	a, b := l.A(), l.B()
	type sub struct {
		vlan uint16
		rx   *ring.RX
	}
	subs := []*sub{{vlan: 0}, {vlan: 10}}
	for _, s := range subs {
		spec := &bpf.ServeSpec{
			Addrs:          []bpf.ServeAddr{{Addr: b.IPv4.Addr(), Owned: false}, {Addr: b.IPv6.Addr(), Owned: false}},
			IgnoreOutgoing: true,
			VLANAncillary:  true,
			VLANID:         s.vlan,
		}
		if s.vlan != 0 {
			// With an expression as the program's tail, which every
			// datagram sent here matches.
			spec.Expr = fmt.Sprintf("src host %s or src host %s", a.IPv4.Addr(), a.IPv6.Addr())
		}
		prog, err := bpf.ServeFilter(spec)
		if err != nil {
			t.Fatal(err)
		}
		s.rx = labtest.Open(t, b, func(ifi *net.Interface) (*ring.RX, error) {
			return ring.NewRX(ifi, &ring.RXConfig{Version: ring.V2, Filter: prog, LockFilter: true, IgnoreOutgoing: true})
		})
	}
	c := labtest.Open(t, a, func(ifi *net.Interface) (*packet.Conn, error) { return packet.Listen(ifi, packet.Raw, 0, nil) })
	// Each kind of frame is sent a different number of times, so that
	// the counts in a ring say which kinds arrived.
	kinds := []struct {
		name  string
		n     int
		dst   netip.Addr
		vlans []frame.VLANTag
	}{
		{"untagged", 1, b.IPv4.Addr(), nil},
		{"vlan 10", 2, b.IPv4.Addr(), []frame.VLANTag{{TCI: 10}}},
		{"vlan 11", 4, b.IPv4.Addr(), []frame.VLANTag{{TCI: 11}}},
		{"priority-tagged", 8, b.IPv4.Addr(), []frame.VLANTag{{TCI: frame.MakeTCI(6, false, 0)}}},
		{"vlan 10, ipv6", 16, b.IPv6.Addr(), []frame.VLANTag{{TCI: 10}}},
		{"vlan 10, another host", 32, netip.MustParseAddr("198.18.0.77"), []frame.VLANTag{{TCI: 10}}},
	}
	buf := make([]byte, 512)
	for _, k := range kinds {
		src := netip.AddrPortFrom(a.IPv4.Addr(), 40000)
		if k.dst.Is6() {
			src = netip.AddrPortFrom(a.IPv6.Addr(), 40000)
		}
		spec := frame.UDPSpec{SrcMAC: frame.MAC(a.MAC), DstMAC: frame.MAC(b.MAC), Src: src,
			Dst: netip.AddrPortFrom(k.dst, 7000), VLANs: k.vlans, Payload: make([]byte, 200)}
		n, err := frame.BuildUDP(buf, &spec)
		if err != nil {
			t.Fatal(err)
		}
		for range k.n {
			if _, err := c.WriteTo(buf[:n], &packet.Addr{HardwareAddr: b.MAC}); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, s := range subs {
		frames, metas := drain(t, s.rx)
		whole, cut := 0, 0
		for i, f := range frames {
			switch {
			case len(f) == bpf.OtherVLANSnapLen && metas[i].Length > len(f):
				cut++
			case len(f) == metas[i].Length:
				whole++
			default:
				t.Errorf("vlan %d: a %d-byte frame of %d", s.vlan, len(f), metas[i].Length)
			}
		}
		// Served whole: untagged and priority-tagged, or VLAN 10 (both
		// families); cut: the rest, but for the other host's.
		wantWhole, wantCut := 1+8, 2+4+16
		if s.vlan == 10 {
			wantWhole, wantCut = 2+16, 1+4+8
		}
		if whole != wantWhole || cut != wantCut {
			t.Errorf("serving vlan %d: %d frames whole and %d cut, want %d and %d", s.vlan, whole, cut, wantWhole, wantCut)
		}
	}
}
