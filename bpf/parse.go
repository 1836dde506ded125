package bpf

import (
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

type tokKind uint8

const (
	tkEOF tokKind = iota
	tkWord
	tkLParen
	tkRParen
	tkNot // "!"
	tkAnd // "&&"
	tkOr  // "||"
)

type token struct {
	kind tokKind
	text string
	col  int // 1-based
}

func (t token) String() string {
	if t.kind == tkEOF {
		return "the end of the expression"
	}
	return strconv.Quote(t.text)
}

func (t token) is(word string) bool { return t.kind == tkWord && t.text == word }

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
}

func (p *parser) errAt(col int, format string, args ...any) error {
	return &SyntaxError{Expr: p.src, Column: col, Msg: fmt.Sprintf(format, args...)}
}

func (p *parser) errTok(t token, format string, args ...any) error {
	return p.errAt(t.col, format, args...)
}

func isWordByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '.' || c == ':' || c == '/' || c == '-' || c == '_' || c == '\\'
}

func (p *parser) lex() error {
	s := p.src
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '(':
			p.toks = append(p.toks, token{tkLParen, "(", i + 1})
			i++
		case c == ')':
			p.toks = append(p.toks, token{tkRParen, ")", i + 1})
			i++
		case c == '!':
			if i+1 < len(s) && s[i+1] == '=' {
				return p.errAt(i+1, "comparisons (\"!=\") are not supported")
			}
			p.toks = append(p.toks, token{tkNot, "!", i + 1})
			i++
		case c == '&' || c == '|':
			if i+1 < len(s) && s[i+1] == c {
				k := tkAnd
				if c == '|' {
					k = tkOr
				}
				p.toks = append(p.toks, token{k, s[i : i+2], i + 1})
				i += 2
				continue
			}
			return p.errAt(i+1, "expected %q, found a single %q (bitwise arithmetic is not supported)", string([]byte{c, c}), string(c))
		case isWordByte(c):
			j := i
			for j < len(s) && isWordByte(s[j]) {
				j++
			}
			p.toks = append(p.toks, token{tkWord, s[i:j], i + 1})
			i = j
		case c == '[' || c == '=' || c == '<' || c == '>' || c == '+' || c == '*' || c == '%':
			return p.errAt(i+1, "byte-offset and arithmetic expressions (proto[off], comparisons) are not supported")
		default:
			return p.errAt(i+1, "unexpected character %q", string(rune(c)))
		}
	}
	p.toks = append(p.toks, token{kind: tkEOF, col: len(s) + 1})
	return nil
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
	switch {
	case isNot(t):
		p.next()
		e, err := p.unary()
		if err != nil {
			return nil, err
		}
		return not(e), nil
	case t.kind == tkLParen:
		p.next()
		e, err := p.expr()
		if err != nil {
			return nil, err
		}
		if c := p.peek(); c.kind != tkRParen {
			return nil, p.errTok(c, "expected \")\" to close the \"(\" at column %d, found %s", t.col, c)
		}
		p.next()
		return e, nil
	case t.kind == tkWord:
		return p.primitive()
	default:
		return nil, p.errTok(t, "expected a primitive (such as \"udp\", \"host 198.18.0.1\", \"port 53\"), \"not\" or \"(\", found %s", t)
	}
}

// Qualifiers, as pcap-filter(7) names them.
type protoQ uint8

const (
	pDefault protoQ = iota
	pEther
	pIP
	pIP6
	pARP
	pRARP
	pTCP
	pUDP
	pSCTP
	pICMP
	pICMP6
)

var protoWords = map[string]protoQ{
	"ether": pEther, "ip": pIP, "ip6": pIP6, "arp": pARP, "rarp": pRARP,
	"tcp": pTCP, "udp": pUDP, "sctp": pSCTP, "icmp": pICMP, "icmp6": pICMP6,
}

