//go:build linux

package xdp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/mdlayher/socket"
	"golang.org/x/sys/unix"
)

// xdpPacketHeadroom is XDP_PACKET_HEADROOM: the kernel keeps this much of
// every UMEM frame ahead of the data it receives.
const xdpPacketHeadroom = unix.XDP_PACKET_HEADROOM

// frameState says where one UMEM frame is. Every transition checks the
// state it leaves, so a frame can never be in two places.
type frameState uint8

const (
	stateFree   frameState = iota // on the free list (local or returned)
	stateKernel                   // on the fill ring or in the kernel's receive path or the RX ring
	stateHeld                     // with user space: a batch or Next's buffer
	stateTX                       // on the TX ring, in flight or on the completion ring
)

// xsk is the Linux part of a Socket.
type xsk struct {
	// conn and rc hold the socket while Listen sets it up; fd then holds
	// it outside the Go runtime's poller (see detach), and efd is an
	// eventfd that Close writes to wake a reader parked in poll(2).
	// fdUsers counts the calls using fd at the moment: Close waits for
	// them before it closes fd, so that a number never names another file
	// under a call.
	conn    *socket.Conn
	rc      syscall.RawConn
	fd, efd int
	fdUsers atomic.Int32

	fill, comp *addrRing
	rx, tx     *descRing

	// state records each frame's place, by frame index.
	state []frameState

	// local is the owner's free list. returned collects frames released
	// from batches, from any goroutine, under mu; the owner swaps it in.
	local    []uint64
	mu       sync.Mutex
	returned []uint64
	spare    []uint64
	waiting  atomic.Bool   // the owner waits for a Release
	released chan struct{} // signalled by Release when waiting

	held atomic.Int64 // frames in batches and Next's buffer

	// txReserve is how many free frames refill leaves for Next.
	txReserve int

	// nextAddr is the chunk of the buffer Next lent out, valid if nextOK.
	nextAddr uint64
	nextOK   bool

	// Totals the owner keeps, for the accounting check: frames published
	// to the fill ring, consumed from the RX ring, put on the TX ring and
	// reclaimed from the completion ring.
	fillProduced, rxConsumed, txProduced, compConsumed uint64
	txPublished                                        uint32 // tx.cachedProd at the last submit

	// Counters, published for Stats (which may run on another
	// goroutine) at the end of ReadInto and Flush.
	cnt   counters
	pub   [numCounters]atomic.Uint64
	kstat KernelStats
	kmu   sync.Mutex

	// refs counts the open socket (1), each outstanding batch, Next's
	// buffer and each owner call in progress; the last one unmaps.
	refs      atomic.Int64
	closed    atomic.Bool
	closedCh  chan struct{}
	unmapOnce sync.Once
	unmapErr  error

	// The frame count taken as the last reference went, before UMEM
	// was unmapped: what CheckFrames returns after Close.
	finalWaiting atomic.Uint64 // RXWaiting as UMEM went
	finalMu      sync.Mutex
	final        *FrameCounts
	finalErr     error

	sysErr error // kick's
}

type counters [numCounters]uint64

const (
	cntReceived = iota
	cntTransmitted
	cntCompleted
	cntTXDropped
	cntKicks
	cntWakeups
	cntWaits
	cntBadDescs
	numCounters
)

func listen(ifi *net.Interface, queue int, cfg *Config) (_ *Socket, err error) {
	if ifi == nil {
		return nil, &net.OpError{Op: "listen", Net: "xdp", Err: errors.New("nil interface")}
	}
	var c Config
	if cfg != nil {
		c = *cfg
	}
	s := &Socket{addr: Addr{Index: ifi.Index, Name: ifi.Name, Queue: queue}}
	s.fd, s.efd = -1, -1
	wrap := func(err error) error {
		if err == nil {
			return nil
		}
		if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
			err = fmt.Errorf("%w (AF_XDP sockets need CAP_NET_RAW, and UMEM registration may need RLIMIT_MEMLOCK or CAP_IPC_LOCK)", err)
		}
		return &net.OpError{Op: "listen", Net: "xdp", Addr: s.Addr(), Err: err}
	}
	if err := s.geometry(&c, ifi); err != nil {
		return nil, wrap(err)
	}

	conn, err := socket.Socket(unix.AF_XDP, unix.SOCK_RAW, 0, "xdp", nil)
	if err != nil {
		return nil, wrap(err)
	}
	s.conn = conn
	defer func() {
		if err != nil {
			conn.Close()
			s.unmap()
		}
	}()
	if s.rc, err = conn.SyscallConn(); err != nil {
		return nil, wrap(err)
	}
	err = s.control(func(fd int) error { return s.setup(fd, &c, ifi, queue) })
	if err != nil {
		return nil, wrap(err)
	}
	if err = s.detach(); err != nil {
		return nil, wrap(err)
	}
	s.refs.Store(1)
	s.closedCh = make(chan struct{})
	s.released = make(chan struct{}, 1)
	return s, nil
}

