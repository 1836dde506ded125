package bpf

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	xbpf "golang.org/x/net/bpf"

	"github.com/pktengine/pktengine/proto"
)

// SyntaxError reports an expression the compiler cannot accept: where (a
// 1-based byte column) and what was wrong or expected.
type SyntaxError struct {
	Expr   string
	Column int
	Msg    string
	// semantic marks an expression that parsed but cannot be compiled
	// (division by zero, arp inside mpls): when "(" has two readings, it
	// beats a syntax error of the other one.
	semantic bool
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("bpf: column %d: %s", e.Column, e.Msg)
}

// maxExprLen and maxDepth bound the input so that no expression can
// exhaust time or stack; anything near them would exceed MaxInstructions
// anyway.
const (
	maxExprLen = 64 << 10
	maxDepth   = 512
)

// Compile compiles a tcpdump (pcap-filter) expression for Ethernet frames.
// See docs/BPF.md for the accepted language and where it deliberately
// differs from tcpdump.
func Compile(s string, o *Options) ([]xbpf.Instruction, error) {
	e, err := parseLower(s, o, newLowerer(o))
	if err != nil {
		return nil, err
	}
	return generate(e, o.snapLen())
}

// CompileRaw is Compile followed by assembly, ready for SO_ATTACH_FILTER.
func CompileRaw(s string, o *Options) ([]xbpf.RawInstruction, error) {
	prog, err := Compile(s, o)
	if err != nil {
		return nil, err
	}
	return assemble(prog)
}

func parseLower(s string, o *Options, l *lowerer) (*expr, error) {
	p := &parser{src: s, opt: o, l: l}
	if len(s) > maxExprLen {
		return nil, p.errAt(maxExprLen, "expression longer than %d bytes", maxExprLen)
	}
	if err := p.lex(); err != nil {
		return nil, err
	}
	for _, t := range p.toks {
		if t.is("protochain") {
			l.plain = true
		}
	}
	if p.peek().kind == tkEOF {
		// tcpdump takes an empty expression as "everything".
		return exprTrue, nil
	}
	e, err := p.expr()
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tkEOF {
		return nil, p.errTok(t, "expected \"and\", \"or\" or the end of the expression, found %s", t)
	}
	return e, nil
}

type parser struct {
	src   string
	opt   *Options
	l     *lowerer
	toks  []token
	pos   int
	depth int
	// last holds the qualifiers of the previous primitive, which a bare
	// value inherits: "port 53 or 80", "host a and not b".
	last       qual
	hasLast    bool
	primitives int
	// arithFailed remembers, by token position, comparisons that did not
	// parse, so that trying "(" first as arithmetic and then as a
	// parenthesised expression stays linear.
	arithFailed map[int]error
}

func (p *parser) errAt(col int, format string, args ...any) error {
	return &SyntaxError{Expr: p.src, Column: col, Msg: fmt.Sprintf(format, args...)}
}

func (p *parser) errTok(t token, format string, args ...any) error {
	return p.errAt(t.col, format, args...)
}

func (p *parser) peek() token { return p.toks[p.pos] }

func (p *parser) peekAt(k int) token {
	if p.pos+k < len(p.toks) {
		return p.toks[p.pos+k]
	}
	return p.toks[len(p.toks)-1]
}

func (p *parser) next() token {
	t := p.toks[p.pos]
	if t.kind != tkEOF {
		p.pos++
	}
	return t
}

func isAnd(t token) bool { return t.kind == tkAnd || t.is("and") }
func isOr(t token) bool  { return t.kind == tkOr || t.is("or") }
func isNot(t token) bool { return t.kind == tkNot || t.is("not") }

// expr: "and" and "or" have equal precedence and associate left to right,
// as in pcap-filter(7); "not" binds tighter.
func (p *parser) expr() (*expr, error) {
	e, err := p.unary()
	if err != nil {
		return nil, err
	}
	for {
		t := p.peek()
		switch {
		case isAnd(t):
			p.next()
			r, err := p.unary()
			if err != nil {
				return nil, err
			}
			e = and(e, r)
		case isOr(t):
			p.next()
			r, err := p.unary()
			if err != nil {
				return nil, err
			}
			e = or(e, r)
		default:
			return e, nil
		}
	}
}

func (p *parser) unary() (*expr, error) {
	p.depth++
	defer func() { p.depth-- }()
	if p.depth > maxDepth {
		return nil, p.errTok(p.peek(), "expression nested more than %d deep", maxDepth)
	}
	t := p.peek()
	if isNot(t) {
		p.next()
		e, err := p.unary()
		if err != nil {
			return nil, err
		}
		return not(e), nil
	}
	e, err := p.term()
	if err == nil && p.l.err != nil {
		err = &SyntaxError{Expr: p.src, Column: t.col, Msg: p.l.err.Error(), semantic: true}
	}
	return e, err
}

