//go:build linux

package engine

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/mdlayher/socket"
	"golang.org/x/sys/unix"
)

// The engine learns about its link from rtnetlink: a NETLINK_ROUTE socket
// in the engine's namespace, subscribed to RTNLGRP_LINK, gets an
// RTM_NEWLINK for every change of an interface's flags and an RTM_DELLINK
// when one is unregistered or moves to another namespace (which is also
// what happens to a veth when its peer's namespace is deleted).
//
// The packet sockets themselves are told too: the kernel sets sk_err to
// ENETDOWN on every packet socket bound to a device that goes down or is
// unregistered (packet_notifier), and wakes pollers with POLLERR. But the
// error is one-shot (the first SO_ERROR or recvmsg consumes it), it is
// the same for down and for removal, a ring reader never makes the
// system calls that would return it, and the runtime poller treats
// POLLERR as plain readiness. Netlink says which interface, what changed
// and whether it still exists, independently of the traffic, on a socket
// that costs the receive path nothing.

// linkMonitor watches the engine's interface. Its goroutine (run) reads
// link messages until Close.
type linkMonitor struct {
	conn   *socket.Conn
	portID uint32 // the socket's netlink address, which answers carry
	index  int32
	seq    uint32
	buf    []byte
}

// linkMsg is what one netlink message says about the engine's interface.
type linkMsg struct {
	// seq and pid identify an answer: those of our request. (A
	// notification caused by another program's request carries that
	// request's.)
	seq, pid uint32
	state    linkState
	// errno is the error of an NLMSG_ERROR answer (0 for an
	// acknowledgement); meaningful when isErr.
	isErr bool
	errno syscall.Errno
}

