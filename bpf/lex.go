package bpf

import (
	"strconv"
	"strings"
)

// The lexer follows libpcap's scanner.l: flex takes the longest match, and
// among matches of the same length the earliest rule (keywords, then MAC
// addresses, numbers, dotted IPv4, IPv6, names). So "1.2.3.4" is an
// address, "udp[8:2]" is udp, '[', 8, ':', 2, ']', "10-20" is one name (a
// port range) and "1-1" is not arithmetic but a name, as in tcpdump.

type tokKind uint8

const (
	tkEOF tokKind = iota
	tkWord
	tkLParen
	tkRParen
	tkNot // "!"
	tkAnd // "&&"
	tkOr  // "||"
	tkOp  // one of + - * / % & | ^ << >> < <= > >= = == != [ ] :
)

// wordKind says which of libpcap's token classes a word is.
type wordKind uint8

const (
	wID   wordKind = iota // a name or keyword
	wNum                  // a number (token.num), or a named constant such as icmp-echo
	wHID                  // dotted IPv4: 1.2, 1.2.3, 1.2.3.4
	wHID6                 // an IPv6 address
	wMAC                  // an Ethernet address
	wEsc                  // \name, text without the backslash
)

type token struct {
	kind tokKind
	word wordKind
	text string
	num  uint32
	col  int // 1-based
}

func (t token) String() string {
	if t.kind == tkEOF {
		return "the end of the expression"
	}
	if t.word == wEsc {
		return strconv.Quote("\\" + t.text)
	}
	return strconv.Quote(t.text)
}

func (t token) is(word string) bool { return t.kind == tkWord && t.word == wID && t.text == word }

func (t token) isOp(op string) bool { return t.kind == tkOp && t.text == op }

