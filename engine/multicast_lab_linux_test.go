//go:build linux

package engine

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"

	"github.com/pktengine/pktengine/frame"
	"github.com/pktengine/pktengine/internal/lab"
	"github.com/pktengine/pktengine/internal/labtest"
	"github.com/pktengine/pktengine/proto"
	"github.com/pktengine/pktengine/ring"
)

// Multicast and VLANs in the lab, with the kernel as the peer: its UDP
// sockets as senders and as the oracle of socket semantics, tshark and
// scapy as independent readers and writers of IGMP and MLD, its bridge
// as querier and snooper, ip(8) for the interface's multicast list.

// The engine's addresses in the lab; the groups it joins there are
// multicast_test.go's group4, ssm4 and group6, and labSSM6.
var (
	labOwned4 = netip.MustParseAddr("198.18.0.100")
	labOwned6 = netip.MustParseAddr("fd00::100")
	labSSM6   = netip.MustParseAddr("ff35::8000:1") // not ff35::1, whose MAC address is all-nodes'
)

// openLabEngine opens an engine in h on owned addresses only, so that
// h's kernel shares nothing with it.
func openLabEngine(t *testing.T, h *lab.Host, cfg *Config) *Engine {
	t.Helper()
	c := Config{}
	if cfg != nil {
		c = *cfg
	}
	c.Addrs = []netip.Prefix{netip.PrefixFrom(labOwned4, 24), netip.PrefixFrom(labOwned6, 64)}
	return openEngine(t, h, &c)
}

// groupSender sends datagrams to groups from h's kernel, from a given
// source address, out of h's lab interface.
func groupSend(t *testing.T, h *lab.Host, src netip.Addr, to netip.AddrPort, payload string) {
	t.Helper()
	c := labtest.ListenUDP(t, h, netip.AddrPortFrom(src, 0))
	ifi, err := h.Interface()
	if err != nil {
		t.Fatal(err)
	}
	if src.Is4() {
		err = ipv4.NewPacketConn(c).SetMulticastInterface(ifi)
	} else {
		err = ipv6.NewPacketConn(c).SetMulticastInterface(ifi)
	}
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.WriteToUDPAddrPort([]byte(payload), to); err != nil {
		t.Fatalf("sending to %v from %v: %v", to, src, err)
	}
	c.Close()
}

// maddrs returns the link-layer multicast addresses of h's lab interface,
// as `ip maddr show` lists them.
func maddrs(t *testing.T, h *lab.Host) []string {
	t.Helper()
	var out []string
	for _, line := range strings.Split(labtest.Run(t, h, "ip", "maddr", "show", "dev", h.Iface), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "link" {
			out = append(out, f[1])
		}
	}
	return out
}

func groupMAC(g netip.Addr) string {
	m, _ := multicastMAC(g)
	return m.String()
}

// mcastOps are the membership calls x/net's PacketConns and Conn share.
type mcastOps interface {
	JoinGroup(ifi *net.Interface, group net.Addr) error
	LeaveGroup(ifi *net.Interface, group net.Addr) error
	JoinSourceSpecificGroup(ifi *net.Interface, group, source net.Addr) error
	LeaveSourceSpecificGroup(ifi *net.Interface, group, source net.Addr) error
	ExcludeSourceSpecificGroup(ifi *net.Interface, group, source net.Addr) error
	IncludeSourceSpecificGroup(ifi *net.Interface, group, source net.Addr) error
}

var (
	_ mcastOps = (*Conn)(nil)
	_ mcastOps = (*ipv4.PacketConn)(nil)
	_ mcastOps = (*ipv6.PacketConn)(nil)
)

func errnoOf(err error) string {
	var e syscall.Errno
	switch {
	case err == nil:
		return "ok"
	case errors.As(err, &e):
		return e.Error()
	}
	return err.Error()
}