// openLinkMonitor opens the netlink socket in the engine's namespace,
// subscribes to link changes, and asks for the link's state. Subscribing
// first means that no change between the answer and the monitor's first
// read can be missed.
func (e *Engine) openLinkMonitor(ns *netns) (*linkMonitor, linkState, error) {
	m := &linkMonitor{index: int32(e.ifi.Index), buf: make([]byte, 64<<10)}
	err := ns.do(func() error {
		c, err := socket.Socket(unix.AF_NETLINK, unix.SOCK_RAW, unix.NETLINK_ROUTE, "netlink", nil)
		if err != nil {
			return err
		}
		m.conn = c
		if err := c.Bind(&unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: unix.RTMGRP_LINK}); err != nil {
			return err
		}
		sa, err := c.Getsockname()
		if err != nil {
			return err
		}
		nl, ok := sa.(*unix.SockaddrNetlink)
		if !ok {
			return fmt.Errorf("netlink socket has address %T", sa)
		}
		m.portID = nl.Pid
		return nil
	})
	if err != nil {
		if m.conn != nil {
			m.conn.Close()
		}
		return nil, linkState{}, fmt.Errorf("engine: watching the link of %s: %w", e.ifi.Name, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := m.query(ctx, linkState{})
	if err != nil {
		m.conn.Close()
		return nil, linkState{}, fmt.Errorf("engine: reading the link state of %s: %w", e.ifi.Name, err)
	}
	return m, s, nil
}

func (m *linkMonitor) Close() error { return m.conn.Close() }

// request sends RTM_GETLINK for the engine's interface and returns its
// sequence number. The kernel answers with one RTM_NEWLINK, or ENODEV.
func (m *linkMonitor) request(ctx context.Context) (uint32, error) {
	m.seq++
	var b [unix.SizeofNlMsghdr + unix.SizeofIfInfomsg]byte
	ne := binary.NativeEndian
	ne.PutUint32(b[0:], uint32(len(b)))
	ne.PutUint16(b[4:], unix.RTM_GETLINK)
	ne.PutUint16(b[6:], unix.NLM_F_REQUEST)
	ne.PutUint32(b[8:], m.seq)
	b[16] = unix.AF_UNSPEC
	ne.PutUint32(b[20:], uint32(m.index))
	return m.seq, m.conn.Sendto(ctx, b[:], 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
}

// read returns the next datagram's messages about the interface. Only
// the kernel's messages count: another process could send to the
// socket's address, but not speak for the kernel.
func (m *linkMonitor) read(ctx context.Context) ([]linkMsg, error) {
	for {
		n, from, err := m.conn.Recvfrom(ctx, m.buf, 0)
		if err != nil {
			return nil, err
		}
		if sa, ok := from.(*unix.SockaddrNetlink); !ok || sa.Pid != 0 {
			continue
		}
		return parseLinkMessages(m.buf[:n], m.index), nil
	}
}

// query asks for the link's state and reads until the answer, applying
// what arrives meanwhile on top of s.
func (m *linkMonitor) query(ctx context.Context, s linkState) (linkState, error) {
	seq, err := m.request(ctx)
	if err != nil {
		return s, err
	}
	for {
		msgs, err := m.read(ctx)
		if err != nil {
			return s, err
		}
		for _, msg := range msgs {
			answer := msg.seq == seq && msg.pid == m.portID
			switch {
			case !msg.isErr:
				s = msg.state
				if answer || !s.exists {
					return s, nil
				}
			case !answer:
			case msg.errno == unix.ENODEV:
				return linkState{}, nil
			case msg.errno != 0:
				return s, os.NewSyscallError("RTM_GETLINK", msg.errno)
			}
		}
	}
}

// run follows the link until the engine stops or the socket is closed.
func (m *linkMonitor) run(e *Engine) {
	cur := e.link.state
	for {
		msgs, err := m.read(context.Background())
		switch {
		case errors.Is(err, net.ErrClosed), errors.Is(err, os.ErrClosed):
			return
		case errors.Is(err, unix.ENOBUFS):
			// The socket's buffer overflowed (a storm of changes on
			// the host's interfaces): ask for the current state, which
			// the answer brings in order with what follows.
			e.log.Warn("link monitor lost events; asking the kernel again", "iface", e.ifi.Name)
			if _, err := m.request(context.Background()); err != nil {
				e.log.Error("link monitor failed; link changes are no longer watched", "iface", e.ifi.Name, "err", err)
				return
			}
			continue
		case err != nil:
			e.log.Error("link monitor failed; link changes are no longer watched", "iface", e.ifi.Name, "err", err)
			return
		}
		for _, msg := range msgs {
			s := msg.state
			if msg.isErr {
				if msg.errno != unix.ENODEV {
					continue
				}
				s = linkState{}
			}
			if e.cfg.OnLinkDown == LinkFail && cur.up() && !s.up() && s.exists && m.removed() {
				// A device being unregistered goes down first:
				// report the removal, not the outage.
				s = linkState{}
			}
			cur = s
			if e.linkApply(s, time.Now()) {
				return
			}
		}
	}
}

// removed tells a link that went down from one that is going away: the
// kernel closes a device it unregisters (RTM_NEWLINK without IFF_UP) and
// sends RTM_DELLINK a moment later, both under the RTNL lock, which an
// RTM_GETLINK waits for. So the answer to a request sent now comes after
// the RTM_DELLINK if there is one, and is ENODEV.
func (m *linkMonitor) removed() bool {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	s, err := m.query(ctx, linkState{exists: true})
	return err == nil && !s.exists
}

// parseLinkMessages returns what the netlink messages in b say about
// interface index: RTM_NEWLINK and RTM_DELLINK for it, and every
// NLMSG_ERROR (the answers to requests). Anything malformed ends the
// walk; netlink messages come from the kernel, but a parser should not
// trust lengths.
func parseLinkMessages(b []byte, index int32) []linkMsg {
	var out []linkMsg
	ne := binary.NativeEndian
	for len(b) >= unix.SizeofNlMsghdr {
		l := int(ne.Uint32(b[0:]))
		if l < unix.SizeofNlMsghdr || l > len(b) {
			break
		}
		typ, seq, pid := ne.Uint16(b[4:]), ne.Uint32(b[8:]), ne.Uint32(b[12:])
		body := b[unix.SizeofNlMsghdr:l]
		switch typ {
		case unix.RTM_NEWLINK, unix.RTM_DELLINK:
			if len(body) < unix.SizeofIfInfomsg || int32(ne.Uint32(body[4:])) != index {
				break
			}
			flags := ne.Uint32(body[8:])
			s := linkState{exists: typ == unix.RTM_NEWLINK, adminUp: flags&unix.IFF_UP != 0, running: flags&unix.IFF_RUNNING != 0}
			if !s.exists {
				s = linkState{}
			}
			out = append(out, linkMsg{seq: seq, pid: pid, state: s})
		case unix.NLMSG_ERROR:
			if len(body) < 4 {
				break
			}
			code := int32(ne.Uint32(body))
			// The error's header echoes the request's, with its
			// sequence number.
			if len(body) >= 4+unix.SizeofNlMsghdr {
				seq = ne.Uint32(body[4+8:])
			}
			out = append(out, linkMsg{seq: seq, pid: pid, isErr: true, errno: syscall.Errno(-code)})
		}
		b = b[min((l+unix.NLMSG_ALIGNTO-1)&^(unix.NLMSG_ALIGNTO-1), len(b)):]
	}
	return out
}
