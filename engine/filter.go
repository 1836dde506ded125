package engine

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	xbpf "golang.org/x/net/bpf"

	"github.com/pktengine/pktengine/bpf"
	"github.com/pktengine/pktengine/frame"
	"github.com/pktengine/pktengine/proto"
)

// filterSnapLen is what the filter returns for an accepted frame: the
// whole frame, whatever the MTU.
const filterSnapLen = 0x40000

// packetOutgoing is PACKET_OUTGOING, the skb packet type of frames this
// host sends, as SKF_AD_PKTTYPE reports it.
const packetOutgoing = 4

// buildFilter returns the classic BPF program for the engine's receive
// rings. It accepts
//
//   - UDP (IPv4, or IPv6 with UDP or a Fragment header after the fixed
//     header and any Hop-by-Hop, Routing and Destination Options headers:
//     see walkIPv6) to any of the engine's addresses, to a broadcast
//     address of its prefixes, and to any multicast group, on every port:
//     the engine must see unbound ports to count them and answer with
//     ICMP; if expr is set, these must also match it;
//   - ARP whose target is an engine address: requests to answer (owned)
//     and replies to learn from (owned or shared);
//   - Neighbor Solicitations whose target is an owned address, Neighbor
//     Advertisements to any engine address;
//   - ICMP and ICMPv6 echo requests (and other ICMPv4) to owned addresses,
//
// all of them untagged or with one VLAN tag left in the frame (the
// kernel has already moved the outermost one into metadata), and
// nothing the host sends itself. withPktType false leaves out the
// packet-type test, which x/net/bpf's VM cannot run.
func buildFilter(addrs *addrSet, expr string, withPktType bool) ([]xbpf.RawInstruction, error) {
	var user []xbpf.Instruction
	if expr != "" {
		var err error
		user, err = bpf.Compile(expr, &bpf.Options{SnapLen: filterSnapLen, Netmask: addrs.netmask4()})
		if err != nil {
			return nil, fmt.Errorf("engine: filter %q: %w", expr, err)
		}
	}
	prog, err := filterProgram(addrs, user, withPktType)
	if err != nil {
		return nil, err
	}
	raw, err := xbpf.Assemble(prog)
	if err != nil {
		return nil, fmt.Errorf("engine: assembling the filter: %w", err)
	}
	return raw, nil
}

// netmask4 is the netmask of the first IPv4 address, which "ip
// broadcast" in a filter expression needs (tcpdump takes the capture
// interface's, from its first IPv4 address too), or the zero Addr.
func (s *addrSet) netmask4() netip.Addr {
	for _, la := range s.list {
		if la.addr.Is4() {
			m := ^uint32(0) << (32 - la.prefix.Bits())
			if la.prefix.Bits() == 0 {
				m = 0
			}
			return netip.AddrFrom4([4]byte{byte(m >> 24), byte(m >> 16), byte(m >> 8), byte(m)})
		}
	}
	return netip.Addr{}
}

