package reassembly

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/pktengine/pktengine/frame"
	"github.com/pktengine/pktengine/internal/lab"
	"github.com/pktengine/pktengine/internal/labtest"
	"github.com/pktengine/pktengine/proto"
	"github.com/pktengine/pktengine/ring"
)

// The kernel is the oracle: each scenario's fragments go through a TX ring
// from one lab namespace to the kernel of the other, and the same frames
// through a Reassembler. Both must deliver the same datagrams (the kernel
// to a UDP socket) and move the same counters of /proc/net/snmp, netstat
// and snmp6.

// piece is one fragment of a scenario: bytes [off, end) of the scenario's
// UDP datagram (zeros past its end), with MF, and a change to make.
type piece struct {
	off, end int
	more     bool
	mod      func(*rawFrag)
}

type scenario struct {
	name   string
	size   int // of the UDP datagram, header included
	pieces []piece
	only   int // 4 or 6: the scenario applies to one family only
}

func tos(v uint8) func(*rawFrag) { return func(f *rawFrag) { f.tos = v } }

// kernelScenarios are the rules of the package, each as Linux applies it.
func kernelScenarios() []scenario {
	cut := func(n int) func(*rawFrag) { return func(f *rawFrag) { f.data = f.data[:n] } }
	hbh := func(f *rawFrag) {
		if f.src.Is4() {
			f.opts = []byte{frame.IPv4OptionRouterAlert, 4, 0, 0}
		} else {
			f.ext = []frame.IPv6ExtHeader{{Type: proto.IPProtoHopByHop, Data: []byte{5, 2, 0, 0, 1, 0}}}
		}
	}
	big := scenario{name: "65,507 bytes shuffled", size: 8 + frame.MaxUDPPayloadIPv4}
	for off := 0; off < big.size; off += 1440 { // fits the MTU in both families
		big.pieces = append(big.pieces, piece{off: off, end: min(off+1440, big.size), more: off+1440 < big.size})
	}
	rng := rand.New(rand.NewPCG(7, 7))
	rng.Shuffle(len(big.pieces), func(i, j int) { big.pieces[i], big.pieces[j] = big.pieces[j], big.pieces[i] })
	return []scenario{
		{name: "in order", size: 64, pieces: []piece{{0, 32, true, nil}, {32, 64, false, nil}}},
		{name: "reverse", size: 64, pieces: []piece{{32, 64, false, nil}, {16, 32, true, nil}, {0, 16, true, nil}}},
		{name: "duplicate", size: 64, pieces: []piece{{0, 32, true, nil}, {0, 32, true, nil}, {32, 64, false, nil}}},
		{name: "duplicate within a run", size: 64, pieces: []piece{{0, 16, true, nil}, {16, 32, true, nil}, {8, 24, true, nil}, {32, 64, false, nil}}},
		{name: "duplicate across runs", size: 64, pieces: []piece{{16, 32, true, nil}, {0, 16, true, nil}, {0, 32, true, nil}, {32, 64, false, nil}}},
		{name: "gap filler is a run", size: 64, pieces: []piece{{0, 8, true, nil}, {16, 24, true, nil}, {8, 16, true, nil}, {0, 16, true, nil}}},
		{name: "overlap", size: 64, pieces: []piece{{0, 32, true, nil}, {24, 64, false, nil}}},
		{name: "overlap then resent", size: 64, pieces: []piece{{0, 32, true, nil}, {24, 64, false, nil}, {0, 32, true, nil}, {32, 64, false, nil}}},
		{name: "overlap into the last", size: 64, pieces: []piece{{32, 64, false, nil}, {24, 40, true, nil}, {0, 24, true, nil}}},
		{name: "second last, other end", size: 64, pieces: []piece{{0, 16, true, nil}, {32, 64, false, nil}, {32, 56, false, nil}}},
		{name: "past the last", size: 64, pieces: []piece{{32, 64, false, nil}, {64, 72, true, nil}, {0, 32, true, nil}}},
		{name: "last before held data", size: 64, pieces: []piece{{32, 48, true, nil}, {8, 16, false, nil}, {0, 8, true, nil}}},
		{name: "zero length", size: 64, pieces: []piece{{0, 16, true, nil}, {16, 16, true, nil}, {16, 64, false, nil}}},
		{name: "unaligned", size: 64, pieces: []piece{{0, 21, true, nil}, {16, 64, false, nil}}},
		{name: "unaligned tiny", size: 64, pieces: []piece{{0, 16, true, nil}, {16, 20, true, nil}, {16, 64, false, nil}}},
		{name: "tiny first", size: 64, pieces: []piece{{0, 8, true, nil}, {8, 64, false, nil}}},
		{name: "tinier first", size: 64, pieces: []piece{{0, 8, true, cut(4)}, {8, 64, false, nil}}},
		{name: "ecn mixed", size: 64, pieces: []piece{{0, 32, true, tos(2)}, {32, 64, false, tos(0)}}},
		{name: "ecn ce", size: 64, pieces: []piece{{0, 32, true, tos(3)}, {32, 64, false, tos(2)}}},
		{name: "ecn not-ect", size: 64, pieces: []piece{{0, 32, true, tos(0xb8)}, {32, 64, false, tos(0xb8)}}},
		{name: "late duplicate", size: 64, pieces: []piece{{0, 32, true, nil}, {32, 64, false, nil}, {0, 32, true, nil}}},
		{name: "router alert / hop-by-hop", size: 2000, pieces: []piece{{1000, 2000, false, nil}, {0, 1000, true, hbh}}},
		{name: "too big", size: 64, pieces: []piece{{0, 32, true, nil}, {65528, 65544, false, nil}}, only: 6},
		big,
	}
}

