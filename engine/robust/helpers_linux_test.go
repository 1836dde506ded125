//go:build linux

package robust_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pktengine/pktengine/engine"
	"github.com/pktengine/pktengine/frame"
	"github.com/pktengine/pktengine/internal/lab"
	"github.com/pktengine/pktengine/internal/labtest"
	"github.com/pktengine/pktengine/ring"
)

// envDuration is the duration in the environment variable env, for the
// default of a flag that runs which cannot pass flags to this package
// alone can set; def if env is unset or no duration.
func envDuration(env string, def time.Duration) time.Duration {
	if v := os.Getenv(env); v != "" {
		if d, err := time.ParseDuration(v); err == nil {
			return d
		}
	}
	return def
}

// openEngine opens an engine on h's lab interface. When the test ends it
// is closed and the outcome invariant checked on its final counters.
func openEngine(t *testing.T, h *lab.Host, cfg *engine.Config) *engine.Engine {
	t.Helper()
	return labtest.OpenChecked(t, h, func(ifi *net.Interface) (*engine.Engine, error) { return engine.Open(ifi, robustConfig(cfg)) }, checkCounters)
}

// checkCounters checks the outcome invariant on e's counters.
func checkCounters(e *engine.Engine) error {
	c := e.Counters()
	return c.Check()
}

// echoLab builds a two-host lab and opens an engine on A (see openEngine)
// that serves echo on port: the setting of most robustness tests, with B
// as the peer.
func echoLab(t *testing.T, cfg *engine.Config, port uint16) (a, b *lab.Host, e *engine.Engine) {
	t.Helper()
	l := labtest.New(t, nil)
	a, b = l.A(), l.B()
	e = openEngine(t, a, cfg)
	if _, err := e.HandleService(netip.AddrPortFrom(netip.Addr{}, port), engine.Echo); err != nil {
		t.Fatal(err)
	}
	return a, b, e
}

// bind binds a queued port of e on every address.
func bind(t *testing.T, e *engine.Engine, port uint16) *engine.Port {
	t.Helper()
	p, err := e.Bind(netip.AddrPortFrom(netip.Addr{}, port))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// tryOpen opens an engine on h's lab interface for a test that expects
// Open to fail, or that closes the engine itself and checks what Close
// returns.
func tryOpen(h *lab.Host, cfg *engine.Config) (*engine.Engine, error) {
	return lab.OnInterface(h, func(ifi *net.Interface) (*engine.Engine, error) { return engine.Open(ifi, robustConfig(cfg)) })
}

// rawSocket is an AF_PACKET SOCK_RAW socket that sends frames exactly as
// given: the kernel neither checks nor completes any header of what a
// packet socket sends, which is what hostile frames need. It is bound
// with protocol 0, so it receives nothing.
type rawSocket struct {
	fd      int
	ifindex int
}

func openRaw(t *testing.T, h *lab.Host) *rawSocket {
	t.Helper()
	r := &rawSocket{fd: -1, ifindex: h.Index}
	err := h.Do(func() error {
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return os.NewSyscallError("socket", err)
		}
		r.fd = fd
		return os.NewSyscallError("bind", unix.Bind(fd, &unix.SockaddrLinklayer{Ifindex: h.Index}))
	})
	if err != nil {
		if r.fd >= 0 {
			unix.Close(r.fd)
		}
		t.Fatalf("raw socket in %s: %v", h.Name, err)
	}
	t.Cleanup(func() { unix.Close(r.fd) })
	return r
}

// send writes one frame; it returns the kernel's error, if any.
func (r *rawSocket) send(f []byte) error {
	_, err := unix.Write(r.fd, f)
	return err
}

// linkStats are an interface's counters as /proc/net/dev shows them.
type linkStats struct {
	RxPackets, RxDropped, TxPackets, TxDropped uint64
}

func (s linkStats) sub(o linkStats) linkStats {
	return linkStats{s.RxPackets - o.RxPackets, s.RxDropped - o.RxDropped, s.TxPackets - o.TxPackets, s.TxDropped - o.TxDropped}
}

