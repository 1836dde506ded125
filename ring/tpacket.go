package ring

import (
	"encoding/binary"
	"os"
	"sync/atomic"
	"unsafe"
)

// Layouts of the structures the kernel writes into a packet ring, from
// linux/if_packet.h. They are ABI and identical on every Linux
// architecture, so they live here as offsets, gVisor style, rather than as
// Go structs laid over the mapping.

// Status bits in tp_status (RX direction).
const (
	statusKernel        = 0      // TP_STATUS_KERNEL: the kernel owns the slot
	statusUser          = 1 << 0 // TP_STATUS_USER: user space owns the slot
	statusCopy          = 1 << 1 // TP_STATUS_COPY: frame truncated, full copy queued
	statusLosing        = 1 << 2 // TP_STATUS_LOSING: drops since the last PACKET_STATISTICS read
	statusCsumNotReady  = 1 << 3 // TP_STATUS_CSUMNOTREADY: partial checksum (local sender, offload)
	statusVLANValid     = 1 << 4 // TP_STATUS_VLAN_VALID: tp_vlan_tci holds a stripped tag
	statusBlockTimeout  = 1 << 5 // TP_STATUS_BLK_TMO: V3 block retired by the timer
	statusVLANTPIDValid = 1 << 6 // TP_STATUS_VLAN_TPID_VALID: tp_vlan_tpid is valid
	statusCsumValid     = 1 << 7 // TP_STATUS_CSUM_VALID: the device verified the checksum
)

// Status bits in tp_status (TX direction).
const (
	statusAvailable   = 0      // TP_STATUS_AVAILABLE: user space may fill the slot
	statusSendRequest = 1 << 0 // TP_STATUS_SEND_REQUEST: filled, waiting for send()
	statusSending     = 1 << 1 // TP_STATUS_SENDING: handed to the device
	statusWrongFormat = 1 << 2 // TP_STATUS_WRONG_FORMAT: rejected, ring stalled here
)

// tpacketAlignment is TPACKET_ALIGNMENT.
const tpacketAlignment = 16

func tpacketAlign(n int) int { return (n + tpacketAlignment - 1) &^ (tpacketAlignment - 1) }

// ringLayout is how a ring's memory is cut up, as PACKET_RX_RING and
// PACKET_TX_RING take it (struct tpacket_req): blockNr blocks of blockSize
// bytes, each holding perBlock frames of frameSize bytes. Frames never
// straddle blocks; the tail of a block that no frame fits in stays unused.
type ringLayout struct {
	blockSize, blockNr int
	frameSize, frameNr int
	perBlock           int
}

// frameLayout lays out at least frames slots of frameSize bytes, for a V2
// receive ring or a transmit ring. Blocks of at least 64 KiB keep the
// unused tail of each block small.
func frameLayout(frameSize, frames int) ringLayout {
	page := os.Getpagesize()
	l := ringLayout{frameSize: frameSize}
	l.blockSize = max((frameSize+page-1)/page*page, 64<<10)
	l.perBlock = l.blockSize / frameSize
	l.blockNr = (frames + l.perBlock - 1) / l.perBlock
	l.frameNr = l.blockNr * l.perBlock
	return l
}

// frameOffset returns where frame slot i starts.
func (l *ringLayout) frameOffset(i int) int {
	return i/l.perBlock*l.blockSize + i%l.perBlock*l.frameSize
}

// size is the length of the mapping.
func (l *ringLayout) size() int { return l.blockSize * l.blockNr }

// struct tpacket2_hdr, 32 bytes, followed at TPACKET_ALIGN(32) = 32 by the
// struct sockaddr_ll of the frame.
//
//	 0      4      8      12    14    16     20     24    26    28      32
//	+------+------+------+-----+-----+------+------+-----+-----+-------+
//	|status| len  |snaplen| mac | net | sec  | nsec | tci |tpid | pad   |
//	+------+------+------+-----+-----+------+------+-----+-----+-------+
const (
	v2Status  = 0
	v2Len     = 4
	v2Snaplen = 8
	v2Mac     = 12
	v2Sec     = 16
	v2Nsec    = 20
	v2TCI     = 24
	v2TPID    = 26
	v2Sll     = 32
	v2HdrLen  = 32 + sllSize // TPACKET2_HDRLEN
)

// struct tpacket3_hdr, 48 bytes, followed at TPACKET_ALIGN(48) = 48 by the
// struct sockaddr_ll of the frame.
//
//	 0       4     8      12      16    20     24   26   28      32    36   38   40      48
//	+-------+-----+------+-------+-----+------+----+----+-------+-----+----+----+-------+
//	|next   | sec | nsec |snaplen| len |status|mac |net |rxhash | tci |tpid|pad | pad   |
//	+-------+-----+------+-------+-----+------+----+----+-------+-----+----+----+-------+
const (
	v3Next    = 0
	v3Sec     = 4
	v3Nsec    = 8
	v3Snaplen = 12
	v3Len     = 16
	v3Status  = 20
	v3Mac     = 24
	v3RXHash  = 28
	v3TCI     = 32
	v3TPID    = 36
	v3Sll     = 48
	v3HdrLen  = 48 + sllSize // TPACKET3_HDRLEN
)

