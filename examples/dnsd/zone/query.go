package zone

import (
	"encoding/binary"
	"errors"

	"github.com/miekg/dns"
)

// The DNS message header (RFC 1035 §4.1.1):
//
//	                                1  1  1  1  1  1
//	  0  1  2  3  4  5  6  7  8  9  0  1  2  3  4  5
//	+--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+
//	|                      ID                       |
//	+--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+
//	|QR|   Opcode  |AA|TC|RD|RA| Z|AD|CD|   RCODE   |
//	+--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+
//	|                    QDCOUNT                    |
//	|                    ANCOUNT                    |
//	|                    NSCOUNT                    |
//	|                    ARCOUNT                    |
//	+--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+
const (
	dnsHeaderLen = 12

	flagQR     = 1 << 15
	flagOpcode = 0xF << 11
	flagAA     = 1 << 10
	flagTC     = 1 << 9
	flagRD     = 1 << 8

	maxNameLen = 255 // octets of a wire-format name (RFC 1035 §3.1)
)

// Verdict is what ParseQuery makes of a message.
type Verdict uint8

const (
	// Valid: a well-formed query, to be answered.
	Valid Verdict = iota
	// Drop: nothing to answer. The message is shorter than a header, is a
	// response (QR set), or has a question that cannot be read: QDCOUNT
	// above 1, a name that is truncated, compressed, longer than 255
	// octets or has a label type other than 0 (RFC 6891 §5), or no room
	// for QTYPE and QCLASS. Knot DNS drops these too; so does the parser
	// when QDCOUNT is 0 and the rest is malformed.
	Drop
	// Malformed: the question was read, but the rest is not a well-formed
	// message: a truncated or overlong RR, a compression pointer that does
	// not point backwards (the rule that makes loops impossible), an OPT
	// record outside the additional section, twice, or with truncated
	// options, a TSIG record not last or not laid out as RFC 8945 §4.2
	// says, or octets after the last RR. Such
	// a query is answered FORMERR with its question (RFC 1035 §4.1.1).
	Malformed
)

// Query is what answering needs of a DNS query, read in place by
// ParseQuery without allocating. The zero value is an empty query.
type Query struct {
	ID    uint16
	Flags uint16 // the header's second 16 bits, as received
	// QDCount is 1 if the query has a question, else 0.
	QDCount uint16
	// Type and Class are the question's QTYPE and QCLASS.
	Type, Class uint16

	// EDNS is set when the query carries an OPT record (RFC 6891); then
	// Version, DO and UDPSize are its EDNS version, DNSSEC OK bit and
	// requestor's UDP payload size.
	EDNS    bool
	Version uint8
	DO      bool
	UDPSize uint16

	// TSIG is set when the query carries a well-formed TSIG record
	// (RFC 8945). dnsd has no keys: such a query is answered NOTAUTH.
	TSIG bool

	nameLen int
	labels  int
	name    [maxNameLen]byte // the question's name, as received
	lower   [maxNameLen]byte // the same, lowercase
}

// Opcode returns the query's opcode.
func (q *Query) Opcode() int { return int(q.Flags&flagOpcode) >> 11 }

// Name returns the question's name in wire format, as received.
func (q *Query) Name() []byte { return q.name[:q.nameLen] }

// ParseQuery reads the DNS message msg into q. It allocates nothing, reads
// every RR (RDATA only of OPT: other RRs in a query are ignored), and never
// reads outside msg.
func ParseQuery(msg []byte, q *Query) Verdict {
	*q = Query{}
	if len(msg) < dnsHeaderLen {
		return Drop
	}
	q.ID = binary.BigEndian.Uint16(msg[0:])
	q.Flags = binary.BigEndian.Uint16(msg[2:])
	if q.Flags&flagQR != 0 {
		return Drop
	}
	qd := binary.BigEndian.Uint16(msg[4:])
	counts := [3]int{
		int(binary.BigEndian.Uint16(msg[6:])),
		int(binary.BigEndian.Uint16(msg[8:])),
		int(binary.BigEndian.Uint16(msg[10:])),
	}
	off := dnsHeaderLen
	bad := Drop
	switch qd {
	case 0:
	case 1:
		n, ok := q.readQName(msg[off:])
		if !ok || off+n+4 > len(msg) {
			return Drop
		}
		off += n
		q.Type = binary.BigEndian.Uint16(msg[off:])
		q.Class = binary.BigEndian.Uint16(msg[off+2:])
		off += 4
		q.QDCount = 1
		bad = Malformed
	default:
		return Drop
	}

	for sec, count := range counts {
		for i := range count {
			var ok bool
			if off, ok = skipName(msg, off); !ok || off+10 > len(msg) {
				return bad
			}
			typ := binary.BigEndian.Uint16(msg[off:])
			class := binary.BigEndian.Uint16(msg[off+2:])
			ttl := msg[off+4 : off+8]
			rdlen := int(binary.BigEndian.Uint16(msg[off+8:]))
			off += 10
			if off+rdlen > len(msg) {
				return bad
			}
			rdata := msg[off : off+rdlen]
			off += rdlen
			switch typ {
			case dns.TypeOPT:
				if section(sec) != additionalSection || q.EDNS || !validOptions(rdata) {
					return bad
				}
				q.EDNS = true
				q.UDPSize = class
				q.Version = ttl[1]
				q.DO = ttl[2]&0x80 != 0
			case dns.TypeTSIG:
				// RFC 8945 §5.1: the last record of the additional section.
				if section(sec) != additionalSection || i != count-1 || !validTSIG(msg[:off], off-rdlen) {
					return bad
				}
				q.TSIG = true
			}
		}
	}
	if off != len(msg) {
		return bad
	}
	return Valid
}

