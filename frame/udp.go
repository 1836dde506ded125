package frame

import (
	"encoding/binary"
	"net/netip"

	"github.com/pktengine/pktengine/proto"
)

// UDP is a UDP header (RFC 768) in place, optionally followed by its data.
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|          Source Port          |       Destination Port        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|            Length             |           Checksum            |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                          data octets ...
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// Length counts header and data. The checksum covers a pseudo-header
// (addresses, protocol, UDP length), the header and the data; a computed 0
// is sent as 0xFFFF, since a 0 in the field means "no checksum" in IPv4 and
// is not allowed in IPv6 (RFC 8200 section 8.1).
type UDP []byte

// UDPHeaderLen is the size of the UDP header.
const UDPHeaderLen = 8

const (
	udpSrcPort  = 0
	udpDstPort  = 2
	udpLength   = 4
	udpChecksum = 6
)

// IsValid reports whether b holds a header whose Length is at least 8 and
// fits in b.
func (b UDP) IsValid() bool {
	if len(b) < UDPHeaderLen {
		return false
	}
	n := int(b.Length())
	return n >= UDPHeaderLen && n <= len(b)
}

// SourcePort returns the source port.
func (b UDP) SourcePort() uint16 { return binary.BigEndian.Uint16(b[udpSrcPort:]) }

// DestinationPort returns the destination port.
func (b UDP) DestinationPort() uint16 { return binary.BigEndian.Uint16(b[udpDstPort:]) }

// Length returns the Length field: header plus data.
func (b UDP) Length() uint16 { return binary.BigEndian.Uint16(b[udpLength:]) }

// Checksum returns the checksum field.
func (b UDP) Checksum() uint16 { return binary.BigEndian.Uint16(b[udpChecksum:]) }

// Payload returns the data: from the end of the header to Length, bounded
// by b. Bytes of b past Length (IP payload the UDP length does not claim)
// are not data.
func (b UDP) Payload() []byte {
	end := min(int(b.Length()), len(b))
	if end < UDPHeaderLen {
		return nil
	}
	return b[UDPHeaderLen:end]
}

// SetSourcePort sets the source port.
func (b UDP) SetSourcePort(p uint16) { binary.BigEndian.PutUint16(b[udpSrcPort:], p) }

// SetDestinationPort sets the destination port.
func (b UDP) SetDestinationPort(p uint16) { binary.BigEndian.PutUint16(b[udpDstPort:], p) }

// SetLength sets the Length field.
func (b UDP) SetLength(n uint16) { binary.BigEndian.PutUint16(b[udpLength:], n) }

// SetChecksum sets the checksum field.
func (b UDP) SetChecksum(c uint16) { binary.BigEndian.PutUint16(b[udpChecksum:], c) }

// SwapPorts exchanges source and destination ports. The checksum stays
// valid: the same two words are summed in another order.
func (b UDP) SwapPorts() {
	_ = b[3]
	b[0], b[1], b[2], b[3] = b[2], b[3], b[0], b[1]
}

// CalculateChecksum returns the checksum field value for the datagram
// b[:Length] and the pseudo-header sum pseudo (IPv4.PseudoHeaderSum or
// IPv6.PseudoHeaderSum with proto.IPProtoUDP and Length), treating the
// checksum field as zero. It never returns 0: a computed 0 becomes 0xFFFF.
func (b UDP) CalculateChecksum(pseudo uint16) uint16 {
	n := int(b.Length())
	s := proto.Checksum(b[:udpChecksum], pseudo)
	s = proto.Checksum(b[udpChecksum+2:n], s)
	return proto.FinishUDP(s)
}

// IsChecksumValid reports whether the checksum of b[:Length] is correct
// for the pseudo-header sum pseudo: the sum over pseudo-header, header and
// data is all ones. It makes no exception for a zero checksum field (see
// Packet.VerifyUDPChecksum for the IPv4 "no checksum" rule).
func (b UDP) IsChecksumValid(pseudo uint16) bool {
	return proto.Checksum(b[:b.Length()], pseudo) == 0xffff
}

// SetSourcePortChecksummed sets the source port and updates the checksum
// incrementally (RFC 1624). A zero checksum ("none", IPv4 only) stays
// zero, and an update never leaves a 0 where a checksum was.
func (b UDP) SetSourcePortChecksummed(p uint16) {
	b.SetChecksum(proto.UpdateUDP16(b.Checksum(), b.SourcePort(), p))
	b.SetSourcePort(p)
}

// SetDestinationPortChecksummed sets the destination port and updates the
// checksum incrementally, as SetSourcePortChecksummed.
func (b UDP) SetDestinationPortChecksummed(p uint16) {
	b.SetChecksum(proto.UpdateUDP16(b.Checksum(), b.DestinationPort(), p))
	b.SetDestinationPort(p)
}

// UpdateChecksumPseudoHeaderAddress updates the checksum for a change of
// one pseudo-header address from old to new (both IPv4 or both IPv6). Call
// it alongside IPv4.SetSourceChecksummed and friends. A zero checksum stays
// zero.
func (b UDP) UpdateChecksumPseudoHeaderAddress(old, new netip.Addr) {
	if old.Is4() {
		o, n := old.As4(), new.As4()
		b.SetChecksum(proto.UpdateUDP32(b.Checksum(), binary.BigEndian.Uint32(o[:]), binary.BigEndian.Uint32(n[:])))
		return
	}
	o, n := old.As16(), new.As16()
	b.SetChecksum(proto.UpdateUDPBytes(b.Checksum(), o[:], n[:]))
}
