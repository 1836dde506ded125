package engine

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pktengine/pktengine/frame"
	"github.com/pktengine/pktengine/proto"
	"github.com/pktengine/pktengine/ring"
)

func TestBindConflicts(t *testing.T) {
	r := newRig(t, nil)
	e := r.e
	any := netip.Addr{}
	v4any := netip.IPv4Unspecified()
	v6any := netip.IPv6Unspecified()

	mustBind := func(a netip.AddrPort) *Port {
		t.Helper()
		p, err := e.Bind(a)
		if err != nil {
			t.Fatalf("Bind(%v): %v", a, err)
		}
		return p
	}
	inUse := func(a netip.AddrPort) {
		t.Helper()
		_, err := e.Bind(a)
		if !errors.Is(err, syscall.EADDRINUSE) {
			t.Fatalf("Bind(%v) = %v, want EADDRINUSE", a, err)
		}
		var oe *net.OpError
		if !errors.As(err, &oe) || oe.Op != "bind" {
			t.Errorf("error %v is not a bind *net.OpError", err)
		}
	}

	// An exact binding and a wildcard one coexist; duplicates do not.
	mustBind(ap(owned4, 53))
	mustBind(ap(v4any, 53))
	inUse(ap(owned4, 53))
	inUse(ap(v4any, 53))
	inUse(ap(any, 53)) // covers IPv4, which 0.0.0.0 has
	mustBind(ap(v6any, 53))
	inUse(ap(v6any, 53))

	p := mustBind(ap(any, 54))
	inUse(ap(v4any, 54))
	inUse(ap(v6any, 54))
	mustBind(ap(shared6, 54))
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	mustBind(ap(v4any, 54)) // free again

	// An IPv4-mapped address is its IPv4 address.
	inUse(ap(netip.AddrFrom16(owned4.As16()), 53))

	// Not an engine address.
	if _, err := e.Bind(ap(netip.MustParseAddr("198.18.0.99"), 55)); !errors.Is(err, syscall.EADDRNOTAVAIL) {
		t.Errorf("Bind to a foreign address: %v, want EADDRNOTAVAIL", err)
	}
	// Group addresses are accepted.
	mustBind(ap(bcast4, 56))
	mustBind(ap(netip.MustParseAddr("239.1.2.3"), 56))

	// Ephemeral ports come from the dynamic range and never repeat.
	seen := map[uint16]bool{}
	for range 200 {
		p := mustBind(ap(owned4, 0))
		port := p.Addr().Port()
		if !proto.Dynamic.Contains(port) {
			t.Fatalf("ephemeral port %d outside 49152-65535", port)
		}
		if seen[port] {
			t.Fatalf("ephemeral port %d handed out twice", port)
		}
		seen[port] = true
	}
	if got := len(e.Ports()); got != 7+200 {
		t.Errorf("Ports() lists %d ports, want %d", got, 207)
	}
}

// TestEphemeralExhaustion binds every port of a (shrunk) ephemeral range
// and then expects EADDRINUSE for one more.
func TestEphemeralExhaustion(t *testing.T) {
	r := newRig(t, &Config{QueueDepth: 1})
	r.e.ephemeral = [2]uint16{60000, 60099}
	seen := map[uint16]bool{}
	for range 100 {
		p, err := r.e.Bind(ap(owned6, 0))
		if err != nil {
			t.Fatal(err)
		}
		seen[p.Addr().Port()] = true
	}
	if len(seen) != 100 {
		t.Fatalf("%d distinct ports", len(seen))
	}
	if _, err := r.e.Bind(ap(owned6, 0)); !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("101st bind: %v, want EADDRINUSE", err)
	}
	if _, err := r.e.Bind(ap(owned4, 0)); err != nil {
		t.Fatalf("IPv4 still has room: %v", err)
	}
	// A port bound explicitly inside the range is skipped.
	r.e.ephemeral = [2]uint16{61000, 61001}
	if _, err := r.e.Bind(ap(owned6, 61000)); err != nil {
		t.Fatal(err)
	}
	if p, err := r.e.Bind(ap(owned6, 0)); err != nil || p.Addr().Port() != 61001 {
		t.Fatalf("Bind(0) = %v, %v; want port 61001", p, err)
	}
}

