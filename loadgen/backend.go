package loadgen

import (
	"context"
	"fmt"
	"time"

	"github.com/pktengine/pktengine/internal/enum"
	"github.com/pktengine/pktengine/ring"
	"github.com/pktengine/pktengine/xdp"
)

// Backend is how a Generator's workers send.
type Backend uint8

const (
	// BackendTPACKET writes each frame into a PACKET_TX_RING slot and
	// kicks the kernel once per batch (PACKET_QDISC_BYPASS). Works on
	// every interface.
	BackendTPACKET Backend = iota

	// BackendXDP sends from the UMEM of an AF_XDP socket per worker
	// (transmit-only): every frame is written with the template once,
	// and per frame only the fields that vary (source address and port,
	// the checksums, the signature) are rewritten before it goes on the
	// TX ring; completed frames are reused as they are. Worker i binds
	// queue i: Workers must not exceed the interface's queues.
	BackendXDP

	// BackendLive sends with BPF_PROG_RUN in live-frames mode
	// (xdp.LiveSender): one system call per batch of frames, each put in
	// a kernel page-pool frame, stamped with its sequence number and
	// send time and its source port varied by a small XDP program, and
	// redirected to the interface. It varies the source port only
	// (Spec.SrcAddrs and DstPorts must be 1), and on veth the peer must
	// have an XDP program attached for the frames to arrive (any program:
	// an xdp.Program with no addresses will do).
	BackendLive
)

var backendNames = enum.Names[Backend]{
	BackendTPACKET: "tpacket",
	BackendXDP:     "xdp",
	BackendLive:    "live",
}

func (b Backend) String() string { return backendNames.Format(b, "Backend") }

// ParseBackend returns the backend named s: "tpacket", "xdp" or "live".
func ParseBackend(s string) (Backend, bool) { return backendNames.Parse(s) }

// MarshalText implements encoding.TextMarshaler.
func (b Backend) MarshalText() ([]byte, error) { return []byte(b.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (b *Backend) UnmarshalText(t []byte) error {
	v, ok := ParseBackend(string(t))
	if !ok {
		return fmt.Errorf("loadgen: unknown backend %q", t)
	}
	*b = v
	return nil
}

// DefaultLiveBatch is the most frames of one BPF_PROG_RUN call of an
// unpaced live worker, and DefaultLiveQuantum the schedule one paced live
// call covers. On the lab machine the kernel spends about 0.75 ms on
// every call of more than one frame however few it sends (it sets up and
// tears down a page pool per call), and about 190 ns per frame on top:
// 65536 frames a call send 5.3 M frames/s into a peer that drops them,
// 16384 4.7 M, 500 only 0.5 M. A paced live
// worker therefore sends in bursts: at 1 M frames/s a call of 5000
// frames every 5 ms, at about 3 M frames/s while it lasts. Use the
// tpacket or xdp backend where the rate must be smooth.
const (
	DefaultLiveBatch   = 65536
	DefaultLiveQuantum = 5 * time.Millisecond
)

// sender is one worker's way out for the ring backends: TPACKET and
// AF_XDP. A buffer from next holds a frame of the template already when
// prefilled says so, and only the fields that vary need writing.
type sender interface {
	next(ctx context.Context) ([]byte, error)
	commit(n int) error
	flush() error
	stats() ring.TXStats
	close() error
	prefilled() bool
}

// tpacketSender is a ring.Transmitter.
type tpacketSender struct{ t ring.Transmitter }

func (s tpacketSender) next(ctx context.Context) ([]byte, error) { return s.t.Next(ctx) }
func (s tpacketSender) commit(n int) error                       { return s.t.Commit(n) }
func (s tpacketSender) flush() error                             { return s.t.Flush() }
func (s tpacketSender) stats() ring.TXStats                      { return s.t.Stats() }
func (s tpacketSender) close() error                             { return s.t.Close() }
func (s tpacketSender) prefilled() bool                          { return false }

// xdpSender is a transmit-only AF_XDP socket whose frames all hold the
// template.
type xdpSender struct{ s *xdp.Socket }

func (s xdpSender) next(ctx context.Context) ([]byte, error) { return s.s.Next(ctx) }
func (s xdpSender) commit(n int) error                       { return s.s.Commit(n) }
func (s xdpSender) flush() error                             { return s.s.Flush() }
func (s xdpSender) close() error                             { return s.s.Close() }
func (s xdpSender) prefilled() bool                          { return true }

// stats maps the socket's counters: a frame on the TX ring is committed,
// a completed one sent unless the driver dropped it.
func (s xdpSender) stats() ring.TXStats {
	st := s.s.LocalStats()
	return ring.TXStats{
		Committed: st.Transmitted,
		Sent:      st.Completed - min(st.Completed, st.TXDropped),
		Dropped:   st.TXDropped,
		Kicks:     st.Kicks,
		Waits:     st.Waits,
	}
}
