// Package zone serves one DNS zone authoritatively, from answers prepared
// in wire format when the zone is loaded.
//
// Load reads an RFC 1035 master file with github.com/miekg/dns's zone
// parser, checks it, and resolves every question the zone can be asked
// (each name, each type it holds, ANY, and one "any other type") the way
// an authoritative server does (RFC 1034 §4.3.2, RFC 2308), packing each
// answer with its names compressed against the lowercase question. Respond
// then answers a query by copying the prepared sections behind the query's
// own header and question bytes, so that every compression pointer into the
// question picks up the query's letter case (0x20), and by patching the ID,
// the RD flag, EDNS and truncation: no allocation, no name decompression.
//
// Knot DNS is the oracle for every choice the RFCs leave open (see
// examples/dnsd/README.md for the few deliberate differences): ANY is
// answered with one RRset (RFC 8482), CNAME chains are followed within the
// zone for at most five links, additional A/AAAA records accompany NS, MX,
// SRV, SVCB and HTTPS answers, the SOA of a negative answer carries
// min(SOA TTL, SOA MINIMUM) (RFC 2308 §3), EDNS responses advertise and
// honour MaxUDPSize, and names and RDATA names of the RFC 4034 §6.2 types are
// lowercased at load.
//
// Zones with delegations, wildcards, DNAME or DNSSEC records are refused at
// load: the responder does not implement them.
package zone

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"

	"github.com/miekg/dns"
)

// DefaultMaxUDPSize is the largest UDP response sent to an EDNS client by
// default, and the size advertised in OPT records: Knot DNS's default
// udp-max-payload, the size DNS Flag Day 2020 settled on.
const DefaultMaxUDPSize = 1232

// maxCNAMEChain is how many CNAME records one answer follows, as Knot DNS's
// CNAME_CHAIN_MAX: a longer chain ends after five, with what was found.
const maxCNAMEChain = 5

// Config configures a zone. A nil *Config means the defaults.
type Config struct {
	// MaxUDPSize is the largest response sent to an EDNS client, whatever
	// size it offers, and the size advertised in OPT records. Zero means
	// DefaultMaxUDPSize; values below 512 mean 512.
	MaxUDPSize int
}

// Zone is a loaded zone with its prepared answers. It is read-only after
// Load and safe for concurrent use.
type Zone struct {
	origin string // presentation format, lowercase
	apex   []byte // wire format, lowercase
	nodes  map[string]*node
	soa    *rrset // the apex SOA, as the answer to an SOA query
	negSOA *rrset // the same with the negative TTL, for the authority section
	maxUDP int
	types  []uint16 // every type the zone holds, ascending

	prepared int    // answers prepared, for String
	scratch  []byte // where answers are packed while loading
}

// node is one name of the zone: its RRsets by ascending type (the order
// in which ANY picks the first) and, once prepared, its answers. A node
// with no RRsets is an empty non-terminal: it exists because names below
// it do (RFC 8020), so it is answered NODATA, never NXDOMAIN.
type node struct {
	wire string // lowercase wire format, the key in Zone.nodes
	name string // presentation format of wire
	sets []*rrset

	answers []typedAnswer // by type, ANY included
	other   *prepared     // for every type not in answers
}

type typedAnswer struct {
	qtype uint16
	p     *prepared
}

// rrset is the RRs of one name and type. Its RRs are ready to pack: owner
// name canonical, one TTL, RDATA in canonical order (RFC 4034 §6.3), no
// duplicates.
type rrset struct {
	typ   uint16
	ttl   uint32
	owner []byte   // lowercase wire format
	rrs   []dns.RR // while loading
	wire  []wireRR // the same, ready for packer
	// targets are, for the types that draw additional records (NS, MX,
	// SRV, SVCB, HTTPS), the wire-format names of their targets, one per
	// RR; for CNAME the target.
	targets []string
}

