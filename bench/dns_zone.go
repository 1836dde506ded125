package bench

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
)

// The DNS benchmark's zone and queries: a zone of host names with an A and
// an AAAA record each, and queries for every one of them plus a share of
// names that do not exist, shuffled once with a fixed seed so that every
// run and every tool sends the same sequence.

// dnsOrigin is the benchmark zone's origin.
const dnsOrigin = "bench.example."

// DNS types, classes and RCODEs the benchmark uses (RFC 1035, RFC 3596).
const (
	dnsTypeA     = 1
	dnsTypeSOA   = 6
	dnsTypeAAAA  = 28
	dnsClassIN   = 1
	dnsNoError   = 0
	dnsNXDomain  = 3
	dnsHeaderLen = 12
	dnsFlagRD    = 0x0100
)

var dnsTypeNames = map[uint16]string{dnsTypeA: "A", dnsTypeAAAA: "AAAA", dnsTypeSOA: "SOA"}

// dnsQuery is one question of the benchmark and the RCODE its answer must
// carry.
type dnsQuery struct {
	Name  string `json:"name"` // absolute, lowercase
	Type  uint16 `json:"type"`
	Rcode uint8  `json:"rcode"`
}

// dnsNXShare is the share of queries for names that do not exist: one in
// eleven (a tenth as many as the queries for names that do).
const dnsNXShare = 10

// writeBenchZone writes the benchmark zone of names hosts (h0 to
// h<names-1>, each with an A and an AAAA record) as an RFC 1035 master
// file.
func writeBenchZone(w io.Writer, names int) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "; pktengine's DNS benchmark zone: %d hosts with an A and an AAAA record each\n", names)
	fmt.Fprintf(bw, "$ORIGIN %s\n$TTL 3600\n", dnsOrigin)
	fmt.Fprintf(bw, "@    SOA  ns1 hostmaster 1 7200 3600 1209600 300\n@    NS   ns1\nns1  A    198.18.0.53\n")
	for i := range names {
		// The records' addresses are data in the zone, never used as
		// addresses: 198.18.0.0/15 and the documentation prefix.
		fmt.Fprintf(bw, "h%d A 198.18.%d.%d\nh%d AAAA 2001:db8::%x\n", i, 128+(i>>8)&0x7f, i&0xff, i, i+1)
	}
	return bw.Flush()
}

// benchQueries returns the benchmark's queries for a zone of names hosts:
// an A and an AAAA query for every host, and one query of type A for a
// name that does not exist per dnsNXShare of those, shuffled with a fixed
// seed.
func benchQueries(names int) []dnsQuery {
	qs := make([]dnsQuery, 0, 2*names+2*names/dnsNXShare)
	for i := range names {
		name := fmt.Sprintf("h%d.%s", i, dnsOrigin)
		qs = append(qs, dnsQuery{name, dnsTypeA, dnsNoError}, dnsQuery{name, dnsTypeAAAA, dnsNoError})
	}
	for i := range 2 * names / dnsNXShare {
		qs = append(qs, dnsQuery{fmt.Sprintf("nx%d.%s", i, dnsOrigin), dnsTypeA, dnsNXDomain})
	}
	r := rand.New(rand.NewPCG(2544, 1035))
	r.Shuffle(len(qs), func(i, j int) { qs[i], qs[j] = qs[j], qs[i] })
	return qs
}

// writeDnsperfData writes queries as a dnsperf (and kxdpgun) data file:
// one "name type" line each.
func writeDnsperfData(w io.Writer, qs []dnsQuery) error {
	bw := bufio.NewWriter(w)
	for _, q := range qs {
		t, ok := dnsTypeNames[q.Type]
		if !ok {
			t = fmt.Sprintf("TYPE%d", q.Type)
		}
		fmt.Fprintf(bw, "%s %s\n", q.Name, t)
	}
	return bw.Flush()
}

var errDNSName = errors.New("bench: not a DNS name the benchmark can send")

// appendDNSName appends name (absolute, in presentation format without
// escapes) in wire format: length-prefixed labels and the root's zero.
func appendDNSName(b []byte, name string) ([]byte, error) {
	name = strings.TrimSuffix(name, ".")
	if name != "" {
		for label := range strings.SplitSeq(name, ".") {
			if len(label) == 0 || len(label) > 63 || strings.ContainsAny(label, `\ `) {
				return nil, fmt.Errorf("%w: %q", errDNSName, name)
			}
			b = append(b, byte(len(label)))
			b = append(b, label...)
		}
	}
	if len(name) > 253 {
		return nil, fmt.Errorf("%w: %q is too long", errDNSName, name)
	}
	return append(b, 0), nil
}

// wire returns q as a DNS message: ID 0 (the generator sets it), RD set
// (as dnsperf and stub resolvers send it), one question of class IN, no
// EDNS.
func (q dnsQuery) wire() ([]byte, error) {
	b := make([]byte, dnsHeaderLen, dnsHeaderLen+len(q.Name)+6)
	binary.BigEndian.PutUint16(b[2:], dnsFlagRD)
	binary.BigEndian.PutUint16(b[4:], 1)
	b, err := appendDNSName(b, q.Name)
	if err != nil {
		return nil, err
	}
	b = binary.BigEndian.AppendUint16(b, q.Type)
	return binary.BigEndian.AppendUint16(b, dnsClassIN), nil
}
