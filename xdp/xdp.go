package xdp

import (
	"errors"
	"fmt"
	"net"

	"github.com/pktengine/pktengine/internal/enum"
)

// BindMode is how an AF_XDP socket moves frames between the driver and
// UMEM.
type BindMode int

const (
	// ModeAuto asks for zero-copy and falls back to copy mode when the
	// driver does not offer it. Socket.Mode reports which one was bound;
	// nothing else changes silently.
	ModeAuto BindMode = iota

	// ModeCopy (XDP_COPY): the kernel copies each frame between its own
	// buffers and UMEM. Works on every driver with XDP, veth included.
	ModeCopy

	// ModeZeroCopy (XDP_ZEROCOPY): the driver DMAs straight into UMEM.
	// Binding fails if the driver does not support it.
	ModeZeroCopy
)

var bindModeNames = enum.Names[BindMode]{
	ModeAuto:     "auto",
	ModeCopy:     "copy",
	ModeZeroCopy: "zerocopy",
}

func (m BindMode) String() string { return bindModeNames.Format(m, "BindMode") }

// Config configures a Socket and its UMEM. A nil *Config and zero fields
// mean the defaults given with each field.
type Config struct {
	// FrameSize is the size of one UMEM frame (chunk): 2048 or 4096. Zero
	// means 2048 when a full-MTU frame with a VLAN tag fits behind the
	// kernel's 256-byte XDP headroom and Headroom, else 4096.
	FrameSize int

	// FrameCount is the number of UMEM frames. Zero means 4096 (8 MiB of
	// 2048-byte frames), enough to keep the fill ring full while the RX
	// ring, the TX ring and user space each hold a ring's worth.
	FrameCount int

	// Headroom is reserved in every frame ahead of the packet, on top of
	// the kernel's XDP_PACKET_HEADROOM (256 bytes), for headers a reply
	// may prepend in place. Zero means none beyond the kernel's.
	Headroom int

	// RXSize, TXSize, FillSize and CompletionSize are the ring sizes in
	// descriptors, powers of two. Zero means 2048 each.
	RXSize, TXSize, FillSize, CompletionSize int

	// TXOnly opens the socket without an RX ring: every UMEM frame is
	// for transmitting (a generator). The fill ring stays empty.
	TXOnly bool

	// Mode chooses zero-copy or copy mode; ModeAuto by default.
	Mode BindMode

	// NoNeedWakeup binds without XDP_USE_NEED_WAKEUP, so the kernel
	// polls the rings itself and every Flush makes a system call. The
	// default, need_wakeup, lets user space skip the calls the kernel
	// does not need.
	NoNeedWakeup bool

	// TXBudget sets XDP_MAX_TX_SKB_BUDGET: how many frames one send(2)
	// pushes through the copy-mode transmit path (the kernel's default is
	// 32). Zero means 256, or the TX ring size if smaller; negative
	// leaves the kernel default. Ignored by kernels without the option.
	TXBudget int

	// BatchSize caps the frames of one received Batch. Zero means 256:
	// replies to a batch leave with one send(2), and on veth 64-frame
	// batches cost about a fifth more CPU per reply (docs/XDP.md).
	BatchSize int

	// BusyPoll is how many times a reader re-checks an empty RX ring
	// before parking in the runtime poller. Zero parks at once.
	BusyPoll int

	// RawKick makes Flush's send(2) a raw system call, which the Go
	// scheduler does not see: for an owner goroutine that does nothing
	// but send (a generator). In copy mode one send(2) moves up to
	// TXBudget frames and lasts long enough that the runtime would hand
	// the goroutine's P to another thread and back (a futex wake-up and
	// two context switches per kick); with RawKick the goroutine keeps
	// it, and other goroutines on that P wait for the kick to return.
	RawKick bool
}

// Meta is what AF_XDP tells about a received frame.
type Meta struct {
	// Length is the frame's length; the whole frame is in UMEM.
	Length int

	// Options is the descriptor's options word (XDP_PKT_CONTD marks a
	// multi-buffer frame, which this package does not enable).
	Options uint32
}

