package ring

import (
	"time"

	"github.com/pktengine/pktengine/internal/enum"
	"github.com/pktengine/pktengine/proto"
)

// PacketType is sll_pkttype: how the frame relates to this host.
type PacketType uint8

const (
	PacketHost      PacketType = 0 // PACKET_HOST: addressed to this host
	PacketBroadcast PacketType = 1 // PACKET_BROADCAST
	PacketMulticast PacketType = 2 // PACKET_MULTICAST
	PacketOtherHost PacketType = 3 // PACKET_OTHERHOST: for another host (promiscuous)
	PacketOutgoing  PacketType = 4 // PACKET_OUTGOING: sent by this host
)

var packetTypeNames = enum.Names[PacketType]{
	PacketHost:      "host",
	PacketBroadcast: "broadcast",
	PacketMulticast: "multicast",
	PacketOtherHost: "otherhost",
	PacketOutgoing:  "outgoing",
}

func (t PacketType) String() string { return packetTypeNames.Format(t, "PacketType") }

// Status is a frame's tp_status word as the kernel wrote it.
type Status uint32

// ChecksumPartial reports TP_STATUS_CSUMNOTREADY: the transport checksum
// holds only the pseudo-header sum, because the sender (a local socket on a
// veth, say) left its completion to an offload that never ran. Such a
// checksum must not be verified, and must be completed before the frame is
// forwarded.
func (s Status) ChecksumPartial() bool { return s&statusCsumNotReady != 0 }

// ChecksumValid reports TP_STATUS_CSUM_VALID: the device verified the
// transport checksum.
func (s Status) ChecksumValid() bool { return s&statusCsumValid != 0 }

// Losing reports TP_STATUS_LOSING: the socket dropped frames since its
// statistics were last read. (TPACKET_V3 flags the block; RX copies the
// flag to each of the block's frames.)
func (s Status) Losing() bool { return s&statusLosing != 0 }

// Truncated reports TP_STATUS_COPY: the frame was longer than the slot.
func (s Status) Truncated() bool { return s&statusCopy != 0 }

// VLANValid reports TP_STATUS_VLAN_VALID: the kernel stripped an 802.1Q or
// 802.1ad tag into the metadata.
func (s Status) VLANValid() bool { return s&statusVLANValid != 0 }

// Meta is the metadata the kernel stores beside a received frame.
type Meta struct {
	// Timestamp is the receive time in nanoseconds since the Unix epoch.
	Timestamp int64

	// Length is the frame's length on the wire (tp_len); the data may be
	// shorter when the slot or the filter's snap length cut it.
	Length int

	// Ifindex is the interface the frame was received on, Protocol its
	// EtherType (after a stripped VLAN tag) and Type how it relates to
	// this host, all from the frame's sockaddr_ll.
	Ifindex  int
	Protocol uint16
	Type     PacketType

	// VLANTCI and VLANTPID hold a VLAN tag that the kernel removed from the
	// frame, valid when Status.VLANValid(); see VLAN.
	VLANTCI  uint16
	VLANTPID uint16

	// RXHash is the flow hash (TPACKET_V3 only).
	RXHash uint32

	// Status is the raw tp_status word.
	Status Status
}

// Time returns Timestamp as a time.Time.
func (m *Meta) Time() time.Time { return time.Unix(0, m.Timestamp) }

// VLAN returns the tag the kernel stripped from the frame: TCI (priority,
// DEI and VLAN ID) and TPID (0x8100 or 0x88a8). ok is false for an untagged
// frame.
func (m *Meta) VLAN() (tci, tpid uint16, ok bool) {
	if !m.Status.VLANValid() {
		return 0, 0, false
	}
	tpid = proto.EtherTypeVLAN
	if m.Status&statusVLANTPIDValid != 0 && m.VLANTPID != 0 {
		tpid = m.VLANTPID
	}
	return m.VLANTCI, tpid, true
}
