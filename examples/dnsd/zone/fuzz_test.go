package zone_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/miekg/dns"

	"github.com/pktengine/pktengine/examples/dnsd/internal/dnstest"
	"github.com/pktengine/pktengine/examples/dnsd/zone"
)

func addSeeds(f *testing.F) {
	z, err := zone.LoadFile(testZone, "", nil)
	if err != nil {
		f.Fatal(err)
	}
	for _, c := range dnstest.Cases(z.Origin(), z.Names()) {
		f.Add(c.Query)
	}
}

// FuzzParseQuery checks ParseQuery against github.com/miekg/dns's Unpack,
// both ways:
//
//   - a query ParseQuery finds Valid has a question Unpack reads to the
//     same name, type and class, and when Unpack reads the whole message
//     it agrees on EDNS and TSIG too;
//   - a message Unpack reads and Pack writes back octet for octet (so: no
//     compression, no trailing octets) is Valid, unless it is a response,
//     has more than one question, or misplaces OPT or TSIG records, which
//     ParseQuery drops or finds Malformed.
func FuzzParseQuery(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, msg []byte) {
		var q zone.Query
		v := zone.ParseQuery(msg, &q)
		var m dns.Msg
		err := m.Unpack(msg)

		if v == zone.Valid {
			if q.QDCount == 1 {
				checkQuestion(t, msg, &q)
			}
			if err == nil {
				checkFields(t, &m, &q)
			}
		}

		if err != nil || len(msg) > 65535 {
			return
		}
		repacked, perr := m.Pack()
		if perr != nil || !bytes.Equal(repacked, msg) {
			return
		}
		want := zone.Valid
		switch {
		case m.Response, len(m.Question) > 1:
			want = zone.Drop
		case misplaced(&m):
			want = zone.Malformed
			if len(m.Question) == 0 {
				want = zone.Drop
			}
		}
		if v != want {
			t.Fatalf("ParseQuery says %d, want %d, for the canonical message %x:\n%v", v, want, msg, &m)
		}
		if v == zone.Valid {
			checkFields(t, &m, &q)
		}
	})
}

// checkQuestion unpacks the header and question alone with miekg/dns and
// compares them with q.
func checkQuestion(t *testing.T, msg []byte, q *zone.Query) {
	t.Helper()
	head := bytes.Clone(msg[:12+len(q.Name())+4])
	binary.BigEndian.PutUint16(head[6:], 0)
	binary.BigEndian.PutUint32(head[8:], 0)
	var m dns.Msg
	if err := m.Unpack(head); err != nil {
		t.Fatalf("ParseQuery reads a question miekg/dns does not: %v (%x)", err, msg)
	}
	if len(m.Question) != 1 {
		t.Fatalf("miekg/dns reads %d questions", len(m.Question))
	}
	name := make([]byte, 256)
	n, err := dns.PackDomainName(m.Question[0].Name, name, 0, nil, false)
	if err != nil || !bytes.Equal(name[:n], q.Name()) || m.Question[0].Qtype != q.Type || m.Question[0].Qclass != q.Class {
		t.Fatalf("question %x %d %d, miekg/dns reads %v (%v)", q.Name(), q.Type, q.Class, m.Question[0], err)
	}
	if m.Id != q.ID || m.Opcode != q.Opcode() || m.RecursionDesired != (q.Flags&(1<<8) != 0) {
		t.Fatalf("header %s, miekg/dns reads %+v", describe(q), m.MsgHdr)
	}
}

// checkFields compares what ParseQuery read with a message miekg/dns read.
func checkFields(t *testing.T, m *dns.Msg, q *zone.Query) {
	t.Helper()
	opt := m.IsEdns0()
	if (opt != nil) != q.EDNS {
		t.Fatalf("EDNS %v, miekg/dns reads %v", q.EDNS, opt)
	}
	if opt != nil && (opt.Version() != q.Version || opt.Do() != q.DO || opt.UDPSize() != q.UDPSize) {
		t.Fatalf("EDNS version %d DO %v size %d, miekg/dns reads %v", q.Version, q.DO, q.UDPSize, opt)
	}
	if (m.IsTsig() != nil) != q.TSIG {
		t.Fatalf("TSIG %v, miekg/dns reads %v", q.TSIG, m.IsTsig())
	}
	var back zone.Query
	if err := zone.QueryFromMsg(m, &back); err != nil || back != *q {
		t.Fatalf("QueryFromMsg gives %s (%v), ParseQuery %s", describe(&back), err, describe(q))
	}
}

func describe(q *zone.Query) string {
	return fmt.Sprintf("id=%d flags=%#x qd=%d name=%x type=%d class=%d edns=%v/%d/%v/%d tsig=%v",
		q.ID, q.Flags, q.QDCount, q.Name(), q.Type, q.Class, q.EDNS, q.Version, q.DO, q.UDPSize, q.TSIG)
}

// misplaced reports whether the message has an OPT record outside the
// additional section or more than one, or a TSIG record that is not the
// last of the additional section (RFC 6891 §6.1.1, RFC 8945 §5.1).
func misplaced(m *dns.Msg) bool {
	for _, rr := range append(append([]dns.RR(nil), m.Answer...), m.Ns...) {
		if t := rr.Header().Rrtype; t == dns.TypeOPT || t == dns.TypeTSIG {
			return true
		}
	}
	opts := 0
	for i, rr := range m.Extra {
		switch rr.Header().Rrtype {
		case dns.TypeOPT:
			opts++
		case dns.TypeTSIG:
			if i != len(m.Extra)-1 {
				return true
			}
		}
	}
	return opts > 1
}

// FuzzRespond: whatever arrives, Respond does not panic, and what it
// sends is a DNS response that fits its buffer, that miekg/dns reads,
// with the query's ID, and the query's question when it has one.
func FuzzRespond(f *testing.F) {
	addSeeds(f)
	z, err := zone.LoadFile(testZone, "", nil)
	if err != nil {
		f.Fatal(err)
	}
	buf := make([]byte, 700)
	f.Fuzz(func(t *testing.T, msg []byte) {
		n, o := z.Respond(msg, buf)
		if n == 0 {
			if o.Kind != zone.Dropped {
				t.Fatalf("nothing sent, outcome %+v", o)
			}
			return
		}
		var m dns.Msg
		if err := m.Unpack(buf[:n]); err != nil {
			t.Fatalf("response %x does not unpack: %v (query %x)", buf[:n], err, msg)
		}
		if !m.Response || m.Id != binary.BigEndian.Uint16(msg) {
			t.Fatalf("response %v to %x", &m.MsgHdr, msg)
		}
		var q zone.Query
		if zone.ParseQuery(msg, &q) != zone.Drop && q.QDCount == 1 {
			if len(m.Question) != 1 || !bytes.Equal(buf[12:12+len(q.Name())], q.Name()) {
				t.Fatalf("question not echoed: %x for %x", buf[:n], msg)
			}
		}
	})
}
