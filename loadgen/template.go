package loadgen

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/pktengine/pktengine/frame"
	"github.com/pktengine/pktengine/proto"
)

// FCSLen is the length of the Ethernet frame check sequence. Frame sizes
// in this package include it, as RFC 1242 and RFC 2544 count them; the
// frames written are FCSLen bytes shorter.
const FCSLen = 4

// SignatureLen is the length of the payload signature every frame carries.
const SignatureLen = 18

// DefaultSize is the frame size when none is given: the smallest Ethernet
// frame.
const DefaultSize = 64

// MaxFlows bounds the flows of one template: 24 bytes each.
const MaxFlows = 1 << 20

// RFC2544Sizes are the Ethernet frame sizes RFC 2544 section 9.1 asks a
// benchmark to use (1280 is not in RFC 2544 but in RFC 5180, for IPv6's
// minimum MTU).
var RFC2544Sizes = []int{64, 128, 256, 512, 1024, 1280, 1518}

// Spec describes the frames a Template writes: the addressing of the first
// flow, the ranges the flows are drawn from, and the frame size.
type Spec struct {
	SrcMAC, DstMAC frame.MAC

	// VLANs are tags to insert, outermost first (see frame.UDPSpec).
	VLANs []frame.VLANTag

	// Src and Dst are the addresses and ports of the first flow. Both
	// IPv4 or both IPv6.
	Src, Dst netip.AddrPort

	// SrcAddrs, SrcPorts and DstPorts are the lengths of the ranges of
	// consecutive source addresses, source ports and destination ports
	// starting at Src and Dst. Zero means 1.
	SrcAddrs, SrcPorts, DstPorts int

	// Flows is how many flows to cycle through: the first Flows of the
	// combinations, source port varying fastest, then source address,
	// then destination port. Zero means all SrcAddrs×SrcPorts×DstPorts
	// of them. If the ranges are all 1 and Flows is larger, the flows
	// vary the source port over Flows consecutive ports.
	Flows int

	// Size is the Ethernet frame size including the FCS; zero means
	// DefaultSize (64).
	Size int

	// TTL is the IPv4 TTL or IPv6 hop limit (0 means 64); TOS the IPv4
	// TOS or IPv6 traffic class.
	TTL, TOS uint8
}

// MinSize returns the smallest frame size (FCS included) that holds a UDP
// datagram with the signature: 64 for IPv4 and 84 for IPv6 without VLAN
// tags, 4 more per tag.
func MinSize(ipv6 bool, vlans int) int {
	ip := frame.IPv4MinHeaderLen
	if ipv6 {
		ip = frame.IPv6HeaderLen
	}
	return frame.EthernetHeaderLen + vlans*frame.VLANTagLen + ip + frame.UDPHeaderLen + SignatureLen + FCSLen
}

// MaxSize is the largest frame size for an MTU: an untagged frame of the
// MTU with its Ethernet header and FCS (1518 for 1500), plus 4 per tag.
func MaxSize(mtu, vlans int) int {
	return mtu + frame.EthernetHeaderLen + vlans*frame.VLANTagLen + FCSLen
}

// flow is what differs between the frames of two flows, with the
// checksums that go with it.
type flow struct {
	src    [16]byte // source address, 4 bytes for IPv4
	sport  uint16
	dport  uint16
	ipSum  uint16 // IPv4 header checksum field
	udpSum uint16 // folded sum over pseudo-header and datagram, checksum field and signature zero
}

// Template writes the frames of a Spec. It is read-only after NewTemplate,
// so any number of goroutines may call Write concurrently.
type Template struct {
	base    []byte // flow 0 with a zero signature
	v6      bool
	addrLen int
	srcOff  int // IP source address
	ipOff   int
	udpOff  int
	sigOff  int
	flows   []flow
	spec    Spec
}

// Errors from NewTemplate.
var (
	ErrSize  = errors.New("loadgen: frame size out of range")
	ErrFlows = errors.New("loadgen: flow ranges out of range")
)

