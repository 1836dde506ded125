package frame

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"net/netip"
	"os"
	"os/exec"
	"testing"
	"time"
)

// Scapy (Debian's python3-scapy, installed for /usr/bin/python3) is the
// second oracle for IGMP and MLD: it decodes the reports the builders
// write, checksums included, and builds the queries the parsers read.

const scapyPython = "/usr/bin/python3"

// runScapy runs script with input as JSON on stdin and decodes its JSON
// output into out. Without scapy it skips, or fails when CI=true.
func runScapy(t *testing.T, script string, input, out any) {
	t.Helper()
	if err := exec.Command(scapyPython, "-c", "import scapy.all").Run(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("scapy is not installed for %s (python3-scapy): %v", scapyPython, err)
		}
		t.Skipf("scapy is not installed for %s (apt-get install python3-scapy): %v", scapyPython, err)
	}
	in, err := json.Marshal(input)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(scapyPython, "-c", script)
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	b, err := cmd.Output()
	if err != nil {
		t.Fatalf("scapy: %v\n%s", err, stderr.String())
	}
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatalf("scapy output: %v\n%s", err, b)
	}
}

// scapyDecode decodes frames and reports what it finds, and whether each
// checksum equals the one scapy computes itself.
const scapyDecode = `
import json, sys
from scapy.all import Ether, IP, IPv6, raw, IPOption_Router_Alert
from scapy.layers.inet6 import IPv6ExtHdrHopByHop, RouterAlert, ICMPv6MLReport2, ICMPv6MLReport, ICMPv6MLDone, ICMPv6MLDMultAddrRec
from scapy.contrib.igmp import IGMP
from scapy.contrib.igmpv3 import IGMPv3, IGMPv3mr

def checksum_ok(pkt, layer, field):
    l = pkt[layer]
    got = getattr(l, field)
    c = pkt.copy()
    setattr(c[layer], field, None)
    if layer is not IP and IP in c:
        c[IP].chksum = None
    c = Ether(raw(c))
    return getattr(c[layer], field) == got

out = []
for h in json.load(sys.stdin):
    p = Ether(bytes.fromhex(h))
    d = {}
    if IP in p:
        ip = p[IP]
        d["ttl"], d["tos"], d["dst"], d["df"] = ip.ttl, ip.tos, ip.dst, bool(ip.flags.DF)
        d["ra"] = any(isinstance(o, IPOption_Router_Alert) and o.alert == 0 for o in ip.options)
        d["ipsum"] = checksum_ok(p, IP, "chksum")
    if IPv3 := p.getlayer(IGMPv3):
        d["type"] = IPv3.type
        d["sum"] = checksum_ok(p, IGMPv3, "chksum")
        if IGMPv3mr in p:
            d["records"] = [{"type": r.rtype, "group": r.maddr, "sources": list(r.srcaddrs), "aux": r.auxdlen} for r in p[IGMPv3mr].records]
    elif IGMP in p:
        d["type"], d["group"] = p[IGMP].type, p[IGMP].gaddr
        d["sum"] = checksum_ok(p, IGMP, "chksum")
    if IPv6 in p:
        ip = p[IPv6]
        d["ttl"], d["dst"] = ip.hlim, ip.dst
        d["ra"] = IPv6ExtHdrHopByHop in p and any(isinstance(o, RouterAlert) and o.value == 0 for o in p[IPv6ExtHdrHopByHop].options)
        for cls in (ICMPv6MLReport2, ICMPv6MLReport, ICMPv6MLDone):
            if cls in p:
                d["type"] = p[cls].type
                d["sum"] = checksum_ok(p, cls, "cksum")
                if cls is ICMPv6MLReport2:
                    # scapy chains each record as the payload of the one before
                    recs = []
                    for r in p[cls].records:
                        while isinstance(r, ICMPv6MLDMultAddrRec):
                            recs.append(r)
                            r = r.payload
                    d["records"] = [{"type": r.rtype, "group": r.dst, "sources": list(r.sources), "aux": r.auxdata_len} for r in recs]
                else:
                    d["group"] = p[cls].mladdr
    out.append(d)
json.dump(out, sys.stdout)
`

type scapyReport struct {
	TTL     int    `json:"ttl"`
	TOS     int    `json:"tos"`
	Dst     string `json:"dst"`
	DF      bool   `json:"df"`
	RA      bool   `json:"ra"`
	IPSum   *bool  `json:"ipsum"`
	Type    int    `json:"type"`
	Sum     bool   `json:"sum"`
	Group   string `json:"group"`
	Records []struct {
		Type    int      `json:"type"`
		Group   string   `json:"group"`
		Sources []string `json:"sources"`
		Aux     int      `json:"aux"`
	} `json:"records"`
}

