//go:build linux

package xdp

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/pktengine/pktengine/frame"
	"github.com/pktengine/pktengine/internal/labtest"
)

var (
	ours4   = netip.MustParseAddr("198.18.0.1")
	ours6   = netip.MustParseAddr("fd00::1")
	other4  = netip.MustParseAddr("198.18.0.2")
	other6  = netip.MustParseAddr("fd00::2")
	macA    = frame.MAC{2, 0, 0, 0, 0, 1}
	macB    = frame.MAC{2, 0, 0, 0, 0, 2}
	payload = []byte("TEST")
)

func udpFrame(t testing.TB, src, dst netip.Addr, vlans []frame.VLANTag, ext []frame.IPv6ExtHeader) []byte {
	t.Helper()
	s := &frame.UDPSpec{SrcMAC: macB, DstMAC: macA, VLANs: vlans, Src: netip.AddrPortFrom(src, 40000),
		Dst: netip.AddrPortFrom(dst, 7), ExtHeaders: ext, Payload: payload}
	buf := make([]byte, frame.UDPFrameLen(s))
	n, err := frame.BuildUDP(buf, s)
	if err != nil {
		t.Fatal(err)
	}
	return buf[:n]
}

func fragFrame(t testing.TB, src, dst netip.Addr, off int) []byte {
	t.Helper()
	s := &frame.UDPSpec{SrcMAC: macB, DstMAC: macA, Src: netip.AddrPortFrom(src, 40000),
		Dst: netip.AddrPortFrom(dst, 7), ID: 7, Payload: make([]byte, 64)}
	buf := make([]byte, frame.UDPFrameLen(s)+8)
	n, err := frame.BuildUDPFragment(buf, s, frame.Fragment{Offset: off, Length: 16, ID: 9})
	if err != nil {
		t.Fatal(err)
	}
	return buf[:n]
}

func arpFrame(t testing.TB, op uint16, target netip.Addr, vlans []frame.VLANTag) []byte {
	t.Helper()
	buf := make([]byte, 64)
	n, err := frame.BuildARP(buf, &frame.ARPSpec{Op: op, SenderMAC: macB, SenderIP: other4, TargetIP: target, VLANs: vlans, TargetMAC: macA})
	if err != nil {
		t.Fatal(err)
	}
	return buf[:n]
}

// ipFrame writes an Ethernet frame around a raw IPv4 or IPv6 packet with
// the given protocol and upper-layer bytes (checksums are not the
// program's business and stay zero).
func ipFrame(src, dst netip.Addr, proto uint8, upper []byte) []byte {
	b := make([]byte, 14, 128)
	copy(b[0:], macA[:])
	copy(b[6:], macB[:])
	if src.Is4() {
		binary.BigEndian.PutUint16(b[12:], 0x0800)
		ip := make([]byte, 20)
		ip[0] = 0x45
		binary.BigEndian.PutUint16(ip[2:], uint16(20+len(upper)))
		ip[8], ip[9] = 64, proto
		s, d := src.As4(), dst.As4()
		copy(ip[12:], s[:])
		copy(ip[16:], d[:])
		b = append(b, ip...)
	} else {
		binary.BigEndian.PutUint16(b[12:], 0x86dd)
		ip := make([]byte, 40)
		ip[0] = 0x60
		binary.BigEndian.PutUint16(ip[4:], uint16(len(upper)))
		ip[6], ip[7] = proto, 255
		s, d := src.As16(), dst.As16()
		copy(ip[8:], s[:])
		copy(ip[24:], d[:])
		b = append(b, ip...)
	}
	return append(b, upper...)
}

func icmp6(typ uint8, target netip.Addr) []byte {
	m := make([]byte, 24)
	m[0] = typ
	t := target.As16()
	copy(m[8:], t[:])
	return m
}