// TestKernelAgrees runs every scenario over both families against the
// lab kernel.
func TestKernelAgrees(t *testing.T) {
	l := labtest.New(t, nil)
	a, b := l.A(), l.B()
	// Incomplete datagrams must not time out in the kernel while the
	// test runs: their counters would move.
	setFragTime(t, b, "600")
	tx := labTX(t, a)
	macs := &[2]frame.MAC{frame.MAC(a.MAC), frame.MAC(b.MAC)}
	const port = 9999
	id := uint32(1000)
	for _, fam := range []int{4, 6} {
		src, dst := a.IPv4.Addr(), b.IPv4.Addr()
		network := "udp4"
		if fam == 6 {
			src, dst, network = a.IPv6.Addr(), b.IPv6.Addr(), "udp6"
		}
		ln, err := b.ListenUDP(network, &net.UDPAddr{IP: dst.AsSlice(), Port: port})
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		for _, sc := range kernelScenarios() {
			if sc.only != 0 && sc.only != fam {
				continue
			}
			id++
			udp := udpDatagram(t, src, dst, port, sc.size, byte(id))
			var frames [][]byte
			for _, pc := range sc.pieces {
				f := rawFrag{src: src, dst: dst, id: id, off: pc.off, more: pc.more, macs: macs}
				f.data = make([]byte, pc.end-pc.off)
				if pc.off < len(udp) {
					copy(f.data, udp[pc.off:min(pc.end, len(udp))])
				}
				if pc.mod != nil {
					pc.mod(&f)
				}
				frames = append(frames, f.build())
			}

			// The model.
			r := mustNew(t, nil)
			var want [][]byte
			var outcomes []Outcome
			for _, f := range frames {
				var p frame.Packet
				p.Decode(f)
				res := r.Add(f, &p, t0)
				outcomes = append(outcomes, res.Outcome)
				if d := res.Datagram; d != nil {
					var q frame.Packet
					if q.Decode(d.Frame()) == frame.ReasonOK && q.VerifyChecksums(d.Frame()) == frame.ReasonOK {
						want = append(want, bytes.Clone(q.Payload(d.Frame())))
					}
					r.Release(d)
				}
			}

			// The kernel.
			before := kernelMIB(t, b)
			labtest.Send(t, tx, frames...)
			var got [][]byte
			var kernel MIB
			deadline := time.Now().Add(5 * time.Second)
			for {
				kernel = kernelMIB(t, b).delta(before, fam)
				if kernel.ReasmReqds >= uint64(len(frames)) || time.Now().After(deadline) {
					break
				}
				time.Sleep(time.Millisecond)
			}
			for {
				buf := make([]byte, 70000)
				ln.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
				n, err := ln.Read(buf)
				if err != nil {
					break
				}
				got = append(got, buf[:n])
			}
			kernel = kernelMIB(t, b).delta(before, fam)

			model := r.Stats().IP
			if fam == 6 {
				model = r.Stats().IP6
				model.ReasmOverlaps = kernel.ReasmOverlaps // snmp6 does not show it
			}
			name := fmt.Sprintf("ipv%d %s", fam, sc.name)
			if model != kernel {
				t.Errorf("%s: outcomes %v\nmodel  %+v\nkernel %+v", name, outcomes, model, kernel)
			}
			if len(got) != len(want) {
				t.Errorf("%s: kernel delivered %d datagrams, model %d (outcomes %v)", name, len(got), len(want), outcomes)
				continue
			}
			for i := range got {
				if !bytes.Equal(got[i], want[i]) {
					t.Errorf("%s: datagram %d differs: kernel %d bytes, model %d", name, i, len(got[i]), len(want[i]))
				}
			}
		}
	}
}

