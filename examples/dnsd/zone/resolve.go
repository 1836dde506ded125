package zone

import "github.com/miekg/dns"

// section is a section of a DNS message after the question.
type section uint8

const (
	answerSection section = iota
	authoritySection
	additionalSection
)

// part is one RRset placed in a section of an answer. An additional
// RRset records which RR drew it in: the pos-th RR of part from.
type part struct {
	sec       section
	set       *rrset
	from, pos int
}

// result is the resolution of one question: the RCODE and the RRsets of
// every section, in the order they are written.
type result struct {
	rcode int
	parts []part
}

func (r *result) add(sec section, s *rrset) { r.parts = append(r.parts, part{sec: sec, set: s}) }

func (r *result) has(s *rrset) bool {
	for _, p := range r.parts {
		if p.set == s {
			return true
		}
	}
	return false
}

// followsCNAME reports whether a question of type t at a name that owns a
// CNAME is answered by following it: not for the CNAME itself, nor, as in
// Knot DNS, for RRSIG, NSEC and ANY, which the name answers on its own.
func followsCNAME(t uint16) bool {
	switch t {
	case dns.TypeCNAME, dns.TypeRRSIG, dns.TypeNSEC, dns.TypeANY:
		return false
	}
	return true
}

// resolve answers a question of type qtype for the name of n, by the
// algorithm of RFC 1034 §4.3.2 for a zone without delegations or
// wildcards:
//
//   - a CNAME at the name is followed (step 3a), within the zone, for at
//     most maxCNAMEChain links and never twice through one RRset (a loop
//     ends the answer where it closes, NOERROR, as in Knot DNS); a target
//     outside the zone ends the answer with the CNAMEs;
//   - the RRset of the type is the answer; for ANY the RRset of the lowest
//     type only (RFC 8482 §4.1, Knot DNS's choice);
//   - no RRset is NODATA, a name not in the zone NXDOMAIN, both with the
//     SOA in the authority section with the negative TTL (RFC 2308 §2, §3);
//   - the answer and authority RRsets of types that name a host (NS, MX,
//     SRV, SVCB, HTTPS) bring the host's A and AAAA RRsets (and, for
//     SVCB and HTTPS, its RRset of the same type) into the additional
//     section, each once.
func (z *Zone) resolve(n *node, qtype uint16) result {
	var r result
	for chain := 0; ; {
		if c := n.set(dns.TypeCNAME); c != nil && followsCNAME(qtype) {
			if chain++; chain > maxCNAMEChain || r.has(c) {
				break
			}
			r.add(answerSection, c)
			next := z.nodes[c.targets[0]]
			if next == nil {
				if isBelow([]byte(c.targets[0]), z.apex) {
					r.rcode = dns.RcodeNameError
					r.add(authoritySection, z.negSOA)
				}
				break
			}
			n = next
			continue
		}
		var s *rrset
		if qtype == dns.TypeANY {
			if len(n.sets) > 0 {
				s = n.sets[0]
			}
		} else {
			s = n.set(qtype)
		}
		if s == nil {
			r.add(authoritySection, z.negSOA)
		} else {
			r.add(answerSection, s)
		}
		break
	}

	// Additional records, for the answer and authority RRsets only.
	for from, p := range r.parts[:len(r.parts):len(r.parts)] {
		if !needsAdditional(p.set.typ) {
			continue
		}
		types := []uint16{dns.TypeA, dns.TypeAAAA}
		if p.set.typ == dns.TypeSVCB || p.set.typ == dns.TypeHTTPS {
			types = append(types, p.set.typ)
		}
		for pos, t := range p.set.targets {
			host := z.nodes[t]
			if host == nil {
				continue
			}
			for _, typ := range types {
				if s := host.set(typ); s != nil && !r.has(s) {
					r.parts = append(r.parts, part{sec: additionalSection, set: s, from: from, pos: pos})
				}
			}
		}
	}
	return r
}