// TestLabConnMulticastAgainstKernel runs one sequence of membership calls
// on a kernel UDP socket (through x/net's PacketConn) and on the engine's
// Conn, in the same namespace, and sends datagrams to the group from two
// sources in between: every call must fail or succeed as the kernel's,
// and each conn must receive what the kernel socket receives.
func TestLabConnMulticastAgainstKernel(t *testing.T) {
	l := labtest.New(t, nil)
	a, b := l.A(), l.B()
	e := openLabEngine(t, a, nil)
	labtest.Run(t, b, "ip", "addr", "add", "198.18.0.3/24", "dev", b.Iface)
	labtest.Run(t, b, "ip", "-6", "addr", "add", "fd00::3/64", "dev", b.Iface, "nodad")
	ifi, err := a.Interface()
	if err != nil {
		t.Fatal(err)
	}
	for _, fam := range []struct {
		name       string
		group, ssm netip.Addr
		s1, s2     netip.Addr
		unicast    netip.Addr
	}{
		{"ipv4", group4, ssm4, b.IPv4.Addr(), netip.MustParseAddr("198.18.0.3"), labOwned4},
		{"ipv6", group6, labSSM6, b.IPv6.Addr(), netip.MustParseAddr("fd00::3"), labOwned6},
	} {
		t.Run(fam.name, func(t *testing.T) {
			const port = 6000
			any := netip.IPv4Unspecified()
			if fam.group.Is6() {
				any = netip.IPv6Unspecified()
			}
			kc := labtest.ListenUDP(t, a, netip.AddrPortFrom(any, port))
			var kops mcastOps = ipv4.NewPacketConn(kc)
			if fam.group.Is6() {
				kops = ipv6.NewPacketConn(kc)
			}
			ec, err := e.ListenUDP(netip.AddrPortFrom(any, port))
			if err != nil {
				t.Fatal(err)
			}
			defer ec.Close()
			udp := func(a netip.Addr) net.Addr { return &net.UDPAddr{IP: a.AsSlice()} }
			g, s1, s2 := udp(fam.group), udp(fam.s1), udp(fam.s2)
			type step struct {
				name string
				call func(mcastOps) error
			}
			send := step{name: "send"}
			steps := []step{
				{"join source s1", func(o mcastOps) error { return o.JoinSourceSpecificGroup(ifi, g, s1) }},
				{"join source s1 again", func(o mcastOps) error { return o.JoinSourceSpecificGroup(ifi, g, s1) }},
				{"block s2 on a source-specific membership", func(o mcastOps) error { return o.ExcludeSourceSpecificGroup(ifi, g, s2) }},
				{"join any-source on top", func(o mcastOps) error { return o.JoinGroup(ifi, g) }},
				send,
				{"leave source s2, not joined", func(o mcastOps) error { return o.LeaveSourceSpecificGroup(ifi, g, s2) }},
				{"leave source s1, the last", func(o mcastOps) error { return o.LeaveSourceSpecificGroup(ifi, g, s1) }},
				{"leave, not joined", func(o mcastOps) error { return o.LeaveGroup(ifi, g) }},
				{"block without a membership", func(o mcastOps) error { return o.ExcludeSourceSpecificGroup(ifi, g, s2) }},
				{"unblock without a membership", func(o mcastOps) error { return o.IncludeSourceSpecificGroup(ifi, g, s2) }},
				send,
				{"join", func(o mcastOps) error { return o.JoinGroup(ifi, g) }},
				{"join again", func(o mcastOps) error { return o.JoinGroup(ifi, g) }},
				{"block s2", func(o mcastOps) error { return o.ExcludeSourceSpecificGroup(ifi, g, s2) }},
				{"block s2 again", func(o mcastOps) error { return o.ExcludeSourceSpecificGroup(ifi, g, s2) }},
				{"join source s1 on an any-source membership", func(o mcastOps) error { return o.JoinSourceSpecificGroup(ifi, g, s1) }},
				send,
				{"unblock s2", func(o mcastOps) error { return o.IncludeSourceSpecificGroup(ifi, g, s2) }},
				{"unblock s2 again", func(o mcastOps) error { return o.IncludeSourceSpecificGroup(ifi, g, s2) }},
				send,
				{"leave", func(o mcastOps) error { return o.LeaveGroup(ifi, g) }},
				{"join source s2 after leaving", func(o mcastOps) error { return o.JoinSourceSpecificGroup(ifi, g, s2) }},
				send,
				{"leave source s2", func(o mcastOps) error { return o.LeaveSourceSpecificGroup(ifi, g, s2) }},
				{"leave source without a membership", func(o mcastOps) error { return o.LeaveSourceSpecificGroup(ifi, g, s1) }},
				// An any-source membership that never had a source list
				// may turn source-specific; one that had may not.
				{"join again", func(o mcastOps) error { return o.JoinGroup(ifi, g) }},
				{"join source s1 on a listless any-source membership", func(o mcastOps) error { return o.JoinSourceSpecificGroup(ifi, g, s1) }},
				send,
				{"block s2 on it", func(o mcastOps) error { return o.ExcludeSourceSpecificGroup(ifi, g, s2) }},
				{"leave once more", func(o mcastOps) error { return o.LeaveGroup(ifi, g) }},
				{"join once more", func(o mcastOps) error { return o.JoinGroup(ifi, g) }},
				{"block s2 once more", func(o mcastOps) error { return o.ExcludeSourceSpecificGroup(ifi, g, s2) }},
				{"unblock s2 once more", func(o mcastOps) error { return o.IncludeSourceSpecificGroup(ifi, g, s2) }},
				{"join source s1 after the list emptied", func(o mcastOps) error { return o.JoinSourceSpecificGroup(ifi, g, s1) }},
				send,
				{"leave at last", func(o mcastOps) error { return o.LeaveGroup(ifi, g) }},
				{"join a unicast address", func(o mcastOps) error { return o.JoinGroup(ifi, udp(fam.unicast)) }},
				{"join source from a group address", func(o mcastOps) error { return o.JoinSourceSpecificGroup(ifi, g, udp(fam.ssm)) }},
			}
			for i, s := range steps {
				if s.call != nil {
					k, c := errnoOf(s.call(kops)), errnoOf(s.call(ec))
					if k != c {
						t.Errorf("%s: kernel %s, conn %s", s.name, k, c)
					}
					continue
				}
				// One datagram from each source; each conn must get
				// those the kernel socket gets.
				to := netip.AddrPortFrom(fam.group, port)
				groupSend(t, b, fam.s1, to, fmt.Sprintf("step %d from s1", i))
				groupSend(t, b, fam.s2, to, fmt.Sprintf("step %d from s2", i))
				k, c := drainConn(kc), drainConn(ec)
				if !slices.Equal(k, c) {
					t.Errorf("after step %d (%s): kernel socket got %q, conn %q", i, steps[i-1].name, k, c)
				}
			}
		})
	}
	if c := e.Counters(); c.Check() != nil {
		t.Error(c.Check())
	}
}

