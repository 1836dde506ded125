//go:build linux

package ring

import (
	"context"
	"net"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// mmsgTX is the Transmitter that sends frames from private buffers with
// sendmmsg(2). Unlike the ring it copies every frame into the kernel, but
// it needs no shared ring and its buffers are free again as soon as Flush
// returns.
type mmsgTX struct {
	*txSocket
	bufs []byte
	msgs []unix.Mmsghdr
	iovs []unix.Iovec

	n     int // committed frames, in msgs[:n]
	start int // first message not yet sent during a Flush

	send    func(uintptr) bool // bound once: Flush does not allocate
	sendN   int
	sendErr unix.Errno
}

// maxMmsg is UIO_MAXIOV, the most messages one sendmmsg takes.
const maxMmsg = 1024

func newMmsgTX(ifi *net.Interface, cfg *TXConfig) (Transmitter, error) {
	var c TXConfig
	if cfg != nil {
		c = *cfg
	}
	// The same default as a ring slot, less the slot header, so both
	// Transmitters offer the same frame length.
	s, slotSize, n, err := dialTX(ifi, &c, false, 256, maxMmsg)
	if err != nil {
		return nil, err
	}
	fs := slotSize - txDataOffset
	s.maxLen = fs
	t := &mmsgTX{
		txSocket: s,
		bufs:     make([]byte, n*fs),
		msgs:     make([]unix.Mmsghdr, n),
		iovs:     make([]unix.Iovec, n),
	}
	for i := range t.msgs {
		t.iovs[i].Base = &t.bufs[i*fs]
		t.msgs[i].Hdr.Iov = &t.iovs[i]
		t.msgs[i].Hdr.SetIovlen(1)
	}
	t.send = t.sendBatch
	return t, nil
}

// Next implements Transmitter.
func (t *mmsgTX) Next(ctx context.Context) ([]byte, error) {
	if t.closed {
		return nil, ErrClosed
	}
	if t.n == len(t.msgs) {
		t.stats.Waits++
		// A failed flush still empties the buffers; its frames are
		// counted in TXStats.Dropped.
		t.Flush()
	}
	t.reserved = true
	off := t.n * t.maxLen
	return t.bufs[off : off+t.maxLen : off+t.maxLen], nil
}

// Commit implements Transmitter.
func (t *mmsgTX) Commit(n int) error {
	if err := t.commit(n); err != nil {
		return err
	}
	t.iovs[t.n].SetLen(n)
	t.n++
	return nil
}

// sendBatch is the raw-conn callback: one sendmmsg for the unsent rest.
func (t *mmsgTX) sendBatch(fd uintptr) bool {
	r, _, e := unix.Syscall6(unix.SYS_SENDMMSG, fd,
		uintptr(unsafe.Pointer(&t.msgs[t.start])), uintptr(t.n-t.start), unix.MSG_DONTWAIT, 0, 0)
	t.sendN, t.sendErr = int(r), e
	return e != unix.EAGAIN && e != unix.EINTR
}

// Flush implements Transmitter. sendmmsg reports an error only for its
// first message, having sent none: a malformed one is dropped and the
// rest go on; any other error drops it and every frame after it.
func (t *mmsgTX) Flush() error {
	if t.closed {
		return ErrClosed
	}
	t.reserved = false
	defer func() { t.n, t.start = 0, 0 }()
	for t.start < t.n {
		t.stats.Kicks++
		err := t.rc.Write(t.send)
		if err == nil {
			switch t.sendErr {
			case 0:
				t.stats.Sent += uint64(t.sendN)
				t.start += t.sendN
				continue
			case unix.EINVAL, unix.EMSGSIZE:
				t.stats.WrongFormat++
				t.start++
				continue
			}
			err = os.NewSyscallError("sendmmsg", t.sendErr)
		}
		t.stats.Dropped += uint64(t.n - t.start)
		return t.wrapOp("sendmmsg", err)
	}
	return nil
}

// Stats implements Transmitter.
func (t *mmsgTX) Stats() TXStats { return t.stats }

// Close implements Transmitter.
func (t *mmsgTX) Close() error {
	if t.closed {
		return nil
	}
	return t.closeWith(t.Flush())
}
