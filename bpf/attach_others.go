//go:build !linux

package bpf

import (
	"syscall"

	xbpf "golang.org/x/net/bpf"
)

// Attach installs a socket filter; Linux only.
func Attach(c syscall.RawConn, prog []xbpf.RawInstruction) error {
	if err := checkAttachable(prog); err != nil {
		return err
	}
	return ErrUnsupported
}

// AttachFD installs a socket filter on a file descriptor; Linux only.
func AttachFD(fd int, prog []xbpf.RawInstruction) error {
	if err := checkAttachable(prog); err != nil {
		return err
	}
	return ErrUnsupported
}

// Lock sets SO_LOCK_FILTER; Linux only.
func Lock(c syscall.RawConn) error { return ErrUnsupported }

// Detach removes a socket filter; Linux only.
func Detach(c syscall.RawConn) error { return ErrUnsupported }
