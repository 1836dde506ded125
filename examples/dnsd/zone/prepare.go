package zone

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/miekg/dns"
)

// prepared is the answer to one question, in wire format.
//
// body holds every section after the question, packed behind the question
// written in lowercase: its names are compressed, with pointers into the
// question wherever they share a suffix with it. A query for the same name
// in any letter case has a question of the same length, so the body is
// valid behind the query's own question bytes, and every name that points
// into the question comes out in the query's case, as Knot DNS's answers
// do (it compresses against the lowercased question and then restores the
// question's case).
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
	m := &dns.Msg{Compress: true}
	m.Question = []dns.Question{{Name: n.name, Qtype: qtype, Qclass: dns.ClassINET}}
	head := dnsHeaderLen + len(n.wire) + 4

	p := &prepared{rcode: uint8(r.rcode), cuts: make([]cut, 0, len(r.parts)+1)}
	var c cut
	var wire []byte
	for i := 0; ; i++ {
		var err error
		if wire, err = m.Pack(); err != nil {
			return nil, fmt.Errorf("%s %s: %w", n.name, dns.Type(qtype), err)
		}
		if len(wire) > 65535 {
			return nil, fmt.Errorf("%s %s: answer of %d octets does not fit a DNS message", n.name, dns.Type(qtype), len(wire))
		}
		c.end = uint16(len(wire) - head)
		c.truncates = i < len(r.parts) && r.parts[i].sec == answerSection
		p.cuts = append(p.cuts, c)
		if i == len(r.parts) {
			break
		}
		pt := r.parts[i]
		switch pt.sec {
		case answerSection:
			m.Answer = append(m.Answer, pt.set.rrs...)
			c.an += uint16(len(pt.set.rrs))
		case authoritySection:
			m.Ns = append(m.Ns, pt.set.rrs...)
			c.ns += uint16(len(pt.set.rrs))
		case additionalSection:
			m.Extra = append(m.Extra, pt.set.rrs...)
			c.ar += uint16(len(pt.set.rrs))
		}
	}
	p.body = wire[head:]
	// Every shorter packing must be a prefix of the whole: Respond relies
	// on it to cut answers. Check it once, here.
	for i := range p.cuts {
		m.Answer, m.Ns, m.Extra = nil, nil, nil
		for _, pt := range r.parts[:i] {
			switch pt.sec {
			case answerSection:
				m.Answer = append(m.Answer, pt.set.rrs...)
			case authoritySection:
				m.Ns = append(m.Ns, pt.set.rrs...)
			case additionalSection:
				m.Extra = append(m.Extra, pt.set.rrs...)
			}
		}
		short, err := m.Pack()
		if err != nil {
			return nil, err
		}
		if !bytes.Equal(short[head:], p.body[:p.cuts[i].end]) {
			return nil, fmt.Errorf("%s %s: packing is not prefix-stable", n.name, dns.Type(qtype))
		}
	}

	switch {
	case r.rcode == dns.RcodeNameError:
		p.kind = NXDomain
	case p.cuts[len(p.cuts)-1].an == 0:
		p.kind = NoData
	default:
		p.kind = Answer
	}
	return p, nil
}

// nxTemplate writes the authority section of an NXDOMAIN answer for a name
// that is not in the zone, and so has no prepared answer: the SOA with the
// negative TTL, its names compressed against the query's question as Knot
// DNS compresses them (the longest suffix shared with the question, which
// always includes the apex, becomes a pointer into it).
type nxTemplate struct {
	mname, rname []byte // lowercase wire format
	fixed        [20]byte
	ttl          uint32
	size         int // the SOA RR's length with no compression, an upper bound
}

func newNXTemplate(apex []byte, soa *dns.SOA) (nxTemplate, error) {
	var t nxTemplate
	var err error
	if t.mname, err = wireName(soa.Ns); err != nil {
		return t, err
	}
	if t.rname, err = wireName(soa.Mbox); err != nil {
		return t, err
	}
	binary.BigEndian.PutUint32(t.fixed[0:], soa.Serial)
	binary.BigEndian.PutUint32(t.fixed[4:], soa.Refresh)
	binary.BigEndian.PutUint32(t.fixed[8:], soa.Retry)
	binary.BigEndian.PutUint32(t.fixed[12:], soa.Expire)
	binary.BigEndian.PutUint32(t.fixed[16:], soa.Minttl)
	t.ttl = soa.Hdr.Ttl
	t.size = len(apex) + 10 + len(t.mname) + len(t.rname) + 20
	if t.size > 65535-dnsHeaderLen-259 {
		return t, errors.New("SOA too large")
	}
	return t, nil
}

// put writes the SOA at b[0:] for a question whose lowercase name qname
// starts at offset qoff of the message and has the apex at its end, and
// returns its length, or 0 if it does not fit.
func (t *nxTemplate) put(b []byte, qname []byte, qoff int, apexLen int) int {
	if len(b) < t.size {
		return 0
	}
	binary.BigEndian.PutUint16(b, 0xC000|uint16(qoff+len(qname)-apexLen))
	binary.BigEndian.PutUint16(b[2:], dns.TypeSOA)
	binary.BigEndian.PutUint16(b[4:], dns.ClassINET)
	binary.BigEndian.PutUint32(b[6:], t.ttl)
	n := 12
	n += putCompressed(b[n:], t.mname, qname, qoff)
	n += putCompressed(b[n:], t.rname, qname, qoff)
	n += copy(b[n:], t.fixed[:])
	binary.BigEndian.PutUint16(b[10:], uint16(n-12))
	return n
}

// putCompressed writes the wire-format name at b[0:], its longest suffix
// that is also a suffix of qname (compared by whole labels; both are
// lowercase) replaced by a pointer into the question at qoff, and returns
// the length written. b must hold len(name) octets.
func putCompressed(b, name, qname []byte, qoff int) int {
	// Line the two names up by label count from the end.
	nl, ql := countLabels(name), countLabels(qname)
	ni, qi := 0, 0
	for ; nl > ql; nl-- {
		ni += 1 + int(name[ni])
	}
	for ; ql > nl; ql-- {
		qi += 1 + int(qname[qi])
	}
	// Find the first label from which both run equal to the root.
	match, matchQ := -1, -1
	for name[ni] != 0 {
		nEnd, qEnd := ni+1+int(name[ni]), qi+1+int(qname[qi])
		switch {
		case !bytes.Equal(name[ni:nEnd], qname[qi:qEnd]):
			match = -1
		case match < 0:
			match, matchQ = ni, qi
		}
		ni, qi = nEnd, qEnd
	}
	if match < 0 {
		return copy(b, name)
	}
	n := copy(b, name[:match])
	binary.BigEndian.PutUint16(b[n:], 0xC000|uint16(qoff+matchQ))
	return n + 2
}

func countLabels(name []byte) int {
	n := 0
	for i := 0; name[i] != 0; i += 1 + int(name[i]) {
		n++
	}
	return n
}
