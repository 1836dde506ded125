package frame

import (
	"encoding/binary"
	"net/netip"

	"github.com/pktengine/pktengine/proto"
)

// ICMPHeaderLen is the size of the ICMP and ICMPv6 header including the
// 4-byte type-specific word every message has.
const ICMPHeaderLen = 8

// ICMPv4 message types and codes (RFC 792).
const (
	ICMPv4EchoReply          uint8 = 0
	ICMPv4DestUnreachable    uint8 = 3
	ICMPv4Echo               uint8 = 8
	ICMPv4TimeExceeded       uint8 = 11
	ICMPv4ParameterProblem   uint8 = 12
	ICMPv4CodeNetUnreachable uint8 = 0
	ICMPv4CodeHostUnreach    uint8 = 1
	ICMPv4CodeProtoUnreach   uint8 = 2
	ICMPv4CodePortUnreach    uint8 = 3
	ICMPv4CodeFragNeeded     uint8 = 4
	ICMPv4CodeAdminProhibit  uint8 = 13 // RFC 1812
)

// ICMPv6 message types and codes (RFC 4443, RFC 4861).
const (
	ICMPv6DestUnreachable       uint8 = 1
	ICMPv6PacketTooBig          uint8 = 2
	ICMPv6TimeExceeded          uint8 = 3
	ICMPv6ParameterProblem      uint8 = 4
	ICMPv6EchoRequest           uint8 = 128
	ICMPv6EchoReply             uint8 = 129
	ICMPv6RouterSolicitation    uint8 = 133
	ICMPv6RouterAdvertisement   uint8 = 134
	ICMPv6NeighborSolicitation  uint8 = 135
	ICMPv6NeighborAdvertisement uint8 = 136
	ICMPv6Redirect              uint8 = 137
	ICMPv6CodeNoRoute           uint8 = 0
	ICMPv6CodeAdminProhibited   uint8 = 1
	ICMPv6CodeAddrUnreachable   uint8 = 3
	ICMPv6CodePortUnreachable   uint8 = 4
)

// ICMPv4 is an ICMP message (RFC 792) in place:
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|     Type      |     Code      |          Checksum             |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|   Identifier / unused         |   Sequence Number / unused    |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|     Data (echo) or the invoking IP header + 8 bytes (errors)  |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// The checksum covers the whole message and no pseudo-header.
type ICMPv4 []byte

// IsValid reports whether b holds at least the 8-byte header.
func (b ICMPv4) IsValid() bool { return len(b) >= ICMPHeaderLen }

// Type returns the message type.
func (b ICMPv4) Type() uint8 { return b[0] }

// Code returns the message code.
func (b ICMPv4) Code() uint8 { return b[1] }

// Checksum returns the checksum field.
func (b ICMPv4) Checksum() uint16 { return binary.BigEndian.Uint16(b[2:]) }

// Ident returns the echo identifier.
func (b ICMPv4) Ident() uint16 { return binary.BigEndian.Uint16(b[4:]) }

// Sequence returns the echo sequence number.
func (b ICMPv4) Sequence() uint16 { return binary.BigEndian.Uint16(b[6:]) }

// Payload returns what follows the 8-byte header.
func (b ICMPv4) Payload() []byte { return b[ICMPHeaderLen:] }

// SetType sets the type.
func (b ICMPv4) SetType(t uint8) { b[0] = t }

// SetCode sets the code.
func (b ICMPv4) SetCode(c uint8) { b[1] = c }

// SetChecksum sets the checksum field.
func (b ICMPv4) SetChecksum(c uint16) { binary.BigEndian.PutUint16(b[2:], c) }

// SetIdent sets the echo identifier.
func (b ICMPv4) SetIdent(v uint16) { binary.BigEndian.PutUint16(b[4:], v) }

// SetSequence sets the echo sequence number.
func (b ICMPv4) SetSequence(v uint16) { binary.BigEndian.PutUint16(b[6:], v) }

// CalculateChecksum returns the checksum of the whole message with the
// checksum field taken as zero.
func (b ICMPv4) CalculateChecksum() uint16 {
	s := proto.Checksum(b[:2], 0)
	return ^proto.Checksum(b[4:], s)
}

// IsChecksumValid reports whether the checksum over the message is right.
func (b ICMPv4) IsChecksumValid() bool { return proto.Checksum(b, 0) == 0xffff }

// ICMPv6 is an ICMPv6 message (RFC 4443) in place. Its first 8 bytes are
// laid out as ICMPv4's; the checksum also covers the IPv6 pseudo-header.
// For Neighbor Solicitation and Advertisement (RFC 4861 section 4.3, 4.4)
// the message continues:
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|     Type      |     Code      |          Checksum             |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|R|S|O|                     Reserved (NA; NS: all reserved)     |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                                                               |
//	+                       Target Address (16)                     +
//	|                                                               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|   Options (type, length in 8-byte units, value) ...
//	+-+-+-+-+-+-+-+-+-+-+-+-
type ICMPv6 []byte

// NDP sizes, flags and option types (RFC 4861).
const (
	NDPNeighborMessageLen = 24 // NS/NA up to the end of the target address
	NDPFlagRouter         = 0x80
	NDPFlagSolicited      = 0x40
	NDPFlagOverride       = 0x20
	NDPOptSourceLinkAddr  = 1
	NDPOptTargetLinkAddr  = 2
	NDPHopLimit           = 255 // NDP messages must arrive with hop limit 255
)

