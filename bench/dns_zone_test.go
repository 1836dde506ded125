package bench

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// TestBenchZone parses the benchmark zone with miekg/dns and checks that
// every query asks what the zone has, with the RCODE it says: NOERROR for
// an A or AAAA of a host, NXDOMAIN for a name it does not hold.
func TestBenchZone(t *testing.T) {
	const names = 50
	var zf bytes.Buffer
	if err := writeBenchZone(&zf, names); err != nil {
		t.Fatal(err)
	}
	have := make(map[string]map[uint16]int)
	zp := dns.NewZoneParser(&zf, "", "bench.zone")
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		h := rr.Header()
		if have[h.Name] == nil {
			have[h.Name] = make(map[uint16]int)
		}
		have[h.Name][h.Rrtype]++
	}
	if err := zp.Err(); err != nil {
		t.Fatal(err)
	}
	if len(have) != names+2 || have[dnsOrigin][dns.TypeSOA] != 1 || have[dnsOrigin][dns.TypeNS] != 1 {
		t.Fatalf("zone has %d names: %v", len(have), have[dnsOrigin])
	}

	qs := benchQueries(names)
	if want := 2*names + 2*names/dnsNXShare; len(qs) != want {
		t.Fatalf("%d queries, want %d", len(qs), want)
	}
	seen := make(map[dnsQuery]bool)
	nx := 0
	for _, q := range qs {
		if seen[q] {
			t.Errorf("%+v twice", q)
		}
		seen[q] = true
		types, exists := have[q.Name]
		switch {
		case q.Rcode == dnsNXDomain:
			nx++
			if exists {
				t.Errorf("%s exists, the query expects NXDOMAIN", q.Name)
			}
		case q.Rcode != dnsNoError || types[q.Type] != 1:
			t.Errorf("%+v: the zone has %v", q, types)
		}
	}
	if nx != 2*names/dnsNXShare {
		t.Errorf("%d NXDOMAIN queries", nx)
	}
	if !slices.Equal(qs, benchQueries(names)) {
		t.Error("two calls give different queries: the order must be fixed")
	}
	if slices.IsSortedFunc(qs[:10], func(a, b dnsQuery) int { return strings.Compare(a.Name, b.Name) }) {
		t.Errorf("queries not shuffled: %v", qs[:10])
	}
}

// TestQueryWire unpacks every query with miekg/dns.
func TestQueryWire(t *testing.T) {
	for _, q := range append(benchQueries(20), dnsQuery{dnsOrigin, dnsTypeSOA, 0}, dnsQuery{".", dnsTypeA, 0}) {
		b, err := q.wire()
		if err != nil {
			t.Fatalf("%+v: %v", q, err)
		}
		var m dns.Msg
		if err := m.Unpack(b); err != nil {
			t.Fatalf("%+v: %v", q, err)
		}
		if m.Id != 0 || m.Response || !m.RecursionDesired || m.Opcode != dns.OpcodeQuery || len(m.Question) != 1 ||
			len(m.Answer)+len(m.Ns)+len(m.Extra) != 0 || m.Question[0] != (dns.Question{Name: q.Name, Qtype: q.Type, Qclass: dns.ClassINET}) {
			t.Errorf("%+v: %v", q, &m)
		}
	}
	for _, name := range []string{"a..example.", strings.Repeat("x", 64) + ".example.", "sp ace.example.", `esc\.aped.example.`, strings.Repeat("abcdefg.", 32)} {
		if _, err := (dnsQuery{Name: name, Type: dnsTypeA}).wire(); !errors.Is(err, errDNSName) {
			t.Errorf("%q: %v", name, err)
		}
	}
}

func TestDnsperfData(t *testing.T) {
	var b bytes.Buffer
	qs := []dnsQuery{{"h1.bench.example.", dnsTypeA, 0}, {"h1.bench.example.", dnsTypeAAAA, 0}, {"nx0.bench.example.", dnsTypeA, 3}, {"x.", 65, 0}}
	if err := writeDnsperfData(&b, qs); err != nil {
		t.Fatal(err)
	}
	want := "h1.bench.example. A\nh1.bench.example. AAAA\nnx0.bench.example. A\nx. TYPE65\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}
