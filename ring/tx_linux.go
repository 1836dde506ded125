//go:build linux

package ring

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/mdlayher/socket"
	"golang.org/x/sys/unix"
)

// TX is a PACKET_TX_RING transmitter (TPACKET_V2 slots). It implements
// Transmitter.
//
// Slots move through the ring in order. Positions in [tail, head) are
// committed: SEND_REQUEST until a Flush kicks the kernel, then SENDING, and
// AVAILABLE again once the device is done with the frame; tail follows the
// completions. A frame the kernel rejects is marked WRONG_FORMAT and the
// kernel stops there, so Flush closes the gap (see dropWrongFormat).
type TX struct {
	conn *socket.Conn
	rc   syscall.RawConn
	addr *Addr
	mem  []byte

	frameSize int
	blockSize int
	perBlock  int
	nslots    uint64
	maxLen    int

	head     uint64
	tail     uint64
	kicked   uint64 // positions below kicked have been offered to the kernel
	reserved bool   // Next handed out the slot at head

	kick    func(uintptr) bool // bound once: Flush does not allocate
	kickErr error

	stats  TXStats
	closed bool
}

// txDataOffset is where frame data starts in a V2 TX slot:
// TPACKET2_HDRLEN - sizeof(struct sockaddr_ll).
const txDataOffset = v2HdrLen - sllSize

// NewTX opens a PACKET_TX_RING on ifi. The socket is bound with protocol 0,
// so it receives nothing.
func NewTX(ifi *net.Interface, cfg *TXConfig) (*TX, error) {
	var c TXConfig
	if cfg != nil {
		c = *cfg
	}
	page := os.Getpagesize()
	t := &TX{}
	mtu := 1500
	if ifi != nil && ifi.MTU > 0 {
		mtu = ifi.MTU
	}
	t.frameSize = orDefault(c.FrameSize, txFrameSize(mtu))
	n := orDefault(c.FrameCount, 1024)
	if t.frameSize%tpacketAlignment != 0 || t.frameSize < txDataOffset+14 {
		return nil, &net.OpError{Op: "dial", Net: "packet", Addr: addrOf(ifi),
			Err: fmt.Errorf("TXConfig.FrameSize %d is not a multiple of 16 of at least %d", t.frameSize, txDataOffset+14)}
	}
	if n <= 0 {
		return nil, &net.OpError{Op: "dial", Net: "packet", Addr: addrOf(ifi), Err: fmt.Errorf("%w: %d", errBadTXSlots, n)}
	}
	t.blockSize = (t.frameSize + page - 1) / page * page
	if t.blockSize < 64<<10 {
		t.blockSize = 64 << 10
	}
	t.perBlock = t.blockSize / t.frameSize
	blocks := (n + t.perBlock - 1) / t.perBlock
	t.nslots = uint64(blocks * t.perBlock)
	t.maxLen = t.frameSize - txDataOffset

	ps, err := openPacket("dial", ifi)
	if err != nil {
		return nil, err
	}
	t.conn, t.addr = ps.conn, ps.addr
	ok := false
	defer func() {
		if !ok {
			ps.close()
			if t.mem != nil {
				unix.Munmap(t.mem)
			}
		}
	}()
	if err := ps.setInt("PACKET_VERSION", unix.SOL_PACKET, unix.PACKET_VERSION, unix.TPACKET_V2); err != nil {
		return nil, err
	}
	if c.QdiscBypass {
		if err := ps.setInt("PACKET_QDISC_BYPASS", unix.SOL_PACKET, unix.PACKET_QDISC_BYPASS, 1); err != nil {
			return nil, err
		}
	}
	err = ps.control(func(fd int) error {
		req := unix.TpacketReq{
			Block_size: uint32(t.blockSize),
			Block_nr:   uint32(blocks),
			Frame_size: uint32(t.frameSize),
			Frame_nr:   uint32(t.nslots),
		}
		return os.NewSyscallError("setsockopt PACKET_TX_RING", unix.SetsockoptTpacketReq(fd, unix.SOL_PACKET, unix.PACKET_TX_RING, &req))
	})
	if err != nil {
		return nil, err
	}
	if t.mem, err = ps.mmap(t.blockSize * blocks); err != nil {
		return nil, err
	}
	if err := ps.bind(0); err != nil {
		return nil, err
	}
	if t.rc, err = t.conn.SyscallConn(); err != nil {
		return nil, ps.wrap(err)
	}
	t.kick = t.sendKick
	ok = true
	return t, nil
}

func (t *TX) slotOffset(pos uint64) int {
	i := int(pos % t.nslots)
	return i/t.perBlock*t.blockSize + i%t.perBlock*t.frameSize
}

// MaxFrameLen returns the longest frame a slot holds.
func (t *TX) MaxFrameLen() int { return t.maxLen }

// Addr returns the interface the ring sends on.
func (t *TX) Addr() net.Addr { return t.addr }

// reclaim moves tail past the slots the kernel has finished with.
func (t *TX) reclaim() {
	for t.tail < t.kicked {
		st := loadStatus(t.mem, t.slotOffset(t.tail)) & (statusSendRequest | statusSending | statusWrongFormat)
		if st != statusAvailable {
			return
		}
		t.tail++
		t.stats.Sent++
	}
}

