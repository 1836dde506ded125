//go:build linux

package engine

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"

	"github.com/pktengine/pktengine/frame"
	"github.com/pktengine/pktengine/internal/lab"
	"github.com/pktengine/pktengine/internal/labtest"
	"github.com/pktengine/pktengine/xdp"
)

// labBackend is the backend openLab opens engines with. TestLabXDP runs
// the lab tests again with BackendXDP: everything above the backend
// boundary must behave the same on both.
var labBackend = BackendTPACKET

// labConfig returns cfg for labBackend. On XDP the engine runs one
// worker per receive queue of the interface, so a test's Workers becomes
// that (veth: one, unless ethtool gives it more).
func labConfig(cfg *Config) *Config {
	if labBackend == BackendTPACKET {
		return cfg
	}
	var c Config
	if cfg != nil {
		c = *cfg
	}
	c.Backend = labBackend
	c.Workers = 0
	return &c
}

// onXDP runs f with openLab opening AF_XDP engines.
func onXDP(t *testing.T, f func(t *testing.T)) {
	t.Helper()
	labBackend = BackendXDP
	defer func() { labBackend = BackendTPACKET }()
	f(t)
}

// TestLabXDP runs the engine's lab tests on the AF_XDP backend. The
// peer's kernel sockets send partial UDP checksums over veth, which
// AF_XDP cannot flag: the engine must take them for partial (the rule of
// frame.Packet.VerifyUDPChecksumPartial) and complete them in answers, or
// the peer's kernel drops every echo.
func TestLabXDP(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    func(*testing.T)
	}{
		{"Owned", TestLabOwned},
		{"Shared", TestLabShared},
		{"PortAPI", TestLabPortAPI},
		{"NoAllocs", TestLabNoAllocs},
	} {
		t.Run(tc.name, func(t *testing.T) { onXDP(t, tc.f) })
	}
}

// openXDP opens an AF_XDP engine on h's lab interface, or returns the
// error; the engine is closed when the test ends.
func openXDP(t *testing.T, h *lab.Host, cfg *Config) (*Engine, error) {
	t.Helper()
	var c Config
	if cfg != nil {
		c = *cfg
	}
	c.Backend = BackendXDP
	e, err := lab.OnInterface(h, func(ifi *net.Interface) (*Engine, error) { return Open(ifi, &c) })
	if err == nil {
		t.Cleanup(func() { e.Close() })
	}
	return e, err
}