// drainConn reads what c has until it is quiet for a while.
func drainConn(c interface {
	SetReadDeadline(time.Time) error
	ReadFrom([]byte) (int, net.Addr, error)
}) []string {
	var got []string
	buf := make([]byte, 2048)
	for {
		c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		n, _, err := c.ReadFrom(buf)
		if err != nil {
			break
		}
		got = append(got, string(buf[:n]))
	}
	slices.Sort(got)
	return got
}

// tsharkRun is tshark dissecting what arrives on a lab interface, live,
// one line of fields per packet.
type tsharkRun struct {
	mu    sync.Mutex
	lines []string
	done  chan struct{}
	cmd   *exec.Cmd
}

// reportFields are the fields startTshark prints for each membership
// report, after udp.dstport (the sync datagrams').
var reportFields = []string{"ip.ttl", "ipv6.hlim", "ip.opt.ra", "ipv6.opt.router_alert", "ip.checksum.status",
	"igmp.checksum.status", "icmpv6.checksum.status", "_ws.expert.severity",
	"igmp.record_type", "igmp.maddr", "igmp.saddr",
	"icmpv6.mldr.mar.record_type", "icmpv6.mldr.mar.multicast_address", "icmpv6.mldr.mar.source_address"}

// startTshark runs tshark in h on its lab interface, printing the
// IGMPv3 and MLDv2 reports from mac with every checksum verified. It
// returns once tshark demonstrably captures: sync sends datagrams to
// h's port 9 until tshark prints one.
func startTshark(t *testing.T, h *lab.Host, mac net.HardwareAddr, sync func()) *tsharkRun {
	t.Helper()
	tshark := labtest.NeedTool(t, "tshark")
	args := []string{"-l", "-i", h.Iface, "-f", "igmp or ip6 or udp port 9", "-o", "ip.check_checksum:TRUE",
		"-Y", fmt.Sprintf("udp.dstport == 9 || eth.src == %s && (igmp.type == 0x22 || icmpv6.type == 143)", mac),
		"-T", "fields", "-E", "separator=|", "-E", "aggregator=,", "-e", "udp.dstport"}
	for _, f := range reportFields {
		args = append(args, "-e", f)
	}
	r := &tsharkRun{done: make(chan struct{}), cmd: h.Command(context.Background(), tshark, args...)}
	stdout, err := r.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	r.cmd.Stderr = &stderr
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(r.done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			r.mu.Lock()
			r.lines = append(r.lines, sc.Text())
			r.mu.Unlock()
		}
		r.cmd.Wait()
	}()
	t.Cleanup(r.stop)
	for deadline := time.Now().Add(30 * time.Second); ; {
		sync()
		time.Sleep(200 * time.Millisecond)
		r.mu.Lock()
		n := len(r.lines)
		r.mu.Unlock()
		if n > 0 {
			return r
		}
		select {
		case <-r.done:
			t.Fatalf("tshark ended: %s", stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("tshark shows no capture: %s", stderr.String())
		}
	}
}

// stop ends tshark, letting it print what it has.
func (r *tsharkRun) stop() {
	r.cmd.Process.Signal(os.Interrupt)
	select {
	case <-r.done:
	case <-time.After(10 * time.Second):
		r.cmd.Process.Kill()
		<-r.done
	}
}

// tsharkReport is a membership report as tshark reads it.
type tsharkReport struct {
	v6                  bool
	ttl, routerAlert    string
	ipSum, msgSum       string
	expert              string
	types, groups, srcs []string
}