// readLinkStats reads the lab interface's counters inside h's namespace.
// For veth, the receiving end's RxPackets counts what the peer handed
// over, and the sending end's TxDropped what it could not (the peer's
// backlog was full): frames lost before any packet tap saw them.
func readLinkStats(h *lab.Host) (linkStats, error) {
	var s linkStats
	err := h.Do(func() error {
		b, err := os.ReadFile("/proc/thread-self/net/dev")
		if err != nil {
			return err
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			name, rest, ok := strings.Cut(sc.Text(), ":")
			if !ok || strings.TrimSpace(name) != h.Iface {
				continue
			}
			f := strings.Fields(rest)
			if len(f) < 16 {
				return fmt.Errorf("/proc/net/dev: short line %q", sc.Text())
			}
			n := func(i int) uint64 { v, _ := strconv.ParseUint(f[i], 10, 64); return v }
			s = linkStats{RxPackets: n(1), RxDropped: n(3), TxPackets: n(9), TxDropped: n(11)}
			return nil
		}
		return fmt.Errorf("%s not in /proc/net/dev", h.Iface)
	})
	return s, err
}

func mustLinkStats(t *testing.T, h *lab.Host) linkStats {
	t.Helper()
	s, err := readLinkStats(h)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// settled returns a snapshot of the engine's counters once every frame
// its rings took in has been handled: FramesIn + RingDrops = RingPackets.
// The caller makes sure nothing more is arriving.
func settled(t *testing.T, e *engine.Engine) engine.Counters {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c := e.Counters()
		if c.FramesIn+c.RingDrops == c.RingPackets {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("the engine did not settle in 10s: %d frames handled + %d ring drops != %d frames in the ring",
				c.FramesIn, c.RingDrops, c.RingPackets)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// counts is a flattened view of engine.Counters: every numeric field by
// name ("FramesIn", "Udp.InErrors") and every outcome as
// "outcome:<name>". Comparing two of them shows exactly what moved.
type counts map[string]uint64

func flatten(c *engine.Counters) counts {
	m := counts{}
	var walk func(prefix string, v reflect.Value)
	walk = func(prefix string, v reflect.Value) {
		for i := range v.NumField() {
			f, fv := v.Type().Field(i), v.Field(i)
			switch fv.Kind() {
			case reflect.Uint64:
				m[prefix+f.Name] = fv.Uint()
			case reflect.Struct:
				walk(prefix+f.Name+".", fv)
			}
		}
	}
	walk("", reflect.ValueOf(*c))
	for o, v := range c.Outcomes {
		m["outcome:"+engine.Outcome(o).String()] = v
	}
	for o, v := range c.Reassembled {
		m["reassembled:"+engine.Outcome(o).String()] = v
	}
	return m
}

// sub returns m - o for every key.
func (m counts) sub(o counts) counts {
	d := counts{}
	for k, v := range m {
		d[k] = v - o[k]
	}
	return d
}

// add adds o to m.
func (m counts) add(o counts) {
	for k, v := range o {
		m[k] += v
	}
}

// diff lists the keys whose values differ between got and want (missing
// keys are zero), or "" if none.
func diff(got, want counts) string {
	keys := map[string]bool{}
	for k := range got {
		keys[k] = true
	}
	for k := range want {
		keys[k] = true
	}
	var out []string
	for k := range keys {
		if got[k] != want[k] {
			out = append(out, fmt.Sprintf("%s: got %d, want %d", k, got[k], want[k]))
		}
	}
	slices.Sort(out)
	return strings.Join(out, "; ")
}

// nonzero lists the nonzero entries of m, for logs.
func (m counts) nonzero() string {
	var out []string
	for k, v := range m {
		if v != 0 {
			out = append(out, fmt.Sprintf("%s=%d", k, v))
		}
	}
	slices.Sort(out)
	return strings.Join(out, " ")
}

// portInfo returns the counters of the port bound to every address at
// port.
func portInfo(t *testing.T, e *engine.Engine, port uint16) engine.PortInfo {
	t.Helper()
	for _, p := range e.Ports() {
		if p.Port == port {
			return p
		}
	}
	t.Fatalf("no port %d", port)
	return engine.PortInfo{}
}

// echoClient is a kernel UDP client (Go's net package, in the peer's
// namespace) that exchanges one datagram at a time with an echo port
// until stopped, and checks every answer. The lock is held for the
// length of each exchange: a test that takes it knows that no request
// of the client's is in flight.
type echoClient struct {
	mu        sync.Mutex
	conn      *net.UDPConn
	frameLen  int
	exchanges uint64 // requests answered correctly
	failures  []string
	stop      chan struct{}
	done      chan struct{}
}

// startEchoClient starts the client from h to dst. It fails the test at
// cleanup if any request went unanswered or came back wrong.
func startEchoClient(t *testing.T, h *lab.Host, dst netip.AddrPort) *echoClient {
	t.Helper()
	conn := labtest.DialUDP(t, h, dst)
	c := &echoClient{conn: conn, stop: make(chan struct{}), done: make(chan struct{})}
	const payloadLen = 16
	c.frameLen = frame.EthernetHeaderLen + frame.IPv4MinHeaderLen + frame.UDPHeaderLen + payloadLen
	if dst.Addr().Is6() {
		c.frameLen = frame.EthernetHeaderLen + frame.IPv6HeaderLen + frame.UDPHeaderLen + payloadLen
	}
	buf := make([]byte, 128)
	c.run(t, "the echo client", 500*time.Microsecond, func(i int) error {
		msg := fmt.Sprintf("request %08d", i)
		if err := c.exchange(msg, buf); err != nil {
			return fmt.Errorf("%s: %v", msg, err)
		}
		return nil
	})
	return c
}

// run starts the client's loop, which makes exchange number i with
// exchange(i), holding the lock, and sleeps pace between two. At
// cleanup it stops the client and fails the test if any exchange failed,
// naming the client who.
func (c *echoClient) run(t *testing.T, who string, pace time.Duration, exchange func(i int) error) {
	go func() {
		defer close(c.done)
		for i := 0; ; i++ {
			select {
			case <-c.stop:
				return
			default:
			}
			c.mu.Lock()
			if err := exchange(i); err != nil {
				c.failures = append(c.failures, err.Error())
			} else {
				c.exchanges++
			}
			c.mu.Unlock()
			time.Sleep(pace)
		}
	}()
	t.Cleanup(func() {
		c.close()
		if len(c.failures) > 0 {
			t.Errorf("%s lost %d of %d exchanges while the test ran; first: %s",
				who, len(c.failures), len(c.failures)+int(c.exchanges), c.failures[0])
		}
	})
}

func (c *echoClient) exchange(msg string, buf []byte) error {
	n, err := lab.Exchange(c.conn, []byte(msg), buf, labtest.Timeout)
	if err != nil {
		return err
	}
	if string(buf[:n]) != msg {
		return fmt.Errorf("answer %q", buf[:n])
	}
	return nil
}

// pause stops the client between two exchanges and returns how many it
// has completed; resume lets it go on.
func (c *echoClient) pause() uint64 {
	c.mu.Lock()
	return c.exchanges
}

func (c *echoClient) resume() { c.mu.Unlock() }

func (c *echoClient) close() {
	select {
	case <-c.stop:
	default:
		close(c.stop)
	}
	<-c.done
	c.conn.Close()
}

// arrivals counts the frames a host receives from one MAC address with a
// packet ring of its own, leaving out what the test does not send itself:
// the kernel's ICMPv6 (MLD reports, which a fresh interface repeats for a
// few seconds) and the echo client's requests to skipPort.
type arrivals struct {
	mu sync.Mutex
	n  uint64
}

func countArrivals(t *testing.T, h *lab.Host, from net.HardwareAddr, skipPort uint16) *arrivals {
	t.Helper()
	rx := labtest.Open(t, h, func(ifi *net.Interface) (*ring.RX, error) {
		return ring.NewRX(ifi, &ring.RXConfig{Version: ring.V2, IgnoreOutgoing: true, FrameSize: 16384, FrameCount: 256})
	})
	a := &arrivals{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 16384)
		for {
			n, _, err := rx.Read(context.Background(), buf)
			if err != nil {
				return
			}
			f := buf[:n]
			if len(f) < 12 || !bytes.Equal(f[6:12], from) {
				continue
			}
			var p frame.Packet
			switch p.Decode(f) {
			case frame.ReasonICMPv6:
				continue
			case frame.ReasonOK:
				if p.DstPort(f) == skipPort {
					continue
				}
			}
			a.mu.Lock()
			a.n++
			a.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		rx.Close()
		<-done
	})
	return a
}

func (a *arrivals) count() uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.n
}