func rxQueues(ifi *net.Interface) (int, error) {
	if n, err := ethtoolRXChannels(ifi.Name); err == nil && n > 0 {
		return n, nil
	}
	// No ethtool channels: every allocated queue counts.
	n, err := numRXQueues(ifi.Index)
	if err != nil {
		return 0, &net.OpError{Op: "queues", Net: "xdp", Addr: &Addr{Index: ifi.Index, Name: ifi.Name, Queue: -1}, Err: err}
	}
	return n, nil
}

// ethtoolRXChannels returns the receive queues in use, rx plus combined
// channels (ETHTOOL_GCHANNELS): veth, for one, allocates more queues than
// it uses.
func ethtoolRXChannels(name string) (int, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, err
	}
	defer unix.Close(fd)
	// struct ethtool_channels: cmd, then max and current counts of rx,
	// tx, other and combined channels.
	var ch [9]uint32
	ch[0] = 0x3c // ETHTOOL_GCHANNELS
	// struct ifreq: the name, then a pointer to the data. The pointer
	// is typed so that the collector sees it.
	var ifr struct {
		name [unix.IFNAMSIZ]byte
		data unsafe.Pointer
		_    [16]byte
	}
	if len(name) >= unix.IFNAMSIZ {
		return 0, unix.EINVAL
	}
	copy(ifr.name[:], name)
	ifr.data = unsafe.Pointer(&ch)
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&ifr))); e != 0 {
		return 0, e
	}
	return int(ch[5] + ch[8]), nil
}

// geometry checks cfg and fills in the socket's sizes.
func (s *Socket) geometry(c *Config, ifi *net.Interface) error {
	s.dataOff = xdpPacketHeadroom + c.Headroom
	if c.Headroom < 0 || c.Headroom > 1024 {
		return fmt.Errorf("Config.Headroom = %d, want 0 to 1024", c.Headroom)
	}
	need := s.dataOff + ifi.MTU + 14 + 4 // Ethernet header and one VLAN tag
	switch c.FrameSize {
	case 0:
		s.frameSize = 2048
		if need > 2048 {
			s.frameSize = 4096
		}
	case 2048, 4096:
		s.frameSize = c.FrameSize
	default:
		return fmt.Errorf("Config.FrameSize = %d, want 2048 or 4096", c.FrameSize)
	}
	s.frameShift = 11
	if s.frameSize == 4096 {
		s.frameShift = 12
	}
	if need > s.frameSize {
		return fmt.Errorf("MTU %d does not fit a %d-byte UMEM frame behind %d bytes of headroom; lower the MTU or raise FrameSize", ifi.MTU, s.frameSize, s.dataOff)
	}
	s.frameCount = orDefault(c.FrameCount, 4096)
	if s.frameCount < 64 || s.frameCount > 1<<20 {
		return fmt.Errorf("Config.FrameCount = %d, want 64 to %d", s.frameCount, 1<<20)
	}
	for _, r := range []struct {
		name string
		v    *int
	}{{"RXSize", &c.RXSize}, {"TXSize", &c.TXSize}, {"FillSize", &c.FillSize}, {"CompletionSize", &c.CompletionSize}} {
		*r.v = orDefault(*r.v, 2048)
		if *r.v < 8 || *r.v > 1<<16 || *r.v&(*r.v-1) != 0 {
			return fmt.Errorf("Config.%s = %d, want a power of two from 8 to 65536", r.name, *r.v)
		}
	}
	s.batchMax = orDefault(c.BatchSize, 256)
	if s.batchMax < 1 || s.batchMax > c.RXSize {
		return fmt.Errorf("Config.BatchSize = %d, want 1 to RXSize (%d)", s.batchMax, c.RXSize)
	}
	s.busyPoll = c.BusyPoll
	s.rawKick = c.RawKick
	return nil
}

