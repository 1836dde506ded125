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

// The connected half of the behaviour table: a kernel *net.UDPConn from
// net.DialUDP and the engine's Conn from DialUDP, each connected to a
// kernel socket in B (or to an address behind B, a router; see
// routerLab), run the same cases.

// connectedConn is what the connected cases use.
type connectedConn interface {
	net.Conn
	ReadFromUDPAddrPort(b []byte) (int, netip.AddrPort, error)
	WriteToUDPAddrPort(b []byte, addr netip.AddrPort) (int, error)
}

var (
	_ connectedConn = (*net.UDPConn)(nil)
	_ connectedConn = (*Conn)(nil)
)

// connectedEnv is one connected case's setting.
type connectedEnv struct {
	t  *testing.T
	b  *lab.Host
	v6 bool
	// dial connects a conn of the side under test to raddr.
	dial func(raddr netip.AddrPort) connectedConn
	// local is the address B sees the side's datagrams come from.
	local netip.Addr
	// icmpIn counts the ICMP errors the side received; waitICMP waits
	// until it passes a count.
	icmpIn   func() uint64
	waitICMP func(before uint64)
}

// peer opens a kernel socket in B of the family.
func (env *connectedEnv) peer() *net.UDPConn {
	a := env.b.IPv4.Addr()
	if env.v6 {
		a = env.b.IPv6.Addr()
	}
	return labtest.ListenUDP(env.t, env.b, netip.AddrPortFrom(a, 0))
}

// closedPort is an address in B where nothing listens.
func (env *connectedEnv) closedPort() netip.AddrPort {
	a := env.b.IPv4.Addr()
	if env.v6 {
		a = env.b.IPv6.Addr()
	}
	return netip.AddrPortFrom(a, 9)
}

func addrPortOf(c interface{ LocalAddr() net.Addr }) netip.AddrPort {
	return c.LocalAddr().(*net.UDPAddr).AddrPort()
}

// readWithin reads one datagram on c within d.
func readWithin(c connectedConn, b []byte, d time.Duration) (int, error) {
	c.SetReadDeadline(time.Now().Add(d))
	defer c.SetReadDeadline(time.Time{})
	return c.Read(b)
}

// isErrno checks that err is a *net.OpError for op wrapping errno.
func isErrno(t *testing.T, err error, op string, errno syscall.Errno) {
	t.Helper()
	var oe *net.OpError
	if !errors.Is(err, errno) || !errors.As(err, &oe) || oe.Op != op || oe.Net != "udp" {
		t.Fatalf("%s: %#v (%v), want a udp %s *net.OpError wrapping %v", op, err, err, op, errno)
	}
}

