package bpf

import (
	"errors"
	"fmt"

	xbpf "golang.org/x/net/bpf"
)

// MaxInstructions is the kernel's limit on a classic BPF program
// (BPF_MAXINSNS). Programs that would be longer are an error, never
// truncated.
const MaxInstructions = 4096

// ErrRejectsAll is returned when an expression can match no frame at all
// (for example "ip and arp"). tcpdump refuses such expressions in the same
// way ("expression rejects all packets"); a filter that silently drops
// everything is almost always a mistake.
var ErrRejectsAll = errors.New("bpf: expression rejects all packets")

// maxNodes bounds the test graph before optimisation, so that absurd inputs
// fail fast instead of spending quadratic time in the optimiser.
const maxNodes = 4 * MaxInstructions

// node is one test in the program graph, or one of the two terminals.
type node struct {
	atom
	t, f *node
	term termKind
}

type termKind uint8

const (
	termNone termKind = iota
	termAccept
	termReject
)

type nodeKey struct {
	a    atom
	t, f *node
}

// graph builds hash-consed test nodes: two tests with the same atom and the
// same successors are the same node, and a test whose successors are equal
// is no test at all. That alone merges the shared tails libpcap's optimiser
// finds (for example the ARP and RARP halves of "host X").
type graph struct {
	accept, reject *node
	cons           map[nodeKey]*node
	made           int
	keepAll        bool // keep tests whose branches meet (unoptimised code)
}

func newGraph() *graph {
	return &graph{
		accept: &node{term: termAccept},
		reject: &node{term: termReject},
		cons:   make(map[nodeKey]*node),
	}
}

func (g *graph) mk(a atom, t, f *node) *node {
	if t == f && !g.keepAll {
		return t
	}
	k := nodeKey{a, t, f}
	if n, ok := g.cons[k]; ok {
		return n
	}
	n := &node{atom: a, t: t, f: f}
	g.cons[k] = n
	g.made++
	return n
}

// build is short-circuit code generation: e decides between t and f.
func (g *graph) build(e *expr, t, f *node) *node {
	switch e.op {
	case eTrue:
		return t
	case eFalse:
		return f
	case eAtom:
		return g.mk(e.a, t, f)
	case eAnd:
		return g.build(e.l, g.build(e.r, t, f), f)
	case eOr:
		return g.build(e.l, t, g.build(e.r, t, f))
	default: // eNot
		return g.build(e.l, f, t)
	}
}

// topo returns the test nodes reachable from root, each after all of its
// predecessors. The true successor is laid out right after its test where
// possible, which is how tcpdump's listings read.
func topo(root *node) []*node {
	var post []*node
	seen := make(map[*node]bool)
	var visit func(n *node)
	visit = func(n *node) {
		if n.term != termNone || seen[n] {
			return
		}
		seen[n] = true
		visit(n.f)
		visit(n.t)
		post = append(post, n)
	}
	visit(root)
	for i, j := 0, len(post)-1; i < j; i, j = i+1, j-1 {
		post[i], post[j] = post[j], post[i]
	}
	return post
}

// fact is the outcome of a test that has already run on the way to an edge.
type fact struct {
	a   atom
	res bool
}

// maxFacts bounds what the optimiser remembers along a path; forgetting is
// always safe, it only loses optimisation.
const maxFacts = 64

// decide reports whether facts settle atom a, and how. It knows what
// libpcap's fold_edge knows, no more: the same test gives the same result,
// and a value known to equal one constant differs from any other. A
// stronger optimiser would skip tests, and their loads, that tcpdump's
// program runs, and so reject or accept short frames differently.
func decide(facts []fact, a atom) (res, ok bool) {
	for i := len(facts) - 1; i >= 0; i-- {
		f := facts[i]
		if f.a == a {
			return f.res, true
		}
		if f.res && f.a.c == jeq && a.c == jeq && f.a.v == a.v && f.a.k != a.k &&
			f.a.xv == nil && a.xv == nil && f.a.user == a.user {
			return false, true
		}
	}
	return false, false
}

// intersect keeps the facts of a that are also in b.
func intersect(a, b []fact) []fact {
	out := a[:0:0]
	for _, f := range a {
		for _, g := range b {
			if f == g {
				out = append(out, f)
				break
			}
		}
	}
	return out
}