// TestKernelDeviation pins down the one counted difference from Linux:
// an IPv4 fragment ending past 65,515 bytes. Linux holds it and fails the
// datagram when it completes or times out; the model discards the
// datagram at once (one ReasmFails now instead of later).
func TestKernelDeviation(t *testing.T) {
	l := labtest.New(t, nil)
	a, b := l.A(), l.B()
	tx := labTX(t, a)
	macs := &[2]frame.MAC{frame.MAC(a.MAC), frame.MAC(b.MAC)}
	frames := [][]byte{
		rawFrag{src: a.IPv4.Addr(), dst: b.IPv4.Addr(), id: 7, more: true, data: make([]byte, 32), macs: macs}.build(),
		rawFrag{src: a.IPv4.Addr(), dst: b.IPv4.Addr(), id: 7, off: 65512, data: make([]byte, 16), macs: macs}.build(),
	}
	r := mustNew(t, nil)
	var outcomes []Outcome
	for _, f := range frames {
		var p frame.Packet
		p.Decode(f)
		outcomes = append(outcomes, r.Add(f, &p, t0).Outcome)
	}
	before := kernelMIB(t, b)
	labtest.Send(t, tx, frames...)
	var kernel MIB
	for deadline := time.Now().Add(5 * time.Second); kernel.ReasmReqds < 2 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
		kernel = kernelMIB(t, b).delta(before, 4)
	}
	if kernel != (MIB{ReasmReqds: 2}) || r.Stats().IP != (MIB{ReasmReqds: 2, ReasmFails: 1}) || outcomes[1] != TooBig {
		t.Errorf("kernel %+v, model %+v %v", kernel, r.Stats().IP, outcomes)
	}
}

