package frame

import (
	"encoding/binary"

	"github.com/pktengine/pktengine/proto"
)

// VerifyIPv4HeaderChecksum checks the IPv4 header checksum of a decoded
// packet: ReasonOK, or ReasonIPv4BadHeaderChecksum. Packets that are not
// IPv4 have no header checksum and pass.
func (p *Packet) VerifyIPv4HeaderChecksum(frame []byte) Reason {
	if p.IPVersion != IPv4Version {
		return ReasonOK
	}
	hl := uint32(frame[p.L3Off]&0xf) << 2
	if proto.Checksum(frame[p.L3Off:p.L3Off+hl], 0) != 0xffff {
		return ReasonIPv4BadHeaderChecksum
	}
	return ReasonOK
}

// VerifyUDPChecksum checks the UDP checksum of a datagram Decode accepted
// with ReasonOK, over the pseudo-header, header and data (up to the UDP
// length):
//
//   - IPv4 with checksum 0: the sender computed none (RFC 768); ReasonOK.
//   - IPv6 with checksum 0: ReasonUDPZeroChecksumIPv6 (RFC 8200 8.1).
//   - otherwise ReasonOK or ReasonUDPBadChecksum.
//
// A fragment (ReasonUDPFragment) cannot be checked without reassembly and
// returns ReasonUDPFragment; a packet without FlagUDP returns what Decode
// would have called it is not (ReasonUDPTruncated).
//
// With IPv6 the pseudo-header uses the destination in the fixed header.
// That is the final destination whenever the packet has reached it (a
// Routing header with Segments Left 0), the only case in which a host
// checks the checksum at all.
func (p *Packet) VerifyUDPChecksum(frame []byte) Reason {
	if p.Flags&FlagUDP == 0 {
		return ReasonUDPTruncated
	}
	if p.Flags&FlagFragment != 0 {
		return ReasonUDPFragment
	}
	u := frame[p.L4Off:p.L4End]
	if binary.BigEndian.Uint16(u[udpChecksum:]) == 0 {
		if p.IPVersion == IPv4Version {
			return ReasonOK
		}
		return ReasonUDPZeroChecksumIPv6
	}
	if proto.Checksum(u, p.udpPseudoHeaderSum(frame)) != 0xffff {
		return ReasonUDPBadChecksum
	}
	return ReasonOK
}

// VerifyUDPChecksumPartial is VerifyUDPChecksum for a receive path that
// cannot say whether a checksum is partial, as AF_XDP cannot: a local
// sender's kernel leaves only the pseudo-header sum in the field for the
// NIC to finish (CHECKSUM_PARTIAL), and a veth peer delivers it as it is,
// with no flag. A checksum that fails verification but equals the folded
// pseudo-header sum (IsUDPChecksumPartial) is taken for such a partial
// one: the result is ReasonOK with partial true, and an answer that
// reflects the datagram must complete the checksum (FillUDPChecksum).
//
// The price: a datagram whose checksum field happens to equal its
// pseudo-header sum is accepted whatever its payload holds. For a
// datagram corrupted on the way that is one chance in 65,536, the same
// odds as a corruption that leaves a full checksum valid; a sender can
// always make a wrong payload pass, with a full checksum as well.
func (p *Packet) VerifyUDPChecksumPartial(frame []byte) (r Reason, partial bool) {
	r = p.VerifyUDPChecksum(frame)
	if r == ReasonUDPBadChecksum && p.IsUDPChecksumPartial(frame) {
		return ReasonOK, true
	}
	return r, false
}

// IsUDPChecksumPartial reports whether the UDP checksum field of a
// decoded, complete datagram holds its folded pseudo-header sum (or the
// ones' complement twin of that sum, 0 for 0xffff): what Linux writes
// there for a datagram whose checksum an offload is to finish. A full
// checksum equals it for one datagram in 65,536; see
// VerifyUDPChecksumPartial. It does not allocate.
func (p *Packet) IsUDPChecksumPartial(frame []byte) bool {
	if p.Flags&(FlagUDP|FlagFragment) != FlagUDP {
		return false
	}
	field := binary.BigEndian.Uint16(frame[p.L4Off+udpChecksum:])
	sum := p.udpPseudoHeaderSum(frame)
	return field == sum || field == ^sum && (sum == 0 || sum == 0xffff)
}

// VerifyChecksums runs VerifyIPv4HeaderChecksum and then VerifyUDPChecksum
// and returns the first failure, or ReasonOK.
func (p *Packet) VerifyChecksums(frame []byte) Reason {
	if r := p.VerifyIPv4HeaderChecksum(frame); r != ReasonOK {
		return r
	}
	return p.VerifyUDPChecksum(frame)
}

// udpPseudoHeaderSum is the pseudo-header sum for the decoded UDP datagram.
func (p *Packet) udpPseudoHeaderSum(frame []byte) uint16 {
	n := uint32(binary.BigEndian.Uint16(frame[p.L4Off+udpLength:]))
	if p.IPVersion == IPv4Version {
		o := p.L3Off
		return proto.PseudoHeaderSum(frame[o+ipv4Src:o+ipv4Src+4], frame[o+ipv4Dst:o+ipv4Dst+4], proto.IPProtoUDP, n)
	}
	o := p.L3Off
	return proto.PseudoHeaderSum(frame[o+ipv6Src:o+ipv6Src+16], frame[o+ipv6Dst:o+ipv6Dst+16], proto.IPProtoUDP, n)
}

// FillUDPChecksum computes the full UDP checksum of a decoded, complete UDP
// datagram and stores it. Frames a local kernel socket sent through veth
// carry only the pseudo-header sum in the checksum field (the ring flags
// them TP_STATUS_CSUMNOTREADY); a responder that reflects such a frame must
// complete the checksum before sending it anywhere. It does nothing if
// FlagUDP is not set or the datagram is a fragment.
func (p *Packet) FillUDPChecksum(frame []byte) {
	if p.Flags&(FlagUDP|FlagFragment) != FlagUDP {
		return
	}
	u := UDP(frame[p.L4Off:p.L4End])
	u.SetChecksum(0)
	u.SetChecksum(proto.FinishUDP(proto.Checksum(u, p.udpPseudoHeaderSum(frame))))
}