func withFact(in []fact, f fact) []fact {
	if len(in) >= maxFacts {
		in = in[len(in)-maxFacts+1:]
	}
	out := make([]fact, len(in), len(in)+1)
	copy(out, in)
	return append(out, f)
}

// thread is libpcap's jump threading: an edge whose target test is already
// decided by the tests on every path to that edge jumps straight past it.
// Only tests that ran can supply facts, so a skipped test's load has always
// succeeded before: threading never hides a short frame's rejection.
func thread(root *node) (changed bool) {
	in := make(map[*node][]fact)
	in[root] = nil
	for _, n := range topo(root) {
		facts, reached := in[n]
		if !reached {
			continue
		}
		for _, res := range [2]bool{true, false} {
			succ := &n.f
			if res {
				succ = &n.t
			}
			ef := withFact(facts, fact{n.atom, res})
			s := *succ
			for s.term == termNone {
				r, ok := decide(ef, s.atom)
				if !ok {
					break
				}
				if r {
					s = s.t
				} else {
					s = s.f
				}
			}
			if s != *succ {
				*succ = s
				changed = true
			}
			if s.term != termNone {
				continue
			}
			if old, ok := in[s]; ok {
				in[s] = intersect(old, ef)
			} else {
				in[s] = ef
			}
		}
	}
	return changed
}

// rebuild re-hash-conses the graph after threading moved edges, merging
// tests that became identical and dropping tests whose branches now meet.
func (g *graph) rebuild(root *node) *node {
	g.cons = make(map[nodeKey]*node)
	memo := make(map[*node]*node)
	var rb func(n *node) *node
	rb = func(n *node) *node {
		if n.term != termNone {
			return n
		}
		if m, ok := memo[n]; ok {
			return m
		}
		m := g.mk(n.atom, rb(n.t), rb(n.f))
		memo[n] = m
		return m
	}
	return rb(root)
}

// maxPullups bounds the chain reordering below; libpcap's optimiser is
// known to cycle on some inputs, and ours must always stop.
const maxPullups = 256

func (g *graph) optimize(root *node) *node {
	pulls := 0
	for i := 0; i < 64; i++ {
		changed := thread(root)
		before := len(topo(root))
		root = g.rebuild(root)
		if changed || len(topo(root)) != before {
			continue
		}
		if pulls >= maxPullups || !pullup(root) {
			break
		}
		pulls++
		root = g.rebuild(root)
	}
	return root
}

// dominators returns, for the test nodes reachable from root in
// topological order, each one's immediate dominator (root's is itself).
func dominators(order []*node) (idom map[*node]*node, preds map[*node][]*node) {
	rank := make(map[*node]int, len(order))
	for i, n := range order {
		rank[n] = i
	}
	preds = make(map[*node][]*node, len(order))
	for _, n := range order {
		for _, s := range [2]*node{n.t, n.f} {
			if s.term == termNone && (len(preds[s]) == 0 || preds[s][len(preds[s])-1] != n) {
				preds[s] = append(preds[s], n)
			}
		}
	}
	idom = make(map[*node]*node, len(order))
	idom[order[0]] = order[0]
	for _, n := range order[1:] {
		var d *node
		for _, p := range preds[n] {
			if d == nil {
				d = p
				continue
			}
			a, b := d, p
			for a != b {
				for rank[a] > rank[b] {
					a = idom[a]
				}
				for rank[b] > rank[a] {
					b = idom[b]
				}
			}
			d = a
		}
		idom[n] = d
	}
	return idom, preds
}

func dominates(idom map[*node]*node, a, b *node) bool {
	for {
		if a == b {
			return true
		}
		up := idom[b]
		if up == b {
			return false
		}
		b = up
	}
}

// pullup is libpcap's or_pullup and and_pullup. In a chain of tests that
// share their true target (an "or" chain; for "and", their false target),
// a test of the value the accumulator already holds on entry is moved up
// to the head of the chain, where it needs no load. "port 53 or 80" then
// tests [54] against both ports before loading [56].
//
// It runs once per call, on the first chain it can improve. It reorders
// tests, which changes which of them a truncated frame fails on; doing
// what tcpdump does keeps our verdicts on such frames equal to tcpdump's.
func pullup(root *node) bool {
	order := topo(root)
	if len(order) < 3 {
		return false
	}
	idom, preds := dominators(order)
	for _, orChain := range [2]bool{true, false} {
		for _, b := range order {
			if pullChain(b, orChain, idom, preds[b]) {
				return true
			}
		}
	}
	return false
}

