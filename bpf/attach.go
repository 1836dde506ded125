package bpf

import (
	"errors"
	"fmt"

	xbpf "golang.org/x/net/bpf"
)

// ErrUnsupported is returned by the attach functions where the operating
// system has no socket filters of this kind.
var ErrUnsupported = errors.New("bpf: socket filters are only supported on Linux")

func checkAttachable(prog []xbpf.RawInstruction) error {
	if len(prog) == 0 {
		return errors.New("bpf: cannot attach an empty program")
	}
	if len(prog) > MaxInstructions {
		return fmt.Errorf("bpf: program has %d instructions, more than the kernel's limit of %d", len(prog), MaxInstructions)
	}
	return nil
}
