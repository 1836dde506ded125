package bpf

import (
	"encoding/binary"
	"errors"
	"fmt"

	xbpf "golang.org/x/net/bpf"
)

// meta is the socket-buffer metadata Linux exposes to a filter through
// ancillary loads, which x/net/bpf's VM does not model.
type meta struct {
	pktType     uint32 // PACKET_HOST 0, BROADCAST 1, MULTICAST 2, OTHERHOST 3, OUTGOING 4
	vlanPresent bool
	vlanTCI     uint16
	ifIndex     uint32
}

// errLoop is a program that ran too long: tcpdump's protochain code jumps
// backwards (which neither Linux nor x/net/bpf accept), and on some frames
// never stops.
var errLoop = errors.New("program loops")

// evalSteps bounds a run; no program of ours runs more than
// MaxInstructions.
const evalSteps = 1 << 16

// evalRaw is a classic BPF interpreter with the kernel's semantics (a load
// outside the frame or a division by zero ends the program with 0) plus
// the ancillary loads the compiler emits. It is checked against x/net/bpf's
// VM on every program without ancillary loads (vm.run). Shifts by 32 or
// more give 0, as in the VM (Linux masks the count to 5 bits; both
// compilers emit the same instruction). A "ja" runs backwards when its
// offset is negative as a 32-bit number, as libpcap's own interpreter
// reads tcpdump's protochain loop.
func evalRaw(prog []xbpf.RawInstruction, pkt []byte, m meta) (uint32, error) {
	r, _, err := evalRawWrap(prog, pkt, m)
	return r, err
}

// evalRawWrap is evalRaw, also reporting whether an indirect load's X + k
// wrapped past 2^32. Linux and libpcap wrap (the load reads low in the
// frame); x/net/bpf's VM does not (the load is out of range), so the two
// are only compared when nothing wrapped.
func evalRawWrap(prog []xbpf.RawInstruction, pkt []byte, m meta) (uint32, bool, error) {
	var a, x uint32
	wrapped := false
	var mem [16]uint32
	load := func(off uint32, size uint32) (uint32, bool) {
		if off >= skfAdOff {
			switch off - skfAdOff {
			case skfAdPktType:
				return m.pktType, true
			case skfAdIfIndex:
				return m.ifIndex, true
			case skfAdVLANTag:
				return uint32(m.vlanTCI), true
			case skfAdVLANTagPresent:
				if m.vlanPresent {
					return 1, true
				}
				return 0, true
			}
			return 0, false
		}
		if uint64(off)+uint64(size) > uint64(len(pkt)) {
			return 0, false
		}
		switch size {
		case 1:
			return uint32(pkt[off]), true
		case 2:
			return uint32(binary.BigEndian.Uint16(pkt[off:])), true
		}
		return binary.BigEndian.Uint32(pkt[off:]), true
	}
	steps := 0
	for pc := 0; pc < len(prog); pc++ {
		if steps++; steps > evalSteps {
			return 0, wrapped, errLoop
		}
		if pc < 0 {
			return 0, wrapped, fmt.Errorf("jump before the program's start")
		}
		ins := prog[pc]
		op := ins.Op
		k := ins.K
		switch op & 0x07 {
		case bpfLD, bpfLDX:
			var v uint32
			size := uint32(4)
			switch op & 0x18 {
			case bpfH:
				size = 2
			case bpfB:
				size = 1
			}
			switch op & 0xe0 {
			case bpfIMM:
				v = k
			case bpfABS:
				var ok bool
				if v, ok = load(k, size); !ok {
					return 0, wrapped, nil
				}
			case bpfIND:
				var ok bool
				wrapped = wrapped || x+k < x
				if v, ok = load(x+k, size); !ok {
					return 0, wrapped, nil
				}
			case bpfMEM:
				v = mem[k&15]
			case bpfLEN:
				v = uint32(len(pkt))
			case bpfMSH:
				b, ok := load(k, 1)
				if !ok {
					return 0, wrapped, nil
				}
				v = 4 * (b & 0xf)
			}
			if op&0x07 == bpfLD {
				a = v
			} else {
				x = v
			}
		case bpfST:
			mem[k&15] = a
		case bpfSTX:
			mem[k&15] = x
		case bpfALU:
			v := k
			if op&bpfX != 0 {
				v = x
			}
			switch op & 0xf0 {
			case 0x00:
				a += v
			case 0x10:
				a -= v
			case 0x20:
				a *= v
			case 0x30:
				if v == 0 {
					return 0, wrapped, nil
				}
				a /= v
			case 0x40:
				a |= v
			case 0x50:
				a &= v
			case 0x60:
				a <<= v
			case 0x70:
				a >>= v
			case 0x80:
				a = -a
			case 0x90:
				if v == 0 {
					return 0, wrapped, nil
				}
				a %= v
			case 0xa0:
				a ^= v
			default:
				return 0, wrapped, fmt.Errorf("pc %d: bad ALU op %#x", pc, op)
			}
		case bpfJMP:
			if op&0xf0 == bpfJA {
				pc += int(int32(k))
				continue
			}
			v := k
			if op&bpfX != 0 {
				v = x
			}
			var taken bool
			switch op & 0xf0 {
			case bpfJEQ:
				taken = a == v
			case bpfJGT:
				taken = a > v
			case bpfJGE:
				taken = a >= v
			case bpfJSET:
				taken = a&v != 0
			default:
				return 0, wrapped, fmt.Errorf("pc %d: bad jump %#x", pc, op)
			}
			if taken {
				pc += int(ins.Jt)
			} else {
				pc += int(ins.Jf)
			}
		case bpfRET:
			if op&0x18 == bpfA {
				return a, wrapped, nil
			}
			return k, wrapped, nil
		case bpfMISC:
			if op&0xf8 == bpfTXA {
				a = x
			} else {
				x = a
			}
		}
	}
	return 0, wrapped, fmt.Errorf("program ran off its end")
}

// hasAncillary reports whether prog reads Linux ancillary data.
func hasAncillary(prog []xbpf.RawInstruction) bool {
	for _, ins := range prog {
		if ins.Op&0x07 == bpfLD && ins.Op&0xe0 == bpfABS && ins.K >= skfAdOff {
			return true
		}
	}
	return false
}
