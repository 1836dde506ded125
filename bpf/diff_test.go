package bpf

import (
	"bytes"
	"encoding/binary"
	"flag"
	"fmt"
	"strings"
	"testing"

	xbpf "golang.org/x/net/bpf"

	"github.com/pktengine/pktengine/internal/labtest"
	"github.com/pktengine/pktengine/proto"
)

// diffExprs are compared with tcpdump on the whole corpus. They cover every
// primitive the compiler accepts, its qualifiers and tcpdump's quirks
// (equal and/or precedence, inherited qualifiers, the vlan offset shift).
var diffExprs = []string{
	"ip", "ip6", "arp", "rarp", "udp", "tcp", "icmp", "icmp6", "sctp",
	"vlan", "vlan 10", "vlan 20", "vlan and udp port 7", "vlan 10 and ip",
	"vlan and vlan 20 and ip", "vlan or ip", "not vlan", "vlan and host 198.18.0.1",
	"vlan and ip6 and udp", "vlan 10 or vlan 20",
	"host 198.18.0.1", "src host 198.18.0.1", "dst host 198.18.0.2", "ip host 10.1.2.3",
	"arp host 198.18.0.1", "rarp src host 1.2.3.4", "host fd00::1", "src host fd00::2",
	"ip6 dst host fd12::1", "net 198.18.0.0/15", "src net 10.0.0.0/8", "dst net 198.19.0.0/16",
	"net fd00::/8", "net fd00::/16", "net 10", "net 10.1", "net 198.18.0.0 mask 255.254.0.0",
	"port 7", "udp port 7", "tcp port 80", "src port 53", "dst port 123", "udp dst port 7",
	"port domain", "port http", "udp port ntp", "port 53 or 80", "udp port 7 or 53 or 80",
	"portrange 10-20", "udp portrange 10-20", "tcp dst portrange 7-7", "udp src portrange 20-10",
	"sctp port 80", "udp port 65535 or udp port 0", "src or dst port 53", "src and dst port 7",
	"less 60", "greater 100", "less 42 and arp", "greater 60 and udp",
	"ether host 02:00:00:00:00:01", "ether src 02:00:00:00:00:02", "ether dst ff:ff:ff:ff:ff:ff",
	"ether broadcast", "ether multicast", "broadcast or multicast", "ether proto 0x86dd",
	"ether proto 0x88cc", "ether proto 38", "ether src 02:00:00:00:00:01 and ip",
	"ip proto 17", "ip6 proto 17", "proto 6", "ip proto \\udp", "ip6 proto \\tcp",
	"udp and dst port 7 and dst host 198.18.0.1", "udp and (port 53 or port 7)",
	"udp and not port 53", "host 198.18.0.1 and not udp", "not ip", "! arp && ! ip6",
	"ip or arp || ip6", "tcp or udp and port 53", "host 1.2.3.4 and 5.6.7.8",
	"src and dst host 198.18.0.1", "dst port 7 and src 1.2.3.4", "icmp or icmp6 or arp",
	"(ip6 and udp) or (ip and tcp)", "ip and not (udp or tcp)",
	"udp and port 7 and not src net 10.0.0.0/8", "vlan 10 and udp dst port 7 and dst host 198.18.0.1",
	"ip6 and dst port 53", "not (port 53 or 80) and udp", "udp and not (7 or 53)",
	"host 198.18.0.1 or fd00::1", "(udp port 7) and (greater 50 or less 45)", "portrange http-ntp", "udp portrange echo-domain",
	// Rejected by both, with an error.
	"ip and arp", "udp port 99999", "port nosuch", "udp port http", "tcp port ntp",
	"net 10.1.2.3/8", "vlan 5000", "ip host fd00::1",
}

// ancillaryExprs use packet-type metadata; they are compared in evalRaw,
// which models it.
var ancillaryExprs = []string{
	"inbound", "outbound", "inbound and udp port 7", "not outbound and ip6",
	"outbound or arp",
}

// vm runs programs on frames, with x/net/bpf's VM where it can and our
// evaluator otherwise, and checks the two agree.
type vm struct {
	raw []xbpf.RawInstruction
	v   *xbpf.VM
}

