package zone_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/pktengine/pktengine/examples/dnsd/internal/dnstest"
	"github.com/pktengine/pktengine/examples/dnsd/zone"
)

const (
	testZone   = "../testdata/example.com.zone"
	goldenFile = "../testdata/knot-answers.txt"
)

func loadTestZone(t testing.TB) *zone.Zone {
	t.Helper()
	z, err := zone.LoadFile(testZone, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	return z
}

func readGolden(t testing.TB) []dnstest.Golden {
	t.Helper()
	gs, err := dnstest.ReadGoldenFile(goldenFile)
	if err != nil {
		t.Fatal(err)
	}
	if len(gs) < 1000 {
		t.Fatalf("%s holds %d answers; regenerate it with the lab test's -update-golden", goldenFile, len(gs))
	}
	return gs
}

// TestKnotRecorded compares Respond with Knot DNS's answers to the same
// queries, recorded by the lab test (examples/dnsd TestKnotOracle
// -update-golden), so that the comparison runs where Knot and the lab
// cannot.
func TestKnotRecorded(t *testing.T) {
	z := loadTestZone(t)
	gs := readGolden(t)
	// The recording must be of the current cases: a changed case list or
	// zone needs a new recording.
	cases := dnstest.Cases(z.Origin(), z.Names())
	if len(cases) != len(gs) {
		t.Fatalf("%d cases, %d recorded answers: regenerate %s", len(cases), len(gs), goldenFile)
	}
	buf := make([]byte, 65535)
	for i, g := range gs {
		if cases[i].Name != g.Name || string(cases[i].Query) != string(g.Query) {
			t.Fatalf("case %d is %q, recorded %q: regenerate %s", i, cases[i].Name, g.Name, goldenFile)
		}
		n, _ := z.Respond(g.Query, buf)
		var got []byte
		if n > 0 {
			got = buf[:n]
		}
		if why, ok := dnstest.Deliberate(g.Name); ok {
			if diffs := dnstest.CheckDeliberate(g.Name, g.Query, got); len(diffs) > 0 {
				t.Errorf("%s (%s): %s", g.Name, why, strings.Join(diffs, "; "))
			}
			continue
		}
		if diffs := dnstest.Compare(g.Response, got); len(diffs) > 0 {
			t.Errorf("%s: differs from Knot: %s\nquery %x", g.Name, strings.Join(diffs, "; "), g.Query)
		}
	}
}

// TestRespondAllocs: answering allocates nothing, whatever the query.
func TestRespondAllocs(t *testing.T) {
	z := loadTestZone(t)
	gs := readGolden(t)
	buf := make([]byte, 1500)
	allocs := testing.AllocsPerRun(20, func() {
		for _, g := range gs {
			z.Respond(g.Query, buf)
		}
	})
	if allocs != 0 {
		t.Errorf("Respond allocates: %v allocations for %d queries", allocs, len(gs))
	}
}

// TestRespondBuffer: a buffer smaller than what the client takes caps the
// answer, which is then cut and marked truncated; one below 512 octets is
// refused.
func TestRespondBuffer(t *testing.T) {
	z := loadTestZone(t)
	q := dnstest.Query(7, "many.example.com.", dns.TypeA, true, 4096)
	buf := make([]byte, 65535)
	n, o := z.Respond(q, buf)
	if o.Truncated || o.Kind != zone.Answer || n <= 600 {
		t.Fatalf("full buffer: %d octets, %+v; want the whole answer", n, o)
	}
	n, o = z.Respond(q, buf[:600])
	if !o.Truncated || n > 600 {
		t.Fatalf("600-octet buffer: %d octets, %+v; want a truncated answer within 600", n, o)
	}
	var m dns.Msg
	if err := m.Unpack(buf[:n]); err != nil || !m.Truncated || len(m.Answer) != 0 || m.IsEdns0() == nil {
		t.Errorf("600-octet buffer: %v %v", err, &m)
	}
	if n, o := z.Respond(q, buf[:zone.MinResponseBuffer-1]); n != 0 || o.Kind != zone.Dropped {
		t.Errorf("small buffer: %d, %+v", n, o)
	}
}

func TestLoad(t *testing.T) {
	z := loadTestZone(t)
	if z.Origin() != "example.com." {
		t.Errorf("Origin %q", z.Origin())
	}
	names := z.Names()
	for _, want := range []string{"example.com.", "ent.example.com.", "a.ent.example.com.", "_udp.example.com.", "casetest.example.com.", `with\.dot.example.com.`} {
		if !slices.Contains(names, want) {
			t.Errorf("Names lacks %s", want)
		}
	}
	if slices.Contains(names, "CaseTest.example.com.") {
		t.Error("names are not lowercase")
	}
	if got := z.Types("CASETEST.example.com."); !slices.Equal(got, []uint16{dns.TypeA, dns.TypeTXT}) {
		t.Errorf("Types(casetest) = %v", got)
	}
	if got := z.Types("ent.example.com."); len(got) != 0 {
		t.Errorf("Types of an empty non-terminal = %v", got)
	}
	if z.MaxUDPSize() != zone.DefaultMaxUDPSize {
		t.Errorf("MaxUDPSize %d", z.MaxUDPSize())
	}
	small, err := zone.Load(strings.NewReader("@ 60 SOA ns hm 1 2 3 4 5\n"), "x.", "small", &zone.Config{MaxUDPSize: 100})
	if err != nil || small.MaxUDPSize() != 512 {
		t.Errorf("MaxUDPSize 100: %v, %v", small, err)
	}
}

func TestLoadRejects(t *testing.T) {
	const soa = "@ 3600 IN SOA ns1 hostmaster 1 7200 3600 1209600 300\n"
	for _, c := range []struct{ name, zone, want string }{
		{"no SOA", "www 60 A 192.0.2.1\n", "no SOA"},
		{"two SOAs", soa + "sub SOA ns1 hostmaster 1 2 3 4 5\n", "more than one SOA"},
		{"outside", soa + "www.example.net. A 192.0.2.1\n", "outside the zone"},
		{"sibling", soa + "xexample.com. A 192.0.2.1\n", "outside the zone"},
		{"wildcard", soa + "*.www A 192.0.2.1\n", "wildcards"},
		{"delegation", soa + "sub NS ns.sub\n", "delegation"},
		{"DNAME", soa + "d DNAME example.net.\n", "DNAME"},
		{"signed", soa + "@ RRSIG A 8 2 300 20300101000000 20200101000000 1 example.com. AAAA\n", "signed"},
		{"NSEC", soa + "@ NSEC www A\n", "signed"},
		{"CNAME and data", soa + "c CNAME www\nc A 192.0.2.1\n", "CNAME and other data"},
		{"two CNAMEs", soa + "c CNAME www\nc CNAME mail\n", "more than one CNAME"},
		{"class", soa + "www CH A 192.0.2.1\n", "class"},
		{"syntax", soa + "www A 300.1.2.3\n", "zone:"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := zone.Load(strings.NewReader(c.zone), "example.com.", "test", nil)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Load: %v, want an error with %q", err, c.want)
			}
		})
	}
}

