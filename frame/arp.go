package frame

import (
	"encoding/binary"
	"net/netip"

	"github.com/pktengine/pktengine/proto"
)

// ARP is an ARP packet (RFC 826) for IPv4 over Ethernet, the only kind
// this package handles:
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|      Hardware Type (1)        |    Protocol Type (0x0800)     |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  HLen (6)     |   PLen (4)    |          Operation            |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                 Sender Hardware Address                       |
//	+                               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                               |   Sender Protocol Address     |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|   Sender Protocol Address     |                               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+                               +
//	|                 Target Hardware Address                       |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                 Target Protocol Address                       |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
type ARP []byte

// ARPLen is the length of an Ethernet/IPv4 ARP packet.
const ARPLen = 28

// ARP operations.
const (
	ARPRequest uint16 = 1
	ARPReply   uint16 = 2
)

// ARPHardwareEthernet is the ARP hardware type for Ethernet.
const ARPHardwareEthernet uint16 = 1

const (
	arpHType = 0
	arpPType = 2
	arpHLen  = 4
	arpPLen  = 5
	arpOp    = 6
	arpSHA   = 8
	arpSPA   = 14
	arpTHA   = 18
	arpTPA   = 24
)

// IsValid reports whether b is long enough and describes Ethernet/IPv4.
func (b ARP) IsValid() bool { return len(b) >= ARPLen && b.IsEthernetIPv4() }

// IsEthernetIPv4 reports whether the hardware and protocol fields say
// Ethernet (type 1, length 6) and IPv4 (type 0x0800, length 4).
func (b ARP) IsEthernetIPv4() bool {
	return binary.BigEndian.Uint16(b[arpHType:]) == ARPHardwareEthernet &&
		binary.BigEndian.Uint16(b[arpPType:]) == proto.EtherTypeIPv4 &&
		b[arpHLen] == 6 && b[arpPLen] == 4
}

// HardwareType returns the hardware type field.
func (b ARP) HardwareType() uint16 { return binary.BigEndian.Uint16(b[arpHType:]) }

// ProtocolType returns the protocol type field.
func (b ARP) ProtocolType() uint16 { return binary.BigEndian.Uint16(b[arpPType:]) }

// Op returns the operation (ARPRequest, ARPReply).
func (b ARP) Op() uint16 { return binary.BigEndian.Uint16(b[arpOp:]) }

// SenderMAC returns the sender hardware address.
func (b ARP) SenderMAC() MAC { return MAC(b[arpSHA : arpSHA+6]) }

// SenderIP returns the sender protocol address.
func (b ARP) SenderIP() netip.Addr { return netip.AddrFrom4([4]byte(b[arpSPA : arpSPA+4])) }

// TargetMAC returns the target hardware address (zero in a request).
func (b ARP) TargetMAC() MAC { return MAC(b[arpTHA : arpTHA+6]) }

// TargetIP returns the target protocol address.
func (b ARP) TargetIP() netip.Addr { return netip.AddrFrom4([4]byte(b[arpTPA : arpTPA+4])) }

// IsGratuitous reports whether sender and target protocol addresses are
// the same: an announcement, not a question (RFC 5227).
func (b ARP) IsGratuitous() bool {
	return [4]byte(b[arpSPA:arpSPA+4]) == [4]byte(b[arpTPA:arpTPA+4])
}

// SetEthernetIPv4 writes the fixed fields for Ethernet/IPv4.
func (b ARP) SetEthernetIPv4() {
	binary.BigEndian.PutUint16(b[arpHType:], ARPHardwareEthernet)
	binary.BigEndian.PutUint16(b[arpPType:], proto.EtherTypeIPv4)
	b[arpHLen], b[arpPLen] = 6, 4
}

// SetOp sets the operation.
func (b ARP) SetOp(op uint16) { binary.BigEndian.PutUint16(b[arpOp:], op) }

// SetSenderMAC sets the sender hardware address.
func (b ARP) SetSenderMAC(m MAC) { copy(b[arpSHA:arpSHA+6], m[:]) }

// SetSenderIP sets the sender protocol address (an IPv4 address).
func (b ARP) SetSenderIP(a netip.Addr) { a4 := a.As4(); copy(b[arpSPA:arpSPA+4], a4[:]) }

// SetTargetMAC sets the target hardware address.
func (b ARP) SetTargetMAC(m MAC) { copy(b[arpTHA:arpTHA+6], m[:]) }

// SetTargetIP sets the target protocol address (an IPv4 address).
func (b ARP) SetTargetIP(a netip.Addr) { a4 := a.As4(); copy(b[arpTPA:arpTPA+4], a4[:]) }
