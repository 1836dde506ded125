package ring

import (
	"errors"
	"fmt"
	"iter"
	"net"
	"time"

	"golang.org/x/net/bpf"
)

// Version selects the layout of a receive ring.
type Version int

const (
	// V3 is TPACKET_V3: the ring is a few large blocks, each filled with
	// variable-size frames and handed to user space whole, when it is full
	// or when the retire timer fires. One wakeup and one hand-back per
	// block make it the cheapest per frame; a quiet link sees up to
	// RetireTimeout of latency.
	V3 Version = 3

	// V2 is TPACKET_V2: the ring is fixed-size frame slots, each handed to
	// user space as soon as it is written. Lowest latency, more wakeups.
	V2 Version = 2
)

func (v Version) String() string {
	switch v {
	case V2:
		return "TPACKET_V2"
	case V3:
		return "TPACKET_V3"
	}
	return fmt.Sprintf("Version(%d)", int(v))
}

// EtherType values for RXConfig.Protocol.
const (
	ProtocolAll  = 0x0003 // ETH_P_ALL: every frame
	ProtocolIPv4 = 0x0800
	ProtocolIPv6 = 0x86dd
	ProtocolARP  = 0x0806
)

// RXConfig configures a receive ring. A nil *RXConfig and zero fields mean
// the defaults given with each field.
type RXConfig struct {
	// Version selects TPACKET_V3 (the default) or TPACKET_V2. See
	// docs/bench/ring.md for the figures behind the default.
	Version Version

	// Protocol is the EtherType to receive, in host order. Zero means
	// ProtocolAll. With ProtocolAll the socket also sees frames the host
	// sends, unless IgnoreOutgoing is set.
	Protocol uint16

	// BlockSize and BlockCount shape a V3 ring: BlockCount blocks of
	// BlockSize bytes, a multiple of the page size. Defaults: 256 KiB and
	// 32 blocks (8 MiB). A block is the unit of hand-over, so it bounds how
	// much the kernel can fill while user space still holds older blocks.
	BlockSize  int
	BlockCount int

	// RetireTimeout is how long the kernel waits before handing over a V3
	// block that is not full: the latency of a frame on a quiet link (it
	// measures as the full timeout, not half of it: the timer restarts
	// when a block opens). Zero means 1 ms, the least the kernel takes;
	// the value is rounded to whole milliseconds. Under load blocks fill
	// before the timer fires, so a longer timeout only saves wakeups when
	// traffic is light.
	RetireTimeout time.Duration

	// FrameSize and FrameCount shape a V2 ring: FrameCount slots of
	// FrameSize bytes, a multiple of 16. A slot holds the 80-byte header
	// area plus the frame; longer frames are truncated (Meta.Length tells
	// the original length). Defaults: the smallest power of two that fits
	// the interface's MTU (2048 for 1500), and 4096 slots.
	FrameSize  int
	FrameCount int

	// BatchSize caps the frames of one V2 batch. Zero means 64. (A V3
	// batch is always one block.)
	BatchSize int

	// Filter is a classic BPF program attached before the socket is bound,
	// so no frame that it rejects ever enters the ring. Its return value
	// is the snap length, as usual.
	Filter []bpf.RawInstruction

	// LockFilter sets SO_LOCK_FILTER after attaching Filter, so that the
	// filter can no longer be replaced or removed.
	LockFilter bool

	// IgnoreOutgoing sets PACKET_IGNORE_OUTGOING: frames this host sends
	// are not delivered to the socket.
	IgnoreOutgoing bool

	// Fanout, if not nil, joins the socket to a PACKET_FANOUT group after
	// binding. Open one RX per worker with the same Fanout.
	Fanout *Fanout

	// Promiscuous adds a PACKET_MR_PROMISC membership, which the kernel
	// drops when the socket closes.
	Promiscuous bool

	// BusyPoll is how many times a reader re-checks an empty ring before
	// parking in the runtime poller. Zero parks at once. Spinning trades a
	// core for the wakeup latency.
	BusyPoll int
}

// FanoutType is the PACKET_FANOUT mode: how the kernel spreads frames over
// the sockets of a group.
type FanoutType uint16

const (
	FanoutHash     FanoutType = 0 // PACKET_FANOUT_HASH: by flow hash, a flow stays on one socket
	FanoutLB       FanoutType = 1 // PACKET_FANOUT_LB: round robin
	FanoutCPU      FanoutType = 2 // PACKET_FANOUT_CPU: by the receiving CPU
	FanoutRollover FanoutType = 3 // PACKET_FANOUT_ROLLOVER: fill one socket, then the next
	FanoutRandom   FanoutType = 4 // PACKET_FANOUT_RND
	FanoutQM       FanoutType = 5 // PACKET_FANOUT_QM: by the device's recorded RX queue
)

