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
// form the compiler accepts, its qualifiers and tcpdump's quirks (equal
// and/or precedence, inherited qualifiers, the vlan offset shift, yacc's
// precedence of '%' and '^').
var diffExprs = concat(primitiveExprs, arithExprs, keywordExprs, refusedExprs)

// primitiveExprs are the primitives people use.
var primitiveExprs = []string{
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
	"host 10", "net 0x0a", "net 10.0.0.0 / 8", "ether host 0200.0000.0001", "ether src 02-00-00-00-00-02",
	"host 198.18.0.1 and (198.18.0.2 or 10.1.2.3)",
}

// arithExprs are byte offsets, arithmetic and len (issue 14): every
// protocol with offsets, every operator, named fields, variable indexes,
// constants that fold, runtime division by zero and loads past the frame.
var arithExprs = []string{
	"udp[8:2] & 0x8000 = 0", "ip[6:2] & 0x1fff != 0", "len > 1000", "len < 100", "len >= 60",
	"len <= 42", "len = 60", "len != 60", "length > 64",
	"icmp[icmptype] == icmp-echo", "icmp[icmptype] = icmp-unreach", "icmp[icmpcode] != 0",
	"icmp[icmptype] != icmp-echo and icmp[icmptype] != icmp-echoreply",
	"tcp[tcpflags] & tcp-syn != 0", "tcp[tcpflags] & (tcp-syn|tcp-ack) = tcp-syn",
	"tcp[tcpflags] & (tcp-fin|tcp-rst) != 0", "tcp[13] = 0x12",
	"tcp[tcpflags] & tcp-push != 0 and tcp[tcpflags] & tcp-ack != 0",
	"ip[2:2] - ((ip[0] & 0xf) << 2) - 8 > 512", "ip[0] & 0xf > 5", "ip[0] & 0xf0 = 0x40",
	"ip[0] = 0x45", "ip[1] & 0xfc != 0", "ip[8] < 64", "ip[9] = 17", "ip[12:4] = 0xc6120001",
	"ip[16:4] & 0xffffff00 = 0xc6120000", "ip[2:2] > 100",
	"ip6[6] = 17", "ip6[0] & 0xf0 = 0x60", "ip6[4:2] > 20", "ip6[40] = 0", "ip6[1] & 0xf0 != 0",
	"icmp6[icmp6type] = icmp6-echo", "icmp6[icmp6type] = icmp6-neighborsolicit",
	"icmp6[0] = 1 and icmp6[1] = 4", "icmp6[icmp6type] > 127",
	"udp[0:2] = 53", "udp[2:2] = 7", "udp[4:2] > 20", "udp[8] = 0", "udp[10:2] & 0x7800 = 0", "udp[8:4] = 0",
	"tcp[0:2] = 80 or tcp[2:2] = 80", "tcp[12] >> 4 > 5", "((tcp[12] & 0xf0) >> 2) = 20",
	"sctp[0:2] = 80", "igmp[0] = 0x11", "pim[0] & 0xf = 0", "vrrp[0] = 0x21", "carp[0] = 0x21", "igrp[0] = 1",
	"ether[0] & 1 = 1", "ether[12:2] = 0x800", "ether[0:4] = 0xffffffff", "ether[6:2] = 0x0200",
	"link[0] = 0x33", "ether[14] = 0x45", "ppp[0] = 2", "fddi[1] = 0", "tr[6] = 2", "wlan[0] = 1", "slip[0] = 2",
	"arp[6:2] = 1", "arp[7] = 2", "rarp[6:2] = 3", "arp[14:4] = 0xc6120001",
	"decnet[0] = 0x42", "lat[0] = 0x42", "sca[0] = 0", "moprc[0] = 0", "mopdl[1] = 0", "atalk[0] = 0xaa",
	"udp[8:2] + udp[10:2] > 1000", "ip[0] = ip[1]", "ip[0] + ip[1] = 0x45", "ip[2:2] = len - 14",
	"len - 14 = ip[2:2]", "ip[2:2] < len - 14", "ip[2:2] >= len - 14", "len - 14 > ip[2:2]",
	"ip[3] * 2 > 100", "ip[3] / 2 = 10", "ip[3] % 7 = 3", "ip[3] ^ 0xff = 0xaa", "ip[3] | 0x0f = 0x1f",
	"ip[3] << 1 > 40", "ip[3] >> 1 = 15", "-ip[3] = -54", "ip[3] - 1 = 53", "ip[3] + 1 = 55",
	"ip[3] / ip[1] = 0", "ip[3] % ip[1] = 0", "udp[4:2] / (ip[1] & 3) > 2",
	"ip[3] & ip[2] != 0", "ip[3] | ip[2] > 20", "ip[3] ^ ip[2] = 0", "ip[2] << (ip[3] & 7) > 512", "ip[3] + len % 7 > 3",
	"ip[2:2] >> (ip[3] & 3) < 64", "ip[3] * ip[8] > 1000", "ip[3] - ip[8] > 10", "-(ip[3] - ip[8]) > 10",
	"(ip[3] + ip[8]) * (ip[2] + 1) > 5000", "ip[3] + ip[8] * ip[2] - ip[1] / 2 > 300",
	"ip[0] & 0xf = ip[1] & 0xf", "udp[2:2] + udp[0:2] = udp[4:2] * 2",
	"1 + 5 % 3 + 1 = 2", "2 * 3 ^ 1 = 4", "1 = 1", "udp and 1 < 2", "len > 0x40 and len < 0200",
	"ip[3] % 5 + 1 = 2", "ip[3] ^ 1 + 1 = 2", "ip[3] + 2 % 3 = 1", "- ip[3] % 3 = 0", "-ip[3] * 2 = -108",
	"ip[0] * 0 = 0", "0 * ip[0] = 0 and ip", "ip[3] & 0 = 0",
	"ip[-1] = 0", "udp[-2:2] = 0", "ether[ip[0] & 0xf] = 5", "udp[ip[0] & 0xf] = 0", "ip[ip[0] & 0xf] = 0",
	"udp[udp[4:2] - 1] = 0", "ip6[ip6[6] - 10] = 0", "icmp6[ip6[7] & 3] = 0", "tcp[(tcp[12] >> 4) * 4] = 0",
	"ip[100000] = 0", "not ip[100000] = 0", "not udp[1000:2] = 0", "not tcp[tcpflags] & tcp-syn != 0",
	"not ip[3] / ip[1] = 0", "not ip[2:2] - 20 > udp[4:2]",
	"vlan and ip[0] = 0x45", "vlan and udp[2:2] = 7", "vlan 10 and ether[14:2] & 0xfff = 10",
	"vlan and icmp6[icmp6type] = icmp6-echo", "ip[0] = 0x45 and vlan and ip[0] = 0x45",
	"(ip[0] = 0x45) and (udp[2:2] = 7 or udp[2:2] = 53)", "(ip[0] & 0xf) << 2 > 20", "((ip[0] & 0xf) << 2) > 20",
	"udp[8:2] & 0x8000 = 0 or udp[8:2] & 0x8000 != 0", "len > 100 and len > 50", "ip[0] = 1 or ip[0] = 2 or ip[0] = 0x45",
	"udp and udp[8] = 0", "not (udp[8] = 0 and ip[1] = 0)", "icmp and (icmp[0] = 8 or icmp[0] = 0)",
	"port 53 and udp[10] & 0x80 = 0", "(1) = 1", "(ip[3]) = 54", "(ip[3] + 1) - (1) = 54",
	"arp[7] = 1 or rarp[7] = 3", "ether[12:2] > 1500 and ether[12:2] < 0x8000",
}