// struct tpacket_block_desc with struct tpacket_hdr_v1, at the start of
// every V3 block.
//
//	 0        4        8        12       16       20       24       32         40        48
//	+--------+--------+--------+--------+--------+--------+--------+----------+---------+
//	|version |priv off|status  |num_pkts|first   |blk_len |seq_num |ts_first  |ts_last  |
//	+--------+--------+--------+--------+--------+--------+--------+----------+---------+
const (
	blockStatus   = 8
	blockNumPkts  = 12
	blockFirstPkt = 16
	blockLen      = 20
	blockSeq      = 24
)

// struct sockaddr_ll, 20 bytes.
const (
	sllProtocol = 2 // big endian
	sllIfindex  = 4
	sllPkttype  = 10
	sllSize     = 20
)

// native reads the kernel's host-endian fields.
var native = binary.NativeEndian

// v2Frame parses the V2 frame header at off. The caller owns the frame
// (its status has been seen as TP_STATUS_USER through an atomic load), so
// the kernel does not write it concurrently and plain loads are enough.
// The returned data is capped so an append can never spill into the ring.
func v2Frame(mem []byte, off int) ([]byte, Meta) {
	h := mem[off : off+v2HdrLen]
	mac := int(native.Uint16(h[v2Mac:]))
	snap := int(native.Uint32(h[v2Snaplen:]))
	m := Meta{
		Timestamp: int64(native.Uint32(h[v2Sec:]))*1e9 + int64(native.Uint32(h[v2Nsec:])),
		Length:    int(native.Uint32(h[v2Len:])),
		Status:    Status(native.Uint32(h[v2Status:])),
		VLANTCI:   native.Uint16(h[v2TCI:]),
		VLANTPID:  native.Uint16(h[v2TPID:]),
		Ifindex:   int(int32(native.Uint32(h[v2Sll+sllIfindex:]))),
		Type:      PacketType(h[v2Sll+sllPkttype]),
		Protocol:  binary.BigEndian.Uint16(h[v2Sll+sllProtocol:]),
	}
	return mem[off+mac : off+mac+snap : off+mac+snap], m
}

// v3Frame parses the V3 packet header at off.
func v3Frame(mem []byte, off int) ([]byte, Meta) {
	h := mem[off : off+v3HdrLen]
	mac := int(native.Uint16(h[v3Mac:]))
	snap := int(native.Uint32(h[v3Snaplen:]))
	m := Meta{
		Timestamp: int64(native.Uint32(h[v3Sec:]))*1e9 + int64(native.Uint32(h[v3Nsec:])),
		Length:    int(native.Uint32(h[v3Len:])),
		Status:    Status(native.Uint32(h[v3Status:])),
		VLANTCI:   uint16(native.Uint32(h[v3TCI:])),
		VLANTPID:  native.Uint16(h[v3TPID:]),
		RXHash:    native.Uint32(h[v3RXHash:]),
		Ifindex:   int(int32(native.Uint32(h[v3Sll+sllIfindex:]))),
		Type:      PacketType(h[v3Sll+sllPkttype]),
		Protocol:  binary.BigEndian.Uint16(h[v3Sll+sllProtocol:]),
	}
	return mem[off+mac : off+mac+snap : off+mac+snap], m
}

// v2Data and v3Data return only the frame bytes, for the fast path that
// needs no metadata.
func v2Data(mem []byte, off int) []byte {
	mac := off + int(native.Uint16(mem[off+v2Mac:]))
	end := mac + int(native.Uint32(mem[off+v2Snaplen:]))
	return mem[mac:end:end]
}

func v3Data(mem []byte, off int) []byte {
	mac := off + int(native.Uint16(mem[off+v3Mac:]))
	end := mac + int(native.Uint32(mem[off+v3Snaplen:]))
	return mem[mac:end:end]
}

// The ownership protocol with the kernel.
//
// Every slot of a ring (a V2 frame, a V3 block, a TX frame) starts with a
// 32-bit status word that says who owns the slot. Only the owner touches
// the rest of the slot, and ownership moves only by a store to the status
// word, so each side publishes its writes with that store and observes the
// other side's with a load of it:
//
//	RX (V2 frame status, V3 block_status)
//
//	  kernel owns            kernel writes frame,      user reads frame(s),
//	  TP_STATUS_KERNEL ----> smp_wmb(), status = ----> atomic store of
//	        ^                TP_STATUS_USER|flags      TP_STATUS_KERNEL
//	        |                                                 |
//	        +-------------------------------------------------+
//
//	TX (frame status)
//
//	  TP_STATUS_AVAILABLE --> user writes frame, atomic store of
//	        ^                 TP_STATUS_SEND_REQUEST, send() kicks
//	        |                          |
//	        |                 kernel: SENDING (skb queued to the device)
//	        |                          |
//	        +---- skb freed ----------+---> WRONG_FORMAT (rejected; the
//	                                         kernel's head stays here)
//
// The Go atomics are sequentially consistent, which is at least the
// acquire/release pairing the kernel's smp_wmb()/smp_rmb() expect. This
// file and mmap below are the only places that turn ring offsets into
// pointers.

// loadStatus atomically loads the status word at off.
func loadStatus(mem []byte, off int) uint32 {
	return atomic.LoadUint32((*uint32)(unsafe.Pointer(&mem[off])))
}

// storeStatus atomically stores the status word at off.
func storeStatus(mem []byte, off int, v uint32) {
	atomic.StoreUint32((*uint32)(unsafe.Pointer(&mem[off])), v)
}
