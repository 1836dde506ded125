package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/pktengine/pktengine/internal/lab"
	"github.com/pktengine/pktengine/internal/labtest"
)

// server is a `pktengine serve` child running in a lab's host B.
type server struct {
	cmd    *exec.Cmd
	sock   string
	stdout bytes.Buffer
	stderr bytes.Buffer
	exited chan error
}

// startServe runs `pktengine serve` (this test binary acting as the
// command) in h with args plus a stat socket, and waits until it answers.
func startServe(t *testing.T, h *lab.Host, args ...string) *server {
	t.Helper()
	return startServeWith(t, h, nil, args...)
}

// startServeWith is startServe with setup, if not nil, applied to the
// command before it starts.
func startServeWith(t *testing.T, h *lab.Host, setup func(*exec.Cmd), args ...string) *server {
	t.Helper()
	s := &server{sock: filepath.Join(t.TempDir(), "stat.sock"), exited: make(chan error, 1)}
	// The socket directory must be reachable after --user drops root.
	os.Chmod(filepath.Dir(s.sock), 0o777)
	s.cmd = pktengineIn(context.Background(), t, h, append([]string{"serve", "--iface", h.Iface, "--control", s.sock}, args...)...)
	s.cmd.Stdout, s.cmd.Stderr = &s.stdout, &s.stderr
	if setup != nil {
		setup(s.cmd)
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.exited <- s.cmd.Wait() }()
	t.Cleanup(func() {
		if s.cmd.ProcessState == nil {
			s.cmd.Process.Kill()
			<-s.exited
		}
	})
	if err := waitStatSocket(context.Background(), s.sock, s.exited); err != nil {
		t.Fatalf("%v\nstderr: %s", err, s.stderr.String())
	}
	return s
}

// stop sends SIGTERM and returns the exit error.
func (s *server) stop(t *testing.T) error {
	t.Helper()
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-s.exited:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not exit within 10s of SIGTERM")
		return nil
	}
}

// stat runs `pktengine stat args...` against s's stat socket and returns
// what it printed; it fails the test unless stat exits 0.
func (s *server) stat(t *testing.T, args ...string) string {
	t.Helper()
	cmd := append([]string{"stat"}, args...)
	var out, errb bytes.Buffer
	if code := run(context.Background(), append(cmd, "--control", s.sock), &out, &errb); code != 0 {
		t.Fatalf("%s: exit %d: %s", strings.Join(cmd, " "), code, errb.String())
	}
	return out.String()
}

// echoes sends "TEST" to the echo port (7) on l's host B from host A n
// times, one at a time, and fails the test (saying what, "echo" or a
// longer name of the step) unless every one comes back.
func echoes(t *testing.T, l *lab.Lab, n int, what string) {
	t.Helper()
	for range n {
		if got, err := labtest.RoundTrip(t, l.A(), netip.AddrPortFrom(l.B().IPv4.Addr(), 7), "TEST"); err != nil || got != "TEST" {
			t.Fatalf("%s: %q, %v", what, got, err)
		}
	}
}

func TestServeEchoAndFinalCounters(t *testing.T) {
	l := labtest.New(t, nil)
	pcapFile := filepath.Join(t.TempDir(), "rx.pcap")
	s := startServe(t, l.B(), "--echo", "7", "--pcap", pcapFile)
	echoes(t, l, 3, "echo")
	if err := s.stop(t); err != nil {
		t.Fatalf("serve exited with %v\nstderr: %s", err, s.stderr.String())
	}
	out := s.stdout.String()
	if !strings.Contains(out, "3 packets received") || !strings.Contains(out, "3 packets sent") {
		t.Errorf("final counters do not show the 3 datagrams:\n%s", out)
	}
	if strings.Contains(out, "WARNING") {
		t.Errorf("final counters do not add up:\n%s", out)
	}

	// The capture holds the three requests, readable by tshark.
	got, err := exec.Command(labtest.NeedTool(t, "tshark"), "-r", pcapFile, "-Y", "udp.dstport == 7", "-T", "fields", "-e", "udp.payload").Output()
	if err != nil {
		t.Fatalf("tshark: %v", err)
	}
	if n := strings.Count(string(got), "54455354"); n != 3 { // "TEST"
		t.Errorf("tshark found %d requests in the capture, want 3:\n%s", n, got)
	}
}

