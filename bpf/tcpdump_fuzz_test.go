package bpf

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"github.com/pktengine/pktengine/internal/labtest"
)

// FuzzTcpdump generates a random pcap-filter expression from the grammar
// (the fuzzer's input is the generator's seed), compiles it with
// pktengine and with tcpdump, and compares their verdicts on the corpus
// and on random mutations of it. Both must refuse the same expressions.
// Without tcpdump it skips, except under CI=true. make fuzz runs it for
// long; seeds run with the unit tests.
func FuzzTcpdump(f *testing.F) {
	for seed := uint64(1); seed <= 12; seed++ {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, seed uint64) {
		labtest.NeedTool(t, "tcpdump")
		r := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
		g := &exprGen{r: r}
		expr := g.expr(3)
		checkAgainstTcpdump(t, expr, fuzzFrames(t, r))
	})
}

var fuzzCorpus struct {
	once   sync.Once
	frames []testFrame
}

// fuzzFrames is the corpus plus 64 frames made from it by changing random
// bytes in the first 80 and cutting at random lengths.
func fuzzFrames(t testing.TB, r *rand.Rand) []testFrame {
	fuzzCorpus.once.Do(func() { fuzzCorpus.frames = corpus(t) })
	base := fuzzCorpus.frames
	out := append([]testFrame(nil), base...)
	for i := 0; i < 64; i++ {
		b := append([]byte(nil), base[r.IntN(len(base))].b...)
		for j := r.IntN(4); j >= 0 && len(b) > 0; j-- {
			b[r.IntN(min(len(b), 80))] = byte(r.Uint32())
		}
		if r.IntN(3) == 0 && len(b) > 0 {
			b = b[:r.IntN(len(b))]
		}
		out = append(out, testFrame{fmt.Sprintf("random#%d", i), b})
	}
	return out
}

// checkAgainstTcpdump compiles expr with both compilers and compares.
func checkAgainstTcpdump(t *testing.T, expr string, frames []testFrame) {
	theirs, terr := tcpdumpProgram(t, expr)
	ours, oerr := CompileRaw(expr, tcpdumpOptions())
	if terr != nil || oerr != nil {
		if terr != nil && oerr != nil {
			return
		}
		if errors.Is(oerr, ErrRejectsAll) {
			// We prove more contradictions than libpcap's optimiser
			// ("len > 64 and len < 65"); tcpdump's program must then
			// reject everything too.
			tv := newVM(t, theirs)
			for _, f := range frames {
				if ok, err := tv.try(t, f.b, meta{}); err == nil && ok {
					t.Fatalf("%q: we say it rejects all packets, tcpdump's program accepts %s\n%s", expr, f.name, formatD(theirs))
				}
			}
			return
		}
		t.Fatalf("%q: tcpdump error %v, ours %v", expr, terr, oerr)
	}
	tv, ov := newVM(t, theirs), newVM(t, ours)
	for _, f := range frames {
		if !comparable(expr, f.b) {
			continue
		}
		want, err := tv.try(t, f.b, meta{})
		if errors.Is(err, errLoop) {
			continue
		}
		if err != nil {
			t.Fatalf("%q: tcpdump's program: %v", expr, err)
		}
		if got := ov.run(t, f.b, meta{}); got != want {
			t.Fatalf("%q on %s (%d bytes): ours %v, tcpdump %v\n% x\nours:\n%stcpdump:\n%s",
				expr, f.name, len(f.b), got, want, f.b, formatD(ours), formatD(theirs))
		}
	}
}

// exprGen writes random expressions of the grammar. Arithmetic is built
// as a tree and printed with only the parentheses yacc's precedence needs
// (sometimes more), so that the tree is how both parsers read the text.
//
// Linux metadata (inbound, ifindex) is left out: libpcap reads it
// relative to the link-layer header, so after "pppoes" it reads other
// fields (docs/BPF.md); the differential test covers it.
//
// Two libpcap bugs are avoided rather than reproduced (docs/BPF.md): the
// protocol test of the right operand of an arithmetic operator is dropped
// ("1 + udp[0]" tests no protocol), and a divisor or shift count is
// refused when the first instruction computing it loads the constant 0 (or
// more than 31), as in "x / (ip[0] + 1)". So a comparison uses one
// protocol's fields (and ether's), with that protocol's test kept, and a
// divisor whose first constant is 0 is not written.
type exprGen struct {
	r *rand.Rand
}

