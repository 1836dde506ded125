package zone

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/miekg/dns"
)

// Template is a wire-format query for one question of the zone, for load
// generators: its ID (octets 0 and 1) is zero, theirs to set.
type Template struct {
	Name string // presentation format, lowercase
	Type uint16
	// Kind and Size are what the zone answers, so that a generator can
	// check replies cheaply: the kind of answer, and its length in octets.
	Kind      Kind
	Truncated bool
	Size      int
	Query     []byte
}

// TemplateConfig shapes the queries of Templates. A nil *TemplateConfig
// means plain queries: no EDNS, RD set, every name and type, no
// nonexistent names.
type TemplateConfig struct {
	// EDNSSize, if not 0, adds an OPT record with this UDP payload size
	// (RFC 6891); DO sets its DNSSEC OK bit.
	EDNSSize uint16
	DO       bool
	// NoRD leaves the RD flag clear; stub resolvers set it, resolvers
	// asking an authoritative server usually do not.
	NoRD bool
	// NXDomain adds this many queries for names that do not exist
	// (nx0.<origin>, nx1.<origin>, ...), type A.
	NXDomain int
}

// Templates returns a query for each name of the zone and each type it
// holds (type A for an empty non-terminal, answered NODATA), in canonical
// name order, and then the NXDOMAIN queries of cfg.
func (z *Zone) Templates(cfg *TemplateConfig) []Template {
	var c TemplateConfig
	if cfg != nil {
		c = *cfg
	}
	var ts []Template
	resp := make([]byte, 65535)
	for _, name := range z.Names() {
		types := z.Types(name)
		if len(types) == 0 {
			types = []uint16{dns.TypeA}
		}
		for _, t := range types {
			ts = append(ts, z.template(name, t, &c, resp))
		}
	}
	for i := range c.NXDomain {
		ts = append(ts, z.template(fmt.Sprintf("nx%d.%s", i, z.origin), dns.TypeA, &c, resp))
	}
	return ts
}

func (z *Zone) template(name string, t uint16, c *TemplateConfig, resp []byte) Template {
	flags := uint16(flagRD)
	if c.NoRD {
		flags = 0
	}
	q := make([]byte, dnsHeaderLen, 64)
	binary.BigEndian.PutUint16(q[2:], flags)
	binary.BigEndian.PutUint16(q[4:], 1)
	wire, _ := wireName(name)
	q = append(q, wire...)
	q = binary.BigEndian.AppendUint16(q, t)
	q = binary.BigEndian.AppendUint16(q, dns.ClassINET)
	if c.EDNSSize != 0 {
		binary.BigEndian.PutUint16(q[10:], 1)
		var do byte
		if c.DO {
			do = 0x80
		}
		q = append(q, 0, 0, 41, byte(c.EDNSSize>>8), byte(c.EDNSSize), 0, 0, do, 0, 0, 0)
	}
	n, o := z.Respond(q, resp)
	return Template{Name: name, Type: t, Kind: o.Kind, Truncated: o.Truncated, Size: n, Query: q}
}

// WriteDnsperf writes templates as a dnsperf data file: one "name type"
// line per query. dnsperf sets EDNS and DO by its own flags (-e, -D).
func WriteDnsperf(w io.Writer, ts []Template) error {
	bw := bufio.NewWriter(w)
	for _, t := range ts {
		fmt.Fprintf(bw, "%s %s\n", t.Name, dns.Type(t.Type))
	}
	return bw.Flush()
}
