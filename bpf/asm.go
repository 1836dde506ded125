package bpf

import (
	"errors"
	"fmt"
	"math"

	xbpf "golang.org/x/net/bpf"
)

// assembler writes a classic BPF program with named jump targets, so that
// a hand-written program (ServeFilter, ReplyFilter, DropAll) reads as code
// instead of counted skips. Classic BPF jumps only forward; a conditional
// jump reaches at most 255 instructions, an unconditional one (ja) any
// distance, so jumpFar makes a far conditional jump from a conditional
// skip over a ja.
//
// Errors (a label defined twice, a target that is undefined, behind the
// jump or out of reach) are reported once, by program or assemble.
type assembler struct {
	prog   []xbpf.Instruction
	labels map[string]int
	jumps  []pendingJump
	err    error
}

// pendingJump is a jump in prog whose skips wait for its labels; "" means
// the next instruction.
type pendingJump struct {
	at            int
	yes, no       string // a JumpIf's targets
	unconditional bool   // a Jump to yes
}

func newAssembler() *assembler { return &assembler{labels: make(map[string]int)} }

func (a *assembler) emit(ins ...xbpf.Instruction) { a.prog = append(a.prog, ins...) }

// label names the next instruction.
func (a *assembler) label(name string) {
	if _, ok := a.labels[name]; ok && a.err == nil {
		a.err = fmt.Errorf("bpf: label %q defined twice", name)
	}
	a.labels[name] = len(a.prog)
}

// ja jumps to target.
func (a *assembler) ja(target string) {
	a.jumps = append(a.jumps, pendingJump{at: len(a.prog), yes: target, unconditional: true})
	a.emit(xbpf.Jump{})
}

// jump goes to yes if "A test k" holds, else to no; both must be within
// 255 instructions.
func (a *assembler) jump(test xbpf.JumpTest, k uint32, yes, no string) {
	a.jumps = append(a.jumps, pendingJump{at: len(a.prog), yes: yes, no: no})
	a.emit(xbpf.JumpIf{Cond: test, Val: k})
}

// jumpFar goes to target, at any distance, if "A test k" holds, and falls
// through otherwise.
func (a *assembler) jumpFar(test xbpf.JumpTest, k uint32, target string) {
	a.emit(xbpf.JumpIf{Cond: test, Val: k, SkipFalse: 1})
	a.ja(target)
}

// jeq is jumpFar(JumpEqual, k, target), the common case.
func (a *assembler) jeq(k uint32, target string) { a.jumpFar(xbpf.JumpEqual, k, target) }

// program resolves the labels and returns the instructions.
func (a *assembler) program() ([]xbpf.Instruction, error) {
	if a.err != nil {
		return nil, a.err
	}
	if len(a.prog) == 0 {
		return nil, errors.New("bpf: empty program")
	}
	switch a.prog[len(a.prog)-1].(type) {
	case xbpf.RetA, xbpf.RetConstant:
	default:
		return nil, errors.New("bpf: the program's last instruction is not a return")
	}
	for _, j := range a.jumps {
		if j.unconditional {
			d, err := a.skip(j.at, j.yes, math.MaxUint32)
			if err != nil {
				return nil, err
			}
			a.prog[j.at] = xbpf.Jump{Skip: d}
			continue
		}
		yes, err := a.skip(j.at, j.yes, math.MaxUint8)
		if err != nil {
			return nil, err
		}
		no, err := a.skip(j.at, j.no, math.MaxUint8)
		if err != nil {
			return nil, err
		}
		ins := a.prog[j.at].(xbpf.JumpIf)
		ins.SkipTrue, ins.SkipFalse = uint8(yes), uint8(no)
		a.prog[j.at] = ins
	}
	return a.prog, nil
}

// skip is the distance from the jump at "at" to the instruction named
// target ("" is the next one), at most limit.
func (a *assembler) skip(at int, target string, limit uint32) (uint32, error) {
	if target == "" {
		return 0, nil
	}
	to, ok := a.labels[target]
	switch {
	case !ok:
		return 0, fmt.Errorf("bpf: jump at %d to undefined label %q", at, target)
	case to <= at:
		return 0, fmt.Errorf("bpf: jump at %d to label %q at %d: jumps go forward only", at, target, to)
	case to >= len(a.prog):
		return 0, fmt.Errorf("bpf: jump at %d to label %q past the last instruction", at, target)
	case uint64(to-at-1) > uint64(limit):
		return 0, fmt.Errorf("bpf: jump at %d cannot reach label %q, %d instructions ahead (at most %d)", at, target, to-at-1, limit)
	}
	return uint32(to - at - 1), nil
}

// assemble resolves the labels and returns the program raw (toRaw).
func (a *assembler) assemble() ([]xbpf.RawInstruction, error) {
	prog, err := a.program()
	if err != nil {
		return nil, err
	}
	return toRaw(prog)
}

// toRaw returns prog in the raw form that SO_ATTACH_FILTER takes,
// refusing one longer than the kernel accepts.
func toRaw(prog []xbpf.Instruction) ([]xbpf.RawInstruction, error) {
	if len(prog) > MaxInstructions {
		return nil, tooLong(len(prog))
	}
	raw, err := xbpf.Assemble(prog)
	if err != nil {
		return nil, fmt.Errorf("bpf: assembling: %w", err)
	}
	return raw, nil
}

func tooLong(n int) error {
	return fmt.Errorf("bpf: program has %d instructions, more than the kernel's limit of %d", n, MaxInstructions)
}
