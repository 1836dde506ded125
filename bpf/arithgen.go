package bpf

import (
	"errors"
	"fmt"

	xbpf "golang.org/x/net/bpf"

	"github.com/pktengine/pktengine/proto"
)

// acode writes the instructions that put a test's value in A (and, for a
// comparison with X, the other value in X), tracking what X holds so that
// "ldxb 4*([14]&0xf)" is not repeated.
type acode struct {
	ins   []xbpf.Instruction
	x     content // what X holds
	slot  int     // the next free scratch memory word
	err   error
	plain bool // unoptimised code: run-time division by zero, as libpcap's
}

// scratchWords is the number of scratch memory words (BPF_MEMWORDS).
const scratchWords = 16

// errTooComplex is an arithmetic expression that needs more scratch
// memory than classic BPF has.
var errTooComplex = errors.New("bpf: arithmetic expression too complex (needs more than 16 scratch memory words)")

func (g *acode) emit(ins ...xbpf.Instruction) { g.ins = append(g.ins, ins...) }

// prologue returns the code before the jump of test a, given what A and X
// hold on entry. The code of all tests shares one growing array.
func (g *acode) prologue(a atom, ain, xin content) ([]xbpf.Instruction, error) {
	start := len(g.ins)
	err := g.code(a, ain, xin)
	return g.ins[start:len(g.ins):len(g.ins)], err
}

func (g *acode) code(a atom, ain, xin content) error {
	g.x, g.slot, g.err = xin, 0, nil
	want := content{true, a.v}
	if a.xv == nil {
		switch {
		case ain == want:
		case a.v.mask != 0 && ain == content{true, a.v.unmasked()}:
			g.emit(xbpf.ALUOpConstant{Op: xbpf.ALUOpAnd, Val: a.v.mask})
		default:
			g.value(a.v)
		}
		return g.err
	}
	xwant := content{true, value{mode: ldComp, comp: a.xv}}
	if ain == want && xin == xwant {
		return nil
	}
	if !valueUsesX(a.v) {
		g.toA(a.xv)
		g.emit(xbpf.TAX{})
		g.value(a.v)
	} else {
		s := g.alloc()
		g.toA(a.xv)
		g.emit(xbpf.StoreScratch{Src: xbpf.RegA, N: s})
		g.value(a.v)
		g.emit(xbpf.LoadScratch{Dst: xbpf.RegX, N: s})
		g.slot--
	}
	g.x = xwant
	return g.err
}

func (g *acode) alloc() int {
	s := g.slot
	if s >= scratchWords {
		g.err = errTooComplex
		s = 0
	}
	g.slot++
	return s
}

func valueUsesX(v value) bool {
	switch v.mode {
	case ldInd:
		return true
	case ldComp:
		return usesX(v.comp)
	}
	return false
}

// constOperandOK reports whether "op #k" is an instruction Linux accepts.
func constOperandOK(op arithOp, k uint32) bool {
	switch op {
	case opDiv, opMod:
		return k != 0
	case opLsh, opRsh:
		return k < 32
	}
	return true
}

// usesX reports whether computing a writes X.
func usesX(a *arith) bool {
	switch a.op {
	case opConst, opLen:
		return false
	case opLoad:
		return a.ihl || a.l != nil
	case opNeg:
		return usesX(a.l)
	case opChain:
		return true
	}
	if a.r.op == opConst && constOperandOK(a.op, a.r.k) {
		return usesX(a.l)
	}
	return true
}

// msh puts 4*IHL of the IPv4 header at off in X, unless it is there.
func (g *acode) msh(off uint32) {
	want := content{true, value{mode: ldMsh, size: 1, off: off}}
	if g.x != want {
		g.emit(xbpf.LoadMemShift{Off: off})
		g.x = want
	}
}

