//go:build linux

package xdp

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/pktengine/pktengine/frame"
)

// refClassify is the steering program's rules written plainly in Go: the
// slow reference the program is checked against.
func refClassify(b []byte, addrs map[netip.Addr]ServeFlags, vlan bool) Class {
	return refClassifyPorts(b, addrs, nil, vlan)
}

// refClassifyPorts is refClassify with a port map: an address served with
// ServeUDPPorts (and not ServeUDP) takes the unfragmented UDP datagrams to
// the ports listed for it.
func refClassifyPorts(b []byte, addrs map[netip.Addr]ServeFlags, ports map[netip.AddrPort]bool, vlan bool) Class {
	if len(b) < 14 {
		return ClassPassed
	}
	et, l3 := binary.BigEndian.Uint16(b[12:]), 14
	if vlan && (et == 0x8100 || et == 0x88a8) {
		if len(b) < 18 {
			return ClassPassed
		}
		et, l3 = binary.BigEndian.Uint16(b[16:]), 18
	}
	match := func(key netip.Addr, class Class, need ServeFlags) Class {
		if addrs[key]&need != 0 {
			return class
		}
		return ClassPassed
	}
	// byPort: a UDP datagram not served as such may be served by its
	// port, read at off (-1: none).
	byPort := func(key netip.Addr, class Class, off int) Class {
		if c := match(key, class, ServeUDP); c != ClassPassed {
			return c
		}
		if addrs[key]&ServeUDPPorts == 0 || off < 0 || len(b) < off+4 {
			return ClassPassed
		}
		if ports[netip.AddrPortFrom(key, binary.BigEndian.Uint16(b[off+2:]))] {
			return class
		}
		return ClassPassed
	}
	v4 := func(off int) netip.Addr { return netip.AddrFrom4([4]byte(b[off : off+4])) }
	v6 := func(off int) netip.Addr { return netip.AddrFrom16([16]byte(b[off : off+16])).Unmap() }
	switch et {
	case 0x0806:
		if len(b) < l3+28 || binary.BigEndian.Uint16(b[l3+2:]) != 0x0800 || binary.BigEndian.Uint16(b[l3+4:]) != 0x0604 {
			return ClassPassed
		}
		return match(v4(l3+24), ClassARP, ServeNeighbor)
	case 0x0800:
		if len(b) < l3+20 || b[l3]&0xf0 != 0x40 {
			return ClassPassed
		}
		frag := binary.BigEndian.Uint16(b[l3+6:])&0x3fff != 0
		switch b[l3+9] {
		case 1:
			return match(v4(l3+16), ClassICMPv4, ServeICMP)
		case 17:
			if frag {
				return match(v4(l3+16), ClassFragmentV4, ServeUDP)
			}
			return byPort(v4(l3+16), ClassUDPv4, l3+int(b[l3]&0x0f)*4)
		}
		return ClassPassed
	case 0x86dd:
		if len(b) < l3+40 || b[l3]&0xf0 != 0x60 {
			return ClassPassed
		}
		nh, cur, frag := b[l3+6], l3+40, false
		isExt := func(nh uint8) bool { return nh == 0 || nh == 43 || nh == 60 || nh == 44 }
		for k := 0; k < 4 && isExt(nh); k++ {
			if len(b) < cur+8 {
				return ClassPassed
			}
			if nh == 44 {
				nh, frag, cur = b[cur], true, cur+8
			} else {
				nh, cur = b[cur], cur+(int(b[cur+1])+1)*8
			}
		}
		if isExt(nh) {
			return ClassPassed
		}
		dst := v6(l3 + 24)
		switch nh {
		case 17:
			if frag {
				return match(dst, ClassFragmentV6, ServeUDP)
			}
			return byPort(dst, ClassUDPv6, cur)
		case 58:
			if frag {
				return match(dst, ClassICMPv6, ServeICMP)
			}
			if len(b) < cur+4 {
				return ClassPassed
			}
			switch b[cur] {
			case 135:
				if len(b) < cur+24 {
					return ClassPassed
				}
				return match(v6(cur+8), ClassNDP, ServeNeighbor)
			case 136:
				return match(dst, ClassNDP, ServeNeighbor)
			}
			return match(dst, ClassICMPv6, ServeICMP)
		}
	}
	return ClassPassed
}