// NewTemplate builds the template frame for s and derives every flow from
// the one before it with incremental checksum updates.
func NewTemplate(s *Spec) (*Template, error) {
	spec := *s
	spec.VLANs = append([]frame.VLANTag(nil), s.VLANs...)
	spec.Size = cmp.Or(spec.Size, DefaultSize)
	sa, sp, dp := cmp.Or(spec.SrcAddrs, 1), cmp.Or(spec.SrcPorts, 1), cmp.Or(spec.DstPorts, 1)
	if sa == 1 && sp == 1 && dp == 1 && spec.Flows > 1 {
		sp = spec.Flows
	}
	spec.SrcAddrs, spec.SrcPorts, spec.DstPorts = sa, sp, dp
	v6 := spec.Dst.Addr().Is6()
	if !spec.Src.Addr().IsValid() || !spec.Dst.Addr().IsValid() || spec.Src.Addr().Is6() != v6 {
		return nil, frame.ErrAddressFamily
	}
	if minSize := MinSize(v6, len(spec.VLANs)); spec.Size < minSize || spec.Size > 65535 {
		return nil, fmt.Errorf("%w: %d bytes, IPv%d needs at least %d", ErrSize, spec.Size, ipVersion(v6), minSize)
	}
	if sa < 1 || sp < 1 || dp < 1 || int(spec.Src.Port())+sp > 65536 || int(spec.Dst.Port())+dp > 65536 {
		return nil, fmt.Errorf("%w: ports %d+%d, %d+%d", ErrFlows, spec.Src.Port(), sp, spec.Dst.Port(), dp)
	}
	total := sa * sp * dp
	if sa > MaxFlows || sp*sa > MaxFlows || total > MaxFlows {
		return nil, fmt.Errorf("%w: %d flows, at most %d", ErrFlows, total, MaxFlows)
	}
	if spec.Flows == 0 {
		spec.Flows = total
	}
	if spec.Flows < 0 || spec.Flows > total {
		return nil, fmt.Errorf("%w: %d flows asked, the ranges give %d", ErrFlows, spec.Flows, total)
	}
	if last := addrAdd(spec.Src.Addr(), sa-1); !last.IsValid() {
		return nil, fmt.Errorf("%w: %d source addresses from %v", ErrFlows, sa, spec.Src.Addr())
	}

	n := spec.Size - FCSLen
	ipLen := frame.IPv4MinHeaderLen
	if v6 {
		ipLen = frame.IPv6HeaderLen
	}
	l2 := frame.EthernetHeaderLen + len(spec.VLANs)*frame.VLANTagLen
	payload := make([]byte, n-l2-ipLen-frame.UDPHeaderLen)
	for i := SignatureLen; i < len(payload); i++ {
		payload[i] = byte(i) // a pattern to recognise in captures
	}
	us := frame.UDPSpec{
		SrcMAC: spec.SrcMAC, DstMAC: spec.DstMAC, VLANs: spec.VLANs,
		Src: spec.Src, Dst: spec.Dst, TTL: spec.TTL, TOS: spec.TOS,
		DontFragment: true, Payload: payload,
	}
	base := make([]byte, n)
	if _, err := frame.BuildUDP(base, &us); err != nil {
		return nil, err
	}
	var p frame.Packet
	if r := p.Decode(base); r != frame.ReasonOK {
		return nil, fmt.Errorf("loadgen: template does not decode: %v", r)
	}
	t := &Template{
		base: base, v6: v6, addrLen: 4,
		ipOff: int(p.L3Off), udpOff: int(p.L4Off), sigOff: int(p.PayloadOff),
		spec: spec,
	}
	t.srcOff = t.ipOff + 12
	if v6 {
		t.addrLen, t.srcOff = 16, t.ipOff+8
	}
	t.flows = make([]flow, spec.Flows)
	t.deriveFlows()
	return t, nil
}

func ipVersion(v6 bool) int {
	if v6 {
		return 6
	}
	return 4
}

// addrAdd returns a + k, or the zero Addr if that runs off the end of the
// address family.
func addrAdd(a netip.Addr, k int) netip.Addr {
	if a.Is4() {
		b := a.As4()
		v := uint64(binary.BigEndian.Uint32(b[:])) + uint64(k)
		if v > 0xFFFFFFFF {
			return netip.Addr{}
		}
		binary.BigEndian.PutUint32(b[:], uint32(v))
		return netip.AddrFrom4(b)
	}
	b := a.As16()
	lo := binary.BigEndian.Uint64(b[8:])
	hi := binary.BigEndian.Uint64(b[:8])
	nlo := lo + uint64(k)
	if nlo < lo {
		if hi == ^uint64(0) {
			return netip.Addr{}
		}
		hi++
	}
	binary.BigEndian.PutUint64(b[:8], hi)
	binary.BigEndian.PutUint64(b[8:], nlo)
	return netip.AddrFrom16(b)
}

// flowTuple returns the source address index, source port and destination
// port index of flow i.
func (t *Template) flowTuple(i int) (sa, sp, dp int) {
	sp = i % t.spec.SrcPorts
	i /= t.spec.SrcPorts
	return i % t.spec.SrcAddrs, sp, i / t.spec.SrcAddrs
}