func (n *node) set(t uint16) *rrset {
	for _, s := range n.sets {
		if s.typ == t {
			return s
		}
	}
	return nil
}

// LoadFile loads the zone in the master file at path. origin is the origin
// for names in the file that are not fully qualified until a $ORIGIN line;
// empty means the root. $INCLUDE is allowed.
func LoadFile(path, origin string, cfg *Config) (*Zone, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	zp := dns.NewZoneParser(f, dns.Fqdn(origin), path)
	zp.SetIncludeAllowed(true)
	return load(zp, cfg)
}

// Load loads a zone from a master file read from r; file names it in
// errors. $INCLUDE is not allowed.
func Load(r io.Reader, origin, file string, cfg *Config) (*Zone, error) {
	return load(dns.NewZoneParser(r, dns.Fqdn(origin), file), cfg)
}

func load(zp *dns.ZoneParser, cfg *Config) (*Zone, error) {
	var rrs []dns.RR
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		rrs = append(rrs, rr)
	}
	if err := zp.Err(); err != nil {
		return nil, fmt.Errorf("zone: %w", err)
	}
	maxUDP := DefaultMaxUDPSize
	if cfg != nil && cfg.MaxUDPSize != 0 {
		maxUDP = max(cfg.MaxUDPSize, 512)
	}
	z, err := build(rrs, min(maxUDP, 65535))
	if err != nil {
		return nil, fmt.Errorf("zone: %w", err)
	}
	if err := z.prepareAll(); err != nil {
		return nil, fmt.Errorf("zone %s: %w", z.origin, err)
	}
	// Only the wire format is needed from now on.
	z.scratch = nil
	for _, n := range z.nodes {
		for _, s := range n.sets {
			s.rrs = nil
		}
	}
	return z, nil
}

// Origin returns the zone's apex, in lowercase presentation format.
func (z *Zone) Origin() string { return z.origin }

// MaxUDPSize returns the largest response sent to an EDNS client.
func (z *Zone) MaxUDPSize() int { return z.maxUDP }

// String describes the zone for logs.
func (z *Zone) String() string {
	return fmt.Sprintf("%s (%d names, %d prepared answers)", z.origin, len(z.nodes), z.prepared)
}

