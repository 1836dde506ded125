package xdp

import (
	"context"
	"iter"
	"net"
)

// Socket is an AF_XDP socket (XSK) bound to one receive queue of an
// interface, with its own UMEM: a memory area of equal frames that the
// kernel receives into and transmits from, and the four rings that pass
// frames between user space and the kernel (fill, RX, TX, completion).
//
// One goroutine, the owner, calls ReadInto, Next, Commit, Flush and
// Batch.Transmit. Batches may be released from any goroutine, Stats may be
// read from any goroutine, and Close may be called from any goroutine at
// any time: it wakes a parked reader, and UMEM stays mapped until every
// batch has been released, so nobody reads unmapped memory.
type Socket struct {
	addr       Addr
	umem       []byte
	frameSize  int
	frameShift uint // log2(frameSize)
	frameCount int
	dataOff    int // where a frame's data starts in its chunk: XDP_PACKET_HEADROOM + Headroom
	batchMax   int
	busyPoll   int
	mode       BindMode
	txBudget   int
	rawKick    bool
	xsk        // per-platform state
}

// Batch is a run of received frames that user space owns until Release.
// Data slices point into UMEM and are valid until then. A Batch is reused
// across ReadInto calls without allocating.
//
// Release may be called from any goroutine. Transmit (the owner only)
// moves one frame from the batch onto the socket's TX ring, in place:
// Release then leaves that frame alone.
type Batch struct {
	s     *Socket
	descs []rxDesc
}

// rxDesc is one received frame: its address in UMEM (chunk base plus data
// offset, as the kernel wrote it), length and options. A transmitted
// entry has taken set.
type rxDesc struct {
	addr  uint64
	len   uint32
	opts  uint16
	taken bool
}

// Listen opens an AF_XDP socket on queue of ifi. A nil cfg means the
// defaults of Config. The UMEM is registered, the rings are mapped and the
// fill ring is stocked before the socket is bound, so the first frame
// redirected to it has somewhere to go. Frames reach the socket only
// through an XDP program that redirects to it: see Program.Register.
//
// To open a socket in another network namespace, call Listen on a thread
// in that namespace; the socket stays there.
func Listen(ifi *net.Interface, queue int, cfg *Config) (*Socket, error) {
	return listen(ifi, queue, cfg)
}

// RXQueues returns the number of receive queues ifi uses (its rx and
// combined ethtool channels, or IFLA_NUM_RX_QUEUES for a driver without
// channels): an engine opens one Socket per queue. Call it on a thread in ifi's
// network namespace.
func RXQueues(ifi *net.Interface) (int, error) { return rxQueues(ifi) }

// Addr returns the socket's interface and queue.
func (s *Socket) Addr() net.Addr { a := s.addr; return &a }

// Queue returns the receive queue the socket is bound to.
func (s *Socket) Queue() int { return s.addr.Queue }

// Mode returns how the socket was bound: ModeCopy or ModeZeroCopy.
func (s *Socket) Mode() BindMode { return s.mode }

// FrameSize and FrameCount return the UMEM geometry.
func (s *Socket) FrameSize() int  { return s.frameSize }
func (s *Socket) FrameCount() int { return s.frameCount }

// TXBudget returns XDP_MAX_TX_SKB_BUDGET as set, or 0 when the kernel's
// default applies.
func (s *Socket) TXBudget() int { return s.txBudget }

// MaxFrameLen returns the longest frame a UMEM frame holds behind the
// headroom.
func (s *Socket) MaxFrameLen() int { return s.frameSize - s.dataOff }

// ReadInto waits for received frames and fills b with up to BatchSize of
// them. If b still holds frames from an earlier call, they are released
// first, so a loop that reuses one Batch needs no Release. Before waiting
// it hands free frames to the kernel's fill ring.
//
// With frames ready, ReadInto does not allocate. It returns ErrClosed once
// the socket is closed and the context's error (wrapped) when ctx ends
// first.
func (s *Socket) ReadInto(ctx context.Context, b *Batch) error { return s.readInto(ctx, b) }

// Next lends out a free UMEM frame for transmitting: the buffer starts
// where a frame's data starts (behind the headroom) and its length is
// MaxFrameLen. It holds whatever the frame held last, so a generator whose
// frames only ever go out (Config.TXOnly) can write a template into every
// frame once (see Prefill) and rewrite only the fields that vary. When no
// frame is free, Next flushes, reclaims completions and waits, or returns
// the context's error. Calling Next twice without Commit returns the same
// buffer.
func (s *Socket) Next(ctx context.Context) ([]byte, error) { return s.next(ctx) }

