package frame

import (
	"encoding/binary"
	"net/netip"

	"github.com/pktengine/pktengine/proto"
)

// IPv6 is an IPv6 fixed header (RFC 8200) in place, optionally followed by
// extension headers and the payload.
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|Version| Traffic Class |           Flow Label                  |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|         Payload Length        |  Next Header  |   Hop Limit   |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                                                               |
//	+                                                               +
//	|                                                               |
//	+                         Source Address                        +
//	|                                                               |
//	+                                                               +
//	|                                                               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                                                               |
//	+                                                               +
//	|                                                               |
//	+                      Destination Address                      +
//	|                                                               |
//	+                                                               +
//	|                                                               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
type IPv6 []byte

// IPv6 sizes.
const (
	IPv6HeaderLen = 40
	IPv6Version   = 6
	// IPv6MinMTU is the link MTU every IPv6 link must support (RFC 8200
	// section 5); ICMPv6 errors are sized to fit in it (RFC 4443).
	IPv6MinMTU = 1280
	// MaxIPv6ExtHeaders bounds the extension-header walk. RFC 8200 sets no
	// limit, but a legitimate packet rarely carries more than three or
	// four; stopping at 8 keeps a crafted chain from costing more than a
	// few cache lines.
	MaxIPv6ExtHeaders = 8
)

const (
	ipv6VersionTCFL = 0
	ipv6PayloadLen  = 4
	ipv6NextHeader  = 6
	ipv6HopLimit    = 7
	ipv6Src         = 8
	ipv6Dst         = 24
)

// IsValid reports whether b holds a fixed header with version 6 and a
// payload length that fits in b.
func (b IPv6) IsValid() bool {
	return len(b) >= IPv6HeaderLen && b.Version() == IPv6Version &&
		IPv6HeaderLen+int(b.PayloadLength()) <= len(b)
}

// Version returns the version field (6 for a valid header).
func (b IPv6) Version() uint8 { return b[ipv6VersionTCFL] >> 4 }

// TrafficClass returns the Traffic Class octet (DSCP and ECN).
func (b IPv6) TrafficClass() uint8 {
	return uint8(binary.BigEndian.Uint16(b[ipv6VersionTCFL:]) >> 4)
}

// FlowLabel returns the 20-bit flow label.
func (b IPv6) FlowLabel() uint32 {
	return binary.BigEndian.Uint32(b[ipv6VersionTCFL:]) & 0xfffff
}

// PayloadLength returns the length of everything after the fixed header,
// extension headers included.
func (b IPv6) PayloadLength() uint16 { return binary.BigEndian.Uint16(b[ipv6PayloadLen:]) }

// NextHeader returns the type of the header after the fixed header: an
// extension header or the upper-layer protocol.
func (b IPv6) NextHeader() uint8 { return b[ipv6NextHeader] }

// HopLimit returns the hop limit.
func (b IPv6) HopLimit() uint8 { return b[ipv6HopLimit] }

// Source returns the source address. It does not allocate.
func (b IPv6) Source() netip.Addr { return netip.AddrFrom16([16]byte(b[ipv6Src : ipv6Src+16])) }

// Destination returns the destination address. It does not allocate.
func (b IPv6) Destination() netip.Addr {
	return netip.AddrFrom16([16]byte(b[ipv6Dst : ipv6Dst+16]))
}

// SourceSlice returns the 16 bytes of the source address in place.
func (b IPv6) SourceSlice() []byte { return b[ipv6Src : ipv6Src+16 : ipv6Src+16] }

// DestinationSlice returns the 16 bytes of the destination address in
// place.
func (b IPv6) DestinationSlice() []byte { return b[ipv6Dst : ipv6Dst+16 : ipv6Dst+16] }

// Payload returns what follows the fixed header, bounded by the payload
// length and by b.
func (b IPv6) Payload() []byte {
	end := min(IPv6HeaderLen+int(b.PayloadLength()), len(b))
	return b[IPv6HeaderLen:end]
}

// PseudoHeaderSum returns the folded sum of the RFC 8200 section 8.1
// pseudo-header for an upper-layer packet of protocol and length bytes,
// addresses taken from b. (With a routing header the destination would be
// the final one; this package never computes checksums for such packets.)
func (b IPv6) PseudoHeaderSum(protocol uint8, length uint32) uint16 {
	return proto.PseudoHeaderSum(b[ipv6Src:ipv6Src+16], b[ipv6Dst:ipv6Dst+16], protocol, length)
}