// build checks the records of a zone and groups them into nodes.
func build(rrs []dns.RR, maxUDP int) (*Zone, error) {
	z := &Zone{nodes: make(map[string]*node), maxUDP: maxUDP}
	for _, rr := range rrs {
		if rr.Header().Rrtype != dns.TypeSOA {
			continue
		}
		if z.apex != nil {
			return nil, fmt.Errorf("more than one SOA record (%s)", rr.Header().Name)
		}
		wire, name, err := canonicalName(rr.Header().Name)
		if err != nil {
			return nil, err
		}
		z.apex, z.origin = wire, name
	}
	if z.apex == nil {
		return nil, errors.New("no SOA record")
	}

	sets := make(map[string]map[uint16]*rrset)
	for _, rr := range rrs {
		h := rr.Header()
		if h.Class != dns.ClassINET {
			return nil, fmt.Errorf("%s: class %s, want IN", h.Name, dns.Class(h.Class))
		}
		switch h.Rrtype {
		case dns.TypeDNAME:
			return nil, fmt.Errorf("%s: DNAME is not supported", h.Name)
		case dns.TypeRRSIG, dns.TypeNSEC, dns.TypeNSEC3, dns.TypeNSEC3PARAM, dns.TypeSIG, dns.TypeNXT:
			return nil, fmt.Errorf("%s: %s: signed zones are not supported", h.Name, dns.Type(h.Rrtype))
		case dns.TypeOPT, dns.TypeTSIG, dns.TypeTKEY, dns.TypeIXFR, dns.TypeAXFR, dns.TypeMAILA, dns.TypeMAILB, dns.TypeANY, dns.TypeNone:
			return nil, fmt.Errorf("%s: %s cannot be zone data", h.Name, dns.Type(h.Rrtype))
		}
		wire, name, err := canonicalName(h.Name)
		if err != nil {
			return nil, err
		}
		if !isBelow(wire, z.apex) {
			return nil, fmt.Errorf("%s is outside the zone %s", h.Name, z.origin)
		}
		if wire[0] == 1 && wire[1] == '*' {
			return nil, fmt.Errorf("%s: wildcards are not supported", h.Name)
		}
		if h.Rrtype == dns.TypeNS && !bytes.Equal(wire, z.apex) {
			return nil, fmt.Errorf("%s: NS below the apex is a delegation, which is not supported", h.Name)
		}
		rr = dns.Copy(rr)
		rr.Header().Name = name
		if err := lowercaseRdata(rr); err != nil {
			return nil, fmt.Errorf("%s: %w", h.Name, err)
		}
		byType := sets[string(wire)]
		if byType == nil {
			byType = make(map[uint16]*rrset)
			sets[string(wire)] = byType
			z.nodes[string(wire)] = &node{wire: string(wire), name: name}
		}
		s := byType[h.Rrtype]
		if s == nil {
			s = &rrset{typ: h.Rrtype, owner: wire}
			byType[h.Rrtype] = s
		}
		// One TTL per RRset: the last one read wins, as in Knot DNS
		// (RFC 2181 §5.2 makes differing TTLs an error).
		s.ttl = h.Ttl
		s.rrs = append(s.rrs, rr)
	}

	seen := make(map[uint16]bool)
	for key, byType := range sets {
		n := z.nodes[key]
		for _, s := range byType {
			if err := s.finish(); err != nil {
				return nil, fmt.Errorf("%s %s: %w", n.name, dns.Type(s.typ), err)
			}
			n.sets = append(n.sets, s)
			seen[s.typ] = true
		}
		slices.SortFunc(n.sets, func(a, b *rrset) int { return int(a.typ) - int(b.typ) })
		if c := n.set(dns.TypeCNAME); c != nil {
			if len(n.sets) > 1 {
				return nil, fmt.Errorf("%s: CNAME and other data", n.name)
			}
			if len(c.rrs) > 1 {
				return nil, fmt.Errorf("%s: more than one CNAME", n.name)
			}
		}
	}
	for t := range seen {
		z.types = append(z.types, t)
	}
	slices.Sort(z.types)

	// Empty non-terminals: every name between a node and the apex.
	for key := range sets {
		for w := []byte(key); !bytes.Equal(w, z.apex); {
			w = w[1+int(w[0]):]
			if z.nodes[string(w)] != nil {
				break
			}
			name, _, err := dns.UnpackDomainName(w, 0)
			if err != nil {
				return nil, err
			}
			z.nodes[string(w)] = &node{wire: string(w), name: name}
		}
	}

	apex := z.nodes[string(z.apex)]
	z.soa = apex.set(dns.TypeSOA)
	soa := z.soa.rrs[0].(*dns.SOA)
	neg := dns.Copy(soa).(*dns.SOA)
	neg.Hdr.Ttl = min(z.soa.ttl, soa.Minttl) // RFC 2308 §3
	z.negSOA = &rrset{typ: dns.TypeSOA, ttl: neg.Hdr.Ttl, owner: z.apex, rrs: []dns.RR{neg}}
	if err := z.negSOA.finish(); err != nil {
		return nil, err
	}
	return z, nil
}