func newVM(t testing.TB, raw []xbpf.RawInstruction) vm {
	t.Helper()
	insns, ok := xbpf.Disassemble(raw)
	if !ok || hasAncillary(raw) {
		return vm{raw: raw}
	}
	v, err := xbpf.NewVM(insns)
	if err != nil {
		t.Fatalf("NewVM: %v", err)
	}
	return vm{raw: raw, v: v}
}

func (m vm) run(t testing.TB, pkt []byte, md meta) bool {
	t.Helper()
	r, err := evalRaw(m.raw, pkt, md)
	if err != nil {
		t.Fatalf("evalRaw: %v", err)
	}
	if m.v != nil {
		n, err := m.v.Run(pkt)
		if err != nil {
			t.Fatalf("VM: %v", err)
		}
		// The VM returns min(ret, len(pkt)); acceptance is what matters.
		if len(pkt) > 0 && (n != 0) != (r != 0) {
			t.Fatalf("evaluator (%d) and x/net/bpf VM (%d) disagree on a %d-byte frame:\n%s", r, n, len(pkt), formatD(m.raw))
		}
	}
	return r != 0
}

// TestDifferentialTcpdump compiles every expression with pktengine (VLAN
// in-packet, as tcpdump does for -y EN10MB) and with tcpdump, runs both on
// every corpus frame and requires the same verdict. It also checks the -d
// printer byte for byte on tcpdump's own programs.
func TestDifferentialTcpdump(t *testing.T) {
	labtest.NeedTool(t, "tcpdump")
	frames := corpus(t)
	if len(frames) < 2000 {
		t.Fatalf("corpus has %d frames, want at least 2000", len(frames))
	}
	opt := tcpdumpOptions()
	compared := 0
	for _, expr := range diffExprs {
		theirs, terr := tcpdumpProgram(t, expr)
		ours, oerr := CompileRaw(expr, opt)
		if (terr == nil) != (oerr == nil) {
			t.Errorf("%q: tcpdump error %v, ours %v", expr, terr, oerr)
			continue
		}
		if terr != nil {
			t.Logf("%q: both refuse: tcpdump %q; ours %q", expr, terr, oerr)
			continue
		}
		// Printer: tcpdump -d must equal FormatD of tcpdump's program.
		if d, err := tcpdumpRun(t, "-d", expr); err != nil {
			t.Fatalf("tcpdump -d %q: %v", expr, err)
		} else if got := formatD(theirs); got != d {
			t.Errorf("%q: FormatD differs from tcpdump -d:\n got:\n%s\nwant:\n%s", expr, got, d)
		}
		tv, ov := newVM(t, theirs), newVM(t, ours)
		bad := 0
		for _, f := range frames {
			want := tv.run(t, f.b, meta{})
			if got := ov.run(t, f.b, meta{}); got != want {
				if bad++; bad <= 3 {
					t.Errorf("%q on %s (%d bytes): ours %v, tcpdump %v\n% x\nours:\n%stcpdump:\n%s",
						expr, f.name, len(f.b), got, want, f.b, formatD(ours), formatD(theirs))
				}
			}
		}
		compared++
	}
	for _, expr := range ancillaryExprs {
		theirs, terr := tcpdumpProgram(t, expr)
		if terr != nil {
			t.Fatalf("tcpdump %q: %v", expr, terr)
		}
		ours, err := CompileRaw(expr, opt)
		if err != nil {
			t.Fatalf("%q: %v", expr, err)
		}
		tv, ov := newVM(t, theirs), newVM(t, ours)
		for _, f := range frames {
			for pt := uint32(0); pt <= 4; pt++ {
				md := meta{pktType: pt}
				if got, want := ov.run(t, f.b, md), tv.run(t, f.b, md); got != want {
					t.Fatalf("%q on %s with packet type %d: ours %v, tcpdump %v", expr, f.name, pt, got, want)
				}
			}
		}
		compared++
	}
	t.Logf("%d expressions × %d frames agree with tcpdump (%d frame verdicts)", compared, len(frames), compared*len(frames))
	if compared < 60 {
		t.Errorf("only %d expressions compared, want at least 60", compared)
	}
}

