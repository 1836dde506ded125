package ring_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pktengine/pktengine/internal/lab"
	"github.com/pktengine/pktengine/internal/labtest"
	"github.com/pktengine/pktengine/ring"
	"golang.org/x/sys/unix"
)

// benchFrameLen is the size of the benchmark frames, Ethernet header to
// the end of the UDP payload (the minimum frame, 60 bytes, plus 4).
const benchFrameLen = 64

// otherHostMAC is a destination no lab host has: the receiving kernel
// marks the frames PACKET_OTHERHOST and drops them before IP, so the
// figures measure the rings and not B's IP stack. Packet sockets still
// see them.
var otherHostMAC = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x99}

// benchFrame is a 64-byte UDP frame from a to b's address but not to b's
// MAC. The first 8 payload bytes are free for a sequence number or time.
func benchFrame(a, b *lab.Host) []byte {
	f := udpFrameAB(a, b, 40000, testPort, make([]byte, benchFrameLen-14-20-8)).build()
	copy(f, otherHostMAC)
	return f
}

// benchLab makes a lab for a benchmark and returns its hosts and a
// benchFrame from A to B.
func benchLab(b *testing.B) (a, bh *lab.Host, frame []byte) {
	l := labtest.New(b, nil)
	a, bh = l.A(), l.B()
	return a, bh, benchFrame(a, bh)
}

// rxCase is a named receive ring configuration.
type rxCase struct {
	name string
	cfg  ring.RXConfig
}

// threadCPU returns the user and system time of the calling thread, which
// the caller keeps locked to its goroutine.
func threadCPU(b *testing.B) time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_THREAD, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// blast sends frame from h as fast as one goroutine can (TX ring, qdisc
// bypass, flush every 64) until stop is closed.
func blast(b *testing.B, h *lab.Host, frame []byte, stop <-chan struct{}) (done func() uint64) {
	tx := hostTX(b, h, &ring.TXConfig{Method: ring.TXRing, QdiscBypass: true})
	var wg sync.WaitGroup
	var sent uint64
	wg.Go(func() {
		ctx := context.Background()
		for {
			select {
			case <-stop:
				return
			default:
			}
			for range 64 {
				buf, err := tx.Next(ctx)
				if err != nil {
					b.Error(err)
					return
				}
				tx.Commit(copy(buf, frame))
			}
			if err := tx.Flush(); err != nil {
				b.Error(err)
				return
			}
			sent += 64
		}
	})
	return func() uint64 { wg.Wait(); return sent }
}

// BenchmarkRX measures how many frames per second a reader takes out of a
// ring while the peer sends as fast as it can. On a 2-core machine the
// sender's core also runs the veth delivery into the ring, so this is the
// rate at which the reader keeps up with that, and drops show when it does
// not.
func BenchmarkRX(b *testing.B) {
	a, bh, frame := benchLab(b)
	for _, c := range []rxCase{
		{"V2", ring.RXConfig{Version: ring.V2}},
		{"V2-busypoll", ring.RXConfig{Version: ring.V2, BusyPoll: 1 << 16}},
		{"V3", ring.RXConfig{Version: ring.V3}},
	} {
		b.Run(c.name, func(b *testing.B) {
			rx := hostRX(b, bh, &c.cfg)
			stop := make(chan struct{})
			done := blast(b, a, frame, stop)
			// Let the sender run before timing.
			ctx := context.Background()
			var bt ring.Batch
			for n := 0; n < 1000; n += bt.Len() {
				if err := rx.ReadInto(ctx, &bt); err != nil {
					b.Fatal(err)
				}
			}
			st0, _ := rx.Stats()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			b.SetBytes(benchFrameLen)
			b.ReportAllocs()
			b.ResetTimer()
			start, cpu0 := time.Now(), threadCPU(b)
			bytes := 0
			for n := 0; n < b.N; {
				if err := rx.ReadInto(ctx, &bt); err != nil {
					b.Fatal(err)
				}
				for i := range bt.Len() {
					bytes += len(bt.Data(i))
				}
				n += bt.Len()
			}
			elapsed, cpu := time.Since(start), threadCPU(b)-cpu0
			b.StopTimer()
			bt.Release()
			close(stop)
			done()
			st, _ := rx.Stats()
			if bytes == 0 {
				b.Fatal("no data")
			}
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "frames/s")
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/frame")
			if p := st.Packets - st0.Packets; p > 0 {
				b.ReportMetric(100*float64(st.Drops-st0.Drops)/float64(p), "drop%")
			}
		})
	}
}