func orDefault(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

// setup registers UMEM, creates and maps the rings, binds, and stocks the
// fill ring.
func (s *Socket) setup(fd int, c *Config, ifi *net.Interface, queue int) error {
	var err error
	s.umem, err = unix.Mmap(-1, 0, s.frameSize*s.frameCount, unix.PROT_READ|unix.PROT_WRITE,
		unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_POPULATE)
	if err != nil {
		return os.NewSyscallError("mmap", err)
	}
	reg := unix.XDPUmemReg{
		Addr:     uint64(uintptr(unsafe.Pointer(&s.umem[0]))),
		Len:      uint64(len(s.umem)),
		Size:     uint32(s.frameSize),
		Headroom: uint32(c.Headroom),
	}
	if err := setsockopt(fd, unix.XDP_UMEM_REG, unsafe.Pointer(&reg), unsafe.Sizeof(reg)); err != nil {
		return fmt.Errorf("XDP_UMEM_REG: %w", err)
	}
	rings := []struct {
		name string
		opt  int
		size int
	}{
		{"XDP_UMEM_FILL_RING", unix.XDP_UMEM_FILL_RING, c.FillSize},
		{"XDP_UMEM_COMPLETION_RING", unix.XDP_UMEM_COMPLETION_RING, c.CompletionSize},
		{"XDP_RX_RING", unix.XDP_RX_RING, c.RXSize},
		{"XDP_TX_RING", unix.XDP_TX_RING, c.TXSize},
	}
	if c.TXOnly {
		rings = append(rings[:2], rings[3])
	}
	for _, r := range rings {
		if err := unix.SetsockoptInt(fd, unix.SOL_XDP, r.opt, r.size); err != nil {
			return fmt.Errorf("%s: %w", r.name, os.NewSyscallError("setsockopt", err))
		}
	}
	var off unix.XDPMmapOffsets
	optlen := uint32(unsafe.Sizeof(off))
	if _, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_XDP, unix.XDP_MMAP_OFFSETS,
		uintptr(unsafe.Pointer(&off)), uintptr(unsafe.Pointer(&optlen)), 0); e != 0 {
		return fmt.Errorf("XDP_MMAP_OFFSETS: %w", os.NewSyscallError("getsockopt", e))
	}
	if s.fill, err = mapAddrRing(fd, &off.Fr, uint32(c.FillSize), unix.XDP_UMEM_PGOFF_FILL_RING); err != nil {
		return err
	}
	if s.comp, err = mapAddrRing(fd, &off.Cr, uint32(c.CompletionSize), unix.XDP_UMEM_PGOFF_COMPLETION_RING); err != nil {
		return err
	}
	if !c.TXOnly {
		if s.rx, err = mapDescRing(fd, &off.Rx, uint32(c.RXSize), unix.XDP_PGOFF_RX_RING); err != nil {
			return err
		}
	}
	if s.tx, err = mapDescRing(fd, &off.Tx, uint32(c.TXSize), unix.XDP_PGOFF_TX_RING); err != nil {
		return err
	}

	// Every frame starts free; the fill ring gets as many as it holds
	// (at most half of UMEM, so that transmitting never starves).
	s.state = make([]frameState, s.frameCount)
	s.local = make([]uint64, 0, s.frameCount)
	s.returned = make([]uint64, 0, s.frameCount)
	s.spare = make([]uint64, 0, s.frameCount)
	for i := s.frameCount - 1; i >= 0; i-- {
		s.local = append(s.local, uint64(i)*uint64(s.frameSize))
	}
	if !c.TXOnly {
		s.txReserve = min(c.TXSize/4, s.frameCount/8)
		s.refill(min(c.FillSize, s.frameCount/2))
	}

	if budget := c.TXBudget; budget >= 0 {
		if budget == 0 {
			budget = min(256, c.TXSize)
		}
		switch err := unix.SetsockoptInt(fd, unix.SOL_XDP, unix.XDP_MAX_TX_SKB_BUDGET, budget); {
		case err == nil:
			s.txBudget = budget
		case errors.Is(err, unix.ENOPROTOOPT):
			// An older kernel: its fixed budget of 32 applies.
		default:
			return fmt.Errorf("XDP_MAX_TX_SKB_BUDGET %d (want 32 to TXSize): %w", budget, os.NewSyscallError("setsockopt", err))
		}
	}

	flags := uint16(0)
	if !c.NoNeedWakeup {
		flags |= unix.XDP_USE_NEED_WAKEUP
	}
	bind := func(mode uint16) error {
		sa := &unix.SockaddrXDP{Flags: flags | mode, Ifindex: uint32(ifi.Index), QueueID: uint32(queue)}
		// The kernel lets go of a closed socket's queue from a work
		// queue, a little after close(2): a socket reopened at once
		// finds the queue busy for a moment.
		err := unix.Bind(fd, sa)
		for tries := 0; errors.Is(err, unix.EBUSY) && tries < 50; tries++ {
			time.Sleep(10 * time.Millisecond)
			err = unix.Bind(fd, sa)
		}
		if errors.Is(err, unix.EBUSY) {
			err = fmt.Errorf("%w (another AF_XDP socket is bound to queue %d of %s)", err, queue, ifi.Name)
		}
		return err
	}
	switch c.Mode {
	case ModeAuto:
		err = bind(unix.XDP_ZEROCOPY)
		s.mode = ModeZeroCopy
		if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EPROTONOSUPPORT) {
			err = bind(unix.XDP_COPY)
			s.mode = ModeCopy
		}
	case ModeCopy:
		err = bind(unix.XDP_COPY)
		s.mode = ModeCopy
	case ModeZeroCopy:
		err = bind(unix.XDP_ZEROCOPY)
		s.mode = ModeZeroCopy
		if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EPROTONOSUPPORT) {
			err = fmt.Errorf("%w (the driver of %s does not offer AF_XDP zero-copy; use ModeCopy or ModeAuto)", err, ifi.Name)
		}
	default:
		return fmt.Errorf("unknown Config.Mode %d", c.Mode)
	}
	if err != nil {
		if errors.Is(err, unix.EINVAL) {
			err = fmt.Errorf("%w (is queue %d one of %s's RX queues?)", err, queue, ifi.Name)
		}
		return os.NewSyscallError("bind", err)
	}
	// Trust the kernel's word on the mode over the request.
	var opts uint32
	optlen = 4
	if _, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_XDP, unix.XDP_OPTIONS,
		uintptr(unsafe.Pointer(&opts)), uintptr(unsafe.Pointer(&optlen)), 0); e == 0 {
		if opts&unix.XDP_OPTIONS_ZEROCOPY != 0 {
			s.mode = ModeZeroCopy
		} else {
			s.mode = ModeCopy
		}
	}
	return nil
}

