package bpf

import "github.com/pktengine/pktengine/proto"

// The arithmetic half of pcap-filter: "proto[expr:size]", "len", constants
// and the operators + - * / % & | ^ << >> and unary minus. An arithmetic
// expression lowers to an arith tree (the value) and a guard (the
// protocol tests that must pass for the value to exist, such as "IPv4, UDP,
// not a later fragment" for udp[8:2]). A comparison of two values becomes
// an atom over that value, behind both guards.

// arithOp is what an arith node computes.
type arithOp uint8

const (
	opConst arithOp = iota // k
	opLoad                 // the size bytes at k, + X (see arith.ihl, arith.l)
	opLen                  // the frame length
	opNeg                  // -l
	opAdd                  // l + r, and so on: the ALU operations
	opSub
	opMul
	opDiv
	opMod
	opAnd
	opOr
	opXor
	opLsh
	opRsh
	opChain // protochain: the first header of the chain that is k, or where the walk stops
)

// arith is one node of an arithmetic expression. Nodes are interned per
// compilation (lowerer.intern), so two nodes compute the same value exactly
// when they are the same pointer; atoms and register contents compare them
// with ==.
type arith struct {
	op   arithOp
	k    uint32 // opConst: the value; opLoad: the constant offset; opChain: the protocol wanted
	size uint8  // opLoad: 1, 2 or 4
	// opLoad: X starts as 4*IHL of the IPv4 header at xoff (transport
	// headers); opChain: the network header is at xoff.
	ihl  bool
	xoff uint32
	v6   bool   // opChain: walk IPv6 extension headers (else IPv4 AH headers)
	l, r *arith // operands; opLoad: l is the variable index (nil: none)
	// bad is the error libpcap's optimiser reports for this operation
	// (a constant zero divisor, a constant shift above 31) if the test
	// using it survives the optimiser; col is where the operand starts.
	bad string
	col int
}

func (op arithOp) binary() bool { return op >= opAdd && op <= opRsh }

func (op arithOp) commutative() bool {
	switch op {
	case opAdd, opMul, opAnd, opOr, opXor:
		return true
	}
	return false
}

// intern returns the canonical node equal to a.
func (l *lowerer) intern(a arith) *arith {
	if l.nodes == nil {
		l.nodes = make(map[arith]*arith)
	}
	if n, ok := l.nodes[a]; ok {
		return n
	}
	n := &a
	l.nodes[a] = n
	return n
}

func (l *lowerer) konst(k uint32) *arith { return l.intern(arith{op: opConst, k: k}) }

// aval is a lowered arithmetic expression: its value and the guard under
// which it exists. lit marks a number written as such in the expression,
// which libpcap checks before dividing or shifting by it.
type aval struct {
	a     *arith
	guard *expr
	lit   bool
}

func (v aval) isConst() bool { return v.a.op == opConst }

// andGuard joins two guards, skipping absent ones.
func andGuard(a, b *expr) *expr {
	switch {
	case a == nil || a == exprTrue:
		return b
	case b == nil || b == exprTrue:
		return a
	}
	return and(a, b)
}

// arithError is an error in an arithmetic expression found while lowering
// it (division by zero and the like); the parser adds the column.
type arithError string

func (e arithError) Error() string { return string(e) }

// foldALU computes a constant operation the way libpcap's optimiser does.
func foldALU(op arithOp, a, b uint32) (uint32, error) {
	switch op {
	case opAdd:
		return a + b, nil
	case opSub:
		return a - b, nil
	case opMul:
		return a * b, nil
	case opDiv:
		if b == 0 {
			return 0, arithError("division by zero")
		}
		return a / b, nil
	case opMod:
		if b == 0 {
			return 0, arithError("modulus by zero")
		}
		return a % b, nil
	case opAnd:
		return a & b, nil
	case opOr:
		return a | b, nil
	case opXor:
		return a ^ b, nil
	case opLsh:
		if b > 31 {
			return 0, nil // shifted out, as libpcap folds it
		}
		return a << b, nil
	default: // opRsh
		if b > 31 {
			return 0, nil
		}
		return a >> b, nil
	}
}