// BenchmarkLatency measures one-way latency under light load: A stamps a
// frame with the time and sends it, B's reader notes when the frame
// reaches user space; the next frame goes after that. One op is one frame.
func BenchmarkLatency(b *testing.B) {
	a, bh, frame := benchLab(b)
	for _, c := range []rxCase{
		{"V2", ring.RXConfig{Version: ring.V2}},
		{"V2-busypoll", ring.RXConfig{Version: ring.V2, BusyPoll: 1 << 20}},
		{"V3-1ms", ring.RXConfig{Version: ring.V3, RetireTimeout: time.Millisecond}},
		{"V3-4ms", ring.RXConfig{Version: ring.V3, RetireTimeout: 4 * time.Millisecond}},
		{"V3-64ms", ring.RXConfig{Version: ring.V3, RetireTimeout: 64 * time.Millisecond}},
	} {
		b.Run(c.name, func(b *testing.B) {
			cfg := c.cfg
			cfg.Filter = udpDstPortFilter(b, testPort)
			rx := hostRX(b, bh, &cfg)
			tx := hostTX(b, a, &ring.TXConfig{QdiscBypass: true})
			ctx := context.Background()
			lat := make([]time.Duration, 0, b.N)
			var bt ring.Batch
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				buf, err := tx.Next(ctx)
				if err != nil {
					b.Fatal(err)
				}
				n := copy(buf, frame)
				binary.BigEndian.PutUint64(buf[14+20+8:], uint64(time.Now().UnixNano()))
				buf[n-1] = byte(i)
				tx.Commit(n)
				if err := tx.Flush(); err != nil {
					b.Fatal(err)
				}
			wait:
				for {
					if err := rx.ReadInto(ctx, &bt); err != nil {
						b.Fatal(err)
					}
					now := time.Now().UnixNano()
					for j := range bt.Len() {
						d := bt.Data(j)
						if len(d) == benchFrameLen && d[len(d)-1] == byte(i) {
							lat = append(lat, time.Duration(now-int64(binary.BigEndian.Uint64(d[14+20+8:]))))
							break wait
						}
					}
				}
			}
			b.StopTimer()
			bt.Release()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
		})
	}
}

// BenchmarkTransmit sends frames from A as fast as one goroutine can,
// flushing every 64, with each Transmitter, for minimum-size (64-byte)
// and full-MTU (1514-byte) frames.
func BenchmarkTransmit(b *testing.B) {
	l := labtest.New(b, nil)
	a, bh := l.A(), l.B()
	for _, size := range []int{benchFrameLen, 1514} {
		frame := udpFrameAB(a, bh, 40000, testPort, make([]byte, size-14-20-8)).build()
		copy(frame, otherHostMAC)
		for _, cfg := range []ring.TXConfig{
			{Method: ring.TXRing},
			{Method: ring.TXRing, QdiscBypass: true},
			{Method: ring.TXSendmmsg},
			{Method: ring.TXSendmmsg, QdiscBypass: true},
		} {
			b.Run(fmt.Sprintf("%d/%v/bypass=%v", size, cfg.Method, cfg.QdiscBypass), func(b *testing.B) {
				tx := hostTX(b, a, &cfg)
				ctx := context.Background()
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
				b.SetBytes(int64(size))
				b.ReportAllocs()
				b.ResetTimer()
				start, cpu0 := time.Now(), threadCPU(b)
				for i := range b.N {
					buf, err := tx.Next(ctx)
					if err != nil {
						b.Fatal(err)
					}
					tx.Commit(copy(buf, frame))
					if i%64 == 63 {
						if err := tx.Flush(); err != nil {
							b.Fatal(err)
						}
					}
				}
				if err := tx.Flush(); err != nil {
					b.Fatal(err)
				}
				elapsed, cpu := time.Since(start), threadCPU(b)-cpu0
				b.StopTimer()
				if st := tx.Stats(); st.WrongFormat != 0 {
					b.Fatalf("stats %+v", st)
				}
				b.ReportMetric(float64(b.N)/elapsed.Seconds(), "frames/s")
				b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/frame")
			})
		}
	}
}