func setsockopt(fd, opt int, p unsafe.Pointer, n uintptr) error {
	if _, _, e := unix.Syscall6(unix.SYS_SETSOCKOPT, uintptr(fd), unix.SOL_XDP, uintptr(opt), uintptr(p), n, 0); e != 0 {
		return os.NewSyscallError("setsockopt", e)
	}
	return nil
}

// detach takes the socket out of the Go runtime's poller once it is set
// up: it keeps a duplicate of the descriptor and closes the Conn, whose
// close removes the descriptor from the poller's epoll set. A socket in
// an epoll set has a waiter on its wait queue for good, and the kernel
// wakes it (sock_def_write_space: a lock taken with interrupts off, and
// the epoll callback) for every transmitted frame it frees; on the lab's
// VM, where re-enabling interrupts is a hypervisor call, that was about a
// tenth of an echo responder's CPU. The socket's owner parks in poll(2)
// instead (park), when there is nothing to do.
func (s *Socket) detach() error {
	var nfd int
	err := s.rc.Control(func(fd uintptr) {
		var err error
		nfd, err = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			nfd = -1
		}
	})
	if err == nil && nfd < 0 {
		err = errors.New("F_DUPFD_CLOEXEC failed")
	}
	if err != nil {
		return os.NewSyscallError("fcntl", err)
	}
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(nfd)
		return os.NewSyscallError("eventfd", err)
	}
	if err := s.conn.Close(); err != nil {
		unix.Close(nfd)
		unix.Close(efd)
		return err
	}
	s.fd, s.efd = nfd, efd
	return nil
}

// enterFD marks a call that uses fd, unless the socket is closed; leaveFD
// ends it.
func (s *Socket) enterFD() bool {
	s.fdUsers.Add(1)
	if s.closed.Load() {
		s.fdUsers.Add(-1)
		return false
	}
	return true
}

func (s *Socket) leaveFD() { s.fdUsers.Add(-1) }

// control runs f with the descriptor.
func (s *Socket) control(f func(fd int) error) error {
	if s.fd < 0 { // still in Listen
		var ferr error
		if err := s.rc.Control(func(fd uintptr) { ferr = f(int(fd)) }); err != nil {
			return err
		}
		return ferr
	}
	if !s.enterFD() {
		return ErrClosed
	}
	defer s.leaveFD()
	return f(s.fd)
}

func (s *Socket) wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	return &net.OpError{Op: op, Net: "xdp", Addr: s.Addr(), Err: err}
}

// acquire takes a reference for an owner call or a handed-out batch or
// buffer, unless the socket is closed.
func (s *Socket) acquire() bool {
	s.refs.Add(1)
	if s.closed.Load() {
		s.unref()
		return false
	}
	return true
}

// unref drops a reference; the last one unmaps UMEM and the rings.
func (s *Socket) unref() {
	if s.refs.Add(-1) == 0 {
		s.unmap()
	}
}

func (s *Socket) unmap() error {
	s.unmapOnce.Do(func() {
		if s.state != nil && s.fill != nil && s.comp != nil && s.tx != nil {
			// Nobody holds a reference: the books are still, and the
			// rings still mapped for the last count.
			c, err := s.countFrames()
			if s.rx != nil {
				s.finalWaiting.Store(uint64(s.rx.prod.Load() - s.rx.cons.Load()))
			}
			s.finalMu.Lock()
			s.final, s.finalErr = &c, err
			s.finalMu.Unlock()
		}
		var errs []error
		for _, r := range []*xskRing{ringOf(s.fill), ringOf(s.comp), descRingOf(s.rx), descRingOf(s.tx)} {
			errs = append(errs, r.unmap())
		}
		if s.umem != nil {
			errs = append(errs, os.NewSyscallError("munmap", unix.Munmap(s.umem)))
		}
		s.unmapErr = errors.Join(errs...)
	})
	return s.unmapErr
}

