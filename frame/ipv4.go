package frame

import (
	"encoding/binary"
	"net/netip"

	"github.com/pktengine/pktengine/proto"
)

// IPv4 is an IPv4 header (RFC 791) in place, optionally followed by the
// rest of the datagram.
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|Version|  IHL  |Type of Service|          Total Length         |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|         Identification        |Flags|      Fragment Offset    |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  Time to Live |    Protocol   |         Header Checksum       |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                       Source Address                          |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                    Destination Address                        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                    Options                    |    Padding    |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// Flags are, from the most significant bit: reserved (0), DF, MF. The
// fragment offset counts 8-byte units; the accessors here convert it to
// bytes.
type IPv4 []byte

// IPv4 sizes and limits.
const (
	IPv4MinHeaderLen  = 20
	IPv4MaxHeaderLen  = 60
	IPv4MaxOptionsLen = IPv4MaxHeaderLen - IPv4MinHeaderLen
	IPv4MaxTotalLen   = 65535
	IPv4Version       = 4
	// IPv4MaxUDPPayload is the most data one UDP datagram can carry over
	// IPv4: 65535 - 20 (IP header) - 8 (UDP header).
	IPv4MaxUDPPayload = IPv4MaxTotalLen - IPv4MinHeaderLen - UDPHeaderLen
)

// IPv4 flag bits as returned by Flags.
const (
	IPv4FlagMoreFragments uint8 = 1 << 0
	IPv4FlagDontFragment  uint8 = 1 << 1
	IPv4FlagReserved      uint8 = 1 << 2 // "evil bit" (RFC 3514), must be 0
)

const (
	ipv4VersionIHL = 0
	ipv4TOS        = 1
	ipv4TotalLen   = 2
	ipv4ID         = 4
	ipv4FlagsFrag  = 6
	ipv4TTL        = 8
	ipv4Protocol   = 9
	ipv4Checksum   = 10
	ipv4Src        = 12
	ipv4Dst        = 16
)

// IsValid reports whether b holds a whole IPv4 header whose version is 4,
// whose IHL is at least 5, and whose total length covers the header and
// fits in b. Decode performs the same checks with a reason for each.
func (b IPv4) IsValid() bool {
	if len(b) < IPv4MinHeaderLen || b.Version() != IPv4Version {
		return false
	}
	hl := b.HeaderLength()
	tl := int(b.TotalLength())
	return hl >= IPv4MinHeaderLen && hl <= len(b) && tl >= hl && tl <= len(b)
}

// Version returns the IP version field (4 for a valid header).
func (b IPv4) Version() uint8 { return b[ipv4VersionIHL] >> 4 }

// IHL returns the Internet Header Length field in 32-bit words.
func (b IPv4) IHL() uint8 { return b[ipv4VersionIHL] & 0xf }

// HeaderLength returns the header length in bytes (IHL × 4).
func (b IPv4) HeaderLength() int { return int(b[ipv4VersionIHL]&0xf) << 2 }

// TOS returns the Type of Service octet (DSCP and ECN, RFC 2474/3168).
func (b IPv4) TOS() uint8 { return b[ipv4TOS] }

// TotalLength returns the length of the datagram, header included.
func (b IPv4) TotalLength() uint16 { return binary.BigEndian.Uint16(b[ipv4TotalLen:]) }

// ID returns the Identification field.
func (b IPv4) ID() uint16 { return binary.BigEndian.Uint16(b[ipv4ID:]) }

// Flags returns the three flag bits (IPv4Flag*).
func (b IPv4) Flags() uint8 { return b[ipv4FlagsFrag] >> 5 }

// DontFragment reports whether DF is set.
func (b IPv4) DontFragment() bool { return b[ipv4FlagsFrag]&0x40 != 0 }

// MoreFragments reports whether MF is set.
func (b IPv4) MoreFragments() bool { return b[ipv4FlagsFrag]&0x20 != 0 }

// FragmentOffset returns the fragment offset in bytes (the field × 8).
func (b IPv4) FragmentOffset() uint16 {
	return binary.BigEndian.Uint16(b[ipv4FlagsFrag:]) << 3
}

// IsFragment reports whether the datagram is a fragment: MF set or a
// nonzero offset.
func (b IPv4) IsFragment() bool {
	return binary.BigEndian.Uint16(b[ipv4FlagsFrag:])&0x3fff != 0
}