// reports stops tshark and returns the reports it read.
func (r *tsharkRun) reports() []tsharkReport {
	r.stop()
	r.mu.Lock()
	defer r.mu.Unlock()
	var rs []tsharkReport
	for _, line := range r.lines {
		f := strings.Split(line, "|")
		if len(f) != 1+len(reportFields) || f[0] != "" {
			continue // a sync datagram
		}
		f = f[1:]
		split := func(s string) []string {
			if s == "" {
				return nil
			}
			return strings.Split(s, ",")
		}
		rs = append(rs, tsharkReport{
			v6: f[1] != "", ttl: f[0] + f[1], routerAlert: f[2] + f[3], ipSum: f[4], msgSum: f[5] + f[6], expert: f[7],
			types: split(f[8] + f[11]), groups: split(f[9] + f[12]), srcs: split(f[10] + f[13]),
		})
	}
	return rs
}

// TestLabMulticastReports: ports of an engine join groups of both
// families, any-source and source-specific. tshark, in the peer's
// namespace, reads the engine's IGMPv3 and MLDv2 reports as valid and
// naming what was joined (and the solicited-node group of the engine's
// owned IPv6 address); `ip maddr` shows the groups' MAC addresses on the
// engine's interface while joined and not after the leave and Close; and
// datagrams the peer's kernel sends to the groups reach the port, from
// the joined sources only for the source-specific groups.
func TestLabMulticastReports(t *testing.T) {
	l := labtest.New(t, nil)
	a, b := l.A(), l.B()
	labtest.Run(t, b, "ip", "addr", "add", "198.18.0.3/24", "dev", b.Iface)
	syncTo := netip.AddrPortFrom(b.IPv4.Addr(), 9)
	capture := startTshark(t, b, a.MAC, func() { labtest.RoundTrip(t, a, syncTo, "sync") })
	e := openLabEngine(t, a, nil)
	p, err := e.Bind(netip.AddrPortFrom(netip.Addr{}, 5000))
	if err != nil {
		t.Fatal(err)
	}
	must(t, p.JoinGroup(group4))
	must(t, p.JoinSourceGroup(ssm4, b.IPv4.Addr()))
	must(t, p.JoinGroup(group6))
	must(t, p.JoinSourceGroup(labSSM6, b.IPv6.Addr()))
	sn := solicitedNode(labOwned6)
	have := maddrs(t, a)
	for _, g := range []netip.Addr{group4, ssm4, group6, labSSM6, sn} {
		if !slices.Contains(have, groupMAC(g)) {
			t.Errorf("%v: %s is not in the interface's list %q", g, groupMAC(g), have)
		}
	}

	// The peer's kernel sends to every group, from a joined source and
	// from another.
	for _, s := range []struct {
		src   netip.Addr
		group netip.Addr
	}{
		{b.IPv4.Addr(), group4}, {netip.MustParseAddr("198.18.0.3"), group4},
		{b.IPv4.Addr(), ssm4}, {netip.MustParseAddr("198.18.0.3"), ssm4},
		{b.IPv6.Addr(), group6}, {b.IPv6.Addr(), labSSM6},
	} {
		groupSend(t, b, s.src, netip.AddrPortFrom(s.group, 5000), s.src.String()+" to "+s.group.String())
	}
	var got []string
	ds := make([]Datagram, 8)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	for len(got) < 5 {
		n, err := p.Recv(ctx, ds)
		if err != nil {
			break
		}
		for _, d := range ds[:n] {
			got = append(got, string(d.Payload))
		}
	}
	p.Release(ds)
	slices.Sort(got)
	want := []string{
		"198.18.0.2 to 232.1.1.1", "198.18.0.2 to 239.1.2.3", "198.18.0.3 to 239.1.2.3",
		"fd00::2 to " + group6.String(), "fd00::2 to " + labSSM6.String(),
	}
	if !slices.Equal(got, want) {
		t.Errorf("the port received %q, want %q", got, want)
	}

	must(t, p.LeaveGroup(group4))
	if slices.Contains(maddrs(t, a), groupMAC(group4)) {
		t.Errorf("%s still in the interface's list after the leave", groupMAC(group4))
	}
	// Let the retransmissions go out (at most 1 s apart), then close.
	countersWhen(e, 5*time.Second, func(c *Counters) bool { return c.Multicast.IGMPReports >= 4 })
	time.Sleep(1500 * time.Millisecond)
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	have = maddrs(t, a)
	for _, g := range []netip.Addr{ssm4, group6, labSSM6, sn} {
		if slices.Contains(have, groupMAC(g)) {
			t.Errorf("%v: %s still in the interface's list after Close", g, groupMAC(g))
		}
	}
	time.Sleep(200 * time.Millisecond)

	// tshark's reading of the reports.
	reports := capture.reports()
	var records, sources []string
	for _, r := range reports {
		if r.ttl != "1" || r.routerAlert != "0" || r.msgSum != "1" || (!r.v6 && r.ipSum != "1") || r.expert != "" {
			t.Errorf("tshark finds a report wrong: %+v", r)
		}
		for i, typ := range r.types {
			records = append(records, typ+" "+r.groups[i])
		}
		sources = append(sources, r.srcs...)
	}
	// Record types: 3 TO_IN, 4 TO_EX, 5 ALLOW, 6 BLOCK. State changes
	// are sent twice (the Robustness Variable), the leaves at Close
	// once.
	for _, w := range []struct {
		rec string
		n   int
	}{
		{"4 " + group4.String(), 2}, {"5 " + ssm4.String(), 2}, {"3 " + group4.String(), 2},
		{"4 " + group6.String(), 2}, {"5 " + labSSM6.String(), 2}, {"4 " + sn.String(), 2},
		{"6 " + ssm4.String(), 1}, {"3 " + group6.String(), 1}, {"6 " + labSSM6.String(), 1}, {"3 " + sn.String(), 1},
	} {
		if n := len(slices.DeleteFunc(slices.Clone(records), func(r string) bool { return r != w.rec })); n < w.n {
			t.Errorf("tshark finds record %q %d times, want at least %d; all: %q", w.rec, n, w.n, records)
		}
	}
	for _, src := range []netip.Addr{b.IPv4.Addr(), b.IPv6.Addr()} {
		if !slices.Contains(sources, src.String()) {
			t.Errorf("tshark finds no record with source %v: %q", src, sources)
		}
	}
	t.Logf("%d reports, records %q", len(reports), records)
}