// Commit queues the first n bytes of the buffer Next returned on the TX
// ring. Committed frames leave on Flush.
func (s *Socket) Commit(n int) error { return s.commit(n) }

// Flush publishes the frames queued on the TX ring, tells the kernel to
// send them when it needs telling (need_wakeup, and always in copy mode),
// and reclaims the frames the kernel has finished with.
func (s *Socket) Flush() error { return s.flush() }

// Prefill writes template into every UMEM frame that is free, for a
// transmit-only socket whose frames then only need their varying fields
// rewritten. It returns the number of frames written.
func (s *Socket) Prefill(template []byte) (int, error) { return s.prefill(template) }

// Stats returns the socket's counters and the kernel's XDP_STATISTICS.
func (s *Socket) Stats() (Stats, error) { return s.stats() }

// LocalStats returns the socket's own counters without asking the kernel
// (Kernel is what Stats read last): no system call, for callers that
// read them once per batch. Any goroutine may call it.
func (s *Socket) LocalStats() Stats { return s.localStats() }

// CheckFrames counts where every UMEM frame is, twice: from the socket's
// bookkeeping (free list, ring indexes, held count) and from the state it
// records for each frame, and returns an error if the two disagree or the
// places do not add up to the total. Call it from the owner goroutine.
//
// After Close it returns the count taken when the last reference went
// (every batch released, no owner call in progress), just before UMEM
// was unmapped; frames then on the TX ring (TX) never left. Until then it
// returns ErrClosed.
func (s *Socket) CheckFrames() (FrameCounts, error) { return s.checkFrames() }

// Close closes the socket (the kernel removes it from every XSKMAP) and
// wakes a parked reader. UMEM and the rings are unmapped once every batch
// is released and the owner has left its last call. Close is safe to call
// from any goroutine and more than once.
func (s *Socket) Close() error { return s.close() }

func (s *Socket) chunkOf(addr uint64) uint64 { return addr &^ uint64(s.frameSize-1) }
func (s *Socket) index(addr uint64) int      { return int(addr >> s.frameShift) }

// Len returns the number of frames in the batch.
func (b *Batch) Len() int { return len(b.descs) }

// Data returns frame i, from its first byte to its length. Its capacity
// reaches the end of the UMEM frame, so a reply may grow at the end.
func (b *Batch) Data(i int) []byte {
	d := &b.descs[i]
	end := b.s.chunkOf(d.addr) + uint64(b.s.frameSize)
	return b.s.umem[d.addr : d.addr+uint64(d.len) : end]
}

// Frame returns frame i and its metadata.
func (b *Batch) Frame(i int) ([]byte, Meta) {
	return b.Data(i), Meta{Length: int(b.descs[i].len), Options: uint32(b.descs[i].opts)}
}

// All iterates over the frames of the batch.
func (b *Batch) All() iter.Seq2[[]byte, Meta] {
	return func(yield func([]byte, Meta) bool) {
		for i := range b.descs {
			if !yield(b.Frame(i)) {
				return
			}
		}
	}
}

// Chunk returns the whole UMEM frame that holds frame i, and the offset
// of the frame's data in it: the headroom ahead of off is free for
// headers a reply prepends in place (a VLAN tag, say) before it passes a
// subslice of chunk to Transmit.
func (b *Batch) Chunk(i int) (chunk []byte, off int) {
	d := &b.descs[i]
	base := b.s.chunkOf(d.addr)
	return b.s.umem[base : base+uint64(b.s.frameSize) : base+uint64(b.s.frameSize)], int(d.addr - base)
}

// Transmit puts frame, a slice of the UMEM frame of entry i (Data(i) or
// a reply rewritten in place, see Chunk), on the TX ring without copying
// it. The entry then belongs to the TX path and Release skips it. It must
// be called by the socket's owner; the frame leaves on the next Flush. If
// the TX ring is full after a flush, it returns an error and the entry
// stays in the batch.
func (b *Batch) Transmit(i int, frame []byte) error { return b.s.transmit(b, i, frame) }

// Release gives the batch's frames back to the socket's free list, except
// those that were transmitted. Their data must not be used afterwards.
// Releasing an empty or already released batch does nothing.
func (b *Batch) Release() {
	if b.s == nil {
		return
	}
	s := b.s
	b.s = nil
	s.release(b)
	b.descs = b.descs[:0]
}
