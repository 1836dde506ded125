//go:build linux

package xdp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// The XDP attachment of an interface is read and, for programs attached
// the old way (without a bpf_link), removed through rtnetlink: RTM_GETLINK
// answers with an IFLA_XDP nest naming the attached program and its mode,
// and RTM_SETLINK with IFLA_XDP_FD = -1 detaches it. These run once per
// Attach, never per packet, so they use plain system calls in the calling
// thread's network namespace.

// xdpAttachment is what IFLA_XDP says about an interface.
type xdpAttachment struct {
	mode   uint8  // XDP_ATTACHED_NONE, _DRV, _SKB, _HW or _MULTI
	progID uint32 // IFLA_XDP_PROG_ID (the only one, unless mode is MULTI)
	drvID  uint32 // IFLA_XDP_DRV_PROG_ID
	skbID  uint32 // IFLA_XDP_SKB_PROG_ID
}

// Values of IFLA_XDP_ATTACHED.
const (
	xdpAttachedNone  = 0
	xdpAttachedDrv   = 1
	xdpAttachedSKB   = 2
	xdpAttachedHW    = 3
	xdpAttachedMulti = 4
)

// ids returns the attached programs with the XDP_FLAGS mode flag each
// needs to be detached with.
func (a xdpAttachment) ids() []struct {
	id   uint32
	flag uint32
} {
	var out []struct {
		id   uint32
		flag uint32
	}
	add := func(id, flag uint32) {
		if id != 0 {
			out = append(out, struct {
				id   uint32
				flag uint32
			}{id, flag})
		}
	}
	switch a.mode {
	case xdpAttachedDrv:
		add(a.progID, unix.XDP_FLAGS_DRV_MODE)
	case xdpAttachedSKB:
		add(a.progID, unix.XDP_FLAGS_SKB_MODE)
	case xdpAttachedHW:
		add(a.progID, unix.XDP_FLAGS_HW_MODE)
	case xdpAttachedMulti:
		add(a.drvID, unix.XDP_FLAGS_DRV_MODE)
		add(a.skbID, unix.XDP_FLAGS_SKB_MODE)
	}
	return out
}

// queryXDP reads the XDP attachment of the interface with index ifindex.
func queryXDP(ifindex int) (xdpAttachment, error) {
	var a xdpAttachment
	req := newLinkRequest(unix.RTM_GETLINK, 0, ifindex)
	msgs, err := rtnetlink(req)
	if err != nil {
		return a, fmt.Errorf("RTM_GETLINK: %w", err)
	}
	for _, m := range msgs {
		if m.Header.Type != unix.RTM_NEWLINK || len(m.Data) < unix.SizeofIfInfomsg {
			continue
		}
		for attr := range attrs(m.Data[unix.SizeofIfInfomsg:]) {
			if attr.typ != unix.IFLA_XDP {
				continue
			}
			for x := range attrs(attr.data) {
				switch x.typ {
				case unix.IFLA_XDP_ATTACHED:
					if len(x.data) >= 1 {
						a.mode = x.data[0]
					}
				case unix.IFLA_XDP_PROG_ID:
					a.progID = u32(x.data)
				case unix.IFLA_XDP_DRV_PROG_ID:
					a.drvID = u32(x.data)
				case unix.IFLA_XDP_SKB_PROG_ID:
					a.skbID = u32(x.data)
				}
			}
		}
	}
	return a, nil
}

// numRXQueues returns IFLA_NUM_RX_QUEUES of the interface.
func numRXQueues(ifindex int) (int, error) {
	msgs, err := rtnetlink(newLinkRequest(unix.RTM_GETLINK, 0, ifindex))
	if err != nil {
		return 0, fmt.Errorf("RTM_GETLINK: %w", err)
	}
	for _, m := range msgs {
		if m.Header.Type != unix.RTM_NEWLINK || len(m.Data) < unix.SizeofIfInfomsg {
			continue
		}
		for a := range attrs(m.Data[unix.SizeofIfInfomsg:]) {
			if a.typ == unix.IFLA_NUM_RX_QUEUES {
				return int(u32(a.data)), nil
			}
		}
	}
	return 0, errors.New("RTM_GETLINK: no IFLA_NUM_RX_QUEUES")
}