func ringOf(r *addrRing) *xskRing {
	if r == nil {
		return nil
	}
	return &r.xskRing
}

func descRingOf(r *descRing) *xskRing {
	if r == nil {
		return nil
	}
	return &r.xskRing
}

// takeFree pops a free frame, from the owner's list or, when that is
// empty, from the frames batches returned.
func (s *Socket) takeFree() (uint64, bool) {
	if len(s.local) == 0 && !s.swapReturned() {
		return 0, false
	}
	a := s.local[len(s.local)-1]
	s.local = s.local[:len(s.local)-1]
	return a, true
}

// swapReturned moves the frames released from batches onto the owner's
// list; it reports whether there were any.
func (s *Socket) swapReturned() bool {
	s.mu.Lock()
	if len(s.returned) == 0 {
		s.mu.Unlock()
		return false
	}
	if len(s.local) == 0 {
		s.local, s.returned = s.returned, s.local[:0]
	} else {
		s.local = append(s.local, s.returned...)
		s.returned = s.returned[:0]
	}
	s.mu.Unlock()
	return true
}

// refill moves up to max free frames onto the fill ring, keeping
// txReserve of them for Next: frames on the fill ring and the RX ring come
// back only through ReadInto, so without a reserve an owner building a
// frame could wait for frames only its own next read would free.
func (s *Socket) refill(max int) {
	room := int(s.fill.free(uint32(max)))
	n := min(room, max)
	if n > len(s.local)-s.txReserve {
		s.swapReturned()
	}
	n = min(n, len(s.local)-s.txReserve)
	if n <= 0 {
		return
	}
	for range n {
		a := s.local[len(s.local)-1]
		s.local = s.local[:len(s.local)-1]
		i := s.index(a)
		if s.state[i] != stateFree {
			s.cnt[cntBadDescs]++
			continue
		}
		s.state[i] = stateKernel
		s.fill.addrs[s.fill.cachedProd&s.fill.mask] = a
		s.fill.cachedProd++
		s.fillProduced++
	}
	s.fill.submit()
}

func (s *Socket) readInto(ctx context.Context, b *Batch) error {
	b.Release()
	if s.rx == nil {
		return s.wrap("read", errors.New("socket is transmit-only (Config.TXOnly)"))
	}
	if !s.acquire() {
		return ErrClosed
	}
	handedOver := false
	defer func() {
		if !handedOver {
			s.unref()
		}
	}()
	for {
		if s.closed.Load() {
			return ErrClosed
		}
		s.refill(int(s.fill.size))
		if s.take(b) {
			handedOver = true
			s.publish()
			return nil
		}
		if s.fill.needWakeup() {
			// A zero-copy driver waits for a system call before it
			// takes from the fill ring again.
			if s.enterFD() {
				s.wake(uintptr(s.fd))
				s.leaveFD()
			}
			s.cnt[cntWakeups]++
		}
		for i := 0; i < s.busyPoll && s.rx.available(1) == 0 && !s.closed.Load(); i++ {
		}
		if s.rx.available(1) > 0 {
			continue
		}
		if err := s.park(ctx); err != nil {
			if s.closed.Load() {
				return ErrClosed
			}
			return s.wrap("read", err)
		}
	}
}

// take moves up to batchMax received descriptors into b.
func (s *Socket) take(b *Batch) bool {
	n := min(s.rx.available(uint32(s.batchMax)), uint32(s.batchMax))
	if n == 0 {
		return false
	}
	b.descs = b.descs[:0]
	for k := range n {
		d := &s.rx.descs[(s.rx.cachedCons+k)&s.rx.mask]
		i := s.index(d.Addr)
		if i >= s.frameCount || s.state[i] != stateKernel {
			s.cnt[cntBadDescs]++
			continue
		}
		s.state[i] = stateHeld
		b.descs = append(b.descs, rxDesc{addr: d.Addr, len: d.Len, opts: uint16(d.Options)})
	}
	// Count the frames received before giving their slots back, so that
	// Stats never misses a frame between the ring and the count
	// (Received + RXWaiting only ever runs ahead).
	s.cnt[cntReceived] += uint64(len(b.descs))
	s.pub[cntReceived].Store(s.cnt[cntReceived])
	s.rx.consume(n)
	s.rxConsumed += uint64(n)
	if len(b.descs) == 0 {
		return false
	}
	s.held.Add(int64(len(b.descs)))
	b.s = s
	return true
}

func (s *Socket) ready(uintptr) bool { return s.closed.Load() || s.rx.available(1) > 0 }