// TestDemuxPrefersExact: a datagram to an address with an exact binding
// goes there, others to the wildcard; broadcasts go to the wildcard and
// to a port bound to the broadcast address, both.
func TestDemuxPrefersExact(t *testing.T) {
	r := newRig(t, nil)
	exact, _ := r.e.Bind(ap(owned4, 9000))
	wild, _ := r.e.Bind(ap(netip.Addr{}, 9000))
	group, _ := r.e.Bind(ap(bcast4, 9000))
	r.one(udpFrame(t, ap(peer4, 1234), ap(owned4, 9000), []byte("a")), ring.Meta{})
	r.one(udpFrame(t, ap(peer4, 1234), ap(shared4, 9000), []byte("b")), ring.Meta{})
	r.one(udpFrame(t, ap(peer4, 1234), ap(bcast4, 9000), []byte("c")), ring.Meta{Type: ring.PacketBroadcast})
	r.one(udpFrame(t, ap(peer4, 1234), ap(netip.MustParseAddr("255.255.255.255"), 9000), []byte("d")), ring.Meta{Type: ring.PacketBroadcast})

	ctx := t.Context()
	for _, tc := range []struct {
		p    *Port
		want string
	}{{exact, "a"}, {wild, "bcd"}, {group, "c"}} {
		ds := make([]Datagram, 8)
		n, err := tc.p.Recv(ctx, ds)
		if err != nil {
			t.Fatal(err)
		}
		var got []byte
		for _, d := range ds[:n] {
			got = append(got, d.Payload...)
		}
		if string(got) != tc.want {
			t.Errorf("%v received %q, want %q", tc.p, got, tc.want)
		}
		tc.p.Release(ds[:n])
	}
	c := r.e.Counters()
	if c.UDP.InDatagrams != 5 || c.Outcomes[OutcomeDelivered] != 4 {
		t.Errorf("InDatagrams %d (want 5: the broadcast twice), delivered %d (want 4)", c.UDP.InDatagrams, c.Outcomes[OutcomeDelivered])
	}
}

// TestRecvDatagrams checks what Recv hands out and, with ZeroCopy, that
// the ring batch is handed back only when the last datagram from it is
// released.
func TestRecvDatagrams(t *testing.T) {
	r := newRig(t, &Config{ZeroCopy: true, VLAN: 12})
	p, err := r.e.Bind(ap(netip.Addr{}, 5000))
	if err != nil {
		t.Fatal(err)
	}
	b := new(fakeBatch)
	b.add(udpFrame(t, ap(peer4, 40001), ap(owned4, 5000), []byte("one"), func(s *frame.UDPSpec) { s.VLANs = vlanTags(12) }), ring.Meta{Timestamp: 1e9})
	b.add(udpFrame(t, ap(peer6, 40002), ap(owned6, 5000), []byte("two")), ring.Meta{Timestamp: 2e9, Status: tpStatusVLANValid, VLANTCI: 12})
	br := &batchRef{free: r.w.free}
	br.b = b
	r.w.handleBatch(br)
	if br.queued != 2 {
		t.Fatalf("queued %d", br.queued)
	}

	ds := make([]Datagram, 1)
	n, err := p.Recv(t.Context(), ds)
	if err != nil || n != 1 {
		t.Fatalf("Recv = %d, %v", n, err)
	}
	d := ds[0]
	if string(d.Payload) != "one" || d.Src != ap(peer4, 40001) || d.Dst != ap(owned4, 5000) || !d.Time.Equal(time.Unix(1, 0)) {
		t.Errorf("datagram %q %v -> %v at %v", d.Payload, d.Src, d.Dst, d.Time)
	}
	if cap(d.Payload) != len(d.Payload) {
		t.Errorf("payload capacity %d reaches past its length %d", cap(d.Payload), len(d.Payload))
	}
	if d.SrcMAC() != macPeer {
		t.Errorf("SrcMAC %v", d.SrcMAC())
	}
	// Recv releases what ds held before refilling it.
	if n, err = p.Recv(t.Context(), ds); err != nil || n != 1 {
		t.Fatalf("Recv = %d, %v", n, err)
	}
	if len(r.w.free) != 0 {
		t.Fatal("batch handed back while a datagram still holds it")
	}
	if v := ds[0].VLANs(); len(v) != 1 || v[0].ID() != 12 {
		t.Errorf("VLANs %v", v)
	}
	ds[0].Release()
	ds[0].Release() // a second release does nothing
	select {
	case got := <-r.w.free:
		if got != br {
			t.Fatal("a different batch came back")
		}
	default:
		t.Fatal("batch not handed back after the last release")
	}
}

