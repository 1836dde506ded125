package zone

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/miekg/dns"
)

// prepared is the answer to one question, in wire format.
//
// body holds every section after the question, packed behind the question
// written in lowercase, with names compressed as Knot DNS compresses them
// (wire.go), some of them into the question. Names compare
// case-insensitively there, so the packing is the same for a query in any
// letter case, and its question has the same length: the body is valid
// behind the query's own question bytes, and every name that points into
// the question comes out in the query's case, as in Knot's answers.
//
// cuts[i] describes the body holding only the first i RRsets; the last is
// the whole body. Compression points only backwards, so each is a prefix
// of the next: an answer too large for the client is cut at an RRset
// boundary without repacking.
type prepared struct {
	kind  Kind
	rcode uint8
	body  []byte
	cuts  []cut
}

// cut is a prefix of a prepared body that ends at an RRset boundary.
type cut struct {
	end        uint16 // length of the prefix
	an, ns, ar uint16 // the section counts it holds
	// truncates: the RRset after the prefix belongs to the answer section,
	// so an answer cut here is truncated (TC set). Authority and
	// additional RRsets that do not fit are left out without TC (RFC 2181
	// §9), as Knot DNS leaves out the SOA and additional records.
	truncates bool
}

// prepareAll prepares the answer to every question of every node.
func (z *Zone) prepareAll() error {
	for _, n := range z.nodes {
		qtypes := make([]uint16, 0, len(n.sets)+1)
		followsChain := n.set(dns.TypeCNAME) != nil
		if followsChain {
			// The answer depends on what the chain leads to: one answer
			// per type the zone holds, and per type the CNAME answers
			// itself.
			qtypes = append(qtypes, z.types...)
			qtypes = append(qtypes, dns.TypeRRSIG, dns.TypeNSEC)
		} else {
			for _, s := range n.sets {
				qtypes = append(qtypes, s.typ)
			}
		}
		qtypes = append(qtypes, dns.TypeANY)
		for _, t := range qtypes {
			if n.answered(t) {
				continue // listed twice
			}
			p, err := z.prepare(n, t)
			if err != nil {
				return err
			}
			n.answers = append(n.answers, typedAnswer{t, p})
		}
		// Any other type: NODATA, or where a chain leads for a type the
		// zone does not hold.
		p, err := z.prepare(n, z.unusedType())
		if err != nil {
			return err
		}
		n.other = p
		z.prepared += len(n.answers) + 1
	}
	return nil
}

func (n *node) answered(t uint16) bool {
	for _, a := range n.answers {
		if a.qtype == t {
			return true
		}
	}
	return false
}

// lookup returns the prepared answer to a question of type t.
func (n *node) lookup(t uint16) *prepared {
	for i := range n.answers {
		if n.answers[i].qtype == t {
			return n.answers[i].p
		}
	}
	return n.other
}

// unusedType returns a type that the zone does not hold and that no rule
// treats specially, to resolve "any other type" with.
func (z *Zone) unusedType() uint16 {
	for t := uint16(65534); ; t-- {
		if !slices.Contains(z.types, t) && followsCNAME(t) {
			return t
		}
	}
}

// prepare resolves and packs the answer to the question (n, qtype).
func (z *Zone) prepare(n *node, qtype uint16) (*prepared, error) {
	r := z.resolve(n, qtype)
	if z.scratch == nil {
		z.scratch = make([]byte, 65535)
	}
	b := append(z.scratch[:0:65535], make([]byte, dnsHeaderLen)...)
	b = append(b, n.wire...)
	b = binary.BigEndian.AppendUint16(b, qtype)
	b = binary.BigEndian.AppendUint16(b, dns.ClassINET)
	head := len(b)
	pk := newPacker(b, countLabels([]byte(n.wire)))

	p := &prepared{rcode: uint8(r.rcode), cuts: make([]cut, 0, len(r.parts)+1)}
	written := make([]hints, len(r.parts))
	var c cut
	for i, pt := range r.parts {
		c.end = uint16(len(pk.b) - head)
		c.truncates = pt.sec == answerSection
		p.cuts = append(p.cuts, c)
		if len(pk.b)+size(pt.set.owner, pt.set.wire) > cap(pk.b) {
			return nil, fmt.Errorf("%s %s: the answer does not fit a DNS message", n.name, dns.Type(qtype))
		}
		hint := 0
		if pt.sec == additionalSection && pt.pos < maxHints {
			hint = written[pt.from].rdata[pt.pos]
		}
		written[i] = pk.putRRset(pt.set.owner, pt.set.typ, pt.set.wire, hint)
		switch pt.sec {
		case answerSection:
			c.an += uint16(len(pt.set.wire))
		case authoritySection:
			c.ns += uint16(len(pt.set.wire))
		case additionalSection:
			c.ar += uint16(len(pt.set.wire))
		}
	}
	c.end = uint16(len(pk.b) - head)
	c.truncates = false
	p.cuts = append(p.cuts, c)
	p.body = bytes.Clone(pk.b[head:])

	switch {
	case r.rcode == dns.RcodeNameError:
		p.kind = NXDomain
	case c.an == 0:
		p.kind = NoData
	default:
		p.kind = Answer
	}
	return p, nil
}

func countLabels(name []byte) int {
	n := 0
	for i := 0; name[i] != 0; i += 1 + int(name[i]) {
		n++
	}
	return n
}
