//go:build linux

package ring

import (
	"context"
	"net"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// ringTX is the PACKET_TX_RING Transmitter (TPACKET_V2 slots).
//
// Slots move through the ring in order. Positions in [tail, head) are
// committed: SEND_REQUEST until a Flush kicks the kernel, then SENDING, and
// AVAILABLE again once the device is done with the frame; tail follows the
// completions. The kernel keeps its own head, the next slot it looks at,
// and only moves it past a slot it has taken; this ring keeps head equal
// to it whenever Flush returns, so that the next frame committed lands
// where the kernel looks next. Two things stop the kernel at a slot: a
// malformed frame, which it marks WRONG_FORMAT (see dropWrongFormat), and
// a refused send (see dropUnsent).
type ringTX struct {
	*txSocket
	mem    []byte
	layout ringLayout
	nslots uint64

	head   uint64
	tail   uint64
	kicked uint64 // positions below kicked have been offered to the kernel

	// offs holds every slot's offset in mem, and mask is nslots-1 when
	// nslots is a power of two (0 otherwise): a position's slot is then
	// found without dividing, several times per frame.
	offs []int
	mask uint64

	rawKick bool // TXConfig.RawKick
}

// txDataOffset is where frame data starts in a V2 TX slot:
// TPACKET2_HDRLEN - sizeof(struct sockaddr_ll).
const txDataOffset = v2HdrLen - sllSize

func newRingTX(ifi *net.Interface, cfg *TXConfig) (Transmitter, error) {
	var c TXConfig
	if cfg != nil {
		c = *cfg
	}
	s, frameSize, n, err := dialTX(ifi, &c, true, 1024, 1<<30)
	if err != nil {
		return nil, err
	}
	t := &ringTX{txSocket: s, layout: frameLayout(frameSize, n), rawKick: c.RawKick}
	t.nslots = uint64(t.layout.frameNr)
	t.offs = make([]int, t.nslots)
	for i := range t.offs {
		t.offs[i] = t.layout.frameOffset(i)
	}
	if t.nslots&(t.nslots-1) == 0 {
		t.mask = t.nslots - 1
	}
	t.maxLen = frameSize - txDataOffset
	if err := s.mapRing(unix.TPACKET_V2, unix.PACKET_TX_RING, &t.layout, 0); err != nil {
		s.abandon()
		return nil, err
	}
	t.mem = s.mem
	if err := s.unpoll(); err != nil {
		s.abandon()
		return nil, err
	}
	return t, nil
}

func (t *ringTX) slotOffset(pos uint64) int {
	if t.mask != 0 {
		return t.offs[pos&t.mask]
	}
	return t.offs[pos%t.nslots]
}

func (t *ringTX) status(pos uint64) uint32 { return loadStatus(t.mem, t.slotOffset(pos)+v2Status) }

func (t *ringTX) setStatus(pos uint64, st uint32) { storeStatus(t.mem, t.slotOffset(pos)+v2Status, st) }

func (t *ringTX) full() bool { return t.head-t.tail >= t.nslots }

// reclaim moves tail past the slots the kernel has finished with.
func (t *ringTX) reclaim() {
	for t.tail < t.kicked {
		if t.status(t.tail)&(statusSendRequest|statusSending|statusWrongFormat) != statusAvailable {
			return
		}
		t.tail++
		t.stats.Sent++
	}
}

// Next implements Transmitter.
func (t *ringTX) Next(ctx context.Context) ([]byte, error) {
	if t.closed {
		return nil, ErrClosed
	}
	if t.full() {
		t.reclaim()
	}
	if t.full() {
		if err := t.waitSlot(ctx); err != nil {
			return nil, err
		}
	}
	t.reserved = true
	off := t.slotOffset(t.head) + txDataOffset
	return t.mem[off : off+t.maxLen : off+t.maxLen], nil
}

// waitSlot flushes and waits until the slot at head is free again. A
// flush that drops frames frees their slots; its error is then only
// counted (TXStats.Dropped), not returned, since Next has a buffer.
func (t *ringTX) waitSlot(ctx context.Context) error {
	t.stats.Waits++
	if err := t.Flush(); err != nil && t.full() {
		return err
	}
	for {
		t.reclaim()
		if !t.full() {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return os.NewSyscallError("wait", err)
		}
		// The kernel signals writability when it frees a slot; a short
		// timeout guards against a wakeup that never comes, and bounds
		// how late the end of ctx is noticed.
		if err := t.pollOut(time.Millisecond); err != nil {
			return t.wrapOp("wait", err)
		}
	}
}

// Commit implements Transmitter.
func (t *ringTX) Commit(n int) error {
	if err := t.commit(n); err != nil {
		return err
	}
	native.PutUint32(t.mem[t.slotOffset(t.head)+v2Len:], uint32(n))
	t.setStatus(t.head, statusSendRequest)
	t.head++
	return nil
}

// kick makes the kernel walk the ring from its head, sending every
// SEND_REQUEST slot: one non-blocking send(2), again after a wait for
// room in the socket's send buffer if it had none (EAGAIN).
func (t *ringTX) kick() unix.Errno {
	for {
		var e unix.Errno
		if t.rawKick {
			_, _, e = unix.RawSyscall6(unix.SYS_SENDTO, uintptr(t.fd), 0, 0, unix.MSG_DONTWAIT, 0, 0)
		} else {
			_, _, e = unix.Syscall6(unix.SYS_SENDTO, uintptr(t.fd), 0, 0, unix.MSG_DONTWAIT, 0, 0)
		}
		switch e {
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			if err := t.pollOut(time.Millisecond); err != nil {
				return e
			}
			continue
		}
		return e
	}
}

// Flush implements Transmitter.
func (t *ringTX) Flush() error {
	if t.closed {
		return ErrClosed
	}
	t.reserved = false
	for t.kicked < t.head {
		t.stats.Kicks++
		t.kicked = t.head
		var err error
		kickErr := t.kick()
		if kickErr == 0 {
			// The kernel stops early when the socket's send buffer
			// fills; the rest stay SEND_REQUEST for the next round.
			if t.status(t.head-1)&statusSendRequest != 0 {
				t.kicked = t.firstRequest()
			}
			continue
		}
		if t.dropWrongFormat() {
			continue
		}
		err = os.NewSyscallError("sendto", kickErr)
		t.dropUnsent()
		return t.wrapOp("sendto", err)
	}
	t.reclaim()
	return nil
}

// firstRequest returns the oldest committed position still waiting for a
// kick: the kernel's head.
func (t *ringTX) firstRequest() uint64 {
	for p := t.tail; p < t.head; p++ {
		if t.status(p)&statusSendRequest != 0 {
			return p
		}
	}
	return t.head
}

// dropUnsent discards the committed frames the kernel did not take after
// it refused a send. The kernel leaves the refused frame SEND_REQUEST at
// its head, and every later one behind it; left alone they would go out
// late, with the next Flush, or never, if nothing is committed again. The
// slots become AVAILABLE, the frames are counted in Dropped, and head
// moves back to the kernel's head, where the next frame then goes. (The
// kernel touches SEND_REQUEST slots only inside send(2), which only this
// goroutine calls.)
func (t *ringTX) dropUnsent() {
	p := t.firstRequest()
	for q := p; q < t.head; q++ {
		t.setStatus(q, statusAvailable)
	}
	t.stats.Dropped += t.head - p
	t.head, t.kicked = p, p
}

// dropWrongFormat removes the frame the kernel rejected. The kernel marks
// it TP_STATUS_WRONG_FORMAT and keeps its ring head there, so every later
// frame would wait forever. The later committed frames move down one slot
// (the kernel touches SEND_REQUEST slots only inside send(2), which only
// this goroutine calls) and the last slot becomes free.
func (t *ringTX) dropWrongFormat() bool {
	bad := t.head
	for p := t.tail; p < t.head; p++ {
		if t.status(p)&statusWrongFormat != 0 {
			bad = p
			break
		}
	}
	if bad == t.head {
		return false
	}
	t.stats.WrongFormat++
	for p := bad; p+1 < t.head; p++ {
		dst, src := t.slotOffset(p), t.slotOffset(p+1)
		n := native.Uint32(t.mem[src+v2Len:])
		copy(t.mem[dst+txDataOffset:dst+txDataOffset+int(n)], t.mem[src+txDataOffset:])
		native.PutUint32(t.mem[dst+v2Len:], n)
		t.setStatus(p, statusSendRequest)
	}
	t.head--
	t.setStatus(t.head, statusAvailable)
	t.kicked = bad
	return true
}

// Stats implements Transmitter.
func (t *ringTX) Stats() TXStats {
	if !t.closed {
		t.reclaim()
	}
	return t.stats
}

// Close implements Transmitter: it flushes, closes the socket and unmaps
// the ring. Frames already handed to the device keep their pages.
func (t *ringTX) Close() error {
	if t.closed {
		return nil
	}
	ferr := t.Flush()
	err := t.closeWith(ferr, os.NewSyscallError("munmap", unix.Munmap(t.mem)))
	t.mem = nil
	return err
}