// park waits until the RX ring has frames, a batch is released while the
// kernel has no frame to receive into, or ctx ends.
func (s *Socket) park(ctx context.Context) error {
	if s.fillProduced == s.rxConsumed {
		// No frame is with the kernel for receiving (the free ones are
		// the transmit reserve): nothing can arrive until a batch is
		// released or a completion comes.
		return s.waitFrames(ctx)
	}
	// poll(2) on the socket and the eventfd Close writes; with a context
	// that can end, in slices of 10 ms so that its end is seen.
	timeout := -1
	if ctx.Done() != nil {
		timeout = 10
	}
	for !s.ready(0) {
		if err := ctx.Err(); err != nil {
			return err
		}
		if !s.enterFD() {
			return ErrClosed
		}
		fds := [2]unix.PollFd{{Fd: int32(s.fd), Events: unix.POLLIN}, {Fd: int32(s.efd), Events: unix.POLLIN}}
		_, err := unix.Poll(fds[:], timeout)
		s.leaveFD()
		if err != nil && err != unix.EINTR {
			return os.NewSyscallError("poll", err)
		}
	}
	return nil
}

// waitFrames waits for a Release, reclaiming completions meanwhile.
func (s *Socket) waitFrames(ctx context.Context) error {
	s.waiting.Store(true)
	defer s.waiting.Store(false)
	t := time.NewTimer(time.Millisecond)
	defer t.Stop()
	s.cnt[cntWaits]++
	for {
		if s.reclaim() > 0 || s.swapReturned() {
			return nil
		}
		if s.txProduced != s.compConsumed {
			s.kickTX()
		}
		select {
		case <-s.released:
			return nil
		case <-s.closedCh:
			return ErrClosed
		case <-ctx.Done():
			return os.NewSyscallError("read", ctx.Err())
		case <-t.C:
			t.Reset(time.Millisecond)
		}
	}
}

func (s *Socket) release(b *Batch) {
	s.mu.Lock()
	n := 0
	for k := range b.descs {
		d := &b.descs[k]
		if d.taken {
			continue
		}
		a := s.chunkOf(d.addr)
		s.state[s.index(a)] = stateFree
		s.returned = append(s.returned, a)
		n++
	}
	s.mu.Unlock()
	s.held.Add(-int64(n))
	if s.waiting.Load() {
		select {
		case s.released <- struct{}{}:
		default:
		}
	}
	s.unref()
}

func (s *Socket) transmit(b *Batch, i int, frame []byte) error {
	if b.s != s || i < 0 || i >= len(b.descs) {
		return s.wrap("transmit", ErrNotInFrame)
	}
	d := &b.descs[i]
	if d.taken {
		return s.wrap("transmit", ErrTaken)
	}
	base := s.chunkOf(d.addr)
	if len(frame) == 0 {
		return s.wrap("transmit", ErrFrameSize)
	}
	off := uint64(uintptr(unsafe.Pointer(&frame[0])) - uintptr(unsafe.Pointer(&s.umem[0])))
	if off < base || off+uint64(len(frame)) > base+uint64(s.frameSize) {
		return s.wrap("transmit", ErrNotInFrame)
	}
	if s.tx.free(1) == 0 {
		s.flush()
		if s.tx.free(1) == 0 {
			return s.wrap("transmit", errors.New("TX ring full"))
		}
	}
	s.state[s.index(base)] = stateTX
	d.taken = true
	s.held.Add(-1)
	s.putTX(off, len(frame))
	return nil
}

// putTX writes one descriptor on the TX ring (published by Flush).
func (s *Socket) putTX(addr uint64, n int) {
	s.tx.descs[s.tx.cachedProd&s.tx.mask] = unix.XDPDesc{Addr: addr, Len: uint32(n)}
	s.tx.cachedProd++
	s.txProduced++
	s.cnt[cntTransmitted]++
}

func (s *Socket) next(ctx context.Context) ([]byte, error) {
	if !s.nextOK {
		if !s.acquire() {
			return nil, ErrClosed
		}
		a, ok := s.takeFree()
		if !ok {
			s.reclaim()
			a, ok = s.takeFree()
		}
		for !ok {
			s.cnt[cntWaits]++
			if err := s.flush(); err != nil {
				s.unref()
				return nil, err
			}
			if a, ok = s.takeFree(); ok {
				break
			}
			select {
			case <-ctx.Done():
				s.unref()
				return nil, s.wrap("write", ctx.Err())
			case <-s.closedCh:
				s.unref()
				return nil, ErrClosed
			default:
			}
			runtime.Gosched()
		}
		s.state[s.index(a)] = stateHeld
		s.held.Add(1)
		s.nextAddr, s.nextOK = a, true
	}
	start := s.nextAddr + uint64(s.dataOff)
	end := s.nextAddr + uint64(s.frameSize)
	return s.umem[start:end:end], nil
}