// TestScapyDecodesReports: scapy reads every report the builders write
// with valid checksums, the Router Alert option and the RFC's addresses.
func TestScapyDecodesReports(t *testing.T) {
	s4, s6 := &IPSpec{SrcMAC: macA, Src: s4a}, &IPSpec{SrcMAC: macA, Src: ll6}
	// scapy 2.5 reads no auxiliary data in IGMPv3 records and counts MLDv2
	// aux data in bytes rather than words, so it gets the records without
	// (gopacket checks those with).
	noAux := func(rs []GroupRecord) []GroupRecord {
		out := append([]GroupRecord(nil), rs...)
		for i := range out {
			out[i].AuxData = nil
		}
		return out
	}
	rec4, rec6 := noAux(rec4), noAux(rec6)
	type want struct {
		typ     uint8
		dst     netip.Addr
		group   netip.Addr
		records []GroupRecord
	}
	var frames []string
	var wants []want
	add := func(fn func([]byte) (int, error), w want) {
		frames = append(frames, hex.EncodeToString(build(t, fn)))
		wants = append(wants, w)
	}
	add(func(b []byte) (int, error) { return BuildIGMPv3Report(b, s4, rec4) }, want{IGMPv3MembershipReport, IGMPv3Routers, netip.Addr{}, rec4})
	add(func(b []byte) (int, error) { return BuildIGMPv2Report(b, s4, g4a) }, want{IGMPv2MembershipReport, g4a, g4a, nil})
	add(func(b []byte) (int, error) { return BuildIGMPv2Leave(b, s4, g4b) }, want{IGMPv2LeaveGroup, IPv4AllRouters, g4b, nil})
	add(func(b []byte) (int, error) { return BuildIGMPv1Report(b, s4, g4a) }, want{IGMPv1MembershipReport, g4a, g4a, nil})
	add(func(b []byte) (int, error) { return BuildMLDv2Report(b, s6, rec6) }, want{MLDv2Report, MLDv2Routers, netip.Addr{}, rec6})
	add(func(b []byte) (int, error) { return BuildMLDv1Report(b, s6, g6a) }, want{MLDv1Report, g6a, g6a, nil})
	add(func(b []byte) (int, error) { return BuildMLDv1Done(b, s6, g6b) }, want{MLDv1Done, IPv6AllRouters, g6b, nil})

	var got []scapyReport
	runScapy(t, scapyDecode, frames, &got)
	if len(got) != len(wants) {
		t.Fatalf("%d results for %d frames", len(got), len(wants))
	}
	for i, w := range wants {
		g := got[i]
		v4 := w.dst.Is4()
		if g.Type != int(w.typ) || !g.Sum || !g.RA || g.TTL != 1 || g.Dst != w.dst.String() ||
			v4 && (g.TOS != IGMPTOS || !g.DF || g.IPSum == nil || !*g.IPSum) {
			t.Errorf("frame %d (type %d): scapy reads %+v", i, w.typ, g)
		}
		if w.group.IsValid() && g.Group != w.group.String() {
			t.Errorf("frame %d: group %s, want %v", i, g.Group, w.group)
		}
		if len(g.Records) != len(w.records) {
			t.Errorf("frame %d: %d records, want %d", i, len(g.Records), len(w.records))
			continue
		}
		for j, r := range w.records {
			gr := g.Records[j]
			if gr.Type != int(r.Type) || gr.Group != r.Group.String() || len(gr.Sources) != len(r.Sources) || gr.Aux != len(r.AuxData)/4 {
				t.Errorf("frame %d record %d: %+v, want %+v", i, j, gr, r)
				continue
			}
			for k, src := range r.Sources {
				if gr.Sources[k] != src.String() {
					t.Errorf("frame %d record %d source %d: %s", i, j, k, gr.Sources[k])
				}
			}
		}
	}
}

// scapyQueries builds queries of every version with scapy, and encodes
// Max Resp Codes with its encode_maxrespcode.
const scapyQueries = `
import json, sys
from scapy.all import Ether, IP, IPv6, raw, IPOption_Router_Alert
from scapy.layers.inet6 import IPv6ExtHdrHopByHop, RouterAlert, ICMPv6MLQuery, ICMPv6MLQuery2
from scapy.contrib.igmp import IGMP
from scapy.contrib.igmpv3 import IGMPv3, IGMPv3mq

def ip4(dst):
    return Ether()/IP(dst=dst, ttl=1, options=[IPOption_Router_Alert()])
def ip6(dst):
    return Ether()/IPv6(src="fe80::1", dst=dst, hlim=1)/IPv6ExtHdrHopByHop(options=[RouterAlert()])

qs = []
qs.append(ip4("224.0.0.1")/IGMP(type=0x11, mrcode=0, gaddr="0.0.0.0"))
qs.append(ip4("224.0.0.1")/IGMP(type=0x11, mrcode=100, gaddr="0.0.0.0"))
qs.append(ip4("239.1.2.3")/IGMP(type=0x11, mrcode=10, gaddr="239.1.2.3"))
for mr, qqic, srcs, s, qrv in [(100, 125, [], 0, 2), (0x8f, 0xff, ["10.1.2.3"], 1, 7), (0x80, 0x90, ["10.0.0.1", "10.0.0.2", "10.0.0.3"], 0, 0)]:
    qs.append(ip4("224.0.0.1")/IGMPv3(type=0x11, mrcode=mr)/IGMPv3mq(gaddr="232.1.1.1" if srcs else "0.0.0.0", s=s, qrv=qrv, qqic=qqic, srcaddrs=srcs))
qs.append(ip6("ff02::1")/ICMPv6MLQuery(mrd=10000, mladdr="::"))
qs.append(ip6("ff15::1234")/ICMPv6MLQuery(mrd=1000, mladdr="ff15::1234"))
for mrd, qqic, srcs, s, qrv in [(10000, 125, [], 0, 2), (0xffff, 0x81, ["fd00::9"], 1, 3), (0x8000, 10, ["fd00::1", "2001:db8::1"], 0, 7)]:
    qs.append(ip6("ff02::1")/ICMPv6MLQuery2(mrd=mrd, mladdr="ff35::8000:1" if srcs else "::", S=s, QRV=qrv, QQIC=qqic, sources=srcs))
codes = {}
for v in list(range(0, 31800, 7)) + [31743, 31744, 40000]:
    g = IGMPv3(mrcode=v)
    g.encode_maxrespcode()
    codes[v] = g.mrcode
json.dump({"queries": [raw(q).hex() for q in qs], "codes": codes}, sys.stdout)
`