func filterProgram(addrs *addrSet, user []xbpf.Instruction, withPktType bool) ([]xbpf.Instruction, error) {
	var all4, owned4, all6, owned6 [][]byte
	var groups4 [][]byte
	for _, la := range addrs.list {
		if la.addr.Is4() {
			b := la.addr.As4()
			all4 = append(all4, b[:])
			if la.owned {
				owned4 = append(owned4, b[:])
			}
			if la.bcast.IsValid() {
				g := la.bcast.As4()
				groups4 = append(groups4, g[:])
			}
		} else {
			b := la.addr.As16()
			all6 = append(all6, b[:])
			if la.owned {
				owned6 = append(owned6, b[:])
			}
		}
	}
	a := newAsm()
	if withPktType {
		a.emit(xbpf.LoadExtension{Num: xbpf.ExtType})
		a.jeqFar(packetOutgoing, "drop")
	}
	a.emit(xbpf.LoadAbsolute{Off: 12, Size: 2})
	a.jeqFar(uint32(proto.EtherTypeVLAN), "tagged")
	a.jeqFar(uint32(proto.EtherTypeQinQ), "tagged")
	body := func(l2 uint32) {
		l := func(s string) string { return fmt.Sprintf("%s%d", s, l2) }
		// A holds the EtherType.
		a.jeqFar(uint32(proto.EtherTypeIPv4), l("ipv4"))
		a.jeqFar(uint32(proto.EtherTypeIPv6), l("ipv6"))
		a.jeqFar(uint32(proto.EtherTypeARP), l("arp"))
		a.ja("drop")

		a.label(l("ipv4"))
		a.emit(xbpf.LoadAbsolute{Off: l2 + 9, Size: 1})
		a.jeqFar(uint32(proto.IPProtoUDP), l("udp4"))
		a.jeqFar(uint32(proto.IPProtoICMP), l("icmp4"))
		a.ja("drop")

		a.label(l("udp4"))
		a.emit(xbpf.LoadAbsolute{Off: l2 + 16, Size: 4})
		for _, b := range append(all4, groups4...) {
			a.jeqFar(binary.BigEndian.Uint32(b), "udp")
		}
		a.jeqFar(0xffffffff, "udp")
		a.emit(xbpf.ALUOpConstant{Op: xbpf.ALUOpAnd, Val: 0xf0000000})
		a.jeqFar(0xe0000000, "udp") // 224.0.0.0/4
		a.ja("drop")

		a.label(l("icmp4"))
		a.emit(xbpf.LoadAbsolute{Off: l2 + 16, Size: 4})
		for _, b := range owned4 {
			a.jeqFar(binary.BigEndian.Uint32(b), "accept")
		}
		a.ja("drop")

		a.label(l("arp"))
		a.emit(xbpf.LoadAbsolute{Off: l2 + 24, Size: 4}) // target protocol address
		for _, b := range all4 {
			a.jeqFar(binary.BigEndian.Uint32(b), "accept")
		}
		a.ja("drop")

		a.label(l("ipv6"))
		a.emit(xbpf.LoadAbsolute{Off: l2 + 6, Size: 1})
		a.jeqFar(uint32(proto.IPProtoICMPv6), l("icmp6"))
		a.walkIPv6(l2, l("udp6"), l("ext"))

		a.label(l("udp6"))
		a.match6(l2+24, all6, "udp", l("u6"))
		a.emit(xbpf.LoadAbsolute{Off: l2 + 24, Size: 1})
		a.jeqFar(0xff, "udp") // ff00::/8
		a.ja("drop")

		a.label(l("icmp6"))
		a.emit(xbpf.LoadAbsolute{Off: l2 + 40, Size: 1})
		a.jeqFar(uint32(frame.ICMPv6NeighborSolicitation), l("ns"))
		a.jeqFar(uint32(frame.ICMPv6NeighborAdvertisement), l("na"))
		a.jeqFar(uint32(frame.ICMPv6EchoRequest), l("echo6"))
		a.ja("drop")

		a.label(l("ns"))
		a.match6(l2+48, owned6, "accept", l("ns"))
		a.ja("drop")
		a.label(l("na"))
		a.match6(l2+24, all6, "accept", l("na"))
		a.ja("drop")
		a.label(l("echo6"))
		a.match6(l2+24, owned6, "accept", l("echo6"))
		a.ja("drop")
	}
	body(frame.EthernetHeaderLen)
	a.label("tagged")
	a.emit(xbpf.LoadAbsolute{Off: frame.EthernetHeaderLen + frame.VLANTagLen - 2, Size: 2}) // the EtherType after the tag
	body(frame.EthernetHeaderLen + frame.VLANTagLen)

	a.label("accept")
	a.emit(xbpf.RetConstant{Val: filterSnapLen})
	a.label("drop")
	a.emit(xbpf.RetConstant{Val: 0})
	a.label("udp")
	if len(user) == 0 {
		a.emit(xbpf.RetConstant{Val: filterSnapLen})
	} else {
		// The user's program runs as the tail: its jumps are relative
		// and every path through it ends in a return.
		a.ins = append(a.ins, user...)
	}
	prog, err := a.resolve()
	if err != nil {
		return nil, err
	}
	if len(prog) > bpf.MaxInstructions {
		return nil, fmt.Errorf("engine: the filter needs %d instructions, more than the kernel's %d", len(prog), bpf.MaxInstructions)
	}
	return prog, nil
}