func (s *Socket) commit(n int) error {
	if !s.nextOK {
		return ErrNoBuffer
	}
	if s.closed.Load() {
		// The buffer dies with the socket; its reference goes.
		s.state[s.index(s.nextAddr)] = stateFree
		s.local = append(s.local, s.nextAddr)
		s.held.Add(-1)
		s.nextOK = false
		s.unref()
		return ErrClosed
	}
	if n <= 0 || n > s.frameSize-s.dataOff {
		return s.wrap("write", fmt.Errorf("%w: %d bytes, at most %d", ErrFrameSize, n, s.frameSize-s.dataOff))
	}
	for s.tx.free(1) == 0 {
		if err := s.flush(); err != nil {
			return err
		}
		if s.tx.free(1) == 0 {
			if s.closed.Load() {
				return ErrClosed
			}
			runtime.Gosched()
		}
	}
	s.state[s.index(s.nextAddr)] = stateTX
	s.held.Add(-1)
	s.nextOK = false
	s.putTX(s.nextAddr+uint64(s.dataOff), n)
	s.unref()
	return nil
}

func (s *Socket) flush() error {
	if !s.acquire() {
		return ErrClosed
	}
	defer s.unref()
	if s.tx.cachedProd != s.txPublished {
		s.tx.submit()
		s.txPublished = s.tx.cachedProd
	}
	err := s.kickTX()
	s.reclaim()
	s.publish()
	return err
}

// kickTX tells the kernel to transmit when it needs telling. In copy mode
// one send(2) moves at most TXBudget frames and returns EAGAIN when more
// are left, so it kicks until the ring is drained or the kernel stops
// making progress.
func (s *Socket) kickTX() error {
	for tries := 0; tries < 64 && s.tx.pending(); tries++ {
		if s.mode == ModeZeroCopy && !s.tx.needWakeup() {
			return nil
		}
		before := s.tx.cons.Load()
		s.sysErr = nil
		if !s.enterFD() {
			return ErrClosed
		}
		s.kick(uintptr(s.fd))
		s.leaveFD()
		s.cnt[cntKicks]++
		switch err := s.sysErr; {
		case err == nil, errors.Is(err, unix.EAGAIN):
		case errors.Is(err, unix.EBUSY):
			// The driver dropped one frame (NET_XMIT_DROP: the link is
			// down, or the peer's queue full); the kernel put it on the
			// completion ring unsent. The rest may go: go on.
			s.cnt[cntTXDropped]++
		case errors.Is(err, unix.ENOBUFS):
			// The kernel is short of memory: the frames wait on the
			// ring for the next Flush.
			return nil
		default:
			return s.wrap("write", os.NewSyscallError("sendto", err))
		}
		if s.tx.cons.Load() == before {
			return nil
		}
	}
	return nil
}

func (s *Socket) kick(fd uintptr) {
	var e unix.Errno
	if s.rawKick {
		_, _, e = unix.RawSyscall6(unix.SYS_SENDTO, fd, 0, 0, unix.MSG_DONTWAIT, 0, 0)
	} else {
		_, _, e = unix.Syscall6(unix.SYS_SENDTO, fd, 0, 0, unix.MSG_DONTWAIT, 0, 0)
	}
	if e != 0 {
		s.sysErr = e
	}
}

func (s *Socket) wake(fd uintptr) {
	unix.Syscall6(unix.SYS_RECVFROM, fd, 0, 0, unix.MSG_DONTWAIT, 0, 0)
}

// reclaim takes the frames the kernel has finished transmitting from the
// completion ring onto the owner's free list.
func (s *Socket) reclaim() int {
	n := s.comp.available(s.comp.size)
	if n == 0 {
		return 0
	}
	got := 0
	for k := range n {
		a := s.chunkOf(s.comp.addrs[(s.comp.cachedCons+k)&s.comp.mask])
		i := s.index(a)
		if i >= s.frameCount || s.state[i] != stateTX {
			s.cnt[cntBadDescs]++
			continue
		}
		s.state[i] = stateFree
		s.local = append(s.local, a)
		got++
	}
	s.comp.consume(n)
	s.compConsumed += uint64(n)
	s.cnt[cntCompleted] += uint64(got)
	return got
}

// publish copies the owner's counters where Stats reads them.
func (s *Socket) publish() {
	for i := range s.cnt {
		s.pub[i].Store(s.cnt[i])
	}
}

func (s *Socket) prefill(template []byte) (int, error) {
	if len(template) > s.frameSize-s.dataOff {
		return 0, s.wrap("prefill", ErrFrameSize)
	}
	if !s.acquire() {
		return 0, ErrClosed
	}
	defer s.unref()
	s.reclaim()
	s.swapReturned()
	for _, a := range s.local {
		copy(s.umem[a+uint64(s.dataOff):], template)
	}
	return len(s.local), nil
}

func (s *Socket) localStats() Stats {
	st := s.ownStats()
	s.kmu.Lock()
	st.Kernel = s.kstat
	s.kmu.Unlock()
	return st
}

