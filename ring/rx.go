package ring

import (
	"context"
	"errors"
	"iter"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mdlayher/packet"
	xbpf "golang.org/x/net/bpf"
)

// RX is a receive ring: an AF_PACKET socket whose frames the kernel writes
// into memory shared with user space.
//
// One goroutine at a time may call Read or ReadInto. Batches may be
// released from any goroutine, and Close may be called from any goroutine
// at any time: it wakes a waiting reader, and the mapping is unmapped only
// once every batch handed out has been released, so a consumer still
// reading a frame never touches unmapped memory.
type RX struct {
	conn *packet.Conn
	rc   syscall.RawConn
	addr *Addr
	mem  []byte
	geom Geometry

	// fanoutID is the PACKET_FANOUT group the socket joined, if it did.
	fanoutID     uint16
	fanoutJoined bool

	v3         bool
	nslots     uint64 // blocks (V3) or frames (V2)
	layout     ringLayout
	batchMax   int
	busyPoll   int
	readyCheck func(uintptr) bool // r.pollReady, bound once so parking doesn't allocate

	// head is the ring position the reader looks at next. Only the reader
	// touches it.
	head uint64

	// tail is the oldest position not yet handed back to the kernel;
	// positions in [tail, head) belong to user space. tailPub mirrors it
	// for the reader's lock-free "is the ring all outstanding" check.
	mu       sync.Mutex
	tail     uint64
	released []bool // by position % nslots: batch released, slot not yet handed back
	refs     int    // 1 for the open RX, +1 per outstanding batch and active reader
	tailPub  atomic.Uint64

	closed     atomic.Bool
	closedCh   chan struct{}
	releasedCh chan struct{} // signalled when a Release frees ring space

	statsMu sync.Mutex
	stats   Stats

	// Read's batch and position in it, guarded by readMu so Close can
	// release it once Read has returned.
	readMu    sync.Mutex
	readBatch Batch
	readNext  int
}

// NewRX opens a receive ring on ifi. A nil cfg means the defaults of
// RXConfig. The filter and the ring are in place before the socket is
// bound to cfg.Protocol, so no frame reaches it unfiltered or before the
// ring exists (see "Opening the socket" in the package documentation).
//
// To open a ring in another network namespace, call NewRX on a thread in
// that namespace (lab.Host.Do); the socket stays there.
func NewRX(ifi *net.Interface, cfg *RXConfig) (*RX, error) {
	var c RXConfig
	if cfg != nil {
		c = *cfg
	}
	g, err := rxGeometry(&c, ifi)
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: "packet", Addr: addrOf(ifi), Err: err}
	}
	r := &RX{
		geom:       g.public(),
		v3:         g.v3,
		nslots:     uint64(g.slots),
		layout:     g.layout,
		batchMax:   g.batchMax,
		busyPoll:   c.BusyPoll,
		released:   make([]bool, g.slots),
		refs:       1,
		closedCh:   make(chan struct{}),
		releasedCh: make(chan struct{}, 1),
	}
	r.readyCheck = r.pollReady
	if err := r.open(ifi, &c, &g); err != nil {
		return nil, err
	}
	return r, nil
}

// Geometry returns the ring's shape.
func (r *RX) Geometry() Geometry { return r.geom }

// FanoutGroup returns the ID of the PACKET_FANOUT group the socket joined,
// the one the kernel chose for a Fanout with UniqueID, and ok false when
// RXConfig.Fanout was nil.
func (r *RX) FanoutGroup() (id uint16, ok bool) { return r.fanoutID, r.fanoutJoined }

// Version returns the ring's TPACKET version.
func (r *RX) Version() Version {
	if r.v3 {
		return V3
	}
	return V2
}

// Addr returns the interface the ring is bound to.
func (r *RX) Addr() net.Addr { return r.addr }

// slotOffset returns where the slot of ring position pos starts.
func (r *RX) slotOffset(pos uint64) int {
	i := int(pos % r.nslots)
	if r.v3 {
		return i * r.layout.blockSize
	}
	return r.layout.frameOffset(i)
}

// statusOffset is where the status word of a slot lives.
func (r *RX) statusOffset(pos uint64) int {
	if r.v3 {
		return r.slotOffset(pos) + blockStatus
	}
	return r.slotOffset(pos) + v2Status
}

// full reports whether every slot is held by user space, in which case the
// slot at head is an old one, not a new one.
func (r *RX) full() bool { return r.head-r.tailPub.Load() >= r.nslots }

// ready reports whether the slot at head holds new frames.
func (r *RX) ready() bool {
	return !r.full() && loadStatus(r.mem, r.statusOffset(r.head))&statusUser != 0
}