// keywordExprs are the remaining primitives: IP multicast and broadcast,
// protochain, the protocol keywords and EtherType and SAP names.
var keywordExprs = []string{
	"ip multicast", "ip6 multicast", "ip broadcast", "ip broadcast or ip multicast", "not ip multicast and udp",
	"vlan and ip multicast",
	"protochain 17", "ip protochain 6", "ip6 protochain 17", "ip6 protochain 44", "ip6 protochain 0",
	"protochain \\udp", "ip6 protochain 58", "ip6 protochain 59", "ip protochain 1", "not protochain 6",
	"igmp", "igrp", "pim", "vrrp", "carp", "ah", "esp", "atalk", "aarp", "decnet", "lat", "sca", "moprc", "mopdl",
	"iso", "esis", "isis", "clnp", "stp", "ipx", "netbeui", "l1", "l2", "iih", "lsp", "snp", "csnp", "psnp",
	"es-is", "is-is", "ipx or atalk or iso", "vlan and ipx",
	"ether proto \\ip", "ether proto \\ip6", "ether proto \\arp", "ether proto \\atalk", "ether proto \\aarp",
	"ether proto \\ipx", "ether proto \\iso", "ether proto \\stp", "ether proto \\netbeui", "ether proto \\decnet",
	"ether proto \\loopback", "ether proto \\rarp", "ether proto \\lat", "ether proto \\sca",
	"ether proto \\moprc", "ether proto \\mopdl", "ether proto 0x8137", "ether proto 0xe0", "ether proto 6",
	"ether proto 0xfe", "ether proto 0xf0", "ether proto 0x809b", "ether proto 0x80f3", "ether proto 0x42",
	"ip proto \\gre", "proto \\esp", "ip6 proto \\ipv6-frag", "ip proto \\pim", "proto \\ah",
	"mpls", "mpls 3", "mpls and ip", "mpls and ip6", "mpls 2 and mpls and udp port 53", "mpls and mpls and mpls",
	"mpls and net 10.0.0.0/8", "mpls and ip multicast", "mpls and ip[0] = 0x45", "mpls and udp[2:2] = 7",
	"mpls and ether host 02:00:00:00:00:01", "mpls and llc", "mpls and tcp[tcpflags] & tcp-syn != 0",
	"vlan and mpls and ip", "not mpls 1 and ip",
	"pppoed", "pppoes", "pppoes 3", "pppoes and ip", "pppoes and ip6", "pppoes 2 and udp",
	"pppoes and udp port 53", "pppoes and host 198.18.0.1", "pppoes and ether[0] = 0x11", "pppoes and arp",
	"pppoes and iso", "pppoes and ipx", "pppoes and stp", "pppoes and atalk", "pppoes and mpls",
	"pppoes and ether proto 0x800", "pppoes and ip6 multicast", "pppoes and iso proto 1", "pppoes and ip[9] = 17",
	"llc", "llc i", "llc s", "llc u", "llc rr", "llc rnr", "llc rej", "llc ui", "llc ua", "llc disc",
	"llc dm", "llc sabme", "llc test", "llc xid", "llc frmr", "llc and stp", "vlan and llc u",
	"iso proto 0x81", "isis proto 0x11", "iso proto 0x83 and isis proto 0x1b",
	"byte 12 = 8", "byte 14 < 0x46", "byte 0 > 1", "byte 23 = 17 and ip",
	"port \\53", "host \\198.18.0.1", "src \\fd00::2", "udp port \\domain",
}