func newTestProgram(t *testing.T, cfg *ProgramConfig) *Program {
	t.Helper()
	labtest.NeedPrivileges(t)
	p, err := NewProgram(cfg)
	if err != nil {
		t.Fatalf("NewProgram: %+v", err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// TestProgramVerdicts runs the steering program over crafted frames with
// BPF_PROG_RUN. No socket is registered, so every verdict is XDP_PASS and
// the class the program counted tells whether it would have redirected.
func TestProgramVerdicts(t *testing.T) {
	p := newTestProgram(t, &ProgramConfig{Addrs: []netip.Addr{ours4, ours6}, VLAN: true})
	solicited := netip.MustParseAddr("ff02::1:ff00:1")
	tag := []frame.VLANTag{{TPID: 0x8100, TCI: 5}}
	qinq := []frame.VLANTag{{TPID: 0x88a8, TCI: 5}, {TPID: 0x8100, TCI: 6}}
	hbh := []frame.IPv6ExtHeader{{Type: 0, Data: make([]byte, 6)}}
	deep := []frame.IPv6ExtHeader{{Type: 0, Data: make([]byte, 6)}, {Type: 60, Data: make([]byte, 6)}, {Type: 60, Data: make([]byte, 14)}, {Type: 60, Data: make([]byte, 6)}, {Type: 60, Data: make([]byte, 6)}}
	echo4 := []byte{8, 0, 0, 0, 0, 1, 0, 1}
	echo6 := []byte{128, 0, 0, 0, 0, 1, 0, 1}
	tcp := make([]byte, 20)
	for _, tc := range []struct {
		name  string
		frame []byte
		want  Class
	}{
		{"udp4 to ours", udpFrame(t, other4, ours4, nil, nil), ClassUDPv4},
		{"udp4 to another", udpFrame(t, other4, other4, nil, nil), ClassPassed},
		{"udp6 to ours", udpFrame(t, other6, ours6, nil, nil), ClassUDPv6},
		{"udp6 to another", udpFrame(t, other6, other6, nil, nil), ClassPassed},
		{"udp6 behind hop-by-hop", udpFrame(t, other6, ours6, nil, hbh), ClassUDPv6},
		{"udp6 behind five extension headers", udpFrame(t, other6, ours6, nil, deep), ClassPassed},
		{"udp4 tagged", udpFrame(t, other4, ours4, tag, nil), ClassUDPv4},
		{"udp6 tagged", udpFrame(t, other6, ours6, tag, nil), ClassUDPv6},
		{"udp4 double-tagged", udpFrame(t, other4, ours4, qinq, nil), ClassPassed},
		{"first fragment v4", fragFrame(t, other4, ours4, 0), ClassFragmentV4},
		{"later fragment v4", fragFrame(t, other4, ours4, 16), ClassFragmentV4},
		{"fragment v4 to another", fragFrame(t, other4, other4, 16), ClassPassed},
		{"first fragment v6", fragFrame(t, other6, ours6, 0), ClassFragmentV6},
		{"later fragment v6", fragFrame(t, other6, ours6, 16), ClassFragmentV6},
		{"arp request for ours", arpFrame(t, 1, ours4, nil), ClassARP},
		{"arp reply to ours", arpFrame(t, 2, ours4, nil), ClassARP},
		{"arp for another", arpFrame(t, 1, other4, nil), ClassPassed},
		{"arp tagged", arpFrame(t, 1, ours4, tag), ClassARP},
		{"icmp echo to ours", ipFrame(other4, ours4, 1, echo4), ClassICMPv4},
		{"icmp echo to another", ipFrame(other4, other4, 1, echo4), ClassPassed},
		{"tcp to ours", ipFrame(other4, ours4, 6, tcp), ClassPassed},
		{"tcp6 to ours", ipFrame(other6, ours6, 6, tcp), ClassPassed},
		{"icmpv6 echo to ours", ipFrame(other6, ours6, 58, echo6), ClassICMPv6},
		{"neighbor solicitation for ours", ipFrame(other6, solicited, 58, icmp6(135, ours6)), ClassNDP},
		{"neighbor solicitation for another", ipFrame(other6, solicited, 58, icmp6(135, other6)), ClassPassed},
		{"neighbor advertisement to ours", ipFrame(other6, ours6, 58, icmp6(136, other6)), ClassNDP},
		{"router advertisement to all nodes", ipFrame(other6, netip.MustParseAddr("ff02::1"), 58, icmp6(134, other6)), ClassPassed},
		{"truncated ethernet", []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14}, ClassPassed},
		{"truncated ipv4", udpFrame(t, other4, ours4, nil, nil)[:30], ClassPassed},
		{"truncated ipv6", udpFrame(t, other6, ours6, nil, nil)[:50], ClassPassed},
		{"truncated neighbor solicitation", ipFrame(other6, solicited, 58, icmp6(135, ours6))[:14+40+20], ClassPassed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			act, class, err := p.Test(tc.frame, 0)
			if err != nil {
				t.Fatal(err)
			}
			if act != ActionPass || class != tc.want {
				t.Errorf("got %v, class %v; want XDP_PASS, class %v", act, class, tc.want)
			}
		})
	}
}

// TestProgramAddrUpdates checks that the address map is live and that
// ServeFlags select what is steered.
func TestProgramAddrUpdates(t *testing.T) {
	p := newTestProgram(t, nil)
	udp := udpFrame(t, other4, ours4, nil, nil)
	arp := arpFrame(t, 1, ours4, nil)
	check := func(f []byte, want Class) {
		t.Helper()
		if _, class, err := p.Test(f, 0); err != nil || class != want {
			t.Errorf("class %v, %v; want %v", class, err, want)
		}
	}
	check(udp, ClassPassed)
	if err := p.AddAddr(ours4, ServeUDP); err != nil {
		t.Fatal(err)
	}
	check(udp, ClassUDPv4)
	check(arp, ClassPassed) // the kernel answers ARP for a shared address
	if err := p.AddAddr(ours4, ServeAll); err != nil {
		t.Fatal(err)
	}
	check(arp, ClassARP)
	if err := p.RemoveAddr(ours4); err != nil {
		t.Fatal(err)
	}
	check(udp, ClassPassed)
	// Untagged frames only without ProgramConfig.VLAN.
	if err := p.AddAddr(ours4, ServeAll); err != nil {
		t.Fatal(err)
	}
	check(udpFrame(t, other4, ours4, []frame.VLANTag{{TPID: 0x8100, TCI: 5}}, nil), ClassPassed)
	st, err := p.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st[ClassUDPv4] != 1 || st[ClassARP] != 1 || st[ClassPassed] != 4 || st.Steered() != 2 {
		t.Errorf("stats %v", st)
	}
}

// TestProgramPortUpdates checks that an address served by port steers
// exactly the unfragmented datagrams to its listed ports, that the port
// map is live, and that ServeUDP takes precedence over it.
func TestProgramPortUpdates(t *testing.T) {
	p := newTestProgram(t, nil)
	udp4 := udpFrame(t, other4, ours4, nil, nil) // to port 7
	udp6 := udpFrame(t, other6, ours6, []frame.VLANTag{}, []frame.IPv6ExtHeader{{Type: 0, Data: make([]byte, 6)}})
	other := withDstPort(udpFrame(t, other4, ours4, nil, nil), 8)
	frag := fragFrame(t, other4, ours4, 0)
	check := func(name string, f []byte, want Class) {
		t.Helper()
		if _, class, err := p.Test(f, 0); err != nil || class != want {
			t.Errorf("%s: class %v, %v; want %v", name, class, err, want)
		}
	}
	for _, a := range []netip.Addr{ours4, ours6} {
		if err := p.AddAddr(a, ServeUDPPorts); err != nil {
			t.Fatal(err)
		}
	}
	check("no port listed", udp4, ClassPassed)
	for _, ap := range []netip.AddrPort{netip.AddrPortFrom(ours4, 7), netip.AddrPortFrom(ours6, 7)} {
		if err := p.AddPort(ap); err != nil {
			t.Fatal(err)
		}
	}
	check("listed port v4", udp4, ClassUDPv4)
	check("listed port v6 behind hop-by-hop", udp6, ClassUDPv6)
	check("another port", other, ClassPassed)
	check("first fragment to the listed port", frag, ClassPassed)
	check("arp for a port-served address", arpFrame(t, 1, ours4, nil), ClassPassed)
	// An IPv4 header with options puts the port further on.
	opts := &frame.UDPSpec{SrcMAC: macB, DstMAC: macA, Src: netip.AddrPortFrom(other4, 40000),
		Dst: netip.AddrPortFrom(ours4, 7), Options: []byte{frame.IPv4OptionRouterAlert, 4, 0, 0}, Payload: payload}
	buf := make([]byte, frame.UDPFrameLen(opts))
	n, err := frame.BuildUDP(buf, opts)
	if err != nil {
		t.Fatal(err)
	}
	check("listed port behind IPv4 options", buf[:n], ClassUDPv4)
	check("listed port, header cut before it", udp4[:14+20+2], ClassPassed)
	if err := p.RemovePort(netip.AddrPortFrom(ours4, 7)); err != nil {
		t.Fatal(err)
	}
	check("port removed", udp4, ClassPassed)
	if err := p.AddAddr(ours4, ServeUDP|ServeUDPPorts); err != nil {
		t.Fatal(err)
	}
	check("ServeUDP over ServeUDPPorts", other, ClassUDPv4)
	check("ServeUDP takes fragments", frag, ClassFragmentV4)
	if err := p.RemovePort(netip.AddrPortFrom(ours4, 7)); err == nil {
		t.Error("removing a port twice succeeded")
	}
}