// TestServeStatJSONAndMetrics reads a running engine through both of its
// windows: the stat socket (stat, stat --json) and the metrics endpoint.
func TestServeStatJSONAndMetrics(t *testing.T) {
	l := labtest.New(t, nil)
	s := startServe(t, l.B(), "--addr", "198.18.0.20/24", "--echo", "echo", "--chargen", "19", "--metrics", "127.0.0.1:9477")
	if got, err := labtest.RoundTrip(t, l.A(), netip.MustParseAddrPort("198.18.0.20:7"), "TEST"); err != nil || got != "TEST" {
		t.Fatalf("echo: %q, %v", got, err)
	}

	out := s.stat(t, "--json")
	for _, want := range []string{`"Service": "echo"`, `"Service": "chargen"`, `"InDatagrams": 1`, `"Owned": true`} {
		if !strings.Contains(out, want) {
			t.Errorf("stat --json lacks %s:\n%s", want, out)
		}
	}
	out = s.stat(t)
	for _, want := range []string{"Local Address", "*:7", "echo", "*:19", "chargen", "Udp:", "1 packets received"} {
		if !strings.Contains(out, want) {
			t.Errorf("stat lacks %q:\n%s", want, out)
		}
	}

	// The metrics endpoint listens on B's loopback. What it serves parses
	// with the client library's own text parser: the engine's series, the
	// Go runtime's and the process's, the outcomes adding up to the frames.
	var contentType, body string
	err := l.B().Do(func() error {
		c, err := net.DialTimeout("tcp", "127.0.0.1:9477", 2*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(3 * time.Second))
		fmt.Fprintf(c, "GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		contentType, body = resp.Header.Get("Content-Type"), string(b)
		return err
	})
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	if !strings.HasPrefix(contentType, "text/plain; version=0.0.4") {
		t.Errorf("Content-Type %q", contentType)
	}
	parser := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("metrics do not parse: %v\n%s", err, body)
	}
	for _, name := range []string{"pktengine_frames_total", "go_goroutines", "process_open_fds"} {
		if fams[name] == nil {
			t.Errorf("metrics lack %s", name)
		}
	}
	var outcomes float64
	for _, m := range fams["pktengine_frame_outcomes_total"].GetMetric() {
		outcomes += m.GetCounter().GetValue()
	}
	if frames := fams["pktengine_frames_total"].GetMetric()[0].GetCounter().GetValue(); frames < 1 || outcomes != frames {
		t.Errorf("%v frames, outcomes add up to %v", frames, outcomes)
	}
	for _, want := range []string{
		"\npktengine_udp_in_datagrams_total 1\n",
		`pktengine_port_in_datagrams_total{local="*:7",service="echo"} 1`,
		"# TYPE pktengine_frames_total counter",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q:\n%s", want, body)
		}
	}
	if err := s.stop(t); err != nil {
		t.Fatalf("serve exited with %v", err)
	}
}