// TTL returns the Time to Live.
func (b IPv4) TTL() uint8 { return b[ipv4TTL] }

// Protocol returns the protocol of the payload (proto.IPProto*).
func (b IPv4) Protocol() uint8 { return b[ipv4Protocol] }

// Checksum returns the header checksum field.
func (b IPv4) Checksum() uint16 { return binary.BigEndian.Uint16(b[ipv4Checksum:]) }

// Source returns the source address. It does not allocate.
func (b IPv4) Source() netip.Addr { return netip.AddrFrom4([4]byte(b[ipv4Src : ipv4Src+4])) }

// Destination returns the destination address. It does not allocate.
func (b IPv4) Destination() netip.Addr { return netip.AddrFrom4([4]byte(b[ipv4Dst : ipv4Dst+4])) }

// SourceSlice returns the 4 bytes of the source address in place.
func (b IPv4) SourceSlice() []byte { return b[ipv4Src : ipv4Src+4 : ipv4Src+4] }

// DestinationSlice returns the 4 bytes of the destination address in place.
func (b IPv4) DestinationSlice() []byte { return b[ipv4Dst : ipv4Dst+4 : ipv4Dst+4] }

// Options returns the options area (empty if IHL is 5).
func (b IPv4) Options() []byte { return b[IPv4MinHeaderLen:b.HeaderLength()] }

// Payload returns the datagram's payload, bounded by TotalLength and by b.
func (b IPv4) Payload() []byte {
	end := min(int(b.TotalLength()), len(b))
	hl := b.HeaderLength()
	if end < hl {
		return nil
	}
	return b[hl:end]
}

// PseudoHeaderSum returns the folded sum of the RFC 768 pseudo-header for a
// payload of protocol and length bytes, addresses taken from b.
func (b IPv4) PseudoHeaderSum(protocol uint8, length uint16) uint16 {
	return proto.PseudoHeaderSum(b[ipv4Src:ipv4Src+4], b[ipv4Dst:ipv4Dst+4], protocol, uint32(length))
}

// SetHeaderLength sets version 4 and the header length in bytes (a multiple
// of 4 from 20 to 60).
func (b IPv4) SetHeaderLength(n int) { b[ipv4VersionIHL] = IPv4Version<<4 | uint8(n>>2)&0xf }

// SetTOS sets the Type of Service octet.
func (b IPv4) SetTOS(v uint8) { b[ipv4TOS] = v }

// SetTotalLength sets the Total Length field.
func (b IPv4) SetTotalLength(v uint16) { binary.BigEndian.PutUint16(b[ipv4TotalLen:], v) }

// SetID sets the Identification field.
func (b IPv4) SetID(v uint16) { binary.BigEndian.PutUint16(b[ipv4ID:], v) }

// SetFlagsFragmentOffset sets the flags (IPv4Flag*) and the fragment offset
// in bytes (a multiple of 8).
func (b IPv4) SetFlagsFragmentOffset(flags uint8, offset uint16) {
	binary.BigEndian.PutUint16(b[ipv4FlagsFrag:], uint16(flags&7)<<13|offset>>3)
}

// SetTTL sets the Time to Live.
func (b IPv4) SetTTL(v uint8) { b[ipv4TTL] = v }

// SetProtocol sets the Protocol field.
func (b IPv4) SetProtocol(v uint8) { b[ipv4Protocol] = v }

// SetChecksum sets the header checksum field.
func (b IPv4) SetChecksum(v uint16) { binary.BigEndian.PutUint16(b[ipv4Checksum:], v) }

// SetSource sets the source address, which must be an IPv4 address.
func (b IPv4) SetSource(a netip.Addr) { a4 := a.As4(); copy(b[ipv4Src:ipv4Src+4], a4[:]) }

// SetDestination sets the destination address, which must be an IPv4
// address.
func (b IPv4) SetDestination(a netip.Addr) { a4 := a.As4(); copy(b[ipv4Dst:ipv4Dst+4], a4[:]) }

// CalculateChecksum returns the header checksum for the header as it is,
// treating the checksum field as zero: the value to store with SetChecksum.
func (b IPv4) CalculateChecksum() uint16 {
	hl := b.HeaderLength()
	s := proto.Checksum(b[:ipv4Checksum], 0)
	s = proto.Checksum(b[ipv4Checksum+2:hl], s)
	return ^s
}

