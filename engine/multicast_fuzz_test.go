package engine

import (
	"encoding/binary"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pktengine/pktengine/frame"
	"github.com/pktengine/pktengine/ring"
)

// FuzzMulticastQuery feeds arbitrary IGMP and MLD messages, wrapped in
// valid headers and checksums so that they reach the query logic, to an
// engine with joined groups of every kind, then runs its timers far
// ahead. Whatever a query says, every frame ends in one outcome, the
// state stays within its bounds, and the only reports sent are valid
// ones (reports checks them) that name groups the engine joined, and for
// an answer to a group-and-source-specific query only sources that query
// could have named.
func FuzzMulticastQuery(f *testing.F) {
	addQuery := func(fr []byte) {
		var p frame.Packet
		p.Decode(fr)
		f.Add(fr[p.L4Off:p.L4End], p.IPVersion == 6, uint8(1), uint32(10))
	}
	addQuery(igmpQuery(f, 3, netip.Addr{}, 100, 2, 125))
	addQuery(igmpQuery(f, 3, ssm4, 10, 2, 125, srcA4, srcC4))
	addQuery(igmpQuery(f, 2, group4, 20, 0, 0))
	addQuery(igmpQuery(f, 1, netip.Addr{}, 0, 0, 0))
	addQuery(mldQuery(f, 2, netip.Addr{}, 1000))
	addQuery(mldQuery(f, 2, group6, 0x8fff, srcA6))
	addQuery(mldQuery(f, 1, group6, 500))

	f.Fuzz(func(t *testing.T, msg []byte, v6 bool, times uint8, step uint32) {
		if len(msg) > 1400 {
			return
		}
		r := newMrig(t, nil)
		p := r.bind(ap(netip.Addr{}, 5000))
		must(t, p.JoinGroup(group4))
		must(t, p.BlockSource(group4, srcA4))
		must(t, p.JoinSourceGroup(ssm4, srcA4))
		must(t, p.JoinGroup(group6))
		must(t, p.JoinSourceGroup(netip.MustParseAddr("ff35::1"), srcA6))
		joined := map[netip.Addr]bool{group4: true, ssm4: true, group6: true, netip.MustParseAddr("ff35::1"): true}
		r.tx.take()
		r.e.tx.(*fakeTX).take()

		fr := wrapQuery(t, msg, v6)
		var asked []netip.Addr // the sources the message could name
		for i := 0; i+4 <= len(msg); i++ {
			asked = append(asked, netip.AddrFrom4([4]byte(msg[i:i+4])))
		}
		for i := 0; i+16 <= len(msg); i++ {
			asked = append(asked, netip.AddrFrom16([16]byte(msg[i:i+16])))
		}
		for range 1 + times%4 {
			if o := r.one(fr, ring.Meta{Timestamp: r.now, Type: ring.PacketMulticast}); o >= NumOutcomes {
				t.Fatalf("no single outcome")
			}
			r.at(time.Duration(step) * time.Millisecond)
		}
		for range 50 {
			d := r.next()
			if d < 0 {
				break
			}
			r.at(d)
		}
		for _, rp := range r.reports() {
			groups := rp.records
			if rp.group.IsValid() {
				groups = append(groups, "x "+rp.group.String()+" []")
			}
			for _, rec := range groups {
				fs := strings.Fields(rec)
				g := netip.MustParseAddr(fs[1])
				if !joined[g] {
					t.Fatalf("a report names %v, which is not joined: %q", g, rec)
				}
				if fs[0] == "is-in" && g == group4 {
					// An answer to a group-and-source query about
					// an EXCLUDE group: only queried sources.
					for _, s := range strings.Split(strings.Trim(strings.Join(fs[2:], " "), "[]"), " ") {
						if a, err := netip.ParseAddr(s); err == nil && !slices.Contains(asked, a) {
							t.Fatalf("an answer names source %v, which the query did not", a)
						}
					}
				}
			}
		}
		r.m.mu.Lock()
		for i := range r.m.fams {
			for _, g := range r.m.fams[i].groups {
				if len(g.gsSources) > maxQuerySources {
					t.Fatalf("%d query sources kept", len(g.gsSources))
				}
			}
		}
		r.m.mu.Unlock()
		if c := r.e.Counters(); c.Check() != nil {
			t.Fatal(c.Check())
		}
	})
}

// wrapQuery puts msg, as an IGMP message or an ICMPv6 message, in a frame
// that passes every check before the query logic: IP checksum, the
// message's checksum, for MLD a link-local source, hop limit 1 and Router
// Alert.
func wrapQuery(t *testing.T, msg []byte, v6 bool) []byte {
	t.Helper()
	buf := make([]byte, 2048)
	if v6 {
		n, err := frame.BuildMLDv2Report(buf, &frame.IPSpec{SrcMAC: macPeer, Src: querier, Dst: frame.IPv6AllNodes}, nil)
		if err != nil {
			t.Fatal(err)
		}
		n = n - frame.MLDv2ReportHeaderLen + copy(buf[n-frame.MLDv2ReportHeaderLen:], msg)
		ip := frame.IPv6(buf[14:n])
		ip.SetPayloadLength(uint16(n - 14 - 40))
		m := frame.ICMPv6(buf[14+48 : n])
		if len(m) >= 4 {
			m.SetChecksum(0)
			m.SetChecksum(m.CalculateChecksum(ip.PseudoHeaderSum(58, uint32(len(m)))))
		}
		return buf[:n]
	}
	n, err := frame.BuildIGMPv2Report(buf, &frame.IPSpec{SrcMAC: macPeer, Src: peer4, Dst: frame.IPv4AllSystems}, netip.MustParseAddr("224.0.0.99"))
	if err != nil {
		t.Fatal(err)
	}
	n = n - frame.IGMPHeaderLen + copy(buf[n-frame.IGMPHeaderLen:], msg)
	binary.BigEndian.PutUint16(buf[14+2:], uint16(n-14))
	binary.BigEndian.PutUint16(buf[14+10:], 0)
	binary.BigEndian.PutUint16(buf[14+10:], ^refSum(buf[14:14+24]))
	if m := buf[14+24 : n]; len(m) >= 4 {
		binary.BigEndian.PutUint16(m[2:], 0)
		binary.BigEndian.PutUint16(m[2:], ^refSum(m))
	}
	return buf[:n]
}