// TestRecvWaits checks that Recv sleeps and wakes up, honours its
// context, and returns net.ErrClosed when the port closes.
func TestRecvWaits(t *testing.T) {
	r := newRig(t, nil)
	p, _ := r.e.Bind(ap(owned4, 5000))
	got := make(chan string, 1)
	go func() {
		ds := make([]Datagram, 4)
		n, err := p.Recv(context.Background(), ds)
		if err != nil {
			got <- err.Error()
			return
		}
		got <- string(ds[0].Payload)
		p.Release(ds[:n])
	}()
	time.Sleep(20 * time.Millisecond) // let it sleep
	r.one(udpFrame(t, ap(peer4, 1), ap(owned4, 5000), []byte("wake")), ring.Meta{})
	select {
	case s := <-got:
		if s != "wake" {
			t.Fatalf("Recv: %s", s)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Recv did not wake up")
	}

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Millisecond)
	defer cancel()
	if _, err := p.Recv(ctx, make([]Datagram, 1)); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Recv with an expiring context: %v", err)
	}

	errc := make(chan error, 1)
	go func() {
		_, err := p.Recv(context.Background(), make([]Datagram, 1))
		errc <- err
	}()
	time.Sleep(10 * time.Millisecond)
	// Queue one more datagram that Close must release.
	r.one(udpFrame(t, ap(peer4, 1), ap(owned4, 5000), []byte("late")), ring.Meta{})
	p.Close()
	if err := <-errc; err != nil && !errors.Is(err, net.ErrClosed) {
		t.Errorf("Recv on a closing port: %v", err)
	}
	if _, err := p.Recv(context.Background(), make([]Datagram, 1)); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Recv on a closed port: %v, want net.ErrClosed", err)
	}
	if p.q.Len() != 0 {
		t.Errorf("%d datagrams left queued after Close", p.q.Len())
	}
}

// TestRecvWakesOnClose: a Recv asleep on an empty queue returns
// net.ErrClosed when the port closes, with nothing queued to wake it.
func TestRecvWakesOnClose(t *testing.T) {
	r := newRig(t, nil)
	p, _ := r.e.Bind(ap(owned4, 5000))
	// The context only unblocks everything should the test fail: Close
	// waits for a running Recv to leave.
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		_, err := p.Recv(ctx, make([]Datagram, 1))
		errc <- err
	}()
	time.Sleep(10 * time.Millisecond) // let it sleep; if it has not yet, it sees the port closed
	go p.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("Recv on a port closed under it: %v, want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		cancel()
		t.Fatalf("Close did not wake Recv (after cancelling: %v)", <-errc)
	}
}

// TestPortConcurrency runs a worker feeding a port while a consumer
// receives and another goroutine binds and closes ports, under the race
// detector.
func TestPortConcurrency(t *testing.T) {
	r := newRig(t, &Config{QueueDepth: 64})
	p, _ := r.e.Bind(ap(netip.Addr{}, 5000))
	frames := new(fakeBatch)
	for i := range 32 {
		frames.add(udpFrame(t, ap(peer4, uint16(1000+i)), ap(owned4, 5000), []byte{byte(i)}), ring.Meta{})
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var received int
	wg.Go(func() {
		ds := make([]Datagram, 16)
		for {
			n, err := p.Recv(context.Background(), ds)
			if err != nil {
				return
			}
			received += n
		}
	})
	repeatUntil(&wg, stop, func() bool {
		q, err := r.e.Bind(ap(owned4, 0))
		if err != nil {
			t.Error(err)
			return false
		}
		q.Close()
		return true
	})
	// A reader checks the invariant on live counters.
	repeatUntil(&wg, stop, func() bool {
		c := r.e.Counters()
		if err := c.Check(); err != nil {
			t.Error(err)
			return false
		}
		return true
	})
	var br *batchRef
	for range 300 {
		if br == nil {
			select {
			case br = <-r.w.free:
			case <-time.After(time.Millisecond):
				br = &batchRef{free: r.w.free}
			}
		}
		br.b = frames
		r.w.handleBatch(br)
		if br.queued != 0 {
			br = nil
		}
	}
	close(stop)
	time.Sleep(10 * time.Millisecond)
	p.Close()
	wg.Wait()
	c := r.e.Counters()
	if err := c.Check(); err != nil {
		t.Fatal(err)
	}
	if uint64(received)+c.UDP.RcvbufErrors > c.FramesIn || c.UDP.InDatagrams+c.UDP.RcvbufErrors != c.FramesIn {
		t.Errorf("frames %d: delivered %d + dropped %d; received %d", c.FramesIn, c.UDP.InDatagrams, c.UDP.RcvbufErrors, received)
	}
}

// repeatUntil calls f over and over in a goroutine of wg until stop is
// closed or f returns false (having reported why).
func repeatUntil(wg *sync.WaitGroup, stop <-chan struct{}, f func() bool) {
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			if !f() {
				return
			}
		}
	})
}