// IsChecksumValid reports whether the header checksum is correct: the
// ones'-complement sum over the header, checksum included, is all ones.
func (b IPv4) IsChecksumValid() bool {
	return proto.Checksum(b[:b.HeaderLength()], 0) == 0xffff
}

// SetTTLChecksummed sets the TTL and updates the header checksum
// incrementally (RFC 1624).
func (b IPv4) SetTTLChecksummed(ttl uint8) {
	old := binary.BigEndian.Uint16(b[ipv4TTL:])
	b[ipv4TTL] = ttl
	b.SetChecksum(proto.Update16(b.Checksum(), old, binary.BigEndian.Uint16(b[ipv4TTL:])))
}

// SetIDChecksummed sets the Identification and updates the header checksum
// incrementally.
func (b IPv4) SetIDChecksummed(id uint16) {
	b.SetChecksum(proto.Update16(b.Checksum(), b.ID(), id))
	b.SetID(id)
}

// SetTotalLengthChecksummed sets the Total Length and updates the header
// checksum incrementally.
func (b IPv4) SetTotalLengthChecksummed(n uint16) {
	b.SetChecksum(proto.Update16(b.Checksum(), b.TotalLength(), n))
	b.SetTotalLength(n)
}

// SetSourceChecksummed sets the source address and updates the header
// checksum incrementally. It leaves a transport checksum alone: see
// UDP.UpdateChecksumPseudoHeaderAddress or Packet.SetSrcChecksummed.
func (b IPv4) SetSourceChecksummed(a netip.Addr) { b.setAddressChecksummed(ipv4Src, a) }

// SetDestinationChecksummed sets the destination address and updates the
// header checksum incrementally.
func (b IPv4) SetDestinationChecksummed(a netip.Addr) { b.setAddressChecksummed(ipv4Dst, a) }

// setAddressChecksummed writes a into the address field at off (ipv4Src
// or ipv4Dst) and updates the header checksum incrementally.
func (b IPv4) setAddressChecksummed(off int, a netip.Addr) {
	old := binary.BigEndian.Uint32(b[off:])
	a4 := a.As4()
	nw := binary.BigEndian.Uint32(a4[:])
	b.SetChecksum(proto.Update32(b.Checksum(), old, nw))
	binary.BigEndian.PutUint32(b[off:], nw)
}

// SwapAddresses exchanges source and destination. The header checksum
// stays valid: a ones'-complement sum does not depend on word order.
func (b IPv4) SwapAddresses() {
	_ = b[ipv4Dst+3]
	s := binary.BigEndian.Uint32(b[ipv4Src:])
	d := binary.BigEndian.Uint32(b[ipv4Dst:])
	binary.BigEndian.PutUint32(b[ipv4Src:], d)
	binary.BigEndian.PutUint32(b[ipv4Dst:], s)
}

// IPv4 option types (RFC 791, IANA "ip-parameters").
const (
	IPv4OptionEOL         uint8 = 0   // end of option list
	IPv4OptionNOP         uint8 = 1   // no operation
	IPv4OptionRecordRoute uint8 = 7   // RR
	IPv4OptionTimestamp   uint8 = 68  // TS
	IPv4OptionLSRR        uint8 = 131 // loose source and record route
	IPv4OptionSSRR        uint8 = 137 // strict source and record route
	IPv4OptionRouterAlert uint8 = 148 // RFC 2113
)

// NextIPv4Option splits the first option off an options area. It returns
// the option's type, the whole option (type and length bytes included) and
// what follows it. ok is false at the end of the list (EOL or no bytes
// left) and for a malformed option (length byte missing, below 2, or past
// the end of opts).
func NextIPv4Option(opts []byte) (typ uint8, opt, rest []byte, ok bool) {
	if len(opts) == 0 || opts[0] == IPv4OptionEOL {
		return 0, nil, nil, false
	}
	typ = opts[0]
	if typ == IPv4OptionNOP {
		return typ, opts[:1], opts[1:], true
	}
	if len(opts) < 2 {
		return typ, nil, nil, false
	}
	n := int(opts[1])
	if n < 2 || n > len(opts) {
		return typ, nil, nil, false
	}
	return typ, opts[:n], opts[n:], true
}
