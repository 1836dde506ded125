package bpf

import (
	"net/netip"
	"testing"

	"github.com/pktengine/pktengine/frame"
	"github.com/pktengine/pktengine/proto"
)

// TestArithmeticErrors: errors in arithmetic point at the column, and
// say what tcpdump says.
func TestArithmeticErrors(t *testing.T) {
	checkSyntaxErrors(t, []syntaxCase{
		{"udp[8:3] = 0", 7, "data size must be 1, 2, or 4"},
		{"ip[0] / 0 = 1", 9, "division by zero"},
		{"ip[0] % (2 - 2) = 1", 9, "modulus by zero"},
		{"ip[0] << 32 = 1", 10, "shift by more than 31 bits"},
		{"ip[0] >> (16 + 16) = 1", 10, "shift by more than 31 bits"},
		{"ip[0] = ", 9, "expected a number, \"len\""},
		{"ip[0 = 1", 6, "expected \"]\""},
		{"ah[0] = 1", 1, "unsupported index operation"},
		{"ip[0] = 1 = 1", 11, "expected \"and\", \"or\""},
		{"len", 4, "expected a comparison"},
		{"ip[08] = 1", 4, "contains non-octal digit"},
		{"ip[4294967296] = 1", 4, "overflows 32 bits"},
		{"(ip[0] = 1", 11, "expected \")\" to close the \"(\" at column 1"},
		{"ip[0] = (1 + 2", 15, "expected \")\" to close the \"(\" at column 9"},
		{"udp[0] ! 1", 8, "expected a comparison"},
		{"ip broadcast", 4, "netmask not known"},
		{"ip6 broadcast", 5, "only link-layer and IPv4 broadcast"},
		{"arp multicast", 5, "only link-layer, IPv4 and IPv6 multicast"},
		{"radio[0] = 1", 1, "radio information not present"},
		{"ip[0:tcpflags] = 0", 6, "data size must be 1, 2, or 4"},
		{"tcp protochain 6", 5, "\"protochain\" applies to ip or ip6"},
		{"protochain \\nosuch", 12, "unknown protocol name \"nosuch\""},
		{"ether proto \\nosuch", 13, "unknown protocol name \"nosuch\""},
		{"net 10/8", 7, "expected \"and\", \"or\""},
		{"host 1.2.3.4/24", 13, "use \"net\" for a prefix"},
		{"ip[0] = ip[1] + ip[2] - (ip[3] * (ip[4] / (ip[5] % (ip[6] & (ip[7] | (ip[8] ^ (ip[9] << (ip[10] >> 1))))))))", 0, ""},
	})
}

// TestArithmeticVerdicts runs programs on frames built for them: a
// division by a field that is zero rejects the frame, a load past its end
// rejects it whatever the test ("not" included), offsets wrap modulo 2^32
// as in libpcap (ip[-1] is the byte before the IPv4 header), and len is
// the frame's length.
func TestArithmeticVerdicts(t *testing.T) {
	v4 := udpFrame(t, frame.UDPSpec{
		Src: netip.MustParseAddrPort("198.18.0.2:53"), Dst: netip.MustParseAddrPort("198.18.0.1:7"),
		Payload: []byte{0x81, 0x80, 0, 1}, TOS: 0, TTL: 64,
	})
	tos4 := append([]byte(nil), v4...)
	tos4[15] = 4
	tests := []struct {
		expr string
		f    []byte
		want bool
	}{
		{"ip[8] / ip[1] > 0", v4, false},   // TOS 0: division by zero
		{"ip[8] / ip[1] = 16", tos4, true}, // TTL 64 / TOS 4
		{"not ip[8] / ip[1] > 100", v4, false},
		{"not ip[8] / ip[1] > 100", tos4, true},
		{"ip[8] % ip[1] = 0", v4, false},
		{"ip[1000] = 0", v4, false},
		{"not ip[1000] = 0", v4, false},
		{"ip[-1] = 0", v4, true}, // [13], the low byte of 0x0800
		{"ip[-2:2] = 0x800", v4, true},
		{"udp[8:2] & 0x8000 != 0", v4, true}, // a DNS response
		{"udp[8:2] & 0x8000 = 0", v4, false},
		{"len = " + itoa(len(v4)), v4, true},
		{"len - 14 = ip[2:2]", v4, true},
		{"ip[2:2] - ((ip[0] & 0xf) << 2) - 8 = 4", v4, true}, // the UDP payload
		{"udp[ip[0] & 0xf - 5] = 0", v4, true},               // udp[0]: source port high byte
		{"ip[8] - 65 > 100", v4, true},                       // 64 - 65 wraps
		{"-ip[8] = 0xffffffc0", v4, true},
		{"ip[8] >> ip[1] = 64", v4, true},
		{"1 + 5 % 3 + 1 = 2", v4, true}, // tcpdump's '%' takes all to its right
		{"2 * 3 ^ 1 = 4", v4, true},
	}
	for _, tt := range tests {
		raw, err := CompileRaw(tt.expr, &Options{VLAN: VLANInPacket})
		if err != nil {
			t.Errorf("%q: %v", tt.expr, err)
			continue
		}
		if got := newVM(t, raw).run(t, tt.f, meta{}); got != tt.want {
			t.Errorf("%q: accepted %v, want %v\n%s", tt.expr, got, tt.want, formatD(raw))
		}
	}
}

