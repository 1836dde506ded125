package bpf

// The compiler works in two stages. Lowering (lower.go) turns a Filter or a
// parsed expression into a boolean tree of atoms, each one "load a value,
// compare it with a constant". Code generation (codegen.go) turns that tree
// into a graph of tests, optimises the graph and lays it out as classic BPF.

// loadMode says how an atom's value reaches the accumulator.
type loadMode uint8

const (
	ldAbs   loadMode = iota // ld[b|h] [off]; also Linux ancillary data at SKF_AD_OFF+n
	ldInd                   // ld[b|h] [x + off], X = 4*([xoff]&0xf): IPv4 header length
	ldLen                   // ld #pktlen
	ldComp                  // a computation (value.comp): arithmetic, protochain
	ldMsh                   // ldxb 4*([off]&0xf); only ever in X
	ldConst                 // the constant off: a comparison of constants (see lowerer.relation)
)

// value is what the accumulator holds when an atom compares it: a packet
// load, optionally masked with "and #mask" (mask 0 means no mask), or a
// computation.
type value struct {
	mode loadMode
	size uint8 // 1, 2 or 4 bytes
	off  uint32
	xoff uint32 // ldInd only: offset of the byte whose low nibble sets X
	mask uint32
	comp *arith // ldComp only: interned, so equal computations are equal values
}

// unmasked is the same load without its mask.
func (v value) unmasked() value { v.mask = 0; return v }

// cond is a classic BPF conditional jump against a constant.
type cond uint8

const (
	jeq  cond = iota // A == k
	jgt              // A > k
	jge              // A >= k
	jset             // A & k != 0
)

// atom is one test: does the value satisfy cond k? With xv set, the value
// is compared with xv's value (in X) instead of k. user marks a comparison
// written in the expression ("ip[9] = 17"), which libpcap's optimiser sees
// as a different value from the same field loaded by a primitive ("ip
// proto 17"): the two never settle each other (codegen.go, decide).
type atom struct {
	v    value
	c    cond
	k    uint32
	xv   *arith
	user bool
}

type exprOp uint8

const (
	eFalse exprOp = iota
	eTrue
	eAtom
	eAnd
	eOr
	eNot
)

// expr is a boolean tree of atoms.
type expr struct {
	op   exprOp
	a    atom
	l, r *expr
}

var (
	exprTrue  = &expr{op: eTrue}
	exprFalse = &expr{op: eFalse}
)

func mkAtom(v value, c cond, k uint32) *expr { return &expr{op: eAtom, a: atom{v: v, c: c, k: k}} }

func and(l, r *expr) *expr { return &expr{op: eAnd, l: l, r: r} }

func or(l, r *expr) *expr { return &expr{op: eOr, l: l, r: r} }

func not(e *expr) *expr { return &expr{op: eNot, l: e} }

// orAll folds left to right, as libpcap's gen_or chains do.
func orAll(es ...*expr) *expr {
	r := es[0]
	for _, e := range es[1:] {
		r = or(r, e)
	}
	return r
}