// term is a parenthesised expression, a primitive or a comparison.
func (p *parser) term() (*expr, error) {
	t := p.peek()
	switch {
	case t.kind == tkLParen || t.kind == tkWord && t.word == wNum:
		// "(" opens an expression or an arithmetic operand, and a number
		// is a value ("port 53 or 80") or one ("80 < len"): try the
		// comparison first, as yacc's lookahead would pick it.
		start, saved := p.pos, p.state()
		e, aerr := p.relationOnce()
		if aerr == nil {
			return e, nil
		}
		p.pos = start
		p.restore(saved)
		if t.kind == tkLParen {
			e, err := p.paren()
			if err != nil {
				return nil, furthest(aerr, err)
			}
			return e, nil
		}
		e, err := p.primitive()
		if err != nil {
			var se *SyntaxError
			if errors.As(aerr, &se) && se.Column == p.toks[start+1].col {
				// A lone number: it was a value, not arithmetic.
				return nil, err
			}
			return nil, furthest(aerr, err)
		}
		return e, nil
	case t.kind == tkOp && t.text == "-", t.is("len"), t.is("length"),
		t.kind == tkWord && t.word == wID && protoWords[t.text] != pDefault && p.peekAt(1).isOp("["):
		return p.relation()
	case t.kind == tkWord:
		return p.primitive()
	default:
		return nil, p.errTok(t, "expected a primitive (such as \"udp\", \"host 198.18.0.1\", \"port 53\"), a comparison, \"not\" or \"(\", found %s", t)
	}
}

func (p *parser) paren() (*expr, error) {
	open := p.next()
	e, err := p.expr()
	if err != nil {
		return nil, err
	}
	if c := p.peek(); c.kind != tkRParen {
		return nil, p.errTok(c, "expected \")\" to close the \"(\" at column %d, found %s", open.col, c)
	}
	p.next()
	return e, nil
}

// furthest picks, of two failed readings, the one that got further, or
// the one that parsed.
func furthest(a, b error) error {
	var sa, sb *SyntaxError
	if errors.As(a, &sa) && errors.As(b, &sb) && (sa.semantic || !sb.semantic && sa.Column > sb.Column) {
		return a
	}
	return b
}

type parserState struct {
	last       qual
	hasLast    bool
	primitives int
	lowerErr   error
}

func (p *parser) state() parserState { return parserState{p.last, p.hasLast, p.primitives, p.l.err} }

func (p *parser) restore(s parserState) {
	p.last, p.hasLast, p.primitives, p.l.err = s.last, s.hasLast, s.primitives, s.lowerErr
}

// relationOnce is relation, remembering failures by position.
func (p *parser) relationOnce() (*expr, error) {
	start := p.pos
	if err, ok := p.arithFailed[start]; ok {
		return nil, err
	}
	e, err := p.relation()
	if err != nil {
		if p.arithFailed == nil {
			p.arithFailed = make(map[int]error)
		}
		p.arithFailed[start] = err
	}
	return e, err
}

// relation parses "arith relop arith".
func (p *parser) relation() (*expr, error) {
	x, err := p.arith()
	if err != nil {
		return nil, err
	}
	t := p.peek()
	op, ok := relOps[t.text]
	if t.kind != tkOp || !ok {
		return nil, p.errTok(t, "expected a comparison (>, >=, =, ==, <=, <, !=) or an arithmetic operator, found %s", t)
	}
	p.next()
	y, err := p.arith()
	if err != nil {
		return nil, err
	}
	p.hasLast = false
	return p.l.relation(op, x, y), nil
}

// Arithmetic operators and their yacc precedence in libpcap's grammar.
// '%' and '^' have none: yacc then always shifts, so they take everything
// to their right ("1 + 5 % 3 + 1" is 1 + (5 % (3 + 1))), and tcpdump
// computes it that way.
var arithOps = map[string]struct {
	op   arithOp
	prec int
}{
	"|": {opOr, 1}, "&": {opAnd, 2}, "<<": {opLsh, 3}, ">>": {opRsh, 3},
	"+": {opAdd, 4}, "-": {opSub, 4}, "*": {opMul, 5}, "/": {opDiv, 5},
	"%": {opMod, 0}, "^": {opXor, 0},
}

const precUnaryMinus = 6

type arithFrame struct {
	unary bool
	op    arithOp
	prec  int
	col   int
}

type arithOperand struct {
	v   aval
	col int
}

// arith parses an arithmetic expression with the shift/reduce decisions
// of libpcap's yacc grammar.
func (p *parser) arith() (aval, error) {
	p.depth++
	defer func() { p.depth-- }()
	if p.depth > maxDepth {
		return aval{}, p.errTok(p.peek(), "expression nested more than %d deep", maxDepth)
	}
	var vals []arithOperand
	var ops []arithFrame
	reduce := func() error {
		f := ops[len(ops)-1]
		ops = ops[:len(ops)-1]
		if f.unary {
			x := vals[len(vals)-1]
			vals[len(vals)-1] = arithOperand{p.l.negate(x.v), f.col}
			return nil
		}
		x, y := vals[len(vals)-2], vals[len(vals)-1]
		vals = vals[:len(vals)-2]
		v, err := p.l.binary(f.op, x.v, y.v, y.col)
		if err != nil {
			return &SyntaxError{Expr: p.src, Column: y.col, Msg: err.Error(), semantic: true}
		}
		vals = append(vals, arithOperand{v, x.col})
		return nil
	}
	for {
		for t := p.peek(); t.isOp("-"); t = p.peek() {
			ops = append(ops, arithFrame{unary: true, prec: precUnaryMinus, col: t.col})
			p.next()
		}
		col := p.peek().col
		v, err := p.arithOperand()
		if err != nil {
			return aval{}, err
		}
		vals = append(vals, arithOperand{v, col})
		t := p.peek()
		o, ok := arithOps[t.text]
		if t.kind != tkOp || !ok {
			break
		}
		for len(ops) > 0 {
			top := ops[len(ops)-1]
			if top.prec == 0 || o.prec == 0 || top.prec < o.prec {
				break
			}
			if err := reduce(); err != nil {
				return aval{}, err
			}
		}
		ops = append(ops, arithFrame{op: o.op, prec: o.prec, col: t.col})
		p.next()
	}
	for len(ops) > 0 {
		if err := reduce(); err != nil {
			return aval{}, err
		}
	}
	return vals[0].v, nil
}

