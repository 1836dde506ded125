//go:build linux

package engine

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pktengine/pktengine/frame"
	"github.com/pktengine/pktengine/internal/lab"
	"github.com/pktengine/pktengine/internal/labtest"
)

// The fragment path against the kernel: the kernel fragments what its
// client sends and reassembles what the engine answers.

// fragmentSizes are the payload sizes of the lab's fragmented echoes:
// from the first that does not fit one 1500-byte frame to the largest UDP
// datagram of the family.
func fragmentSizes(v6 bool) []int {
	first, last := 1473, frame.MaxUDPPayloadIPv4
	if v6 {
		first, last = 1453, frame.MaxUDPPayloadIPv6
	}
	return []int{first, first + 1, 2000, 2960, 2961, 4096, 8192, 9000, 16384, 32768, 50000, last - 1, last}
}

// echoEveryByte sends each size from a kernel socket in h to dst and
// checks that every byte comes back.
func echoEveryByte(t *testing.T, h *lab.Host, dst netip.AddrPort, sizes []int) {
	t.Helper()
	c := labtest.DialUDP(t, h, dst)
	buf := make([]byte, 70000)
	for _, n := range sizes {
		payload := pattern(n)
		payload[0] = byte(n) // tell sizes apart
		got, err := lab.Exchange(c, payload, buf, labtest.Timeout)
		if err != nil {
			t.Fatalf("%d bytes to %v: %v", n, dst, err)
		}
		if !bytes.Equal(buf[:got], payload) {
			t.Fatalf("%d bytes to %v: %d came back, not the same", n, dst, got)
		}
	}
}

// TestLabFragmentedEcho: a kernel client sends datagrams of 1,473 to
// 65,507 bytes (IPv4) and 1,453 to 65,527 (IPv6) to the engine's echo, on
// owned and shared addresses, and gets every byte back: the kernel
// fragments the requests, the engine reassembles them, and the kernel
// reassembles the engine's fragments.
func TestLabFragmentedEcho(t *testing.T) {
	l := labtest.New(t, nil)
	a, b := l.A(), l.B()
	owned4, owned6 := netip.MustParseAddr("198.18.0.10"), netip.MustParseAddr("fd00::10")
	e := openEngine(t, a, &Config{Addrs: []netip.Prefix{
		netip.PrefixFrom(owned4, 24), netip.PrefixFrom(owned6, 64), a.IPv4, a.IPv6,
	}})
	if _, err := e.HandleService(netip.AddrPortFrom(netip.Addr{}, 7), Echo); err != nil {
		t.Fatal(err)
	}
	var datagrams uint64
	for _, dst := range []netip.Addr{owned4, owned6, a.IPv4.Addr(), a.IPv6.Addr()} {
		sizes := fragmentSizes(dst.Is6())
		echoEveryByte(t, b, netip.AddrPortFrom(dst, 7), sizes)
		datagrams += uint64(len(sizes))
	}
	c := countersWhen(e, labtest.Timeout, func(c *Counters) bool {
		return c.Reassembled[OutcomeDelivered] >= datagrams && c.IP.FragOKs+c.IP6.FragOKs >= datagrams
	})
	if err := c.Check(); err != nil {
		t.Error(err)
	}
	if got := c.IP.ReasmOKs + c.IP6.ReasmOKs; got != datagrams {
		t.Errorf("%d datagrams reassembled, want %d", got, datagrams)
	}
	if got := c.IP.FragOKs + c.IP6.FragOKs; got != datagrams {
		t.Errorf("%d datagrams sent as fragments, want %d", got, datagrams)
	}
	if c.Reassembled[OutcomeDelivered] != datagrams || c.IP.ReasmFails+c.IP6.ReasmFails != 0 || c.ReasmQueues != 0 {
		t.Errorf("reassembled and delivered %d, failures %d, %d left in progress",
			c.Reassembled[OutcomeDelivered], c.IP.ReasmFails+c.IP6.ReasmFails, c.ReasmQueues)
	}
	t.Logf("Ip %+v\nIp6 %+v", c.IP, c.IP6)
}

