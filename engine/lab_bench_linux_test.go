//go:build linux

package engine

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pktengine/pktengine/frame"
	"github.com/pktengine/pktengine/internal/labtest"
	"github.com/pktengine/pktengine/ring"
)

// BenchmarkLabEcho measures the echo responder end to end in the lab:
// host B writes 64-byte requests into a TX ring and counts the replies
// with an RX ring, keeping at most `window` requests in flight, so the
// figure is the rate the engine sustains without loss ("flood" variants
// send open loop and show the loss instead). One op is one request.
//
// B sends from an address its kernel does not have, so that B's kernel
// drops the replies before any socket lookup (no ICMP back to A).
//
// cpu-ns/reply is the user+system time of the whole test process (the
// engine, and B's sender and counter, which cost the same in every
// variant) per reply; the differences between variants are the
// engine's. With window 1 ("rtt") ns/op is the round-trip time.
func BenchmarkLabEcho(b *testing.B) {
	for _, tc := range []struct {
		name   string
		v      ring.Version
		port   bool // through Port.Recv and Port.SendBatch instead of inline
		window int
		zc     bool // Config.ZeroCopy
	}{
		{"inline/v3", ring.V3, false, 512, false},
		{"inline/v2", ring.V2, false, 512, false},
		{"port/v3", ring.V3, true, 512, false},
		{"port/v2", ring.V2, true, 512, false},
		{"port-zerocopy/v2", ring.V2, true, 512, true},
		{"inline/v3/flood", ring.V3, false, 1 << 30, false},
		{"inline/v2/flood", ring.V2, false, 1 << 30, false},
		{"inline/v3/rtt", ring.V3, false, 1, false},
		{"inline/v2/rtt", ring.V2, false, 1, false},
	} {
		b.Run(tc.name, func(b *testing.B) {
			benchLabEcho(b, labEcho{v: tc.v, viaPort: tc.port, window: tc.window, zeroCopy: tc.zc, size: 18})
		})
	}
	// The baseline in the same conditions: the kernel's UDP stack with a
	// Go server doing one ReadFrom and one WriteTo per datagram.
	b.Run("kernel/readfrom", func(b *testing.B) { benchLabEcho(b, labEcho{kernel: true, window: 512, size: 18}) })
	b.Run("kernel/readfrom/rtt", func(b *testing.B) { benchLabEcho(b, labEcho{kernel: true, window: 1, size: 18}) })
}