// arithOperand parses a number, "len", a parenthesised expression or
// "proto[expr]", "proto[expr:size]".
func (p *parser) arithOperand() (aval, error) {
	t := p.peek()
	switch {
	case t.kind == tkWord && t.word == wNum:
		p.next()
		return aval{a: p.l.konst(t.num), lit: true}, nil
	case t.is("len") || t.is("length"):
		p.next()
		return p.l.frameLen(), nil
	case t.kind == tkLParen:
		p.next()
		v, err := p.arith()
		if err != nil {
			return aval{}, err
		}
		if c := p.peek(); c.kind != tkRParen {
			return aval{}, p.errTok(c, "expected \")\" to close the \"(\" at column %d, found %s", t.col, c)
		}
		p.next()
		return v, nil
	case t.kind == tkWord && t.word == wID && protoWords[t.text] != pDefault && p.peekAt(1).isOp("["):
		return p.indexLoad()
	}
	return aval{}, p.errTok(t, "expected a number, \"len\", \"(\" or a packet field such as \"udp[8:2]\", found %s", t)
}

// indexLoad parses "proto[expr]" and "proto[expr:size]".
func (p *parser) indexLoad() (aval, error) {
	pt := p.next()
	pq := protoWords[pt.text]
	p.next() // "["
	idx, err := p.arith()
	if err != nil {
		return aval{}, err
	}
	size := uint8(1)
	if c := p.peek(); c.isOp(":") {
		p.next()
		st := p.peek()
		if st.kind != tkWord || st.word != wNum {
			return aval{}, p.errTok(st, "expected a size (1, 2 or 4) after \":\", found %s", st)
		}
		if st.num != 1 && st.num != 2 && st.num != 4 {
			return aval{}, p.errTok(st, "data size must be 1, 2, or 4")
		}
		p.next()
		size = uint8(st.num)
	}
	if c := p.peek(); !c.isOp("]") {
		return aval{}, p.errTok(c, "expected \"]\" to close the \"[\" of %q, found %s", pt.text, c)
	}
	p.next()
	l := p.l
	switch pq {
	case pEther:
		return l.load(layerLink, nil, idx, size), nil
	case pIP, pIP6, pARP, pRARP, pATALK, pDECNET, pLAT, pSCA, pMOPRC, pMOPDL:
		return l.load(layerNet, l.protoAbbrev(pq), idx, size), nil
	case pTCP, pUDP, pSCTP, pICMP, pIGMP, pIGRP, pPIM, pVRRP, pCARP:
		return l.load(layerTransport, l.protoAbbrev(pq), idx, size), nil
	case pICMP6:
		return l.load(layerICMP6, nil, idx, size), nil
	case pRADIO:
		return aval{}, p.errTok(pt, "radio information not present in capture")
	}
	return aval{}, p.errTok(pt, "unsupported index operation: %q has no offsets on Ethernet (tcpdump refuses it too)", pt.text)
}

// Qualifiers, as pcap-filter(7) names them.
type protoQ uint8

const (
	pDefault protoQ = iota
	pEther          // also link, ppp, slip, fddi, tr, wlan: the link layer
	pIP
	pIP6
	pARP
	pRARP
	pTCP
	pUDP
	pSCTP
	pICMP
	pICMP6
	pIGMP
	pIGRP
	pPIM
	pVRRP
	pCARP
	pAH
	pESP
	pATALK
	pAARP
	pDECNET
	pLAT
	pSCA
	pMOPRC
	pMOPDL
	pISO
	pESIS
	pISIS
	pL1
	pL2
	pIIH
	pLSP
	pSNP
	pCSNP
	pPSNP
	pCLNP
	pSTP
	pIPX
	pNETBEUI
	pRADIO
)

var protoWords = map[string]protoQ{
	"ether": pEther, "link": pEther, "ppp": pEther, "slip": pEther, "fddi": pEther, "tr": pEther, "wlan": pEther,
	"ip": pIP, "ip6": pIP6, "arp": pARP, "rarp": pRARP,
	"tcp": pTCP, "udp": pUDP, "sctp": pSCTP, "icmp": pICMP, "icmp6": pICMP6,
	"igmp": pIGMP, "igrp": pIGRP, "pim": pPIM, "vrrp": pVRRP, "carp": pCARP, "ah": pAH, "esp": pESP,
	"atalk": pATALK, "aarp": pAARP, "decnet": pDECNET, "lat": pLAT, "sca": pSCA, "moprc": pMOPRC, "mopdl": pMOPDL,
	"iso": pISO, "esis": pESIS, "es-is": pESIS, "isis": pISIS, "is-is": pISIS, "l1": pL1, "l2": pL2,
	"iih": pIIH, "lsp": pLSP, "snp": pSNP, "csnp": pCSNP, "psnp": pPSNP, "clnp": pCLNP,
	"stp": pSTP, "ipx": pIPX, "netbeui": pNETBEUI, "radio": pRADIO,
}

var protoNames = func() map[protoQ]string {
	m := map[protoQ]string{pDefault: "default", pEther: "ether", pESIS: "esis", pISIS: "isis"}
	for w, q := range protoWords {
		if _, ok := m[q]; !ok {
			m[q] = w
		}
	}
	return m
}()

