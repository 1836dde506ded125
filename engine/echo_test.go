package engine

import (
	"bytes"
	"net/netip"
	"runtime"
	"syscall"
	"testing"

	"github.com/pktengine/pktengine/frame"
	"github.com/pktengine/pktengine/proto"
	"github.com/pktengine/pktengine/ring"
)

// TestEchoReply checks the inline echo answer byte by byte: addresses,
// ports and MACs swapped, payload unchanged, TTL set, checksums valid by
// an independent sum, a stripped VLAN tag put back, a partial checksum
// completed.
func TestEchoReply(t *testing.T) {
	r := newRig(t, &Config{TTL: 33})
	if _, err := r.e.HandleService(ap(netip.Addr{}, 7), Echo); err != nil {
		t.Fatal(err)
	}
	payload := []byte("TEST")
	for _, tc := range []struct {
		name     string
		src, dst netip.AddrPort
		m        ring.Meta
		partial  bool
	}{
		{"ipv4", ap(peer4, 32787), ap(owned4, 7), ring.Meta{}, false},
		{"ipv6", ap(peer6, 32787), ap(owned6, 7), ring.Meta{}, false},
		{"ipv4 shared", ap(peer4, 40000), ap(shared4, 7), ring.Meta{}, false},
		{"ipv4 vlan", ap(peer4, 40000), ap(owned4, 7), ring.Meta{Status: tpStatusVLANValid, VLANTCI: frame.MakeTCI(3, false, 0)}, false},
		{"ipv4 partial", ap(peer4, 40000), ap(owned4, 7), ring.Meta{Status: tpStatusCsumNotReady}, true},
		{"ipv6 partial vlan", ap(peer6, 40000), ap(owned6, 7), ring.Meta{Status: tpStatusCsumNotReady | tpStatusVLANValid, VLANTCI: frame.MakeTCI(6, true, 0)}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := udpFrame(t, tc.src, tc.dst, payload)
			if tc.partial {
				// What a local socket on a veth sends: only the
				// pseudo-header sum in the checksum field.
				var p frame.Packet
				p.Decode(f)
				u := p.UDP(f)
				var ps uint16
				if p.IPVersion == 4 {
					ps = p.IPv4(f).PseudoHeaderSum(proto.IPProtoUDP, u.Length())
				} else {
					ps = p.IPv6(f).PseudoHeaderSum(proto.IPProtoUDP, uint32(u.Length()))
				}
				u.SetChecksum(ps)
			}
			orig := clone(f)
			if o := r.one(f, tc.m); o != OutcomeDelivered {
				t.Fatalf("outcome %v", o)
			}
			if !bytes.Equal(f, orig) {
				t.Fatal("the received frame was modified")
			}
			out := r.tx.take()
			if len(out) != 1 {
				t.Fatalf("%d frames sent, want 1", len(out))
			}
			reply := out[0]
			if tc.m.Status&tpStatusVLANValid != 0 {
				tag := frame.Ethernet(reply).VLAN()
				if frame.Ethernet(reply).Type() != proto.EtherTypeVLAN || tag.TCI() != tc.m.VLANTCI {
					t.Fatalf("VLAN tag not restored: type %#x tci %d", frame.Ethernet(reply).Type(), tag.TCI())
				}
			}
			p := checkUDPFrame(t, reply)
			eth := frame.Ethernet(reply)
			if eth.Source() != macEngine || eth.Destination() != macPeer {
				t.Errorf("MACs %v -> %v", eth.Source(), eth.Destination())
			}
			if p.Src(reply) != tc.dst || p.Dst(reply) != tc.src {
				t.Errorf("reply %v -> %v, want %v -> %v", p.Src(reply), p.Dst(reply), tc.dst, tc.src)
			}
			if !bytes.Equal(p.Payload(reply), payload) {
				t.Errorf("payload %q", p.Payload(reply))
			}
			ttl := uint8(0)
			if p.IPVersion == 4 {
				ttl = p.IPv4(reply).TTL()
			} else {
				ttl = p.IPv6(reply).HopLimit()
			}
			if ttl != 33 {
				t.Errorf("TTL %d, want 33", ttl)
			}
		})
	}
}

// TestEchoGroupReply: an echo request sent to a broadcast address is
// answered (when the guard allows) from a unicast address.
func TestEchoGroupReply(t *testing.T) {
	r := newRig(t, &Config{Guard: Guard{AnswerGroup: true}})
	if _, err := r.e.HandleService(ap(netip.IPv4Unspecified(), 7), Echo); err != nil {
		t.Fatal(err)
	}
	r.one(udpFrame(t, ap(peer4, 40000), ap(bcast4, 7), []byte("hi")), ring.Meta{Type: ring.PacketBroadcast})
	out := r.tx.take()
	if len(out) != 1 {
		t.Fatalf("%d replies", len(out))
	}
	p := checkUDPFrame(t, out[0])
	if src := p.Src(out[0]); src != ap(owned4, 7) {
		t.Errorf("reply from %v, want %v", src, ap(owned4, 7))
	}
}

