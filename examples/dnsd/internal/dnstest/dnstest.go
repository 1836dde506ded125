// Package dnstest holds what dnsd's tests share: the queries they ask,
// built octet by octet so that malformed ones can be made too, a
// comparison of two responses by their meaning, and the recorded answers
// of Knot DNS (testdata/knot-answers.txt) that let the unit tests compare
// dnsd with Knot where Knot is not installed.
package dnstest

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"slices"
	"strings"

	"github.com/miekg/dns"
)

// Case is one query of the comparison.
type Case struct {
	Name  string // what it asks, for failure messages
	Query []byte
}

// Header returns a query header.
func Header(id, flags, qd, an, ns, ar uint16) []byte {
	b := make([]byte, 12)
	binary.BigEndian.PutUint16(b[0:], id)
	binary.BigEndian.PutUint16(b[2:], flags)
	binary.BigEndian.PutUint16(b[4:], qd)
	binary.BigEndian.PutUint16(b[6:], an)
	binary.BigEndian.PutUint16(b[8:], ns)
	binary.BigEndian.PutUint16(b[10:], ar)
	return b
}

// Name returns the uncompressed wire format of a presentation-format name,
// letter case kept.
func Name(s string) []byte {
	b := make([]byte, 512)
	n, err := dns.PackDomainName(dns.Fqdn(s), b, 0, nil, false)
	if err != nil {
		panic(fmt.Sprintf("dnstest: name %q: %v", s, err))
	}
	return b[:n]
}

// Question returns a question entry.
func Question(name string, qtype, qclass uint16) []byte {
	return binary.BigEndian.AppendUint16(binary.BigEndian.AppendUint16(Name(name), qtype), qclass)
}

// OPT returns an OPT record: UDP payload size, EDNS version, DO, options.
func OPT(size uint16, version uint8, do bool, options []byte) []byte {
	b := []byte{0, 0, 41}
	b = binary.BigEndian.AppendUint16(b, size)
	var flags byte
	if do {
		flags = 0x80
	}
	b = append(b, 0, version, flags, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(len(options)))
	return append(b, options...)
}

// Option returns one EDNS option.
func Option(code uint16, data []byte) []byte {
	b := binary.BigEndian.AppendUint16(nil, code)
	b = binary.BigEndian.AppendUint16(b, uint16(len(data)))
	return append(b, data...)
}

// RR returns a resource record with a root owner name.
func RR(typ, class uint16, ttl uint32, rdata []byte) []byte {
	b := []byte{0}
	b = binary.BigEndian.AppendUint16(b, typ)
	b = binary.BigEndian.AppendUint16(b, class)
	b = binary.BigEndian.AppendUint32(b, ttl)
	b = binary.BigEndian.AppendUint16(b, uint16(len(rdata)))
	return append(b, rdata...)
}

// Query returns a well-formed query for name and type, RD set, with an
// OPT record of the given size if edns is set.
func Query(id uint16, name string, qtype uint16, edns bool, size uint16) []byte {
	ar := uint16(0)
	if edns {
		ar = 1
	}
	b := append(Header(id, dns.RcodeSuccess|1<<8, 1, 0, 0, ar), Question(name, qtype, dns.ClassINET)...)
	if edns {
		b = append(b, OPT(size, 0, false, nil)...)
	}
	return b
}

const maxName = 255

// cat joins byte slices.
func cat(parts ...[]byte) []byte { return slices.Concat(parts...) }

// QueryTypes are the types every name of the zone is asked for.
var QueryTypes = []uint16{
	dns.TypeA, dns.TypeNS, dns.TypeCNAME, dns.TypeSOA, dns.TypePTR, dns.TypeHINFO,
	dns.TypeMX, dns.TypeTXT, dns.TypeAAAA, dns.TypeSRV, dns.TypeNAPTR, dns.TypeDS,
	dns.TypeSSHFP, dns.TypeRRSIG, dns.TypeNSEC, dns.TypeDNSKEY, dns.TypeHTTPS,
	dns.TypeCAA, dns.TypeANY, 65280, 1234,
}