func (q protoQ) String() string { return protoNames[q] }

type typeQ uint8

const (
	tDefault typeQ = iota
	tHost
	tNet
	tPort
	tPortRange
)

var typeWords = map[string]typeQ{"host": tHost, "net": tNet, "port": tPort, "portrange": tPortRange}

type qual struct {
	proto protoQ
	dir   dirKind
	typ   typeQ
}

// unsupported keywords of pcap-filter(7), named so the error is clear.
var unsupportedWords = map[string]bool{
	"gateway": true, "geneve": true, "vxlan": true,
	"type": true, "subtype": true, "dir": true, "direction": true,
	"on": true, "ifname": true, "rnr": true, "rulenum": true, "reason": true, "rset": true, "ruleset": true,
	"srnr": true, "subrulenum": true, "action": true, "ra": true, "ta": true, "addr1": true, "addr2": true,
	"addr3": true, "addr4": true, "address1": true, "address2": true, "address3": true, "address4": true,
	"lane": true, "metac": true, "bcc": true, "oam": true, "oamf4": true, "oamf4ec": true,
	"oamf4sc": true, "sc": true, "ilmic": true, "vpi": true, "vci": true, "connectmsg": true,
	"metaconnect": true, "fisu": true, "lssu": true, "lsu": true, "msu": true, "hfisu": true, "hlssu": true,
	"hmsu": true, "sio": true, "opc": true, "dpc": true, "sls": true, "hsio": true, "hopc": true,
	"hdpc": true, "hsls": true, "batadv": true,
}

func isKeyword(w string) bool {
	switch w {
	case "and", "or", "not", "src", "dst", "proto", "protochain", "less", "greater", "vlan",
		"inbound", "outbound", "broadcast", "multicast", "mask", "len", "length", "ifindex",
		"mpls", "pppoed", "pppoes", "llc", "byte":
		return true
	}
	_, p := protoWords[w]
	_, t := typeWords[w]
	return p || t || unsupportedWords[w]
}

// isKeywordTok reports whether t is a keyword (and so cannot be a value).
func isKeywordTok(t token) bool { return t.kind == tkWord && t.word == wID && isKeyword(t.text) }

func (p *parser) primitive() (*expr, error) {
	p.primitives++
	t := p.peek()
	w := t.text
	if t.word != wID {
		w = ""
	}
	switch {
	case unsupportedWords[w]:
		return nil, p.errTok(t, "%q is not supported by this compiler (see docs/BPF.md for the accepted subset)", w)
	case w == "inbound" || w == "outbound":
		p.next()
		p.hasLast = false
		if w == "inbound" {
			return not(outgoing()), nil
		}
		return outgoing(), nil
	case w == "less" || w == "greater":
		p.next()
		n, err := p.number(w, ^uint32(0))
		if err != nil {
			return nil, err
		}
		p.hasLast = false
		return length(w == "greater", n), nil
	case w == "ifindex":
		p.next()
		n, err := p.number(w, ^uint32(0))
		if err != nil {
			return nil, err
		}
		p.hasLast = false
		return cmpEq(skfAdOff+skfAdIfIndex, 4, n), nil
	case w == "vlan":
		p.next()
		id := -1
		if nt := p.peek(); nt.kind == tkWord && !isKeywordTok(nt) {
			n, err := p.number("vlan", vlanIDMask)
			if err != nil {
				return nil, err
			}
			id = int(n)
		}
		p.hasLast = false
		return p.l.vlan(id), nil
	case w == "mpls" || w == "pppoes":
		p.next()
		p.hasLast = false
		max, n := int64(0xfffff), int64(-1)
		if w == "pppoes" {
			max = 0xffff
		}
		if nt := p.peek(); nt.kind == tkWord && nt.word == wNum {
			if int64(nt.num) > max {
				return nil, p.errTok(nt, "%s %s greater than the maximum %d", map[string]string{"mpls": "MPLS label", "pppoes": "PPPoE session"}[w], nt.text, max)
			}
			p.next()
			n = int64(nt.num)
		}
		if w == "mpls" {
			return p.l.mpls(n), nil
		}
		return p.l.pppoes(n), nil
	case w == "pppoed":
		p.next()
		p.hasLast = false
		return p.l.linktype(etherTypePPPoED), nil
	case w == "llc":
		p.next()
		p.hasLast = false
		kind := ""
		if nt := p.peek(); nt.kind == tkWord && nt.word == wID && (!isKeyword(nt.text) || nt.text == "rnr") {
			kind = nt.text
			p.next()
		}
		e, ok := p.l.llc(kind)
		if !ok {
			return nil, p.errTok(p.toks[p.pos-1], "unknown LLC type name %q", kind)
		}
		return e, nil
	case w == "byte":
		p.next()
		p.hasLast = false
		off, err := p.number("byte", ^uint32(0))
		if err != nil {
			return nil, err
		}
		op := p.peek()
		if op.kind != tkOp || len(op.text) != 1 || !strings.Contains("&|<>=", op.text) {
			return nil, p.errTok(op, "expected &, |, <, > or = after \"byte %d\", found %s", off, op)
		}
		p.next()
		k, err := p.number("byte "+op.text, ^uint32(0))
		if err != nil {
			return nil, err
		}
		return p.l.byteTest(off, op.text, k), nil
	case w == "broadcast" || w == "multicast":
		return p.cast(pDefault)
	case w == "proto":
		p.next()
		return p.protoNumber(pDefault, t)
	case w == "protochain":
		p.next()
		return p.protochain(pDefault, t)
	case w == "len" || w == "length":
		return nil, p.errTok(t, "%q is a value: compare it (\"len > 1000\")", w)
	}

	var q qual
	qualified := false
	if pq, ok := protoWords[w]; ok {
		p.next()
		q.proto = pq
		qualified = true
		nt := p.peek()
		switch {
		case nt.is("proto"):
			p.next()
			return p.protoNumber(pq, nt)
		case nt.is("protochain"):
			p.next()
			return p.protochain(pq, nt)
		case nt.is("broadcast") || nt.is("multicast"):
			return p.cast(pq)
		case nt.is("src") || nt.is("dst") || nt.kind == tkWord && nt.word == wID && typeWords[nt.text] != tDefault:
			// qualifiers follow
		default:
			// A protocol on its own: "udp", "ip6", "arp".
			p.hasLast = false
			if pq == pEther {
				return nil, p.errTok(nt, "expected \"host\", \"src\", \"dst\", \"proto\", \"broadcast\", \"multicast\" or \"[\" after %q, found %s", w, nt)
			}
			if pq == pRADIO {
				return nil, p.errTok(t, "radio information not present in capture")
			}
			return p.l.protoAbbrev(pq), nil
		}
	}
	if d, ok, err := p.direction(); err != nil {
		return nil, err
	} else if ok {
		q.dir = d
		qualified = true
	}
	if nt := p.peek(); nt.kind == tkWord && nt.word == wID {
		if tq, ok := typeWords[nt.text]; ok {
			p.next()
			q.typ = tq
			qualified = true
		}
	}
	if !qualified {
		// A bare value inherits the previous primitive's qualifiers.
		if vt := p.peek(); isKeywordTok(vt) {
			return nil, p.errTok(vt, "unexpected %s", vt)
		}
		if p.hasLast {
			q = p.last
		} else if p.primitives > 1 {
			return nil, p.errTok(p.peek(), "value %s has no qualifier to inherit (write \"host\", \"port\" ... before it)", p.peek())
		}
	}
	p.last, p.hasLast = q, true
	return p.value(q)
}