// TestLabFragmentsFanout: with several workers, every fragment of a
// datagram reaches the same one (PACKET_FANOUT_HASH hashes a fragment,
// the first included, on its addresses alone), so fragmented datagrams
// from many source ports are all answered; whole datagrams from those
// ports spread over the workers by their ports.
func TestLabFragmentsFanout(t *testing.T) {
	l := labtest.New(t, nil)
	a, b := l.A(), l.B()
	e := openEngine(t, a, &Config{Workers: 2, Addrs: []netip.Prefix{
		netip.MustParsePrefix("198.18.0.10/24"), netip.MustParsePrefix("fd00::10/64"),
	}})
	if _, err := e.HandleService(netip.AddrPortFrom(netip.Addr{}, 7), Echo); err != nil {
		t.Fatal(err)
	}
	const clients = 24
	var wg sync.WaitGroup
	for i := range clients {
		dst := netip.MustParseAddrPort("198.18.0.10:7")
		if i%2 == 1 {
			dst = netip.MustParseAddrPort("[fd00::10]:7")
		}
		wg.Go(func() {
			c := labtest.DialUDP(t, b, dst)
			buf := make([]byte, 70000)
			for _, n := range []int{100, 3000, 20000} {
				payload := pattern(n)
				got, err := lab.Exchange(c, payload, buf, labtest.Timeout)
				if err != nil || !bytes.Equal(buf[:got], payload) {
					t.Errorf("client %d, %d bytes: %d back, %v", i, n, got, err)
					return
				}
			}
		})
	}
	wg.Wait()
	c := countersWhen(e, labtest.Timeout, func(c *Counters) bool { return c.Reassembled[OutcomeDelivered] >= 2*clients })
	var perWorker []uint64
	for _, w := range e.workers {
		var s counterSet
		w.published.read(&s)
		perWorker = append(perWorker, s[cOutcome0+counter(OutcomeDelivered)])
	}
	if c.Reassembled[OutcomeDelivered] != 2*clients || c.IP.ReasmFails+c.IP6.ReasmFails != 0 {
		t.Errorf("%d fragmented datagrams delivered, %d reassembly failures; want %d, 0", c.Reassembled[OutcomeDelivered], c.IP.ReasmFails+c.IP6.ReasmFails, 2*clients)
	}
	if perWorker[0] == 0 || perWorker[1] == 0 {
		t.Errorf("whole datagrams per worker %v: the fanout did not spread them", perWorker)
	}
}