// IsValid reports whether b holds at least the 8-byte header.
func (b ICMPv6) IsValid() bool { return len(b) >= ICMPHeaderLen }

// Type returns the message type.
func (b ICMPv6) Type() uint8 { return b[0] }

// Code returns the message code.
func (b ICMPv6) Code() uint8 { return b[1] }

// Checksum returns the checksum field.
func (b ICMPv6) Checksum() uint16 { return binary.BigEndian.Uint16(b[2:]) }

// Ident returns the echo identifier.
func (b ICMPv6) Ident() uint16 { return binary.BigEndian.Uint16(b[4:]) }

// Sequence returns the echo sequence number.
func (b ICMPv6) Sequence() uint16 { return binary.BigEndian.Uint16(b[6:]) }

// Payload returns what follows the 8-byte header.
func (b ICMPv6) Payload() []byte { return b[ICMPHeaderLen:] }

// SetType sets the type.
func (b ICMPv6) SetType(t uint8) { b[0] = t }

// SetCode sets the code.
func (b ICMPv6) SetCode(c uint8) { b[1] = c }

// SetChecksum sets the checksum field.
func (b ICMPv6) SetChecksum(c uint16) { binary.BigEndian.PutUint16(b[2:], c) }

// CalculateChecksum returns the checksum of the message for pseudo-header
// sum pseudo (IPv6.PseudoHeaderSum with proto.IPProtoICMPv6 and the
// message length), with the checksum field taken as zero.
func (b ICMPv6) CalculateChecksum(pseudo uint16) uint16 {
	s := proto.Checksum(b[:2], pseudo)
	return ^proto.Checksum(b[4:], s)
}

// IsChecksumValid reports whether the checksum is right for pseudo.
func (b ICMPv6) IsChecksumValid(pseudo uint16) bool {
	return proto.Checksum(b, pseudo) == 0xffff
}

// IsNeighborMessage reports whether b is a Neighbor Solicitation or
// Advertisement long enough to hold its target address.
func (b ICMPv6) IsNeighborMessage() bool {
	return len(b) >= NDPNeighborMessageLen &&
		(b[0] == ICMPv6NeighborSolicitation || b[0] == ICMPv6NeighborAdvertisement)
}

// NDPFlags returns the R, S and O flags of a Neighbor Advertisement
// (NDPFlag*).
func (b ICMPv6) NDPFlags() uint8 { return b[4] & 0xe0 }

// SetNDPFlags sets the flags byte of a Neighbor Advertisement and clears
// the reserved bits.
func (b ICMPv6) SetNDPFlags(f uint8) { b[4], b[5], b[6], b[7] = f&0xe0, 0, 0, 0 }

// NDPTarget returns the target address of a Neighbor Solicitation or
// Advertisement. It does not allocate.
func (b ICMPv6) NDPTarget() netip.Addr { return netip.AddrFrom16([16]byte(b[8:24])) }

// SetNDPTarget sets the target address.
func (b ICMPv6) SetNDPTarget(a netip.Addr) { a16 := a.As16(); copy(b[8:24], a16[:]) }

// NDPOptions returns the options area of a Neighbor Solicitation or
// Advertisement.
func (b ICMPv6) NDPOptions() []byte { return b[NDPNeighborMessageLen:] }

// NDPOption finds the first option of type typ in the options of a
// Neighbor Solicitation or Advertisement and returns it whole (type and
// length bytes included). ok is false if there is none, or if the options
// are malformed before it: RFC 4861 section 4.6 requires a receiver to
// drop a message with a zero-length option.
func (b ICMPv6) NDPOption(typ uint8) (opt []byte, ok bool) {
	opts := b.NDPOptions()
	for len(opts) >= 2 {
		n := int(opts[1]) << 3
		if n == 0 || n > len(opts) {
			return nil, false
		}
		if opts[0] == typ {
			return opts[:n], true
		}
		opts = opts[n:]
	}
	return nil, false
}

// NDPOptionsValid reports whether the options area splits exactly into
// options of nonzero length.
func (b ICMPv6) NDPOptionsValid() bool {
	opts := b.NDPOptions()
	for len(opts) > 0 {
		if len(opts) < 2 {
			return false
		}
		n := int(opts[1]) << 3
		if n == 0 || n > len(opts) {
			return false
		}
		opts = opts[n:]
	}
	return true
}

// SourceLinkAddress returns the Source Link-Layer Address option of a
// Neighbor Solicitation, if present and Ethernet-sized.
func (b ICMPv6) SourceLinkAddress() (MAC, bool) { return b.linkAddrOption(NDPOptSourceLinkAddr) }

// TargetLinkAddress returns the Target Link-Layer Address option of a
// Neighbor Advertisement, if present and Ethernet-sized.
func (b ICMPv6) TargetLinkAddress() (MAC, bool) { return b.linkAddrOption(NDPOptTargetLinkAddr) }

func (b ICMPv6) linkAddrOption(typ uint8) (MAC, bool) {
	o, ok := b.NDPOption(typ)
	if !ok || len(o) < 8 {
		return MAC{}, false
	}
	return MAC(o[2:8]), true
}