// binary lowers "x op y". Both guards are kept (libpcap drops the right
// operand's guard, a bug: docs/BPF.md). Constants fold as libpcap's
// optimiser folds them, including the cases where folding removes a
// packet load, so that short frames are rejected or not exactly as with
// tcpdump's program: "x * 0" and "x & 0" are 0, "0 * x", "0 / x", "0 % x",
// "0 & x", "0 << x" and "0 >> x" are 0 without loading x, and "0 + x",
// "0 | x", "0 ^ x" are x.
func (l *lowerer) binary(op arithOp, x, y aval, col int) (aval, error) {
	// libpcap's gen_arth refuses a literal zero divisor and a literal
	// shift count above 31 before any folding.
	if y.lit {
		switch {
		case op == opDiv && y.a.k == 0:
			return aval{}, arithError("division by zero")
		case op == opMod && y.a.k == 0:
			return aval{}, arithError("modulus by zero")
		case (op == opLsh || op == opRsh) && y.a.k > 31:
			return aval{}, arithError("shift by more than 31 bits")
		}
	}
	g := andGuard(x.guard, y.guard)
	if l.plain {
		// No optimiser: only folds that keep every load and every run-time
		// division by zero.
		switch {
		case x.isConst() && y.isConst():
			if k, err := foldALU(op, x.a.k, y.a.k); err == nil && ((op != opLsh && op != opRsh) || y.a.k < 32) {
				return aval{a: l.konst(k), guard: g}, nil
			}
		case y.isConst() && y.a.k == 0 && (op == opAdd || op == opSub || op == opOr || op == opXor || op == opLsh || op == opRsh):
			return aval{a: x.a, guard: g}, nil
		}
		return aval{a: l.intern(arith{op: op, l: x.a, r: y.a}), guard: g}, nil
	}
	// libpcap's optimiser refuses a constant zero divisor and a constant
	// shift above 31 only where it folds them: in code that is still
	// reachable after its jump threading. So these are errors of the
	// test that computes them, if it is emitted (acode.toA).
	deferred := func(msg string) (aval, error) {
		return aval{a: l.intern(arith{op: op, l: x.a, r: y.a, bad: msg, col: col}), guard: g}, nil
	}
	switch {
	case x.isConst() && y.isConst():
		k, err := foldALU(op, x.a.k, y.a.k)
		if err != nil {
			return deferred(err.Error())
		}
		return aval{a: l.konst(k), guard: g}, nil
	case y.isConst():
		k := y.a.k
		if k == 0 {
			switch op {
			case opAdd, opSub, opOr, opXor, opLsh, opRsh:
				return aval{a: x.a, guard: g}, nil
			case opMul, opAnd:
				return aval{a: l.konst(0), guard: g}, nil
			}
		}
		if _, err := foldALU(op, 1, k); err != nil {
			return deferred(err.Error())
		}
		if (op == opLsh || op == opRsh) && k > 31 {
			return deferred("shift by more than 31 bits")
		}
	case x.isConst() && x.a.k == 0:
		switch op {
		case opAdd, opOr, opXor:
			return aval{a: y.a, guard: g}, nil
		case opMul, opDiv, opMod, opAnd, opLsh, opRsh:
			return aval{a: l.konst(0), guard: g}, nil
		}
	}
	return aval{a: l.intern(arith{op: op, l: x.a, r: y.a}), guard: g}, nil
}

// negate lowers "-x".
func (l *lowerer) negate(x aval) aval {
	if x.isConst() {
		return aval{a: l.konst(-x.a.k), guard: x.guard}
	}
	return aval{a: l.intern(arith{op: opNeg, l: x.a}), guard: x.guard}
}

// frameLen is "len".
func (l *lowerer) frameLen() aval { return aval{a: l.intern(arith{op: opLen})} }

// loadLayer says where an indexed protocol's offsets start.
type loadLayer uint8

const (
	layerLink      loadLayer = iota // the link-layer header: ether[0] is the first byte
	layerNet                        // the network header: ip[0], arp[0] ...
	layerTransport                  // behind the IPv4 header: tcp[0], udp[0] ...
	layerICMP6                      // behind the fixed IPv6 header: icmp6[0]
)

// load lowers "proto[idx:size]" as libpcap's gen_load does. guard is the
// protocol test for the layer ("ip" for ip[], "udp" for udp[]); the
// index's own guard comes first, as in libpcap.
func (l *lowerer) load(layer loadLayer, guard *expr, idx aval, size uint8) aval {
	var a arith
	switch layer {
	case layerLink:
		a = arith{op: opLoad, k: l.offLinkHdr, size: size}
		return aval{a: l.indexed(a, idx), guard: idx.guard}
	case layerNet:
		a = arith{op: opLoad, k: l.offLinkPL, size: size}
		return aval{a: l.indexed(a, idx), guard: andGuard(idx.guard, guard)}
	case layerICMP6:
		a = arith{op: opLoad, k: l.offLinkPL + 40, size: size}
		g := andGuard(andGuard(idx.guard, l.linktype(proto.EtherTypeIPv6)), cmpEq(l.offLinkPL+6, 1, uint32(proto.IPProtoICMPv6)))
		return aval{a: l.indexed(a, idx), guard: g}
	default: // layerTransport
		a = arith{op: opLoad, k: l.offLinkPL, size: size, ihl: true, xoff: l.offLinkPL}
		g := andGuard(idx.guard, and(guard, l.ipv4NotLaterFragment()))
		g = and(l.linktype(proto.EtherTypeIPv4), g)
		return aval{a: l.indexed(a, idx), guard: g}
	}
}

// indexed adds the index to a load: a constant folds into the offset
// (modulo 2^32, as libpcap's optimiser adds it), anything else is added
// to X at run time.
func (l *lowerer) indexed(a arith, idx aval) *arith {
	if idx.isConst() {
		a.k += idx.a.k
		return l.intern(a)
	}
	a.l = idx.a
	return l.intern(a)
}

// relOp is a comparison of pcap-filter.
type relOp uint8