// TestEchoAllocs holds the inline echo path, from a batch of frames to
// committed replies, to zero allocations per frame.
func TestEchoAllocs(t *testing.T) {
	r := newRig(t, nil)
	r.tx.discard = true
	if _, err := r.e.HandleService(ap(netip.Addr{}, 7), Echo); err != nil {
		t.Fatal(err)
	}
	b := new(fakeBatch)
	for i := range 32 {
		m := ring.Meta{Timestamp: int64(i) + 1}
		if i%2 == 1 {
			m.Status = tpStatusCsumNotReady | tpStatusVLANValid
			m.VLANTCI = frame.MakeTCI(5, false, 0) // a priority tag: the base interface's
		}
		b.add(udpFrame(t, ap(peer4, uint16(40000+i)), ap(owned4, 7), []byte("TEST")), m)
		b.add(udpFrame(t, ap(peer6, uint16(40000+i)), ap(owned6, 7), []byte("TEST")), m)
	}
	br := &batchRef{free: r.w.free}
	br.b = b
	allocs := testing.AllocsPerRun(100, func() { r.w.handleBatch(br) })
	if allocs != 0 {
		t.Errorf("echo path: %v allocations per batch, want 0", allocs)
	}
	c := r.e.Counters()
	if c.UDP.OutDatagrams != c.UDP.InDatagrams || c.UDP.OutDatagrams == 0 {
		t.Errorf("%d datagrams in, %d out", c.UDP.InDatagrams, c.UDP.OutDatagrams)
	}
}

// TestQueueAllocs holds the queued path (enqueue, Recv, release), copied
// or zero-copy, and ICMP, ARP and NDP answers to zero allocations.
func TestQueueAllocs(t *testing.T) {
	for _, zc := range []bool{false, true} {
		testQueueAllocs(t, zc)
	}
}

func testQueueAllocs(t *testing.T, zeroCopy bool) {
	r := newRig(t, &Config{ZeroCopy: zeroCopy})
	r.tx.discard = true
	port, err := r.e.Bind(ap(netip.Addr{}, 5000))
	if err != nil {
		t.Fatal(err)
	}
	b := new(fakeBatch)
	for i := range 16 {
		b.add(udpFrame(t, ap(peer4, uint16(40000+i)), ap(owned4, 5000), []byte("TEST")), ring.Meta{})
	}
	b.add(udpFrame(t, ap(peer4, 40000), ap(owned4, 5999), []byte("x")), ring.Meta{})
	b.add(arpRequest(t, peer4, owned4), ring.Meta{Type: ring.PacketBroadcast})
	b.add(neighborSolicitation(t, peer6, owned6), ring.Meta{Type: ring.PacketMulticast})
	ds := make([]Datagram, 32)
	ctx := t.Context()
	var br *batchRef
	allocs := testing.AllocsPerRun(100, func() {
		if br == nil {
			select {
			case br = <-r.w.free:
			default:
				br = &batchRef{free: r.w.free}
			}
		}
		br.b = b
		r.w.handleBatch(br)
		if br.queued != 0 {
			br = nil // held by the datagrams until they are released
		}
		n, err := port.Recv(ctx, ds)
		if err != nil || n != 16 {
			t.Fatalf("Recv: %d, %v", n, err)
		}
		port.Release(ds[:n])
	})
	// The free list needs a first batchRef, and then recycles it.
	if allocs > 0.02 {
		t.Errorf("queued path (ZeroCopy %v): %v allocations per batch, want 0", zeroCopy, allocs)
	}
}

func BenchmarkEchoBatch(b *testing.B) {
	for _, tc := range []struct {
		name    string
		partial bool
	}{{"full-checksum", false}, {"partial-checksum", true}} {
		b.Run(tc.name, func(b *testing.B) {
			r := newRig(b, nil)
			r.tx.discard = true
			if _, err := r.e.HandleService(ap(netip.Addr{}, 7), Echo); err != nil {
				b.Fatal(err)
			}
			const n = 64
			fb := new(fakeBatch)
			for i := range n {
				m := ring.Meta{Timestamp: 1}
				if tc.partial {
					m.Status = tpStatusCsumNotReady
				}
				fb.add(udpFrame(b, ap(peer4, uint16(40000+i)), ap(owned4, 7), []byte("TEST")), m)
			}
			br := &batchRef{free: r.w.free}
			b.ReportAllocs()
			b.SetBytes(int64(n * len(fb.frames[0])))
			// The thread's CPU time is steadier than the wall clock
			// on a shared machine.
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			cpu := threadCPU()
			b.ResetTimer()
			for b.Loop() {
				br.b = fb
				r.w.handleBatch(br)
			}
			cpu = threadCPU() - cpu
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/frame")
			if cpu > 0 {
				b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N*n), "cpu-ns/frame")
			}
		})
	}
}

// TestTransmitRefusedCountedPerFrame: when the kernel refuses a batch's
// answers (ENOBUFS, a link going down), each frame is counted once in
// TXDropped, not one error per batch, and the next batch goes out.
func TestTransmitRefusedCountedPerFrame(t *testing.T) {
	r := newRig(t, nil)
	if _, err := r.e.HandleService(ap(netip.Addr{}, 7), Echo); err != nil {
		t.Fatal(err)
	}
	b := new(fakeBatch)
	for i := range 5 {
		b.add(udpFrame(t, ap(peer4, uint16(40000+i)), ap(owned4, 7), []byte("TEST")), ring.Meta{})
	}
	r.tx.refuse = syscall.ENOBUFS
	r.batch(b)
	c := r.e.Counters()
	if c.TXDropped != 5 || c.TXErrors != 0 || c.TXFrames != 5 {
		t.Fatalf("refused batch: TXDropped %d, TXErrors %d, TXFrames %d; want 5, 0, 5", c.TXDropped, c.TXErrors, c.TXFrames)
	}
	r.tx.refuse = nil
	r.batch(b)
	if got := len(r.tx.take()); got != 5 {
		t.Fatalf("the next batch sent %d answers, want 5", got)
	}
	if c := r.e.Counters(); c.TXDropped != 5 || c.TXFrames != 10 {
		t.Errorf("after recovery: TXDropped %d, TXFrames %d; want 5, 10", c.TXDropped, c.TXFrames)
	}
}