func (g *exprGen) pick(s ...string) string { return s[g.r.IntN(len(s))] }

func (g *exprGen) expr(depth int) string {
	e := g.term(depth)
	for n := g.r.IntN(3); n > 0 && depth > 0; n-- {
		e += " " + g.pick("and", "or", "&&", "||") + " " + g.term(depth-1)
	}
	return e
}

func (g *exprGen) term(depth int) string {
	switch k := g.r.IntN(10); {
	case k == 0 && depth > 0:
		return g.pick("not ", "!") + g.term(depth-1)
	case k == 1 && depth > 0:
		return "(" + g.expr(depth-1) + ")"
	case k <= 4:
		return g.primitive()
	default:
		return g.relation()
	}
}

var fuzzPrimitives = []string{
	"udp", "tcp", "ip", "ip6", "icmp", "icmp6", "arp", "sctp", "igmp", "pim", "vrrp", "ah", "esp",
	"port 53", "udp port 7", "tcp port 80", "host 198.18.0.1", "dst host fd00::1", "net 10.0.0.0/8",
	"src net 198.18.0.0/15", "portrange 10-20", "ip multicast", "ip6 multicast", "ip broadcast",
	"ether multicast", "ether broadcast", "vlan", "vlan 10", "less 60", "greater 100",
	"ip proto 17", "ip6 proto 58", "ipx", "iso", "stp", "atalk", "isis", "l1", "netbeui",
	"protochain 17", "ip6 protochain 6", "ip protochain 1", "ether proto 0x809b", "ether host 02:00:00:00:00:01",
	"mpls", "mpls 2", "pppoes", "pppoes 3", "pppoed", "llc", "llc u", "llc rr", "iso proto 0x83", "byte 12 = 8",
}

func (g *exprGen) primitive() string { return fuzzPrimitives[g.r.IntN(len(fuzzPrimitives))] }

// arith is a generated arithmetic expression.
type garith struct {
	kind  string // "num", "len", "load", "neg", "bin"
	text  string // the number as written, or the protocol of a load
	op    string
	size  int
	l, r  *garith
	value uint32 // num
}

var (
	// fuzzLayers maps a protocol with fields to the protocols whose fields
	// may share a comparison with it (their tests are implied by its).
	fuzzLayers = map[string][]string{
		"ether": {"ether"}, "ip": {"ip", "ether"}, "ip6": {"ip6", "ether"}, "arp": {"arp", "ether"},
		"tcp": {"tcp", "ip", "ether"}, "udp": {"udp", "ip", "ether"}, "icmp": {"icmp", "ip", "ether"},
		"sctp": {"sctp", "ip"}, "igmp": {"igmp", "ip"}, "pim": {"pim", "ip"}, "vrrp": {"vrrp", "ip"},
		"icmp6": {"icmp6", "ip6", "ether"},
	}
	fuzzProtos = []string{"ether", "ip", "ip6", "arp", "tcp", "udp", "icmp", "sctp", "igmp", "pim", "vrrp", "icmp6"}
	// implied is what a protocol's test includes.
	implied = map[string]string{"tcp": "ip", "udp": "ip", "icmp": "ip", "sctp": "ip", "igmp": "ip",
		"pim": "ip", "vrrp": "ip", "icmp6": "ip6"}
	arithPrec = map[string]int{"|": 1, "&": 2, "<<": 3, ">>": 3, "+": 4, "-": 4, "*": 5, "/": 5, "%": 0, "^": 0}
)

func (g *exprGen) relation() string {
	for {
		p := fuzzProtos[g.r.IntN(len(fuzzProtos))]
		x, y := g.arith(p, 3), g.arith(p, 2)
		if g.r.IntN(3) == 0 {
			y = &garith{kind: "num", text: g.number(), value: 0}
			y.value = numValue(y.text)
		}
		if !guardsKept(x, y) || !literalsOK(x) || !literalsOK(y) {
			continue
		}
		return g.render(x, "", false) + " " + g.pick(">", ">=", "=", "==", "<=", "<", "!=") + " " + g.render(y, "", false)
	}
}

