//go:build linux

package engine

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/ipv4"

	"github.com/pktengine/pktengine/internal/lab"
	"github.com/pktengine/pktengine/internal/labtest"
)

// The behaviour table: every case runs against a kernel *net.UDPConn and
// against the engine's Conn, bound the same way, with a kernel socket in
// the other namespace as the peer. A difference between the two is a
// failing case.

// udpConn is what the cases use: the methods *net.UDPConn and *Conn share.
type udpConn interface {
	net.PacketConn
	ReadFromUDPAddrPort(b []byte) (int, netip.AddrPort, error)
	WriteToUDPAddrPort(b []byte, addr netip.AddrPort) (int, error)
}

var (
	_ udpConn = (*net.UDPConn)(nil)
	_ udpConn = (*Conn)(nil)
)

// connEnv is one case's conn and its peer.
type connEnv struct {
	conn udpConn
	// to4 and to6 are where the peer sends to reach conn; from4 and
	// from6 the addresses conn's datagrams come from.
	to4, to6     netip.AddrPort
	peer4, peer6 *net.UDPConn
}

// send sends payload from the peer's socket of a family to conn.
func (env *connEnv) send(t *testing.T, v6 bool, payload []byte) {
	t.Helper()
	s, to := env.peer4, env.to4
	if v6 {
		s, to = env.peer6, env.to6
	}
	if _, err := s.WriteToUDPAddrPort(payload, to); err != nil {
		t.Fatal(err)
	}
}

// peerAddr is the address conn sees the peer's socket of a family as,
// when conn is bound to both families.
func (env *connEnv) peerAddr(v6 bool) netip.AddrPort {
	if v6 {
		return env.peer6.LocalAddr().(*net.UDPAddr).AddrPort()
	}
	ap := env.peer4.LocalAddr().(*net.UDPAddr).AddrPort()
	return netip.AddrPortFrom(netip.AddrFrom16(ap.Addr().As16()), ap.Port()) // IPv4-mapped, as a "[::]" socket reports it
}

// receive reads a datagram on the peer's socket of a family.
func (env *connEnv) receive(t *testing.T, v6 bool) ([]byte, netip.AddrPort) {
	t.Helper()
	s := env.peer4
	if v6 {
		s = env.peer6
	}
	s.SetReadDeadline(time.Now().Add(3 * time.Second))
	buf := make([]byte, 65536)
	n, from, err := s.ReadFromUDPAddrPort(buf)
	if err != nil {
		t.Fatalf("peer: %v", err)
	}
	return buf[:n], from
}

// read reads one datagram on conn, failing the test after 3 s.
func (env *connEnv) read(t *testing.T, b []byte) (int, netip.AddrPort) {
	t.Helper()
	env.conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	n, from, err := env.conn.ReadFromUDPAddrPort(b)
	if err != nil {
		t.Fatalf("ReadFromUDPAddrPort: %v", err)
	}
	env.conn.SetReadDeadline(time.Time{})
	return n, from
}

// isTimeout checks an error as net/http, gRPC and friends check a
// deadline: a net.Error that says Timeout, wrapping os.ErrDeadlineExceeded,
// in a *net.OpError for op.
func isTimeout(t *testing.T, err error, op string) {
	t.Helper()
	var ne net.Error
	var oe *net.OpError
	if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) ||
		!errors.As(err, &oe) || oe.Op != op || oe.Net != "udp" {
		t.Fatalf("%s error %#v (%v) is not a udp %s timeout", op, err, err, op)
	}
}

func isClosed(t *testing.T, err error, op string) {
	t.Helper()
	var oe *net.OpError
	if !errors.Is(err, net.ErrClosed) || !errors.As(err, &oe) || oe.Op != op {
		t.Fatalf("%s after Close: %v, want a %s *net.OpError wrapping net.ErrClosed", op, err, op)
	}
}

