//go:build linux

package ring

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mdlayher/socket"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
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
	conn *socket.Conn
	rc   syscall.RawConn
	addr *Addr
	mem  []byte

	v3         bool
	nslots     uint64 // blocks (V3) or frames (V2)
	blockSize  int
	frameSize  int // V2
	perBlock   int // V2 frames per block
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
// RXConfig. The socket is set up in this order: ring, mapping, filter,
// IgnoreOutgoing, bind, fanout, promiscuous membership; so the filter is in
// place before the first frame can arrive.
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
	ps, err := openPacket("listen", ifi)
	if err != nil {
		return nil, err
	}
	r := &RX{
		conn:       ps.conn,
		addr:       ps.addr,
		v3:         g.v3,
		nslots:     uint64(g.slots),
		blockSize:  g.blockSize,
		frameSize:  g.frameSize,
		perBlock:   g.perBlock,
		batchMax:   g.batchMax,
		busyPoll:   c.BusyPoll,
		released:   make([]bool, g.slots),
		refs:       1,
		closedCh:   make(chan struct{}),
		releasedCh: make(chan struct{}, 1),
	}
	r.readyCheck = r.pollReady
	ok := false
	defer func() {
		if !ok {
			ps.close()
			if r.mem != nil {
				unix.Munmap(r.mem)
			}
		}
	}()

	if err := r.setupRing(ps, g); err != nil {
		return nil, err
	}
	if err := ps.attachFilter(c.Filter, c.LockFilter); err != nil {
		return nil, err
	}
	if c.IgnoreOutgoing {
		if err := ps.setInt("PACKET_IGNORE_OUTGOING", unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1); err != nil {
			return nil, err
		}
	}
	proto := c.Protocol
	if proto == 0 {
		proto = ProtocolAll
	}
	if err := ps.bind(proto); err != nil {
		return nil, err
	}
	if c.Fanout != nil {
		if err := ps.joinFanout(c.Fanout); err != nil {
			return nil, err
		}
	}
	if c.Promiscuous {
		if err := ps.promiscuous(); err != nil {
			return nil, err
		}
	}
	if r.rc, err = r.conn.SyscallConn(); err != nil {
		return nil, ps.wrap(err)
	}
	ok = true
	return r, nil
}

func addrOf(ifi *net.Interface) net.Addr {
	if ifi == nil {
		return nil
	}
	return &Addr{Index: ifi.Index, Name: ifi.Name}
}

// rxGeom is a validated ring shape.
type rxGeom struct {
	v3                 bool
	blockSize, blockNr int
	frameSize, frameNr int
	perBlock, slots    int
	retireMs, batchMax int
	mapSize            int
}

// rxGeometry fills in c's defaults and checks what the kernel would
// reject, so errors name the field at fault.
func rxGeometry(c *RXConfig, ifi *net.Interface) (rxGeom, error) {
	page := os.Getpagesize()
	var g rxGeom
	switch c.Version {
	case 0, V3:
		g.v3 = true
		g.blockSize = orDefault(c.BlockSize, 256<<10)
		g.blockNr = orDefault(c.BlockCount, 32)
		if g.blockSize%page != 0 || g.blockSize <= 0 {
			return g, fmt.Errorf("RXConfig.BlockSize %d is not a positive multiple of the page size %d", g.blockSize, page)
		}
		if g.blockNr <= 0 {
			return g, fmt.Errorf("RXConfig.BlockCount %d is not positive", g.blockNr)
		}
		// The kernel wants a frame size for V3 too, though frames are
		// packed by their real length; any aligned size dividing the
		// block will do.
		g.frameSize = tpacketAlignment * 128
		for g.blockSize%g.frameSize != 0 {
			g.frameSize /= 2
		}
		g.frameNr = g.blockNr * (g.blockSize / g.frameSize)
		g.slots = g.blockNr
		tmo := c.RetireTimeout
		if tmo < 0 {
			return g, fmt.Errorf("RXConfig.RetireTimeout %v is negative", tmo)
		}
		if tmo == 0 {
			tmo = time.Millisecond
		}
		g.retireMs = max(1, int((tmo+time.Millisecond/2)/time.Millisecond))
		g.batchMax = 0
	case V2:
		mtu := 1500
		if ifi != nil && ifi.MTU > 0 {
			mtu = ifi.MTU
		}
		if c.FrameSize == 0 {
			// Header area (80 bytes for V2), Ethernet header, payload:
			// rounded up to a power of two, at least 2048.
			g.frameSize = 2048
			for g.frameSize < tpacketAlign(v2HdrLen+16)+14+mtu {
				g.frameSize *= 2
			}
		} else {
			g.frameSize = c.FrameSize
		}
		if g.frameSize%tpacketAlignment != 0 || g.frameSize < tpacketAlign(v2HdrLen+16)+14 {
			return g, fmt.Errorf("RXConfig.FrameSize %d is not a multiple of 16 of at least %d", g.frameSize, tpacketAlign(v2HdrLen+16)+14)
		}
		// Blocks of at least 64 KiB keep the tail of each block that no
		// frame fits in small.
		g.blockSize = (g.frameSize + page - 1) / page * page
		if g.blockSize < 64<<10 {
			g.blockSize = 64 << 10
		}
		g.perBlock = g.blockSize / g.frameSize
		want := orDefault(c.FrameCount, 4096)
		if want <= 0 {
			return g, fmt.Errorf("RXConfig.FrameCount %d is not positive", want)
		}
		g.blockNr = (want + g.perBlock - 1) / g.perBlock
		g.frameNr = g.blockNr * g.perBlock
		g.slots = g.frameNr
		g.batchMax = orDefault(c.BatchSize, 64)
		if g.batchMax <= 0 {
			return g, fmt.Errorf("RXConfig.BatchSize %d is not positive", g.batchMax)
		}
	default:
		return g, fmt.Errorf("RXConfig.Version %d is neither V2 nor V3", c.Version)
	}
	if c.BusyPoll < 0 {
		return g, fmt.Errorf("RXConfig.BusyPoll %d is negative", c.BusyPoll)
	}
	g.mapSize = g.blockSize * g.blockNr
	return g, nil
}

