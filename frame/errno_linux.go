package frame

import "syscall"

// sysErrno returns the syscall.Errno of e's name: the same number on most
// architectures, another on MIPS, SPARC and the like, which do not follow
// asm-generic/errno.h.
func (e Errno) sysErrno() syscall.Errno {
	switch e {
	case EACCES:
		return syscall.EACCES
	case ENONET:
		return syscall.ENONET
	case EPROTO:
		return syscall.EPROTO
	case EMSGSIZE:
		return syscall.EMSGSIZE
	case ENOPROTOOPT:
		return syscall.ENOPROTOOPT
	case EOPNOTSUPP:
		return syscall.EOPNOTSUPP
	case ENETUNREACH:
		return syscall.ENETUNREACH
	case ECONNREFUSED:
		return syscall.ECONNREFUSED
	case EHOSTDOWN:
		return syscall.EHOSTDOWN
	case EHOSTUNREACH:
		return syscall.EHOSTUNREACH
	}
	return 0
}