// refusedExprs are errors for both compilers.
var refusedExprs = []string{
	"ip and arp", "udp port 99999", "port nosuch", "udp port http", "tcp port ntp",
	"net 10.1.2.3/8", "vlan 5000", "ip host fd00::1",
	"ip[0:3] = 1", "ip[0] / 0 = 1", "ip[0] % 0 = 1", "ip[0] << 32 = 1", "ip[0] / (1 - 1) = 0",
	"ip[1] << (16 + 16) = 0", "ip[08] = 1", "ip[4294967296] = 1", "ah[0] = 1", "esp[0] = 1", "ipx[0] = 1",
	"ip[0]", "ip[0] = 1 = 1", "len-1 > 5", "ip6 broadcast", "arp multicast", "net 10/8", "1 + 2",
	"1 = 2", "len", "ip[0:tcpflags] = 0", "udp[0] ! 1",
	"mpls and arp", "mpls and vlan", "mpls 1048576", "pppoes and vlan", "pppoes and llc",
	"pppoes and ether host 02:00:00:00:00:01", "pppoes and broadcast", "pppoes 70000", "mpls and pppoes",
	"esis proto 1", "clnp proto 1", "host 02:00:00:00:00:01", "llc nosuch", "gateway 1.2.3.4",
}

// ancillaryExprs use Linux metadata (packet type, interface index); they
// are compared in evalRaw, which models it.
var ancillaryExprs = []string{
	"inbound", "outbound", "inbound and udp port 7", "not outbound and ip6",
	"outbound or arp", "ifindex 3", "ifindex 3 and udp", "not ifindex 2 or inbound",
}

