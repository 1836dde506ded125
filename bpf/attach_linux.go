package bpf

import (
	"errors"
	"fmt"
	"os"

	xbpf "golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

func attachFD(fd int, prog []xbpf.RawInstruction) error {
	filter := make([]unix.SockFilter, len(prog))
	for i, ins := range prog {
		filter[i] = unix.SockFilter{Code: ins.Op, Jt: ins.Jt, Jf: ins.Jf, K: ins.K}
	}
	fprog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	return wrap("setsockopt SO_ATTACH_FILTER", unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &fprog))
}

func lock(fd int) error {
	return wrap("setsockopt SO_LOCK_FILTER", unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_LOCK_FILTER, 1))
}

func wrap(call string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.EPERM):
		return fmt.Errorf("bpf: the socket's filter is locked (SO_LOCK_FILTER): %w", os.NewSyscallError(call, err))
	case errors.Is(err, unix.EINVAL) && call == "setsockopt SO_ATTACH_FILTER":
		return fmt.Errorf("bpf: the kernel rejected the program as invalid: %w", os.NewSyscallError(call, err))
	}
	return os.NewSyscallError(call, err)
}