// TestPortReplyAndSend exercises the port-side TX: Reply goes back to the
// datagram's MAC and VLAN with no neighbour lookup; Send resolves the
// next hop from the neighbour table.
func TestPortReplyAndSend(t *testing.T) {
	r := newRig(t, &Config{VLAN: 7})
	tx := r.e.tx.(*fakeTX)
	p, _ := r.e.Bind(ap(netip.Addr{}, 5000))
	vlan7 := ring.Meta{Status: tpStatusVLANValid, VLANTCI: 7}
	r.one(udpFrame(t, ap(peer4, 40001), ap(owned4, 5000), []byte("q")), vlan7)
	ds := make([]Datagram, 1)
	if _, err := p.Recv(t.Context(), ds); err != nil {
		t.Fatal(err)
	}
	d := ds[0]
	d.Release() // Reply needs only the addresses
	if err := p.Reply(&d, []byte("answer")); err != nil {
		t.Fatal(err)
	}
	out := tx.take()
	if len(out) != 1 {
		t.Fatalf("%d frames", len(out))
	}
	pk := checkUDPFrame(t, out[0])
	if pk.NumVLANs != 1 || pk.VLANs[0].ID() != 7 {
		t.Errorf("reply VLANs %v", pk.VLANs[:pk.NumVLANs])
	}
	if pk.Src(out[0]) != ap(owned4, 5000) || pk.Dst(out[0]) != ap(peer4, 40001) || !bytes.Equal(pk.Payload(out[0]), []byte("answer")) {
		t.Errorf("reply %v -> %v %q", pk.Src(out[0]), pk.Dst(out[0]), pk.Payload(out[0]))
	}

	// Send to a neighbour learned from its ARP request, on the VLAN
	// served.
	r.one(arpRequest(t, peer4, owned4), ring.Meta{Type: ring.PacketBroadcast, Status: vlan7.Status, VLANTCI: vlan7.VLANTCI})
	r.tx.take()
	if err := p.Send(ap(peer4, 6000), []byte("hello")); err != nil {
		t.Fatal(err)
	}
	out = tx.take()
	if len(out) != 1 {
		t.Fatalf("%d frames", len(out))
	}
	pk = checkUDPFrame(t, out[0])
	if eth := out[0][:6]; !bytes.Equal(eth, macPeer[:]) {
		t.Errorf("sent to MAC %x", eth)
	}
	if pk.NumVLANs != 1 || pk.VLANs[0].ID() != 7 {
		t.Errorf("sent with VLANs %v, want Config.VLAN's", pk.VLANs[:pk.NumVLANs])
	}
	if pk.Src(out[0]) != ap(owned4, 5000) {
		t.Errorf("source %v", pk.Src(out[0]))
	}

	// Broadcast needs no resolution; off-link needs a gateway.
	if err := p.Send(ap(bcast4, 6000), []byte("all")); err != nil {
		t.Fatal(err)
	}
	if out = tx.take(); len(out) != 1 || !bytes.Equal(out[0][:6], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}) {
		t.Fatalf("broadcast frames %x", out)
	}
	if err := p.Send(ap(netip.MustParseAddr("203.0.113.1"), 6000), []byte("x")); !errors.Is(err, syscall.ENETUNREACH) {
		t.Errorf("off-link send without gateway: %v", err)
	}
	if err := p.Send(ap(peer4, 6000), make([]byte, frame.MaxUDPPayloadIPv4+1)); !errors.Is(err, syscall.EMSGSIZE) {
		t.Errorf("oversized send: %v", err)
	}
	c := r.e.Counters()
	if c.UDP.OutDatagrams != 3 {
		t.Errorf("OutDatagrams %d, want 3", c.UDP.OutDatagrams)
	}
	if pi := p.Info(); pi.OutDatagrams != 3 || pi.InDatagrams != 1 {
		t.Errorf("port info %+v", pi)
	}
}