// openXDPEcho opens the engine with the XDP backend, as openXDP, and
// serves echo on port 7 of all its addresses.
func openXDPEcho(t *testing.T, h *lab.Host, cfg *Config) *Engine {
	t.Helper()
	e, err := openXDP(t, h, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.HandleService(netip.AddrPortFrom(netip.Addr{}, 7), Echo); err != nil {
		t.Fatal(err)
	}
	return e
}

// xdpAttached reports what ip(8) says about an XDP program on h's
// interface.
func xdpAttached(t *testing.T, h *lab.Host, iface string) bool {
	t.Helper()
	out, err := h.Command(context.Background(), "ip", "link", "show", "dev", iface).CombinedOutput()
	if err != nil {
		t.Fatalf("ip link show: %v %s", err, out)
	}
	return strings.Contains(string(out), "xdp")
}

// waitFrames waits until the engine has handled n frames.
func waitFrames(t *testing.T, e *Engine, n uint64) Counters {
	t.Helper()
	handled := func(c *Counters) bool { return c.FramesIn >= n && c.FramesIn+c.RingDrops == c.RingPackets }
	c := countersWhen(e, 5*time.Second, handled)
	if !handled(&c) {
		t.Fatalf("the engine handled %d frames, want %d (ring %d)", c.FramesIn, n, c.RingPackets)
	}
	return c
}

// TestLabXDPOpenErrors: where XDP cannot run, Open fails with an error
// that names the cause, and never falls back to TPACKET.
func TestLabXDPOpenErrors(t *testing.T) {
	t.Run("MTU", func(t *testing.T) {
		l := labtest.New(t, &lab.Config{MTU: 9000})
		_, err := openXDP(t, l.A(), nil)
		if !errors.Is(err, xdp.ErrMTUTooLarge) || !strings.Contains(err.Error(), "9000") {
			t.Fatalf("Open with MTU 9000: %v, want xdp.ErrMTUTooLarge naming the MTU", err)
		}
		t.Log(err)
	})
	t.Run("Workers", func(t *testing.T) {
		l := labtest.New(t, nil)
		_, err := openXDP(t, l.A(), &Config{Workers: 2})
		if err == nil || !strings.Contains(err.Error(), "Workers is 2") || !strings.Contains(err.Error(), "1 receive queue") {
			t.Fatalf("Open with 2 workers on a 1-queue veth: %v, want an error naming both", err)
		}
		t.Log(err)
	})
	t.Run("ForeignProgram", func(t *testing.T) {
		l := labtest.New(t, nil)
		a := l.A()
		// Another program's: pktengine's own program loaded by a
		// process that is this one would count as live, so load a
		// plain one through cilium/ebpf.
		foreign, err := lab.OnInterface(a, attachForeign)
		if err != nil {
			t.Fatal(err)
		}
		defer foreign.Close()
		_, err = openXDP(t, a, nil)
		if !errors.Is(err, xdp.ErrProgramPresent) {
			t.Fatalf("Open beside a foreign program: %v, want xdp.ErrProgramPresent", err)
		}
		t.Log(err)
		e, err := openXDP(t, a, &Config{XDP: XDPConfig{ReplaceForeign: true}})
		if err != nil {
			t.Fatalf("Open with ReplaceForeign: %v", err)
		}
		if st := e.Status(); st.XDP == nil || !strings.Contains(st.XDP.Replaced, "foreign") {
			t.Errorf("Status.XDP %+v: want the replaced program named", st.XDP)
		}
	})
	t.Run("NoDriverSupport", func(t *testing.T) {
		l := labtest.New(t, nil)
		a := l.A()
		if out, err := a.Command(context.Background(), "ip", "link", "add", "br0", "type", "bridge").CombinedOutput(); err != nil {
			t.Skipf("no bridge here: %v %s", err, out)
		}
		if out, err := a.Command(context.Background(), "ip", "link", "set", "br0", "up").CombinedOutput(); err != nil {
			t.Fatalf("%v %s", err, out)
		}
		open := func(generic bool) (*Engine, error) {
			var e *Engine
			err := a.Do(func() error {
				ifi, err := a.InterfaceByName("br0")
				if err != nil {
					return err
				}
				e, err = Open(ifi, &Config{Backend: BackendXDP, XDP: XDPConfig{Generic: generic},
					Addrs: []netip.Prefix{netip.MustParsePrefix("198.18.1.1/24")}})
				return err
			})
			if err == nil {
				t.Cleanup(func() { e.Close() })
			}
			return e, err
		}
		_, err := open(false)
		if !errors.Is(err, xdp.ErrNoDriverSupport) || !strings.Contains(err.Error(), "Generic") {
			t.Fatalf("Open on a bridge: %v, want xdp.ErrNoDriverSupport suggesting generic mode", err)
		}
		t.Log(err)
		e, err := open(true)
		if err != nil {
			t.Fatalf("Open on a bridge in generic mode: %v", err)
		}
		if st := e.Status(); st.XDP == nil || !st.XDP.Generic {
			t.Errorf("Status.XDP %+v, want Generic", st.XDP)
		}
	})
}

// TestLabXDPCloseRemovesProgram: the program goes with Close.
func TestLabXDPCloseRemovesProgram(t *testing.T) {
	l := labtest.New(t, nil)
	a := l.A()
	e, err := openXDP(t, a, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !xdpAttached(t, a, a.Iface) {
		t.Fatal("no XDP program on the interface while the engine runs")
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if xdpAttached(t, a, a.Iface) {
		t.Fatal("an XDP program is still on the interface after Close")
	}
}

// TestLabXDPStatus: the backend, the bind mode and the frame checks are
// in Status, and every UMEM frame is accounted for at the end.
func TestLabXDPStatus(t *testing.T) {
	l := labtest.New(t, nil)
	a, b := l.A(), l.B()
	e := openXDPEcho(t, a, nil)
	for i := range 20 {
		if got, err := roundTrip(t, b, netip.AddrPortFrom(a.IPv4.Addr(), 7), fmt.Sprint("status ", i)); err != nil || got != fmt.Sprint("status ", i) {
			t.Fatalf("echo %d: %q, %v", i, got, err)
		}
	}
	st := e.Status()
	if st.Backend != "xdp" || st.XDP == nil || st.XDP.Mode != "copy" || len(st.XDP.Sockets) != 1 || st.Workers != 1 || st.RXVersion != "" {
		t.Fatalf("Status: backend %q, workers %d, rx %q, XDP %+v", st.Backend, st.Workers, st.RXVersion, st.XDP)
	}
	if b, mode := e.Backend(); b != BackendXDP || mode != "copy" {
		t.Errorf("Backend() = %v, %q", b, mode)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	st = e.Status()
	c := st.Counters
	x := c.XDP
	t.Logf("after Close: %+v; socket %+v", x, st.XDP.Sockets[0])
	if x.Received != 20 || x.Transmitted != 20 || x.Completed != 20 || c.UDP.OutDatagrams != 20 || c.TXDropped != 0 {
		t.Errorf("received %d, transmitted %d, completed %d, sent %d, dropped %d; want 20, 20, 20, 20, 0",
			x.Received, x.Transmitted, x.Completed, c.UDP.OutDatagrams, c.TXDropped)
	}
	if x.Steered < 20 || x.FrameChecks == 0 || x.FrameCheckFailures != 0 {
		t.Errorf("steered %d, frame checks %d, failures %d", x.Steered, x.FrameChecks, x.FrameCheckFailures)
	}
	s := st.XDP.Sockets[0]
	if s.CheckError != "" || s.Frames.Total != s.FrameCount || s.Frames.Sum() != s.Frames.Total || s.Frames.Held != 0 || s.CheckedAt.IsZero() {
		t.Errorf("final frame count %v (checked %v, error %q)", s.Frames, s.CheckedAt, s.CheckError)
	}
	if c.RingPackets != c.FramesIn+c.RingDrops {
		t.Errorf("ring packets %d, frames %d, drops %d", c.RingPackets, c.FramesIn, c.RingDrops)
	}
}

// TestLabXDPPartialChecksum sends, from a raw socket, datagrams whose UDP
// checksum is the pseudo-header sum (what a local sender leaves for the
// NIC) and ones whose checksum is simply wrong: the first are answered
// with a full checksum, the second counted bad.
func TestLabXDPPartialChecksum(t *testing.T) {
	l := labtest.New(t, nil)
	a, b := l.A(), l.B()
	e := openXDPEcho(t, a, nil)
	sent := startCapture(t, b, a.MAC, false)
	tx := labtest.Open(t, b, openLabTX)
	var frames [][]byte
	for _, dst := range []netip.Addr{a.IPv4.Addr(), a.IPv6.Addr()} {
		src := b.IPv4.Addr()
		if dst.Is6() {
			src = b.IPv6.Addr()
		}
		mac := func(s *frame.UDPSpec) { s.SrcMAC, s.DstMAC = frame.MAC(b.MAC), frame.MAC(a.MAC) }
		partial := udpFrame(t, netip.AddrPortFrom(src, 40000), netip.AddrPortFrom(dst, 7), []byte("partial sum"), mac)
		var p frame.Packet
		p.Decode(partial)
		u := p.UDP(partial)
		u.SetChecksum(0)
		u.SetChecksum(pseudoSum(&p, partial))
		bad := udpFrame(t, netip.AddrPortFrom(src, 40001), netip.AddrPortFrom(dst, 7), []byte("bad sum"), mac)
		p.Decode(bad)
		p.UDP(bad).SetChecksum(p.UDP(bad).Checksum() ^ 0x0101)
		frames = append(frames, partial, bad)
	}
	labtest.Send(t, tx, frames...)
	c := waitFrames(t, e, 4)
	time.Sleep(50 * time.Millisecond)
	if udp, _ := checkSent(t, sent.take()); udp != 2 {
		t.Errorf("the peer received %d echoes with valid checksums, want 2", udp)
	}
	if c.UDP.OutDatagrams != 2 || c.Outcomes[frame.ReasonUDPBadChecksum] != 2 || c.UDP.InCsumErrors != 2 {
		t.Errorf("echoed %d, bad checksums %d (InCsumErrors %d); want 2 and 2", c.UDP.OutDatagrams, c.Outcomes[frame.ReasonUDPBadChecksum], c.UDP.InCsumErrors)
	}
}

// pseudoSum is the folded pseudo-header sum of a decoded UDP datagram, by
// the naive reference sum.
func pseudoSum(p *frame.Packet, f []byte) uint16 {
	u := p.UDP(f)
	var ln [4]byte
	binary.BigEndian.PutUint16(ln[2:], uint16(len(u)))
	src, dst := p.SrcAddr(f).AsSlice(), p.DstAddr(f).AsSlice()
	return ^^refSum(src, dst, []byte{0, 17}, ln[:])
}

// TestLabXDPFilter: Config.Filter runs in the worker on AF_XDP: frames it
// rejects are counted in XDP.Filtered and nowhere else.
func TestLabXDPFilter(t *testing.T) {
	l := labtest.New(t, nil)
	a, b := l.A(), l.B()
	e := openXDPEcho(t, a, &Config{Filter: "udp src port 40000 or vlan"})
	tx := labtest.Open(t, b, openLabTX)
	mac := func(s *frame.UDPSpec) { s.SrcMAC, s.DstMAC = frame.MAC(b.MAC), frame.MAC(a.MAC) }
	dst := netip.AddrPortFrom(a.IPv4.Addr(), 7)
	pass := udpFrame(t, netip.AddrPortFrom(b.IPv4.Addr(), 40000), dst, []byte("pass"), mac)
	reject := udpFrame(t, netip.AddrPortFrom(b.IPv4.Addr(), 40001), dst, []byte("reject"), mac)
	tagged := udpFrame(t, netip.AddrPortFrom(b.IPv4.Addr(), 40002), dst, []byte("tagged"), mac,
		func(s *frame.UDPSpec) { s.VLANs = []frame.VLANTag{{TPID: 0x8100, TCI: frame.MakeTCI(3, false, 0)}} }) // a priority tag: served untagged
	labtest.Send(t, tx, pass, reject, reject, tagged)
	c := waitFrames(t, e, 2)
	time.Sleep(20 * time.Millisecond)
	c = e.Counters()
	if c.FramesIn != 2 || c.XDP.Filtered != 2 || c.XDP.Received != 4 || c.UDP.OutDatagrams != 2 || c.RingPackets != 2 {
		t.Errorf("frames %d, filtered %d, received %d, echoed %d, ring packets %d; want 2, 2, 4, 2, 2",
			c.FramesIn, c.XDP.Filtered, c.XDP.Received, c.UDP.OutDatagrams, c.RingPackets)
	}
}

// TestLabXDPGroupPort: a port bound to a multicast group receives the
// group's datagrams on AF_XDP too: the program steers the group address
// by port.
func TestLabXDPGroupPort(t *testing.T) {
	l := labtest.New(t, nil)
	a, b := l.A(), l.B()
	e, err := openXDP(t, a, nil)
	if err != nil {
		t.Fatal(err)
	}
	group := netip.MustParseAddr("239.1.2.3")
	p, err := e.Bind(netip.AddrPortFrom(group, 5353))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.JoinGroup(group); err != nil { // as a kernel socket, it receives only a joined group
		t.Fatal(err)
	}
	tx := labtest.Open(t, b, openLabTX)
	f := udpFrame(t, netip.AddrPortFrom(b.IPv4.Addr(), 40000), netip.AddrPortFrom(group, 5353), []byte("to the group"),
		func(s *frame.UDPSpec) {
			s.SrcMAC, s.DstMAC = frame.MAC(b.MAC), frame.MAC{0x01, 0x00, 0x5e, 0x01, 0x02, 0x03}
		})
	other := udpFrame(t, netip.AddrPortFrom(b.IPv4.Addr(), 40000), netip.AddrPortFrom(group, 5354), []byte("another port"),
		func(s *frame.UDPSpec) {
			s.SrcMAC, s.DstMAC = frame.MAC(b.MAC), frame.MAC{0x01, 0x00, 0x5e, 0x01, 0x02, 0x03}
		})
	labtest.Send(t, tx, f, other)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel()
	ds := make([]Datagram, 4)
	n, err := p.Recv(ctx, ds)
	if err != nil || n != 1 || string(ds[0].Payload) != "to the group" {
		t.Fatalf("Recv: %d, %v", n, err)
	}
	p.Release(ds[:n])
	time.Sleep(20 * time.Millisecond)
	if c := e.Counters(); c.FramesIn != 1 {
		t.Errorf("the engine received %d frames, want 1: the other port's datagram is the kernel's", c.FramesIn)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestLabXDPTwoQueues gives the veth two queues: the engine opens a
// socket and a worker on each, and flows from many ports reach both.
func TestLabXDPTwoQueues(t *testing.T) {
	l := labtest.New(t, nil)
	a, b := l.A(), l.B()
	for _, h := range []*lab.Host{a, b} {
		if out, err := h.Command(context.Background(), "ethtool", "-L", h.Iface, "rx", "2", "tx", "2").CombinedOutput(); err != nil {
			t.Skipf("ethtool -L: %v %s", err, out)
		}
	}
	if _, err := openXDP(t, a, &Config{Workers: 1}); err == nil || !strings.Contains(err.Error(), "2 receive queue") {
		t.Fatalf("one worker on two queues: %v, want an error naming the queues", err)
	}
	e := openXDPEcho(t, a, nil)
	st := e.Status()
	if st.Workers != 2 || len(st.XDP.Sockets) != 2 {
		t.Fatalf("%d workers, %d sockets; want 2", st.Workers, len(st.XDP.Sockets))
	}
	for i := range 64 {
		msg := fmt.Sprint("flow ", i)
		if got, err := roundTrip(t, b, netip.AddrPortFrom(a.IPv4.Addr(), 7), msg); err != nil || got != msg {
			t.Fatalf("%s: %q, %v", msg, got, err)
		}
	}
	var perWorker []uint64
	var s counterSet
	for _, w := range e.workers {
		w.published.read(&s)
		perWorker = append(perWorker, s[cFrames])
	}
	t.Logf("frames per worker: %v", perWorker)
	if perWorker[0] == 0 || perWorker[1] == 0 {
		t.Errorf("frames per worker %v: one queue got nothing", perWorker)
	}
}

// attachForeign attaches a program that is not pktengine's (it passes
// everything) to ifi, the way another tool would.
func attachForeign(ifi *net.Interface) (io.Closer, error) {
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name: "foreign", Type: ebpf.XDP, License: "GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 2), asm.Return()},
	})
	if err != nil {
		return nil, err
	}
	l, err := link.AttachXDP(link.XDPOptions{Program: prog, Interface: ifi.Index})
	if err != nil {
		prog.Close()
		return nil, err
	}
	return closers{l, prog}, nil
}

// TestLabXDPReplyInPlace: an inline handler's answer written over its
// request with Responder.ReplyInPlace leaves from the request's UMEM frame
// and reaches a kernel client whole, over IPv4 and IPv6, one UMEM frame
// transmitted per answer.
func TestLabXDPReplyInPlace(t *testing.T) {
	l := labtest.New(t, nil)
	a, b := l.A(), l.B()
	e, err := openXDP(t, a, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Handle(netip.AddrPortFrom(netip.Addr{}, 53), HandlerFunc(func(rs *Responder, d *Datagram) {
		if err := rs.ReplyInPlace(answerQuestion); err != nil {
			t.Error(err)
		}
	})); err != nil {
		t.Fatal(err)
	}
	for i, dst := range []netip.Addr{a.IPv4.Addr(), a.IPv6.Addr(), a.IPv4.Addr()} {
		q := fmt.Sprintf("question %d, how many roads?", i)
		want := append([]byte(q), " is the answer"...)
		answerQuestion(want[:len(q):len(want)])
		if got, err := roundTrip(t, b, netip.AddrPortFrom(dst, 53), q); err != nil || got != string(want) {
			t.Fatalf("to %v: %q, %v; want %q", dst, got, err, want)
		}
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	c := e.Counters()
	if c.UDP.OutDatagrams != 3 || c.XDP.Transmitted != 3 || c.XDP.Completed != 3 || c.TXDropped != 0 {
		t.Errorf("sent %d, transmitted %d, completed %d, dropped %d; want 3, 3, 3, 0",
			c.UDP.OutDatagrams, c.XDP.Transmitted, c.XDP.Completed, c.TXDropped)
	}
}
