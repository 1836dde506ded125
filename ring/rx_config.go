package ring

import (
	"fmt"
	"net"
	"os"
	"time"

	xbpf "golang.org/x/net/bpf"

	"github.com/pktengine/pktengine/internal/enum"
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

var versionNames = enum.Names[Version]{V2: "TPACKET_V2", V3: "TPACKET_V3"}

func (v Version) String() string { return versionNames.Format(v, "Version") }

// RXConfig configures a receive ring. A nil *RXConfig and zero fields mean
// the defaults given with each field.
type RXConfig struct {
	// Version selects TPACKET_V3 (the default) or TPACKET_V2. See
	// docs/bench/ring.md for the figures behind the default.
	Version Version

	// Protocol is the EtherType to receive (proto.EtherTypeIPv4, ...), in
	// host order. Zero means proto.EtherTypeAll, Linux's ETH_P_ALL: every
	// frame, including those the host sends unless IgnoreOutgoing is set.
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
	Filter []xbpf.RawInstruction

	// LockFilter sets SO_LOCK_FILTER after attaching Filter, so that the
	// filter can no longer be replaced or removed.
	LockFilter bool

	// IgnoreOutgoing sets PACKET_IGNORE_OUTGOING: frames this host sends
	// are not delivered to the socket.
	IgnoreOutgoing bool

	// Fanout, if not nil, joins the socket to a PACKET_FANOUT group after
	// binding. Open one RX per worker with the same Fanout (see
	// Fanout.UniqueID for the first of them).
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
	// interface share frames. IDs are per network namespace, shared by
	// every process in it: two programs that pick the same ID (and type,
	// flags, protocol and interface) end up in one group, each seeing a
	// share of the other's frames. Use UniqueID rather than inventing one.
	GroupID uint16

	// UniqueID (PACKET_FANOUT_FLAG_UNIQUEID) asks the kernel to create a
	// new group with an ID that no group in the namespace uses; GroupID
	// must be zero. RX.FanoutGroup returns the ID the kernel chose: open
	// the group's other members with that GroupID and UniqueID false.
	UniqueID bool

	// Rollover (PACKET_FANOUT_FLAG_ROLLOVER) sends a frame to another
	// socket of the group when the chosen one's ring is full.
	Rollover bool

	// Defrag (PACKET_FANOUT_FLAG_DEFRAG) reassembles IP fragments before
	// fanout, so a fragmented datagram lands on one socket.
	Defrag bool
}

// Geometry is the shape of a receive ring, for callers that size their
// own structures after it (the engine keeps one batch record per
// possibly outstanding batch).
type Geometry struct {
	Version Version

	// Slots is the number of units the kernel hands over and takes back:
	// blocks of a V3 ring, frames of a V2 ring. Every Batch holds at least
	// one slot, so at most Slots batches are outstanding (read and not yet
	// released) at once; with all of them out, ReadInto waits for a
	// Release.
	Slots int

	// SlotSize is the size in bytes of a slot: the block size of a V3
	// ring, the frame size of a V2 ring.
	SlotSize int

	// BatchFrames is the most frames of one V2 batch (RXConfig.BatchSize).
	// It is 0 for V3, whose batch is one block of however many frames
	// fill it.
	BatchFrames int
}

// rxGeom is a validated ring shape.
type rxGeom struct {
	v3       bool
	layout   ringLayout
	slots    int // blocks (V3) or frames (V2)
	retireMs int // V3
	batchMax int // V2
}

func (g *rxGeom) public() Geometry {
	if g.v3 {
		return Geometry{Version: V3, Slots: g.slots, SlotSize: g.layout.blockSize}
	}
	return Geometry{Version: V2, Slots: g.slots, SlotSize: g.layout.frameSize, BatchFrames: g.batchMax}
}

// rxGeometry fills in c's defaults and checks what the kernel would
// reject, so errors name the field at fault.
func rxGeometry(c *RXConfig, ifi *net.Interface) (rxGeom, error) {
	var g rxGeom
	switch c.Version {
	case 0, V3:
		g.v3 = true
		l := &g.layout
		l.blockSize = orDefault(c.BlockSize, 256<<10)
		l.blockNr = orDefault(c.BlockCount, 32)
		if page := os.Getpagesize(); l.blockSize%page != 0 || l.blockSize <= 0 {
			return g, fmt.Errorf("RXConfig.BlockSize %d is not a positive multiple of the page size %d", l.blockSize, page)
		}
		if l.blockNr <= 0 {
			return g, fmt.Errorf("RXConfig.BlockCount %d is not positive", l.blockNr)
		}
		// The kernel wants a frame size for V3 too, though frames are
		// packed by their real length; any aligned size dividing the
		// block will do.
		l.frameSize = tpacketAlignment * 128
		for l.blockSize%l.frameSize != 0 {
			l.frameSize /= 2
		}
		l.perBlock = l.blockSize / l.frameSize
		l.frameNr = l.blockNr * l.perBlock
		g.slots = l.blockNr
		tmo := c.RetireTimeout
		if tmo < 0 {
			return g, fmt.Errorf("RXConfig.RetireTimeout %v is negative", tmo)
		}
		if tmo == 0 {
			tmo = time.Millisecond
		}
		g.retireMs = max(1, int((tmo+time.Millisecond/2)/time.Millisecond))
	case V2:
		mtu := 1500
		if ifi != nil && ifi.MTU > 0 {
			mtu = ifi.MTU
		}
		frameSize := c.FrameSize
		if frameSize == 0 {
			// Header area (80 bytes for V2), Ethernet header, payload:
			// rounded up to a power of two, at least 2048.
			frameSize = 2048
			for frameSize < tpacketAlign(v2HdrLen+16)+14+mtu {
				frameSize *= 2
			}
		}
		if frameSize%tpacketAlignment != 0 || frameSize < tpacketAlign(v2HdrLen+16)+14 {
			return g, fmt.Errorf("RXConfig.FrameSize %d is not a multiple of 16 of at least %d", frameSize, tpacketAlign(v2HdrLen+16)+14)
		}
		want := orDefault(c.FrameCount, 4096)
		if want <= 0 {
			return g, fmt.Errorf("RXConfig.FrameCount %d is not positive", want)
		}
		g.layout = frameLayout(frameSize, want)
		g.slots = g.layout.frameNr
		g.batchMax = orDefault(c.BatchSize, 64)
		if g.batchMax <= 0 {
			return g, fmt.Errorf("RXConfig.BatchSize %d is not positive", g.batchMax)
		}
	default:
		return g, fmt.Errorf("RXConfig.Version %d is neither V2 nor V3", c.Version)
	}
	if f := c.Fanout; f != nil && f.UniqueID && f.GroupID != 0 {
		return g, fmt.Errorf("RXConfig.Fanout asks for a unique ID and names group %d", f.GroupID)
	}
	if c.BusyPoll < 0 {
		return g, fmt.Errorf("RXConfig.BusyPoll %d is negative", c.BusyPoll)
	}
	return g, nil
}

func orDefault(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}