// namedNumbers are the constants libpcap's scanner turns into numbers.
var namedNumbers = map[string]uint32{
	"icmptype": 0, "icmpcode": 1,
	"icmp-echoreply": 0, "icmp-unreach": 3, "icmp-sourcequench": 4, "icmp-redirect": 5,
	"icmp-echo": 8, "icmp-routeradvert": 9, "icmp-routersolicit": 10, "icmp-timxceed": 11,
	"icmp-paramprob": 12, "icmp-tstamp": 13, "icmp-tstampreply": 14, "icmp-ireq": 15,
	"icmp-ireqreply": 16, "icmp-maskreq": 17, "icmp-maskreply": 18,
	"icmp6type": 0, "icmp6code": 1,
	"icmp6-destinationunreach": 1, "icmp6-packettoobig": 2, "icmp6-timeexceeded": 3,
	"icmp6-parameterproblem": 4, "icmp6-echo": 128, "icmp6-echoreply": 129,
	"icmp6-multicastlistenerquery": 130, "icmp6-multicastlistenerreportv1": 131,
	"icmp6-multicastlistenerdone": 132, "icmp6-routersolicit": 133, "icmp6-routeradvert": 134,
	"icmp6-neighborsolicit": 135, "icmp6-neighboradvert": 136, "icmp6-redirect": 137,
	"icmp6-routerrenum": 138, "icmp6-nodeinformationquery": 139,
	"icmp6-nodeinformationresponse": 140, "icmp6-ineighbordiscoverysolicit": 141,
	"icmp6-ineighbordiscoveryadvert": 142, "icmp6-multicastlistenerreportv2": 143,
	"icmp6-homeagentdiscoveryrequest": 144, "icmp6-homeagentdiscoveryreply": 145,
	"icmp6-mobileprefixsolicit": 146, "icmp6-mobileprefixadvert": 147,
	"icmp6-certpathsolicit": 148, "icmp6-certpathadvert": 149,
	"icmp6-multicastrouteradvert": 151, "icmp6-multicastroutersolicit": 152,
	"icmp6-multicastrouterterm": 153,
	"tcpflags":                  13, "tcp-fin": 0x01, "tcp-syn": 0x02, "tcp-rst": 0x04, "tcp-push": 0x08,
	"tcp-ack": 0x10, "tcp-urg": 0x20, "tcp-ece": 0x40, "tcp-cwr": 0x80,
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isHex(c byte) bool { return isDigit(c) || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

func isAlnum(c byte) bool { return isDigit(c) || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

func (p *parser) lex() error {
	s := p.src
	emit := func(k tokKind, text string, col int) { p.toks = append(p.toks, token{kind: k, text: text, col: col}) }
	for i := 0; i < len(s); {
		c := s[i]
		two := ""
		if i+1 < len(s) {
			two = s[i : i+2]
		}
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '(':
			emit(tkLParen, "(", i+1)
			i++
		case c == ')':
			emit(tkRParen, ")", i+1)
			i++
		case two == "&&":
			emit(tkAnd, two, i+1)
			i += 2
		case two == "||":
			emit(tkOr, two, i+1)
			i += 2
		case two == ">=" || two == "<=" || two == "!=" || two == "==" || two == "<<" || two == ">>":
			emit(tkOp, two, i+1)
			i += 2
		case c == '!':
			emit(tkNot, "!", i+1)
			i++
		case strings.IndexByte("+-*/%&|^<>=[]", c) >= 0:
			emit(tkOp, s[i:i+1], i+1)
			i++
		case c == ':' && lexV6(s, i) == 0:
			emit(tkOp, ":", i+1)
			i++
		case c == '\\':
			j := i + 1
			for j < len(s) && strings.IndexByte(" !()\n\t", s[j]) < 0 {
				j++
			}
			if j == i+1 {
				return p.errAt(i+1, "unexpected character \"\\\\\"")
			}
			p.toks = append(p.toks, token{kind: tkWord, word: wEsc, text: s[i+1 : j], col: i + 1})
			i = j
		case isAlnum(c) || c == ':':
			t, n, err := p.lexWord(s, i)
			if err != nil {
				return err
			}
			p.toks = append(p.toks, t)
			i += n
		default:
			return p.errAt(i+1, "unexpected character %q", string(rune(c)))
		}
	}
	p.toks = append(p.toks, token{kind: tkEOF, col: len(s) + 1})
	return nil
}

// lexWord reads the longest word at i, classified by the first of
// libpcap's rules that matches that much.
func (p *parser) lexWord(s string, i int) (token, int, error) {
	type cand struct {
		n    int
		kind wordKind
	}
	cands := [...]cand{
		{lexMAC(s, i), wMAC},
		{lexN(s, i), wNum},
		{lexHID(s, i), wHID},
		{lexV6(s, i), wHID6},
		{lexBogusEther(s, i), wMAC},
		{lexID(s, i), wID},
	}
	best := cand{}
	for _, c := range cands {
		if c.n > best.n {
			best = c
		}
	}
	text := s[i : i+best.n]
	t := token{kind: tkWord, word: best.kind, text: text, col: i + 1}
	switch best.kind {
	case wNum:
		n, err := parseNumber(text)
		if err != nil {
			return t, 0, p.errAt(i+1, "%v", err)
		}
		t.num = n
	case wID:
		if v, ok := namedNumbers[text]; ok {
			t.word, t.num = wNum, v
		}
	}
	return t, best.n, nil
}

// parseNumber reads libpcap's NUM: decimal, 0x hexadecimal or 0 octal, at
// most 32 bits.
func parseNumber(s string) (uint32, error) {
	base, digits := 10, s
	switch {
	case len(s) > 2 && (s[1] == 'x' || s[1] == 'X'):
		base, digits = 16, s[2:]
	case len(s) > 1 && s[0] == '0':
		base, digits = 8, s[1:]
	}
	n, err := strconv.ParseUint(digits, base, 32)
	if err != nil {
		if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
			return 0, lexError("number " + s + " overflows 32 bits")
		}
		kind := map[int]string{8: "octal", 10: "decimal", 16: "hex"}[base]
		return 0, lexError("number " + s + " contains non-" + kind + " digit")
	}
	return uint32(n), nil
}

type lexError string

func (e lexError) Error() string { return string(e) }

// lexN is the length of {N} at i: [0-9]+ or 0[xX][0-9A-Fa-f]+.
func lexN(s string, i int) int {
	if i >= len(s) || !isDigit(s[i]) {
		return 0
	}
	if s[i] == '0' && i+2 < len(s) && (s[i+1] == 'x' || s[i+1] == 'X') && isHex(s[i+2]) {
		j := i + 2
		for j < len(s) && isHex(s[j]) {
			j++
		}
		return j - i
	}
	j := i
	for j < len(s) && isDigit(s[j]) {
		j++
	}
	return j - i
}

// lexHID is the length of N.N, N.N.N or N.N.N.N at i.
func lexHID(s string, i int) int {
	best, j := 0, i
	for parts := 1; parts <= 4; parts++ {
		n := lexN(s, j)
		if n == 0 {
			break
		}
		j += n
		if parts >= 2 {
			best = j - i
		}
		if j >= len(s) || s[j] != '.' {
			break
		}
		j++
	}
	return best
}

// lexGroups matches count groups of lo to hi hex digits separated by sep
// (no separator when sep is 0), the last group as long as possible.
func lexGroups(s string, i, count, lo, hi int, sep byte) int {
	j := i
	for g := 0; g < count; g++ {
		n := 0
		for n < hi && j+n < len(s) && isHex(s[j+n]) {
			n++
		}
		if g < count-1 && sep != 0 {
			// The group ends at the separator.
			for n >= lo && (j+n >= len(s) || s[j+n] != sep) {
				n--
			}
		}
		if n < lo {
			return 0
		}
		j += n
		if g < count-1 && sep != 0 {
			j++
		}
	}
	return j - i
}

// lexMAC is the length of an Ethernet address at i in any of libpcap's
// forms: aa:bb:cc:dd:ee:ff, aa-bb-..., aa.bb.cc.dd.ee.ff, aabb.ccdd.eeff,
// aabbccddeeff.
func lexMAC(s string, i int) int {
	return max(lexGroups(s, i, 6, 1, 2, ':'), lexGroups(s, i, 6, 1, 2, '-'), lexGroups(s, i, 6, 1, 2, '.'),
		lexGroups(s, i, 3, 4, 4, '.'), lexGroups(s, i, 3, 4, 4, 0))
}

// lexBogusEther is libpcap's "{B}:+({B}:+)+", a malformed Ethernet
// address that the scanner reports as such.
func lexBogusEther(s string, i int) int {
	best, j, groups := 0, i, 0
	for {
		n := 0
		for n < 2 && j+n < len(s) && isHex(s[j+n]) {
			n++
		}
		if n == 2 && (j+2 >= len(s) || s[j+2] != ':') {
			n = 1
		}
		if n == 0 || j+n >= len(s) || s[j+n] != ':' {
			return best
		}
		j += n
		for j < len(s) && s[j] == ':' {
			j++
		}
		if groups++; groups >= 2 {
			best = j - i
		}
	}
}

// lexID is the length of a name: [A-Za-z0-9]([-_.A-Za-z0-9]*[.A-Za-z0-9])?
func lexID(s string, i int) int {
	if i >= len(s) || !isAlnum(s[i]) {
		return 0
	}
	j := i + 1
	for j < len(s) && (isAlnum(s[j]) || s[j] == '-' || s[j] == '_' || s[j] == '.') {
		j++
	}
	for j > i+1 && (s[j-1] == '-' || s[j-1] == '_') {
		j--
	}
	return j - i
}

// lexV6 is the length of the longest IPv6 address (in the forms of
// libpcap's V6 patterns) at i.
func lexV6(s string, i int) int {
	// Every IPv6 address has at least two colons; the longest sensible
	// one (with an embedded IPv4 address) is well under 64 characters.
	j, colons := i, 0
	for j < len(s) && j-i < 64 && (isHex(s[j]) || s[j] == ':' || s[j] == '.' || s[j] == 'x' || s[j] == 'X') {
		if s[j] == ':' {
			colons++
		}
		j++
	}
	if colons < 2 {
		return 0
	}
	for ; j > i+1; j-- {
		if isV6(s[i:j]) {
			return j - i
		}
	}
	return 0
}

func isV6(t string) bool {
	if strings.Count(t, "::") > 1 {
		return false
	}
	head, tail := t, false
	if strings.IndexByte(t, '.') >= 0 {
		// An embedded IPv4 address, {N}.{N}.{N}.{N}, after the last colon.
		k := strings.LastIndexByte(t, ':')
		if k < 0 {
			return false
		}
		v4 := t[k+1:]
		if lexHID(v4, 0) != len(v4) || strings.Count(v4, ".") != 3 {
			return false
		}
		head, tail = t[:k+1], true
		if !strings.HasSuffix(head, "::") {
			head = head[:len(head)-1]
		}
	}
	groups := func(part string) (int, bool) {
		if part == "" {
			return 0, true
		}
		n := 0
		for _, g := range strings.Split(part, ":") {
			if len(g) < 1 || len(g) > 4 {
				return 0, false
			}
			for k := 0; k < len(g); k++ {
				if !isHex(g[k]) {
					return 0, false
				}
			}
			n++
		}
		return n, true
	}
	limit, full := 7, 8
	if tail {
		limit, full = 5, 6
	}
	if left, right, ok := strings.Cut(head, "::"); ok {
		nl, okl := groups(left)
		nr, okr := groups(right)
		return okl && okr && nl+nr <= limit
	}
	n, ok := groups(head)
	return ok && n == full
}
