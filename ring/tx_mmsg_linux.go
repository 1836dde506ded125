//go:build linux

package ring

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"unsafe"

	"github.com/mdlayher/socket"
	"golang.org/x/sys/unix"
)

// MmsgTX sends frames from private buffers with sendmmsg(2). It implements
// Transmitter. Unlike TX it copies every frame into the kernel, but it
// needs no shared ring and its buffers are free again as soon as Flush
// returns.
type MmsgTX struct {
	conn *socket.Conn
	rc   syscall.RawConn
	addr *Addr

	bufs      []byte
	frameSize int
	msgs      []unix.Mmsghdr
	iovs      []unix.Iovec

	n        int // committed frames, in msgs[:n]
	start    int // first message not yet sent during a Flush
	reserved bool

	send    func(uintptr) bool // bound once: Flush does not allocate
	sendN   int
	sendErr unix.Errno

	stats  TXStats
	closed bool
}

// maxMmsg is UIO_MAXIOV, the most messages one sendmmsg takes.
const maxMmsg = 1024

// NewMmsgTX opens a sendmmsg transmitter on ifi. The socket is bound with
// protocol 0, so it receives nothing.
func NewMmsgTX(ifi *net.Interface, cfg *TXConfig) (*MmsgTX, error) {
	var c TXConfig
	if cfg != nil {
		c = *cfg
	}
	mtu := 1500
	if ifi != nil && ifi.MTU > 0 {
		mtu = ifi.MTU
	}
	// The same default as a ring slot, less the slot header, so both
	// Transmitters offer the same frame length.
	fs := orDefault(c.FrameSize, txFrameSize(mtu)) - txDataOffset
	n := orDefault(c.FrameCount, 256)
	if n <= 0 || n > maxMmsg {
		return nil, &net.OpError{Op: "dial", Net: "packet", Addr: addrOf(ifi), Err: fmt.Errorf("%w: %d, want 1 to %d", errBadTXSlots, n, maxMmsg)}
	}
	if fs < 14 {
		return nil, &net.OpError{Op: "dial", Net: "packet", Addr: addrOf(ifi), Err: fmt.Errorf("TXConfig.FrameSize %d too small", c.FrameSize)}
	}
	ps, err := openPacket("dial", ifi)
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			ps.close()
		}
	}()
	if c.QdiscBypass {
		if err := ps.setInt("PACKET_QDISC_BYPASS", unix.SOL_PACKET, unix.PACKET_QDISC_BYPASS, 1); err != nil {
			return nil, err
		}
	}
	if err := ps.bind(0); err != nil {
		return nil, err
	}
	t := &MmsgTX{
		conn:      ps.conn,
		addr:      ps.addr,
		bufs:      make([]byte, n*fs),
		frameSize: fs,
		msgs:      make([]unix.Mmsghdr, n),
		iovs:      make([]unix.Iovec, n),
	}
	for i := range t.msgs {
		t.iovs[i].Base = &t.bufs[i*fs]
		t.msgs[i].Hdr.Iov = &t.iovs[i]
		t.msgs[i].Hdr.SetIovlen(1)
	}
	if t.rc, err = t.conn.SyscallConn(); err != nil {
		return nil, ps.wrap(err)
	}
	t.send = t.sendBatch
	ok = true
	return t, nil
}

// MaxFrameLen returns the longest frame a buffer holds.
func (t *MmsgTX) MaxFrameLen() int { return t.frameSize }

// Addr returns the interface the transmitter sends on.
func (t *MmsgTX) Addr() net.Addr { return t.addr }

// Next implements Transmitter.
func (t *MmsgTX) Next(ctx context.Context) ([]byte, error) {
	if t.closed {
		return nil, ErrClosed
	}
	if t.n == len(t.msgs) {
		t.stats.Waits++
		if err := t.Flush(); err != nil {
			return nil, err
		}
	}
	t.reserved = true
	off := t.n * t.frameSize
	return t.bufs[off : off+t.frameSize : off+t.frameSize], nil
}

// Commit implements Transmitter.
func (t *MmsgTX) Commit(n int) error {
	if !t.reserved {
		return ErrNoBuffer
	}
	if n < 14 || n > t.frameSize {
		return fmt.Errorf("%w: %d bytes, want 14 to %d", ErrFrameSize, n, t.frameSize)
	}
	t.iovs[t.n].SetLen(n)
	t.n++
	t.reserved = false
	t.stats.Committed++
	return nil
}

// sendBatch is the raw-conn callback: one sendmmsg for the unsent rest.
func (t *MmsgTX) sendBatch(fd uintptr) bool {
	r, _, e := unix.Syscall6(unix.SYS_SENDMMSG, fd,
		uintptr(unsafe.Pointer(&t.msgs[t.start])), uintptr(t.n-t.start), unix.MSG_DONTWAIT, 0, 0)
	t.sendN, t.sendErr = int(r), e
	return e != unix.EAGAIN && e != unix.EINTR
}

// Flush implements Transmitter.
func (t *MmsgTX) Flush() error {
	if t.closed {
		return ErrClosed
	}
	t.reserved = false
	defer func() { t.n, t.start = 0, 0 }()
	for t.start < t.n {
		t.stats.Kicks++
		if err := t.rc.Write(t.send); err != nil {
			return &net.OpError{Op: "sendmmsg", Net: "packet", Addr: t.addr, Err: err}
		}
		switch t.sendErr {
		case 0:
			t.stats.Sent += uint64(t.sendN)
			t.start += t.sendN
		case unix.EINVAL, unix.EMSGSIZE:
			// sendmmsg reports an error only for its first message:
			// that one is malformed. Drop it and go on.
			t.stats.WrongFormat++
			t.start++
		default:
			return &net.OpError{Op: "sendmmsg", Net: "packet", Addr: t.addr, Err: os.NewSyscallError("sendmmsg", t.sendErr)}
		}
	}
	return nil
}

// Stats implements Transmitter.
func (t *MmsgTX) Stats() TXStats { return t.stats }

// Close implements Transmitter.
func (t *MmsgTX) Close() error {
	if t.closed {
		return nil
	}
	ferr := t.Flush()
	t.closed = true
	if err := errors.Join(ferr, t.conn.Close()); err != nil {
		return &net.OpError{Op: "close", Net: "packet", Addr: t.addr, Err: err}
	}
	return nil
}