func concat(lists ...[]string) []string {
	var out []string
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
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
	if !ok || hasAncillary(raw) || jumpsBack(raw) || hasNeg(raw) {
		return vm{raw: raw}
	}
	v, err := xbpf.NewVM(insns)
	if err != nil {
		t.Fatalf("NewVM: %v", err)
	}
	return vm{raw: raw, v: v}
}

// hasNeg reports whether prog negates A, which x/net/bpf's VM cannot run.
func hasNeg(prog []xbpf.RawInstruction) bool {
	for _, ins := range prog {
		if ins.Op == bpfALU|0x80 {
			return true
		}
	}
	return false
}

// jumpsBack reports whether prog has a backward "ja" (tcpdump's
// protochain loop), which x/net/bpf's VM refuses.
func jumpsBack(prog []xbpf.RawInstruction) bool {
	for _, ins := range prog {
		if ins.Op == bpfJMP|bpfJA && int32(ins.K) < 0 {
			return true
		}
	}
	return false
}

// run is the program's verdict on pkt. (No t.Helper here or in try: they
// run millions of times, and Helper walks the stack.)
func (m vm) run(t testing.TB, pkt []byte, md meta) bool {
	ok, err := m.try(t, pkt, md)
	if err != nil {
		t.Fatalf("evalRaw: %v", err)
	}
	return ok
}

// try is run, returning errLoop instead of failing on a program that
// does not stop.
func (m vm) try(t testing.TB, pkt []byte, md meta) (bool, error) {
	r, wrapped, err := evalRawWrap(m.raw, pkt, md)
	if err != nil {
		return false, err
	}
	if m.v != nil && !wrapped {
		n, err := m.v.Run(pkt)
		if err != nil {
			t.Fatalf("VM: %v", err)
		}
		// The VM returns min(ret, len(pkt)); acceptance is what matters.
		if len(pkt) > 0 && (n != 0) != (r != 0) {
			t.Fatalf("evaluator (%d) and x/net/bpf VM (%d) disagree on a %d-byte frame:\n%s", r, n, len(pkt), formatD(m.raw))
		}
	}
	return r != 0, nil
}

// comparable reports whether tcpdump's verdict for expr on b is what ours
// should be. protochain differs on purpose: tcpdump's walk is unbounded
// and sets the offset after an Authentication Header to that header's
// length (a bug), ours walks protochainMaxHeaders headers and adds the
// length; frames that tell the two apart are left out.
func comparable(expr string, b []byte) bool {
	if !strings.Contains(expr, "protochain") {
		return true
	}
	return !chainDiffers(b)
}

// chainDiffers reports whether b's IPv4 or IPv6 header chain has an
// Authentication Header, or more extension headers than protochain walks.
func chainDiffers(b []byte) bool {
	l2 := 14 // past any VLAN tags
	for len(b) >= l2 {
		switch binary.BigEndian.Uint16(b[l2-2:]) {
		case proto.EtherTypeVLAN, proto.EtherTypeQinQ, etherTypeQinQOld:
			l2 += 4
			continue
		case proto.EtherTypeIPv4:
			if len(b) > l2+9 && b[l2+9] == proto.IPProtoAH {
				return true
			}
		case proto.EtherTypeIPv6:
			if chain6Differs(b, l2) {
				return true
			}
		}
		l2 += 4 // a vlan keyword may also read a tag as an EtherType
		if l2 > 26 {
			return false
		}
	}
	return false
}

// chain6Differs reports whether the IPv6 header at l2 starts a chain with
// an Authentication Header or more than protochainMaxHeaders extension
// headers.
func chain6Differs(b []byte, l2 int) bool {
	if len(b) < l2+7 {
		return false
	}
	nh, off := b[l2+6], l2+40
	for i := 0; ; i++ {
		switch nh {
		case proto.IPProtoAH:
			return true
		case proto.IPProtoHopByHop, proto.IPProtoDstOpts, proto.IPProtoRouting, proto.IPProtoFragment:
		default:
			return false
		}
		if i == protochainMaxHeaders {
			return true
		}
		if off+2 > len(b) {
			return false
		}
		nh, off = b[off], off+(int(b[off+1])+1)*8
	}
}

