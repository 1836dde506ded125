package main

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pktengine/pktengine/internal/lab"
	"github.com/pktengine/pktengine/internal/labtest"
)

// runNCIn runs `pktengine nc` (this test binary acting as the command) in
// h with stdin, and returns its standard output, standard error and exit
// code.
func runNCIn(t *testing.T, h *lab.Host, stdin []byte, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := pktengineIn(ctx, t, h, append([]string{"nc", "--iface", h.Iface}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = bytes.NewReader(stdin), &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

func payloadOf(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = 'a' + byte(i%26)
	}
	return b
}

// TestNCToKernel: nc sends 65,507 bytes (65,527 over IPv6) from an engine
// port as one datagram; a kernel socket receives them whole and answers;
// nc prints the answer and exits 0.
func TestNCToKernel(t *testing.T) {
	l := labtest.New(t, nil)
	a, b := l.A(), l.B()
	for _, tc := range []struct {
		addr netip.Addr
		size int
		from string // nc's --addr: none (A's own, shared), or an owned one
	}{
		{b.IPv4.Addr(), 65507, ""},
		{b.IPv6.Addr(), 65527, ""},
		{b.IPv4.Addr(), 65507, "198.18.0.77/24"},
	} {
		srv := labtest.ListenUDP(t, b, netip.AddrPortFrom(tc.addr, 0))
		got := make(chan []byte, 1)
		go func() {
			buf := make([]byte, 70000)
			srv.SetReadDeadline(time.Now().Add(20 * time.Second))
			n, from, err := srv.ReadFromUDPAddrPort(buf)
			if err != nil {
				got <- nil
				return
			}
			got <- bytes.Clone(buf[:n])
			srv.WriteToUDPAddrPort([]byte("received"), from)
		}()
		args := []string{netip.AddrPortFrom(tc.addr, uint16(srv.LocalAddr().(*net.UDPAddr).Port)).String()}
		if tc.from != "" {
			args = append([]string{"--addr", tc.from}, args...)
		}
		payload := payloadOf(tc.size)
		stdout, stderr, code := runNCIn(t, a, payload, args...)
		if code != 0 || stdout != "received" {
			t.Fatalf("nc %v: exit %d, stdout %q, stderr %s", args, code, stdout, stderr)
		}
		if r := <-got; !bytes.Equal(r, payload) {
			t.Fatalf("nc %v: the kernel received %d bytes, want the %d sent", args, len(r), len(payload))
		}
	}
}

// TestNCRefused: nc to a closed kernel port reports the port unreachable
// as the kernel words it and exits 1.
func TestNCRefused(t *testing.T) {
	l := labtest.New(t, nil)
	a, b := l.A(), l.B()
	for _, dst := range []netip.AddrPort{netip.AddrPortFrom(b.IPv4.Addr(), 9), netip.AddrPortFrom(b.IPv6.Addr(), 9)} {
		stdout, stderr, code := runNCIn(t, a, []byte("anyone?"), dst.String())
		if code != 1 || stdout != "" || !strings.Contains(stderr, dst.String()+": connection refused") {
			t.Errorf("nc %v: exit %d, stdout %q, stderr %q; want exit 1 and connection refused", dst, code, stdout, stderr)
		}
	}
}

// TestNCLinesToServe: nc --lines to `pktengine serve --echo` sends each
// line as a datagram and prints each echo; a datagram above 65,507 bytes
// is refused with EMSGSIZE before anything is sent.
func TestNCLinesToServe(t *testing.T) {
	l := labtest.New(t, nil)
	a, b := l.A(), l.B()
	s := startServe(t, b, "--addr", "198.18.0.20/24", "--echo", "7")
	in := "one\ntwo\n" + string(payloadOf(30000)) + "\nlast line without newline"
	stdout, stderr, code := runNCIn(t, a, []byte(in), "--lines", "--wait", "1s", "198.18.0.20:7")
	if code != 0 || stdout != in {
		s.stop(t)
		t.Fatalf("nc --lines: exit %d, %d bytes back (want %d), stderr %s\nserve: %s", code, len(stdout), len(in), stderr, s.stdout.String())
	}
	stdout, stderr, code = runNCIn(t, a, payloadOf(65508), "198.18.0.20:7")
	if code != 1 || stdout != "" || !strings.Contains(stderr, "message too long") {
		t.Fatalf("nc of 65,508 bytes: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if err := s.stop(t); err != nil {
		t.Fatal(err)
	}
	if out := s.stdout.String(); !strings.Contains(out, "4 packets received") || strings.Contains(out, "WARNING") {
		t.Errorf("serve saw other than the 4 lines:\n%s", out)
	}
}

// TestServeEchoFragmented: `pktengine serve --echo` answers a kernel
// client's datagrams of 1,473..65,507 bytes (IPv4) and 1,453..65,527
// (IPv6) with every byte.
func TestServeEchoFragmented(t *testing.T) {
	l := labtest.New(t, nil)
	a, b := l.A(), l.B()
	s := startServe(t, b, "--addr", "198.18.0.20/24", "--addr", "fd00::20/64", "--echo", "7")
	buf := make([]byte, 70000)
	for _, tc := range []struct {
		dst   netip.AddrPort
		sizes []int
	}{
		{netip.MustParseAddrPort("198.18.0.20:7"), []int{1473, 3000, 8192, 32768, 65507}},
		{netip.MustParseAddrPort("[fd00::20]:7"), []int{1453, 3000, 8192, 32768, 65527}},
	} {
		c := labtest.DialUDP(t, a, tc.dst)
		for _, n := range tc.sizes {
			p := payloadOf(n)
			got, err := lab.Exchange(c, p, buf, labtest.Timeout)
			if err != nil || !bytes.Equal(buf[:got], p) {
				t.Fatalf("%d bytes to %v: %d back, %v", n, tc.dst, got, err)
			}
		}
	}
	if err := s.stop(t); err != nil {
		t.Fatal(err)
	}
	out := s.stdout.String()
	for _, want := range []string{"10 packets received", "10 packets sent", "10 reassembled delivered", "5 datagrams fragmented"} {
		if !strings.Contains(out, want) {
			t.Errorf("serve's final counters lack %q:\n%s", want, out)
		}
	}
}

// TestNCThroughRouter: HOST off the engine's prefixes goes through the
// kernel's route (B, a router here); B's host unreachable is reported as
// the kernel words it, and nc exits 1.
func TestNCThroughRouter(t *testing.T) {
	l := labtest.New(t, nil)
	a, b := l.A(), l.B()
	if _, err := b.Sysctl("net.ipv4.ip_forward", "1"); err != nil {
		t.Fatal(err)
	}
	labtest.Run(t, b, "ip", "route", "add", "unreachable", "198.18.6.0/24")
	labtest.Run(t, a, "ip", "route", "add", "198.18.6.0/24", "via", b.IPv4.Addr().String())
	stdout, stderr, code := runNCIn(t, a, []byte("far"), "--wait", "500ms", "198.18.6.1:9")
	if code != 1 || stdout != "" || !strings.Contains(stderr, "198.18.6.1:9: no route to host") {
		t.Fatalf("nc through a router: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	// With no route at all, nc says so.
	stdout, stderr, code = runNCIn(t, a, []byte("far"), "203.0.113.1:9")
	if code != 1 || !strings.Contains(stderr, "no route to 203.0.113.1") {
		t.Fatalf("nc without a route: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}

// TestNCUsage: a command line that cannot run is refused with status 2.
func TestNCUsage(t *testing.T) {
	for _, args := range [][]string{
		{"nc"},
		{"nc", "--iface", "lo"},
		{"nc", "--iface", "lo", "198.18.0.1"},
		{"nc", "--iface", "lo", "--gateway", "fd00::1", "198.18.0.1:7"},
		{"nc", "--iface", "lo", "a:1", "b:2"},
	} {
		var out, errb bytes.Buffer
		code := run(context.Background(), args, &out, &errb)
		if code == 0 || (code != 2 && !strings.Contains(errb.String(), "HOST:PORT")) {
			t.Errorf("%q: exit %d, stderr %s", args, code, errb.String())
		}
	}
	// readDatagrams refuses what no datagram can carry.
	if _, err := readDatagrams(bytes.NewReader(payloadOf(65508)), false, 65507); !errors.Is(err, syscall.EMSGSIZE) {
		t.Errorf("65,508 bytes: %v", err)
	}
	ms, err := readDatagrams(strings.NewReader("a\nbb\n\nccc"), true, 65507)
	if err != nil || len(ms) != 4 || string(ms[3]) != "ccc" || string(ms[2]) != "\n" {
		t.Errorf("lines: %q, %v", ms, err)
	}
}