func (g *exprGen) number() string {
	switch g.r.IntN(8) {
	case 0:
		return fmt.Sprintf("%#x", g.r.Uint32()>>g.r.IntN(32))
	case 1:
		return fmt.Sprintf("0%o", g.r.IntN(512))
	case 2:
		return g.pick("tcpflags", "tcp-syn", "tcp-ack", "tcp-fin", "tcp-rst", "icmptype", "icmpcode",
			"icmp-echo", "icmp-echoreply", "icmp-unreach", "icmp6type", "icmp6-echo", "icmp6-neighborsolicit")
	case 3:
		return g.pick("0", "1", "2", "4", "31", "32", "255", "65535", "4294967295")
	}
	return fmt.Sprint(g.r.IntN(100))
}

func numValue(s string) uint32 {
	if v, ok := namedNumbers[s]; ok {
		return v
	}
	n, err := parseNumber(s)
	if err != nil {
		panic(err)
	}
	return n
}

func (g *exprGen) arith(p string, depth int) *garith {
	k := g.r.IntN(10)
	if depth == 0 {
		k %= 4
	}
	switch {
	case k == 0:
		s := g.number()
		return &garith{kind: "num", text: s, value: numValue(s)}
	case k == 1:
		return &garith{kind: "len"}
	case k <= 4:
		layers := fuzzLayers[p]
		q := layers[g.r.IntN(len(layers))]
		if g.r.IntN(2) == 0 {
			q = p
		}
		var idx *garith
		if depth > 1 && g.r.IntN(4) == 0 {
			idx = g.arith(p, depth-2)
		} else {
			n := g.r.IntN(60)
			if g.r.IntN(10) == 0 {
				n = -1 - g.r.IntN(20)
			}
			idx = &garith{kind: "num", text: fmt.Sprint(n), value: uint32(n)}
			if n < 0 {
				idx = &garith{kind: "neg", l: &garith{kind: "num", text: fmt.Sprint(-n), value: uint32(-n)}}
			}
		}
		size := []int{0, 1, 2, 4}[g.r.IntN(4)]
		return &garith{kind: "load", text: q, size: size, l: idx}
	case k == 5:
		return &garith{kind: "neg", l: g.arith(p, depth-1)}
	}
	op := g.pick("+", "-", "*", "/", "%", "&", "|", "^", "<<", ">>")
	return &garith{kind: "bin", op: op, l: g.arith(p, depth-1), r: g.arith(p, depth-1)}
}

// guardsKept reports whether libpcap keeps a protocol test for every
// field the comparison reads: it keeps the tests of a load's index and of
// the left operand of each operator, and drops the right operand's.
func guardsKept(x, y *garith) bool {
	kept := map[string]bool{}
	pcapGuards(x, kept)
	pcapGuards(y, kept)
	for q := range kept {
		if n, ok := implied[q]; ok {
			kept[n] = true
		}
	}
	all := map[string]bool{}
	allGuards(x, all)
	allGuards(y, all)
	for q := range all {
		if q != "ether" && !kept[q] {
			return false
		}
	}
	return true
}

func pcapGuards(a *garith, out map[string]bool) {
	switch a.kind {
	case "load":
		pcapGuards(a.l, out)
		out[a.text] = true
	case "neg", "bin":
		pcapGuards(a.l, out)
	}
}

func allGuards(a *garith, out map[string]bool) {
	switch a.kind {
	case "load":
		allGuards(a.l, out)
		out[a.text] = true
	case "neg":
		allGuards(a.l, out)
	case "bin":
		allGuards(a.l, out)
		allGuards(a.r, out)
	}
}

// literalsOK avoids libpcap's check of the first constant loaded when
// computing a divisor or shift count (gen_arth looks at the first
// instruction of the operand's code, which for "ip[0] + 1" loads the
// index 0).
func literalsOK(a *garith) bool {
	switch a.kind {
	case "load", "neg":
		return literalsOK(a.l)
	case "bin":
		if !literalsOK(a.l) || !literalsOK(a.r) {
			return false
		}
		if a.r.kind == "num" {
			return true // a literal: both compilers check it
		}
		if k, ok := firstConst(a.r); ok {
			switch a.op {
			case "/", "%":
				return k != 0
			case "<<", ">>":
				return k <= 31
			}
		}
	}
	return true
}

