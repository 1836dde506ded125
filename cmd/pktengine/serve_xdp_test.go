package main

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os/exec"
	"os/user"
	"strings"
	"testing"
	"time"

	"github.com/pktengine/pktengine/internal/lab"
	"github.com/pktengine/pktengine/internal/labtest"
)

// TestServeXDP runs `serve --backend xdp`: it echoes, `stat` and `stat
// --json` say the backend and the bind mode, the metrics carry the XDP
// series, and when serve exits no XDP program is left on the interface.
func TestServeXDP(t *testing.T) {
	l := labtest.New(t, nil)
	b := l.B()
	s := startServe(t, b, "--backend", "xdp", "--echo", "7", "--metrics", "127.0.0.1:9478")
	echoes(t, l, 3, "echo")
	out := s.stat(t)
	for _, want := range []string{"AF_XDP, copy mode", "AF_XDP:", "3 received", "queue 0: copy mode"} {
		if !strings.Contains(out, want) {
			t.Errorf("stat lacks %q:\n%s", want, out)
		}
	}
	out = s.stat(t, "--json")
	for _, want := range []string{`"Backend": "xdp"`, `"Mode": "copy"`, `"Received": 3`, `"FrameCount": 4096`} {
		if !strings.Contains(out, want) {
			t.Errorf("stat --json lacks %s:\n%s", want, out)
		}
	}
	var body string
	if err := b.Do(func() error {
		var err error
		body, err = httpGet("127.0.0.1:9478", "/metrics")
		return err
	}); err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	for _, want := range []string{`pktengine_backend_info{backend="xdp",xdp_mode="copy"} 1`, "\npktengine_xdp_received_total 3\n", "\npktengine_xdp_completed_total 3\n"} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if err := s.stop(t); err != nil {
		t.Fatalf("serve exited with %v\nstderr: %s", err, s.stderr.String())
	}
	// Read once serve has exited: the buffers are written until then.
	if !strings.Contains(s.stderr.String(), "AF_XDP copy mode") {
		t.Errorf("serve's banner does not say AF_XDP copy mode:\n%s", s.stderr.String())
	}
	if !strings.Contains(s.stdout.String(), "3 packets sent") || strings.Contains(s.stdout.String(), "WARNING") {
		t.Errorf("final counters:\n%s", s.stdout.String())
	}
	noXDPProgram(t, b)
}

// noXDPProgram fails the test if h's interface still has an XDP program
// (once serve has exited, it must have taken its program away).
func noXDPProgram(t *testing.T, h *lab.Host) {
	t.Helper()
	if o, err := h.Command(context.Background(), "ip", "link", "show", "dev", h.Iface).CombinedOutput(); err != nil || strings.Contains(string(o), "xdp") {
		t.Errorf("after serve exited: %v\n%s", err, o)
	}
}

// httpGet fetches path from addr with a plain HTTP/1.0 request.
func httpGet(addr, path string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := c.Write([]byte("GET " + path + " HTTP/1.0\r\nHost: x\r\n\r\n")); err != nil {
		return "", err
	}
	var b bytes.Buffer
	_, err = b.ReadFrom(c)
	return b.String(), err
}

func TestServeXDPUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--iface", "veth0", "--xdp-generic"}, "--xdp-generic needs --backend xdp"},
		{[]string{"--iface", "veth0", "--xdp-bind", "copy"}, "--xdp-bind needs --backend xdp"},
		{[]string{"--iface", "veth0", "--backend", "xdp", "--rx-ring", "v3"}, "--rx-ring is for --backend tpacket"},
	} {
		var out, errb bytes.Buffer
		code := run(context.Background(), append([]string{"serve", "--control", ""}, tc.args...), &out, &errb)
		if code != 2 || strings.Count(errb.String(), tc.want) != 1 {
			t.Errorf("serve %q: exit %d, stderr %q; want 2 and %q once", tc.args, code, errb.String(), tc.want)
		}
	}
}

// TestServeXDPErrors: where AF_XDP cannot run, serve exits 1 with the
// cause, and never falls back to TPACKET.
func TestServeXDPErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		lab  *lab.Config
		args []string
		want string
	}{
		{"MTU", &lab.Config{MTU: 9000}, []string{"--backend", "xdp"}, "MTU is too large for single-buffer XDP"},
		{"workers", nil, []string{"--backend", "xdp", "--workers", "2"}, "Config.Workers is 2, but veth0 has 1 receive queue"},
		{"backend", nil, []string{"--backend", "dpdk"}, `--backend "dpdk": want tpacket or xdp`},
		{"bind mode", nil, []string{"--backend", "xdp", "--xdp-bind", "zerocopy"}, "does not offer AF_XDP zero-copy"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := labtest.New(t, tc.lab)
			cmd := pktengineIn(context.Background(), t, l.B(), append([]string{"serve", "--control", "", "--iface", "veth0"}, tc.args...)...)
			var errb bytes.Buffer
			cmd.Stderr = &errb
			err := cmd.Run()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(errb.String(), tc.want) {
				t.Errorf("exit %v, stderr %q; want status 1 and %q", err, errb.String(), tc.want)
			}
		})
	}
}

// TestServeXDPDropsPrivileges: an AF_XDP engine keeps serving, and its
// stat socket keeps reading the program's counters and XDP_STATISTICS,
// after --user has taken every capability; on exit the program goes.
func TestServeXDPDropsPrivileges(t *testing.T) {
	l := labtest.New(t, nil)
	if _, err := user.Lookup("nobody"); err != nil {
		t.Skipf("no user nobody: %v", err)
	}
	b := l.B()
	s := startServe(t, b, "--backend", "xdp", "--echo", "7", "--user", "nobody")
	echoes(t, l, 3, "echo after dropping privileges")
	out := s.stat(t, "--json")
	for _, want := range []string{`"Received": 3`, `"Steered": 3`, `"Backend": "xdp"`} {
		if !strings.Contains(out, want) {
			t.Errorf("stat --json after dropping privileges lacks %s:\n%s", want, out)
		}
	}
	if err := s.stop(t); err != nil {
		t.Fatalf("serve exited with %v\nstderr: %s", err, s.stderr.String())
	}
	noXDPProgram(t, b)
}

// TestServeXDPNotPermitted: without the capabilities XDP needs, serve
// --backend xdp exits 1 and names them.
func TestServeXDPNotPermitted(t *testing.T) {
	l := labtest.New(t, nil)
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skipf("no user nobody: %v", err)
	}
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Skip("setpriv (util-linux) is not installed")
	}
	cmd := pktengineAsNobody(context.Background(), t, l.B(), setpriv, nobody, "serve", "--control", "", "--iface", "veth0", "--backend", "xdp")
	var errb bytes.Buffer
	cmd.Stderr = &errb
	err = cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(errb.String(), "CAP_BPF") {
		t.Errorf("exit %v, stderr %q; want status 1 and CAP_BPF named", err, errb.String())
	}
	t.Log(errb.String())
}
