package ring

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/pktengine/pktengine/internal/enum"
)

// Transmitter queues whole Ethernet frames for an interface and hands them
// to the kernel in batches. NewTransmitter opens one of two
// implementations, by TXConfig.Method: a PACKET_TX_RING shared with the
// kernel, or one sendmmsg(2) per batch from private buffers.
//
// The frame is built in place: Next returns a buffer, the caller writes the
// frame into it (starting at the destination MAC) and Commits its length.
// Committed frames leave on Flush, or when Next finds no free buffer. A
// Transmitter is used by one goroutine at a time, Close included.
type Transmitter interface {
	// Next returns the buffer for the next frame. Its length is the most
	// a frame can be. The buffer is valid until Commit or Flush. When no
	// buffer is free, Next flushes and waits for the kernel to finish
	// with one, or for ctx. Frames that flush drops are counted as
	// Flush says; Next fails only when it has no buffer to offer.
	Next(ctx context.Context) ([]byte, error)

	// Commit queues the first n bytes of the buffer Next returned.
	Commit(n int) error

	// Flush hands every committed frame to the kernel, and leaves none
	// behind: when Flush returns, each frame committed since the last
	// Flush has been accepted by the kernel (it leaves and is counted in
	// TXStats.Sent once the device is done with it) or counted once as
	// dropped:
	//
	//   - a frame the kernel rejects as malformed (shorter than an
	//     Ethernet header, longer than the MTU) is dropped, counted in
	//     TXStats.WrongFormat, and Flush goes on with the rest;
	//   - when the kernel refuses the send itself (ENOBUFS from a full
	//     device queue or a qdisc drop, ENETDOWN from a link that is
	//     down, ...), the refused frame and every committed frame after
	//     it are discarded, counted in TXStats.Dropped, and Flush returns
	//     the error: a *net.OpError wrapping the *os.SyscallError.
	//
	// A full socket send buffer is not a refusal: Flush waits for room.
	// Retrying refused frames would spin on a link that is down, so
	// they are treated as a kernel UDP socket treats ENOBUFS: the
	// datagram is lost and counted (as SndbufErrors).
	Flush() error

	// Stats returns the counters since the Transmitter was opened.
	Stats() TXStats

	// Close flushes, then closes the socket.
	Close() error
}

// TXMethod selects a Transmitter implementation.
type TXMethod int

const (
	// TXDefault is the method NewTransmitter uses when none is given:
	// TXRing. On veth the two are within noise of each other; in paired
	// rounds the ring used 5-13% less CPU per frame (docs/bench/ring.md),
	// and its zero-copy transmit matters more on real NICs.
	TXDefault TXMethod = iota

	// TXRing writes frames into a PACKET_TX_RING and kicks the kernel
	// with one send(2) per Flush; the kernel builds the skbs straight
	// from the ring's pages.
	TXRing

	// TXSendmmsg copies frames from private buffers with one sendmmsg(2)
	// per Flush.
	TXSendmmsg
)

var txMethodNames = enum.Names[TXMethod]{
	TXDefault:  "default",
	TXRing:     "ring",
	TXSendmmsg: "sendmmsg",
}

func (m TXMethod) String() string { return txMethodNames.Format(m, "TXMethod") }

// TXConfig configures a Transmitter. A nil *TXConfig and zero fields mean
// the defaults given with each field.
type TXConfig struct {
	// Method selects the implementation.
	Method TXMethod

	// FrameSize is the size of one buffer or ring slot. A ring slot keeps
	// 32 bytes for its header, so frames can be FrameSize-32 bytes long
	// there. Zero means the smallest power of two, at least 2048, that
	// fits a full-MTU frame with a VLAN tag.
	FrameSize int

	// FrameCount is the number of ring slots (default 1024) or of
	// sendmmsg buffers, which is also the most frames one sendmmsg sends
	// (default 256, at most 1024).
	FrameCount int

	// QdiscBypass sets PACKET_QDISC_BYPASS: frames go straight to the
	// driver, skipping the interface's queueing discipline (and tc).
	QdiscBypass bool

	// RawKick makes the TX ring's kick a raw system call, one the Go
	// scheduler does not see (syscall.RawSyscall): for a goroutine that
	// does nothing but send. A kick that sends a batch on veth lasts a
	// hundred microseconds or more, and during an ordinary system call
	// that long the runtime hands the goroutine's P to another thread
	// (sysmon's retake) and takes it back afterwards: a futex wake-up and
	// two context switches per kick, which cost a pinned generator about
	// a tenth of its CPU. With RawKick the goroutine keeps its P, so
	// other goroutines on it wait until the kick returns or the runtime
	// preempts it (every 10 ms). The sendmmsg method ignores it.
	RawKick bool
}

// TXStats counts a Transmitter's frames.
type TXStats struct {
	// Committed counts frames queued with Commit.
	Committed uint64

	// Sent counts frames the kernel accepted: for a ring, slots it gave
	// back as sent; for sendmmsg, messages it returned as sent.
	Sent uint64

	// WrongFormat counts frames the kernel rejected as malformed
	// (TP_STATUS_WRONG_FORMAT on a ring, EINVAL or EMSGSIZE for sendmmsg).
	WrongFormat uint64

	// Dropped counts frames discarded because the kernel refused to send
	// them (see Transmitter.Flush). Once Flush has returned and the
	// device has finished, Committed = Sent + WrongFormat + Dropped.
	Dropped uint64

	// Kicks counts send(2) or sendmmsg(2) calls; Waits counts the times
	// Next found every buffer busy and had to wait.
	Kicks uint64
	Waits uint64
}

// Errors from Commit.
var (
	ErrNoBuffer   = errors.New("ring: Commit without a buffer from Next")
	ErrFrameSize  = errors.New("ring: frame length out of range")
	errBadTXSlots = errors.New("TXConfig.FrameCount out of range")
)

// NewTransmitter opens the Transmitter that cfg.Method names.
func NewTransmitter(ifi *net.Interface, cfg *TXConfig) (Transmitter, error) {
	m := TXDefault
	if cfg != nil {
		m = cfg.Method
	}
	switch m {
	case TXDefault, TXRing:
		return newRingTX(ifi, cfg)
	case TXSendmmsg:
		return newMmsgTX(ifi, cfg)
	}
	return nil, fmt.Errorf("ring: unknown TXMethod %d", int(m))
}

// txFrameSize returns the default buffer size for an MTU: the smallest
// power of two of at least 2048 that holds the ring header (32 bytes), an
// Ethernet header with a VLAN tag and the MTU.
func txFrameSize(mtu int) int {
	n := 2048
	for n < 32+18+mtu {
		n *= 2
	}
	return n
}