func TestTemplates(t *testing.T) {
	z := loadTestZone(t)
	ts := z.Templates(&zone.TemplateConfig{EDNSSize: 1232, NXDomain: 3})
	kinds := map[zone.Kind]int{}
	buf := make([]byte, 65535)
	for _, tm := range ts {
		kinds[tm.Kind]++
		if tm.Query[0] != 0 || tm.Query[1] != 0 {
			t.Errorf("%s %d: ID not zero", tm.Name, tm.Type)
		}
		var m dns.Msg
		if err := m.Unpack(tm.Query); err != nil || len(m.Question) != 1 || m.IsEdns0() == nil || !m.RecursionDesired {
			t.Fatalf("%s %d: query %v (%v)", tm.Name, tm.Type, &m, err)
		}
		if n, o := z.Respond(tm.Query, buf); n != tm.Size || o.Kind != tm.Kind {
			t.Errorf("%s %d: template says %d octets %v, Respond %d %v", tm.Name, tm.Type, tm.Size, tm.Kind, n, o.Kind)
		}
	}
	// Every RRset of the zone, the empty non-terminals and the three
	// nonexistent names; CNAME names are answered through their chains.
	if kinds[zone.NXDomain] < 3 || kinds[zone.NoData] == 0 || kinds[zone.Answer] < 40 || kinds[zone.Refused]+kinds[zone.FormErr]+kinds[zone.Dropped] != 0 {
		t.Errorf("kinds of the templates' answers: %v", kinds)
	}
	var out strings.Builder
	if err := zone.WriteDnsperf(&out, ts[:2]); err != nil || out.String() != "example.com. A\nexample.com. NS\n" {
		t.Errorf("WriteDnsperf: %q, %v", out.String(), err)
	}
}
