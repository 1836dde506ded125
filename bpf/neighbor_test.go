package bpf

import (
	"net/netip"
	"testing"

	xbpf "golang.org/x/net/bpf"

	"github.com/pktengine/pktengine/frame"
)

// TestNeighborFilter runs NeighborFilter in x/net/bpf's VM over the frames
// a host sees: only ARP about the addresses and Neighbor Advertisements
// to them pass, tagged or not.
func TestNeighborFilter(t *testing.T) {
	ours4, ours6 := netip.MustParseAddr("198.18.0.1"), netip.MustParseAddr("fd00::1")
	peer4, peer6 := netip.MustParseAddr("198.18.0.2"), netip.MustParseAddr("fd00::2")
	raw, err := NeighborFilter([]netip.Addr{ours4, ours6})
	if err != nil {
		t.Fatal(err)
	}
	insns, ok := xbpf.Disassemble(raw)
	if !ok {
		t.Fatal("disassemble")
	}
	vm, err := xbpf.NewVM(insns)
	if err != nil {
		t.Fatal(err)
	}
	macA, macB := frame.MAC{2, 0, 0, 0, 0, 1}, frame.MAC{2, 0, 0, 0, 0, 2}
	tag := []frame.VLANTag{{TPID: 0x8100, TCI: 7}}
	arp := func(op uint16, target netip.Addr, vlans []frame.VLANTag) []byte {
		buf := make([]byte, 64)
		n, err := frame.BuildARP(buf, &frame.ARPSpec{Op: op, SenderMAC: macB, SenderIP: peer4, TargetMAC: macA, TargetIP: target, VLANs: vlans})
		if err != nil {
			t.Fatal(err)
		}
		return buf[:n]
	}
	na := func(dst, target netip.Addr) []byte {
		buf := make([]byte, 128)
		n, err := frame.BuildNeighborAdvertisement(buf, &frame.IPSpec{SrcMAC: macB, DstMAC: macA, Src: peer6, Dst: dst}, target, 0x60, macB)
		if err != nil {
			t.Fatal(err)
		}
		return buf[:n]
	}
	udp := func(dst netip.Addr) []byte {
		s := &frame.UDPSpec{SrcMAC: macB, DstMAC: macA, Src: netip.AddrPortFrom(peer4, 1), Dst: netip.AddrPortFrom(dst, 7), Payload: []byte("x")}
		if dst.Is6() {
			s.Src = netip.AddrPortFrom(peer6, 1)
		}
		buf := make([]byte, 128)
		n, err := frame.BuildUDP(buf, s)
		if err != nil {
			t.Fatal(err)
		}
		return buf[:n]
	}
	for _, tc := range []struct {
		name  string
		frame []byte
		pass  bool
	}{
		{"arp reply to ours", arp(2, ours4, nil), true},
		{"arp request for ours", arp(1, ours4, nil), true},
		{"arp tagged", arp(2, ours4, tag), true},
		{"arp for another", arp(2, peer4, nil), false},
		{"na to ours", na(ours6, peer6), true},
		{"na to another", na(peer6, peer6), false},
		{"udp to ours", udp(ours4), false},
		{"udp6 to ours", udp(ours6), false},
	} {
		n, err := vm.Run(tc.frame)
		if err != nil {
			t.Fatal(err)
		}
		if (n > 0) != tc.pass {
			t.Errorf("%s: accepted %d bytes, want pass %v", tc.name, n, tc.pass)
		}
	}
}