func (q protoQ) String() string {
	for w, v := range protoWords {
		if v == q {
			return w
		}
	}
	return "default"
}

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
	"gateway": true, "len": true, "protochain": true, "mpls": true, "pppoed": true,
	"pppoes": true, "geneve": true, "atalk": true, "decnet": true, "iso": true,
	"stp": true, "ipx": true, "netbeui": true, "llc": true, "wlan": true, "type": true,
	"subtype": true, "ifname": true, "on": true, "rnr": true, "rulenum": true,
	"reason": true, "rset": true, "srnr": true, "subrulenum": true, "action": true,
	"fddi": true, "tr": true, "ah": true, "esp": true, "igmp": true, "igrp": true,
	"pim": true, "vrrp": true, "carp": true, "lat": true, "sca": true, "moprc": true,
	"mopdl": true, "clnp": true, "esis": true, "isis": true, "l1": true, "l2": true,
	"iih": true, "lsp": true, "snp": true, "csnp": true, "psnp": true, "radio": true,
	"ra": true, "ta": true, "addr1": true, "addr2": true, "addr3": true, "addr4": true,
	"dir": true, "ether6": true, "hsrp": true, "vxlan": true,
}

func isKeyword(w string) bool {
	switch w {
	case "and", "or", "not", "src", "dst", "proto", "less", "greater", "vlan",
		"inbound", "outbound", "broadcast", "multicast", "mask":
		return true
	}
	_, p := protoWords[w]
	_, t := typeWords[w]
	return p || t || unsupportedWords[w]
}