// scapyQuery has scapy, in h's namespace, send one membership query
// built by the Python expression pkt on h's lab interface, and returns
// when it sent it.
func scapyQuery(t *testing.T, h *lab.Host, pkt string) time.Time {
	t.Helper()
	if err := exec.Command(scapyPython, "-c", "import scapy.all").Run(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("scapy is not installed for %s (python3-scapy): %v", scapyPython, err)
		}
		t.Skipf("scapy is not installed for %s (scripts/deps.sh installs python3-scapy): %v", scapyPython, err)
	}
	script := `
import sys
from scapy.all import Ether, IP, IPv6, sendp, IPOption_Router_Alert
from scapy.layers.inet6 import IPv6ExtHdrHopByHop, RouterAlert, ICMPv6MLQuery, ICMPv6MLQuery2
from scapy.contrib.igmp import IGMP
from scapy.contrib.igmpv3 import IGMPv3, IGMPv3mq
import time
pkt = ` + pkt + `
print(time.time_ns())
sendp(pkt, iface=sys.argv[1], verbose=False)
`
	out := strings.TrimSpace(labtest.Run(t, h, scapyPython, "-c", script, h.Iface))
	var ns int64
	if _, err := fmt.Sscan(out, &ns); err != nil {
		t.Fatalf("scapy printed %q", out)
	}
	return time.Unix(0, ns)
}

const scapyPython = "/usr/bin/python3"

// captured is a frame the engine sent, as a peer's ring saw it.
type captured struct {
	at   time.Time
	data []byte
	vlan uint16 // the tag the peer's kernel stripped; 0xffff none
}

// peerCapture records the frames from mac arriving at h, tags included.
type peerCapture struct {
	mu     sync.Mutex
	frames []captured
}

func startPeerCapture(t *testing.T, h *lab.Host, mac net.HardwareAddr) *peerCapture {
	t.Helper()
	rx := labtest.Open(t, h, func(ifi *net.Interface) (*ring.RX, error) {
		return ring.NewRX(ifi, &ring.RXConfig{Version: ring.V2, IgnoreOutgoing: true})
	})
	c := &peerCapture{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		var b ring.Batch
		for {
			if err := rx.ReadInto(context.Background(), &b); err != nil {
				return
			}
			for data, m := range b.All() {
				if !bytes.Equal(data[6:12], mac) {
					continue
				}
				f := captured{at: time.Now(), data: bytes.Clone(data), vlan: 0xffff}
				if tci, _, ok := m.VLAN(); ok {
					f.vlan = tci & 0x0fff
				}
				c.mu.Lock()
				c.frames = append(c.frames, f)
				c.mu.Unlock()
			}
			b.Release()
		}
	}()
	t.Cleanup(func() { rx.Close(); <-done })
	return c
}