// TestDifferentialTcpdump compiles every expression with pktengine (VLAN
// in-packet, as tcpdump does for -y EN10MB) and with tcpdump, runs both on
// every corpus frame and requires the same verdict. It also checks the -d
// printer byte for byte on tcpdump's own programs.
func TestDifferentialTcpdump(t *testing.T) {
	labtest.NeedTool(t, "tcpdump")
	frames := corpus(t)
	if len(frames) < 3000 {
		t.Fatalf("corpus has %d frames, want at least 3000", len(frames))
	}
	all := concat(diffExprs, ancillaryExprs)
	tcpdumpPrefetch(t, "-ddd", all)
	printed := make(map[uint16]bool)
	opt := tcpdumpOptions()
	compared, refused, verdicts, skipped := 0, 0, 0, 0
	for _, expr := range diffExprs {
		theirs, terr := tcpdumpProgram(t, expr)
		ours, oerr := CompileRaw(expr, opt)
		if (terr == nil) != (oerr == nil) {
			t.Errorf("%q: tcpdump error %v, ours %v", expr, terr, oerr)
			continue
		}
		if terr != nil {
			t.Logf("%q: both refuse: tcpdump %q; ours %q", expr, terr, oerr)
			refused++
			continue
		}
		// Printer: tcpdump -d must equal FormatD of tcpdump's program,
		// checked for every program with an opcode not printed yet.
		if newOpcode(printed, theirs) {
			if d, err := tcpdumpRun(t, "-d", expr); err != nil {
				t.Fatalf("tcpdump -d %q: %v", expr, err)
			} else if got := formatD(theirs); got != d {
				t.Errorf("%q: FormatD differs from tcpdump -d:\n got:\n%s\nwant:\n%s", expr, got, d)
			}
		}
		tv, ov := newVM(t, theirs), newVM(t, ours)
		bad := 0
		for _, f := range frames {
			if !comparable(expr, f.b) {
				skipped++
				continue
			}
			want, err := tv.try(t, f.b, meta{})
			if err != nil {
				t.Fatalf("%q on %s: tcpdump's program: %v", expr, f.name, err)
			}
			if got := ov.run(t, f.b, meta{}); got != want {
				if bad++; bad <= 3 {
					t.Errorf("%q on %s (%d bytes): ours %v, tcpdump %v\n% x\nours:\n%stcpdump:\n%s",
						expr, f.name, len(f.b), got, want, f.b, formatD(ours), formatD(theirs))
				}
			}
			verdicts++
		}
		compared++
	}
	for _, expr := range ancillaryExprs {
		theirs, terr := tcpdumpProgram(t, expr)
		if terr != nil {
			t.Fatalf("tcpdump %q: %v", expr, terr)
		}
		ours := compileRaw(t, expr, opt)
		tv, ov := newVM(t, theirs), newVM(t, ours)
		for _, f := range frames {
			for pt := uint32(0); pt <= 4; pt++ {
				md := meta{pktType: pt, ifIndex: pt}
				if got, want := ov.run(t, f.b, md), tv.run(t, f.b, md); got != want {
					t.Fatalf("%q on %s with packet type %d: ours %v, tcpdump %v", expr, f.name, pt, got, want)
				}
				verdicts++
			}
		}
		compared++
	}
	t.Logf("%d expressions × %d frames agree with tcpdump (%d frame verdicts; %d protochain verdicts on frames with AH or more than %d extension headers left out); %d expressions both refuse",
		compared, len(frames), verdicts, skipped, protochainMaxHeaders, refused)
	if compared < 300 {
		t.Errorf("only %d expressions compared, want at least 300", compared)
	}
}

