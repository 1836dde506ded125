//go:build linux

package xdp

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pktengine/pktengine/frame"
	"github.com/pktengine/pktengine/internal/lab"
	"github.com/pktengine/pktengine/internal/labtest"
	"github.com/pktengine/pktengine/ring"
)

// The benchmarks put the generator on CPU 0 and the responder on CPU 1.
// The generator is a LiveSender in B: the fastest sender there is, so the
// responder is the bottleneck. Its frames go from an address B does not
// have (so B's kernel drops the replies early) to a MAC A does not have
// (so A's kernel drops the requests before IP, while AF_XDP and packet
// sockets still see them).
const benchFrameLen = 64

// liveBurst is how many frames one Send asks for: the kernel sets up its
// page pool once per call, so a call must be long to be cheap per frame.
const liveBurst = 1 << 16

var (
	otherHostMAC = frame.MAC{0x02, 0, 0, 0, 0, 0x99}
	unconfigured = netip.MustParseAddr("198.18.0.200")
)

func pin(tb testing.TB, cpu int) {
	runtime.LockOSThread()
	var set unix.CPUSet
	set.Set(cpu % runtime.NumCPU())
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		tb.Fatal(err)
	}
}

func threadCPU(tb testing.TB) time.Duration {
	u, s := threadTimes(tb)
	return u + s
}

// threadTimes returns the user and system time of the calling thread.
func threadTimes(tb testing.TB) (user, sys time.Duration) {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_THREAD, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano()), time.Duration(ru.Stime.Nano())
}

// benchTemplate is a 64-byte UDP frame from B (unconfigured address) to A.
func benchTemplate(tb testing.TB, a, b *lab.Host, dstMAC frame.MAC) []byte {
	s := &frame.UDPSpec{SrcMAC: frame.MAC(b.MAC), DstMAC: dstMAC,
		Src: netip.AddrPortFrom(unconfigured, 40000), Dst: netip.AddrPortFrom(a.IPv4.Addr(), 7),
		Payload: make([]byte, benchFrameLen-14-20-8)}
	buf := make([]byte, benchFrameLen)
	n, err := frame.BuildUDP(buf, s)
	if err != nil {
		tb.Fatal(err)
	}
	return buf[:n]
}

// generate runs a LiveSender in host h, pinned to CPU 0, until stop is
// closed, and returns how many frames it sent.
func generate(tb testing.TB, h *lab.Host, template []byte, stop <-chan struct{}) (done func() uint64) {
	s, err := lab.OnInterface(h, func(ifi *net.Interface) (*LiveSender, error) {
		return NewLiveSender(ifi, template, &LiveConfig{Flows: 64})
	})
	if err != nil {
		tb.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		h.Do(func() error {
			pin(tb, 0) // Do runs this on a thread of its own, in h
			for {
				select {
				case <-stop:
					return nil
				default:
				}
				if err := s.Send(liveBurst / 16); err != nil {
					tb.Error(err)
					return nil
				}
			}
		})
	})
	return func() uint64 {
		wg.Wait()
		n, _ := s.Sent()
		s.Close()
		return n
	}
}

// BenchmarkLabEcho measures the replies per second of a UDP echo and its
// own CPU time per reply: AF_XDP answering in place, and TPACKET_V3 RX
// with a TX ring (the engine's backend today) copying each reply into a
// TX slot. One op is one reply.
//
//	go test -run '^$' -bench LabEcho -benchtime 2000000x ./xdp/
func BenchmarkLabEcho(b *testing.B) {
	for _, batch := range []int{64, 256} {
		b.Run(fmt.Sprintf("xdp-batch%d", batch), func(b *testing.B) { benchXDPEcho(b, batch) })
	}
	b.Run("tpacket", func(b *testing.B) {
		l := labtest.New(b, nil)
		a := l.A()
		detachAll(b, a)
		// A program with no addresses passes everything; it is there
		// because redirected frames reach only a veth with XDP.
		if _, err := attachIn(b, a, nil); err != nil {
			b.Fatal(err)
		}
		var rx *ring.RX
		var tx ring.Transmitter
		if err := inIface(a, func(ifi *net.Interface) (err error) {
			if rx, err = ring.NewRX(ifi, &ring.RXConfig{Version: ring.V3, IgnoreOutgoing: true}); err != nil {
				return err
			}
			tx, err = ring.NewTransmitter(ifi, &ring.TXConfig{Method: ring.TXRing, QdiscBypass: true})
			return err
		}); err != nil {
			b.Fatal(err)
		}
		defer rx.Close()
		defer tx.Close()
		benchEcho(b, l, func(ctx context.Context, count func(int)) error {
			var bt ring.Batch
			var p frame.Packet
			for ctx.Err() == nil {
				if err := rx.ReadInto(ctx, &bt); err != nil {
					return err
				}
				n := 0
				for i := range bt.Len() {
					data := bt.Data(i)
					if p.Decode(data) != frame.ReasonOK {
						continue
					}
					buf, err := tx.Next(ctx)
					if err != nil {
						return err
					}
					c := copy(buf, data[:p.Len()])
					if m, err := frame.ReplyInPlace(buf[:c], &p, 0); err == nil {
						tx.Commit(m)
						n++
					}
				}
				if err := tx.Flush(); err != nil {
					return err
				}
				count(n)
			}
			return nil
		})
	})
}

