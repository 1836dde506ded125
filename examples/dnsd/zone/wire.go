package zone

import (
	"encoding/binary"
	"errors"

	"github.com/miekg/dns"
)

// The RRs of the zone are written the way Knot DNS's libknot writes them
// (rrset-wire.c), so that names come out compressed as Knot's do. That
// decides more than the size: a name that points into the question takes
// the query's letter case, one written out or pointing elsewhere does not,
// and clients that randomize the case of their queries (0x20) see the
// difference.
//
// libknot compresses each name against one earlier name only, the
// "suffix": at first the question, then the last name it wrote with more
// than a bare pointer. Owner names are compressed against the question
// (or point at the previous owner if equal), or follow a hint: the first
// answer RRset points at the question, and additional records point at the
// RDATA name that drew them in. RDATA names are compressed only in the
// RFC 1035 types; other types' names are written whole but still serve as
// hints.

// blockKind is the kind of a piece of RDATA, as in libknot's descriptors.
type blockKind uint8

const (
	rawBlock         blockKind = iota // copied as it is
	compressedName                    // a name, compressed (RFC 1035 types)
	uncompressedName                  // a name, written whole
)

// block is a piece of an RR's RDATA.
type block struct {
	kind blockKind
	b    []byte // lowercase wire format for names
}

// wireRR is an RR ready to write: its TTL and its RDATA in blocks. The
// owner and type are the RRset's.
type wireRR struct {
	ttl    uint32
	blocks []block
}

// splitRdata cuts an RR's uncompressed RDATA into blocks, after libknot's
// descriptor for the type: which octets are names, and whether they are
// compressed. SVCB and HTTPS targets are opaque to it.
func splitRdata(t uint16, rd []byte) ([]block, error) {
	var layout []int // >0: that many raw octets; -1 compressed name; -2 name; -3 NAPTR header
	switch t {
	case dns.TypeNS, dns.TypeCNAME, dns.TypePTR:
		layout = []int{-1}
	case dns.TypeSOA:
		layout = []int{-1, -1, 20}
	case dns.TypeMINFO:
		layout = []int{-1, -1}
	case dns.TypeMX:
		layout = []int{2, -1}
	case dns.TypeRP:
		layout = []int{-2, -2}
	case dns.TypeAFSDB, dns.TypeRT, dns.TypeKX:
		layout = []int{2, -2}
	case dns.TypeSRV:
		layout = []int{6, -2}
	case dns.TypeNAPTR:
		layout = []int{-3, -2}
	default:
		return []block{{rawBlock, rd}}, nil
	}
	var bs []block
	for _, l := range layout {
		n := l
		switch l {
		case -1, -2:
			n = nameLen(rd)
		case -3:
			n = 4
			for range 3 { // flags, services, regexp: <character-string>s
				if n >= len(rd) {
					return nil, errors.New("short NAPTR")
				}
				n += 1 + int(rd[n])
			}
		}
		if n <= 0 || n > len(rd) {
			return nil, errors.New("RDATA does not match its type")
		}
		k := rawBlock
		switch l {
		case -1:
			k = compressedName
		case -2:
			k = uncompressedName
		}
		bs = append(bs, block{k, rd[:n]})
		rd = rd[n:]
	}
	if len(rd) != 0 {
		return nil, errors.New("RDATA longer than its type")
	}
	return bs, nil
}

// nameLen returns the length of the uncompressed name at b[0:], or 0.
func nameLen(b []byte) int {
	for i := 0; i < len(b); i += 1 + int(b[i]) {
		if b[i] == 0 {
			return i + 1
		}
		if b[i]&0xC0 != 0 {
			return 0
		}
	}
	return 0
}

// maxHints is how many RRs of an RRset keep a hint to their RDATA name, as
// in libknot (KNOT_COMPR_HINT_COUNT - 1).
const maxHints = 15

// hints are where an RRset's names were written: its owner and the first
// name in the RDATA of each of its first RRs. 0 means none.
type hints struct {
	owner int
	rdata [maxHints]int
}

// packer appends RRsets to a message that holds a header and a question,
// as libknot does. It never allocates if b has the capacity.
type packer struct {
	b            []byte
	qLabels      int // labels of the question's name
	suffix       int // offset of the name compressed against
	suffixLabels int
}

// newPacker returns a packer for the message b, whose question's name
// starts at offset 12 and has qLabels labels.
func newPacker(b []byte, qLabels int) packer {
	return packer{b: b, qLabels: qLabels, suffix: dnsHeaderLen, suffixLabels: qLabels}
}