// SetVersionTrafficClassFlowLabel sets the first word: version 6, traffic
// class and the low 20 bits of flow.
func (b IPv6) SetVersionTrafficClassFlowLabel(tc uint8, flow uint32) {
	binary.BigEndian.PutUint32(b[ipv6VersionTCFL:], IPv6Version<<28|uint32(tc)<<20|flow&0xfffff)
}

// SetPayloadLength sets the payload length.
func (b IPv6) SetPayloadLength(n uint16) { binary.BigEndian.PutUint16(b[ipv6PayloadLen:], n) }

// SetNextHeader sets the next header field.
func (b IPv6) SetNextHeader(v uint8) { b[ipv6NextHeader] = v }

// SetHopLimit sets the hop limit. IPv6 has no header checksum, so this is
// all a reply needs.
func (b IPv6) SetHopLimit(v uint8) { b[ipv6HopLimit] = v }

// SetSource sets the source address (its 16-byte form).
func (b IPv6) SetSource(a netip.Addr) { b.setAddress(ipv6Src, a) }

// SetDestination sets the destination address (its 16-byte form).
func (b IPv6) SetDestination(a netip.Addr) { b.setAddress(ipv6Dst, a) }

// setAddress writes a into the address field at off (ipv6Src or ipv6Dst).
func (b IPv6) setAddress(off int, a netip.Addr) {
	a16 := a.As16()
	copy(b[off:off+16], a16[:])
}

// SwapAddresses exchanges source and destination.
func (b IPv6) SwapAddresses() {
	_ = b[ipv6Dst+15]
	var t [16]byte
	copy(t[:], b[ipv6Src:ipv6Src+16])
	copy(b[ipv6Src:ipv6Src+16], b[ipv6Dst:ipv6Dst+16])
	copy(b[ipv6Dst:ipv6Dst+16], t[:])
}

// IPv6Fragment is an IPv6 Fragment extension header (RFC 8200 section
// 4.5):
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  Next Header  |   Reserved    |      Fragment Offset    |Res|M|
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                         Identification                        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
type IPv6Fragment []byte

// IPv6FragmentHeaderLen is the fixed size of the Fragment header.
const IPv6FragmentHeaderLen = 8

// NextHeader returns the type of the header after the fragment header.
func (b IPv6Fragment) NextHeader() uint8 { return b[0] }

// FragmentOffset returns the offset of this fragment's data in bytes.
func (b IPv6Fragment) FragmentOffset() uint16 { return binary.BigEndian.Uint16(b[2:]) &^ 7 }

// MoreFragments reports whether the M flag is set.
func (b IPv6Fragment) MoreFragments() bool { return b[3]&1 != 0 }

// ID returns the 32-bit identification.
func (b IPv6Fragment) ID() uint32 { return binary.BigEndian.Uint32(b[4:]) }

// Set writes the whole fragment header; offset is in bytes, a multiple of
// 8.
func (b IPv6Fragment) Set(next uint8, offset uint16, more bool, id uint32) {
	b[0] = next
	b[1] = 0
	v := offset &^ 7
	if more {
		v |= 1
	}
	binary.BigEndian.PutUint16(b[2:], v)
	binary.BigEndian.PutUint32(b[4:], id)
}

// IPv6Chain is what walking the extension headers of an IPv6 packet found.
type IPv6Chain struct {
	// Protocol is the upper-layer protocol: the first Next Header value
	// that is not an extension header (proto.IPProtoUDP, ...,
	// proto.IPProtoESP, or proto.IPProtoNoNext).
	Protocol uint8
	// Offset is where the upper-layer header starts, counted from the
	// start of the IPv6 header.
	Offset int
	// ExtHeaders counts the extension headers walked.
	ExtHeaders int
	// HasFragment reports a Fragment header; FragmentOffset (bytes),
	// MoreFragments and FragmentID are its fields. A fragment header with
	// offset 0 and M clear is an atomic fragment (RFC 6946): the packet is
	// complete.
	HasFragment    bool
	MoreFragments  bool
	FragmentOffset uint16
	FragmentID     uint32
	// HasRouting reports a Routing header, which changes the destination
	// an upper-layer checksum is computed with.
	HasRouting bool
}