func (p *parser) primitive() (*expr, error) {
	p.primitives++
	t := p.peek()
	w := t.text
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
	case w == "vlan":
		p.next()
		id := -1
		if nt := p.peek(); nt.kind == tkWord && !isKeyword(nt.text) {
			n, err := p.number("vlan", vlanIDMask)
			if err != nil {
				return nil, err
			}
			id = int(n)
		}
		p.hasLast = false
		return p.l.vlan(id), nil
	case w == "broadcast" || w == "multicast":
		return p.linkCast(pDefault)
	case w == "proto":
		p.next()
		return p.protoNumber(pDefault, t)
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
		case nt.is("broadcast") || nt.is("multicast"):
			return p.linkCast(pq)
		case nt.kind == tkWord && (nt.is("src") || nt.is("dst") || typeWords[nt.text] != tDefault):
			// qualifiers follow
		default:
			// A protocol on its own: "udp", "ip6", "arp".
			p.hasLast = false
			return p.protoAbbrev(pq, t)
		}
	}
	if d, ok, err := p.direction(); err != nil {
		return nil, err
	} else if ok {
		q.dir = d
		qualified = true
	}
	if nt := p.peek(); nt.kind == tkWord {
		if tq, ok := typeWords[nt.text]; ok {
			p.next()
			q.typ = tq
			qualified = true
		}
	}
	if !qualified {
		// A bare value inherits the previous primitive's qualifiers.
		if vt := p.peek(); vt.kind == tkWord && isKeyword(vt.text) {
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
	if (c.is("or") || c.kind == tkOr || c.is("and") || c.kind == tkAnd) && o.is(other) {
		p.next()
		p.next()
		if c.is("or") || c.kind == tkOr {
			return dirDefault, true, nil
		}
		return dirAnd, true, nil
	}
	return d, true, nil
}

func (p *parser) linkCast(pq protoQ) (*expr, error) {
	t := p.next()
	p.hasLast = false
	if pq != pDefault && pq != pEther {
		return nil, p.errTok(t, "only \"ether %s\" is supported, not %q with %q", t.text, t.text, pq)
	}
	if t.text == "broadcast" {
		return etherAddr(0, [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}), nil
	}
	return mkAtom(abs(0, 1), jset, 1), nil
}

func (p *parser) protoAbbrev(pq protoQ, t token) (*expr, error) {
	switch pq {
	case pEther:
		return nil, p.errTok(p.peek(), "expected \"host\", \"src\", \"dst\", \"proto\", \"broadcast\" or \"multicast\" after \"ether\", found %s", p.peek())
	case pIP:
		return p.l.linktype(proto.EtherTypeIPv4), nil
	case pIP6:
		return p.l.linktype(proto.EtherTypeIPv6), nil
	case pARP:
		return p.l.linktype(proto.EtherTypeARP), nil
	case pRARP:
		return p.l.linktype(etherTypeRARP), nil
	case pTCP:
		return p.l.anyProto(proto.IPProtoTCP), nil
	case pUDP:
		return p.l.anyProto(proto.IPProtoUDP), nil
	case pSCTP:
		return p.l.anyProto(ipProtoSCTP), nil
	case pICMP:
		return p.l.ipProto(proto.IPProtoICMP), nil
	default: // pICMP6
		return p.l.ip6Proto(proto.IPProtoICMPv6), nil
	}
}

var ipProtoNames = map[string]uint8{
	"icmp": 1, "igmp": 2, "tcp": 6, "udp": 17, "ipv6-icmp": 58, "icmp6": 58,
	"sctp": 132, "gre": 47, "esp": 50, "ah": 51, "ospf": 89, "pim": 103, "vrrp": 112,
}

var etherProtoNames = map[string]uint16{
	"ip": proto.EtherTypeIPv4, "ip6": proto.EtherTypeIPv6, "arp": proto.EtherTypeARP,
	"rarp": etherTypeRARP,
}

// protoNumber parses the value of "ip proto", "ip6 proto", "ether proto"
// and a bare "proto": a number or a backslash-escaped name ("\udp").
func (p *parser) protoNumber(pq protoQ, kw token) (*expr, error) {
	p.hasLast = false
	t := p.peek()
	if t.kind != tkWord || isKeyword(t.text) {
		return nil, p.errTok(t, "expected a protocol number or \\name after %q, found %s", kw.text, t)
	}
	name, escaped := strings.CutPrefix(t.text, "\\")
	switch pq {
	case pEther:
		var et uint32
		if escaped {
			v, ok := etherProtoNames[name]
			if !ok {
				return nil, p.errTok(t, "unknown EtherType name %q (known: ip, ip6, arp, rarp)", name)
			}
			p.next()
			et = uint32(v)
		} else {
			n, err := p.number("ether proto", 0xffff)
			if err != nil {
				return nil, err
			}
			et = n
		}
		switch et {
		case 0x06, 0x42, 0xe0, 0xf0, 0xfe, 0x8137, 0x809b, 0x80f3:
			return nil, p.errTok(t, "ether proto %#x needs protocol-specific 802.2 handling that is not supported", et)
		}
		return p.l.linktype(uint16(et)), nil
	case pDefault, pIP, pIP6:
	default:
		return nil, p.errTok(kw, "\"proto\" applies to ether, ip or ip6, not %q", pq)
	}
	var v uint32
	if escaped {
		n, ok := ipProtoNames[name]
		if !ok {
			return nil, p.errTok(t, "unknown IP protocol name %q", name)
		}
		p.next()
		v = uint32(n)
	} else {
		n, err := p.number("proto", 255)
		if err != nil {
			return nil, err
		}
		v = n
	}
	switch pq {
	case pIP:
		return p.l.ipProto(uint8(v)), nil
	case pIP6:
		return p.l.ip6Proto(uint8(v)), nil
	}
	return p.l.anyProto(uint8(v)), nil
}

// parseNum reads a number as libpcap does: decimal, 0x hexadecimal, or
// octal with a leading 0.
func parseNum(s string) (uint64, bool) {
	base := 10
	switch {
	case len(s) > 2 && (s[:2] == "0x" || s[:2] == "0X"):
		s, base = s[2:], 16
	case len(s) > 1 && s[0] == '0':
		s, base = s[1:], 8
	}
	n, err := strconv.ParseUint(s, base, 64)
	if err != nil {
		if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
			return 1 << 63, true // out of range for any caller
		}
		return 0, false
	}
	return n, true
}

func (p *parser) number(what string, max uint32) (uint32, error) {
	t := p.peek()
	if t.kind != tkWord {
		return 0, p.errTok(t, "expected a number after %q, found %s", what, t)
	}
	n, ok := parseNum(t.text)
	if !ok {
		return 0, p.errTok(t, "expected a number after %q, found %s", what, t)
	}
	if n > uint64(max) {
		return 0, p.errTok(t, "%s %s out of range (at most %d)", what, t.text, max)
	}
	p.next()
	return uint32(n), nil
}