// seek returns the offset of the label at off, following pointers.
func (p *packer) seek(off int) int {
	for p.b[off]&0xC0 == 0xC0 {
		off = int(binary.BigEndian.Uint16(p.b[off:]) & 0x3FFF)
	}
	return off
}

// next returns the offset of the label after the one at off.
func (p *packer) next(off int) int { return p.seek(off + 1 + int(p.b[off])) }

// labelEqual compares a lowercase label with one in the message, whose
// letters may be uppercase (the question's).
func (p *packer) labelEqual(label []byte, off int) bool {
	if label[0] != p.b[off] {
		return false
	}
	for i := 1; i <= int(label[0]); i++ {
		c := p.b[off+i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if label[i] != c {
			return false
		}
	}
	return true
}

// nameEqual reports whether the lowercase name equals the name at off.
func (p *packer) nameEqual(name []byte, off int) bool {
	off = p.seek(off)
	for i := 0; ; {
		if !p.labelEqual(name[i:], off) {
			return false
		}
		if name[i] == 0 {
			return true
		}
		i += 1 + int(name[i])
		off = p.next(off)
	}
}

// putName appends a lowercase name compressed against the suffix, and
// returns how many octets it took (libknot's compr_put_dname).
func (p *packer) putName(name []byte) int {
	start := len(p.b)
	if name[0] == 0 {
		p.b = append(p.b, 0)
		return 1
	}
	labels := countLabels(name)
	suffix, suffixLabels := p.suffix, p.suffixLabels
	for ; suffixLabels > labels; suffixLabels-- {
		suffix = p.next(suffix)
	}
	i := 0
	for n := labels; n > suffixLabels; n-- { // the labels that cannot match
		i += 1 + int(name[i])
	}
	p.b = append(p.b, name[:i]...)
	match, ptr := i, suffix
	for name[i] != 0 {
		nextI, nextSuffix := i+1+int(name[i]), p.next(suffix)
		if !p.labelEqual(name[i:], suffix) {
			p.b = append(p.b, name[match:nextI]...)
			match, ptr = nextI, nextSuffix
		}
		i, suffix = nextI, nextSuffix
	}
	if match == i {
		p.b = append(p.b, 0)
	} else {
		p.b = binary.BigEndian.AppendUint16(p.b, 0xC000|uint16(ptr))
	}
	written := len(p.b) - start
	if written > 2 && start+written < 0x4000 {
		// "Expect similar names are grouped together."
		p.suffix, p.suffixLabels = start, labels
	}
	return written
}

// putRRset appends the RRs of an RRset with owner name owner (lowercase
// wire format) and returns where its names went. ownerHint, if not 0, is
// where an earlier copy of the owner name is. The caller has checked that
// it fits in b's capacity (size bounds it).
func (p *packer) putRRset(owner []byte, typ uint16, rrs []wireRR, ownerHint int) hints {
	h := hints{owner: ownerHint}
	for i, rr := range rrs {
		switch {
		case h.owner > 0:
			p.b = binary.BigEndian.AppendUint16(p.b, 0xC000|uint16(h.owner))
		case owner[0] != 0 && p.nameEqual(owner, p.suffix):
			p.b = binary.BigEndian.AppendUint16(p.b, 0xC000|uint16(p.suffix))
			h.owner = p.suffix
		default:
			p.suffix, p.suffixLabels = dnsHeaderLen, p.qLabels
			at := len(p.b)
			p.putName(owner)
			h.owner = at
		}
		p.b = binary.BigEndian.AppendUint16(p.b, typ)
		p.b = binary.BigEndian.AppendUint16(p.b, dns.ClassINET)
		p.b = binary.BigEndian.AppendUint32(p.b, rr.ttl)
		rdlen := len(p.b)
		p.b = append(p.b, 0, 0)
		for _, bl := range rr.blocks {
			at := len(p.b)
			switch bl.kind {
			case rawBlock:
				p.b = append(p.b, bl.b...)
				continue
			case compressedName:
				p.putName(bl.b)
			case uncompressedName:
				p.b = append(p.b, bl.b...)
			}
			if i < maxHints && h.rdata[i] == 0 && at < 0x4000 {
				h.rdata[i] = at
			}
		}
		binary.BigEndian.PutUint16(p.b[rdlen:], uint16(len(p.b)-rdlen-2))
	}
	return h
}

// size returns an upper bound of what putRRset appends.
func size(owner []byte, rrs []wireRR) int {
	n := 0
	for _, rr := range rrs {
		n += len(owner) + 10
		for _, bl := range rr.blocks {
			n += len(bl.b)
		}
	}
	return n
}