// Stats are a socket's counters: the kernel's XDP_STATISTICS and the
// socket's own. All are totals since the socket was opened.
type Stats struct {
	// Kernel is XDP_STATISTICS.
	Kernel KernelStats

	// RXWaiting is the number of frames on the RX ring now, received by
	// the kernel and not yet taken by ReadInto; after Close, those left
	// there (as UMEM went, once every batch is released). Received +
	// RXWaiting never falls behind what the kernel has put on the ring.
	RXWaiting uint64

	// Received counts frames taken from the RX ring. Transmitted counts
	// frames put on the TX ring (Commit and Batch.Transmit); Completed
	// those the kernel gave back on the completion ring.
	Received, Transmitted, Completed uint64

	// TXDropped counts transmitted frames the driver dropped instead of
	// sending (send(2) answered EBUSY: NET_XMIT_DROP, with the link
	// down or the peer's queue full in copy mode). They come back on the
	// completion ring like sent ones; this is the only sign.
	TXDropped uint64

	// Kicks counts send(2) calls that told the kernel to transmit;
	// Wakeups counts recvfrom(2) calls that woke the kernel's fill-ring
	// processing (need_wakeup); Waits counts the times Next found no free
	// frame and had to wait for completions.
	Kicks, Wakeups, Waits uint64

	// BadDescs counts descriptors the kernel returned on the RX or
	// completion ring for a frame that was not with the kernel: they
	// would corrupt the frame accounting, so they are dropped and
	// counted. Nonzero means a kernel or accounting bug.
	BadDescs uint64
}

// KernelStats is struct xdp_statistics, read with
// getsockopt(SOL_XDP, XDP_STATISTICS).
type KernelStats struct {
	// RxDropped counts frames dropped for another reason than a full RX
	// ring or an empty fill ring: too long for a UMEM frame, say.
	RxDropped uint64

	// RxInvalidDescs and TxInvalidDescs count descriptors the kernel
	// rejected as invalid (an address outside UMEM, a length beyond a
	// frame).
	RxInvalidDescs uint64
	TxInvalidDescs uint64

	// RxRingFull counts frames dropped because the RX ring was full:
	// user space fell behind.
	RxRingFull uint64

	// RxFillRingEmptyDescs counts the times the kernel found the fill
	// ring empty: no UMEM frame to receive into.
	RxFillRingEmptyDescs uint64

	// TxRingEmptyDescs counts the times the kernel looked for frames to
	// transmit and found the TX ring empty.
	TxRingEmptyDescs uint64
}

// FrameCounts says where every UMEM frame is. Every frame is in exactly one
// place, so the fields add up to Total; Socket.CheckFrames verifies it.
type FrameCounts struct {
	// Total is the number of UMEM frames.
	Total int

	// Free frames are on the socket's free list.
	Free int

	// Fill frames are on the fill ring, not yet taken by the kernel.
	Fill int

	// KernelRX frames were taken by the kernel from the fill ring and are
	// not yet consumed from the RX ring: in the kernel's receive path or
	// waiting on the RX ring.
	KernelRX int

	// Held frames are with user space: in unreleased batches, or lent
	// out by Next and not yet committed.
	Held int

	// TX frames are on the TX ring or being transmitted: put there by
	// Commit or Batch.Transmit, not yet on the completion ring.
	TX int

	// Completion frames are on the completion ring, not yet reclaimed.
	Completion int
}

// Sum returns the sum of the places; it equals Total when no frame is lost.
func (c FrameCounts) Sum() int {
	return c.Free + c.Fill + c.KernelRX + c.Held + c.TX + c.Completion
}

func (c FrameCounts) String() string {
	return fmt.Sprintf("total %d: free %d + fill %d + kernel RX %d + held %d + TX %d + completion %d = %d",
		c.Total, c.Free, c.Fill, c.KernelRX, c.Held, c.TX, c.Completion, c.Sum())
}

// Addr is the address of an AF_XDP socket: an interface and one of its
// receive queues. A Program's errors carry one with Queue -1: the whole
// interface.
type Addr struct {
	Index int
	Name  string
	Queue int
}

// Network returns "xdp".
func (a *Addr) Network() string { return "xdp" }
func (a *Addr) String() string {
	if a.Queue < 0 {
		return fmt.Sprintf("%s(%d)", a.Name, a.Index)
	}
	return fmt.Sprintf("%s(%d)@%d", a.Name, a.Index, a.Queue)
}

// Errors.
var (
	// ErrClosed is returned by operations on a closed Socket or
	// Program. It is net.ErrClosed.
	ErrClosed = net.ErrClosed

	// ErrUnsupported is returned on platforms without AF_XDP and eBPF.
	ErrUnsupported = errors.New("xdp: AF_XDP and XDP are only available on Linux")

	// ErrNoBuffer is returned by Commit without a buffer from Next.
	ErrNoBuffer = errors.New("xdp: Commit without a buffer from Next")

	// ErrFrameSize is returned for a frame length beyond its UMEM frame.
	ErrFrameSize = errors.New("xdp: frame length out of range")

	// ErrNotInFrame is returned by Batch.Transmit for a slice that does
	// not lie inside the UMEM frame of the batch entry it names.
	ErrNotInFrame = errors.New("xdp: slice is not inside the received frame")

	// ErrTaken is returned by Batch.Transmit for an entry that was
	// already transmitted.
	ErrTaken = errors.New("xdp: batch entry already transmitted")
)