// wait returns the first frame captured since from that match accepts,
// waiting up to d for it.
func (c *peerCapture) wait(from time.Time, d time.Duration, match func([]byte) bool) (captured, bool) {
	deadline := time.Now().Add(d)
	for {
		c.mu.Lock()
		for _, f := range c.frames {
			if !f.at.Before(from) && match(f.data) {
				c.mu.Unlock()
				return f, true
			}
		}
		c.mu.Unlock()
		if time.Now().After(deadline) {
			return captured{}, false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (c *peerCapture) since(from time.Time) []captured {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []captured
	for _, f := range c.frames {
		if !f.at.Before(from) {
			out = append(out, f)
		}
	}
	return out
}

// isReport matches an IGMPv3/MLDv2 report with a record of type typ for
// group, or an IGMPv1/v2 or MLDv1 message of type typ about group.
func isReport(typ uint8, group netip.Addr) func([]byte) bool {
	return func(f []byte) bool {
		var p frame.Packet
		r := p.Decode(f)
		switch {
		case r == frame.ReasonOtherIPProtocol && p.Protocol == proto.IPProtoIGMP:
			m := p.IGMP(f)
			if !m.IsChecksumValid() {
				return false
			}
			if m.Type() != frame.IGMPv3MembershipReport {
				return m.Type() == typ && m.GroupAddress() == group
			}
			return hasRecord(m.GroupRecords(), m.NumberOfGroupRecords(), frame.NextIGMPv3GroupRecord, typ, group)
		case r == frame.ReasonICMPv6:
			m := frame.MLD(p.ICMPv6(f))
			if m.Type() != frame.MLDv2Report {
				return m.Type() == typ && len(m) >= frame.MLDv1Len && m.MulticastAddress() == group
			}
			return hasRecord(m.AddressRecords(), m.NumberOfAddressRecords(), frame.NextMLDv2AddressRecord, typ, group)
		}
		return false
	}
}

// hasRecord reports whether the n IGMPv3 or MLDv2 records at rest, read
// with next, hold one of type typ for group.
func hasRecord[R groupRecord](rest []byte, n uint16, next func([]byte) (R, []byte, bool), typ uint8, group netip.Addr) bool {
	for range n {
		rec, after, ok := next(rest)
		if !ok {
			return false
		}
		if rec.Type() == typ && rec.MulticastAddress() == group {
			return true
		}
		rest = after
	}
	return false
}

// TestLabMulticastQueries: scapy-made queries, sent from the peer's
// namespace, draw the engine's answers within the queries' Max Response
// (with a margin for a shared machine): a current-state record for an
// IGMPv3 or MLDv2 general query; after an IGMPv2 query IGMPv2 reports,
// and an IGMPv2 leave when the port leaves; after an MLDv1 query MLDv1
// reports and a done.
func TestLabMulticastQueries(t *testing.T) {
	l := labtest.New(t, nil)
	a, b := l.A(), l.B()
	e := openLabEngine(t, a, nil)
	capt := startPeerCapture(t, b, a.MAC)
	p, err := e.Bind(netip.AddrPortFrom(netip.Addr{}, 5000))
	if err != nil {
		t.Fatal(err)
	}
	must(t, p.JoinGroup(group4))
	must(t, p.JoinGroup(group6))
	// The answer is due within the Max Response; the margin is for a
	// shared machine and the capture's own delay.
	const margin = time.Second
	bmac := b.MAC.String()
	ask := func(what string, maxResp time.Duration, pkt string, typ uint8, group netip.Addr) {
		t.Helper()
		sent := scapyQuery(t, b, pkt)
		f, ok := capt.wait(sent, maxResp+margin, isReport(typ, group))
		switch {
		case !ok:
			t.Errorf("%s: no answer with type %d for %v", what, typ, group)
		case f.at.Sub(sent) > maxResp+margin:
			t.Errorf("%s: answered after %v, Max Response %v", what, f.at.Sub(sent), maxResp)
		default:
			t.Logf("%s: answered after %v (Max Response %v)", what, f.at.Sub(sent).Round(time.Millisecond), maxResp)
		}
	}
	ask("IGMPv3 general query", 2*time.Second,
		`Ether(src="`+bmac+`", dst="01:00:5e:00:00:01")/IP(src="`+b.IPv4.Addr().String()+`", dst="224.0.0.1", ttl=1, tos=0xc0, options=[IPOption_Router_Alert()])/IGMPv3(type=0x11, mrcode=20)/IGMPv3mq(gaddr="0.0.0.0", qrv=2, qqic=125)`,
		frame.RecordModeIsExclude, group4)
	ask("IGMPv3 group-specific query", time.Second,
		`Ether(src="`+bmac+`", dst="01:00:5e:01:02:03")/IP(src="`+b.IPv4.Addr().String()+`", dst="239.1.2.3", ttl=1, tos=0xc0, options=[IPOption_Router_Alert()])/IGMPv3(type=0x11, mrcode=10)/IGMPv3mq(gaddr="239.1.2.3", qrv=2, qqic=125)`,
		frame.RecordModeIsExclude, group4)
	ask("MLDv2 general query", 2*time.Second,
		`Ether(src="`+bmac+`", dst="33:33:00:00:00:01")/IPv6(src="fe80::b", dst="ff02::1", hlim=1)/IPv6ExtHdrHopByHop(options=[RouterAlert(value=0)])/ICMPv6MLQuery2(mrd=2000)`,
		frame.RecordModeIsExclude, group6)

	// An IGMPv2 querier: IGMPv2 reports to the group.
	ask("IGMPv2 general query", 2*time.Second,
		`Ether(src="`+bmac+`", dst="01:00:5e:00:00:01")/IP(src="`+b.IPv4.Addr().String()+`", dst="224.0.0.1", ttl=1, options=[IPOption_Router_Alert()])/IGMP(type=0x11, mrcode=20, gaddr="0.0.0.0")`,
		frame.IGMPv2MembershipReport, group4)
	start := time.Now()
	must(t, p.LeaveGroup(group4))
	if _, ok := capt.wait(start, margin, isReport(frame.IGMPv2LeaveGroup, group4)); !ok {
		t.Error("no IGMPv2 leave after an IGMPv2 querier was heard")
	}
	// An MLDv1 querier: MLDv1 reports and a done.
	ask("MLDv1 general query", 2*time.Second,
		`Ether(src="`+bmac+`", dst="33:33:00:00:00:01")/IPv6(src="fe80::b", dst="ff02::1", hlim=1)/IPv6ExtHdrHopByHop(options=[RouterAlert(value=0)])/ICMPv6MLQuery(mrd=2000)`,
		frame.MLDv1Report, group6)
	start = time.Now()
	must(t, p.LeaveGroup(group6))
	if _, ok := capt.wait(start, margin, isReport(frame.MLDv1Done, group6)); !ok {
		t.Error("no MLDv1 done after an MLDv1 querier was heard")
	}
	// No IGMPv3 or MLDv2 record about the groups leaves while older
	// queriers are present.
	for _, f := range capt.since(start) {
		for _, typ := range []uint8{1, 2, 3, 4, 5, 6} {
			if isReport(typ, group4)(f.data) || isReport(typ, group6)(f.data) {
				t.Errorf("a current-version report in compatibility mode: %x", f.data)
			}
		}
	}
	c := e.Counters().Multicast
	if c.IGMPQueries != 3 || c.MLDQueries != 2 || c.InvalidQueries != 0 {
		t.Errorf("counters %+v", c)
	}
}

// TestLabMulticastBridgeQuerier: the peer's kernel, a bridge that snoops
// IGMPv3 and MLDv2 and queries every 2 s, learns the engine's groups from
// its reports (its group database has them on the port towards the
// engine, sources included), keeps them past the membership interval (5
// s) only because the engine answers its queries, and drops one after the
// port leaves it.
func TestLabMulticastBridgeQuerier(t *testing.T) {
	l := labtest.New(t, nil)
	a, b := l.A(), l.B()
	if _, err := b.Sysctl("net.ipv6.conf.default.accept_dad", "0"); err != nil {
		t.Fatal(err)
	}
	labtest.Bridge(t, b, "br0", "mcast_snooping 1 mcast_igmp_version 3 mcast_mld_version 2 mcast_querier 1 "+
		"mcast_query_interval 200 mcast_query_response_interval 100 mcast_membership_interval 500 "+
		"mcast_last_member_interval 50 mcast_startup_query_interval 100")
	e := openLabEngine(t, a, nil)
	p, err := e.Bind(netip.AddrPortFrom(netip.Addr{}, 5000))
	if err != nil {
		t.Fatal(err)
	}
	must(t, p.JoinGroup(group4))
	must(t, p.JoinSourceGroup(ssm4, netip.MustParseAddr("10.1.2.3")))
	must(t, p.JoinGroup(group6))
	want := []string{group4.String(), ssm4.String() + " src 10.1.2.3", group6.String(), solicitedNode(labOwned6).String()}
	waitMDB := func(what string, d time.Duration, ok func([]string) bool) []string {
		t.Helper()
		var have []string
		for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			if have = labtest.BridgeGroups(t, b, "br0"); ok(have) {
				return have
			}
		}
		t.Errorf("%s: the bridge's groups on %s: %q", what, b.Iface, have)
		return have
	}
	containsAll := func(have []string) bool {
		for _, w := range want {
			if !slices.Contains(have, w) {
				return false
			}
		}
		return true
	}
	waitMDB("after the joins", 5*time.Second, containsAll)
	// Past two membership intervals: only answered queries keep them.
	time.Sleep(10 * time.Second)
	if have := labtest.BridgeGroups(t, b, "br0"); !containsAll(have) {
		t.Errorf("after 10 s of queries: the bridge's groups %q, want %q", have, want)
	}
	must(t, p.LeaveGroup(group4))
	waitMDB("after the leave", 5*time.Second, func(have []string) bool { return !slices.Contains(have, group4.String()) })
	if c := e.Counters().Multicast; c.IGMPQueries == 0 || c.MLDQueries == 0 || c.InvalidQueries != 0 {
		t.Errorf("counters %+v", c)
	}
}

// TestLabVLAN: tagged frames, written by a raw socket in the peer's
// namespace, reach the engine with their tag in the ring's metadata. By
// default the engine serves untagged frames only: echo, ARP and ping on
// VLAN 100 draw nothing and are counted as other-vlan, arriving cut by
// the kernel filter. With Config.VLAN 100 they are answered with the tag,
// and untagged ones draw nothing.
func TestLabVLAN(t *testing.T) {
	l := labtest.New(t, nil)
	a, b := l.A(), l.B()
	tx := labtest.Open(t, b, openLabTX)
	capt := startPeerCapture(t, b, a.MAC)
	// B's kernel answers the echo replies with port unreachable: let it
	// not ask for the engine's MAC address first.
	for _, addr := range []netip.Addr{labOwned4, labOwned6} {
		labtest.Run(t, b, "ip", "neigh", "replace", addr.String(), "lladdr", a.MAC.String(), "dev", b.Iface, "nud", "permanent")
	}
	peer := frame.MAC(b.MAC)
	engineMAC := frame.MAC(a.MAC)
	tag := func(f []byte, id uint16) []byte {
		if id == 0xffff {
			return f
		}
		return inFrameTag(t, f, frame.MakeTCI(1, false, id))
	}
	kinds := func(id uint16) [][]byte {
		u4 := &frame.UDPSpec{SrcMAC: peer, DstMAC: engineMAC, Src: netip.AddrPortFrom(b.IPv4.Addr(), 40000),
			Dst: netip.AddrPortFrom(labOwned4, 7), Payload: []byte("tagged echo")}
		u6 := *u4
		u6.Src, u6.Dst = netip.AddrPortFrom(b.IPv6.Addr(), 40000), netip.AddrPortFrom(labOwned6, 7)
		buf := make([]byte, 256)
		var out [][]byte
		for _, s := range []*frame.UDPSpec{u4, &u6} {
			n, err := frame.BuildUDP(buf, s)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, tag(bytes.Clone(buf[:n]), id))
		}
		arp := arpRequest(t, b.IPv4.Addr(), labOwned4)
		copy(arp[6:12], peer[:])
		copy(arp[14+8:14+14], peer[:])
		ping := echoRequest(t, b.IPv4.Addr(), labOwned4)
		copy(ping[0:6], engineMAC[:])
		copy(ping[6:12], peer[:])
		return append(out, tag(arp, id), tag(ping, id))
	}
	run := func(name string, cfg *Config, sendID uint16, answered bool, wantVLAN uint16) {
		t.Helper()
		e := openLabEngine(t, a, cfg)
		if _, err := e.HandleService(netip.AddrPortFrom(netip.Addr{}, 7), Echo); err != nil {
			t.Fatal(err)
		}
		before := e.Counters()
		start := time.Now()
		fs := kinds(sendID)
		labtest.Send(t, tx, fs...)
		deadline := time.Now().Add(3 * time.Second)
		for e.Counters().FramesIn-before.FramesIn < uint64(len(fs)) && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		time.Sleep(300 * time.Millisecond)
		var answers []captured
		for _, f := range capt.since(start) {
			var p frame.Packet
			if r := p.Decode(f.data); r == frame.ReasonOK || r == frame.ReasonARP || r == frame.ReasonICMPv4 {
				answers = append(answers, f)
			}
		}
		c := e.Counters()
		otherVLAN := c.Outcomes[OutcomeOtherVLAN] - before.Outcomes[OutcomeOtherVLAN]
		switch {
		case !answered && (len(answers) != 0 || otherVLAN != uint64(len(fs))):
			t.Errorf("%s: %d answers, %d frames other-vlan; want none and %d", name, len(answers), otherVLAN, len(fs))
		case answered && (len(answers) != len(fs) || otherVLAN != 0):
			t.Errorf("%s: %d answers, %d frames other-vlan; want %d and none", name, len(answers), otherVLAN, len(fs))
		}
		for _, f := range answers {
			if f.vlan != wantVLAN {
				t.Errorf("%s: an answer on VLAN %d, want %d: %x", name, f.vlan, wantVLAN, f.data)
			}
		}
		var wantN uint64
		if answered {
			wantN = 1
		}
		if c.PingAnswered != wantN || c.ARPAnswered != wantN {
			t.Errorf("%s: %d pings and %d ARP requests answered, want %d", name, c.PingAnswered, c.ARPAnswered, wantN)
		}
		if err := e.Close(); err != nil {
			t.Fatal(err)
		}
	}
	run("VLAN 100 to the untagged engine", nil, 100, false, 0)
	run("untagged to the untagged engine", nil, 0xffff, true, 0xffff)
	run("VLAN 100 served", &Config{VLAN: 100}, 100, true, 100)
	run("VLAN 101 to VLAN 100", &Config{VLAN: 100}, 101, false, 0)
	run("untagged to VLAN 100", &Config{VLAN: 100}, 0xffff, false, 0)
}
