package ring_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pktengine/pktengine/internal/lab"
	"github.com/pktengine/pktengine/internal/labtest"
	"github.com/pktengine/pktengine/ring"
	"golang.org/x/sys/unix"
)

// kernelCount receives datagrams on a kernel UDP socket until n arrived
// and then nothing more came for quiet, and returns how many arrived.
// Each arrival is added to progress, if not nil. It reports errors with
// t.Error, so it may run on its own goroutine.
func kernelCount(t *testing.T, c *net.UDPConn, n int, quiet time.Duration, progress *atomic.Int64) int {
	t.Helper()
	buf := make([]byte, 2048)
	got := 0
	for {
		wait := 5 * time.Second
		if got >= n {
			wait = quiet
		}
		c.SetReadDeadline(time.Now().Add(wait))
		_, err := c.Read(buf)
		if isTimeout(err) {
			return got
		}
		if err != nil {
			t.Error(err)
			return got
		}
		got++
		if progress != nil {
			progress.Add(1)
		}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// TestTransmit sends frames with full checksums from A and counts them on
// a kernel UDP socket in B, which checks the IP and UDP checksums.
func TestTransmit(t *testing.T) {
	for _, cfg := range []ring.TXConfig{
		{Method: ring.TXRing},
		{Method: ring.TXRing, QdiscBypass: true},
		{Method: ring.TXRing, FrameCount: 32}, // wraps the ring many times
		{Method: ring.TXRing, QdiscBypass: true, RawKick: true},
		{Method: ring.TXSendmmsg},
		{Method: ring.TXSendmmsg, QdiscBypass: true, FrameCount: 7},
	} {
		t.Run(fmt.Sprintf("%v/bypass=%v/frames=%d/raw=%v", cfg.Method, cfg.QdiscBypass, cfg.FrameCount, cfg.RawKick), func(t *testing.T) {
			l := labtest.New(t, nil)
			a, b := l.A(), l.B()
			ln := listenUDP(t, b)
			tx := hostTX(t, a, &cfg)
			const n = 500
			// Count while sending, and send no more than 50 ahead of the
			// count: the socket's default receive buffer holds about 250
			// datagrams, and a reader under the race detector is slow.
			counted := make(chan int, 1)
			var progress atomic.Int64
			go func() { counted <- kernelCount(t, ln, n, 50*time.Millisecond, &progress) }()
			waitCount := func(want int) {
				for deadline := time.Now().Add(5 * time.Second); progress.Load() < int64(want) && time.Now().Before(deadline); {
					time.Sleep(100 * time.Microsecond)
				}
			}
			ctx := context.Background()
			for i := range n {
				buf, err := tx.Next(ctx)
				if err != nil {
					t.Fatal(err)
				}
				f := udpFrameAB(a, b, 40000, testPort, seqPayload(i)).build()
				if err := tx.Commit(copy(buf, f)); err != nil {
					t.Fatal(err)
				}
				if i%50 == 49 {
					if err := tx.Flush(); err != nil {
						t.Fatal(err)
					}
					waitCount(i + 1)
				}
			}
			if err := tx.Flush(); err != nil {
				t.Fatal(err)
			}
			if got := <-counted; got != n {
				t.Errorf("B's socket received %d datagrams, want %d; stats %+v", got, n, tx.Stats())
				for _, h := range []*lab.Host{a, b} {
					out, _ := h.Command(context.Background(), "sh", "-c", "grep Udp: /proc/net/snmp; ip -s link show "+h.Iface+"; cat /proc/net/softnet_stat").CombinedOutput()
					t.Logf("%s:\n%s", h.Name, out)
				}
			}
			st := tx.Stats()
			if st.Committed != n || st.Sent != n || st.WrongFormat != 0 || st.Dropped != 0 || st.Kicks < n/50 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

// TestTransmitWrongFormat commits frames the kernel must reject among
// good ones: the bad ones are dropped and counted, the good ones arrive.
func TestTransmitWrongFormat(t *testing.T) {
	methods(t, func(t *testing.T, m ring.TXMethod) {
		l := labtest.New(t, nil)
		a, b := l.A(), l.B()
		ln := listenUDP(t, b)
		tx := hostTX(t, a, &ring.TXConfig{Method: m})
		good := func(i int) []byte { return udpFrameAB(a, b, 40000, testPort, seqPayload(i)).build() }
		// Longer than MTU 1500 + 14 but within the 2048-byte slot.
		tooLong := udpFrameAB(a, b, 40000, testPort, make([]byte, 1600)).build()
		sendFrames(t, tx, good(0), tooLong, good(1), good(2), tooLong, tooLong, good(3))
		sendFrames(t, tx, tooLong)
		sendFrames(t, tx, good(4))
		if got := kernelCount(t, ln, 5, 50*time.Millisecond, nil); got != 5 {
			t.Errorf("B received %d datagrams, want the 5 good ones", got)
		}
		st := tx.Stats()
		if st.WrongFormat != 4 || st.Sent != 5 || st.Committed != 9 {
			t.Errorf("stats %+v, want 4 wrong format, 5 sent of 9", st)
		}

		// The ring did not stall: a long run still goes through.
		for i := range 3000 {
			if err := send(tx, good(10+i)); err != nil {
				t.Fatal(err)
			}
		}
		if err := tx.Flush(); err != nil {
			t.Fatal(err)
		}
		if st := tx.Stats(); st.Sent != 3005 {
			t.Errorf("after the bad frames: stats %+v, want 3005 sent", st)
		}
	})
}

func TestCommitErrors(t *testing.T) {
	l := labtest.New(t, nil)
	for _, m := range []ring.TXMethod{ring.TXRing, ring.TXSendmmsg} {
		tx := hostTX(t, l.A(), &ring.TXConfig{Method: m})
		if err := tx.Commit(60); !errors.Is(err, ring.ErrNoBuffer) {
			t.Errorf("%v: Commit before Next: %v", m, err)
		}
		buf, err := tx.Next(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(buf) != 2048-32 {
			t.Errorf("%v: buffer of %d bytes, want %d", m, len(buf), 2048-32)
		}
		for _, n := range []int{-1, 13, len(buf) + 1} {
			if err := tx.Commit(n); !errors.Is(err, ring.ErrFrameSize) {
				t.Errorf("%v: Commit(%d): %v", m, n, err)
			}
		}
		if err := tx.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Next(context.Background()); !errors.Is(err, ring.ErrClosed) {
			t.Errorf("%v: Next after Close: %v", m, err)
		}
	}
}

// setLink sets h's lab interface up or down; up, it waits until the kernel
// has seen the link come up and given it a queueing discipline again.
func setLink(t *testing.T, h *lab.Host, up bool) {
	t.Helper()
	state := map[bool]string{true: "up", false: "down"}[up]
	if out, err := h.Command(context.Background(), "ip", "link", "set", "dev", h.Iface, state).CombinedOutput(); err != nil {
		t.Fatalf("ip link set %s: %v: %s", state, err, out)
	}
	for deadline := time.Now().Add(10 * time.Second); up; time.Sleep(5 * time.Millisecond) {
		out, err := h.Command(context.Background(), "ip", "-o", "link", "show", "dev", h.Iface).CombinedOutput()
		if err != nil {
			t.Fatalf("ip link show: %v: %s", err, out)
		}
		if s := string(out); strings.Contains(s, "state UP") && !strings.Contains(s, "qdisc noop") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not come up: %s", h.Iface, out)
		}
	}
}

// TestTransmitRefused has the kernel refuse every send (ENETDOWN: A's
// link is down) while more frames are committed than the Transmitter has
// buffers. Next must go on (the refused frames free their buffers), every
// frame must be counted once as dropped, and none may be left behind to
// leave later: once the link is up again, the next frame goes out alone.
func TestTransmitRefused(t *testing.T) {
	methods(t, func(t *testing.T, m ring.TXMethod) {
		l := labtest.New(t, nil)
		a, b := l.A(), l.B()
		ln := listenUDP(t, b)
		tx := hostTX(t, a, &ring.TXConfig{Method: m, FrameCount: 32})
		frame := func(i int) []byte { return udpFrameAB(a, b, 40000, testPort, seqPayload(i)).build() }

		setLink(t, a, false)
		const n = 100
		for i := range n {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			buf, err := tx.Next(ctx)
			cancel()
			if err != nil {
				t.Fatalf("Next for frame %d with the link down: %v; stats %+v", i, err, tx.Stats())
			}
			if err := tx.Commit(copy(buf, frame(i))); err != nil {
				t.Fatal(err)
			}
		}
		if err := tx.Flush(); !errors.Is(err, unix.ENETDOWN) {
			t.Errorf("Flush with the link down: %v, want ENETDOWN", err)
		}
		if st := tx.Stats(); st.Committed != n || st.Dropped != n || st.Sent != 0 || st.WrongFormat != 0 {
			t.Errorf("stats with the link down %+v, want %d committed and dropped", st, n)
		}
		if err := tx.Flush(); err != nil {
			t.Errorf("Flush with nothing committed: %v", err)
		}

		setLink(t, a, true)
		sendFrames(t, tx, frame(n))
		buf := make([]byte, 2048)
		var got []int
		for {
			ln.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
			k, err := ln.Read(buf)
			if isTimeout(err) && len(got) > 0 {
				break
			}
			if err != nil {
				t.Fatalf("after %v: %v", got, err)
			}
			s, _ := payloadSeq(buf[:k])
			got = append(got, s)
		}
		if len(got) != 1 || got[0] != n {
			t.Errorf("B received frames %v after the link came back, want only %d", got, n)
		}
		if st := tx.Stats(); st.Committed != n+1 || st.Dropped != n || st.Sent != 1 {
			t.Errorf("stats %+v, want %d committed, %d dropped, 1 sent", st, n+1, n)
		}
	})
}