// finish sets one TTL on every RR, drops duplicates, sorts the RDATA into
// canonical order and notes the targets of the RRs that have one.
func (s *rrset) finish() error {
	type keyed struct {
		rdata []byte
		rr    dns.RR
	}
	ks := make([]keyed, 0, len(s.rrs))
	for _, rr := range s.rrs {
		rr.Header().Ttl = s.ttl
		rd, err := rdataWire(rr)
		if err != nil {
			return err
		}
		ks = append(ks, keyed{rd, rr})
	}
	slices.SortStableFunc(ks, func(a, b keyed) int { return bytes.Compare(a.rdata, b.rdata) })
	ks = slices.CompactFunc(ks, func(a, b keyed) bool { return bytes.Equal(a.rdata, b.rdata) })
	s.rrs, s.wire = s.rrs[:0], nil
	for _, k := range ks {
		s.rrs = append(s.rrs, k.rr)
		blocks, err := splitRdata(s.typ, k.rdata)
		if err != nil {
			return fmt.Errorf("%v: %w", k.rr, err)
		}
		s.wire = append(s.wire, wireRR{ttl: s.ttl, blocks: blocks})
		if t, ok := target(k.rr); ok {
			// Targets are looked up as written: Knot DNS does not
			// lowercase SVCB and HTTPS targets, and misses their
			// additional records when they are not lowercase.
			w, err := wireName(t)
			if err != nil {
				return err
			}
			s.targets = append(s.targets, string(w))
		}
	}
	return nil
}

// target returns the name whose addresses go into the additional section
// with rr (RFC 1035 §3.3.9, §3.3.11, RFC 2782, RFC 9460 §4), or the
// target of a CNAME.
func target(rr dns.RR) (string, bool) {
	switch rr := rr.(type) {
	case *dns.CNAME:
		return rr.Target, true
	case *dns.NS:
		return rr.Ns, true
	case *dns.MX:
		return rr.Mx, true
	case *dns.SRV:
		return rr.Target, true
	case *dns.SVCB:
		return rr.Target, true
	case *dns.HTTPS:
		// A target of "." (the owner, in ServiceMode: RFC 9460 §2.5.2)
		// draws nothing, as in Knot DNS.
		return rr.Target, true
	}
	return "", false
}

// needsAdditional reports whether answers of type t carry the addresses of
// their targets in the additional section, as Knot DNS's
// knot_rrtype_additional_needed.
func needsAdditional(t uint16) bool {
	switch t {
	case dns.TypeNS, dns.TypeMX, dns.TypeSRV, dns.TypeSVCB, dns.TypeHTTPS:
		return true
	}
	return false
}

// lowercaseRdata lowercases the domain names in the RDATA of the types RFC
// 4034 §6.2 (as amended by RFC 6840 §5.1) lists, as Knot DNS does when it
// loads a zone; other types keep their names as written.
func lowercaseRdata(rr dns.RR) error {
	var names []*string
	switch rr := rr.(type) {
	case *dns.NS:
		names = []*string{&rr.Ns}
	case *dns.MD:
		names = []*string{&rr.Md}
	case *dns.MF:
		names = []*string{&rr.Mf}
	case *dns.CNAME:
		names = []*string{&rr.Target}
	case *dns.SOA:
		names = []*string{&rr.Ns, &rr.Mbox}
	case *dns.MB:
		names = []*string{&rr.Mb}
	case *dns.MG:
		names = []*string{&rr.Mg}
	case *dns.MR:
		names = []*string{&rr.Mr}
	case *dns.PTR:
		names = []*string{&rr.Ptr}
	case *dns.MINFO:
		names = []*string{&rr.Rmail, &rr.Email}
	case *dns.MX:
		names = []*string{&rr.Mx}
	case *dns.RP:
		names = []*string{&rr.Mbox, &rr.Txt}
	case *dns.AFSDB:
		names = []*string{&rr.Hostname}
	case *dns.RT:
		names = []*string{&rr.Host}
	case *dns.PX:
		names = []*string{&rr.Map822, &rr.Mapx400}
	case *dns.NAPTR:
		names = []*string{&rr.Replacement}
	case *dns.KX:
		names = []*string{&rr.Exchanger}
	case *dns.SRV:
		names = []*string{&rr.Target}
	}
	for _, p := range names {
		_, name, err := canonicalName(*p)
		if err != nil {
			return err
		}
		*p = name
	}
	return nil
}

