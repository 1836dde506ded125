package loadgen

import "golang.org/x/net/bpf"

// replySnapLen is how much of a reply the receive ring keeps: headers and
// the signature (14 + 40 + 8 + 18 = 80 bytes for IPv6), rounded up.
const replySnapLen = 128

// ReplyFilter returns the classic BPF program of the receive ring: UDP over
// IPv4 (not a non-first fragment) or IPv6 (UDP right after the fixed
// header) whose destination port is within [lo, hi], the generator's
// source ports. It keeps replySnapLen bytes of each frame. The ring has
// already moved a VLAN tag out of the frame, so the EtherType is at 12.
func ReplyFilter(lo, hi uint16) []bpf.Instruction {
	const (
		drop = 0
		etIP = 0x0800
		etV6 = 0x86dd
	)
	return []bpf.Instruction{
		/* 0 */ bpf.LoadAbsolute{Off: 12, Size: 2},
		/* 1 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: etIP, SkipFalse: 7},
		// IPv4: protocol UDP, fragment offset 0, port at 14 + IHL×4 + 2.
		/* 2 */ bpf.LoadAbsolute{Off: 23, Size: 1},
		/* 3 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: 17, SkipFalse: 11},
		/* 4 */ bpf.LoadAbsolute{Off: 20, Size: 2},
		/* 5 */ bpf.JumpIf{Cond: bpf.JumpBitsSet, Val: 0x1fff, SkipTrue: 9},
		/* 6 */ bpf.LoadMemShift{Off: 14},
		/* 7 */ bpf.LoadIndirect{Off: 14 + 2, Size: 2},
		/* 8 */ bpf.Jump{Skip: 4},
		// IPv6: next header UDP, port at 14 + 40 + 2.
		/* 9 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: etV6, SkipFalse: 5},
		/* 10 */ bpf.LoadAbsolute{Off: 20, Size: 1},
		/* 11 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: 17, SkipFalse: 3},
		/* 12 */ bpf.LoadAbsolute{Off: 56, Size: 2},
		// Destination port in [lo, hi].
		/* 13 */ bpf.JumpIf{Cond: bpf.JumpGreaterOrEqual, Val: uint32(lo), SkipFalse: 1},
		/* 14 */ bpf.JumpIf{Cond: bpf.JumpLessOrEqual, Val: uint32(hi), SkipTrue: 1},
		/* 15 */ bpf.RetConstant{Val: drop},
		/* 16 */ bpf.RetConstant{Val: replySnapLen},
	}
}