// newOpcode reports whether prog has an opcode not in seen, adding them.
func newOpcode(seen map[uint16]bool, prog []xbpf.RawInstruction) bool {
	fresh := false
	for _, ins := range prog {
		if !seen[ins.Op] {
			seen[ins.Op], fresh = true, true
		}
	}
	return fresh
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
		ours := compileRaw(t, expr, nil) // default: VLANAncillary
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
// corpus expressions (go test ./bpf -run TestLengthTable -v -args -lengths)
// and fails if one of ours is longer. protochain is the exception:
// tcpdump's loop jumps backwards, which Linux refuses, and ours is
// unrolled.
func TestLengthTable(t *testing.T) {
	labtest.NeedTool(t, "tcpdump")
	all := concat(diffExprs, ancillaryExprs)
	tcpdumpPrefetch(t, "-ddd", all)
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "| expression | pktengine | tcpdump | same code |\n|---|---:|---:|:-:|\n")
	longer, shorter, same, total, ours, theirs := 0, 0, 0, 0, 0, 0
	for _, expr := range all {
		tp, terr := tcpdumpProgram(t, expr)
		op, oerr := CompileRaw(expr, tcpdumpOptions())
		if terr != nil || oerr != nil {
			continue
		}
		switch {
		case len(op) > len(tp) && !strings.Contains(expr, "protochain"):
			longer++
			t.Errorf("%q: %d instructions, tcpdump %d\nours:\n%stcpdump:\n%s", expr, len(op), len(tp), formatD(op), formatD(tp))
		case len(op) < len(tp):
			shorter++
		}
		if !strings.Contains(expr, "protochain") {
			ours += len(op)
			theirs += len(tp)
		}
		identical := formatD(op) == formatD(tp)
		mark := ""
		if identical {
			mark = "yes"
			same++
		}
		total++
		fmt.Fprintf(&buf, "| `%s` | %d | %d | %s |\n", strings.ReplaceAll(expr, "|", "\\|"), len(op), len(tp), mark)
	}
	if *printLengths {
		t.Logf("\n%s", buf.String())
	}
	t.Logf("%d programs: %d longer than tcpdump's, %d shorter, %d instruction for instruction the same; %d instructions against tcpdump's %d (protochain left out)",
		total, longer, shorter, same, ours, theirs)
}

var printLengths = flag.Bool("lengths", false, "print the program length table (TestLengthTable)")

func isTPID(b []byte) bool {
	tpid := binary.BigEndian.Uint16(b[12:])
	return tpid == proto.EtherTypeVLAN || tpid == proto.EtherTypeQinQ
}

// TestDeliberateDifferences covers what docs/BPF.md lists as deliberate
// differences from tcpdump, against an expression tcpdump compiles as we
// compile the first: libpcap drops the protocol test of an arithmetic
// operator's right operand ("len % ip[8]" tests no IPv4 EtherType), and
// refuses a divisor or shift count whose code starts by loading the
// constant 0 (or more than 31), even when that constant is an offset
// ("x / (ip[0] + 1)").
func TestDeliberateDifferences(t *testing.T) {
	labtest.NeedTool(t, "tcpdump")
	frames := corpus(t)
	pairs := []struct{ ours, theirs string }{
		{"len % ip[8] = 1", "ip and len % ip[8] = 1"},
		{"0 + ip[3] = 54", "ip and 0 + ip[3] = 54"},
		{"1 + udp[0] = 5", "udp[0] + 1 = 5"},
		{"ip[0] + udp[1] = 0x4a", "udp[1] + ip[0] = 0x4a"},
		{"len - udp[4:2] = 42", "udp[4:2] >= 0 and len - udp[4:2] = 42"},
		{"not 2 * tcp[tcpflags] = 4", "not (tcp[tcpflags] >= 0 and 2 * tcp[tcpflags] = 4)"},
		{"ip[1] / (ip[0] + 1) = 0", "ip[1] / (1 + ip[0]) = 0"},
		{"ip[2:2] % (ip[0] & 0xf) = 0", "ip[2:2] % (0xf & ip[0]) = 0"},
		{"ip[3] << (ip[32] & 7) > 100", "ip[3] << (7 & ip[32]) > 100"},
		// libpcap's "byte N & M" and "byte N | M" test whatever A holds.
		{"byte 14 & 0x40", "ether[14] & 0x40 != 0"},
		{"byte 15 | 0", "ether[15] | 0 != 0"},
	}
	for _, p := range pairs {
		if _, err := tcpdumpProgram(t, p.ours); err == nil && strings.Contains(p.ours, "/") {
			t.Errorf("%q: tcpdump compiles it now; the difference is gone", p.ours)
		}
		theirs, err := tcpdumpProgram(t, p.theirs)
		if err != nil {
			t.Fatalf("tcpdump %q: %v", p.theirs, err)
		}
		ours := compileRaw(t, p.ours, tcpdumpOptions())
		tv, ov := newVM(t, theirs), newVM(t, ours)
		for _, f := range frames {
			if got, want := ov.run(t, f.b, meta{}), tv.run(t, f.b, meta{}); got != want {
				t.Fatalf("%q on %s: ours %v, tcpdump's %q %v", p.ours, f.name, got, p.theirs, want)
			}
		}
	}
}