// Fanout describes a PACKET_FANOUT group membership.
type Fanout struct {
	Type FanoutType

	// GroupID names the group; sockets with the same ID, protocol and
	// interface share frames. IDs are per network namespace.
	GroupID uint16

	// Rollover (PACKET_FANOUT_FLAG_ROLLOVER) sends a frame to another
	// socket of the group when the chosen one's ring is full.
	Rollover bool

	// Defrag (PACKET_FANOUT_FLAG_DEFRAG) reassembles IP fragments before
	// fanout, so a fragmented datagram lands on one socket.
	Defrag bool
}

// PacketType is sll_pkttype: how the frame relates to this host.
type PacketType uint8

const (
	PacketHost      PacketType = 0 // PACKET_HOST: addressed to this host
	PacketBroadcast PacketType = 1 // PACKET_BROADCAST
	PacketMulticast PacketType = 2 // PACKET_MULTICAST
	PacketOtherHost PacketType = 3 // PACKET_OTHERHOST: for another host (promiscuous)
	PacketOutgoing  PacketType = 4 // PACKET_OUTGOING: sent by this host
)

func (t PacketType) String() string {
	switch t {
	case PacketHost:
		return "host"
	case PacketBroadcast:
		return "broadcast"
	case PacketMulticast:
		return "multicast"
	case PacketOtherHost:
		return "otherhost"
	case PacketOutgoing:
		return "outgoing"
	}
	return fmt.Sprintf("PacketType(%d)", uint8(t))
}

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
	tpid = 0x8100
	if m.Status&statusVLANTPIDValid != 0 && m.VLANTPID != 0 {
		tpid = m.VLANTPID
	}
	return m.VLANTCI, tpid, true
}

// Batch is a run of received frames that user space owns until Release:
// one V3 block, or up to RXConfig.BatchSize consecutive V2 slots. The data
// slices point into the ring and are valid only until Release.
//
// A Batch is reused across RX.ReadInto calls without allocating. Batches
// may be released in any order and from any goroutine; the ring hands
// slots back to the kernel in ring order once every earlier batch is
// released too.
type Batch struct {
	rx     *RX
	mem    []byte
	v3     bool
	first  uint64   // ring position of the first slot
	slots  int      // slots covered: 1 block, or the V2 frame count
	losing Status   // V3: TP_STATUS_LOSING from the block, for every frame
	offs   []uint32 // offset of each frame's header in mem
}

// Len returns the number of frames in the batch.
func (b *Batch) Len() int { return len(b.offs) }

// Data returns the bytes of frame i, starting at the Ethernet header.
func (b *Batch) Data(i int) []byte {
	if b.v3 {
		return v3Data(b.mem, int(b.offs[i]))
	}
	return v2Data(b.mem, int(b.offs[i]))
}

// Frame returns the bytes and the metadata of frame i.
func (b *Batch) Frame(i int) ([]byte, Meta) {
	if b.v3 {
		data, m := v3Frame(b.mem, int(b.offs[i]))
		m.Status |= b.losing
		return data, m
	}
	return v2Frame(b.mem, int(b.offs[i]))
}

// All iterates over the frames of the batch.
func (b *Batch) All() iter.Seq2[[]byte, Meta] {
	return func(yield func([]byte, Meta) bool) {
		for i := range b.offs {
			if !yield(b.Frame(i)) {
				return
			}
		}
	}
}

// Release gives the batch's frames back. Their data must not be used
// afterwards. Releasing an empty or already released batch does nothing.
func (b *Batch) Release() {
	if b.rx == nil {
		return
	}
	rx := b.rx
	b.rx, b.mem = nil, nil
	b.offs = b.offs[:0]
	rx.release(b.first, b.slots)
}

// Stats are a socket's PACKET_STATISTICS, accumulated since it was opened.
// (The kernel resets its counters on every read; RX.Stats adds them up.)
type Stats struct {
	// Packets counts the frames that passed the filter, whether they were
	// stored in the ring or dropped for lack of room.
	Packets uint64

	// Drops counts the frames lost because the ring was full.
	Drops uint64

	// FreezeQueue counts the times a V3 ring found its next block still
	// held by user space and stopped ("froze") until it was released.
	FreezeQueue uint64
}

// Addr is the link-layer address of a ring's socket: an interface.
type Addr struct {
	Index int
	Name  string
}

func (a *Addr) Network() string { return "packet" }
func (a *Addr) String() string  { return fmt.Sprintf("%s(%d)", a.Name, a.Index) }

// ErrClosed is returned by operations on a closed RX or TX. It is
// net.ErrClosed, so errors.Is(err, net.ErrClosed) works too.
var ErrClosed = net.ErrClosed

// ErrUnsupported is returned on platforms without AF_PACKET rings.
var ErrUnsupported = errors.New("ring: AF_PACKET rings are only available on Linux")