// TestProgramAgainstReference runs the program and the reference over
// mutated frames (bytes flipped in the headers, frames cut short) and
// requires the same class for every one.
func TestProgramAgainstReference(t *testing.T) {
	for _, vlan := range []bool{false, true} {
		addrs := map[netip.Addr]ServeFlags{ours4: ServeAll, ours6: ServeAll, other4: ServeICMP, other6: ServeUDP,
			shared4: ServeUDPPorts, shared6: ServeUDPPorts | ServeICMP}
		ports := map[netip.AddrPort]bool{netip.AddrPortFrom(shared4, 7): true, netip.AddrPortFrom(shared6, 7): true,
			netip.AddrPortFrom(other4, 7): true}
		p := newTestProgram(t, &ProgramConfig{VLAN: vlan})
		for a, f := range addrs {
			if err := p.AddAddr(a, f); err != nil {
				t.Fatal(err)
			}
		}
		for ap := range ports {
			if err := p.AddPort(ap); err != nil {
				t.Fatal(err)
			}
		}
		tag := []frame.VLANTag{{TPID: 0x8100, TCI: 5}}
		solicited := netip.MustParseAddr("ff02::1:ff00:1")
		hbh := []frame.IPv6ExtHeader{{Type: 0, Data: make([]byte, 6)}, {Type: 44, Data: make([]byte, 6)}}
		seeds := [][]byte{
			udpFrame(t, other4, ours4, nil, nil), udpFrame(t, other6, ours6, nil, nil),
			udpFrame(t, other4, ours4, tag, nil), udpFrame(t, other6, ours6, tag, hbh),
			fragFrame(t, other4, ours4, 16), fragFrame(t, other6, ours6, 16),
			arpFrame(t, 1, ours4, nil), arpFrame(t, 1, ours4, tag),
			ipFrame(other4, ours4, 1, []byte{8, 0, 0, 0, 0, 1, 0, 1}),
			ipFrame(other6, solicited, 58, icmp6(135, ours6)), ipFrame(other6, ours6, 58, icmp6(136, other6)),
			ipFrame(other6, ours6, 58, icmp6(128, other6)),
			udpFrame(t, other4, shared4, nil, nil), udpFrame(t, other6, shared6, tag, hbh),
			withDstPort(udpFrame(t, other4, shared4, nil, nil), 8), withDstPort(udpFrame(t, other6, shared6, nil, nil), 9),
			fragFrame(t, other4, shared4, 0), fragFrame(t, other6, shared6, 0),
		}
		rng := rand.New(rand.NewPCG(1, uint64(len(seeds))))
		const rounds = 1500
		mismatches := 0
		var seen [numClasses]int
		for i := range rounds {
			f := append([]byte(nil), seeds[i%len(seeds)]...)
			if i >= len(seeds) { // the seeds themselves first
				for range 1 + rng.IntN(3) {
					off := rng.IntN(min(len(f), 80))
					switch rng.IntN(4) {
					case 0:
						f[off] = byte(rng.IntN(256))
					case 1:
						f[off] ^= 1 << rng.IntN(8)
					case 2: // a likely header value
						f[off] = []byte{0, 6, 17, 43, 44, 58, 60, 0x45, 0x60, 0x81, 0x86, 135, 136}[rng.IntN(13)]
					case 3:
						f = f[:max(off, 1)]
					}
				}
			}
			want := refClassifyPorts(f, addrs, ports, vlan)
			act, got, err := p.Test(f, 0)
			if err != nil {
				if len(f) < 14 {
					continue // BPF_PROG_RUN wants a whole Ethernet header
				}
				t.Fatal(err)
			}
			seen[want]++
			if act != ActionPass || got != want {
				mismatches++
				if mismatches <= 5 {
					t.Errorf("vlan=%v frame % x: program %v %v, reference %v", vlan, f, act, got, want)
				}
			}
		}
		if mismatches > 0 {
			t.Errorf("vlan=%v: %d of %d frames classified differently", vlan, mismatches, rounds)
		}
		t.Logf("vlan=%v: frames by class %v", vlan, seen)
		for c := ClassPassed; c < ClassNoSocket; c++ {
			if seen[c] == 0 {
				t.Errorf("vlan=%v: no frame of class %v: the mutations do not cover it", vlan, c)
			}
		}
	}
}

var (
	shared4 = netip.MustParseAddr("198.18.0.3")
	shared6 = netip.MustParseAddr("fd00::3")
)

// withDstPort rewrites the UDP destination port of an untagged frame
// without extension headers (the checksum is not the program's business).
func withDstPort(f []byte, port uint16) []byte {
	off := 14 + 20 + 2
	if binary.BigEndian.Uint16(f[12:]) == 0x86dd {
		off = 14 + 40 + 2
	}
	binary.BigEndian.PutUint16(f[off:], port)
	return f
}