// TestKernelTimeout: the kernel, with a 1-second ipfrag_time, times out a
// datagram with and without its first fragment as the model does: one
// ReasmFails and ReasmTimeout each, and an ICMP Time Exceeded (code 1)
// only for the one whose first fragment came, quoting it.
func TestKernelTimeout(t *testing.T) {
	l := labtest.New(t, nil)
	a, b := l.A(), l.B()
	setFragTime(t, b, "1")
	tx := labTX(t, a)
	macs := &[2]frame.MAC{frame.MAC(a.MAC), frame.MAC(b.MAC)}
	for _, fam := range []int{4, 6} {
		src, dst := a.IPv4.Addr(), b.IPv4.Addr()
		if fam == 6 {
			src, dst = a.IPv6.Addr(), b.IPv6.Addr()
		}
		icmp := listenICMP(t, a, fam)
		first := rawFrag{src: src, dst: dst, id: 1, more: true, data: make([]byte, 64), macs: macs}.build()
		later := rawFrag{src: src, dst: dst, id: 2, off: 64, more: true, data: make([]byte, 64), macs: macs}.build()

		r := mustNew(t, &Config{TimeoutIPv4: time.Second, TimeoutIPv6: time.Second})
		for _, f := range [][]byte{first, later} {
			var p frame.Packet
			p.Decode(f)
			r.Add(f, &p, t0)
		}
		var e Expired
		var reports [][]byte
		for r.NextExpired(t0.Add(time.Second), &e) {
			reports = append(reports, bytes.Clone(e.Datagram()))
		}

		before := kernelMIB(t, b)
		labtest.Send(t, tx, first, later)
		// The kernel's timer fires about a second later; the ICMP error
		// arrives then.
		icmp.SetReadDeadline(time.Now().Add(10 * time.Second))
		buf := make([]byte, 2000)
		var quoted [][]byte
		for {
			n, _, err := icmp.ReadFrom(buf)
			if err != nil {
				break
			}
			m := buf[:n] // Go strips the IPv4 header a raw socket reads
			if (fam == 4 && m[0] == frame.ICMPv4TimeExceeded || fam == 6 && m[0] == frame.ICMPv6TimeExceeded) && m[1] == 1 {
				quoted = append(quoted, bytes.Clone(m[8:]))
				icmp.SetReadDeadline(time.Now().Add(1500 * time.Millisecond)) // and no second one
			}
		}
		kernel := kernelMIB(t, b).delta(before, fam)
		model := r.Stats().IP
		if fam == 6 {
			model = r.Stats().IP6
		}
		if kernel != model {
			t.Errorf("ipv%d: model %+v, kernel %+v", fam, model, kernel)
		}
		if len(quoted) != 1 || len(reports) != 1 {
			t.Fatalf("ipv%d: %d ICMP errors from the kernel, %d reports from the model", fam, len(quoted), len(reports))
		}
		// The kernel quotes the first fragment, as the report holds it
		// (the IPv4 quote is the first 28 bytes and more: Linux quotes
		// up to 576 bytes in all).
		if n := min(len(quoted[0]), len(reports[0])); !bytes.Equal(quoted[0][:n], reports[0][:n]) || n < 28 {
			t.Errorf("ipv%d: kernel quotes\n%x\nmodel reports\n%x", fam, quoted[0], reports[0])
		}
		icmp.Close()
	}
}

// TestReassembleKernelFragments: datagrams a kernel UDP socket sends,
// fragmented by the kernel, captured in the other namespace with a
// packet ring and put back together by a Reassembler.
func TestReassembleKernelFragments(t *testing.T) {
	l := labtest.New(t, nil)
	a, b := l.A(), l.B()
	rx := labRX(t, a)
	r := mustNew(t, nil)
	for _, fam := range []int{4, 6} {
		src, dst, network := b.IPv4.Addr(), a.IPv4.Addr(), "udp4"
		if fam == 6 {
			src, dst, network = b.IPv6.Addr(), a.IPv6.Addr(), "udp6"
		}
		c, err := b.DialUDP(network, &net.UDPAddr{IP: src.AsSlice(), Port: 5353}, &net.UDPAddr{IP: dst.AsSlice(), Port: 5454})
		if err != nil {
			t.Fatal(err)
		}
		// A socket in A takes the datagrams, so that A's kernel answers
		// no port unreachable that would fail the next write.
		sink, err := a.ListenUDP(network, &net.UDPAddr{IP: dst.AsSlice(), Port: 5454})
		if err != nil {
			t.Fatal(err)
		}
		defer sink.Close()
		for _, n := range []int{1473, 8192, frame.MaxUDPPayloadIPv4} {
			msg := payload(n, byte(n))
			if _, err := c.Write(msg); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			buf := make([]byte, 4096)
			var done bool
			for !done {
				m, _, err := rx.Read(ctx, buf)
				if err != nil {
					cancel()
					t.Fatalf("ipv%d %d bytes: %v; stats %+v", fam, n, err, r.Stats())
				}
				var p frame.Packet
				p.Decode(buf[:m])
				if !p.IsFragment() || p.SrcAddr(buf[:m]) != src {
					continue
				}
				res := r.Add(buf[:m], &p, time.Now())
				if res.Outcome == Held {
					continue
				}
				if res.Outcome != Reassembled {
					cancel()
					t.Fatalf("ipv%d %d bytes: %v", fam, n, res.Outcome)
				}
				f := res.Datagram.Frame()
				var q frame.Packet
				if q.Decode(f) != frame.ReasonOK || q.VerifyChecksums(f) != frame.ReasonOK || !bytes.Equal(q.Payload(f), msg) ||
					q.Src(f) != netip.AddrPortFrom(src, 5353) || q.Dst(f) != netip.AddrPortFrom(dst, 5454) {
					cancel()
					t.Fatalf("ipv%d %d bytes: reassembled %d bytes from %v", fam, n, len(q.Payload(f)), q.Src(f))
				}
				r.Release(res.Datagram)
				done = true
			}
			cancel()
		}
		c.Close()
	}
	if st := r.Stats(); st.IP.ReasmOKs != 3 || st.IP6.ReasmOKs != 3 || st.Queues != 0 {
		t.Errorf("stats %+v", st)
	}
}