// setXDP attaches the program fd (or detaches, with fd -1) the old way,
// with XDP_FLAGS flags.
func setXDP(ifindex, fd int, flags uint32) error {
	req := newLinkRequest(unix.RTM_SETLINK, unix.NLM_F_ACK, ifindex)
	var nest []byte
	nest = appendAttr(nest, unix.IFLA_XDP_FD, binary.NativeEndian.AppendUint32(nil, uint32(int32(fd))))
	nest = appendAttr(nest, unix.IFLA_XDP_FLAGS, binary.NativeEndian.AppendUint32(nil, flags))
	req = appendAttr(req, unix.IFLA_XDP|unix.NLA_F_NESTED, nest)
	binary.NativeEndian.PutUint32(req, uint32(len(req)))
	if _, err := rtnetlink(req); err != nil {
		return fmt.Errorf("RTM_SETLINK IFLA_XDP: %w", err)
	}
	return nil
}

func newLinkRequest(typ uint16, flags uint16, ifindex int) []byte {
	b := make([]byte, unix.SizeofNlMsghdr+unix.SizeofIfInfomsg)
	binary.NativeEndian.PutUint32(b[0:], uint32(len(b)))
	binary.NativeEndian.PutUint16(b[4:], typ)
	binary.NativeEndian.PutUint16(b[6:], unix.NLM_F_REQUEST|flags)
	binary.NativeEndian.PutUint32(b[8:], 1) // sequence
	// struct ifinfomsg: family, pad, type, index, flags, change.
	binary.NativeEndian.PutUint32(b[unix.SizeofNlMsghdr+4:], uint32(int32(ifindex)))
	return b
}

func appendAttr(b []byte, typ uint16, data []byte) []byte {
	n := 4 + len(data)
	b = binary.NativeEndian.AppendUint16(b, uint16(n))
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = append(b, data...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

type rtattr struct {
	typ  uint16
	data []byte
}

// attrs iterates over netlink attributes; the nested flag is cleared from
// the type.
func attrs(b []byte) func(func(rtattr) bool) {
	return func(yield func(rtattr) bool) {
		for len(b) >= 4 {
			n := int(binary.NativeEndian.Uint16(b))
			typ := binary.NativeEndian.Uint16(b[2:]) &^ (unix.NLA_F_NESTED | unix.NLA_F_NET_BYTEORDER)
			if n < 4 || n > len(b) {
				return
			}
			if !yield(rtattr{typ, b[4:n]}) {
				return
			}
			n = (n + 3) &^ 3
			if n > len(b) {
				return
			}
			b = b[n:]
		}
	}
}

func u32(b []byte) uint32 {
	if len(b) < 4 {
		return 0
	}
	return binary.NativeEndian.Uint32(b)
}

// rtnetlink sends one request and collects the answer: the messages
// before NLMSG_DONE or the acknowledgement, or the error the kernel
// returned (with its extended-ack message, if any).
func rtnetlink(req []byte) ([]syscall.NetlinkMessage, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	defer unix.Close(fd)
	// Ask for extended acknowledgements: the kernel's reason in words.
	unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_EXT_ACK, 1)
	if err := unix.Sendto(fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return nil, os.NewSyscallError("sendto", err)
	}
	buf := make([]byte, 64<<10)
	var out []syscall.NetlinkMessage
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			return nil, os.NewSyscallError("recvfrom", err)
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			return nil, err
		}
		for _, m := range msgs {
			switch m.Header.Type {
			case unix.NLMSG_DONE:
				return out, nil
			case unix.NLMSG_ERROR:
				if len(m.Data) < 4 {
					return nil, errors.New("short NLMSG_ERROR")
				}
				errno := -int32(binary.NativeEndian.Uint32(m.Data))
				if errno == 0 {
					return out, nil
				}
				err := error(syscall.Errno(errno))
				if msg := extAckMessage(m); msg != "" {
					err = fmt.Errorf("%w: %s", err, msg)
				}
				return nil, err
			}
			out = append(out, m)
			if m.Header.Flags&unix.NLM_F_MULTI == 0 {
				return out, nil
			}
		}
	}
}

// extAckMessage returns NLMSGERR_ATTR_MSG from an error message, which
// follows the echoed request header (the whole request, unless the kernel
// capped it with NLM_F_CAPPED).
func extAckMessage(m syscall.NetlinkMessage) string {
	if m.Header.Flags&unix.NLM_F_ACK_TLVS == 0 || len(m.Data) < 4+unix.SizeofNlMsghdr {
		return ""
	}
	off := 4 + unix.SizeofNlMsghdr
	if m.Header.Flags&unix.NLM_F_CAPPED == 0 {
		off = 4 + int(binary.NativeEndian.Uint32(m.Data[4:]))
	}
	if off > len(m.Data) {
		return ""
	}
	for a := range attrs(m.Data[off:]) {
		if a.typ == unix.NLMSGERR_ATTR_MSG {
			s := a.data
			for len(s) > 0 && s[len(s)-1] == 0 {
				s = s[:len(s)-1]
			}
			return string(s)
		}
	}
	return ""
}
