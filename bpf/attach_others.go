//go:build !linux

package bpf

import xbpf "golang.org/x/net/bpf"

func attachFD(int, []xbpf.RawInstruction) error { return ErrUnsupported }

func lock(int) error { return ErrUnsupported }