func pullChain(b *node, orChain bool, idom map[*node]*node, ps []*node) bool {
	if len(ps) == 0 {
		return false
	}
	val := ps[0].v
	for _, p := range ps[1:] {
		if p.v != val {
			return false
		}
	}
	next := func(n *node) **node {
		if orChain {
			return &n.f
		}
		return &n.t
	}
	exit := func(n *node) *node {
		if orChain {
			return n.t
		}
		return n.f
	}
	diffp := &ps[0].t
	if ps[0].t != b {
		diffp = &ps[0].f
	}
	atTop := true
	for {
		d := *diffp
		if d.term != termNone || exit(d) != exit(b) || !dominates(idom, b, d) {
			return false
		}
		if d.v != val {
			break
		}
		diffp = next(d)
		atTop = false
	}
	samep := next(*diffp)
	for {
		s := *samep
		if s.term != termNone || exit(s) != exit(b) || !dominates(idom, b, s) {
			return false
		}
		if s.v == val {
			break
		}
		samep = next(s)
	}
	pull := *samep
	*samep = *next(pull)
	*next(pull) = *diffp
	if atTop {
		for _, p := range ps {
			if p.t == b {
				p.t = pull
			}
			if p.f == b {
				p.f = pull
			}
		}
	} else {
		*diffp = pull
	}
	return true
}

// content is what a register is known to hold on entry to a test.
type content struct {
	known bool
	v     value
}

type layoutNode struct {
	n          *node
	pre        []xbpf.Instruction // what puts the value (and X) in place
	trampT     bool               // true branch goes through a "ja" after the test
	trampF     bool
	pos        int
	size       int
	aOut, xOut content
}