// Next implements Transmitter.
func (t *TX) Next(ctx context.Context) ([]byte, error) {
	if t.closed {
		return nil, ErrClosed
	}
	if t.head-t.tail >= t.nslots {
		t.reclaim()
	}
	if t.head-t.tail >= t.nslots {
		if err := t.waitSlot(ctx); err != nil {
			return nil, err
		}
	}
	t.reserved = true
	off := t.slotOffset(t.head) + txDataOffset
	return t.mem[off : off+t.maxLen : off+t.maxLen], nil
}

// waitSlot flushes and waits until the slot at head is free again.
func (t *TX) waitSlot(ctx context.Context) error {
	t.stats.Waits++
	if err := t.Flush(); err != nil {
		return err
	}
	for {
		t.reclaim()
		if t.head-t.tail < t.nslots {
			return nil
		}
		// The kernel signals writability when it frees a slot; a short
		// deadline guards against a wakeup that never comes.
		wctx, cancel := context.WithTimeout(ctx, time.Millisecond)
		err := t.conn.WriteFunc(wctx, "wait", func(int) error {
			t.reclaim()
			if t.head-t.tail < t.nslots {
				return nil
			}
			return unix.EAGAIN
		})
		cancel()
		if ctx.Err() != nil {
			return os.NewSyscallError("wait", ctx.Err())
		}
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			return t.wrap("wait", err)
		}
	}
}

// Commit implements Transmitter.
func (t *TX) Commit(n int) error {
	if !t.reserved {
		return ErrNoBuffer
	}
	if n < 14 || n > t.maxLen {
		return fmt.Errorf("%w: %d bytes, want 14 to %d", ErrFrameSize, n, t.maxLen)
	}
	off := t.slotOffset(t.head)
	native.PutUint32(t.mem[off+v2Len:], uint32(n))
	storeStatus(t.mem, off+v2Status, statusSendRequest)
	t.head++
	t.reserved = false
	t.stats.Committed++
	return nil
}

// sendKick is the raw-conn callback for Flush: one non-blocking send(2)
// that makes the kernel walk the ring from its head, sending every
// SEND_REQUEST slot.
func (t *TX) sendKick(fd uintptr) bool {
	_, _, e := unix.Syscall6(unix.SYS_SENDTO, fd, 0, 0, unix.MSG_DONTWAIT, 0, 0)
	t.kickErr = nil
	if e != 0 {
		t.kickErr = e
	}
	return e != unix.EAGAIN && e != unix.EINTR
}

// Flush implements Transmitter.
func (t *TX) Flush() error {
	if t.closed {
		return ErrClosed
	}
	t.reserved = false
	for t.kicked < t.head {
		t.stats.Kicks++
		t.kicked = t.head
		if err := t.rc.Write(t.kick); err != nil {
			return t.wrap("sendto", err)
		}
		err := t.kickErr
		if err == nil {
			// The kernel stops early when the socket's send buffer
			// fills; the rest stay SEND_REQUEST for the next round.
			if loadStatus(t.mem, t.slotOffset(t.head-1))&statusSendRequest != 0 {
				t.kicked = t.firstRequest()
			}
			continue
		}
		if t.dropWrongFormat() {
			continue
		}
		return t.wrap("sendto", os.NewSyscallError("sendto", err))
	}
	t.reclaim()
	return nil
}

// firstRequest returns the oldest committed position still waiting for a
// kick.
func (t *TX) firstRequest() uint64 {
	for p := t.tail; p < t.head; p++ {
		if loadStatus(t.mem, t.slotOffset(p))&statusSendRequest != 0 {
			return p
		}
	}
	return t.head
}

// dropWrongFormat removes the frame the kernel rejected. The kernel marks
// it TP_STATUS_WRONG_FORMAT and keeps its ring head there, so every later
// frame would wait forever. The later committed frames move down one slot
// (the kernel touches SEND_REQUEST slots only inside send(2), which only
// this goroutine calls) and the last slot becomes free.
func (t *TX) dropWrongFormat() bool {
	bad := uint64(0)
	found := false
	for p := t.tail; p < t.head; p++ {
		if loadStatus(t.mem, t.slotOffset(p))&statusWrongFormat != 0 {
			bad, found = p, true
			break
		}
	}
	if !found {
		return false
	}
	t.stats.WrongFormat++
	for p := bad; p+1 < t.head; p++ {
		dst, src := t.slotOffset(p), t.slotOffset(p+1)
		n := native.Uint32(t.mem[src+v2Len:])
		copy(t.mem[dst+txDataOffset:dst+txDataOffset+int(n)], t.mem[src+txDataOffset:])
		native.PutUint32(t.mem[dst+v2Len:], n)
		storeStatus(t.mem, dst+v2Status, statusSendRequest)
	}
	t.head--
	storeStatus(t.mem, t.slotOffset(t.head)+v2Status, statusAvailable)
	t.kicked = bad
	return true
}

// Stats implements Transmitter.
func (t *TX) Stats() TXStats {
	if !t.closed {
		t.reclaim()
	}
	return t.stats
}

// Close implements Transmitter: it flushes, closes the socket and unmaps
// the ring. Frames already handed to the device keep their pages.
func (t *TX) Close() error {
	if t.closed {
		return nil
	}
	ferr := t.Flush()
	t.closed = true
	err := errors.Join(ferr, t.conn.Close(), os.NewSyscallError("munmap", unix.Munmap(t.mem)))
	t.mem = nil
	if err != nil {
		return t.wrap("close", err)
	}
	return nil
}

func (t *TX) wrap(op string, err error) error {
	return &net.OpError{Op: op, Net: "packet", Addr: t.addr, Err: err}
}