var connCases = []struct {
	name string
	run  func(t *testing.T, env *connEnv)
}{
	{"ReadFrom gives the datagram and its sender, both families", func(t *testing.T, env *connEnv) {
		for _, v6 := range []bool{false, true} {
			env.send(t, v6, []byte("hello"))
			buf := make([]byte, 100)
			n, from, err := env.conn.ReadFrom(buf)
			if err != nil {
				t.Fatal(err)
			}
			ua, ok := from.(*net.UDPAddr)
			if !ok || string(buf[:n]) != "hello" || ua.AddrPort() != env.peerAddr(v6) {
				t.Fatalf("v6 %v: %q from %#v, want hello from %v", v6, buf[:n], from, env.peerAddr(v6))
			}
		}
	}},
	{"a short buffer truncates and the rest is lost", func(t *testing.T, env *connEnv) {
		env.send(t, false, bytes.Repeat([]byte("a"), 100))
		env.send(t, false, []byte("next"))
		buf := make([]byte, 10)
		if n, _ := env.read(t, buf); n != 10 {
			t.Fatalf("read %d bytes of a 100-byte datagram into 10, want 10", n)
		}
		if n, _ := env.read(t, buf); string(buf[:n]) != "next" {
			t.Fatalf("next read %q, want the next datagram", buf[:n])
		}
	}},
	{"an empty datagram is read as 0 bytes", func(t *testing.T, env *connEnv) {
		env.send(t, true, nil)
		if n, from := env.read(t, make([]byte, 10)); n != 0 || from != env.peerAddr(true) {
			t.Fatalf("read %d bytes from %v", n, from)
		}
	}},
	{"a past read deadline fails at once even with data queued, and lifting it reads it", func(t *testing.T, env *connEnv) {
		env.send(t, false, []byte("queued"))
		time.Sleep(50 * time.Millisecond) // let it arrive
		env.conn.SetReadDeadline(time.Now().Add(-time.Second))
		_, _, err := env.conn.ReadFrom(make([]byte, 10))
		isTimeout(t, err, "read")
		env.conn.SetReadDeadline(time.Time{})
		buf := make([]byte, 10)
		if n, _, err := env.conn.ReadFrom(buf); err != nil || string(buf[:n]) != "queued" {
			t.Fatalf("after lifting the deadline: %q, %v", buf[:n], err)
		}
	}},
	{"a deadline ends a blocked read", func(t *testing.T, env *connEnv) {
		start := time.Now()
		env.conn.SetReadDeadline(start.Add(50 * time.Millisecond))
		_, _, err := env.conn.ReadFrom(make([]byte, 10))
		isTimeout(t, err, "read")
		if waited := time.Since(start); waited < 40*time.Millisecond {
			t.Fatalf("the read gave up after %v, before its deadline", waited)
		}
	}},
	{"moving the deadline into the past wakes a blocked read", func(t *testing.T, env *connEnv) {
		env.conn.SetReadDeadline(time.Now().Add(time.Hour))
		errc := make(chan error, 1)
		go func() {
			_, _, err := env.conn.ReadFrom(make([]byte, 10))
			errc <- err
		}()
		time.Sleep(50 * time.Millisecond)
		env.conn.SetReadDeadline(time.Now())
		select {
		case err := <-errc:
			isTimeout(t, err, "read")
		case <-time.After(3 * time.Second):
			t.Fatal("the blocked read did not notice its deadline move")
		}
	}},
	{"Close wakes a blocked read, and everything after fails as closed", func(t *testing.T, env *connEnv) {
		errc := make(chan error, 1)
		go func() {
			_, _, err := env.conn.ReadFrom(make([]byte, 10))
			errc <- err
		}()
		time.Sleep(50 * time.Millisecond)
		if err := env.conn.Close(); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-errc:
			isClosed(t, err, "read")
		case <-time.After(3 * time.Second):
			t.Fatal("Close left a read blocked")
		}
		_, _, err := env.conn.ReadFrom(make([]byte, 10))
		isClosed(t, err, "read")
		_, err = env.conn.WriteTo([]byte("x"), net.UDPAddrFromAddrPort(env.peerAddr(false)))
		isClosed(t, err, "write")
		if err := env.conn.SetReadDeadline(time.Now()); !errors.Is(err, net.ErrClosed) {
			t.Errorf("SetReadDeadline after Close: %v", err)
		}
		isClosed(t, env.conn.Close(), "close")
	}},
	{"WriteTo reaches the peer from the conn's address", func(t *testing.T, env *connEnv) {
		for _, v6 := range []bool{false, true} {
			to := env.peerAddr(v6)
			if n, err := env.conn.WriteTo([]byte("out"), net.UDPAddrFromAddrPort(to)); err != nil || n != 3 {
				t.Fatalf("WriteTo %v: %d, %v", to, n, err)
			}
			got, from := env.receive(t, v6)
			want := env.to4
			if v6 {
				want = env.to6
			}
			if string(got) != "out" || from != want {
				t.Fatalf("peer got %q from %v, want out from %v", got, from, want)
			}
		}
	}},
	{"netip forms round trip", func(t *testing.T, env *connEnv) {
		env.send(t, true, []byte("ping"))
		buf := make([]byte, 10)
		n, from := env.read(t, buf)
		if _, err := env.conn.WriteToUDPAddrPort(buf[:n], from); err != nil {
			t.Fatal(err)
		}
		if got, _ := env.receive(t, true); string(got) != "ping" {
			t.Fatalf("peer got %q", got)
		}
	}},
	{"WriteTo with a non-UDP address is invalid", func(t *testing.T, env *connEnv) {
		_, err := env.conn.WriteTo([]byte("x"), &net.IPAddr{IP: net.IPv4(198, 18, 0, 2)})
		var oe *net.OpError
		if !errors.Is(err, syscall.EINVAL) || !errors.As(err, &oe) || oe.Op != "write" {
			t.Fatalf("WriteTo(*net.IPAddr): %v", err)
		}
	}},
	{"a past write deadline fails the write", func(t *testing.T, env *connEnv) {
		env.conn.SetWriteDeadline(time.Now().Add(-time.Second))
		_, err := env.conn.WriteTo([]byte("x"), net.UDPAddrFromAddrPort(env.peerAddr(false)))
		isTimeout(t, err, "write")
		env.conn.SetDeadline(time.Time{})
		if _, err := env.conn.WriteTo([]byte("y"), net.UDPAddrFromAddrPort(env.peerAddr(false))); err != nil {
			t.Fatalf("after lifting the deadline: %v", err)
		}
	}},
	{"LocalAddr is a *net.UDPAddr for both families", func(t *testing.T, env *connEnv) {
		ua, ok := env.conn.LocalAddr().(*net.UDPAddr)
		if !ok || ua.Port != int(env.to4.Port()) || ua.String() != fmt.Sprintf("[::]:%d", env.to4.Port()) {
			t.Fatalf("LocalAddr %#v", env.conn.LocalAddr())
		}
	}},
	{"concurrent readers and writers", func(t *testing.T, env *connEnv) {
		const n = 200
		var got sync.WaitGroup
		var mu sync.Mutex
		seen := make(map[string]bool)
		for range 4 {
			got.Go(func() {
				buf := make([]byte, 16)
				for {
					env.conn.SetReadDeadline(time.Now().Add(time.Second))
					k, _, err := env.conn.ReadFrom(buf)
					if err != nil {
						return
					}
					mu.Lock()
					seen[string(buf[:k])] = true
					mu.Unlock()
				}
			})
		}
		var sent sync.WaitGroup
		for w := range 4 {
			sent.Go(func() {
				for i := range n / 4 {
					env.conn.WriteToUDPAddrPort([]byte(fmt.Sprintf("w%d-%d", w, i)), env.peerAddr(false))
				}
			})
		}
		for i := range n {
			env.send(t, i%2 == 1, []byte(fmt.Sprint(i)))
			if i%50 == 49 {
				time.Sleep(10 * time.Millisecond) // within any socket buffer
			}
		}
		sent.Wait()
		received := 0
		env.peer4.SetReadDeadline(time.Now().Add(2 * time.Second))
		for buf := make([]byte, 16); received < n; received++ {
			if _, _, err := env.peer4.ReadFrom(buf); err != nil {
				break
			}
		}
		got.Wait()
		if len(seen) != n || received != n {
			t.Fatalf("conn read %d distinct datagrams of %d, the peer %d of %d", len(seen), n, received, n)
		}
	}},
}