// Cases returns the comparison's queries for a zone whose names (from
// zone.Zone.Names) are given, and whose apex is origin: every name with
// every type of QueryTypes; names in mixed case; names that do not exist;
// names outside the zone; EDNS sizes from below 512 to 65535 on the
// largest answers; header flags and opcodes; classes; meta types; and
// malformed queries of every kind the parser rejects.
func Cases(origin string, names []string) []Case {
	var cs []Case
	id := uint16(0x1000)
	add := func(name string, q []byte) {
		binary.BigEndian.PutUint16(q, id)
		id++
		cs = append(cs, Case{name, q})
	}
	typ := func(t uint16) string { return dns.Type(t).String() }

	for _, n := range names {
		for _, t := range QueryTypes {
			add(n+" "+typ(t), Query(0, n, t, false, 0))
		}
	}
	// 0x20: the question and every name compressed into it come back in
	// the query's case.
	r := rand.New(rand.NewPCG(1, 2))
	for _, n := range names {
		mixed := []byte(n)
		for i, c := range mixed {
			if 'a' <= c && c <= 'z' && r.IntN(2) == 0 {
				mixed[i] = c - 'a' + 'A'
			}
		}
		for _, t := range []uint16{dns.TypeA, dns.TypeMX, dns.TypeNS, dns.TypeSOA, dns.TypeANY, dns.TypeTXT, dns.TypeSRV, dns.TypeHTTPS} {
			add(string(mixed)+" "+typ(t), Query(0, string(mixed), t, false, 0))
		}
	}
	nx := []string{
		"nx." + origin, "NX." + strings.ToUpper(origin), "x.ns1." + origin, "X.NS1." + strings.ToUpper(origin),
		"x.alias." + origin, "a.b.c.deep.a.ent." + origin, "x.hostmaster." + origin, "_tcp." + origin,
		strings.Repeat("a", 63) + "." + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + origin,
	}
	for _, n := range nx {
		for _, t := range []uint16{dns.TypeA, dns.TypeANY, dns.TypeSOA} {
			add("nxdomain "+n+" "+typ(t), Query(0, n, t, false, 0))
			add("nxdomain "+n+" "+typ(t)+" EDNS", Query(0, n, t, true, 1232))
		}
	}
	outside := []string{".", "org.", "com.", "example.org.", "x" + origin, "www.example.net.", strings.TrimSuffix(origin, ".") + ".evil."}
	for _, n := range outside {
		add("outside "+n, Query(0, n, dns.TypeA, false, 0))
		add("outside "+n+" EDNS", Query(0, n, dns.TypeA, true, 1232))
		add("outside "+n+" DO", cat(Header(0, 1<<8, 1, 0, 0, 1), Question(n, dns.TypeA, dns.ClassINET), OPT(4096, 0, true, nil)))
	}

	// Sizes: the client's size is honoured between 512 and the server's.
	big := []struct {
		name string
		t    uint16
	}{
		{"many." + origin, dns.TypeA}, {"bigtxt." + origin, dns.TypeTXT}, {"hugetxt." + origin, dns.TypeTXT},
		{"tocname." + origin, dns.TypeTXT}, {origin, dns.TypeMX}, {origin, dns.TypeNS}, {origin, dns.TypeANY},
		{"svc." + origin, dns.TypeHTTPS}, {"dangling." + origin, dns.TypeA}, {"nothere." + origin, dns.TypeA},
	}
	for _, b := range big {
		for _, size := range []uint16{0, 100, 512, 600, 650, 700, 1000, 1232, 1500, 4096, 65535} {
			add(fmt.Sprintf("%s %s EDNS %d", b.name, typ(b.t), size), Query(0, b.name, b.t, true, size))
		}
		add(b.name+" "+typ(b.t)+" DO", cat(Header(0, 1<<8, 1, 0, 0, 1), Question(b.name, b.t, dns.ClassINET), OPT(1232, 0, true, nil)))
	}

	www := "www." + origin
	q := Question(www, dns.TypeA, dns.ClassINET)
	hdrs := []struct {
		name  string
		flags uint16
	}{
		{"no RD", 0}, {"RD", 1 << 8}, {"all flags", 0x07FF &^ 0x0F00}, {"CD AD Z", 0x0070}, {"TC", 1<<9 | 1<<8},
		{"AA RA", 1<<10 | 1<<7}, {"RCODE 5", 5}, {"QR", 1 << 15},
	}
	for _, h := range hdrs {
		add("header "+h.name, cat(Header(0, h.flags, 1, 0, 0, 0), q))
	}
	for op := uint16(1); op < 16; op++ {
		add(fmt.Sprintf("opcode %d", op), cat(Header(0, op<<11|1<<8, 1, 0, 0, 0), q))
		add(fmt.Sprintf("opcode %d EDNS", op), cat(Header(0, op<<11|1<<8, 1, 0, 0, 1), q, OPT(1232, 0, false, nil)))
	}
	add("opcode 1 no question", Header(0, 1<<11, 0, 0, 0, 0))
	add("opcode 1 EDNS no question", cat(Header(0, 1<<11, 0, 0, 0, 1), OPT(1232, 0, false, nil)))
	add("opcode 1 trailing octet", cat(Header(0, 1<<11, 1, 0, 0, 0), q, []byte{1}))

	for _, c := range []uint16{dns.ClassCHAOS, dns.ClassHESIOD, dns.ClassNONE, dns.ClassANY, 0, 1234} {
		for _, t := range []uint16{dns.TypeA, dns.TypeTXT, 0, dns.TypeAXFR, dns.TypeIXFR, dns.TypeANY} {
			add(fmt.Sprintf("class %d type %s", c, typ(t)), cat(Header(0, 1<<8, 1, 0, 0, 0), Question(www, t, c)))
		}
	}
	add("CH version.bind", cat(Header(0, 0, 1, 0, 0, 0), Question("version.bind.", dns.TypeTXT, dns.ClassCHAOS)))
	add("CH id.server EDNS", cat(Header(0, 0, 1, 0, 0, 1), Question("id.server.", dns.TypeTXT, dns.ClassCHAOS), OPT(1232, 0, false, nil)))
	for _, t := range []uint16{0, dns.TypeAXFR, dns.TypeIXFR, dns.TypeOPT, dns.TypeTSIG, dns.TypeTKEY, dns.TypeMAILA, dns.TypeMAILB, 128} {
		for _, n := range []string{origin, www, "alias." + origin, "nx." + origin, "example.org."} {
			add(fmt.Sprintf("meta type %d %s", t, n), Query(0, n, t, false, 0))
		}
		add(fmt.Sprintf("meta type %d EDNS", t), Query(0, origin, t, true, 1232))
	}

	// EDNS.
	add("EDNS version 1", cat(Header(0, 1<<8, 1, 0, 0, 1), q, OPT(1232, 1, false, nil)))
	add("EDNS version 1 DO", cat(Header(0, 1<<8, 1, 0, 0, 1), q, OPT(1232, 1, true, nil)))
	add("EDNS version 1 outside", cat(Header(0, 1<<8, 1, 0, 0, 1), Question("example.org.", 1, 1), OPT(1232, 1, false, nil)))
	add("EDNS version 1 opcode 1", cat(Header(0, 1<<11, 1, 0, 0, 1), q, OPT(1232, 1, false, nil)))
	add("EDNS version 1 no question", cat(Header(0, 0, 0, 0, 0, 1), OPT(1232, 1, false, nil)))
	add("EDNS version 1 class CH", cat(Header(0, 0, 1, 0, 0, 1), Question(www, 1, dns.ClassCHAOS), OPT(1232, 1, false, nil)))
	add("EDNS version 255 type 0", cat(Header(0, 0, 1, 0, 0, 1), Question(www, 0, 1), OPT(1232, 255, false, nil)))
	add("EDNS extended RCODE in query", cat(Header(0, 0, 1, 0, 0, 1), q, []byte{0, 0, 41, 4, 0xd0, 7, 0, 0, 0, 0, 0}))
	add("EDNS owner not root", cat(Header(0, 0, 1, 0, 0, 1), q, Name(origin), OPT(1232, 0, false, nil)[1:]))
	add("EDNS cookie", cat(Header(0, 0, 1, 0, 0, 1), q, OPT(1232, 0, false, Option(10, []byte("abcdefgh")))))
	add("EDNS cookie of 3 octets", cat(Header(0, 0, 1, 0, 0, 1), q, OPT(1232, 0, false, Option(10, []byte("abc")))))
	add("EDNS NSID", cat(Header(0, 0, 1, 0, 0, 1), q, OPT(1232, 0, false, Option(3, nil))))
	add("EDNS unknown option", cat(Header(0, 0, 1, 0, 0, 1), q, OPT(1232, 0, false, Option(65001, []byte("ab")))))
	add("EDNS two options", cat(Header(0, 0, 1, 0, 0, 1), q, OPT(1232, 0, false, cat(Option(3, nil), Option(12, make([]byte, 20))))))
	add("EDNS empty option", cat(Header(0, 0, 1, 0, 0, 1), q, OPT(1232, 0, false, Option(99, nil))))
	add("EDNS option longer than RDATA", cat(Header(0, 0, 1, 0, 0, 1), q, OPT(1232, 0, false, []byte{0, 10, 0, 16, 'a', 'b', 'c'})))
	add("EDNS option header cut", cat(Header(0, 0, 1, 0, 0, 1), q, OPT(1232, 0, false, []byte{0, 99})))
	add("EDNS RDLENGTH past the end", cat(Header(0, 0, 1, 0, 0, 1), q, []byte{0, 0, 41, 4, 0xd0, 0, 0, 0, 0, 0, 10, 0, 0}))
	add("EDNS twice", cat(Header(0, 0, 1, 0, 0, 2), q, OPT(1232, 0, false, nil), OPT(1232, 0, false, nil)))
	add("EDNS in the answer section", cat(Header(0, 0, 1, 1, 0, 0), q, OPT(1232, 0, false, nil)))
	add("EDNS in the authority section", cat(Header(0, 0, 1, 0, 1, 0), q, OPT(1232, 0, false, nil)))
	add("EDNS after an A record", cat(Header(0, 0, 1, 0, 0, 2), q, RR(1, 1, 300, []byte{1, 2, 3, 4}), OPT(1232, 0, false, nil)))
	add("EDNS then a cut record", cat(Header(0, 0, 1, 0, 0, 2), q, OPT(1232, 0, false, nil), RR(1, 1, 300, []byte{1, 2, 3, 4})[:5]))
	add("EDNS no question", cat(Header(0, 0, 0, 0, 0, 1), OPT(1232, 0, false, nil)))

	// Records in a query's other sections are read and ignored.
	a := RR(1, 1, 300, []byte{1, 2, 3, 4})
	add("A record in the answer section", cat(Header(0, 0, 1, 1, 0, 0), q, a))
	add("A record in the authority section", cat(Header(0, 0, 1, 0, 1, 0), q, a))
	add("A record in the additional section", cat(Header(0, 0, 1, 0, 0, 1), q, a))
	add("owner pointing at the question", cat(Header(0, 0, 1, 1, 0, 0), q, []byte{0xc0, 12}, a[1:]))
	add("owner pointing into the header", cat(Header(0, 0, 1, 1, 0, 0), q, []byte{0xc0, 2}, a[1:]))
	add("owner pointing at itself", cat(Header(0, 0, 1, 1, 0, 0), q, []byte{0xc0, byte(12 + len(q))}, a[1:]))
	add("owner pointing forwards", cat(Header(0, 0, 1, 1, 0, 0), q, []byte{0xc0, byte(12 + len(q) + 20)}, a[1:], []byte{0}))
	loop := cat(Header(0, 0, 1, 1, 0, 0), q)
	at := len(loop)
	loop = append(loop, 3, 'a', 'b', 'c', 0xc0, byte(at)) // "abc" then back to itself
	add("owner in a pointer loop", cat(loop, a[1:]))
	add("record cut short", cat(Header(0, 0, 1, 1, 0, 0), q, a[:7]))
	add("record RDATA past the end", cat(Header(0, 0, 1, 1, 0, 0), q, a[:len(a)-1]))
	add("ANCOUNT 1, nothing", cat(Header(0, 0, 1, 1, 0, 0), q))
	add("trailing octets", cat(Header(0, 0, 1, 0, 0, 0), q, []byte{0, 1, 2}))
	add("no question, an A record", cat(Header(0, 0, 0, 1, 0, 0), a))
	add("no question, a trailing octet", cat(Header(0, 0, 0, 0, 0, 0), []byte{0}))
	tsig := cat(Name("key."), make([]byte, 6), []byte{1, 44, 0, 4}, []byte("abcd"), []byte{0x10, 0x00, 0, 0, 0, 0})
	add("TSIG", cat(Header(0, 0, 1, 0, 0, 1), q, RR(dns.TypeTSIG, dns.ClassANY, 0, tsig)))
	add("TSIG outside", cat(Header(0, 0, 1, 0, 0, 1), Question("example.org.", 1, 1), RR(dns.TypeTSIG, dns.ClassANY, 0, tsig)))
	add("TSIG with EDNS", cat(Header(0, 0, 1, 0, 0, 2), q, OPT(1232, 0, false, nil), RR(dns.TypeTSIG, dns.ClassANY, 0, tsig)))
	add("TSIG not last", cat(Header(0, 0, 1, 0, 0, 2), q, RR(dns.TypeTSIG, dns.ClassANY, 0, tsig), OPT(1232, 0, false, nil)))
	add("TSIG with no RDATA", cat(Header(0, 0, 1, 0, 0, 1), q, RR(dns.TypeTSIG, dns.ClassANY, 0, nil)))

	// Questions that cannot be read: dropped.
	add("shorter than a header", Header(0, 0, 1, 0, 0, 0)[:11])
	add("header only", Header(0, 0, 1, 0, 0, 0))
	add("no question", Header(0, 0, 0, 0, 0, 0))
	add("two questions", cat(Header(0, 0, 2, 0, 0, 0), q, Question(origin, 1, 1)))
	add("QDCOUNT 2, one question", cat(Header(0, 0, 2, 0, 0, 0), q))
	add("name cut short", cat(Header(0, 0, 1, 0, 0, 0), Name(www)[:6]))
	add("no QTYPE", cat(Header(0, 0, 1, 0, 0, 0), Name(www)))
	add("QCLASS cut", cat(Header(0, 0, 1, 0, 0, 0), Name(www), []byte{0, 1, 0}))
	add("question pointing at itself", cat(Header(0, 0, 1, 0, 0, 0), []byte{0xc0, 12, 0, 1, 0, 1}))
	add("question pointing into the header", cat(Header(0, 0, 1, 0, 0, 0), []byte{3, 'w', 'w', 'w', 0xc0, 0, 0, 1, 0, 1}))
	add("extended label type", cat(Header(0, 0, 1, 0, 0, 0), []byte{0x41}, make([]byte, 10), []byte{0, 0, 1, 0, 1}))
	long := strings.Repeat(strings.Repeat("a", 63)+".", 4)
	add("name of 257 octets", cat(Header(0, 0, 1, 0, 0, 0), Question(long, 1, 1)))
	add("name of 255 octets", cat(Header(0, 0, 1, 0, 0, 0), Question(long[:64*3]+strings.Repeat("a", 61)+".", 1, 1)))
	fill := maxName - 3*64 - 1 - len(Name(origin))
	add("name of 255 octets in the zone", Query(0, long[:64*3]+strings.Repeat("a", fill)+"."+origin, dns.TypeA, false, 0))
	add("binary label", cat(Header(0, 0, 1, 0, 0, 0), []byte{3, 'a', 0, 'b'}, Name(origin), []byte{0, 1, 0, 1}))
	add("response", cat(Header(0, 1<<15|1<<10, 1, 0, 0, 0), q))
	return cs
}

