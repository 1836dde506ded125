package bpf

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	xbpf "golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// Attach installs prog as the socket's classic BPF filter
// (SO_ATTACH_FILTER), replacing any earlier one. For a packet socket,
// attach before bind(2): a socket opened with protocol 0 receives nothing
// until it is bound, so no unfiltered frame can reach it in between (this
// is what ring.NewRX and mdlayher/packet's Config.Filter do).
func Attach(c syscall.RawConn, prog []xbpf.RawInstruction) error {
	if err := checkAttachable(prog); err != nil {
		return err
	}
	return control(c, func(fd int) error { return AttachFD(fd, prog) })
}

// AttachFD is Attach for a raw file descriptor.
func AttachFD(fd int, prog []xbpf.RawInstruction) error {
	if err := checkAttachable(prog); err != nil {
		return err
	}
	filter := make([]unix.SockFilter, len(prog))
	for i, ins := range prog {
		filter[i] = unix.SockFilter{Code: ins.Op, Jt: ins.Jt, Jf: ins.Jf, K: ins.K}
	}
	fprog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &fprog)
	return wrap("setsockopt SO_ATTACH_FILTER", err)
}

// Lock sets SO_LOCK_FILTER: from then on the socket's filter can be
// neither replaced nor detached, not even by the process itself, so a
// later bug or a compromised process cannot widen what the socket sees.
func Lock(c syscall.RawConn) error {
	return control(c, func(fd int) error {
		return wrap("setsockopt SO_LOCK_FILTER", unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_LOCK_FILTER, 1))
	})
}

// Detach removes the socket's filter (SO_DETACH_FILTER); the socket then
// receives everything its protocol and binding admit.
func Detach(c syscall.RawConn) error {
	return control(c, func(fd int) error {
		return wrap("setsockopt SO_DETACH_FILTER", unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DETACH_FILTER, 0))
	})
}

func control(c syscall.RawConn, fn func(fd int) error) error {
	var err error
	if cerr := c.Control(func(fd uintptr) { err = fn(int(fd)) }); cerr != nil {
		return cerr
	}
	return err
}

func wrap(call string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.EPERM):
		return fmt.Errorf("bpf: the socket's filter is locked (SO_LOCK_FILTER): %w", os.NewSyscallError(call, err))
	case errors.Is(err, unix.ENOENT) && call == "setsockopt SO_DETACH_FILTER":
		return fmt.Errorf("bpf: the socket has no filter to detach: %w", os.NewSyscallError(call, err))
	case errors.Is(err, unix.EINVAL) && call == "setsockopt SO_ATTACH_FILTER":
		return fmt.Errorf("bpf: the kernel rejected the program as invalid: %w", os.NewSyscallError(call, err))
	}
	return os.NewSyscallError(call, err)
}
