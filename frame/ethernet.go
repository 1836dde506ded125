package frame

import (
	"encoding/binary"
	"net"

	"github.com/pktengine/pktengine/proto"
)

// MAC is an IEEE 802 48-bit MAC address. Being an array it is comparable
// and is copied by value, which is what an address in a frame wants.
type MAC [6]byte

// BroadcastMAC is ff:ff:ff:ff:ff:ff.
var BroadcastMAC = MAC{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// ParseMAC parses a 48-bit MAC address in any form net.ParseMAC accepts.
func ParseMAC(s string) (MAC, error) {
	hw, err := net.ParseMAC(s)
	if err != nil {
		return MAC{}, err
	}
	if len(hw) != 6 {
		return MAC{}, &net.AddrError{Err: "not a 48-bit MAC address", Addr: s}
	}
	return MAC(hw), nil
}

// String formats m as six lower-case hex pairs separated by colons.
func (m MAC) String() string {
	const hex = "0123456789abcdef"
	var b [17]byte
	for i, v := range m {
		if i > 0 {
			b[3*i-1] = ':'
		}
		b[3*i] = hex[v>>4]
		b[3*i+1] = hex[v&0xf]
	}
	return string(b[:])
}

// IsBroadcast reports whether m is ff:ff:ff:ff:ff:ff.
func (m MAC) IsBroadcast() bool { return m == BroadcastMAC }

// IsMulticast reports whether m is a group address (the I/G bit, the least
// significant bit of the first octet, is set). Broadcast is a multicast
// address too.
func (m MAC) IsMulticast() bool { return m[0]&1 != 0 }

// IsZero reports whether m is 00:00:00:00:00:00.
func (m MAC) IsZero() bool { return m == MAC{} }

// IPv6MulticastMAC returns the Ethernet address an IPv6 multicast group
// maps to (RFC 2464 section 7): 33:33 followed by the group's low 32 bits.
func IPv6MulticastMAC(group [16]byte) MAC {
	return MAC{0x33, 0x33, group[12], group[13], group[14], group[15]}
}

// Ethernet is an Ethernet II header at the start of a frame (IEEE 802.3,
// RFC 894). The frame check sequence is never part of it: Linux strips the
// FCS before a packet socket sees the frame.
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                  Destination MAC address                      |
//	+                               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                               |                               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+                               +
//	|                     Source MAC address                        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|     EtherType (or TPID)       |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
type Ethernet []byte

// Ethernet sizes, all without the 4-byte FCS.
const (
	EthernetHeaderLen   = 14
	EthernetMinFrameLen = 60   // shorter frames are padded on the wire
	EthernetMTU         = 1500 // the classic payload limit
	VLANTagLen          = 4    // TPID + TCI, inserted before the EtherType
	MaxVLANTags         = 2    // 802.1ad service tag + 802.1Q customer tag
)

const (
	ethDst  = 0
	ethSrc  = 6
	ethType = 12
)

// IsValid reports whether b is long enough to hold an Ethernet header.
func (b Ethernet) IsValid() bool { return len(b) >= EthernetHeaderLen }

// Destination returns the destination MAC address.
func (b Ethernet) Destination() MAC { return MAC(b[ethDst : ethDst+6]) }

// Source returns the source MAC address.
func (b Ethernet) Source() MAC { return MAC(b[ethSrc : ethSrc+6]) }

// Type returns the EtherType field: the payload's protocol, or a TPID
// (proto.EtherTypeVLAN, proto.EtherTypeQinQ) if the frame is tagged.
func (b Ethernet) Type() uint16 { return binary.BigEndian.Uint16(b[ethType:]) }

// SetDestination sets the destination MAC address.
func (b Ethernet) SetDestination(m MAC) { copy(b[ethDst:ethDst+6], m[:]) }

// SetSource sets the source MAC address.
func (b Ethernet) SetSource(m MAC) { copy(b[ethSrc:ethSrc+6], m[:]) }

// SetType sets the EtherType field.
func (b Ethernet) SetType(t uint16) { binary.BigEndian.PutUint16(b[ethType:], t) }

// SwapAddresses exchanges source and destination MAC addresses.
func (b Ethernet) SwapAddresses() {
	_ = b[11]
	var t [6]byte
	copy(t[:], b[0:6])
	copy(b[0:6], b[6:12])
	copy(b[6:12], t[:])
}

// VLAN returns the view of the outermost VLAN tag, which starts at the
// EtherType field. Only meaningful if Type is a TPID.
func (b Ethernet) VLAN() VLAN { return VLAN(b[ethType:]) }

// Payload returns what follows the untagged header.
func (b Ethernet) Payload() []byte { return b[EthernetHeaderLen:] }

// VLANTag is one IEEE 802.1Q tag as a value: the TPID that announces it
// (proto.EtherTypeVLAN 0x8100 for a customer tag, proto.EtherTypeQinQ
// 0x88a8 for an 802.1ad service tag) and the Tag Control Information.
type VLANTag struct {
	TPID uint16
	TCI  uint16
}

// MakeTCI packs priority code point (0-7), drop eligible indicator and VLAN
// ID (0-4095) into a Tag Control Information word.
func MakeTCI(pcp uint8, dei bool, id uint16) uint16 {
	t := uint16(pcp&7)<<13 | id&0x0fff
	if dei {
		t |= 1 << 12
	}
	return t
}

// ID returns the 12-bit VLAN identifier.
func (t VLANTag) ID() uint16 { return t.TCI & 0x0fff }

// Priority returns the 3-bit priority code point (IEEE 802.1p).
func (t VLANTag) Priority() uint8 { return uint8(t.TCI >> 13) }

// DropEligible returns the drop eligible indicator (formerly CFI).
func (t VLANTag) DropEligible() bool { return t.TCI&(1<<12) != 0 }

// VLAN is a VLAN tag in place, starting at its TPID, followed by the
// EtherType of what the tag encapsulates (which may be another TPID):
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  TPID (0x8100 or 0x88a8)      | PCP |D|         VLAN ID       |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|   Encapsulated EtherType      |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
type VLAN []byte

// VLANViewLen is the length a VLAN view needs: the tag and the EtherType
// after it.
const VLANViewLen = VLANTagLen + 2

// IsValid reports whether b holds a tag and the EtherType after it.
func (b VLAN) IsValid() bool { return len(b) >= VLANViewLen }

// TPID returns the tag protocol identifier.
func (b VLAN) TPID() uint16 { return binary.BigEndian.Uint16(b[0:]) }

// TCI returns the tag control information.
func (b VLAN) TCI() uint16 { return binary.BigEndian.Uint16(b[2:]) }

// Tag returns the tag as a value.
func (b VLAN) Tag() VLANTag { return VLANTag{TPID: b.TPID(), TCI: b.TCI()} }

// ID returns the VLAN identifier.
func (b VLAN) ID() uint16 { return b.TCI() & 0x0fff }

// Type returns the EtherType that follows the tag.
func (b VLAN) Type() uint16 { return binary.BigEndian.Uint16(b[4:]) }

// Next returns the view of the tag that follows this one (valid only if
// Type is a TPID).
func (b VLAN) Next() VLAN { return b[VLANTagLen:] }

// SetTag sets TPID and TCI.
func (b VLAN) SetTag(t VLANTag) {
	binary.BigEndian.PutUint16(b[0:], t.TPID)
	binary.BigEndian.PutUint16(b[2:], t.TCI)
}

// SetType sets the encapsulated EtherType.
func (b VLAN) SetType(t uint16) { binary.BigEndian.PutUint16(b[4:], t) }

// InsertVLANTag inserts tag as the outermost VLAN tag of the n-byte frame
// in buf, moving everything after the MAC addresses 4 bytes on, and
// returns the new length. A packet ring strips the tag of a received
// frame into its metadata (tp_vlan_tci); a reply that must leave on the
// same VLAN through a TX ring gets it back this way. A zero TPID means
// 802.1Q (0x8100). It returns ErrShortBuffer if buf has no room.
func InsertVLANTag(buf []byte, n int, tag VLANTag) (int, error) {
	if n < EthernetHeaderLen || n > len(buf) || len(buf)-n < VLANTagLen {
		return 0, ErrShortBuffer
	}
	if tag.TPID == 0 {
		tag.TPID = proto.EtherTypeVLAN
	}
	copy(buf[ethType+VLANTagLen:n+VLANTagLen], buf[ethType:n])
	binary.BigEndian.PutUint16(buf[ethType:], tag.TPID)
	binary.BigEndian.PutUint16(buf[ethType+2:], tag.TCI)
	return n + VLANTagLen, nil
}

// RemoveVLANTag removes the outermost VLAN tag from frame, moving the MAC
// addresses 4 bytes on so that no byte after the tag moves, and returns
// the untagged frame (a subslice of frame starting at offset 4) and the
// tag. ok is false, and frame untouched, if the frame is not tagged or too
// short for a tag.
func RemoveVLANTag(frame []byte) (untagged []byte, tag VLANTag, ok bool) {
	if len(frame) < EthernetHeaderLen+VLANTagLen || !isTPID(binary.BigEndian.Uint16(frame[ethType:])) {
		return frame, VLANTag{}, false
	}
	tag = VLAN(frame[ethType:]).Tag()
	copy(frame[VLANTagLen:VLANTagLen+12], frame[:12])
	return frame[VLANTagLen:], tag, true
}