// TestServeJoinAndVLAN: with --join the services' ports join the groups:
// their MAC addresses are on the interface's list while serve runs and
// gone after, the datagrams A's kernel sends to them arrive, and stat
// lists the groups. With --vlan, stat names the VLAN served.
func TestServeJoinAndVLAN(t *testing.T) {
	l := labtest.New(t, nil)
	a, b := l.A(), l.B()
	g4, g6 := netip.MustParseAddr("239.1.2.3"), netip.MustParseAddr("ff15::1234")
	s := startServe(t, b, "--addr", "198.18.0.20/24", "--addr", "fd00::20/64", "--discard", "9", "--join", g4.String(), "--join", g6.String())
	maddr := func() string { return labtest.Run(t, b, "ip", "maddr", "show", "dev", b.Iface) }
	macs := []string{"01:00:5e:01:02:03", "33:33:00:00:12:34"}
	for _, m := range macs {
		if !strings.Contains(maddr(), m) {
			t.Errorf("%s is not on the interface's list:\n%s", m, maddr())
		}
	}
	labtest.Run(t, a, "ip", "route", "replace", "224.0.0.0/4", "dev", a.Iface)
	for _, g := range []netip.Addr{g4, g6} {
		src := a.IPv4.Addr()
		if g.Is6() {
			src = a.IPv6.Addr()
		}
		err := a.Do(func() error {
			c, err := net.ListenUDP(lab.UDPNetwork(g), net.UDPAddrFromAddrPort(netip.AddrPortFrom(src, 0)))
			if err != nil {
				return err
			}
			defer c.Close()
			dst := net.UDPAddrFromAddrPort(netip.AddrPortFrom(g, 9))
			if g.Is6() {
				dst.Zone = a.Iface // IPv4 takes the route below
			}
			_, err = c.WriteToUDP([]byte("to the group"), dst)
			return err
		})
		if err != nil {
			t.Fatalf("sending to %v: %v", g, err)
		}
	}
	var out string
	deadline := time.Now().Add(5 * time.Second)
	for {
		out = s.stat(t)
		if strings.Contains(out, "2 packets received") || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, want := range []string{"2 packets received", "\nGroup ", g4.String(), g6.String(), "multicast: "} {
		if !strings.Contains(out, want) {
			t.Errorf("stat lacks %q:\n%s", want, out)
		}
	}
	if err := s.stop(t); err != nil {
		t.Fatalf("serve exited with %v\nstderr: %s", err, s.stderr.String())
	}
	for _, m := range macs {
		if strings.Contains(maddr(), m) {
			t.Errorf("%s is still on the interface's list after serve ended:\n%s", m, maddr())
		}
	}

	s = startServe(t, b, "--vlan", "100", "--echo", "7")
	if out := s.stat(t); !strings.Contains(out, "; VLAN 100") {
		t.Errorf("stat does not name the VLAN:\n%s", out)
	}
	if err := s.stop(t); err != nil {
		t.Fatalf("serve --vlan exited with %v\nstderr: %s", err, s.stderr.String())
	}
	if !strings.Contains(s.stderr.String(), "; VLAN 100") {
		t.Errorf("serve's start line does not name the VLAN: %s", s.stderr.String())
	}
}

// TestServeDropsPrivileges: with --user the engine keeps serving after it
// has switched to an unprivileged user.
func TestServeDropsPrivileges(t *testing.T) {
	l := labtest.New(t, nil)
	u, err := user.Lookup("nobody")
	if err != nil {
		t.Skipf("no user nobody: %v", err)
	}
	// serve starts as root with supplementary groups (0 and 27) that
	// --user must take away.
	s := startServeWith(t, l.B(), func(cmd *exec.Cmd) {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 0, Gid: 0, Groups: []uint32{0, 27}}}
	}, "--echo", "7", "--user", "nobody")
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", servePID(t, s)))
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string][]string{}
	for _, line := range strings.Split(string(status), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			ids[k] = strings.Fields(v)
		}
	}
	if f := ids["Uid"]; len(f) != 4 || f[0] != u.Uid || f[1] != u.Uid || f[2] != u.Uid {
		t.Fatalf("engine still runs with uids %q, want %s everywhere", f, u.Uid)
	}
	if f := ids["Gid"]; len(f) != 4 || f[0] != u.Gid || f[1] != u.Gid || f[2] != u.Gid {
		t.Fatalf("engine still runs with gids %q, want %s everywhere", f, u.Gid)
	}
	// Only nobody's primary group is left.
	if f := ids["Groups"]; len(f) != 1 || f[0] != u.Gid {
		t.Fatalf("engine keeps supplementary groups %q, want only %s", f, u.Gid)
	}
	echoes(t, l, 3, "echo after dropping privileges")
	if err := s.stop(t); err != nil {
		t.Fatalf("serve exited with %v\nstderr: %s", err, s.stderr.String())
	}
}

// servePID finds the engine process: `ip netns exec` execs the program, so
// the child's PID is the engine's.
func servePID(t *testing.T, s *server) int { return s.cmd.Process.Pid }

// TestServeUsage: flags that cannot do anything are usage errors (exit 2),
// found before serve touches the network.
func TestServeUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--echo", "7"}, "--iface is required"},
		{[]string{"--iface", "veth0", "extra"}, `unexpected arguments ["extra"]`},
		// serve makes only inline services, which have no queue.
		{[]string{"--iface", "veth0", "--queue", "64"}, "flag provided but not defined: -queue"},
		{[]string{"--iface", "veth0", "--pcap-dropped"}, "--pcap-dropped needs --pcap FILE"},
		{[]string{"--iface", "veth0", "--vlan", "4095"}, "--vlan 4095: want 1-4094"},
		{[]string{"--iface", "veth0", "--join", "198.18.0.1"}, `"198.18.0.1" is not a multicast group address`},
	} {
		var out, errb bytes.Buffer
		code := run(context.Background(), append([]string{"serve", "--control", ""}, tc.args...), &out, &errb)
		if code != 2 || strings.Count(errb.String(), tc.want) != 1 || !strings.Contains(errb.String(), "usage: pktengine serve") {
			t.Errorf("serve %q: exit %d, stderr %q; want 2, the usage text and %q once", tc.args, code, errb.String(), tc.want)
		}
	}
}