// routerLab makes B a router for A: forwarding on, and off-link prefixes
// behind it: fd00:5::/64 through a link of MTU 1280 (a veth pair with both
// ends in B; nothing answers there, but B's MTU check comes first),
// 198.18.6.0/24 and fd00:6::/64 unreachable. A's kernel routes them
// through B; an engine in A uses B as its gateway. B sends ICMPv6 errors
// without rate limit; IPv4 keeps its limit (a burst of 6 per destination
// host), because without it the one ICMP rate budget per host that
// ip_error shares is drained to nothing, and no host unreachable goes out.
func routerLab(t *testing.T) (a, b *lab.Host) {
	t.Helper()
	l := labtest.New(t, nil)
	a, b = l.A(), l.B()
	for _, s := range [][2]string{
		{"net.ipv4.ip_forward", "1"}, {"net.ipv6.conf.all.forwarding", "1"}, {"net.ipv6.icmp.ratelimit", "0"},
	} {
		if _, err := b.Sysctl(s[0], s[1]); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range [][2]string{{"net.ipv4.icmp_ratelimit", "0"}, {"net.ipv6.icmp.ratelimit", "0"}} {
		if _, err := a.Sysctl(s[0], s[1]); err != nil {
			t.Fatal(err)
		}
	}
	labtest.Run(t, b, "ip", "link", "add", "narrow0", "mtu", "1280", "type", "veth", "peer", "name", "narrow1", "mtu", "1280")
	labtest.Run(t, b, "ip", "link", "set", "narrow1", "up")
	labtest.Run(t, b, "ip", "link", "set", "narrow0", "up")
	labtest.Run(t, b, "ip", "-6", "route", "add", "fd00:5::/64", "dev", "narrow0")
	labtest.Run(t, b, "ip", "route", "add", "unreachable", "198.18.6.0/24")
	labtest.Run(t, b, "ip", "-6", "route", "add", "unreachable", "fd00:6::/64")
	b4, b6 := b.IPv4.Addr().String(), b.IPv6.Addr().String()
	labtest.Run(t, a, "ip", "route", "add", "198.18.6.0/24", "via", b4)
	labtest.Run(t, a, "ip", "-6", "route", "add", "fd00:5::/64", "via", b6)
	labtest.Run(t, a, "ip", "-6", "route", "add", "fd00:6::/64", "via", b6)
	return a, b
}

// TestLabPacketTooBig: a router's Packet Too Big about a datagram an
// engine port sent lowers the path MTU to that destination to 1280, the
// port reads the error (EMSGSIZE, with the MTU), and the next datagrams
// leave as fragments that fit; a router's host unreachable reaches the
// port too. Both as Linux: the kernel's socket beside it sees the same.
func TestLabPacketTooBig(t *testing.T) {
	a, b := routerLab(t)
	e := openEngine(t, a, &Config{
		Addrs:    []netip.Prefix{netip.MustParsePrefix("198.18.0.10/24"), netip.MustParsePrefix("fd00::10/64")},
		Gateway4: b.IPv4.Addr(), Gateway6: b.IPv6.Addr(),
	})
	p, err := e.Bind(netip.AddrPortFrom(netip.Addr{}, 0))
	if err != nil {
		t.Fatal(err)
	}
	far := netip.MustParseAddrPort("[fd00:5::1]:9")
	capB := startCapture(t, b, a.MAC, false)
	if err := p.Send(far, pattern(1400)); err != nil {
		t.Fatal(err)
	}
	es := waitErrors(t, p, 1)
	if es[0].Errno != frame.EMSGSIZE || es[0].Type != frame.ICMPv6PacketTooBig || es[0].Info != 1280 ||
		es[0].From != b.IPv6.Addr() || es[0].Dst != far || !errors.Is(&es[0], syscall.EMSGSIZE) {
		t.Fatalf("error %+v: %v", es[0], &es[0])
	}
	if got := e.PathMTU(far.Addr()); got != 1280 {
		t.Fatalf("path MTU to %v: %d, want 1280", far.Addr(), got)
	}
	capB.take()
	if err := p.Send(far, pattern(3000)); err != nil {
		t.Fatal(err)
	}
	// B forwards what fits: three fragments of at most 1280 bytes.
	deadline := time.Now().Add(3 * time.Second)
	var frags [][]byte
	for len(frags) < 3 && time.Now().Before(deadline) {
		for _, f := range capB.take() {
			var pk frame.Packet
			pk.Decode(f)
			if pk.IsFragment() && pk.DstAddr(f) == far.Addr() {
				frags = append(frags, f)
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	if len(frags) != 3 {
		t.Fatalf("%d fragments reached B, want 3", len(frags))
	}
	for _, f := range frags {
		if ipLen := len(f) - frame.EthernetHeaderLen; ipLen > 1280 {
			t.Errorf("a %d-byte fragment after Packet Too Big 1280", ipLen)
		}
	}
	if n := p.ReadErrors(make([]ICMPError, 4)); n != 0 {
		t.Errorf("%d more errors: the fragments that fit drew Packet Too Big", n)
	}

	// A host unreachable from the router, for a datagram to a prefix it
	// cannot reach.
	if err := p.Send(netip.MustParseAddrPort("198.18.6.1:9"), []byte("x")); err != nil {
		t.Fatal(err)
	}
	es = waitErrors(t, p, 1)
	if es[0].Errno != frame.EHOSTUNREACH || es[0].Fatal || es[0].From != b.IPv4.Addr() {
		t.Fatalf("error %+v: %v", es[0], &es[0])
	}
	c := e.Counters()
	if c.PMTUUpdates != 1 || c.ICMPErrorsDelivered != 2 || c.IP6.FragOKs != 1 || c.IP6.FragCreates != 3 {
		t.Errorf("PMTU updates %d, ICMP errors delivered %d, Ip6 %+v", c.PMTUUpdates, c.ICMPErrorsDelivered, c.IP6)
	}
}

// waitErrors waits up to 3 s for n ICMP errors on p.
func waitErrors(t *testing.T, p *Port, n int) []ICMPError {
	t.Helper()
	es := make([]ICMPError, n)
	got := 0
	for deadline := time.Now().Add(3 * time.Second); got < n; {
		got += p.ReadErrors(es[got:])
		if time.Now().After(deadline) {
			t.Fatalf("%d ICMP errors on %v in 3 s, want %d", got, p, n)
		}
		time.Sleep(2 * time.Millisecond)
	}
	return es
}

// TestLabFragmentTimeExceeded: a datagram whose first fragment came but
// never its last draws the engine's ICMP Time Exceeded (code 1) when its
// time is up, on a quiet link too: the worker wakes up for it.
func TestLabFragmentTimeExceeded(t *testing.T) {
	l := labtest.New(t, nil)
	a, b := l.A(), l.B()
	e := openEngine(t, a, &Config{
		Addrs:              []netip.Prefix{netip.MustParsePrefix("198.18.0.10/24"), netip.MustParsePrefix("fd00::10/64")},
		ReassemblyTimeout4: 300 * time.Millisecond,
		ReassemblyTimeout6: 300 * time.Millisecond,
	})
	tx := labtest.Open(t, b, openLabTX)
	capB := startCapture(t, b, a.MAC, false)
	for _, dst := range []netip.AddrPort{netip.MustParseAddrPort("198.18.0.10:7"), netip.MustParseAddrPort("[fd00::10]:7")} {
		src := netip.AddrPortFrom(b.IPv4.Addr(), 4000)
		if dst.Addr().Is6() {
			src = netip.AddrPortFrom(b.IPv6.Addr(), 4000)
		}
		// Built to A's MAC: B needs no ARP or NDP for the owned address.
		fs := fragmentsFor(t, b.MAC, a.MAC, src, dst, 3000, 0x777)
		labtest.Send(t, tx, fs[0])
	}
	deadline := time.Now().Add(5 * time.Second)
	var got []string
	for len(got) < 2 && time.Now().Before(deadline) {
		for _, f := range capB.take() {
			var pk frame.Packet
			switch pk.Decode(f) {
			case frame.ReasonICMPv4:
				if m := pk.ICMPv4(f); m.Type() == frame.ICMPv4TimeExceeded && m.Code() == 1 {
					got = append(got, pk.SrcAddr(f).String())
				}
			case frame.ReasonICMPv6:
				if m := pk.ICMPv6(f); m.Type() == frame.ICMPv6TimeExceeded && m.Code() == 1 {
					got = append(got, pk.SrcAddr(f).String())
				}
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	if len(got) != 2 {
		t.Fatalf("Time Exceeded from %v, want from 198.18.0.10 and fd00::10", got)
	}
	c := e.Counters()
	if c.ICMPTimeExceededSent != 2 || c.IP.ReasmTimeout != 1 || c.IP6.ReasmTimeout != 1 || c.ReasmQueues != 0 {
		t.Errorf("Time Exceeded sent %d, timeouts %d and %d, %d in progress", c.ICMPTimeExceededSent, c.IP.ReasmTimeout, c.IP6.ReasmTimeout, c.ReasmQueues)
	}
}

// fragmentsFor builds the fragments of a size-byte datagram for a 1500-byte
// MTU from srcMAC/src to dstMAC/dst.
func fragmentsFor(t *testing.T, srcMAC, dstMAC net.HardwareAddr, src, dst netip.AddrPort, size int, id uint32) [][]byte {
	t.Helper()
	s := &frame.UDPSpec{SrcMAC: frame.MAC(srcMAC), DstMAC: frame.MAC(dstMAC), Src: src, Dst: dst, Payload: pattern(size), ID: uint16(id)}
	var uf frame.UDPFragmenter
	if err := uf.Reset(s, 1500, id); err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for i := range uf.Fragments() {
		buf := make([]byte, uf.FrameLen(i))
		if _, err := uf.Build(buf, i); err != nil {
			t.Fatal(err)
		}
		out = append(out, buf)
	}
	return out
}