// direction parses src, dst, "src or dst", "src and dst".
func (p *parser) direction() (dirKind, bool, error) {
	t := p.peek()
	if !t.is("src") && !t.is("dst") {
		return 0, false, nil
	}
	p.next()
	d := dirSrc
	if t.is("dst") {
		d = dirDst
	}
	// "src or dst" / "src and dst" form one qualifier when the other
	// direction follows the connective directly.
	c, o := p.peek(), p.peekAt(1)
	other := "dst"
	if d == dirDst {
		other = "src"
	}
	if (isOr(c) || isAnd(c)) && o.is(other) {
		p.next()
		p.next()
		if isOr(c) {
			return dirDefault, true, nil
		}
		return dirAnd, true, nil
	}
	return d, true, nil
}

// cast parses "[ether|ip|ip6] broadcast|multicast".
func (p *parser) cast(pq protoQ) (*expr, error) {
	t := p.next()
	p.hasLast = false
	bcast := t.text == "broadcast"
	switch pq {
	case pDefault, pEther:
		p.l.linkOnly(strconv.Quote(t.text))
		if bcast {
			return etherAddr(p.l.offLinkHdr, [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}), nil
		}
		return mkAtom(abs(p.l.offLinkHdr, 1), jset, 1), nil
	case pIP:
		if bcast {
			if !p.l.netmask.IsValid() {
				return nil, p.errTok(t, "netmask not known, so \"ip broadcast\" not supported (set Options.Netmask, --netmask)")
			}
			return p.l.ipBroadcast(), nil
		}
		return p.l.ipMulticast(), nil
	case pIP6:
		if !bcast {
			return p.l.ip6Multicast(), nil
		}
	}
	if bcast {
		return nil, p.errTok(t, "only link-layer and IPv4 broadcast filters are supported, not %q", pq.String()+" broadcast")
	}
	return nil, p.errTok(t, "only link-layer, IPv4 and IPv6 multicast filters are supported, not %q", pq.String()+" multicast")
}

// ipProtoNames are the names of /etc/protocols (Debian's netbase) that
// "proto \name" and "protochain \name" accept; tcpdump reads the file.
var ipProtoNames = map[string]uint8{
	"ip": 0, "hopopt": 0, "icmp": 1, "igmp": 2, "ggp": 3, "ipencap": 4, "st": 5, "tcp": 6, "egp": 8,
	"igp": 9, "pup": 12, "udp": 17, "hmp": 20, "xns-idp": 22, "rdp": 27, "iso-tp4": 29, "dccp": 33,
	"xtp": 36, "ddp": 37, "idpr-cmtp": 38, "ipv6": 41, "ipv6-route": 43, "ipv6-frag": 44, "idrp": 45,
	"rsvp": 46, "gre": 47, "esp": 50, "ah": 51, "skip": 57, "ipv6-icmp": 58, "icmp6": 58,
	"ipv6-nonxt": 59, "ipv6-opts": 60, "rspf": 73, "vmtp": 81, "eigrp": 88, "ospf": 89, "ax.25": 93,
	"ipip": 94, "etherip": 97, "encap": 98, "pim": 103, "ipcomp": 108, "vrrp": 112, "l2tp": 115,
	"isis": 124, "sctp": 132, "fc": 133, "mobility-header": 135, "udplite": 136, "mpls-in-ip": 137,
	"manet": 138, "hip": 139, "shim6": 140, "wesp": 141, "rohc": 142, "ethernet": 143,
}