// readQName reads the question's name from the start of b, which must be
// uncompressed: nothing precedes it but the header, so a pointer could only
// point into the header or forwards. It returns the name's length.
func (q *Query) readQName(b []byte) (int, bool) {
	n := 0
	for {
		if n >= len(b) {
			return 0, false
		}
		l := int(b[n])
		if l&0xC0 != 0 { // a pointer, or a label type of RFC 6891 §5
			return 0, false
		}
		if n+1+l > maxNameLen || n+1+l > len(b) {
			return 0, false
		}
		q.name[n] = b[n]
		copy(q.name[n+1:n+1+l], b[n+1:n+1+l])
		n += 1 + l
		if l == 0 {
			break
		}
		q.labels++
	}
	q.nameLen = n
	copy(q.lower[:n], q.name[:n])
	lowerASCII(q.lower[:n])
	return n, true
}

// maxPointers bounds the compression pointers followed in one name. A
// name of 255 octets has at most 127 labels; with pointers that must point
// backwards and a length that must stay within 255, no loop gets that far,
// but the bound does not depend on that argument.
const maxPointers = 127

// skipName returns the offset after the name at msg[off:]. The name may be
// compressed (RFC 1035 §4.1.4), but every pointer must point before itself
// (as Knot DNS requires) and the name must not exceed 255 octets, which
// between them rule out loops.
func skipName(msg []byte, off int) (int, bool) {
	end := -1 // where the name ends in the message: after its first pointer
	length := 0
	for hops := 0; ; {
		if off >= len(msg) {
			return 0, false
		}
		l := int(msg[off])
		switch l & 0xC0 {
		case 0:
			length += 1 + l
			if length > maxNameLen || off+1+l > len(msg) {
				return 0, false
			}
			off += 1 + l
			if l == 0 {
				if end < 0 {
					end = off
				}
				return end, true
			}
		case 0xC0:
			if off+2 > len(msg) {
				return 0, false
			}
			ptr := int(binary.BigEndian.Uint16(msg[off:]) & 0x3FFF)
			if ptr >= off {
				return 0, false
			}
			if hops++; hops > maxPointers {
				return 0, false
			}
			if end < 0 {
				end = off + 2
			}
			off = ptr
		default:
			return 0, false
		}
	}
}

// validOptions reports whether the RDATA of an OPT record is a sequence of
// whole options (RFC 6891 §6.1.2). Their contents are not checked: dnsd
// answers none of them.
func validOptions(b []byte) bool {
	for len(b) > 0 {
		if len(b) < 4 {
			return false
		}
		n := 4 + int(binary.BigEndian.Uint16(b[2:]))
		if n > len(b) {
			return false
		}
		b = b[n:]
	}
	return true
}

// validTSIG reports whether the TSIG RDATA that starts at msg[off:] and
// ends with msg has the layout of RFC 8945 §4.2: an algorithm name, Time
// Signed (48 bits), Fudge, MAC Size, the MAC, Original ID, Error, Other
// Len and Other Data. Knot DNS answers a malformed one FORMERR.
func validTSIG(msg []byte, off int) bool {
	off, ok := skipName(msg, off)
	if !ok || off+10 > len(msg) {
		return false
	}
	off += 10 + int(binary.BigEndian.Uint16(msg[off+8:]))
	if off+6 > len(msg) {
		return false
	}
	return off+6+int(binary.BigEndian.Uint16(msg[off+4:])) == len(msg)
}

// QueryFromMsg fills q from a query that github.com/miekg/dns unpacked,
// for servers built on its dns.Server. The message must have been unpacked
// from a query that ParseQuery finds Valid: what the wire format had beyond
// that is not checked again.
func QueryFromMsg(m *dns.Msg, q *Query) error {
	*q = Query{ID: m.Id, Flags: uint16(m.Opcode&0xF)<<11 | uint16(m.Rcode&0xF)}
	for _, f := range []struct {
		set  bool
		mask uint16
	}{
		{m.Response, flagQR}, {m.Authoritative, flagAA}, {m.Truncated, flagTC},
		{m.RecursionDesired, flagRD}, {m.RecursionAvailable, 1 << 7}, {m.Zero, 1 << 6},
		{m.AuthenticatedData, 1 << 5}, {m.CheckingDisabled, 1 << 4},
	} {
		if f.set {
			q.Flags |= f.mask
		}
	}
	switch len(m.Question) {
	case 0:
	case 1:
		qq := m.Question[0]
		n, err := dns.PackDomainName(qq.Name, q.name[:], 0, nil, false)
		if err != nil {
			return err
		}
		q.nameLen, q.labels = n, countLabels(q.name[:n])
		copy(q.lower[:n], q.name[:n])
		lowerASCII(q.lower[:n])
		q.Type, q.Class, q.QDCount = qq.Qtype, qq.Qclass, 1
	default:
		return errors.New("zone: more than one question")
	}
	if opt := m.IsEdns0(); opt != nil {
		q.EDNS, q.Version, q.DO, q.UDPSize = true, opt.Version(), opt.Do(), opt.UDPSize()
	}
	q.TSIG = m.IsTsig() != nil
	return nil
}