// WalkExtensionHeaders follows the Next Header chain from the fixed header
// to the upper-layer protocol (RFC 8200 section 4), within the payload
// length and b. Hop-by-Hop, Routing, Destination Options, Mobility, HIP and
// Shim6 headers are (Hdr Ext Len + 1) × 8 bytes long; the Fragment header
// is 8; an Authentication Header (RFC 4302) is (Payload Len + 2) × 4 and
// at least 12.
//
// The walk stops at the first non-extension header, and at a fragment
// header whose offset is not 0: what follows it is the middle of some
// upper-layer packet, not a header (the chain must be complete in the first
// fragment, RFC 7112). The reason is ReasonOK, ReasonNonFirstFragment,
// ReasonIPv6ExtHeaderTruncated, ReasonIPv6HopByHopNotFirst or
// ReasonIPv6TooManyExtHeaders. b must hold the fixed header (IsValid).
func (b IPv6) WalkExtensionHeaders() (IPv6Chain, Reason) {
	end := min(IPv6HeaderLen+int(b.PayloadLength()), len(b))
	var c IPv6Chain
	r := walkIPv6(b[:end], b.NextHeader(), &c)
	return c, r
}

// walkIPv6 walks the chain of b (the whole packet, bounded by its payload
// length) starting with next after the fixed header, filling c. For each
// extension header it checks, in order: Hop-by-Hop only first, the count
// limit, the length, the options of Hop-by-Hop and Destination Options
// headers, and for a Fragment header the offset.
func walkIPv6(b []byte, next uint8, c *IPv6Chain) Reason {
	off := IPv6HeaderLen
	for n := 0; ; n++ {
		c.Protocol, c.Offset, c.ExtHeaders = next, off, n
		var hl int
		switch next {
		case proto.IPProtoHopByHop:
			if n != 0 {
				// RFC 8200 section 4.1: Hop-by-Hop Options only
				// immediately after the fixed header.
				return ReasonIPv6HopByHopNotFirst
			}
		case proto.IPProtoRouting, proto.IPProtoDstOpts, proto.IPProtoFragment, proto.IPProtoAH,
			proto.IPProtoMobility, proto.IPProtoHIP, proto.IPProtoShim6:
		default:
			return ReasonOK
		}
		if n == MaxIPv6ExtHeaders {
			return ReasonIPv6TooManyExtHeaders
		}
		switch next {
		case proto.IPProtoFragment:
			hl = IPv6FragmentHeaderLen
		case proto.IPProtoAH:
			if off+2 > len(b) {
				return ReasonIPv6ExtHeaderTruncated
			}
			hl = (int(b[off+1]) + 2) << 2
			if hl < ipv6AHMinLen {
				return ReasonIPv6AHTooShort
			}
		default:
			if off+2 > len(b) {
				return ReasonIPv6ExtHeaderTruncated
			}
			hl = (int(b[off+1]) + 1) << 3
		}
		if off+hl > len(b) {
			return ReasonIPv6ExtHeaderTruncated
		}
		switch next {
		case proto.IPProtoHopByHop, proto.IPProtoDstOpts:
			if r := checkIPv6Options(b[off+2 : off+hl]); r != ReasonOK {
				return r
			}
		case proto.IPProtoRouting:
			c.HasRouting = true
		case proto.IPProtoFragment:
			f := IPv6Fragment(b[off : off+hl])
			c.HasFragment = true
			c.FragmentOffset = f.FragmentOffset()
			c.MoreFragments = f.MoreFragments()
			c.FragmentID = f.ID()
			if c.FragmentOffset != 0 {
				c.Protocol, c.Offset, c.ExtHeaders = f.NextHeader(), off+hl, n+1
				return ReasonNonFirstFragment
			}
		}
		next = b[off]
		off += hl
	}
}

// ipv6AHMinLen is the fixed part of an Authentication Header: Next
// Header, Payload Len, Reserved, SPI and Sequence Number.
const ipv6AHMinLen = 12

// IPv6 option types this package knows (RFC 8200 section 4.2).
const (
	IPv6OptionPad1 uint8 = 0
	IPv6OptionPadN uint8 = 1
)

// checkIPv6Options checks the options area of a Hop-by-Hop or Destination
// Options header: the options must fill it exactly, and an option that is
// not recognised must not demand that the packet be discarded. The two
// high-order bits of an option type say what a node that does not
// recognise it does: 00 skip it, 01 discard the packet, 10 and 11 discard
// and (maybe) send an ICMP Parameter Problem. The ICMP is the engine's
// business; discarding is Decode's.
func checkIPv6Options(opts []byte) Reason {
	for len(opts) > 0 {
		t := opts[0]
		if t == IPv6OptionPad1 {
			opts = opts[1:]
			continue
		}
		if len(opts) < 2 || 2+int(opts[1]) > len(opts) {
			return ReasonIPv6BadOptions
		}
		if t != IPv6OptionPadN && t>>6 != 0 {
			return ReasonIPv6UnknownOption
		}
		opts = opts[2+int(opts[1]):]
	}
	return ReasonOK
}