// value puts v in A.
func (g *acode) value(v value) {
	switch v.mode {
	case ldAbs:
		g.emit(xbpf.LoadAbsolute{Off: v.off, Size: int(v.size)})
	case ldInd:
		g.msh(v.xoff)
		g.emit(xbpf.LoadIndirect{Off: v.off, Size: int(v.size)})
	case ldLen:
		g.emit(xbpf.LoadExtension{Num: xbpf.ExtLen})
	case ldComp:
		g.toA(v.comp)
	}
	if v.mask != 0 {
		g.emit(xbpf.ALUOpConstant{Op: xbpf.ALUOpAnd, Val: v.mask})
	}
}

var aluOps = [...]xbpf.ALUOp{
	opAdd: xbpf.ALUOpAdd, opSub: xbpf.ALUOpSub, opMul: xbpf.ALUOpMul, opDiv: xbpf.ALUOpDiv,
	opMod: xbpf.ALUOpMod, opAnd: xbpf.ALUOpAnd, opOr: xbpf.ALUOpOr, opXor: xbpf.ALUOpXor,
	opLsh: xbpf.ALUOpShiftLeft, opRsh: xbpf.ALUOpShiftRight,
}

func (op arithOp) alu() xbpf.ALUOp { return aluOps[op] }

// toA computes a into A. For "l op r" it evaluates whichever side keeps
// X free first, so that no scratch memory is needed unless both sides
// use X: "ldb [15]; tax; ldb [14]; add x" for ip[0] + ip[1].
func (g *acode) toA(a *arith) {
	switch a.op {
	case opConst:
		g.emit(xbpf.LoadConstant{Dst: xbpf.RegA, Val: a.k})
	case opLen:
		g.emit(xbpf.LoadExtension{Num: xbpf.ExtLen})
	case opLoad:
		switch {
		case a.l == nil && !a.ihl:
			g.emit(xbpf.LoadAbsolute{Off: a.k, Size: int(a.size)})
		case a.l == nil:
			g.msh(a.xoff)
			g.emit(xbpf.LoadIndirect{Off: a.k, Size: int(a.size)})
		case !a.ihl:
			// X = index: ld [x + k], the sum never wrapping, as in
			// libpcap's code.
			g.toA(a.l)
			g.emit(xbpf.TAX{})
			g.x = content{}
			g.emit(xbpf.LoadIndirect{Off: a.k, Size: int(a.size)})
		default:
			// X = index + 4*IHL, added in A (modulo 2^32) as libpcap does.
			g.toA(a.l)
			g.msh(a.xoff)
			g.emit(xbpf.ALUOpX{Op: xbpf.ALUOpAdd}, xbpf.TAX{})
			g.x = content{}
			g.emit(xbpf.LoadIndirect{Off: a.k, Size: int(a.size)})
		}
	case opNeg:
		g.toA(a.l)
		g.emit(xbpf.NegateA{})
	case opChain:
		g.chain(a)
	default:
		if a.bad != "" && !g.plain {
			g.err = &SyntaxError{Column: a.col, Msg: a.bad}
			return
		}
		op := a.op.alu()
		switch {
		case a.r.op == opConst && constOperandOK(a.op, a.r.k):
			g.toA(a.l)
			g.emit(xbpf.ALUOpConstant{Op: op, Val: a.r.k})
		case a.r.op == opConst:
			// Division by a constant 0, or a shift by 32 or more, left in
			// unoptimised code as libpcap leaves it: through X, since
			// Linux refuses the constant forms.
			g.toA(a.l)
			g.emit(xbpf.LoadConstant{Dst: xbpf.RegX, Val: a.r.k}, xbpf.ALUOpX{Op: op})
			g.x = content{}
		case !usesX(a.l):
			g.toA(a.r)
			g.emit(xbpf.TAX{})
			g.x = content{}
			g.toA(a.l)
			g.emit(xbpf.ALUOpX{Op: op})
		case a.op.commutative() && !usesX(a.r):
			g.toA(a.l)
			g.emit(xbpf.TAX{})
			g.x = content{}
			g.toA(a.r)
			g.emit(xbpf.ALUOpX{Op: op})
		default:
			s := g.alloc()
			g.toA(a.r)
			g.emit(xbpf.StoreScratch{Src: xbpf.RegA, N: s})
			g.toA(a.l)
			g.emit(xbpf.LoadScratch{Dst: xbpf.RegX, N: s})
			g.x = content{}
			g.emit(xbpf.ALUOpX{Op: op})
			g.slot--
		}
	}
}

