//go:build !linux

package frame

import "syscall"

// sysErrno: Errno names Linux's errors; off Linux none matches.
func (e Errno) sysErrno() syscall.Errno { return 0 }
