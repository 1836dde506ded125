package zone

import (
	"encoding/binary"

	"github.com/miekg/dns"
)

// Kind says what kind of response Respond wrote, for counters.
type Kind uint8

const (
	Dropped  Kind = iota // nothing: see Drop
	Answer               // NOERROR with an answer
	NoData               // NOERROR with no answer (RFC 2308 §2.2)
	NXDomain             // the name does not exist (RFC 2308 §2.1)
	Refused              // not the zone's name or class
	FormErr              // malformed query, or no question
	NotImp               // an opcode other than QUERY, QTYPE 0, AXFR over UDP
	NotAuth              // IXFR (transfers are not authorized), TSIG (not supported)
	BadVers              // EDNS version above 0 (RFC 6891 §6.1.3)

	NumKinds = iota
)

var kindNames = [NumKinds]string{"dropped", "answer", "nodata", "nxdomain", "refused", "formerr", "notimp", "notauth", "badvers"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "unknown"
}

// Outcome says what Respond did.
type Outcome struct {
	Kind Kind
	// Truncated: the answer did not fit and was cut, TC set.
	Truncated bool
}

// MinResponseBuffer is the smallest response buffer Respond and Answer
// accept: every DNS client takes 512 octets (RFC 1035 §4.2.1).
const MinResponseBuffer = 512

const (
	optRRLen            = 11 // an OPT RR with no options
	edeLen              = 6  // an Extended DNS Error option with no text (RFC 8914)
	ednsOptEDE          = 15
	edeNotAuthoritative = 20 // "Not Authoritative"
)

// Respond answers the DNS query msg: it writes the response into resp and
// returns its length, 0 when the query is dropped. The response is at most
// len(resp) octets and at most what the client takes: 512 octets without
// EDNS, else its UDP payload size within [512, MaxUDPSize]. len(resp) must
// be at least MinResponseBuffer. Respond allocates nothing.
func (z *Zone) Respond(msg, resp []byte) (int, Outcome) {
	if len(resp) < MinResponseBuffer {
		return 0, Outcome{Kind: Dropped}
	}
	var q Query
	switch ParseQuery(msg, &q) {
	case Drop:
		return 0, Outcome{Kind: Dropped}
	case Malformed:
		// Knot DNS answers these without an OPT record: it never got as
		// far as EDNS.
		q.EDNS = false
		return z.short(&q, resp, dns.RcodeFormatError, false), Outcome{Kind: FormErr}
	}
	return z.Answer(&q, resp)
}

// Answer answers a parsed query, as Respond does.
func (z *Zone) Answer(q *Query, resp []byte) (int, Outcome) {
	if len(resp) < MinResponseBuffer {
		return 0, Outcome{Kind: Dropped}
	}
	limit := 512
	if q.EDNS {
		limit = min(max(int(q.UDPSize), 512), z.maxUDP)
	}
	b := resp[:min(limit, len(resp))]

	// The checks run in the order Knot DNS runs them, so that a query
	// with several faults gets the same RCODE.
	switch {
	case q.EDNS && q.Version != 0:
		return z.short(q, b, dns.RcodeBadVers, false), Outcome{Kind: BadVers}
	case q.Opcode() != dns.OpcodeQuery:
		return z.short(q, b, dns.RcodeNotImplemented, false), Outcome{Kind: NotImp}
	case q.QDCount == 0:
		return z.short(q, b, dns.RcodeFormatError, false), Outcome{Kind: FormErr}
	}
	switch q.Class {
	case dns.ClassINET, dns.ClassANY:
	case dns.ClassCHAOS:
		if q.Type != 0 && q.Type != dns.TypeAXFR && q.Type != dns.TypeIXFR {
			return z.short(q, b, dns.RcodeRefused, false), Outcome{Kind: Refused}
		}
		return z.short(q, b, dns.RcodeNotImplemented, false), Outcome{Kind: NotImp}
	default:
		return z.short(q, b, dns.RcodeRefused, false), Outcome{Kind: Refused}
	}
	switch q.Type {
	case 0, dns.TypeAXFR:
		return z.short(q, b, dns.RcodeNotImplemented, false), Outcome{Kind: NotImp}
	case dns.TypeIXFR:
		return z.short(q, b, dns.RcodeNotAuth, false), Outcome{Kind: NotAuth}
	}
	qname := q.lower[:q.nameLen]
	if !isBelow(qname, z.apex) {
		return z.short(q, b, dns.RcodeRefused, true), Outcome{Kind: Refused}
	}
	if q.TSIG {
		return z.short(q, b, dns.RcodeNotAuth, false), Outcome{Kind: NotAuth}
	}
	n := z.nodes[string(qname)]
	if n == nil {
		return z.nxDomain(q, b), Outcome{Kind: NXDomain}
	}
	return z.put(q, b, n.lookup(q.Type))
}

