package bpf

import (
	"errors"
	"syscall"

	xbpf "golang.org/x/net/bpf"
)

// ErrUnsupported is returned by the attach functions where the operating
// system has no socket filters of this kind (anywhere but Linux).
var ErrUnsupported = errors.New("bpf: socket filters are only supported on Linux")

// AttachFD installs prog as the classic BPF filter of the socket fd
// (SO_ATTACH_FILTER), replacing any earlier one. Attach before bind(2),
// so that no unfiltered datagram or frame can reach the socket in between.
func AttachFD(fd int, prog []xbpf.RawInstruction) error {
	if len(prog) == 0 {
		return errors.New("bpf: cannot attach an empty program")
	}
	if len(prog) > MaxInstructions {
		return tooLong(len(prog))
	}
	return attachFD(fd, prog)
}

// Lock sets SO_LOCK_FILTER: from then on the socket's filter can be
// neither replaced nor detached, not even by the process itself, so a
// later bug or a compromised process cannot widen what the socket sees.
func Lock(c syscall.RawConn) error {
	var err error
	if cerr := c.Control(func(fd uintptr) { err = lock(int(fd)) }); cerr != nil {
		return cerr
	}
	return err
}

// DropAll returns a program that accepts nothing. The engine attaches it
// to the kernel UDP sockets that hold its ports on addresses it shares
// with the kernel: the kernel delivers to them, so it sends no ICMP port
// unreachable, and nothing is queued.
func DropAll() []xbpf.RawInstruction {
	a := newAssembler()
	a.emit(xbpf.RetConstant{Val: 0})
	raw, err := a.assemble()
	if err != nil {
		panic(err) // a one-instruction program cannot fail
	}
	return raw
}