func itoa(n int) string {
	if n < 10 {
		return string(rune('0' + n))
	}
	return itoa(n/10) + string(rune('0'+n%10))
}

// TestProtochain checks the unrolled walk on chains built for it,
// including what tcpdump gets wrong (the offset after an Authentication
// Header) and what it does without limit (chains longer than
// protochainMaxHeaders).
func TestProtochain(t *testing.T) {
	type ext = frame.IPv6ExtHeader
	hbh := ext{Type: proto.IPProtoHopByHop, Data: make([]byte, 6)}
	dst := ext{Type: proto.IPProtoDstOpts, Data: make([]byte, 14)}
	ah := ext{Type: proto.IPProtoAH, Data: make([]byte, 10)} // 12 bytes
	frag := ext{Type: proto.IPProtoFragment, Data: make([]byte, 6)}
	v6 := func(last uint8, hs ...ext) []byte {
		b := udpFrame(t, frame.UDPSpec{
			Src: netip.MustParseAddrPort("[fd00::2]:9"), Dst: netip.MustParseAddrPort("[fd00::1]:7"),
			ExtHeaders: hs, Payload: make([]byte, 8),
		})
		off, nh := 14+6, b[14+6]
		pos := 14 + 40
		for proto.IsIPv6ExtensionHeader(nh) {
			off = pos
			n := (int(b[pos+1]) + 1) * 8
			if nh == proto.IPProtoAH {
				n = (int(b[pos+1]) + 2) * 4
			}
			nh, pos = b[pos], pos+n
		}
		b[off] = last
		return b
	}
	many := func(n int) []ext {
		hs := make([]ext, n)
		for i := range hs {
			hs[i] = dst
		}
		return hs
	}
	v4ah := udpFrame(t, frame.UDPSpec{
		Src: netip.MustParseAddrPort("198.18.0.2:9"), Dst: netip.MustParseAddrPort("198.18.0.1:7"), Payload: make([]byte, 32),
	})
	v4ah[14+9] = proto.IPProtoAH
	v4ah[34], v4ah[35] = proto.IPProtoAH, 1 // AH of 12 bytes, then another
	v4ah[46], v4ah[47] = proto.IPProtoTCP, 0
	tests := []struct {
		expr string
		f    []byte
		want bool
	}{
		{"ip6 protochain 6", v6(proto.IPProtoTCP), true},
		{"ip6 protochain 6", v6(proto.IPProtoTCP, hbh, dst), true},
		{"ip6 protochain 6", v6(proto.IPProtoTCP, hbh, ah, dst), true},
		{"ip6 protochain 51", v6(proto.IPProtoTCP, hbh, ah, dst), true},
		{"ip6 protochain 60", v6(proto.IPProtoTCP, hbh, ah, dst), true},
		{"ip6 protochain 17", v6(proto.IPProtoTCP, hbh, ah, dst), false},
		{"ip6 protochain 44", v6(proto.IPProtoUDP, frag), true},
		{"ip6 protochain 17", v6(proto.IPProtoUDP, frag), true},
		{"ip6 protochain 17", v6(proto.IPProtoNoNext, hbh), false},
		{"ip6 protochain 59", v6(proto.IPProtoNoNext, hbh), true},
		{"ip6 protochain 17", v6(proto.IPProtoUDP, many(protochainMaxHeaders)...), true},
		{"ip6 protochain 17", v6(proto.IPProtoUDP, many(protochainMaxHeaders+1)...), false},
		{"ip6 protochain 17", v6(proto.IPProtoUDP, hbh, dst)[:14+40+9], false}, // cut before dst's length
		{"ip protochain 6", v4ah, true},
		{"protochain 6", v4ah, true},
		{"ip protochain 17", v4ah, false},
		{"ip6 protochain 6", v4ah, false},
		{"protochain 17", v6(proto.IPProtoUDP, dst), true},
	}
	for _, tt := range tests {
		if got := newVM(t, compileRaw(t, tt.expr, nil)).run(t, tt.f, meta{}); got != tt.want {
			t.Errorf("%q on % x: accepted %v, want %v", tt.expr, tt.f, got, tt.want)
		}
	}
}