// TestScapyQueries: the parsers read scapy's queries of every version as
// scapy meant them, and decode the Max Resp Codes its encoder makes.
func TestScapyQueries(t *testing.T) {
	var out struct {
		Queries []string       `json:"queries"`
		Codes   map[string]int `json:"codes"`
	}
	runScapy(t, scapyQueries, nil, &out)
	type q = MulticastQuery
	z4, z6 := netip.IPv4Unspecified(), netip.IPv6Unspecified()
	g4s, g6s := netip.MustParseAddr("232.1.1.1"), netip.MustParseAddr("ff35::8000:1")
	wants := []struct {
		q    q
		srcs int
	}{
		{q{Version: 1, Group: z4, MaxResponse: 10 * time.Second}, 0},
		{q{Version: 2, Group: z4, MaxResponse: 10 * time.Second}, 0},
		{q{Version: 2, Group: g4a, MaxResponse: time.Second}, 0},
		{q{Version: 3, Group: z4, MaxResponse: 10 * time.Second, QRV: 2, QQI: 125 * time.Second}, 0},
		{q{Version: 3, Group: g4s, MaxResponse: 24800 * time.Millisecond, SuppressRouterProcessing: true, QRV: 7, QQI: 31744 * time.Second}, 1},
		{q{Version: 3, Group: g4s, MaxResponse: 12800 * time.Millisecond, QQI: 256 * time.Second}, 3},
		{q{Version: 1, Group: z6, MaxResponse: 10 * time.Second}, 0},
		{q{Version: 1, Group: g6a, MaxResponse: time.Second}, 0},
		{q{Version: 2, Group: z6, MaxResponse: 10 * time.Second, QRV: 2, QQI: 125 * time.Second}, 0},
		{q{Version: 2, Group: g6s, MaxResponse: 8387584 * time.Millisecond, SuppressRouterProcessing: true, QRV: 3, QQI: 136 * time.Second}, 1},
		{q{Version: 2, Group: g6s, MaxResponse: 32768 * time.Millisecond, QRV: 7, QQI: 10 * time.Second}, 2},
	}
	if len(out.Queries) != len(wants) {
		t.Fatalf("%d queries from scapy", len(out.Queries))
	}
	for i, h := range out.Queries {
		f, _ := hex.DecodeString(h)
		var p Packet
		var got q
		var err error
		switch r := p.Decode(f); r {
		case ReasonOtherIPProtocol:
			if !p.IGMP(f).IsChecksumValid() {
				t.Errorf("query %d: checksum", i)
			}
			got, err = ParseIGMPQuery(p.IGMP(f))
		case ReasonICMPv6:
			got, err = ParseMLDQuery(MLD(p.ICMPv6(f)))
		default:
			t.Fatalf("query %d decodes as %v", i, r)
		}
		if err != nil || !sameQuery(got, wants[i].q) || got.NumberOfSources() != wants[i].srcs {
			t.Errorf("query %d: %+v %v, want %+v", i, got, err, wants[i].q)
		}
	}
	// scapy's encoder rounds down to what the code can say; decoding
	// gives back the value within one step of the mantissa.
	for v, code := range out.Codes {
		var n int
		if err := json.Unmarshal([]byte(v), &n); err != nil {
			t.Fatal(err)
		}
		d := DecodeMaxRespCode(uint8(code))
		step := 1
		if code >= 128 {
			step = 1 << (code>>4&7 + 3)
		}
		if n <= 31743 && (d > n || n >= d+step) || n > 31743 && d != 31744 {
			t.Errorf("value %d: scapy code %#x decodes to %d (step %d)", n, code, d, step)
		}
	}
}
