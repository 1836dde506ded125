package dnstest

import (
	"bytes"
	"fmt"

	"github.com/miekg/dns"
)

// deliberate lists the queries dnsd answers differently from Knot DNS on
// purpose, with the RCODE dnsd gives and why (see examples/dnsd/README.md).
var deliberate = map[string]struct {
	rcode int
	why   string
}{
	"opcode 4":       {dns.RcodeNotImplemented, "NOTIFY: Knot answers NOTAUTH (no ACL allows it); dnsd is no secondary and does not implement it"},
	"opcode 4 EDNS":  {dns.RcodeNotImplemented, "NOTIFY: Knot answers NOTAUTH (no ACL allows it); dnsd is no secondary and does not implement it"},
	"opcode 5":       {dns.RcodeNotImplemented, "UPDATE: Knot checks the update (FORMERR here, else NOTAUTH); dnsd does not implement it"},
	"opcode 5 EDNS":  {dns.RcodeNotImplemented, "UPDATE: Knot checks the update (FORMERR here, else NOTAUTH); dnsd does not implement it"},
	"TSIG":           {dns.RcodeNotAuth, "TSIG: Knot echoes the TSIG record with error BADKEY; dnsd has no keys and answers NOTAUTH without it"},
	"TSIG with EDNS": {dns.RcodeNotAuth, "TSIG: Knot echoes the TSIG record with error BADKEY; dnsd has no keys and answers NOTAUTH without it"},
}

// Deliberate reports whether dnsd answers the case differently from Knot
// on purpose, and why.
func Deliberate(name string) (string, bool) {
	d, ok := deliberate[name]
	return d.why, ok
}

// CheckDeliberate checks dnsd's answer to a case of Deliberate: the RCODE
// listed, the query's ID, opcode, RD flag and question echoed, no records,
// an OPT record if and only if the query had one.
func CheckDeliberate(name string, query, got []byte) []string {
	d := deliberate[name]
	if got == nil {
		return []string{"no answer"}
	}
	var q, m dns.Msg
	if err := q.Unpack(query); err != nil {
		return []string{fmt.Sprintf("query does not unpack: %v", err)}
	}
	if err := m.Unpack(got); err != nil {
		return []string{fmt.Sprintf("answer does not unpack: %v", err)}
	}
	var diffs []string
	check := func(ok bool, format string, args ...any) {
		if !ok {
			diffs = append(diffs, fmt.Sprintf(format, args...))
		}
	}
	check(m.Rcode == d.rcode, "RCODE %s, want %s", dns.RcodeToString[m.Rcode], dns.RcodeToString[d.rcode])
	check(m.Id == q.Id && m.Opcode == q.Opcode && m.RecursionDesired == q.RecursionDesired && m.Response,
		"header %+v does not echo the query's %+v", m.MsgHdr, q.MsgHdr)
	check(!m.Authoritative && !m.Truncated, "AA or TC set")
	check(bytes.Equal(question(got), question(query)), "question %x, want %x", question(got), question(query))
	check(len(m.Answer)+len(m.Ns)+len(nonOPT(m.Extra)) == 0, "records in the answer")
	check((m.IsEdns0() != nil) == (q.IsEdns0() != nil), "OPT %v, query's %v", m.IsEdns0(), q.IsEdns0())
	return diffs
}