// emit lays the graph out as classic BPF with accept returning snap.
// prefix, if set, is a test whose loads run first, without its jump.
// plain marks unoptimised code.
func emit(root *node, snap uint32, prefix *atom, plain bool) ([]xbpf.Instruction, error) {
	switch root.term {
	case termAccept:
		return []xbpf.Instruction{xbpf.RetConstant{Val: snap}}, nil
	case termReject:
		return nil, ErrRejectsAll
	}
	order := topo(root)
	idx := make(map[*node]int, len(order))
	for i, n := range order {
		idx[n] = i
	}
	preds := make([][]int, len(order))
	for i, n := range order {
		for _, s := range [2]*node{n.t, n.f} {
			if s.term == termNone {
				preds[idx[s]] = append(preds[idx[s]], i)
			}
		}
	}
	ls := make([]layoutNode, len(order))
	gen := acode{plain: plain}
	var pre []xbpf.Instruction
	var entryA, entryX content
	if prefix != nil {
		var err error
		if pre, err = gen.prologue(*prefix, content{}, content{}); err != nil {
			return nil, err
		}
		entryA, entryX = content{true, prefix.v}, gen.x
	}
	for i, n := range order {
		ain, xin := entryA, entryX
		for j, p := range preds[i] {
			a, x := ls[p].aOut, ls[p].xOut
			if j == 0 {
				ain, xin = a, x
				continue
			}
			if ain != a {
				ain = content{}
			}
			if xin != x {
				xin = content{}
			}
		}
		l := &ls[i]
		l.n = n
		if n.v.mode == ldConst {
			// A settled test: one "ja" (resolveConsts).
			l.aOut, l.xOut = ain, xin
			continue
		}
		pre, err := gen.prologue(n.atom, ain, xin)
		if err != nil {
			return nil, err
		}
		l.pre, l.aOut, l.xOut = pre, content{true, n.v}, gen.x
	}

	// Like libpcap, share identical code: a test that loads nothing
	// compares whatever the accumulator holds, so two such tests with the
	// same constant and the same (already shared) successors are the same
	// instructions wherever they sit. Loads, and so the register contents
	// computed above, are untouched. The last copy in layout order is
	// kept, so every jump to it still goes forward.
	type tail struct {
		c    cond
		k    uint32
		xv   *arith
		t, f *node
	}
	kept := make(map[tail]int)
	alias := make([]int, len(ls))
	resolve := func(s *node) *node {
		if s.term != termNone {
			return s
		}
		return ls[alias[idx[s]]].n
	}
	for i := len(ls) - 1; i >= 0; i-- {
		alias[i] = i
		l := &ls[i]
		n := l.n
		if len(l.pre) > 0 || n.v.mode == ldConst {
			continue
		}
		key := tail{n.c, n.k, n.xv, resolve(n.t), resolve(n.f)}
		if j, ok := kept[key]; ok {
			alias[i] = j
		} else {
			kept[key] = i
		}
	}

	// Terminals follow the tests: accept, then reject.
	var useAcc, useRej bool
	for _, n := range order {
		for _, s := range [2]*node{n.t, n.f} {
			useAcc = useAcc || s.term == termAccept
			useRej = useRej || s.term == termReject
		}
	}
	// Lay out, widening branches that cannot reach with 8-bit offsets
	// into a conditional jump to a following "ja". Widening only moves
	// code further apart, so repeat until nothing changes.
	var accPos, rejPos, total int
	target := func(s *node) int {
		switch s.term {
		case termAccept:
			return accPos
		case termReject:
			return rejPos
		}
		return ls[alias[idx[s]]].pos
	}
	for {
		pos := len(pre)
		for i := range ls {
			l := &ls[i]
			l.pos = pos
			if alias[i] != i {
				l.size = 0
				continue
			}
			l.size = 1 + len(l.pre)
			for _, b := range [...]bool{l.trampT, l.trampF} {
				if b {
					l.size++
				}
			}
			pos += l.size
		}
		if useAcc {
			accPos = pos
			pos++
		}
		if useRej {
			rejPos = pos
			pos++
		}
		total = pos
		grew := false
		for i := range ls {
			l := &ls[i]
			if alias[i] != i {
				continue
			}
			if l.n.v.mode == ldConst {
				continue // "ja" reaches anywhere
			}
			jpos := l.pos + l.size - 1
			if l.trampT {
				jpos--
			}
			if l.trampF {
				jpos--
			}
			if !l.trampT && target(l.n.t)-jpos-1 > 255 {
				l.trampT, grew = true, true
			}
			if !l.trampF && target(l.n.f)-jpos-1 > 255 {
				l.trampF, grew = true, true
			}
		}
		if !grew {
			break
		}
	}
	if total > MaxInstructions {
		return nil, fmt.Errorf("bpf: program needs %d instructions, more than the kernel's limit of %d", total, MaxInstructions)
	}

	prog := make([]xbpf.Instruction, 0, total)
	prog = append(prog, pre...)
	for i := range ls {
		l := &ls[i]
		n := l.n
		if alias[i] != i {
			continue
		}
		if n.v.mode == ldConst {
			prog = append(prog, xbpf.Jump{Skip: uint32(target(n.t) - len(prog) - 1)})
			continue
		}
		prog = append(prog, l.pre...)
		jpos := len(prog)
		tt, tf := target(n.t), target(n.f)
		next := jpos + 1
		if l.trampT {
			tt = next
			next++
		}
		if l.trampF {
			tf = next
		}
		if n.xv != nil {
			prog = append(prog, xbpf.JumpIfX{
				Cond:      jumpTest(n.c),
				SkipTrue:  uint8(tt - jpos - 1),
				SkipFalse: uint8(tf - jpos - 1),
			})
		} else {
			prog = append(prog, xbpf.JumpIf{
				Cond:      jumpTest(n.c),
				Val:       n.k,
				SkipTrue:  uint8(tt - jpos - 1),
				SkipFalse: uint8(tf - jpos - 1),
			})
		}
		for _, tr := range [...]struct {
			on bool
			to *node
		}{{l.trampT, n.t}, {l.trampF, n.f}} {
			if tr.on {
				p := len(prog)
				prog = append(prog, xbpf.Jump{Skip: uint32(target(tr.to) - p - 1)})
			}
		}
	}
	if useAcc {
		prog = append(prog, xbpf.RetConstant{Val: snap})
	}
	if useRej {
		prog = append(prog, xbpf.RetConstant{Val: 0})
	}
	return prog, nil
}