// etherProtoNames are libpcap's EtherType names (eproto_db) and 802.2
// SAP names (llc_db) for "ether proto \name".
var etherProtoNames = map[string]uint16{
	"aarp": etherTypeAARP, "arp": proto.EtherTypeARP, "atalk": etherTypeATalk, "decnet": 0x6003,
	"ip": proto.EtherTypeIPv4, "ip6": proto.EtherTypeIPv6, "lat": 0x6004, "loopback": 0x9000,
	"mopdl": 0x6001, "moprc": 0x6002, "rarp": etherTypeRARP, "sca": 0x6007,
	"iso": llcSAPISONS, "stp": llcSAP8021D, "ipx": llcSAPIPX, "netbeui": llcSAPNetBEUI,
}

// protoValue reads the value of "proto" or "protochain": a number or a
// backslash-escaped name.
func (p *parser) protoValue(kw token, names func(string) (uint32, bool), max uint32) (uint32, error) {
	t := p.peek()
	switch {
	case t.kind == tkWord && t.word == wEsc:
		v, ok := names(t.text)
		if !ok {
			return 0, p.errTok(t, "unknown protocol name %q after %q", t.text, kw.text)
		}
		p.next()
		return v, nil
	case t.kind == tkWord && t.word == wNum:
		return p.number(kw.text, max)
	}
	return 0, p.errTok(t, "expected a protocol number or \\name after %q, found %s", kw.text, t)
}

func ipProtoName(s string) (uint32, bool) {
	v, ok := ipProtoNames[s]
	return uint32(v), ok
}

// protoNumber parses the value of "ip proto", "ip6 proto", "ether proto"
// and a bare "proto".
func (p *parser) protoNumber(pq protoQ, kw token) (*expr, error) {
	p.hasLast = false
	switch pq {
	case pEther:
		et, err := p.protoValue(kw, func(s string) (uint32, bool) {
			v, ok := etherProtoNames[s]
			return uint32(v), ok
		}, 0xffff)
		if err != nil {
			return nil, err
		}
		return p.l.linktype(uint16(et)), nil
	case pISO, pISIS:
		v, err := p.number(kw.text, 255)
		if err != nil {
			return nil, err
		}
		if pq == pISO {
			return p.l.isoProto(uint8(v)), nil
		}
		return and(p.l.isoProto(isoISIS), cmpEq(p.l.isoBase()+4, 1, v)), nil
	case pDefault, pIP, pIP6:
	default:
		return nil, p.errTok(kw, "\"proto\" applies to ether, ip, ip6, iso or isis, not %q", pq)
	}
	v, err := p.protoValue(kw, ipProtoName, 255)
	if err != nil {
		return nil, err
	}
	switch pq {
	case pIP:
		return p.l.ipProto(uint8(v)), nil
	case pIP6:
		return p.l.ip6Proto(uint8(v)), nil
	}
	return p.l.anyProto(uint8(v)), nil
}

// protochain parses "[ip|ip6] protochain N".
func (p *parser) protochain(pq protoQ, kw token) (*expr, error) {
	p.hasLast = false
	if pq != pDefault && pq != pIP && pq != pIP6 {
		return nil, p.errTok(kw, "\"protochain\" applies to ip or ip6, not %q", pq)
	}
	v, err := p.protoValue(kw, ipProtoName, 255)
	if err != nil {
		return nil, err
	}
	switch pq {
	case pIP:
		return p.l.protochain(false, uint8(v)), nil
	case pIP6:
		return p.l.protochain(true, uint8(v)), nil
	}
	return or(p.l.protochain(false, uint8(v)), p.l.protochain(true, uint8(v))), nil
}

// parseNum reads a number as libpcap does: decimal, 0x hexadecimal, or
// octal with a leading 0 (for the halves of a port range).
func parseNum(s string) (uint64, bool) {
	n, err := parseNumber(s)
	if err != nil {
		if strings.Contains(err.Error(), "overflows") {
			return 1 << 63, true // out of range for any caller
		}
		return 0, false
	}
	return uint64(n), true
}

func (p *parser) number(what string, max uint32) (uint32, error) {
	t := p.peek()
	if t.kind != tkWord || t.word != wNum {
		return 0, p.errTok(t, "expected a number after %q, found %s", what, t)
	}
	if t.num > max {
		return 0, p.errTok(t, "%s %s out of range (at most %d)", what, t.text, max)
	}
	p.next()
	return t.num, nil
}

// value parses what follows the qualifiers.
func (p *parser) value(q qual) (*expr, error) {
	t := p.peek()
	if t.kind != tkWord || isKeywordTok(t) {
		want := "an address"
		switch q.typ {
		case tNet:
			want = "a network (198.18.0.0/15, fd00::/8)"
		case tPort:
			want = "a port number or service name"
		case tPortRange:
			want = "a port range (low-high)"
		}
		return nil, p.errTok(t, "expected %s, found %s", want, t)
	}
	p.next()
	switch q.typ {
	case tPort, tPortRange:
		return p.portValue(q, t)
	case tNet:
		return p.netValue(q, t)
	}
	return p.hostValue(q, t)
}