var connectedCases = []struct {
	name string
	run  func(t *testing.T, env *connectedEnv)
}{
	{"Read and Write exchange datagrams with the peer; RemoteAddr is it", func(t *testing.T, env *connectedEnv) {
		peer := env.peer()
		c := env.dial(addrPortOf(peer))
		if ra, ok := c.RemoteAddr().(*net.UDPAddr); !ok || ra.AddrPort() != addrPortOf(peer) {
			t.Fatalf("RemoteAddr %v, want %v", c.RemoteAddr(), addrPortOf(peer))
		}
		if n, err := c.Write([]byte("hello")); n != 5 || err != nil {
			t.Fatalf("Write: %d, %v", n, err)
		}
		buf := make([]byte, 64)
		peer.SetReadDeadline(time.Now().Add(3 * time.Second))
		n, from, err := peer.ReadFromUDPAddrPort(buf)
		if err != nil || string(buf[:n]) != "hello" || from.Addr() != env.local || from.Port() != addrPortOf(c).Port() {
			t.Fatalf("peer got %q from %v (%v), want hello from %v:%d", buf[:n], from, err, env.local, addrPortOf(c).Port())
		}
		peer.WriteToUDPAddrPort([]byte("back"), from)
		if n, err := readWithin(c, buf, 3*time.Second); err != nil || string(buf[:n]) != "back" {
			t.Fatalf("Read: %q, %v", buf[:n], err)
		}
		peer.WriteToUDPAddrPort([]byte("again"), from)
		c.SetReadDeadline(time.Now().Add(3 * time.Second))
		n, src, err := c.ReadFromUDPAddrPort(buf)
		if err != nil || string(buf[:n]) != "again" || src.Addr().Unmap() != addrPortOf(peer).Addr() || src.Port() != addrPortOf(peer).Port() {
			t.Fatalf("ReadFromUDPAddrPort: %q from %v, %v", buf[:n], src, err)
		}
	}},
	{"datagrams from anyone else are not delivered, and draw a port unreachable", func(t *testing.T, env *connectedEnv) {
		peer := env.peer()
		c := env.dial(addrPortOf(peer))
		c.Write([]byte("open the way")) // the peer learns where c is; its kernel learns the MAC
		buf := make([]byte, 64)
		peer.SetReadDeadline(time.Now().Add(3 * time.Second))
		_, from, err := peer.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatal(err)
		}
		// A stranger connected to c's address: refused.
		stranger := labtest.DialUDP(t, env.b, from)
		if _, err := lab.Exchange(stranger, []byte("let me in"), buf, 3*time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("a stranger's datagram: %v, want connection refused", err)
		}
		peer.WriteToUDPAddrPort([]byte("from the peer"), from)
		if n, err := readWithin(c, buf, 3*time.Second); err != nil || string(buf[:n]) != "from the peer" {
			t.Fatalf("Read: %q, %v; want the peer's datagram", buf[:n], err)
		}
	}},
	{"WriteTo a connected conn fails with ErrWriteToConnected", func(t *testing.T, env *connectedEnv) {
		peer := env.peer()
		c := env.dial(addrPortOf(peer))
		_, err := c.WriteToUDPAddrPort([]byte("x"), addrPortOf(peer))
		var oe *net.OpError
		if !errors.Is(err, net.ErrWriteToConnected) || !errors.As(err, &oe) || oe.Op != "write" {
			t.Fatalf("WriteToUDPAddrPort: %v", err)
		}
	}},
	{"a port unreachable fails the next Read with connection refused, once", func(t *testing.T, env *connectedEnv) {
		c := env.dial(env.closedPort())
		if _, err := c.Write([]byte("anyone?")); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 64)
		_, err := readWithin(c, buf, 3*time.Second)
		isErrno(t, err, "read", syscall.ECONNREFUSED)
		_, err = readWithin(c, buf, 200*time.Millisecond)
		isTimeout(t, err, "read")
	}},
	{"a port unreachable fails the next Write with connection refused, once, and that datagram is not sent", func(t *testing.T, env *connectedEnv) {
		c := env.dial(env.closedPort())
		before := env.icmpIn()
		if _, err := c.Write([]byte("anyone?")); err != nil {
			t.Fatal(err)
		}
		env.waitICMP(before)
		_, err := c.Write([]byte("still?"))
		isErrno(t, err, "write", syscall.ECONNREFUSED)
		buf := make([]byte, 64)
		_, err = readWithin(c, buf, 200*time.Millisecond)
		isTimeout(t, err, "read") // nothing was sent: no second error
		if _, err := c.Write([]byte("third")); err != nil {
			t.Fatalf("the write after: %v", err)
		}
		_, err = readWithin(c, buf, 3*time.Second)
		isErrno(t, err, "read", syscall.ECONNREFUSED) // the third datagram's
	}},
	{"a host unreachable from a router does not fail a connected Read", func(t *testing.T, env *connectedEnv) {
		far := netip.MustParseAddrPort("198.18.6.1:9")
		if env.v6 {
			far = netip.MustParseAddrPort("[fd00:6::1]:9")
		}
		c := env.dial(far)
		before := env.icmpIn()
		if _, err := c.Write([]byte("far away")); err != nil {
			t.Fatal(err)
		}
		env.waitICMP(before)
		_, err := readWithin(c, make([]byte, 64), 100*time.Millisecond)
		isTimeout(t, err, "read")
		if _, err := c.Write([]byte("and again")); err != nil {
			t.Fatalf("Write after a host unreachable: %v", err)
		}
	}},
	{"a Packet Too Big fails the next Read with message too long (IPv6)", func(t *testing.T, env *connectedEnv) {
		if !env.v6 {
			t.Skip("IPv4 routers fragment the engine's datagrams, which go without DF")
		}
		c := env.dial(netip.MustParseAddrPort("[fd00:5::1]:9"))
		if _, err := c.Write(make([]byte, 1400)); err != nil {
			t.Fatal(err)
		}
		_, err := readWithin(c, make([]byte, 64), 3*time.Second)
		isErrno(t, err, "read", syscall.EMSGSIZE)
	}},
}