// TestSendResolves: Send to an unknown neighbour solicits it (ARP for
// IPv4, NDP for IPv6), waits for the answer, and then sends; with no
// answer it fails with EHOSTUNREACH.
func TestSendResolves(t *testing.T) {
	r := newRig(t, &Config{ResolveWait: 300 * time.Millisecond})
	tx := r.e.tx.(*fakeTX)
	p, _ := r.e.Bind(ap(netip.Addr{}, 5000))

	for _, tc := range []struct {
		peer    netip.Addr
		answer  func() []byte
		isProbe func([]byte) bool
	}{
		{peer4, func() []byte { return arpReply(t, peer4, macPeer, owned4) }, func(f []byte) bool { return f[12] == 0x08 && f[13] == 0x06 }},
		{peer6, func() []byte { return neighborAdvert(t, peer6, owned6) }, func(f []byte) bool { return f[12] == 0x86 && f[13] == 0xdd && f[14+40] == 135 }},
	} {
		errc := make(chan error, 1)
		go func() { errc <- p.Send(ap(tc.peer, 6000), []byte("hi")) }()
		// Wait for the solicitation, then answer it.
		deadline := time.Now().Add(2 * time.Second)
		for {
			r.e.txMu.Lock()
			n := len(tx.frames)
			r.e.txMu.Unlock()
			if n > 0 || time.Now().After(deadline) {
				break
			}
			time.Sleep(time.Millisecond)
		}
		r.e.txMu.Lock()
		probes := tx.take()
		r.e.txMu.Unlock()
		if len(probes) == 0 || !tc.isProbe(probes[0]) {
			t.Fatalf("%v: no solicitation sent (%d frames)", tc.peer, len(probes))
		}
		r.one(tc.answer(), ring.Meta{})
		if err := <-errc; err != nil {
			t.Fatalf("Send to %v: %v", tc.peer, err)
		}
		r.e.txMu.Lock()
		out := tx.take()
		r.e.txMu.Unlock()
		if len(out) != 1 || !bytes.Equal(out[0][:6], macPeer[:]) {
			t.Fatalf("%v: sent %d frames", tc.peer, len(out))
		}
	}
	if err := p.Send(ap(netip.MustParseAddr("198.18.0.77"), 6000), []byte("x")); !errors.Is(err, syscall.EHOSTUNREACH) {
		t.Errorf("send to a silent neighbour: %v, want EHOSTUNREACH", err)
	}
	if c := r.e.Counters(); c.NeighborsLearned != 2 {
		t.Errorf("NeighborsLearned %d, want 2", c.NeighborsLearned)
	}
}

func arpReply(tb testing.TB, sender netip.Addr, mac [6]byte, target netip.Addr) []byte {
	tb.Helper()
	buf := make([]byte, 64)
	n, err := frame.BuildARP(buf, &frame.ARPSpec{Op: frame.ARPReply, SenderMAC: mac, SenderIP: sender, TargetMAC: macEngine, TargetIP: target})
	if err != nil {
		tb.Fatal(err)
	}
	return buf[:n]
}

func neighborAdvert(tb testing.TB, src, dst netip.Addr) []byte {
	tb.Helper()
	buf := make([]byte, 128)
	n, err := frame.BuildNeighborAdvertisement(buf, &frame.IPSpec{SrcMAC: macPeer, DstMAC: macEngine, Src: src, Dst: dst},
		src, frame.NDPFlagSolicited|frame.NDPFlagOverride, macPeer)
	if err != nil {
		tb.Fatal(err)
	}
	return buf[:n]
}

