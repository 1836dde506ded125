//go:build linux

package xdp

import (
	"encoding/binary"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/pktengine/pktengine/frame"
	"github.com/pktengine/pktengine/internal/lab"
	"github.com/pktengine/pktengine/internal/labtest"
)

// livePayload is what the receivers of liveTemplate's frames look for.
const livePayload = "live frame"

// liveTemplate is a UDP frame from port 40000 of host a to port 9000 of
// host b.
func liveTemplate(t testing.TB, a, b *lab.Host, v6 bool, payload []byte) []byte {
	t.Helper()
	src, dst := a.IPv4.Addr(), b.IPv4.Addr()
	if v6 {
		src, dst = a.IPv6.Addr(), b.IPv6.Addr()
	}
	s := &frame.UDPSpec{SrcMAC: frame.MAC(a.MAC), DstMAC: frame.MAC(b.MAC),
		Src: netip.AddrPortFrom(src, 40000), Dst: netip.AddrPortFrom(dst, 9000), Payload: payload}
	buf := make([]byte, frame.UDPFrameLen(s))
	n, err := frame.BuildUDP(buf, s)
	if err != nil {
		t.Fatal(err)
	}
	return buf[:n]
}

// udpCsumErrors reads Udp InCsumErrors (or Udp6InCsumErrors) of host h.
func udpCsumErrors(t testing.TB, h *lab.Host, v6 bool) int {
	t.Helper()
	file, name := "snmp", "Udp:InCsumErrors"
	if v6 {
		file, name = "snmp6", "Udp6InCsumErrors"
	}
	c, err := h.NetCounters(file)
	if err != nil {
		t.Fatal(err)
	}
	return int(c[name])
}

// overIPv4And6 runs test as two subtests, over IPv4 and over IPv6.
func overIPv4And6(t *testing.T, test func(t *testing.T, v6 bool)) {
	for _, v6 := range []bool{false, true} {
		name := "ipv4"
		if v6 {
			name = "ipv6"
		}
		t.Run(name, func(t *testing.T) { test(t, v6) })
	}
}

// liveLab is the lab of the live sender tests: B's veth end runs the
// steering program with no addresses, which passes everything and turns
// on the NAPI that redirected frames need, and conn is a kernel socket on
// port 9000 of B's IPv4 or IPv6 address.
func liveLab(t *testing.T, v6 bool) (a, b *lab.Host, conn *net.UDPConn) {
	l := labtest.New(t, nil)
	a, b = l.A(), l.B()
	detachAll(t, b)
	if _, err := attachIn(t, b, nil); err != nil {
		t.Fatal(err)
	}
	dst := b.IPv4.Addr()
	if v6 {
		dst = b.IPv6.Addr()
	}
	conn = labtest.ListenUDP(t, b, netip.AddrPortFrom(dst, 9000))
	conn.SetReadBuffer(8 << 20)
	return a, b, conn
}

// TestLabLiveSender sends with live frames from A to a kernel socket on B
// (liveLab) and checks that the frames arrive with valid checksums and
// cycle through the source ports.
func TestLabLiveSender(t *testing.T) { overIPv4And6(t, testLiveSender) }

func testLiveSender(t *testing.T, v6 bool) {
	a, b, conn := liveLab(t, v6)
	const flows, bursts, burst = 16, 8, 64
	tmpl := liveTemplate(t, a, b, v6, []byte(livePayload))
	s := labtest.Open(t, a, func(ifi *net.Interface) (*LiveSender, error) {
		return NewLiveSender(ifi, tmpl, &LiveConfig{Flows: flows})
	})

	var mu sync.Mutex
	ports := map[int]int{}
	got := 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 2048)
		for {
			conn.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
			n, from, err := conn.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			mu.Lock()
			if string(buf[:n]) == livePayload {
				got++
				ports[int(from.Port())]++
			}
			mu.Unlock()
		}
	}()
	before := udpCsumErrors(t, b, v6)
	for range bursts {
		if err := a.Do(func() error { return s.Send(burst) }); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	<-done
	sent, err := s.Sent()
	if err != nil {
		t.Fatal(err)
	}
	if sent != bursts*burst {
		t.Errorf("the program counted %d frames, want %d", sent, bursts*burst)
	}
	if e := udpCsumErrors(t, b, v6) - before; e != 0 {
		t.Errorf("%d checksum errors on the receiver: the incremental update is wrong", e)
	}
	mu.Lock()
	defer mu.Unlock()
	t.Logf("%d of %d frames received, %d source ports", got, sent, len(ports))
	if got == 0 {
		t.Fatal("no frame arrived")
	}
	for p := range ports {
		if p < 40000 || p >= 40000+flows {
			t.Errorf("source port %d outside 40000 to %d", p, 40000+flows-1)
		}
	}
	if got >= 4*flows && len(ports) != flows {
		t.Errorf("%d source ports over %d frames, want %d", len(ports), got, flows)
	}
}

// TestLabLiveSenderStamps: with SeqOff and ClockOff the program writes a
// sequence word and the send time into every frame, keeping the UDP
// checksum valid, and Restart starts the count again with a new template.
func TestLabLiveSenderStamps(t *testing.T) { overIPv4And6(t, testLiveStamps) }

func testLiveStamps(t *testing.T, v6 bool) {
	a, b, conn := liveLab(t, v6)
	template := func(mark byte) []byte {
		payload := make([]byte, 24)
		payload[0] = mark
		return liveTemplate(t, a, b, v6, payload)
	}
	tmpl := template('a')
	var p frame.Packet
	p.Decode(tmpl)
	const high = 0x7777 << 48
	s := labtest.Open(t, a, func(ifi *net.Interface) (*LiveSender, error) {
		return NewLiveSender(ifi, tmpl, &LiveConfig{Flows: 4, SeqOff: int(p.PayloadOff) + 2, SeqHigh: high, ClockOff: int(p.PayloadOff) + 10})
	})
	before := udpCsumErrors(t, b, v6)
	const n = 200
	read := func(mark byte, from, to int64) {
		t.Helper()
		seen := map[uint64]bool{}
		buf := make([]byte, 2048)
		for len(seen) < n {
			conn.SetReadDeadline(time.Now().Add(time.Second))
			k, _, err := conn.ReadFromUDPAddrPort(buf)
			if err != nil {
				t.Fatalf("%d of %d frames read: %v", len(seen), n, err)
			}
			if k != 24 || buf[0] != mark {
				t.Fatalf("payload %x", buf[:k])
			}
			w := binary.BigEndian.Uint64(buf[2:])
			ts := int64(binary.BigEndian.Uint64(buf[10:]))
			if w>>48 != 0x7777 || w&(1<<48-1) >= n || seen[w] {
				t.Fatalf("sequence word %#x (seen %v)", w, seen[w])
			}
			seen[w] = true
			if ts < from || ts > to {
				t.Fatalf("send time %d not within %d to %d", ts, from, to)
			}
		}
	}
	for _, mark := range []byte{'a', 'b'} {
		if mark == 'b' {
			if err := s.Restart(template('b')); err != nil {
				t.Fatal(err)
			}
		}
		from := time.Now().UnixNano()
		if err := a.Do(func() error { return s.Send(n) }); err != nil {
			t.Fatal(err)
		}
		read(mark, from, time.Now().UnixNano())
	}
	if e := udpCsumErrors(t, b, v6) - before; e != 0 {
		t.Errorf("%d checksum errors on the receiver: the incremental update is wrong", e)
	}
}