// wireName returns the uncompressed wire format of a presentation-format
// name, as written.
func wireName(s string) ([]byte, error) {
	var buf [256]byte
	n, err := dns.PackDomainName(dns.Fqdn(s), buf[:], 0, nil, false)
	if err != nil {
		return nil, fmt.Errorf("name %q: %w", s, err)
	}
	if n > 255 {
		return nil, fmt.Errorf("name %q is longer than 255 octets", s)
	}
	return bytes.Clone(buf[:n]), nil
}

// canonicalName returns the lowercase wire format of a name and the
// presentation format of that, so that every spelling of a name (letter
// case, escapes) comes out as one string: the compression of prepared
// answers matches names by their presentation strings.
func canonicalName(s string) (wire []byte, name string, err error) {
	wire, err = wireName(s)
	if err != nil {
		return nil, "", err
	}
	lowerASCII(wire)
	name, _, err = dns.UnpackDomainName(wire, 0)
	return wire, name, err
}

// lowerASCII lowercases the letters of a wire-format name in place. DNS
// names compare case-insensitively in ASCII only (RFC 4343); the length
// octets are below 'A' and never change.
func lowerASCII(b []byte) {
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
}

// isBelow reports whether the wire-format name is apex or below it: apex
// must be a suffix starting at a label boundary. Both are lowercase.
func isBelow(name, apex []byte) bool {
	for len(name) > len(apex) {
		name = name[1+int(name[0]):]
	}
	return bytes.Equal(name, apex)
}

// rdataWire returns the uncompressed RDATA of rr, for canonical ordering.
func rdataWire(rr dns.RR) ([]byte, error) {
	buf := make([]byte, dns.Len(rr)+256)
	end, err := dns.PackRR(rr, buf, 0, nil, false)
	if err != nil {
		return nil, err
	}
	// The RR ends with RDLENGTH octets of RDATA; RDLENGTH precedes them.
	_, start, err := dns.UnpackDomainName(buf, 0)
	if err != nil {
		return nil, err
	}
	start += 10
	if start > end {
		return nil, errors.New("short RR")
	}
	return buf[start:end], nil
}

// Names returns the zone's names in lowercase presentation format, empty
// non-terminals included, in canonical order (RFC 4034 §6.1).
func (z *Zone) Names() []string {
	nodes := make([]*node, 0, len(z.nodes))
	for _, n := range z.nodes {
		nodes = append(nodes, n)
	}
	slices.SortFunc(nodes, func(a, b *node) int { return compareCanonical([]byte(a.wire), []byte(b.wire)) })
	names := make([]string, len(nodes))
	for i, n := range nodes {
		names[i] = n.name
	}
	return names
}

// Types returns the types of the RRsets at name, ascending; none for an
// empty non-terminal or a name not in the zone.
func (z *Zone) Types(name string) []uint16 {
	wire, _, err := canonicalName(name)
	if err != nil {
		return nil
	}
	n := z.nodes[string(wire)]
	if n == nil {
		return nil
	}
	types := make([]uint16, len(n.sets))
	for i, s := range n.sets {
		types[i] = s.typ
	}
	return types
}

// compareCanonical orders lowercase wire-format names as RFC 4034 §6.1
// does: by their labels from the root, each compared as octets.
func compareCanonical(a, b []byte) int {
	la, lb := labelsOf(a), labelsOf(b)
	for i, j := len(la)-1, len(lb)-1; i >= 0 && j >= 0; i, j = i-1, j-1 {
		if c := bytes.Compare(la[i], lb[j]); c != 0 {
			return c
		}
	}
	return len(la) - len(lb)
}

func labelsOf(wire []byte) [][]byte {
	var ls [][]byte
	for i := 0; wire[i] != 0; i += 1 + int(wire[i]) {
		ls = append(ls, wire[i+1:i+1+int(wire[i])])
	}
	return ls
}