func benchXDPEcho(b *testing.B, batch int) {
	x := newXDPLab(b, nil, &Config{BatchSize: batch})
	benchEcho(b, x.l, func(ctx context.Context, count func(int)) error {
		var bt Batch
		var p frame.Packet
		for ctx.Err() == nil {
			if err := x.sock.ReadInto(ctx, &bt); err != nil {
				return err
			}
			n := 0
			for i := range bt.Len() {
				data := bt.Data(i)
				if p.Decode(data) != frame.ReasonOK {
					continue
				}
				if m, err := frame.ReplyInPlace(data, &p, 0); err == nil && bt.Transmit(i, data[:m]) == nil {
					n++
				}
			}
			if err := x.sock.Flush(); err != nil {
				return err
			}
			count(n)
		}
		return nil
	})
	st, _ := x.sock.Stats()
	b.ReportMetric(float64(st.Transmitted)/float64(max(st.Kicks, 1)), "frames/kick")
	b.Logf("%+v", st)
}

// benchEcho runs respond on CPU 1 while B's generator runs on CPU 0 and
// reports, over b.N replies after a warm-up, replies/s, the responder
// thread's own CPU per reply and the generator's offer.
func benchEcho(b *testing.B, l *lab.Lab, respond func(ctx context.Context, count func(int)) error) {
	a, bh := l.A(), l.B()
	stop := make(chan struct{})
	start := time.Now()
	done := generate(b, bh, benchTemplate(b, a, bh, otherHostMAC), stop)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const warm = 10000
	var (
		total, base, n         uint64
		started                bool
		t0                     time.Time
		cpu0, cpu, user0, user time.Duration
		elapsed                time.Duration
	)
	count := func(k int) {
		total += uint64(k)
		switch {
		case !started && total >= warm:
			started, t0, cpu0, base = true, time.Now(), threadCPU(b), total
			user0, _ = threadTimes(b)
		case started && total-base >= uint64(b.N) && n == 0:
			elapsed, cpu, n = time.Since(t0), threadCPU(b)-cpu0, total-base
			user, _ = threadTimes(b)
			user -= user0
			cancel()
		}
	}
	b.SetBytes(benchFrameLen)
	b.ReportAllocs()
	b.ResetTimer()
	errc := make(chan error, 1)
	go func() {
		pin(b, 1)
		errc <- respond(ctx, count)
	}()
	err := <-errc
	b.StopTimer()
	close(stop)
	offered := done()
	if err != nil && ctx.Err() == nil {
		b.Fatal(err)
	}
	if n == 0 {
		b.Fatalf("only %d replies", total)
	}
	b.ReportMetric(float64(n)/elapsed.Seconds(), "replies/s")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(n), "cpu-ns/reply")
	b.ReportMetric(float64(user.Nanoseconds())/float64(n), "user-ns/reply")
	b.ReportMetric(float64(offered)/time.Since(start).Seconds(), "offered/s")
}

// BenchmarkLabLiveSender measures the live-frames sender alone, pinned to
// CPU 0: B sends 64-byte frames to A, whose veth runs a program that passes
// everything to A's stack (which drops them: no socket on port 7, and a
// destination MAC that is not A's, or with dropped set, A's own). One op is
// one frame.
//
//	go test -run '^$' -bench LabLiveSender -benchtime 5000000x ./xdp/
func BenchmarkLabLiveSender(b *testing.B) {
	for _, tc := range []struct {
		name string
		mac  func(a *lab.Host) frame.MAC
	}{
		{"otherhost", func(*lab.Host) frame.MAC { return otherHostMAC }},
		{"stack", func(a *lab.Host) frame.MAC { return frame.MAC(a.MAC) }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			l := labtest.New(b, nil)
			a, bh := l.A(), l.B()
			detachAll(b, a)
			if _, err := attachIn(b, a, nil); err != nil {
				b.Fatal(err)
			}
			tmpl := benchTemplate(b, a, bh, tc.mac(a))
			s := labtest.Open(b, bh, func(ifi *net.Interface) (*LiveSender, error) {
				return NewLiveSender(ifi, tmpl, &LiveConfig{Flows: 64})
			})
			rx0 := rxPackets(b, a)
			errc := make(chan error, 1)
			b.SetBytes(benchFrameLen)
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			go func() {
				errc <- bh.Do(func() error {
					// Do runs this on a thread of its own, in B.
					pin(b, 0)
					cpu0 := threadCPU(b)
					for n := 0; n < b.N; n += liveBurst {
						if err := s.Send(min(liveBurst, b.N-n)); err != nil {
							return err
						}
					}
					b.ReportMetric(float64((threadCPU(b)-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/frame")
					return nil
				})
			}()
			if err := <-errc; err != nil {
				b.Fatal(err)
			}
			elapsed := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "frames/s")
			b.ReportMetric(100*float64(rxPackets(b, a)-rx0)/float64(b.N), "arrived%")
		})
	}
}

// rxPackets returns the received-packets counter of h's lab interface,
// from /proc/thread-self/net/dev in h's namespace.
func rxPackets(tb testing.TB, h *lab.Host) uint64 {
	var n uint64
	if err := h.Do(func() error {
		b, err := os.ReadFile("/proc/thread-self/net/dev")
		if err != nil {
			return err
		}
		for _, line := range strings.Split(string(b), "\n") {
			name, rest, ok := strings.Cut(line, ":")
			if ok && strings.TrimSpace(name) == h.Iface {
				f := strings.Fields(rest)
				n, err = strconv.ParseUint(f[1], 10, 64)
				return err
			}
		}
		return nil
	}); err != nil {
		tb.Fatal(err)
	}
	return n
}