func (r *RX) pollReady(uintptr) bool { return r.closed.Load() || r.ready() }

// ReadInto waits for frames and fills b with them: one V3 block or up to
// BatchSize V2 frames. If b still holds frames from an earlier call, they
// are released first, so a loop that reuses one Batch needs no Release.
//
// With a background context and frames ready, ReadInto does not allocate.
// It returns ErrClosed once the RX is closed, and the context's error
// (wrapped) when ctx ends first.
func (r *RX) ReadInto(ctx context.Context, b *Batch) error {
	b.Release()
	if !r.acquire() {
		return ErrClosed
	}
	handedOver := false
	defer func() {
		if !handedOver {
			r.unref()
		}
	}()
	for {
		if r.closed.Load() {
			return ErrClosed
		}
		if r.full() {
			// Every slot is out with consumers: wait for a Release.
			select {
			case <-r.releasedCh:
				continue
			case <-r.closedCh:
				return ErrClosed
			case <-ctx.Done():
				return os.NewSyscallError("read", ctx.Err())
			}
		}
		if r.fill(b) {
			// The reader's reference now belongs to the batch.
			handedOver = true
			return nil
		}
		if r.ready() {
			continue // an empty V3 block went straight back; look again
		}
		for i := 0; i < r.busyPoll && !r.ready() && !r.closed.Load(); i++ {
		}
		if r.ready() {
			continue
		}
		if err := r.park(ctx); err != nil {
			if r.closed.Load() {
				return ErrClosed
			}
			return err
		}
	}
}

// SetReadDeadline sets a deadline for ReadInto and Read waiting on an
// empty ring: once it has passed, a waiting call, and every later one
// that finds no frame, returns an error wrapping os.ErrDeadlineExceeded
// (frames that are ready are handed over first). The zero time removes
// it. Unlike a context with a deadline, it costs no allocation per wait,
// so a reader that wants to wake up now and then on a quiet ring (the
// engine's worker, to time out fragments) can keep one set. A context
// that ends while ReadInto waits removes it.
func (r *RX) SetReadDeadline(t time.Time) error { return r.conn.SetReadDeadline(t) }

// park waits in the runtime poller until the socket is readable, which the
// kernel signals when it hands over a V2 frame or retires a V3 block.
func (r *RX) park(ctx context.Context) error {
	if ctx.Done() == nil {
		return r.rc.Read(r.readyCheck)
	}
	if err := ctx.Err(); err != nil {
		return os.NewSyscallError("read", err)
	}
	// When ctx ends, a read deadline in the past evicts the reader from
	// the poller; the deadline is disarmed once that has run.
	woken := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		r.conn.SetReadDeadline(time.Unix(1, 0))
		close(woken)
	})
	err := r.rc.Read(r.readyCheck)
	if !stop() {
		<-woken
		r.conn.SetReadDeadline(time.Time{})
		if err != nil {
			return os.NewSyscallError("read", ctx.Err())
		}
	}
	return err
}

// fill takes the slots at head into b, if the kernel has handed any over.
func (r *RX) fill(b *Batch) bool {
	b.offs = b.offs[:0]
	if r.v3 {
		off := r.slotOffset(r.head)
		st := loadStatus(r.mem, off+blockStatus)
		if st&statusUser == 0 {
			return false
		}
		num := int(native.Uint32(r.mem[off+blockNumPkts:]))
		p := off + int(native.Uint32(r.mem[off+blockFirstPkt:]))
		end := off + r.layout.blockSize
		for k := 0; k < num && p+v3HdrLen <= end; k++ {
			b.offs = append(b.offs, uint32(p))
			next := int(native.Uint32(r.mem[p+v3Next:]))
			if next == 0 {
				break
			}
			p += next
		}
		pos := r.head
		r.head++
		if len(b.offs) == 0 {
			// The kernel retires empty blocks only in corner cases;
			// give it straight back and report nothing.
			r.ref()
			r.release(pos, 1)
			return false
		}
		b.rx, b.mem, b.v3, b.first, b.slots = r, r.mem, true, pos, 1
		b.losing = Status(st & statusLosing)
		return true
	}
	tail := r.tailPub.Load()
	for len(b.offs) < r.batchMax && r.head+uint64(len(b.offs))-tail < r.nslots {
		off := r.slotOffset(r.head + uint64(len(b.offs)))
		if loadStatus(r.mem, off+v2Status)&statusUser == 0 {
			break
		}
		b.offs = append(b.offs, uint32(off))
	}
	if len(b.offs) == 0 {
		return false
	}
	b.rx, b.mem, b.v3, b.first, b.slots, b.losing = r, r.mem, false, r.head, len(b.offs), 0
	r.head += uint64(len(b.offs))
	return true
}