// TestConnBehavesAsUDPConn runs the behaviour table against the kernel
// and the engine.
func TestConnBehavesAsUDPConn(t *testing.T) {
	l := labtest.New(t, nil)
	a, b := l.A(), l.B()
	e := openEngine(t, a, &Config{Addrs: []netip.Prefix{
		netip.MustParsePrefix("198.18.0.10/24"), netip.MustParsePrefix("fd00::10/64"),
	}})
	peer4 := labtest.ListenUDP(t, b, netip.AddrPortFrom(b.IPv4.Addr(), 0))
	peer6 := labtest.ListenUDP(t, b, netip.AddrPortFrom(b.IPv6.Addr(), 0))
	drain := func() {
		for _, s := range []*net.UDPConn{peer4, peer6} {
			s.SetReadDeadline(time.Now())
			for buf := make([]byte, 65536); ; {
				if _, _, err := s.ReadFrom(buf); err != nil {
					break
				}
			}
		}
	}
	for i, tc := range connCases {
		port := uint16(20000 + i)
		t.Run("kernel/"+tc.name, func(t *testing.T) {
			drain()
			c, err := lab.OnInterface(a, func(*net.Interface) (*net.UDPConn, error) {
				return net.ListenUDP("udp", &net.UDPAddr{Port: int(port)})
			})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			tc.run(t, &connEnv{
				conn: c, peer4: peer4, peer6: peer6,
				to4: netip.AddrPortFrom(a.IPv4.Addr(), port), to6: netip.AddrPortFrom(a.IPv6.Addr(), port),
			})
		})
		t.Run("engine/"+tc.name, func(t *testing.T) {
			drain()
			c, err := e.ListenUDP(netip.AddrPortFrom(netip.Addr{}, port))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			tc.run(t, &connEnv{
				conn: c, peer4: peer4, peer6: peer6,
				to4: netip.MustParseAddrPort(fmt.Sprintf("198.18.0.10:%d", port)), to6: netip.MustParseAddrPort(fmt.Sprintf("[fd00::10]:%d", port)),
			})
		})
	}
}