// transportOf maps a port qualifier to the IP protocol (0: tcpdump's
// "any of sctp, tcp, udp").
func (p *parser) transportOf(q qual, t token) (uint8, error) {
	switch q.proto {
	case pDefault:
		return 0, nil
	case pTCP:
		return proto.IPProtoTCP, nil
	case pUDP:
		return proto.IPProtoUDP, nil
	case pSCTP:
		return ipProtoSCTP, nil
	}
	return 0, p.errTok(t, "%q cannot qualify a port (use tcp, udp or sctp)", q.proto)
}

// resolvePort turns a number or service name into a port. Names follow
// libpcap's pcap_nametoport: a name known for TCP and UDP with different
// numbers, or known for only one of them, narrows an unqualified "port" to
// that protocol.
func (p *parser) resolvePort(s string, tp uint8, t token) (uint16, uint8, error) {
	if c := s[0]; c >= '0' && c <= '9' {
		n, ok := parseNum(s)
		if !ok {
			return 0, 0, p.errTok(t, "%q is not a port number", s)
		}
		if n > 65535 {
			return 0, 0, p.errTok(t, "port %s out of range (at most 65535)", s)
		}
		return uint16(n), tp, nil
	}
	tcpPort, tcpOK := p.opt.lookupPort(s, "tcp")
	udpPort, udpOK := p.opt.lookupPort(s, "udp")
	switch tp {
	case proto.IPProtoUDP:
		if udpOK {
			return udpPort, tp, nil
		}
		if tcpOK {
			return 0, 0, p.errTok(t, "port %q is tcp", s)
		}
	case proto.IPProtoTCP:
		if tcpOK {
			return tcpPort, tp, nil
		}
		if udpOK {
			return 0, 0, p.errTok(t, "port %q is udp", s)
		}
	case ipProtoSCTP:
		if sp, ok := p.opt.lookupPort(s, "sctp"); ok {
			return sp, tp, nil
		}
		if tcpOK && (!udpOK || udpPort == tcpPort) {
			return tcpPort, tp, nil
		}
		if udpOK && !tcpOK {
			return udpPort, tp, nil
		}
	default:
		switch {
		case tcpOK && udpOK && tcpPort == udpPort:
			return tcpPort, 0, nil
		case tcpOK:
			return tcpPort, proto.IPProtoTCP, nil
		case udpOK:
			return udpPort, proto.IPProtoUDP, nil
		}
	}
	return 0, 0, p.errTok(t, "unknown port name %q (not in the services database)", s)
}

func (p *parser) portValue(q qual, t token) (*expr, error) {
	tp, err := p.transportOf(q, t)
	if err != nil {
		return nil, err
	}
	if t.word != wNum && t.word != wID && t.word != wEsc {
		return nil, p.errTok(t, "expected a port number or name, found %s", t)
	}
	if q.typ == tPort {
		if t.word == wNum {
			if t.num > 65535 {
				return nil, p.errTok(t, "port %s out of range (at most 65535)", t.text)
			}
			return p.l.port(tp, q.dir, portEq(uint16(t.num))), nil
		}
		port, tp, err := p.resolvePort(t.text, tp, t)
		if err != nil {
			return nil, err
		}
		return p.l.port(tp, q.dir, portEq(port)), nil
	}
	lo, hi, ok := strings.Cut(t.text, "-")
	if !ok || lo == "" || hi == "" {
		return nil, p.errTok(t, "expected a port range low-high, found %s", t)
	}
	p1, tp1, err := p.resolvePort(lo, tp, t)
	if err != nil {
		return nil, err
	}
	p2, tp2, err := p.resolvePort(hi, tp, t)
	if err != nil {
		return nil, err
	}
	if tp1 != tp2 {
		// libpcap's pcap_nametoportrange: names that narrow to
		// different protocols leave the range on all of them.
		tp1 = tp
	}
	return p.l.port(tp1, q.dir, portRange(p1, p2)), nil
}

// parseIPv4Prefix reads libpcap's dotted forms: a.b.c.d, or 2 or 3
// leading octets meaning the first bits of an address (10.1 is
// 10.1.0.0/16).
func parseIPv4Prefix(s string) (addr, mask uint32, ok bool) {
	parts := strings.Split(s, ".")
	if len(parts) > 4 {
		return 0, 0, false
	}
	for _, part := range parts {
		n, err := strconv.ParseUint(part, 10, 8)
		if err != nil {
			return 0, 0, false
		}
		addr = addr<<8 | uint32(n)
	}
	addr <<= 8 * uint(4-len(parts))
	mask = ^uint32(0) << (8 * uint(4-len(parts)))
	return addr, mask, true
}

// parseMAC reads an Ethernet address in any of libpcap's forms.
func parseMAC(s string) ([6]byte, bool) {
	var mac [6]byte
	var hex string
	switch {
	case strings.Count(s, ":") == 5 || strings.Count(s, "-") == 5 || strings.Count(s, ".") == 5:
		sep := s[strings.IndexAny(s, ":-.")]
		parts := strings.Split(s, string(sep))
		for _, part := range parts {
			if len(part) == 1 {
				part = "0" + part
			}
			hex += part
		}
	case strings.Count(s, ".") == 2:
		hex = strings.ReplaceAll(s, ".", "")
	default:
		hex = s
	}
	if len(hex) != 12 {
		return mac, false
	}
	for i := range mac {
		n, err := strconv.ParseUint(hex[2*i:2*i+2], 16, 8)
		if err != nil {
			return mac, false
		}
		mac[i] = byte(n)
	}
	return mac, true
}