// value parses what follows the qualifiers.
func (p *parser) value(q qual) (*expr, error) {
	t := p.peek()
	if t.kind != tkWord || isKeyword(t.text) {
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
	if q.typ == tPort {
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

// parseIPv4Prefix reads libpcap's IPv4 forms: a.b.c.d, or 1 to 3 leading
// octets meaning a classful network (10 = 10.0.0.0/8), optionally /len.
func parseIPv4Prefix(s string) (addr, mask uint32, full, ok bool) {
	a, bitsStr, hasLen := strings.Cut(s, "/")
	parts := strings.Split(a, ".")
	if len(parts) > 4 {
		return 0, 0, false, false
	}
	for _, part := range parts {
		n, err := strconv.ParseUint(part, 10, 8)
		if err != nil {
			return 0, 0, false, false
		}
		addr = addr<<8 | uint32(n)
	}
	addr <<= 8 * uint(4-len(parts))
	mask = ^uint32(0) << (8 * uint(4-len(parts)))
	if hasLen {
		bits, err := strconv.ParseUint(bitsStr, 10, 8)
		if err != nil || bits > 32 {
			return 0, 0, false, false
		}
		mask = prefixMask32(int(bits))
	}
	return addr, mask, len(parts) == 4 && !hasLen, true
}

func parseMAC(s string) ([6]byte, bool) {
	var mac [6]byte
	sep := ":"
	if strings.Contains(s, "-") {
		sep = "-"
	}
	parts := strings.Split(s, sep)
	if len(parts) != 6 {
		return mac, false
	}
	for i, part := range parts {
		if len(part) == 0 || len(part) > 2 {
			return mac, false
		}
		n, err := strconv.ParseUint(part, 16, 8)
		if err != nil {
			return mac, false
		}
		mac[i] = byte(n)
	}
	return mac, true
}

func (p *parser) hostValue(q qual, t token) (*expr, error) {
	s := t.text
	if mac, ok := parseMAC(s); ok {
		if q.proto != pEther && q.proto != pDefault {
			return nil, p.errTok(t, "a MAC address needs \"ether\", not %q", q.proto)
		}
		return p.l.etherHost(mac, q.dir), nil
	}
	if q.proto == pEther {
		return nil, p.errTok(t, "expected a MAC address (aa:bb:cc:dd:ee:ff) after \"ether\", found %s", t)
	}
	if strings.Contains(s, ":") {
		a, err := netip.ParseAddr(s)
		if err != nil || !a.Is6() || a.Zone() != "" {
			return nil, p.errTok(t, "%q is not an IPv6 address", s)
		}
		return p.host6(q, t, a.As16(), prefixMask128(128))
	}
	if c := s[0]; c >= '0' && c <= '9' {
		addr, mask, _, ok := parseIPv4Prefix(s)
		if !ok || strings.Contains(s, "/") {
			return nil, p.errTok(t, "%q is not an IPv4 address (use \"net\" for a prefix)", s)
		}
		return p.host4(q, t, addr, mask)
	}
	return nil, p.errTok(t, "host names are not resolved: give an IPv4, IPv6 or MAC address instead of %q", s)
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

func (p *parser) netValue(q qual, t token) (*expr, error) {
	s := t.text
	if strings.Contains(s, ":") {
		pfx, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil || !a.Is6() {
				return nil, p.errTok(t, "%q is not an IPv6 network (fd00::/8)", s)
			}
			pfx = netip.PrefixFrom(a, 128)
		}
		if !pfx.Addr().Is6() || pfx.Addr().Zone() != "" {
			return nil, p.errTok(t, "%q is not an IPv6 network", s)
		}
		if pfx.Masked() != pfx {
			return nil, p.errTok(t, "non-network bits set in %q", s)
		}
		return p.host6(q, t, pfx.Addr().As16(), prefixMask128(pfx.Bits()))
	}
	addr, mask, full, ok := parseIPv4Prefix(s)
	if !ok {
		return nil, p.errTok(t, "%q is not an IPv4 network (198.18.0.0/15, 10, 10.1)", s)
	}
	if full && p.peek().is("mask") {
		p.next()
		mt := p.peek()
		m, _, mfull, mok := parseIPv4Prefix(mt.text)
		if mt.kind != tkWord || !mok || !mfull {
			return nil, p.errTok(mt, "expected a dotted IPv4 mask after \"mask\", found %s", mt)
		}
		p.next()
		mask = m
	}
	if addr&^mask != 0 {
		return nil, p.errTok(t, "non-network bits set in %q", s)
	}
	return p.host4(q, t, addr, mask)
}