// chain writes protochain's walk, unrolled: A holds the type of the
// current header and X its offset from the network header. Each step
// stops at the protocol wanted, skips an IPv6 extension header (Hop-by-
// Hop, Destination Options, Routing, Fragment: (length+1)*8 bytes) or an
// Authentication Header ((length+2)*4 bytes), and otherwise stops. After
// protochainMaxHeaders steps the walk stops too; A is then an extension
// header, which the test after it does not match.
//
// Unlike libpcap, an Authentication Header moves the offset by its length
// instead of setting it to that length (libpcap loses the offset of the
// headers before it: docs/BPF.md).
func (g *acode) chain(a *arith) {
	pl, want := a.xoff, a.k
	s := g.alloc()
	type fix struct{ at, t, f int } // label indices; -1: next instruction
	var fixes []fix
	labels := map[int]int{}
	const done = 0
	next := 1
	newLabel := func() int { next++; return next }
	jeq := func(k uint32, t, f int) {
		fixes = append(fixes, fix{len(g.ins), t, f})
		g.emit(xbpf.JumpIf{Cond: xbpf.JumpEqual, Val: k})
	}
	skip := func(lenAdd, shift uint32) {
		g.emit(
			xbpf.LoadIndirect{Off: pl, Size: 1},
			xbpf.StoreScratch{Src: xbpf.RegA, N: s},
			xbpf.LoadIndirect{Off: pl + 1, Size: 1},
			xbpf.ALUOpConstant{Op: xbpf.ALUOpAdd, Val: lenAdd},
			xbpf.ALUOpConstant{Op: xbpf.ALUOpShiftLeft, Val: shift},
			xbpf.ALUOpX{Op: xbpf.ALUOpAdd},
			xbpf.TAX{},
			xbpf.LoadScratch{Dst: xbpf.RegA, N: s},
		)
	}
	if a.v6 {
		g.emit(xbpf.LoadAbsolute{Off: pl + 6, Size: 1}, xbpf.LoadConstant{Dst: xbpf.RegX, Val: 40})
	} else {
		g.emit(xbpf.LoadAbsolute{Off: pl + 9, Size: 1}, xbpf.LoadMemShift{Off: pl})
	}
	for i := 0; i < protochainMaxHeaders; i++ {
		ext, ah, step := newLabel(), newLabel(), newLabel()
		jeq(want, done, -1)
		if a.v6 {
			for _, h := range []uint8{proto.IPProtoHopByHop, proto.IPProtoDstOpts, proto.IPProtoRouting, proto.IPProtoFragment} {
				jeq(uint32(h), ext, -1)
			}
		}
		jeq(uint32(proto.IPProtoAH), ah, done)
		if a.v6 {
			labels[ext] = len(g.ins)
			skip(1, 3)
			fixes = append(fixes, fix{len(g.ins), step, step})
			g.emit(xbpf.Jump{})
		}
		labels[ah] = len(g.ins)
		skip(2, 2)
		labels[step] = len(g.ins)
	}
	labels[done] = len(g.ins)
	for _, f := range fixes {
		target := func(l int) int {
			if l < 0 {
				return 0
			}
			d := labels[l] - f.at - 1
			if d > 255 {
				g.err = fmt.Errorf("bpf: protochain walk too long (jump of %d)", d)
			}
			return d
		}
		switch ins := g.ins[f.at].(type) {
		case xbpf.Jump:
			ins.Skip = uint32(target(f.t))
			g.ins[f.at] = ins
		case xbpf.JumpIf:
			ins.SkipTrue, ins.SkipFalse = uint8(target(f.t)), uint8(target(f.f))
			g.ins[f.at] = ins
		}
	}
	g.slot--
	g.x = content{}
}