const (
	relGT relOp = iota // >
	relGE              // >=
	relEQ              // = and ==
	relLE              // <=
	relLT              // <
	relNE              // !=
)

var relOps = map[string]relOp{">": relGT, ">=": relGE, "=": relEQ, "==": relEQ, "<=": relLE, "<": relLT, "!=": relNE}

// swapped is the comparison with its operands exchanged: a > b is b < a.
func (r relOp) swapped() relOp {
	switch r {
	case relGT:
		return relLT
	case relGE:
		return relLE
	case relLE:
		return relGE
	case relLT:
		return relGT
	}
	return r
}

func evalRel(op relOp, a, b uint32) bool {
	switch op {
	case relGT:
		return a > b
	case relGE:
		return a >= b
	case relEQ:
		return a == b
	case relLE:
		return a <= b
	case relLT:
		return a < b
	default:
		return a != b
	}
}

// relation lowers "x op y": both guards (x's first), then the comparison.
// A constant side becomes the jump's constant; otherwise the right side is
// compared in X ("jgt x").
func (l *lowerer) relation(op relOp, x, y aval) *expr {
	g := andGuard(x.guard, y.guard)
	if g == nil {
		g = exprTrue
	}
	var test *expr
	switch {
	case x.isConst() && y.isConst() && x.lit && y.lit:
		// Numbers as written: libpcap's value numbering knows them from
		// the start, and its optimiser threads jumps through the result.
		test = exprFalse
		if evalRel(op, x.a.k, y.a.k) {
			test = exprTrue
		}
	case x.isConst() && y.isConst():
		// A computed constant: libpcap folds the arithmetic only in its
		// last, statement-level pass, after all jumps have been threaded,
		// so the tests before the comparison stay, with their loads.
		// Here it is a test of a constant, which the optimiser does not
		// look into and which resolveConsts then turns into a jump.
		c, neg := jumpFor(op)
		test = mkAtom(value{mode: ldConst, off: x.a.k}, c, y.a.k)
		if neg {
			test = not(test)
		}
	case x.isConst():
		test = l.compareConst(op.swapped(), y.a, x.a.k)
	case y.isConst():
		test = l.compareConst(op, x.a, y.a.k)
	default:
		c, neg := jumpFor(op)
		test = &expr{op: eAtom, a: atom{v: valueOf(x.a), c: c, xv: y.a}}
		if neg {
			test = not(test)
		}
	}
	markUser(test)
	if g == exprTrue {
		return test
	}
	return and(g, test)
}

// markUser marks the atoms of a comparison as written by the user.
func markUser(e *expr) {
	switch e.op {
	case eAtom:
		e.a.user = true
	case eNot:
		markUser(e.l)
	}
}

// jumpFor maps a comparison to a conditional jump, negated for <=, < and
// != (classic BPF has only >, >= and ==).
func jumpFor(op relOp) (cond, bool) {
	switch op {
	case relGT:
		return jgt, false
	case relGE:
		return jge, false
	case relEQ:
		return jeq, false
	case relLE:
		return jgt, true
	case relLT:
		return jge, true
	default:
		return jeq, true
	}
}

// compareConst compares a computed value with k. Equality tests shed
// what libpcap's peephole optimiser sheds ("sub #x; jeq #y" is "jeq
// #x+y", "and #m; jeq #0" is "jset #m" negated); every load of the value
// still happens. It sheds no more: an "add" kept keeps the value apart
// from the field's, so that the optimiser settles no test that libpcap's
// does not.
func (l *lowerer) compareConst(op relOp, a *arith, k uint32) *expr {
	c, neg := jumpFor(op)
	var test *expr
	if c == jeq {
		test = l.equalConst(a, k)
	} else {
		test = mkAtom(valueOf(a), c, k)
	}
	if neg {
		return not(test)
	}
	return test
}

func (l *lowerer) equalConst(a *arith, k uint32) *expr {
	for {
		if a.op.binary() && a.r.op == opConst {
			c := a.r.k
			switch a.op {
			case opSub:
				a, k = a.l, k+c
				continue
			case opAnd:
				if k == 0 {
					return not(mkAtom(valueOf(a.l), jset, c))
				}
			}
		}
		return mkAtom(valueOf(a), jeq, k)
	}
}

// valueOf is the canonical value of a: the plain loads the primitives
// also use ("ld [k]", "ld [x+k]" after "ldxb", "ld #pktlen", each optionally
// masked) so that tests of the same field share loads and facts, or else
// the computation itself.
func valueOf(a *arith) value {
	switch a.op {
	case opLoad:
		if a.l == nil {
			if a.ihl {
				return value{mode: ldInd, size: a.size, off: a.k, xoff: a.xoff}
			}
			return value{mode: ldAbs, size: a.size, off: a.k}
		}
	case opLen:
		return value{mode: ldLen, size: 4}
	case opAnd:
		if a.r.op == opConst && a.r.k != 0 {
			if v := valueOf(a.l); v.mode != ldComp && v.mask == 0 {
				v.mask = a.r.k
				return v
			}
		}
	}
	return value{mode: ldComp, comp: a}
}
