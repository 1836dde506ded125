package dnstest

import (
	"fmt"
	"slices"
	"strings"

	"github.com/miekg/dns"
)

// Compare compares a response with the expected one by meaning and
// returns the differences, none if they agree. nil stands for no response.
//
// They agree when the headers are equal (ID, every flag, opcode, RCODE,
// counts), the questions are equal octet for octet (the letter case of the
// query is echoed), the OPT records are equal (presence, payload size,
// extended RCODE, version, flags, options), and each section holds the
// same RRsets in the same order, an RRset being the run of records with
// one owner, type and class: equal owner names (letter case included),
// TTLs, and RDATA, in any order within the RRset. Compression and the
// order of records within an RRset are free.
func Compare(want, got []byte) []string {
	switch {
	case want == nil && got == nil:
		return nil
	case want == nil:
		return []string{fmt.Sprintf("answered (%d octets), want no answer", len(got))}
	case got == nil:
		return []string{"no answer"}
	}
	var w, g dns.Msg
	if err := w.Unpack(want); err != nil {
		return []string{fmt.Sprintf("expected response does not unpack: %v", err)}
	}
	if err := g.Unpack(got); err != nil {
		return []string{fmt.Sprintf("response does not unpack: %v (%x)", err, got)}
	}
	var diffs []string
	diff := func(what string, want, got any) {
		if fmt.Sprint(want) != fmt.Sprint(got) {
			diffs = append(diffs, fmt.Sprintf("%s: got %v, want %v", what, got, want))
		}
	}
	diff("header", header(want), header(got))
	diff("question", fmt.Sprintf("%x", question(want)), fmt.Sprintf("%x", question(got)))
	diff("OPT", opt(&w), opt(&g))
	diff("answer", rrsets(w.Answer), rrsets(g.Answer))
	diff("authority", rrsets(w.Ns), rrsets(g.Ns))
	diff("additional", rrsets(nonOPT(w.Extra)), rrsets(nonOPT(g.Extra)))
	return diffs
}

// header returns the header's fields in words.
func header(m []byte) string {
	var h dns.MsgHdr
	msg := new(dns.Msg)
	msg.Unpack(m[:12])
	h = msg.MsgHdr
	return fmt.Sprintf("id=%d qr=%v opcode=%d aa=%v tc=%v rd=%v ra=%v z=%v ad=%v cd=%v rcode=%d counts=%x",
		h.Id, h.Response, h.Opcode, h.Authoritative, h.Truncated, h.RecursionDesired, h.RecursionAvailable,
		h.Zero, h.AuthenticatedData, h.CheckingDisabled, h.Rcode&0xF, m[4:12])
}

// question returns the question section's octets; the name is never
// compressed in either response.
func question(m []byte) []byte {
	if m[4] == 0 && m[5] == 0 {
		return nil
	}
	off := 12
	for off < len(m) && m[off] != 0 && m[off]&0xC0 == 0 {
		off += 1 + int(m[off])
	}
	if off < len(m) && m[off]&0xC0 != 0 {
		off += 2
	} else {
		off++
	}
	return m[12:min(off+4, len(m))]
}

func opt(m *dns.Msg) string {
	o := m.IsEdns0()
	if o == nil {
		return "none"
	}
	var opts []string
	for _, e := range o.Option {
		opts = append(opts, fmt.Sprintf("%d:%s", e.Option(), e.String()))
	}
	return fmt.Sprintf("size=%d extrcode=%d version=%d do=%v z=%#x options=%v", o.UDPSize(), o.ExtendedRcode(), o.Version(), o.Do(), o.Hdr.Ttl&0x7FFF, opts)
}

func nonOPT(rrs []dns.RR) []dns.RR {
	return slices.DeleteFunc(slices.Clone(rrs), func(rr dns.RR) bool { return rr.Header().Rrtype == dns.TypeOPT })
}

// rrsets renders a section as its RRsets, the RDATA of each sorted.
func rrsets(rrs []dns.RR) []string {
	var sets []string
	for i := 0; i < len(rrs); {
		h := rrs[i].Header()
		j := i
		var rdata []string
		for ; j < len(rrs); j++ {
			hj := rrs[j].Header()
			if hj.Name != h.Name || hj.Rrtype != h.Rrtype || hj.Class != h.Class {
				break
			}
			rdata = append(rdata, fmt.Sprintf("ttl=%d %s", hj.Ttl, strings.TrimPrefix(rrs[j].String(), hj.String())))
		}
		slices.Sort(rdata)
		sets = append(sets, fmt.Sprintf("{%s %s %s %v}", h.Name, dns.Class(h.Class), dns.Type(h.Rrtype), rdata))
		i = j
	}
	return sets
}