func jumpTest(c cond) xbpf.JumpTest {
	switch c {
	case jeq:
		return xbpf.JumpEqual
	case jgt:
		return xbpf.JumpGreaterThan
	case jge:
		return xbpf.JumpGreaterOrEqual
	default:
		return xbpf.JumpBitsSet
	}
}

// generate compiles a lowered tree to an optimised program, or to a plain
// one when the tree has a protochain test: libpcap turns its optimiser off
// for such an expression (its protochain loop jumps backwards, which the
// optimiser cannot handle), and verdicts on short frames depend on which
// loads the optimiser removes.
func generate(e *expr, snap uint32) ([]xbpf.Instruction, error) {
	if hasChain(e) {
		return generatePlain(e, snap)
	}
	return generateWith(e, snap, true)
}

// generatePlain is libpcap's unoptimised code: every test stays, even one
// whose branches meet (its load can still fail), and an expression that
// matches nothing is a program that returns 0, not an error.
func generatePlain(e *expr, snap uint32) ([]xbpf.Instruction, error) {
	if n := countAtoms(e, 0); n > maxNodes {
		return nil, fmt.Errorf("bpf: expression too large (%d tests; the kernel accepts at most %d instructions)", n, MaxInstructions)
	}
	g := newGraph()
	g.keepAll = true
	root := resolveConsts(g.build(e, g.accept, g.reject))
	if root.term == termReject {
		return []xbpf.Instruction{xbpf.RetConstant{Val: 0}}, nil
	}
	return emit(root, snap, nil, true)
}

// decided is where a test of a constant goes.
func (n *node) decided() *node {
	x := n.v.off
	var r bool
	switch n.c {
	case jeq:
		r = x == n.k
	case jgt:
		r = x > n.k
	case jge:
		r = x >= n.k
	default:
		r = x&n.k != 0
	}
	if r {
		return n.t
	}
	return n.f
}

// resolveConsts settles the tests of constants once the optimiser is
// done, as libpcap's last pass does: each becomes a jump to where its
// result leads (the code behind the other branch is dropped), and the
// program starts after any at its head (libpcap's opt_root).
func resolveConsts(root *node) *node {
	for _, n := range topo(root) {
		if n.v.mode == ldConst {
			d := n.decided()
			n.t, n.f = d, d
		}
	}
	for root.term == termNone && root.v.mode == ldConst {
		root = root.t
	}
	return root
}

// firstAtom is the test e starts with (libpcap's root block), if any.
func firstAtom(e *expr) *atom {
	for {
		switch e.op {
		case eAtom:
			return &e.a
		case eAnd, eOr, eNot:
			e = e.l
		default:
			return nil
		}
	}
}

// hasChain reports whether e has a protochain test.
func hasChain(e *expr) bool {
	for e != nil {
		switch e.op {
		case eAtom:
			return e.a.v.mode == ldComp && e.a.v.comp.op == opChain
		case eAnd, eOr:
			if hasChain(e.l) {
				return true
			}
			e = e.r
		case eNot:
			e = e.l
		default:
			return false
		}
	}
	return false
}

// generateWith can skip optimisation, for tests that check the optimiser
// against plain short-circuit code.
func generateWith(e *expr, snap uint32, optimize bool) ([]xbpf.Instruction, error) {
	if n := countAtoms(e, 0); n > maxNodes {
		return nil, fmt.Errorf("bpf: expression too large (%d tests; the kernel accepts at most %d instructions)", n, MaxInstructions)
	}
	g := newGraph()
	root := g.build(e, g.accept, g.reject)
	var prefix *atom
	if optimize {
		root = resolveConsts(g.optimize(root))
		if first := firstAtom(e); first != nil && first.v.mode != ldConst && root.term == termNone && root.atom != *first {
			// libpcap's opt_root: when the first test's branches meet,
			// the program starts at its successor, but the first test's
			// loads stay (and can still reject a short frame). Only a
			// program that is a single "ret" drops them.
			prefix = first
		}
	} else {
		root = resolveConsts(root)
	}
	return emit(root, snap, prefix, !optimize)
}

func countAtoms(e *expr, n int) int {
	for e != nil && n <= maxNodes {
		switch e.op {
		case eAtom:
			return n + 1
		case eAnd, eOr:
			n = countAtoms(e.l, n)
			e = e.r
		case eNot:
			e = e.l
		default:
			return n
		}
	}
	return n
}