// TestSendBatch: replies and sends in one batch leave with one flush.
func TestSendBatch(t *testing.T) {
	r := newRig(t, nil)
	tx := r.e.tx.(*fakeTX)
	p, _ := r.e.Bind(ap(netip.Addr{}, 5000))
	r.one(arpRequest(t, peer4, owned4), ring.Meta{}) // learn peer4
	b := new(fakeBatch)
	for i := range 8 {
		b.add(udpFrame(t, ap(peer6, uint16(40000+i)), ap(owned6, 5000), []byte{'a' + byte(i)}), ring.Meta{})
	}
	r.batch(b)
	ds := make([]Datagram, 8)
	n, err := p.Recv(t.Context(), ds)
	if err != nil || n != 8 {
		t.Fatalf("Recv %d, %v", n, err)
	}
	ms := make([]Message, 0, n+1)
	for i := range ds[:n] {
		ms = append(ms, Message{InReplyTo: &ds[i], Payload: ds[i].Payload})
	}
	ms = append(ms, Message{To: ap(peer4, 7000), Payload: []byte("also")})
	flushes := tx.flushes
	sent, err := p.SendBatch(ms)
	if err != nil || sent != n+1 {
		t.Fatalf("SendBatch = %d, %v", sent, err)
	}
	if tx.flushes != flushes+1 {
		t.Errorf("%d flushes for one batch", tx.flushes-flushes)
	}
	out := tx.take()
	for i, f := range out[:n] {
		pk := checkUDPFrame(t, f)
		if pk.Dst(f) != ds[i].Src || string(pk.Payload(f)) != string(ds[i].Payload) {
			t.Errorf("reply %d to %v: %q", i, pk.Dst(f), pk.Payload(f))
		}
	}
	p.Release(ds[:n])
	// A bad message stops the batch and says how far it got.
	ms = []Message{{To: ap(peer4, 7000), Payload: []byte("ok")}, {To: ap(peer4, 0), Payload: []byte("port 0")}}
	if sent, err := p.SendBatch(ms); sent != 1 || !errors.Is(err, syscall.EINVAL) {
		t.Errorf("SendBatch with a bad message = %d, %v", sent, err)
	}
}

// TestRecvCopies: by default a queued datagram is a copy in the port's
// buffers, so the ring batch is free at the end of the batch and the
// payload outlives the frame.
func TestRecvCopies(t *testing.T) {
	r := newRig(t, nil)
	p, _ := r.e.Bind(ap(netip.Addr{}, 5000))
	f := udpFrame(t, ap(peer4, 40001), ap(owned4, 5000), []byte("copied"))
	br := &batchRef{free: r.w.free}
	br.b = new(fakeBatch).add(f, ring.Meta{})
	r.w.handleBatch(br)
	if br.queued != 0 {
		t.Fatalf("a copied datagram holds the ring batch (%d)", br.queued)
	}
	clear(f) // the ring reuses the slot
	ds := make([]Datagram, 1)
	if n, err := p.Recv(t.Context(), ds); err != nil || n != 1 {
		t.Fatalf("Recv = %d, %v", n, err)
	}
	if string(ds[0].Payload) != "copied" || cap(ds[0].Payload) != len(ds[0].Payload) {
		t.Errorf("payload %q (cap %d)", ds[0].Payload, cap(ds[0].Payload))
	}
	p.Release(ds)
	if got := len(p.bufs); got != int(p.nbufs.Load()) {
		t.Errorf("%d of %d buffers free after the release", got, p.nbufs.Load())
	}
}

// TestSlowConsumerIsolated: a port nobody reads fills its queue and then
// drops its own datagrams, while the ring batches never wait for it and
// another port keeps receiving.
func TestSlowConsumerIsolated(t *testing.T) {
	r := newRig(t, &Config{QueueDepth: 16})
	slow, _ := r.e.Bind(ap(netip.Addr{}, 5000))
	fast, _ := r.e.Bind(ap(netip.Addr{}, 5001))
	b := new(fakeBatch)
	for i := range 8 {
		b.add(udpFrame(t, ap(peer4, uint16(1000+i)), ap(owned4, 5000), []byte("s")), ring.Meta{})
		b.add(udpFrame(t, ap(peer4, uint16(1000+i)), ap(owned4, 5001), []byte("f")), ring.Meta{})
	}
	ds := make([]Datagram, 16)
	for range 20 {
		br := &batchRef{free: r.w.free}
		br.b = b
		r.w.handleBatch(br)
		if br.queued != 0 {
			t.Fatal("a batch is held by queued datagrams")
		}
		if n, err := fast.Recv(t.Context(), ds); err != nil || n != 8 {
			t.Fatalf("fast port: %d, %v", n, err)
		}
	}
	fast.Release(ds)
	si, fi := slow.Info(), fast.Info()
	if si.InDatagrams != 16 || si.Drops != 20*8-16 || fi.Drops != 0 || fi.InDatagrams != 160 {
		t.Errorf("slow %+v, fast %+v", si, fi)
	}
}