// Golden is one recorded answer: the query and the response, nil for none.
type Golden struct {
	Name     string
	Query    []byte
	Response []byte
}

// WriteGolden writes recorded answers, one per line: the case's name,
// the query in hex, the response in hex or "-" for none.
func WriteGolden(w io.Writer, gs []Golden) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintln(bw, "# Knot DNS's answers to dnstest.Cases for examples/dnsd/testdata/example.com.zone;")
	fmt.Fprintln(bw, "# written by TestKnotOracle with -update-golden. name<TAB>query<TAB>response or -")
	for _, g := range gs {
		resp := "-"
		if g.Response != nil {
			resp = hex.EncodeToString(g.Response)
		}
		fmt.Fprintf(bw, "%s\t%x\t%s\n", g.Name, g.Query, resp)
	}
	return bw.Flush()
}

// ReadGolden reads what WriteGolden wrote.
func ReadGolden(r io.Reader) ([]Golden, error) {
	var gs []Golden
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) != 3 {
			return nil, fmt.Errorf("dnstest: bad golden line %q", line)
		}
		g := Golden{Name: f[0]}
		var err error
		if g.Query, err = hex.DecodeString(f[1]); err != nil {
			return nil, err
		}
		if f[2] != "-" {
			if g.Response, err = hex.DecodeString(f[2]); err != nil {
				return nil, err
			}
		}
		gs = append(gs, g)
	}
	return gs, sc.Err()
}

// ReadGoldenFile reads the file at path that WriteGolden wrote, such as
// testdata/knot-answers.txt.
func ReadGoldenFile(path string) ([]Golden, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ReadGolden(f)
}