// udpDatagram returns a UDP datagram (header and data) of size bytes with
// a valid checksum, to port.
func udpDatagram(t testing.TB, src, dst netip.Addr, port uint16, size int, seed byte) []byte {
	s := &frame.UDPSpec{Src: netip.AddrPortFrom(src, 40000), Dst: netip.AddrPortFrom(dst, port), Payload: payload(size-8, seed)}
	b := make([]byte, frame.UDPFrameLen(s))
	if _, err := frame.BuildUDP(b, s); err != nil {
		t.Fatal(err)
	}
	var p frame.Packet
	p.Decode(b)
	return b[p.L4Off:p.L4End]
}

// setFragTime sets how many seconds h's kernel holds an incomplete
// datagram, both families.
func setFragTime(t testing.TB, h *lab.Host, seconds string) {
	t.Helper()
	for _, s := range []string{"net.ipv4.ipfrag_time", "net.ipv6.ip6frag_time"} {
		if _, err := h.Sysctl(s, seconds); err != nil {
			t.Fatal(err)
		}
	}
}

// labTX opens a TX ring on h's lab interface, closed when the test ends.
func labTX(t testing.TB, h *lab.Host) ring.Transmitter {
	t.Helper()
	return labtest.Open(t, h, func(ifi *net.Interface) (ring.Transmitter, error) {
		return ring.NewTransmitter(ifi, &ring.TXConfig{FrameCount: 256})
	})
}

// labRX opens a packet ring on h's lab interface, closed when the test
// ends.
func labRX(t testing.TB, h *lab.Host) *ring.RX {
	t.Helper()
	return labtest.Open(t, h, func(ifi *net.Interface) (*ring.RX, error) { return ring.NewRX(ifi, nil) })
}

