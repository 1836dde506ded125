//go:build linux

package ring

import (
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// txSocket is what both Transmitters share: the socket, the buffer Next
// lent out, the counters. The socket is bound with protocol 0, so it
// receives nothing.
type txSocket struct {
	*packetSocket
	maxLen   int  // the longest frame a buffer holds
	reserved bool // Next lent out a buffer that is not committed yet
	stats    TXStats
	closed   bool
	// fd is the socket outside the Go runtime's poller (unpoll), or -1
	// while packet's Conn holds it.
	fd int
}

// dialTX validates what both Transmitters take from cfg and opens their
// socket. slotSize is the size of a ring slot or (less the slot header
// that the buffer does not need) of a sendmmsg buffer; ring slots must be
// aligned.
func dialTX(ifi *net.Interface, c *TXConfig, ring bool, defaultCount, maxCount int) (s *txSocket, slotSize, count int, err error) {
	mtu := 1500
	if ifi != nil && ifi.MTU > 0 {
		mtu = ifi.MTU
	}
	slotSize = orDefault(c.FrameSize, txFrameSize(mtu))
	count = orDefault(c.FrameCount, defaultCount)
	if ring && (slotSize%tpacketAlignment != 0 || slotSize < txDataOffset+14) {
		err = fmt.Errorf("TXConfig.FrameSize %d is not a multiple of 16 of at least %d", slotSize, txDataOffset+14)
	} else if slotSize < txDataOffset+14 {
		err = fmt.Errorf("TXConfig.FrameSize %d is less than %d", slotSize, txDataOffset+14)
	} else if count <= 0 || count > maxCount {
		err = fmt.Errorf("%w: %d, want 1 to %d", errBadTXSlots, count, maxCount)
	}
	if err != nil {
		return nil, 0, 0, &net.OpError{Op: "dial", Net: "packet", Addr: addrOf(ifi), Err: err}
	}
	ps, err := listenPacket("dial", ifi, nil)
	if err != nil {
		return nil, 0, 0, err
	}
	if c.QdiscBypass {
		if err := ps.setInt("PACKET_QDISC_BYPASS", unix.SOL_PACKET, unix.PACKET_QDISC_BYPASS, 1); err != nil {
			ps.abandon()
			return nil, 0, 0, err
		}
	}
	return &txSocket{packetSocket: ps, fd: -1}, slotSize, count, nil
}

// commit checks a Commit of n bytes.
func (s *txSocket) commit(n int) error {
	if !s.reserved {
		return ErrNoBuffer
	}
	if n < 14 || n > s.maxLen {
		return fmt.Errorf("%w: %d bytes, want 14 to %d", ErrFrameSize, n, s.maxLen)
	}
	s.reserved = false
	s.stats.Committed++
	return nil
}

// closeWith marks the Transmitter closed and closes the socket, joining
// the errors of the final flush and of unmapping, if any.
func (s *txSocket) closeWith(errs ...error) error {
	s.closed = true
	var cerr error
	if s.fd >= 0 {
		cerr = os.NewSyscallError("close", unix.Close(s.fd))
		s.fd = -1
	} else {
		cerr = unwrapOp(s.conn.Close())
	}
	if err := errors.Join(append(errs, cerr)...); err != nil {
		return s.wrapOp("close", err)
	}
	return nil
}

// unpoll takes the socket out of the Go runtime's poller: it keeps a
// duplicate of the descriptor and closes packet's Conn, whose close
// removes the descriptor from the poller's epoll set. A socket in an
// epoll set has a waiter on its wait queue for good, so the kernel wakes
// it (sock_def_write_space: a wait-queue lock taken with interrupts off,
// and the epoll callback) every time it frees one of the socket's
// frames; a transmit ring frees one per frame sent. On the lab's VM,
// where re-enabling interrupts is a hypervisor call, that was about 6 %
// of a TX ring sender's CPU (docs/bench/gen.md). The ring then waits with
// poll(2) when it has to, as trafgen does.
func (s *txSocket) unpoll() error {
	var nfd int
	err := s.control(func(fd int) error {
		var err error
		nfd, err = unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
		return os.NewSyscallError("fcntl F_DUPFD_CLOEXEC", err)
	})
	if err != nil {
		return err
	}
	if err := s.conn.Close(); err != nil {
		unix.Close(nfd)
		return s.wrap(err)
	}
	s.fd = nfd
	return nil
}

// pollOut waits up to timeout for the socket to be writable, with poll(2).
func (s *txSocket) pollOut(timeout time.Duration) error {
	fds := [1]unix.PollFd{{Fd: int32(s.fd), Events: unix.POLLOUT}}
	_, err := unix.Poll(fds[:], int(timeout.Milliseconds()))
	if err == unix.EINTR {
		return nil
	}
	return os.NewSyscallError("poll", err)
}