func (s *Socket) ownStats() Stats {
	return Stats{
		Received:    s.pub[cntReceived].Load(),
		Transmitted: s.pub[cntTransmitted].Load(),
		Completed:   s.pub[cntCompleted].Load(),
		TXDropped:   s.pub[cntTXDropped].Load(),
		Kicks:       s.pub[cntKicks].Load(),
		Wakeups:     s.pub[cntWakeups].Load(),
		Waits:       s.pub[cntWaits].Load(),
		BadDescs:    s.pub[cntBadDescs].Load(),
	}
}

func (s *Socket) stats() (Stats, error) {
	// The ring's indexes first: take counts a frame as received before
	// it gives the frame's slot back, so a frame is either waiting or
	// received here, never neither.
	waiting := s.finalWaiting.Load()
	if s.rx != nil && s.refs.Add(1) > 1 {
		// Mapped, and it stays so while the reference is held (after
		// Close too, as long as batches are out).
		waiting = uint64(s.rx.prod.Load() - s.rx.cons.Load())
		s.unref()
	} else if s.rx != nil {
		s.refs.Add(-1) // UMEM is gone or going: leave it to its unmapper
	}
	st := s.ownStats()
	st.RXWaiting = waiting
	s.kmu.Lock()
	defer s.kmu.Unlock()
	if s.closed.Load() {
		st.Kernel = s.kstat
		return st, ErrClosed
	}
	var ks unix.XDPStatistics
	err := s.control(func(fd int) error {
		optlen := uint32(unsafe.Sizeof(ks))
		if _, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_XDP, unix.XDP_STATISTICS,
			uintptr(unsafe.Pointer(&ks)), uintptr(unsafe.Pointer(&optlen)), 0); e != 0 {
			return os.NewSyscallError("getsockopt", e)
		}
		return nil
	})
	if err != nil {
		st.Kernel = s.kstat
		return st, s.wrap("stats", fmt.Errorf("XDP_STATISTICS: %w", err))
	}
	s.kstat = KernelStats{
		RxDropped:            ks.Rx_dropped,
		RxInvalidDescs:       ks.Rx_invalid_descs,
		TxInvalidDescs:       ks.Tx_invalid_descs,
		RxRingFull:           ks.Rx_ring_full,
		RxFillRingEmptyDescs: ks.Rx_fill_ring_empty_descs,
		TxRingEmptyDescs:     ks.Tx_ring_empty_descs,
	}
	st.Kernel = s.kstat
	return st, nil
}

func (s *Socket) checkFrames() (FrameCounts, error) {
	if !s.acquire() {
		s.finalMu.Lock()
		defer s.finalMu.Unlock()
		if s.final != nil {
			return *s.final, s.finalErr
		}
		return FrameCounts{}, ErrClosed
	}
	defer s.unref()
	return s.countFrames()
}

// countFrames is CheckFrames for a caller that keeps UMEM mapped and is
// the owner (or knows that no owner call runs).
func (s *Socket) countFrames() (FrameCounts, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := FrameCounts{Total: s.frameCount, Free: len(s.local) + len(s.returned), Held: int(s.held.Load())}
	withKernel := int(s.fillProduced - s.rxConsumed)
	c.Fill = int(s.fill.cachedProd - s.fill.cons.Load())
	c.KernelRX = withKernel - c.Fill
	inTX := int(s.txProduced - s.compConsumed)
	c.Completion = int(s.comp.prod.Load() - s.comp.cachedCons)
	c.TX = inTX - c.Completion

	var byState [4]int
	for _, st := range s.state {
		byState[st]++
	}
	var errs []error
	if c.Sum() != c.Total {
		errs = append(errs, fmt.Errorf("frames do not add up: %v", c))
	}
	for _, p := range []struct {
		name         string
		state, books int
	}{
		{"free", byState[stateFree], c.Free},
		{"with the kernel for RX", byState[stateKernel], withKernel},
		{"held", byState[stateHeld], c.Held},
		{"transmitting", byState[stateTX], inTX},
	} {
		if p.state != p.books {
			errs = append(errs, fmt.Errorf("%d frames %s by their state, %d by the books", p.state, p.name, p.books))
		}
	}
	if n := s.cnt[cntBadDescs]; n > 0 {
		errs = append(errs, fmt.Errorf("%d descriptors named frames that were not with the kernel", n))
	}
	if len(errs) > 0 {
		return c, s.wrap("check", errors.Join(errs...))
	}
	return c, nil
}

func (s *Socket) close() error {
	if !s.closed.CompareAndSwap(false, true) {
		return nil
	}
	close(s.closedCh)
	// Wake a reader parked in poll(2), wait for every call on fd to
	// leave, then close it: the kernel removes the socket from every
	// XSKMAP.
	one := [8]byte{1}
	unix.Write(s.efd, one[:])
	for s.fdUsers.Load() != 0 {
		time.Sleep(20 * time.Microsecond)
	}
	s.kmu.Lock()
	err := os.NewSyscallError("close", unix.Close(s.fd))
	unix.Close(s.efd)
	s.kmu.Unlock()
	s.unref()
	return s.wrap("close", err)
}