// stripOuterTag does what the kernel does to a received frame before a
// packet socket's filter runs: it removes an outer 802.1Q or 802.1ad tag
// and hands it over as metadata (skb_vlan_untag).
func stripOuterTag(b []byte) ([]byte, meta) {
	if len(b) < 18 {
		return b, meta{}
	}
	tpid := binary.BigEndian.Uint16(b[12:])
	if tpid != proto.EtherTypeVLAN && tpid != proto.EtherTypeQinQ {
		return b, meta{}
	}
	out := append(append([]byte(nil), b[:12]...), b[16:]...)
	return out, meta{vlanPresent: true, vlanTCI: binary.BigEndian.Uint16(b[14:])}
}

// TestDifferentialAncillaryVLAN checks the default VLAN mode the way the
// kernel presents frames: our ancillary-mode program on the frame with its
// outer tag stripped into metadata must agree with tcpdump's in-packet
// program on the frame as sent. That holds for expressions that begin
// with "vlan ... and"; on untagged frames both reject. The 0x9100 tag,
// which Linux leaves in the frame, is excluded.
func TestDifferentialAncillaryVLAN(t *testing.T) {
	labtest.NeedTool(t, "tcpdump")
	frames := corpus(t)
	exprs := []string{
		"vlan", "vlan 10", "vlan 20", "vlan and udp port 7", "vlan 10 and ip", "vlan and vlan 20 and ip",
		"vlan and host 198.18.0.1", "vlan and ip6 and udp", "vlan 10 and udp dst port 7 and dst host 198.18.0.1",
		"vlan 100 and vlan 20", "vlan and not arp",
	}
	n := 0
	for _, expr := range exprs {
		theirs, err := tcpdumpProgram(t, expr)
		if err != nil {
			t.Fatalf("tcpdump %q: %v", expr, err)
		}
		ours, err := CompileRaw(expr, nil) // default: VLANAncillary
		if err != nil {
			t.Fatalf("%q: %v", expr, err)
		}
		tv, ov := newVM(t, theirs), newVM(t, ours)
		for _, f := range frames {
			if len(f.b) >= 14 && binary.BigEndian.Uint16(f.b[12:]) == etherTypeQinQOld {
				continue
			}
			stripped, md := stripOuterTag(f.b)
			if len(f.b) < 18 && len(f.b) >= 14 && binary.BigEndian.Uint16(f.b[12:]) != etherTypeQinQOld && !md.vlanPresent && isTPID(f.b) {
				continue // too short to untag: the kernel drops it
			}
			want := tv.run(t, f.b, meta{})
			if got := ov.run(t, stripped, md); got != want {
				t.Fatalf("%q on %s: ancillary mode %v on the stripped frame, tcpdump %v on the tagged one\nours:\n%s", expr, f.name, got, want, formatD(ours))
			}
			n++
		}
	}
	t.Logf("%d expressions, %d frame verdicts agree", len(exprs), n)
}

// TestLengthTable prints our program length beside tcpdump's for the
// corpus expressions: go test ./bpf -run TestLengthTable -v -lengths
func TestLengthTable(t *testing.T) {
	labtest.NeedTool(t, "tcpdump")
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "| expression | pktengine | tcpdump | same code |\n|---|---:|---:|:-:|\n")
	longer, same, total := 0, 0, 0
	for _, expr := range append(append([]string(nil), diffExprs...), ancillaryExprs...) {
		theirs, terr := tcpdumpProgram(t, expr)
		ours, oerr := CompileRaw(expr, tcpdumpOptions())
		if terr != nil || oerr != nil {
			continue
		}
		if len(ours) > len(theirs) {
			longer++
		}
		identical := formatD(ours) == formatD(theirs)
		mark := ""
		if identical {
			mark = "yes"
			same++
		}
		total++
		fmt.Fprintf(&buf, "| `%s` | %d | %d | %s |\n", strings.ReplaceAll(expr, "|", "\\|"), len(ours), len(theirs), mark)
	}
	if *printLengths {
		t.Logf("\n%s", buf.String())
	}
	t.Logf("%d programs: %d longer than tcpdump's, %d instruction for instruction the same", total, longer, same)
}

var printLengths = flag.Bool("lengths", false, "print the program length table (TestLengthTable)")

func isTPID(b []byte) bool {
	tpid := binary.BigEndian.Uint16(b[12:])
	return tpid == proto.EtherTypeVLAN || tpid == proto.EtherTypeQinQ
}
