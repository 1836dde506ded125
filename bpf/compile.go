package bpf

import (
	"fmt"

	xbpf "golang.org/x/net/bpf"
)

// assemble returns a compiled program raw, once it has passed the checks
// of x/net/bpf's VM (jumps in bounds, no division by zero).
func assemble(prog []xbpf.Instruction) ([]xbpf.RawInstruction, error) {
	if _, err := xbpf.NewVM(prog); err != nil {
		return nil, fmt.Errorf("bpf: generated program is invalid: %w", err)
	}
	return toRaw(prog)
}

func prefixMask32(bits int) uint32 {
	if bits <= 0 {
		return 0
	}
	return ^uint32(0) << (32 - bits)
}

func prefixMask128(bits int) (m [16]byte) {
	for i := 0; i < 16 && bits > 0; i++ {
		if bits >= 8 {
			m[i] = 0xff
		} else {
			m[i] = ^byte(0) << (8 - bits)
		}
		bits -= 8
	}
	return m
}