// TestConnNoAllocs holds the netip forms to zero allocations once the
// next hop is known.
func TestConnNoAllocs(t *testing.T) {
	l := labtest.New(t, nil)
	a, b := l.A(), l.B()
	e := openEngine(t, a, &Config{Addrs: []netip.Prefix{netip.MustParsePrefix("198.18.0.10/24")}})
	c, err := e.ListenUDP(netip.MustParseAddrPort("198.18.0.10:7000"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	peer := labtest.ListenUDP(t, b, netip.AddrPortFrom(b.IPv4.Addr(), 0))
	to := peer.LocalAddr().(*net.UDPAddr).AddrPort()
	msg, buf := []byte("TEST"), make([]byte, 64)
	exchange := func() {
		if _, err := peer.WriteToUDPAddrPort(msg, netip.MustParseAddrPort("198.18.0.10:7000")); err != nil {
			t.Fatal(err)
		}
		if _, _, err := c.ReadFromUDPAddrPort(buf); err != nil {
			t.Fatal(err)
		}
		if _, err := c.WriteToUDPAddrPort(msg, to); err != nil {
			t.Fatal(err)
		}
		peer.SetReadDeadline(time.Now().Add(3 * time.Second))
		if _, _, err := peer.ReadFromUDPAddrPort(buf); err != nil {
			t.Fatal(err)
		}
	}
	exchange() // resolves the peer
	c.SetReadDeadline(time.Now().Add(time.Hour))
	// The test's own kernel socket allocates; count the conn's share by
	// measuring the peer's calls alone too.
	both := testing.AllocsPerRun(50, exchange)
	peerOnly := testing.AllocsPerRun(50, func() {
		peer.WriteToUDPAddrPort(msg, to)
		peer.SetReadDeadline(time.Now().Add(3 * time.Second))
		peer.ReadFromUDPAddrPort(buf)
	})
	if conn := both - peerOnly; conn > 0.05 {
		t.Errorf("ReadFromUDPAddrPort + WriteToUDPAddrPort: %.2f allocations per datagram pair, want 0", conn)
	}
}

// TestConnBatches: ReadBatch and WriteBatch as x/net/ipv4's: scattered
// buffers, MSG_TRUNC, sender addresses reused, one send for a batch.
func TestConnBatches(t *testing.T) {
	l := labtest.New(t, nil)
	a, b := l.A(), l.B()
	e := openEngine(t, a, &Config{Addrs: []netip.Prefix{netip.MustParsePrefix("198.18.0.10/24")}})
	c, err := e.ListenUDP(netip.MustParseAddrPort("198.18.0.10:7001"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	peer := labtest.ListenUDP(t, b, netip.AddrPortFrom(b.IPv4.Addr(), 0))
	from := peer.LocalAddr().(*net.UDPAddr).AddrPort()
	for i := range 10 {
		payload := []byte(fmt.Sprintf("datagram %d", i))
		if i == 9 {
			payload = bytes.Repeat([]byte("L"), 40)
		}
		if _, err := peer.WriteToUDPAddrPort(payload, netip.MustParseAddrPort("198.18.0.10:7001")); err != nil {
			t.Fatal(err)
		}
	}
	ms := make([]ipv4.Message, 16)
	addrs := make([]*net.UDPAddr, len(ms))
	for i := range ms {
		ms[i].Buffers = [][]byte{make([]byte, 4), make([]byte, 12)}
		addrs[i] = &net.UDPAddr{IP: make(net.IP, 0, 16)}
		ms[i].Addr = addrs[i]
	}
	var got []string
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	for len(got) < 10 {
		n, err := c.ReadBatch(ms, 0)
		if err != nil {
			t.Fatalf("after %d datagrams: %v", len(got), err)
		}
		for i := range ms[:n] {
			m := &ms[i]
			data := append(append([]byte{}, m.Buffers[0]...), m.Buffers[1]...)[:m.N]
			if m.Addr != addrs[i] || m.Addr.(*net.UDPAddr).AddrPort() != from {
				t.Errorf("message %d: Addr %v (%p), want %v in the message's own *net.UDPAddr", len(got), m.Addr, m.Addr, from)
			}
			trunc := m.Flags&syscall.MSG_TRUNC != 0
			if want := len(got) == 9; trunc != want {
				t.Errorf("message %d (%q): MSG_TRUNC %v, want %v", len(got), data, trunc, want)
			}
			got = append(got, string(data))
		}
	}
	if got[3] != "datagram 3" || got[9] != strings.Repeat("L", 16) {
		t.Fatalf("read %q", got)
	}

	out := make([]ipv4.Message, 5)
	for i := range out {
		out[i] = ipv4.Message{Buffers: [][]byte{[]byte("part-"), []byte(fmt.Sprint(i))}, Addr: net.UDPAddrFromAddrPort(from)}
	}
	kicks := e.Counters().TXFrames
	if n, err := c.WriteBatch(out, 0); n != 5 || err != nil {
		t.Fatalf("WriteBatch: %d, %v", n, err)
	}
	if k := e.Counters().TXFrames - kicks; k != 5 {
		t.Errorf("%d frames sent for a batch of 5", k)
	}
	peer.SetReadDeadline(time.Now().Add(3 * time.Second))
	buf := make([]byte, 64)
	for i := range out {
		n, _, err := peer.ReadFromUDPAddrPort(buf)
		if err != nil || string(buf[:n]) != fmt.Sprintf("part-%d", i) || out[i].N != n {
			t.Fatalf("peer read %q (%v), N %d", buf[:n], err, out[i].N)
		}
	}
}