// BenchmarkLabEchoSizes is BenchmarkLabEcho for datagrams of 1,472 bytes
// (the largest in one 1500-byte frame), 8,192 (six fragments) and 65,507
// (the largest, 45 fragments): the engine's inline echo (V2 ring)
// reassembles each request and answers with fragments, the kernel's
// reassembles, hands the datagram to a Go server that writes it back, and
// fragments. On A's own address (engine/) A's kernel reassembles the
// requests too, before the engine's port reservation drops them; on an
// address only the engine has (engine-owned/) it does not. One op is one
// datagram. cpu-ns/reply counts the whole process, B's sender and counter
// included (the same work for both). At most 96 KiB of requests are in
// flight, which the kernel server's socket buffer (212,992 bytes by
// default, counted in the fragments' true sizes) holds: a window beyond
// it would measure the kernel's drops instead of its rate.
func BenchmarkLabEchoSizes(b *testing.B) {
	for _, size := range []int{1472, 8192, frame.MaxUDPPayloadIPv4} {
		window := max(2, 96<<10/size)
		b.Run(fmt.Sprintf("engine/%d", size), func(b *testing.B) { benchLabEcho(b, labEcho{v: ring.V2, window: window, size: size}) })
		b.Run(fmt.Sprintf("engine-owned/%d", size), func(b *testing.B) {
			benchLabEcho(b, labEcho{v: ring.V2, window: window, size: size, owned: true})
		})
		b.Run(fmt.Sprintf("kernel/%d", size), func(b *testing.B) { benchLabEcho(b, labEcho{kernel: true, window: window, size: size}) })
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// labEcho is one BenchmarkLabEcho variant.
type labEcho struct {
	v        ring.Version
	viaPort  bool // through Port.Recv and Port.SendBatch instead of inline
	kernel   bool // the kernel's UDP and a Go server instead of the engine
	window   int  // datagrams in flight at most
	zeroCopy bool
	size     int  // UDP payload bytes (fragmented above 1,472)
	owned    bool // the engine on an address only it has
}

// benchLabEcho measures echo with c's settings.
func benchLabEcho(b *testing.B, c labEcho) {
	v, viaPort, kernel, window, zeroCopy, size := c.v, c.viaPort, c.kernel, c.window, c.zeroCopy, c.size
	l := labtest.New(b, nil)
	a, peer := l.A(), l.B()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var e *Engine
	if kernel {
		// The kernel resolves the reply's destination; B does not
		// answer ARP for an address it lacks, so tell A statically.
		labtest.Run(b, a, "ip", "neigh", "replace", "198.18.0.200", "lladdr", peer.MAC.String(), "dev", a.Iface)
		labtest.EchoUDP(b, a, netip.AddrPortFrom(a.IPv4.Addr(), 7))
	} else {
		cfg := &Config{RXVersion: v, ZeroCopy: zeroCopy}
		if c.owned {
			cfg.Addrs = []netip.Prefix{netip.MustParsePrefix("198.18.0.210/24")}
		}
		e = labtest.Open(b, a, func(ifi *net.Interface) (*Engine, error) { return Open(ifi, cfg) })
	}
	if kernel {
		// nothing to bind
	} else if viaPort {
		p, err := e.Bind(netip.AddrPortFrom(netip.Addr{}, 7))
		if err != nil {
			b.Fatal(err)
		}
		go func() {
			ds := make([]Datagram, 64)
			ms := make([]Message, 64)
			for {
				n, err := p.Recv(ctx, ds)
				if err != nil {
					return
				}
				for i := range ds[:n] {
					ms[i] = Message{InReplyTo: &ds[i], Payload: ds[i].Payload}
				}
				p.SendBatch(ms[:n])
			}
		}()
	} else if _, err := e.HandleService(netip.AddrPortFrom(netip.Addr{}, 7), Echo); err != nil {
		b.Fatal(err)
	}

	tx := labtest.Open(b, peer, func(ifi *net.Interface) (ring.Transmitter, error) {
		return ring.NewTransmitter(ifi, &ring.TXConfig{QdiscBypass: true})
	})
	// V2 for the round trips and the small windows of the datagram
	// sizes: a V3 block would hold replies for its whole retire timeout,
	// and a small window would wait for it.
	rv := ring.V3
	if window == 1 || size != 18 {
		rv = ring.V2
	}
	rx := labtest.Open(b, peer, func(ifi *net.Interface) (*ring.RX, error) {
		return ring.NewRX(ifi, &ring.RXConfig{Version: rv, IgnoreOutgoing: true, RetireTimeout: time.Millisecond})
	})
	src := netip.AddrPortFrom(netip.MustParseAddr("198.18.0.200"), 40000)
	dst := netip.AddrPortFrom(a.IPv4.Addr(), 7)
	if c.owned {
		dst = netip.MustParseAddrPort("198.18.0.210:7")
	}
	// The requests: one frame each, or the fragments of each, with 64
	// identifications in turn.
	var reqs [][][]byte
	for id := range 64 {
		var uf frame.UDPFragmenter
		s := &frame.UDPSpec{SrcMAC: frame.MAC(peer.MAC), DstMAC: frame.MAC(a.MAC), Src: src,
			Dst: dst, Payload: make([]byte, size), ID: uint16(id)}
		if err := uf.Reset(s, 1500, uint32(id)); err != nil {
			b.Fatal(err)
		}
		var fs [][]byte
		for i := range uf.Fragments() {
			f := make([]byte, uf.FrameLen(i))
			uf.Build(f, i)
			fs = append(fs, f)
		}
		reqs = append(reqs, fs)
	}

	var replies atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		var batch ring.Batch
		for {
			if err := rx.ReadInto(context.Background(), &batch); err != nil {
				return
			}
			n := 0
			for i := range batch.Len() {
				f := batch.Data(i)
				// IPv4 UDP from A, source port 7: a reply or its
				// first fragment (offset 0), one per datagram.
				if len(f) >= 42 && bytes.Equal(f[6:12], a.MAC) && f[12] == 0x08 && f[13] == 0 &&
					f[23] == 17 && f[20]&0x1f == 0 && f[21] == 0 && f[34] == 0 && f[35] == 7 {
					n++
				}
			}
			replies.Add(int64(n))
		}
	}()

	if size == 18 {
		b.SetBytes(int64(len(reqs[0][0]))) // the 64-byte frame, as always
	} else {
		b.SetBytes(int64(size))
	}
	b.ResetTimer()
	sent, frames := 0, 0
	start := time.Now()
	cpu0 := cpuTime()
	for sent < b.N {
		for sent < b.N && int64(sent)-replies.Load() < int64(window) {
			for _, f := range reqs[sent%len(reqs)] {
				buf, err := tx.Next(context.Background())
				if err != nil {
					b.Fatal(err)
				}
				tx.Commit(copy(buf, f))
				if frames++; frames%64 == 0 {
					tx.Flush()
				}
			}
			sent++
		}
		tx.Flush()
		for window == 1 && int64(sent) > replies.Load() && time.Since(start) < time.Minute {
			// Ping-pong: spin until the answer is in.
		}
		if int64(sent)-replies.Load() >= int64(window) {
			time.Sleep(20 * time.Microsecond)
		}
		if time.Since(start) > time.Minute {
			b.Fatalf("stalled: %d sent, %d answered", sent, replies.Load())
		}
	}
	deadline := time.Now().Add(2 * time.Second)
	for replies.Load() < int64(b.N) && time.Now().Before(deadline) {
		time.Sleep(100 * time.Microsecond)
	}
	elapsed := time.Since(start)
	cpu := cpuTime() - cpu0
	b.StopTimer()
	got := replies.Load()
	rx.Close()
	<-done
	b.ReportMetric(float64(got)/elapsed.Seconds(), "replies/s")
	b.ReportMetric(float64(int64(b.N)-got)/float64(b.N)*100, "%lost")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(max(got, 1)), "cpu-ns/reply")
	if e != nil {
		c := e.Counters()
		if err := c.Check(); err != nil {
			b.Error(err)
		}
	}
}