// listenICMP opens a raw ICMP or ICMPv6 socket in h.
func listenICMP(t testing.TB, h *lab.Host, fam int) net.PacketConn {
	network, addr := "ip4:icmp", h.IPv4.Addr().String()
	if fam == 6 {
		network, addr = "ip6:ipv6-icmp", h.IPv6.Addr().String()
	}
	c, err := h.ListenPacket(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// kernelCounters are a host's reassembly counters, both families.
type kernelCounters map[string]uint64

func kernelMIB(t testing.TB, h *lab.Host) kernelCounters {
	t.Helper()
	c, err := h.NetCounters("snmp", "netstat", "snmp6")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := c["Ip:ReasmReqds"]; !ok {
		t.Fatal("no Ip:ReasmReqds in /proc/net/snmp")
	}
	return c
}

// delta returns the change from before of one family's counters, as a MIB.
func (c kernelCounters) delta(before kernelCounters, fam int) MIB {
	d := func(k string) uint64 { return c[k] - before[k] }
	if fam == 4 {
		return MIB{
			ReasmReqds: d("Ip:ReasmReqds"), ReasmOKs: d("Ip:ReasmOKs"), ReasmFails: d("Ip:ReasmFails"),
			ReasmTimeout: d("Ip:ReasmTimeout"), ReasmOverlaps: d("IpExt:ReasmOverlaps"),
		}
	}
	return MIB{
		ReasmReqds: d("Ip6ReasmReqds"), ReasmOKs: d("Ip6ReasmOKs"), ReasmFails: d("Ip6ReasmFails"),
		ReasmTimeout: d("Ip6ReasmTimeout"), InHdrErrors: d("Ip6InHdrErrors"),
	}
}

// TestEchoToKernel is the engine's echo of fragmented datagrams in
// miniature, with the kernel as the client: a kernel UDP socket sends
// datagrams of up to 65,507 bytes; a packet ring in the other namespace
// hands the fragments to a Reassembler; the reassembled datagram is
// answered in place (frame.ReplyInPlace), fragmented again as it is
// (frame.FrameFragmenter, identifications from frame.FragmentIDs) and sent
// back through a TX ring; the kernel reassembles the reply and the client
// reads every byte back.
func TestEchoToKernel(t *testing.T) {
	l := labtest.New(t, nil)
	a, b := l.A(), l.B()
	rx := labRX(t, b)
	tx := labTX(t, b)
	r := mustNew(t, nil)
	ids := frame.NewFragmentIDs()
	for _, fam := range []struct {
		network        string
		client, server netip.Addr
	}{{"udp4", a.IPv4.Addr(), b.IPv4.Addr()}, {"udp6", a.IPv6.Addr(), b.IPv6.Addr()}} {
		// B's kernel must not answer the requests with port unreachable.
		sink, err := b.ListenUDP(fam.network, &net.UDPAddr{IP: fam.server.AsSlice(), Port: 7})
		if err != nil {
			t.Fatal(err)
		}
		defer sink.Close()
		c, err := a.ListenUDP(fam.network, &net.UDPAddr{IP: fam.client.AsSlice(), Port: 40007})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		for _, n := range []int{100, 1473, 8192, 30000, frame.MaxUDPPayloadIPv4} {
			msg := payload(n, byte(n>>3))
			if _, err := c.WriteToUDPAddrPort(msg, netip.AddrPortFrom(fam.server, 7)); err != nil {
				t.Fatal(err)
			}
			echoOne(t, rx, tx, r, ids, fam.server)
			buf := make([]byte, 70000)
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			got, from, err := c.ReadFromUDPAddrPort(buf)
			if err != nil || got != n || !bytes.Equal(buf[:got], msg) || from.Addr().Unmap() != fam.server || from.Port() != 7 {
				t.Fatalf("%s %d bytes: echo of %d bytes from %v: %v; stats %+v", fam.network, n, got, from, err, r.Stats())
			}
		}
	}
}

// echoOne reads frames to server from rx until one datagram is complete
// (reassembled or not fragmented at all) and sends its echo through tx.
func echoOne(t *testing.T, rx *ring.RX, tx ring.Transmitter, r *Reassembler, ids *frame.FragmentIDs, server netip.Addr) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	buf := make([]byte, 4096)
	for {
		n, m, err := rx.Read(ctx, buf)
		if err != nil {
			t.Fatalf("no request: %v; stats %+v", err, r.Stats())
		}
		if m.Type == ring.PacketOutgoing {
			continue
		}
		f := buf[:n]
		var p frame.Packet
		reason := p.Decode(f)
		if p.DstAddr(f) != server {
			continue
		}
		var d *Datagram
		if p.IsFragment() {
			res := r.Add(f, &p, time.Now())
			if res.Outcome == Held {
				continue
			}
			if res.Outcome != Reassembled {
				t.Fatalf("request: %v", res.Outcome)
			}
			d = res.Datagram
			f = d.Frame()
			reason = p.Decode(f)
		}
		if reason != frame.ReasonOK || p.Dst(f).Port() != 7 {
			continue
		}
		if d == nil {
			// A frame from a local kernel socket carries only the
			// pseudo-header sum (TP_STATUS_CSUMNOTREADY on veth); the
			// kernel completes the checksum of a datagram it
			// fragments itself.
			p.FillUDPChecksum(f)
		}
		if _, err := frame.ReplyInPlace(f, &p, 0); err != nil {
			t.Fatal(err)
		}
		var ff frame.FrameFragmenter
		if err := ff.Reset(f, &p, 1500, ids.Next(p.SrcAddr(f), p.DstAddr(f))); err != nil {
			t.Fatal(err)
		}
		labtest.SendBuilt(t, tx, ff.Fragments(), ff.Build)
		r.Release(d)
		return
	}
}