func orDefault(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

// setupRing selects the TPACKET version, requests the ring and maps it.
func (r *RX) setupRing(ps *packetSocket, g rxGeom) error {
	ver := unix.TPACKET_V2
	if g.v3 {
		ver = unix.TPACKET_V3
	}
	if err := ps.setInt("PACKET_VERSION", unix.SOL_PACKET, unix.PACKET_VERSION, ver); err != nil {
		return err
	}
	err := ps.control(func(fd int) error {
		if g.v3 {
			req := unix.TpacketReq3{
				Block_size:     uint32(g.blockSize),
				Block_nr:       uint32(g.blockNr),
				Frame_size:     uint32(g.frameSize),
				Frame_nr:       uint32(g.frameNr),
				Retire_blk_tov: uint32(g.retireMs),
			}
			return os.NewSyscallError("setsockopt PACKET_RX_RING", unix.SetsockoptTpacketReq3(fd, unix.SOL_PACKET, unix.PACKET_RX_RING, &req))
		}
		req := unix.TpacketReq{
			Block_size: uint32(g.blockSize),
			Block_nr:   uint32(g.blockNr),
			Frame_size: uint32(g.frameSize),
			Frame_nr:   uint32(g.frameNr),
		}
		return os.NewSyscallError("setsockopt PACKET_RX_RING", unix.SetsockoptTpacketReq(fd, unix.SOL_PACKET, unix.PACKET_RX_RING, &req))
	})
	if err != nil {
		return err
	}
	r.mem, err = ps.mmap(g.mapSize)
	return err
}

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
		return i * r.blockSize
	}
	return i/r.perBlock*r.blockSize + i%r.perBlock*r.frameSize
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

// park waits in the runtime poller until the socket is readable, which the
// kernel signals when it hands over a V2 frame or retires a V3 block.
func (r *RX) park(ctx context.Context) error {
	if ctx.Done() == nil {
		return r.rc.Read(r.readyCheck)
	}
	return r.conn.ReadFunc(ctx, "read", func(int) error {
		if r.pollReady(0) {
			return nil
		}
		return unix.EAGAIN
	})
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
		end := off + r.blockSize
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
		return os.NewSyscallError("munmap", unix.Munmap(mem))
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
func (r *RX) SetFilter(filter []bpf.RawInstruction) error {
	if r.closed.Load() {
		return ErrClosed
	}
	var err error
	if len(filter) == 0 {
		err = r.conn.RemoveBPF()
	} else {
		err = r.conn.SetBPF(filter)
	}
	if err != nil {
		return &net.OpError{Op: "setfilter", Net: "packet", Addr: r.addr, Err: err}
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
	if r.v3 {
		s, err := r.conn.GetsockoptTpacketStatsV3(unix.SOL_PACKET, unix.PACKET_STATISTICS)
		if err != nil {
			return r.stats, &net.OpError{Op: "stats", Net: "packet", Addr: r.addr, Err: err}
		}
		r.stats.Packets += uint64(s.Packets)
		r.stats.Drops += uint64(s.Drops)
		r.stats.FreezeQueue += uint64(s.Freeze_q_cnt)
	} else {
		s, err := r.conn.GetsockoptTpacketStats(unix.SOL_PACKET, unix.PACKET_STATISTICS)
		if err != nil {
			return r.stats, &net.OpError{Op: "stats", Net: "packet", Addr: r.addr, Err: err}
		}
		r.stats.Packets += uint64(s.Packets)
		r.stats.Drops += uint64(s.Drops)
	}
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
	err := r.conn.Close()

	// Read's own batch: with the reader gone, it can be released here.
	r.readMu.Lock()
	r.readBatch.Release()
	r.readMu.Unlock()

	r.mu.Lock()
	err = errors.Join(err, r.unrefLocked())
	r.mu.Unlock()
	if err != nil {
		return &net.OpError{Op: "close", Net: "packet", Addr: r.addr, Err: err}
	}
	return nil
}