// put writes a prepared answer, cut to fit b.
func (z *Zone) put(q *Query, b []byte, p *prepared) (int, Outcome) {
	optLen := 0
	if q.EDNS {
		optLen = optRRLen
	}
	avail := len(b) - dnsHeaderLen - q.nameLen - 4 - optLen
	k := len(p.cuts) - 1
	for int(p.cuts[k].end) > avail {
		k-- // cuts[0] is empty: it always fits
	}
	c := p.cuts[k]
	o := Outcome{Kind: p.kind}
	flags := uint16(flagAA) | uint16(p.rcode)
	if k < len(p.cuts)-1 && c.truncates {
		// As in Knot DNS, a truncated answer stops where it is cut,
		// before the RCODE of the authority stage is set.
		flags = flagAA | flagTC
		o.Truncated = true
	}
	n := dnsHeaderLen + putQuestion(b[dnsHeaderLen:], q)
	n += copy(b[n:], p.body[:c.end])
	ar := c.ar
	if q.EDNS {
		n += z.putOPT(b[n:], q, 0, false)
		ar++
	}
	putHeader(b, q, flags, 1, c.an, c.ns, ar)
	return n, o
}

// nxDomain writes the NXDOMAIN answer for a name of the zone that has no
// node, and so no prepared answer: the SOA of the zone in the authority
// section, packed for this question as the prepared answers are.
func (z *Zone) nxDomain(q *Query, b []byte) int {
	optLen := 0
	if q.EDNS {
		optLen = optRRLen
	}
	n := dnsHeaderLen + putQuestion(b[dnsHeaderLen:], q)
	var ns, ar uint16
	if n+size(z.apex, z.negSOA.wire)+optLen <= len(b) {
		pk := newPacker(b[:n], q.labels)
		pk.putRRset(z.apex, dns.TypeSOA, z.negSOA.wire, 0)
		n, ns = len(pk.b), 1
	}
	if q.EDNS {
		n += z.putOPT(b[n:], q, 0, false)
		ar = 1
	}
	putHeader(b, q, flagAA|dns.RcodeNameError, 1, 0, ns, ar)
	return n
}

// short writes a response with no records: the question if there was one,
// and the OPT record if the query had one, with the Extended DNS Error
// "Not Authoritative" if ede is set (Knot DNS adds it to REFUSED answers
// for names outside its zones).
func (z *Zone) short(q *Query, b []byte, rcode int, ede bool) int {
	n := dnsHeaderLen
	var qd, ar uint16
	if q.QDCount == 1 {
		n += putQuestion(b[n:], q)
		qd = 1
	}
	if q.EDNS {
		n += z.putOPT(b[n:], q, uint8(rcode>>4), ede)
		ar = 1
	}
	putHeader(b, q, uint16(rcode&0xF), qd, 0, 0, ar)
	return n
}

// putHeader writes the response header: the query's ID, opcode and RD
// echoed, QR set, every other flag (RA, Z, AD, CD) clear, as Knot DNS
// clears them, except those in flags, which also carries the low RCODE.
func putHeader(b []byte, q *Query, flags uint16, qd, an, ns, ar uint16) {
	binary.BigEndian.PutUint16(b[0:], q.ID)
	binary.BigEndian.PutUint16(b[2:], flagQR|q.Flags&(flagOpcode|flagRD)|flags)
	binary.BigEndian.PutUint16(b[4:], qd)
	binary.BigEndian.PutUint16(b[6:], an)
	binary.BigEndian.PutUint16(b[8:], ns)
	binary.BigEndian.PutUint16(b[10:], ar)
}

// putQuestion writes the query's question, name as received.
func putQuestion(b []byte, q *Query) int {
	n := copy(b, q.name[:q.nameLen])
	binary.BigEndian.PutUint16(b[n:], q.Type)
	binary.BigEndian.PutUint16(b[n+2:], q.Class)
	return n + 4
}

// putOPT writes the response's OPT record (RFC 6891 §6.1.2, §6.1.3): the
// server's UDP payload size, the high bits of the RCODE, version 0, the
// DO bit echoed (RFC 3225 §3), and optionally an Extended DNS Error.
func (z *Zone) putOPT(b []byte, q *Query, rcodeHi uint8, ede bool) int {
	b[0] = 0 // the root
	binary.BigEndian.PutUint16(b[1:], dns.TypeOPT)
	binary.BigEndian.PutUint16(b[3:], uint16(z.maxUDP))
	b[5], b[6], b[7], b[8] = rcodeHi, 0, 0, 0
	if q.DO {
		b[7] = 0x80
	}
	if !ede {
		binary.BigEndian.PutUint16(b[9:], 0)
		return optRRLen
	}
	binary.BigEndian.PutUint16(b[9:], edeLen)
	binary.BigEndian.PutUint16(b[11:], ednsOptEDE)
	binary.BigEndian.PutUint16(b[13:], 2)
	binary.BigEndian.PutUint16(b[15:], edeNotAuthoritative)
	return optRRLen + edeLen
}
