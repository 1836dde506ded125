package bpf

import (
	xbpf "golang.org/x/net/bpf"

	"github.com/pktengine/pktengine/frame"
	"github.com/pktengine/pktengine/proto"
)

// ReplyFilter returns the classic BPF program of the load generator's
// receive ring: UDP over IPv4 (not a non-first fragment) or IPv6 (UDP
// right after the fixed header) whose destination port is within [lo, hi],
// the generator's source ports. It keeps snapLen bytes of each frame (zero
// means DefaultSnapLen). The ring has already moved a VLAN tag out of the
// frame, so the EtherType is at 12.
//
// It matches what "udp dst portrange lo-hi" does, in fewer instructions.
func ReplyFilter(lo, hi uint16, snapLen uint32) ([]xbpf.RawInstruction, error) {
	if snapLen == 0 {
		snapLen = DefaultSnapLen
	}
	const l2 = frame.EthernetHeaderLen
	a := newAssembler()
	a.emit(xbpf.LoadAbsolute{Off: 12, Size: 2})
	a.jump(xbpf.JumpEqual, uint32(proto.EtherTypeIPv4), "", "ipv6")
	// IPv4: protocol UDP, fragment offset 0, port at IHL×4 + 2.
	a.emit(xbpf.LoadAbsolute{Off: l2 + 9, Size: 1})
	a.jump(xbpf.JumpEqual, uint32(proto.IPProtoUDP), "", "drop")
	a.emit(xbpf.LoadAbsolute{Off: l2 + 6, Size: 2})
	a.jump(xbpf.JumpBitsSet, ipv4FragOffsetMask, "drop", "")
	a.emit(
		xbpf.LoadMemShift{Off: l2},
		xbpf.LoadIndirect{Off: l2 + 2, Size: 2},
	)
	a.ja("port")
	// IPv6: next header UDP, port at 40 + 2.
	a.label("ipv6")
	a.jump(xbpf.JumpEqual, uint32(proto.EtherTypeIPv6), "", "drop")
	a.emit(xbpf.LoadAbsolute{Off: l2 + 6, Size: 1})
	a.jump(xbpf.JumpEqual, uint32(proto.IPProtoUDP), "", "drop")
	a.emit(xbpf.LoadAbsolute{Off: l2 + frame.IPv6HeaderLen + 2, Size: 2})
	// Destination port in [lo, hi].
	a.label("port")
	a.jump(xbpf.JumpGreaterOrEqual, uint32(lo), "", "drop")
	a.jump(xbpf.JumpLessOrEqual, uint32(hi), "accept", "")
	a.label("drop")
	a.emit(xbpf.RetConstant{Val: 0})
	a.label("accept")
	a.emit(xbpf.RetConstant{Val: snapLen})
	return a.assemble()
}