func TestServeErrors(t *testing.T) {
	l := labtest.New(t, nil)
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skipf("no user nobody: %v", err)
	}
	for _, tc := range []struct {
		name   string
		args   []string
		asUser bool
		want   string
	}{
		{"no such interface", []string{"--iface", "nosuch0"}, false, `no such interface "nosuch0"`},
		{"bad filter", []string{"--iface", "veth0", "--filter", "udp and ("}, false, "column"},
		{"port in use", []string{"--iface", "veth0", "--echo", "7", "--discard", "7"}, false, "address already in use"},
		{"unknown service name", []string{"--iface", "veth0", "--echo", "nosuchservice"}, false, "nosuchservice"},
		{"not permitted", []string{"--iface", "veth0"}, true, "CAP_NET_RAW"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"serve", "--control", ""}, tc.args...)
			cmd := pktengineIn(context.Background(), t, l.B(), args...)
			if tc.asUser {
				cmd = pktengineAsNobody(context.Background(), t, l.B(), labtest.NeedTool(t, "setpriv"), nobody, args...)
			}
			var errb bytes.Buffer
			cmd.Stderr = &errb
			done := make(chan error, 1)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			go func() { done <- cmd.Wait() }()
			select {
			case err = <-done:
			case <-time.After(10 * time.Second):
				cmd.Process.Kill()
				t.Fatalf("serve kept running; stderr: %s", errb.String())
			}
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 1 {
				t.Fatalf("exit: %v, want status 1; stderr: %s", err, errb.String())
			}
			if !strings.Contains(errb.String(), tc.want) {
				t.Errorf("stderr %q does not mention %q", errb.String(), tc.want)
			}
		})
	}
}

// pktengineAsNobody is pktengineIn for a user without privileges: it
// enters h's namespace as root, then becomes nobody with no capabilities
// left (setpriv, util-linux, at the path setpriv) and runs the command
// from a copy of this test binary that nobody may execute.
func pktengineAsNobody(ctx context.Context, t *testing.T, h *lab.Host, setpriv string, nobody *user.User, args ...string) *exec.Cmd {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := h.Command(ctx, setpriv, append([]string{
		"--reuid=" + nobody.Uid, "--regid=" + nobody.Gid, "--clear-groups", "--inh-caps=-all",
		copyExecutable(t, self)}, args...)...)
	cmd.Env = append(os.Environ(), beMain+"=1")
	return cmd
}

// copyExecutable copies the test binary into a directory every user may
// read, for running it as another user.
func copyExecutable(t *testing.T, path string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "pktengine-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, "pktengine")
	if err := os.WriteFile(dst, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return dst
}

// TestServeExitsWhenTheLinkGoes: serve ends with status 1 and a reason when
// its engine stops by itself — the link going down under
// --on-link-down=fail, or the interface being removed — and still prints
// its final counters.
func TestServeExitsWhenTheLinkGoes(t *testing.T) {
	for _, tc := range []struct {
		name   string
		policy string
		action []string
		want   string
	}{
		{"down with fail", "fail", []string{"ip", "link", "set", "veth0", "down"}, "network is down"},
		{"deleted", "resume", []string{"ip", "link", "del", "veth0"}, "no such device"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := labtest.New(t, nil)
			s := startServe(t, l.B(), "--echo", "7", "--on-link-down", tc.policy)
			if got, err := labtest.RoundTrip(t, l.A(), netip.AddrPortFrom(l.B().IPv4.Addr(), 7), "TEST"); err != nil || got != "TEST" {
				t.Fatalf("echo: %q, %v", got, err)
			}
			labtest.Run(t, l.B(), tc.action[0], tc.action[1:]...)
			var err error
			select {
			case err = <-s.exited:
			case <-time.After(10 * time.Second):
				t.Fatalf("serve still running 10s after %v", tc.action)
			}
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 1 {
				t.Fatalf("exit: %v, want status 1; stderr: %s", err, s.stderr.String())
			}
			if !strings.Contains(s.stderr.String(), tc.want) {
				t.Errorf("stderr does not say %q:\n%s", tc.want, s.stderr.String())
			}
			if !strings.Contains(s.stdout.String(), "1 packets received") {
				t.Errorf("final counters missing:\n%s", s.stdout.String())
			}
		})
	}
}