// walkIPv6 follows the Next Header chain of an IPv6 packet, whose
// fixed header's Next Header is in A, and jumps to udp if it reaches UDP
// or a Fragment header, else to drop. Hop-by-Hop, Routing and
// Destination Options headers are walked, each (Hdr Ext Len + 1) * 8
// bytes long (RFC 8200 section 4), up to frame.MaxIPv6ExtHeaders of them;
// a chain that still goes on after that many is passed too, for Decode
// to count as ipv6-too-many-ext-headers. A Fragment header ends the walk:
// fragments are counted, never reassembled, and what follows the header
// of a later fragment is data. A chain whose next header lies past the
// end of the frame makes a load fail, which drops the frame (the kernel
// returns 0), as with any truncated header; a last header that claims
// more than the frame holds but names UDP passes, for Decode to count.
// Anything else (ICMPv6 behind Hop-by-Hop, as MLD
// is sent; TCP; an Authentication Header) is dropped: the engine has no
// use for it. X holds the offset of the header whose type is in A.
//
// Classic BPF jumps only forward, so the loop is unrolled.
func (a *asm) walkIPv6(l2 uint32, udp, prefix string) {
	a.emit(xbpf.LoadConstant{Dst: xbpf.RegX, Val: l2 + frame.IPv6HeaderLen})
	for i := 0; ; i++ {
		next := fmt.Sprintf("%s%d", prefix, i)
		a.jeqFar(uint32(proto.IPProtoUDP), udp)
		a.jeqFar(uint32(proto.IPProtoFragment), udp)
		if i == frame.MaxIPv6ExtHeaders {
			// One more extension header than Decode walks: let
			// Decode say so.
			for _, h := range []uint8{proto.IPProtoHopByHop, proto.IPProtoRouting, proto.IPProtoDstOpts} {
				a.jeqFar(uint32(h), udp)
			}
			a.ja("drop")
			return
		}
		for _, h := range []uint8{proto.IPProtoHopByHop, proto.IPProtoRouting, proto.IPProtoDstOpts} {
			a.jeqFar(uint32(h), next)
		}
		a.ja("drop")
		a.label(next)
		// A = the header's Next Header, X = the offset after it.
		a.emit(xbpf.LoadIndirect{Off: 0, Size: 1})
		a.emit(xbpf.StoreScratch{Src: xbpf.RegA, N: 0})
		a.emit(xbpf.LoadIndirect{Off: 1, Size: 1})
		a.emit(xbpf.ALUOpConstant{Op: xbpf.ALUOpAdd, Val: 1})
		a.emit(xbpf.ALUOpConstant{Op: xbpf.ALUOpShiftLeft, Val: 3})
		a.emit(xbpf.ALUOpX{Op: xbpf.ALUOpAdd})
		a.emit(xbpf.TAX{})
		a.emit(xbpf.LoadScratch{Dst: xbpf.RegA, N: 0})
	}
}

// asm assembles classic BPF with symbolic labels. Conditional jumps reach
// only 255 instructions, so far targets go through jeqFar: a conditional
// skip over an unconditional jump, which reaches anywhere.
type asm struct {
	ins    []xbpf.Instruction
	labels map[string]int
	fixups []fixup
}

type fixup struct {
	at          int
	label       string // Jump target
	true, false string // JumpIf targets ("" falls through)
}

func newAsm() *asm { return &asm{labels: make(map[string]int)} }

func (a *asm) emit(i xbpf.Instruction) { a.ins = append(a.ins, i) }

func (a *asm) label(name string) { a.labels[name] = len(a.ins) }

func (a *asm) ja(label string) {
	a.fixups = append(a.fixups, fixup{at: len(a.ins), label: label})
	a.emit(xbpf.Jump{})
}

// jeq jumps to t if A == v, else to f (near labels only).
func (a *asm) jeq(v uint32, t, f string) {
	a.fixups = append(a.fixups, fixup{at: len(a.ins), true: t, false: f})
	a.emit(xbpf.JumpIf{Cond: xbpf.JumpEqual, Val: v})
}

// jeqFar jumps to label if A == v and falls through otherwise.
func (a *asm) jeqFar(v uint32, label string) {
	a.emit(xbpf.JumpIf{Cond: xbpf.JumpEqual, Val: v, SkipTrue: 0, SkipFalse: 1})
	a.ja(label)
}

// match6 jumps to hit if the 16 bytes at off equal one of addrs, and
// falls through otherwise.
func (a *asm) match6(off uint32, addrs [][]byte, hit, prefix string) {
	for i, b := range addrs {
		miss := fmt.Sprintf("%s-miss%d", prefix, i)
		for w := range 4 {
			a.emit(xbpf.LoadAbsolute{Off: off + uint32(4*w), Size: 4})
			v := binary.BigEndian.Uint32(b[4*w:])
			if w < 3 {
				a.jeq(v, "", miss)
			} else {
				a.jeqFar(v, hit)
			}
		}
		a.label(miss)
	}
}

func (a *asm) resolve() ([]xbpf.Instruction, error) {
	target := func(name string, at int) (int, error) {
		if name == "" {
			return 0, nil
		}
		l, ok := a.labels[name]
		if !ok {
			return 0, fmt.Errorf("engine: filter label %q undefined", name)
		}
		if l <= at {
			return 0, fmt.Errorf("engine: filter label %q is not forward", name)
		}
		return l - at - 1, nil
	}
	for _, f := range a.fixups {
		switch ins := a.ins[f.at].(type) {
		case xbpf.Jump:
			d, err := target(f.label, f.at)
			if err != nil {
				return nil, err
			}
			ins.Skip = uint32(d)
			a.ins[f.at] = ins
		case xbpf.JumpIf:
			t, err := target(f.true, f.at)
			if err != nil {
				return nil, err
			}
			e, err := target(f.false, f.at)
			if err != nil {
				return nil, err
			}
			if t > 255 || e > 255 {
				return nil, fmt.Errorf("engine: filter jump too far")
			}
			ins.SkipTrue, ins.SkipFalse = uint8(t), uint8(e)
			a.ins[f.at] = ins
		}
	}
	return a.ins, nil
}
