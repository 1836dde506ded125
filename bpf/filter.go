package bpf

import (
	"errors"
	"fmt"
	"net/netip"

	xbpf "golang.org/x/net/bpf"

	"github.com/pktengine/pktengine/proto"
)

// A Filter is a predicate over Ethernet frames. Build one from the
// functions below or from a tcpdump expression (Parse), then turn it into a
// program with Program or Assemble. The zero Filter matches every frame.
type Filter struct {
	lower func(l *lowerer) (*expr, error)
}

func leaf(f func(l *lowerer) *expr) Filter {
	return Filter{func(l *lowerer) (*expr, error) { return f(l), nil }}
}

func (f Filter) lowerWith(l *lowerer) (*expr, error) {
	if f.lower == nil {
		return exprTrue, nil
	}
	return f.lower(l)
}

// Program compiles f into classic BPF instructions. It fails if f matches
// nothing or needs more than MaxInstructions.
func (f Filter) Program(o *Options) ([]xbpf.Instruction, error) {
	e, err := f.lowerWith(newLowerer(o))
	if err != nil {
		return nil, err
	}
	return generate(e, o.snapLen())
}

// Assemble compiles f into the raw form that SO_ATTACH_FILTER and
// ring.Config.Filter take. The result has passed the checks of x/net/bpf's
// VM (jumps in bounds, no division by zero).
func (f Filter) Assemble(o *Options) ([]xbpf.RawInstruction, error) {
	prog, err := f.Program(o)
	if err != nil {
		return nil, err
	}
	return assemble(prog)
}

func assemble(prog []xbpf.Instruction) ([]xbpf.RawInstruction, error) {
	if len(prog) > MaxInstructions {
		return nil, fmt.Errorf("bpf: program has %d instructions, more than the kernel's limit of %d", len(prog), MaxInstructions)
	}
	if _, err := xbpf.NewVM(prog); err != nil {
		return nil, fmt.Errorf("bpf: generated program is invalid: %w", err)
	}
	raw, err := xbpf.Assemble(prog)
	if err != nil {
		return nil, fmt.Errorf("bpf: assembling: %w", err)
	}
	return raw, nil
}

// And matches frames that every f matches; tests run left to right.
func And(fs ...Filter) Filter { return join(fs, exprTrue, and) }

// Or matches frames that any f matches. Or() matches nothing.
func Or(fs ...Filter) Filter { return join(fs, exprFalse, or) }

// join lowers fs left to right and joins them with op; with no filter it
// is identity (everything for And, nothing for Or).
func join(fs []Filter, identity *expr, op func(l, r *expr) *expr) Filter {
	return Filter{func(l *lowerer) (*expr, error) {
		e := identity
		for i, f := range fs {
			x, err := f.lowerWith(l)
			if err != nil {
				return nil, err
			}
			if i == 0 {
				e = x
			} else {
				e = op(e, x)
			}
		}
		return e, nil
	}}
}

// Not matches the frames f does not.
func Not(f Filter) Filter {
	return Filter{func(l *lowerer) (*expr, error) {
		x, err := f.lowerWith(l)
		if err != nil {
			return nil, err
		}
		return not(x), nil
	}}
}

// EtherType matches frames whose (innermost tested) EtherType is t.
func EtherType(t uint16) Filter {
	return leaf(func(l *lowerer) *expr { return l.linktype(t) })
}

// UDP4 matches IPv4 UDP datagrams, fragments included.
func UDP4() Filter { return leaf(func(l *lowerer) *expr { return l.ipProto(proto.IPProtoUDP) }) }

// UDP6 matches IPv6 UDP: the next header is UDP, or a fragment header
// followed by UDP.
func UDP6() Filter { return leaf(func(l *lowerer) *expr { return l.ip6Proto(proto.IPProtoUDP) }) }

// UDP matches IPv4 or IPv6 UDP ("udp" in tcpdump).
func UDP() Filter { return leaf(func(l *lowerer) *expr { return l.anyProto(proto.IPProtoUDP) }) }

// UDPDstPort matches IPv4 and IPv6 UDP whose destination port is one of
// ports. As in tcpdump, an IPv4 fragment other than the first never
// matches (it has no UDP header), the IPv4 header length is read from the
// frame, and IPv6 UDP must follow the fixed header directly.
func UDPDstPort(ports ...uint16) Filter {
	return Filter{func(l *lowerer) (*expr, error) {
		if len(ports) == 0 {
			return nil, errors.New("bpf: UDPDstPort needs at least one port")
		}
		return l.port(proto.IPProtoUDP, dirDst, portSet(ports)), nil
	}}
}

// UDPDstPortRange matches UDP whose destination port is in [lo, hi].
func UDPDstPortRange(lo, hi uint16) Filter {
	return leaf(func(l *lowerer) *expr { return l.port(proto.IPProtoUDP, dirDst, portRange(lo, hi)) })
}

// DstAddr matches IPv4 or IPv6 packets whose destination lies in p (an
// address is a /32 or /128 prefix: netip.PrefixFrom(a, a.BitLen())).
func DstAddr(p netip.Prefix) Filter {
	return Filter{func(l *lowerer) (*expr, error) {
		if !p.IsValid() {
			return nil, errors.New("bpf: DstAddr: invalid prefix")
		}
		p = p.Masked()
		a := p.Addr()
		if a.Is4() || a.Is4In6() {
			a4 := a.Unmap().As4()
			bits := p.Bits()
			if a.Is4In6() {
				bits -= 96
			}
			return l.ipv4Host(be32(a4[:]), prefixMask32(bits), dirDst), nil
		}
		return l.ipv6Host(a.As16(), prefixMask128(p.Bits()), dirDst), nil
	}}
}

// NotOutgoing rejects frames the host transmitted itself (packet type
// PACKET_OUTGOING in Linux ancillary data), so an engine never reads back
// its own replies. It is tcpdump's "inbound".
func NotOutgoing() Filter { return leaf(func(*lowerer) *expr { return not(outgoing()) }) }

// AnyVLAN makes VLAN match any VLAN ID.
const AnyVLAN = -1

// VLAN matches frames carrying an 802.1Q/802.1ad tag with VLAN ID id (or
// any, with AnyVLAN) whose contents match inner. With VLANAncillary the
// tag is read from Linux ancillary data; with VLANInPacket from the frame,
// and inner's offsets move past the tag. A zero inner matches anything.
func VLAN(id int, inner Filter) Filter {
	return Filter{func(l *lowerer) (*expr, error) {
		if id > vlanIDMask || id < AnyVLAN {
			return nil, fmt.Errorf("bpf: VLAN ID %d out of range 0-4095", id)
		}
		saved := *l
		tag := l.vlan(id)
		e, err := inner.lowerWith(l)
		*l = saved
		if err != nil {
			return nil, err
		}
		return and(tag, e), nil
	}}
}

func prefixMask32(bits int) uint32 {
	if bits <= 0 {
		return 0
	}
	return ^uint32(0) << (32 - bits)
}

func prefixMask128(bits int) (m [16]byte) {
	for i := 0; i < 16 && bits > 0; i++ {
		if bits >= 8 {
			m[i] = 0xff
		} else {
			m[i] = ^byte(0) << (8 - bits)
		}
		bits -= 8
	}
	return m
}