// deriveFlows walks the flows in order on a scratch copy of the template,
// changing only the fields that differ from the previous flow with the
// frame package's RFC 1624 setters, and records each flow's fields and
// checksums. The UDP sum is recorded with the signature zero, as in the
// template, so Write only has to add the signature's words.
func (t *Template) deriveFlows() {
	w := append([]byte(nil), t.base...)
	ip4 := frame.IPv4(w[t.ipOff:])
	udp := frame.UDP(w[t.udpOff:])
	cur := t.spec.Src.Addr()
	prevSA, prevSP, prevDP := 0, 0, 0
	for i := range t.flows {
		sa, sp, dp := t.flowTuple(i)
		if sa != prevSA {
			next := addrAdd(t.spec.Src.Addr(), sa)
			if t.v6 {
				udp.UpdateChecksumPseudoHeaderAddress(cur, next)
				frame.IPv6(w[t.ipOff:]).SetSource(next)
			} else {
				udp.UpdateChecksumPseudoHeaderAddress(cur, next)
				ip4.SetSourceChecksummed(next)
			}
			cur = next
		}
		if sp != prevSP {
			udp.SetSourcePortChecksummed(t.spec.Src.Port() + uint16(sp))
		}
		if dp != prevDP {
			udp.SetDestinationPortChecksummed(t.spec.Dst.Port() + uint16(dp))
		}
		prevSA, prevSP, prevDP = sa, sp, dp
		f := &t.flows[i]
		copy(f.src[:], w[t.srcOff:t.srcOff+t.addrLen])
		f.sport, f.dport = udp.SourcePort(), udp.DestinationPort()
		if !t.v6 {
			f.ipSum = ip4.Checksum()
		}
		// The field holds ^sum (or 0xFFFF for a sum of 0xFFFF's twin 0):
		// either way ^field is the sum modulo ones'-complement zero.
		f.udpSum = ^udp.Checksum()
	}
}

// Len returns the length of the frames Write produces: Size - FCSLen.
func (t *Template) Len() int { return len(t.base) }

// Size returns the frame size including the FCS.
func (t *Template) Size() int { return len(t.base) + FCSLen }

// IPv6 reports whether the frames are IPv6.
func (t *Template) IPv6() bool { return t.v6 }

// NumFlows returns the number of flows.
func (t *Template) NumFlows() int { return len(t.flows) }

// Spec returns the spec with its defaults filled in.
func (t *Template) Spec() Spec { return t.spec }

// Flow returns the source and destination of flow i.
func (t *Template) Flow(i int) (src, dst netip.AddrPort) {
	f := &t.flows[i]
	var a netip.Addr
	if t.v6 {
		a = netip.AddrFrom16(f.src)
	} else {
		a = netip.AddrFrom4([4]byte(f.src[:4]))
	}
	return netip.AddrPortFrom(a, f.sport), netip.AddrPortFrom(t.spec.Dst.Addr(), f.dport)
}

// SourcePorts returns the first and last source port the flows use.
func (t *Template) SourcePorts() (first, last uint16) {
	first = t.spec.Src.Port()
	n := min(t.spec.SrcPorts, len(t.flows))
	return first, first + uint16(n-1)
}

// Bytes returns a copy of flow 0's frame with a zero signature, for tools
// that take a static frame (trafgen).
func (t *Template) Bytes() []byte { return append([]byte(nil), t.base...) }

// Write writes the frame of flow f carrying sig into buf and returns its
// length, Len(). buf must hold Len() bytes and f must be below NumFlows();
// Write panics otherwise. It does not allocate.
func (t *Template) Write(buf []byte, f int, sig Signature) int {
	copy(buf[:len(t.base)], t.base)
	return t.Rewrite(buf, f, sig)
}

// Rewrite is Write for a buf that already holds a frame of this template
// (any flow, any signature, as an AF_XDP frame keeps what it sent last):
// it writes only what varies from frame to frame, the source address and
// ports, the IPv4 header checksum, the signature and the UDP checksum.
func (t *Template) Rewrite(buf []byte, f int, sig Signature) int {
	fl := &t.flows[f]
	b := buf[:len(t.base)]
	copy(b[t.srcOff:t.srcOff+t.addrLen], fl.src[:t.addrLen])
	u := b[t.udpOff : t.udpOff+frame.UDPHeaderLen]
	binary.BigEndian.PutUint16(u[0:], fl.sport)
	binary.BigEndian.PutUint16(u[2:], fl.dport)
	if !t.v6 {
		binary.BigEndian.PutUint16(b[t.ipOff+10:], fl.ipSum)
	}
	sig.Put(b[t.sigOff:])
	binary.BigEndian.PutUint16(u[6:], proto.FinishUDP(proto.Fold(uint64(fl.udpSum)+sig.sum())))
	return len(b)
}

// SignatureOffset returns where the signature starts in a frame: the UDP
// payload's offset.
func (t *Template) SignatureOffset() int { return t.sigOff }