func firstConst(a *garith) (uint32, bool) {
	switch a.kind {
	case "num":
		return a.value, true
	case "load":
		if a.l.kind == "num" {
			return a.l.value, true
		}
		return firstConst(a.l)
	case "neg", "bin":
		return firstConst(a.l)
	}
	return 0, false
}

// render prints a with the parentheses yacc needs to read it as the
// tree, and sometimes more. parent is the operator a is an operand of
// ("" at the top), left whether it is the left one. '%' and '^' have no
// precedence in libpcap's grammar, so yacc shifts on them: they take
// everything to their right, and a left operand of theirs needs
// parentheses.
func (g *exprGen) render(a *garith, parent string, left bool) string {
	switch a.kind {
	case "num":
		return a.text
	case "len":
		return g.pick("len", "length")
	case "load":
		idx := g.render(a.l, "", false)
		if a.size == 0 {
			return a.text + "[" + idx + "]"
		}
		return fmt.Sprintf("%s[%s:%d]", a.text, idx, a.size)
	case "neg":
		inner := g.render(a.l, "", false)
		if a.l.kind == "bin" || a.l.kind == "neg" {
			inner = "(" + inner + ")"
		}
		s := "-" + inner
		if parent != "" && arithPrec[parent] == 0 {
			s = "(" + s + ")"
		}
		return s
	}
	c := arithPrec[a.op]
	s := g.render(a.l, a.op, true) + " " + a.op + " " + g.render(a.r, a.op, false)
	need := false
	if parent != "" {
		p := arithPrec[parent]
		switch {
		case c == 0:
			need = true
		case p == 0:
			need = left
		case left:
			need = c < p
		default:
			need = c <= p
		}
	}
	if need || g.r.IntN(6) == 0 {
		return "(" + s + ")"
	}
	return s
}

// TestExprGenParenthesis checks the generator's printing against our
// parser on a few trees whose reading depends on precedence.
func TestExprGenParenthesis(t *testing.T) {
	g := &exprGen{r: rand.New(rand.NewPCG(1, 2))}
	for i := 0; i < 2000; i++ {
		x := g.arith("ip", 3)
		text := g.render(x, "", false)
		if strings.Contains(text, "[") || strings.Contains(text, "len") {
			continue
		}
		want, werr := evalGen(x)
		e, err := parseLower(text+" = 0", nil, newLowerer(nil))
		if werr != nil {
			if err == nil {
				t.Fatalf("%q: %v, but it compiles", text, werr)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%q: %v", text, err)
		}
		// A constant comparison is true (value 0) or false.
		if got := constTruth(e); got != (want == 0) {
			t.Fatalf("%q: parsed to %v, the tree's value is %d", text, got, want)
		}
	}
}

func evalGen(a *garith) (uint32, error) {
	switch a.kind {
	case "num":
		return a.value, nil
	case "neg":
		v, err := evalGen(a.l)
		return -v, err
	case "bin":
		x, err := evalGen(a.l)
		if err != nil {
			return 0, err
		}
		y, err := evalGen(a.r)
		if err != nil {
			return 0, err
		}
		if (a.op == "<<" || a.op == ">>") && a.r.kind == "num" && y > 31 {
			return 0, errors.New("shift")
		}
		op := map[string]arithOp{"+": opAdd, "-": opSub, "*": opMul, "/": opDiv, "%": opMod,
			"&": opAnd, "|": opOr, "^": opXor, "<<": opLsh, ">>": opRsh}[a.op]
		return foldALU(op, x, y)
	}
	return 0, errors.New("not constant")
}

// constTruth is the value of a comparison of constants: folded, or a test
// of a constant.
func constTruth(e *expr) bool {
	switch e.op {
	case eTrue:
		return true
	case eFalse:
		return false
	case eNot:
		return !constTruth(e.l)
	}
	n := &node{atom: e.a, t: &node{term: termAccept}, f: &node{term: termReject}}
	return n.decided().term == termAccept
}
