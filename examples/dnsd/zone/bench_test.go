package zone_test

import (
	"testing"

	"github.com/miekg/dns"

	"github.com/pktengine/pktengine/examples/dnsd/internal/dnstest"
	"github.com/pktengine/pktengine/examples/dnsd/zone"
)

// BenchmarkRespond measures answering one query, parse to last octet, for
// the kinds of answer a responder gives most. SetBytes counts the query.
func BenchmarkRespond(b *testing.B) {
	z := loadTestZone(b)
	for _, c := range []struct {
		name string
		q    []byte
	}{
		{"A", dnstest.Query(1, "www.example.com.", dns.TypeA, false, 0)},
		{"A-EDNS-0x20", dnstest.Query(1, "WwW.eXaMpLe.CoM.", dns.TypeA, true, 1232)},
		{"MX-additional", dnstest.Query(1, "example.com.", dns.TypeMX, true, 1232)},
		{"CNAME-chain", dnstest.Query(1, "chain1.example.com.", dns.TypeAAAA, false, 0)},
		{"NODATA", dnstest.Query(1, "www.example.com.", dns.TypeTXT, false, 0)},
		{"NXDOMAIN", dnstest.Query(1, "nothere.example.com.", dns.TypeA, true, 1232)},
		{"truncated", dnstest.Query(1, "many.example.com.", dns.TypeA, false, 0)},
		{"REFUSED", dnstest.Query(1, "www.example.org.", dns.TypeA, false, 0)},
	} {
		b.Run(c.name, func(b *testing.B) {
			buf := make([]byte, zone.DefaultMaxUDPSize)
			if n, o := z.Respond(c.q, buf); n == 0 || o.Kind == zone.FormErr {
				b.Fatalf("%d %+v", n, o)
			}
			b.ReportAllocs()
			b.SetBytes(int64(len(c.q)))
			for b.Loop() {
				z.Respond(c.q, buf)
			}
		})
	}
}