func (p *parser) hostValue(q qual, t token) (*expr, error) {
	s := t.text
	switch t.word {
	case wMAC:
		mac, ok := parseMAC(s)
		if !ok {
			return nil, p.errTok(t, "bogus ethernet address %s", s)
		}
		if q.proto != pEther {
			return nil, p.errTok(t, "a MAC address needs \"ether\" (ether host %s)", s)
		}
		return p.l.etherHost(mac, q.dir), nil
	case wID, wEsc:
		// A name: tcpdump resolves it, so a numeric address works.
		if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" && q.proto != pEther {
			if a.Is4() {
				b := a.As4()
				return p.host4(q, t, be32(b[:]), ^uint32(0))
			}
			return p.host6(q, t, a.As16(), prefixMask128(128))
		}
	case wHID6:
		if q.proto == pEther {
			break
		}
		if p.peek().isOp("/") {
			return nil, p.errTok(p.peek(), "a prefix needs \"net\", not \"host\"")
		}
		a, err := netip.ParseAddr(s)
		if err != nil || !a.Is6() {
			return nil, p.errTok(t, "%q is not an IPv6 address", s)
		}
		return p.host6(q, t, a.As16(), prefixMask128(128))
	case wHID, wNum:
		if q.proto == pEther {
			break
		}
		if p.peek().isOp("/") {
			return nil, p.errTok(p.peek(), "%q is not an IPv4 address (use \"net\" for a prefix)", s+"/")
		}
		if t.word == wNum {
			// libpcap takes a plain number as the whole address.
			return p.host4(q, t, t.num, ^uint32(0))
		}
		addr, mask, ok := parseIPv4Prefix(s)
		if !ok {
			return nil, p.errTok(t, "%q is not an IPv4 address", s)
		}
		return p.host4(q, t, addr, mask)
	}
	if q.proto == pEther {
		return nil, p.errTok(t, "expected a MAC address (aa:bb:cc:dd:ee:ff) after \"ether\", found %s", t)
	}
	return nil, p.errTok(t, "host names are not resolved: give an IPv4, IPv6 or MAC address instead of %s", t)
}

func (p *parser) host4(q qual, t token, addr, mask uint32) (*expr, error) {
	switch q.proto {
	case pDefault:
		return p.l.anyHost4(addr, mask, q.dir), nil
	case pIP:
		return p.l.ipv4Host(addr, mask, q.dir), nil
	case pARP:
		return p.l.arpHost(proto.EtherTypeARP, addr, mask, q.dir), nil
	case pRARP:
		return p.l.arpHost(etherTypeRARP, addr, mask, q.dir), nil
	}
	return nil, p.errTok(t, "%q cannot qualify an IPv4 host or net", q.proto)
}

func (p *parser) host6(q qual, t token, addr, mask [16]byte) (*expr, error) {
	if q.proto != pDefault && q.proto != pIP6 {
		return nil, p.errTok(t, "%q cannot qualify an IPv6 host or net", q.proto)
	}
	return p.l.ipv6Host(addr, mask, q.dir), nil
}

// prefixLen parses the "/len" after a network address, if there is one.
func (p *parser) prefixLen(max int) (int, bool, error) {
	if !p.peek().isOp("/") {
		return 0, false, nil
	}
	p.next()
	n, err := p.number("/", uint32(max))
	if err != nil {
		return 0, false, err
	}
	return int(n), true, nil
}

func (p *parser) netValue(q qual, t token) (*expr, error) {
	s := t.text
	switch t.word {
	case wHID6:
		a, err := netip.ParseAddr(s)
		if err != nil || !a.Is6() {
			return nil, p.errTok(t, "%q is not an IPv6 network (fd00::/8)", s)
		}
		bits, has, err := p.prefixLen(128)
		if err != nil {
			return nil, err
		}
		if !has {
			bits = 128
		}
		pfx := netip.PrefixFrom(a, bits)
		if pfx.Masked() != pfx {
			return nil, p.errTok(t, "non-network bits set in \"%s/%d\"", s, bits)
		}
		return p.host6(q, t, pfx.Addr().As16(), prefixMask128(bits))
	case wNum:
		// libpcap promotes a short network number: 10 is 10.0.0.0/8.
		addr, mask := t.num, ^uint32(0)
		for addr != 0 && addr&0xff000000 == 0 {
			addr <<= 8
			mask <<= 8
		}
		return p.host4(q, t, addr, mask)
	case wHID:
	default:
		return nil, p.errTok(t, "%q is not a network (198.18.0.0/15, 10, 10.1, fd00::/8)", s)
	}
	addr, mask, ok := parseIPv4Prefix(s)
	if !ok {
		return nil, p.errTok(t, "%q is not an IPv4 network (198.18.0.0/15, 10, 10.1)", s)
	}
	what := s
	if bits, has, err := p.prefixLen(32); err != nil {
		return nil, err
	} else if has {
		mask = prefixMask32(bits)
		what = fmt.Sprintf("%s/%d", s, bits)
	} else if p.peek().is("mask") {
		p.next()
		mt := p.peek()
		m, _, mok := parseIPv4Prefix(mt.text)
		if mt.kind != tkWord || mt.word != wHID || !mok {
			return nil, p.errTok(mt, "expected a dotted IPv4 mask after \"mask\", found %s", mt)
		}
		p.next()
		mask = m
		what = s + " mask " + mt.text
	}
	if addr&^mask != 0 {
		return nil, p.errTok(t, "non-network bits set in %q", what)
	}
	return p.host4(q, t, addr, mask)
}