// acquire takes a reference for an active reader, unless the RX is closed.
func (r *RX) acquire() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed.Load() {
		return false
	}
	r.refs++
	return true
}

func (r *RX) ref() {
	r.mu.Lock()
	r.refs++
	r.mu.Unlock()
}

// unref drops a reference; the last one unmaps the ring.
func (r *RX) unref() {
	r.mu.Lock()
	r.unrefLocked()
	r.mu.Unlock()
}

func (r *RX) unrefLocked() error {
	r.refs--
	if r.refs == 0 && r.mem != nil {
		mem := r.mem
		r.mem = nil
		return unmap(mem)
	}
	return nil
}

// release marks the n slots from position first as released, hands the
// longest released run at the tail back to the kernel, and drops the
// batch's reference.
func (r *RX) release(first uint64, n int) {
	r.mu.Lock()
	for p := first; p < first+uint64(n); p++ {
		r.released[p%r.nslots] = true
	}
	advanced := false
	for r.released[r.tail%r.nslots] {
		r.released[r.tail%r.nslots] = false
		storeStatus(r.mem, r.statusOffset(r.tail), statusKernel)
		r.tail++
		advanced = true
	}
	if advanced {
		r.tailPub.Store(r.tail)
	}
	r.unrefLocked()
	r.mu.Unlock()
	if advanced {
		select {
		case r.releasedCh <- struct{}{}:
		default:
		}
	}
}

// Read copies the next frame into p and returns its length (at most
// len(p); Meta.Length tells the length on the wire) and metadata. It is the
// simple path; ReadInto avoids the copy. Do not mix the two on one RX.
func (r *RX) Read(ctx context.Context, p []byte) (int, Meta, error) {
	r.readMu.Lock()
	defer r.readMu.Unlock()
	for r.readNext >= r.readBatch.Len() {
		if err := r.ReadInto(ctx, &r.readBatch); err != nil {
			return 0, Meta{}, err
		}
		r.readNext = 0
	}
	data, m := r.readBatch.Frame(r.readNext)
	r.readNext++
	n := copy(p, data)
	if r.readNext == r.readBatch.Len() {
		r.readBatch.Release()
	}
	return n, m, nil
}

// SetFilter replaces the socket's classic BPF filter; frames already in the
// ring stay. A nil or empty filter removes it. It fails with EPERM when the
// filter was locked (RXConfig.LockFilter).
func (r *RX) SetFilter(filter []xbpf.RawInstruction) error {
	if r.closed.Load() {
		return ErrClosed
	}
	if err := r.setFilter(filter); err != nil {
		return opError("setfilter", r.addr, err)
	}
	return nil
}

// SyscallConn gives access to the socket, for options this package does
// not wrap. Do not read from it or change the ring with it.
func (r *RX) SyscallConn() (syscall.RawConn, error) { return r.conn.SyscallConn() }

// Stats reads PACKET_STATISTICS, adds it to the totals since the socket
// was opened, and returns the totals.
func (r *RX) Stats() (Stats, error) {
	r.statsMu.Lock()
	defer r.statsMu.Unlock()
	if r.closed.Load() {
		return r.stats, ErrClosed
	}
	s, err := r.conn.Stats()
	if err != nil {
		return r.stats, opError("stats", r.addr, err)
	}
	r.stats.Packets += uint64(s.Packets)
	r.stats.Drops += uint64(s.Drops)
	r.stats.FreezeQueue += uint64(s.FreezeQueueCount)
	return r.stats, nil
}

// Close closes the socket and wakes a waiting reader, which returns
// ErrClosed. The ring stays mapped until every outstanding batch has been
// released; the last Release unmaps it. Close is safe to call from any
// goroutine and more than once.
func (r *RX) Close() error {
	if !r.closed.CompareAndSwap(false, true) {
		return nil
	}
	close(r.closedCh)
	// Closing the descriptor evicts a parked reader from the poller and
	// waits until it has left. The mapping keeps the socket's memory alive.
	err := unwrapOp(r.conn.Close())

	// Read's own batch: with the reader gone, it can be released here.
	r.readMu.Lock()
	r.readBatch.Release()
	r.readMu.Unlock()

	r.mu.Lock()
	err = errors.Join(err, r.unrefLocked())
	r.mu.Unlock()
	if err != nil {
		return opError("close", r.addr, err)
	}
	return nil
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