// TestConnectedConnBehavesAsUDPConn runs the connected cases against the
// kernel and the engine, both families.
func TestConnectedConnBehavesAsUDPConn(t *testing.T) {
	a, b := routerLab(t)
	owned4, owned6 := netip.MustParseAddr("198.18.0.10"), netip.MustParseAddr("fd00::10")
	e := openEngine(t, a, &Config{
		Addrs:    []netip.Prefix{netip.PrefixFrom(owned4, 24), netip.PrefixFrom(owned6, 64)},
		Gateway4: b.IPv4.Addr(), Gateway6: b.IPv6.Addr(),
	})
	for _, tc := range connectedCases {
		for _, v6 := range []bool{false, true} {
			fam := "ipv4"
			if v6 {
				fam = "ipv6"
			}
			t.Run("kernel/"+fam+"/"+tc.name, func(t *testing.T) {
				local := a.IPv4.Addr()
				if v6 {
					local = a.IPv6.Addr()
				}
				env := &connectedEnv{t: t, b: b, v6: v6, local: local}
				env.dial = func(raddr netip.AddrPort) connectedConn {
					c, err := lab.OnInterface(a, func(*net.Interface) (*net.UDPConn, error) {
						return net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(raddr))
					})
					if err != nil {
						t.Fatal(err)
					}
					t.Cleanup(func() { c.Close() })
					return c
				}
				env.icmpIn = func() uint64 { return kernelICMPIn(t, a, v6) }
				env.waitICMP = func(before uint64) { waitCount(t, env.icmpIn, before) }
				tc.run(t, env)
			})
			t.Run("engine/"+fam+"/"+tc.name, func(t *testing.T) {
				local := owned4
				if v6 {
					local = owned6
				}
				env := &connectedEnv{t: t, b: b, v6: v6, local: local}
				env.dial = func(raddr netip.AddrPort) connectedConn {
					c, err := e.DialUDP(netip.AddrPort{}, raddr)
					if err != nil {
						t.Fatal(err)
					}
					t.Cleanup(func() { c.Close() })
					return c
				}
				env.icmpIn = func() uint64 { return e.Counters().ICMPErrorsIn }
				env.waitICMP = func(before uint64) { waitCount(t, env.icmpIn, before) }
				tc.run(t, env)
			})
		}
	}
}

// kernelICMPIn reads the ICMP (or ICMPv6) errors h's kernel received:
// Icmp InDestUnreachs + InTimeExcds + InParmProbs, or the Icmp6 ones.
func kernelICMPIn(t *testing.T, h *lab.Host, v6 bool) uint64 {
	t.Helper()
	names := []string{"Icmp:InDestUnreachs", "Icmp:InTimeExcds", "Icmp:InParmProbs"}
	file := "snmp"
	if v6 {
		names = []string{"Icmp6InDestUnreachs", "Icmp6InPktTooBigs", "Icmp6InTimeExcds", "Icmp6InParmProblems"}
		file = "snmp6"
	}
	c, err := h.NetCounters(file)
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, name := range names {
		n += c[name]
	}
	return n
}

// waitCount waits up to 3 s for count to pass before.
func waitCount(t *testing.T, count func() uint64, before uint64) {
	t.Helper()
	for deadline := time.Now().Add(3 * time.Second); count() <= before; {
		if time.Now().After(deadline) {
			t.Fatalf("no ICMP error arrived in 3 s")
		}
		time.Sleep(time.Millisecond)
	}
}
