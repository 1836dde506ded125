//go:build linux

package main

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/pktengine/pktengine/examples/dnsd/internal/dnstest"
	"github.com/pktengine/pktengine/internal/lab"
	"github.com/pktengine/pktengine/internal/labtest"
)

// TestCommand runs dnsd as a program (this test binary, see TestMain) in a
// lab namespace, in each mode: it serves until SIGTERM, then exits 0 and
// logs what it answered; SIGUSR1 makes it print its counters and go on.
func TestCommand(t *testing.T) {
	l := labtest.New(t, nil)
	a, b := l.A(), l.B()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	zoneFile, err := filepath.Abs(testZone)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		mode string
		addr netip.Addr
	}{
		{"kernel", a.IPv4.Addr()},
		{"inline", netip.MustParseAddr("198.18.0.12")},
		{"conn", netip.MustParseAddr("198.18.0.13")},
	} {
		t.Run(c.mode, func(t *testing.T) {
			var out lab.Buffer
			cmd := a.Command(t.Context(), self, "--mode", c.mode, "--iface", a.Iface, "--addr", c.addr.String(), "--port", "5353", "--zone", zoneFile)
			cmd.Env = append(os.Environ(), "DNSD_TEST_AS_DNSD=1")
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			defer func() {
				if cmd.ProcessState == nil {
					cmd.Process.Kill()
					<-done
				}
			}()

			dst := netip.AddrPortFrom(c.addr, 5353)
			q := dnstest.Query(0x4242, "WwW.example.com.", dns.TypeA, true, 1232)
			var resp []byte
			for start := time.Now(); resp == nil; {
				select {
				case err := <-done:
					t.Fatalf("dnsd exited: %v\n%s", err, out.String())
				default:
				}
				resp, _ = askOnce(b, dst, q, 200*time.Millisecond)
				if resp == nil && time.Since(start) > 20*time.Second {
					t.Fatalf("dnsd does not answer:\n%s", out.String())
				}
			}
			var m dns.Msg
			if err := m.Unpack(resp); err != nil || len(m.Answer) != 2 || m.Question[0].Name != "WwW.example.com." || !m.Authoritative {
				t.Fatalf("answer %v (%v)", &m, err)
			}

			// SIGUSR1: a line of counters on stdout, dnsd goes on.
			if err := cmd.Process.Signal(syscall.SIGUSR1); err != nil {
				t.Fatal(err)
			}
			for start := time.Now(); !strings.Contains(out.String(), `"answered":`); time.Sleep(10 * time.Millisecond) {
				if time.Since(start) > 10*time.Second {
					t.Fatalf("no counters line 10 s after SIGUSR1:\n%s", out.String())
				}
			}
			if _, err := askOnce(b, dst, q, 5*time.Second); err != nil {
				t.Fatalf("after SIGUSR1: %v\n%s", err, out.String())
			}
			if engine := strings.Contains(out.String(), `"ring_drops":`); engine != (c.mode != "kernel") {
				t.Errorf("%s mode: the engine's drops in the counters: %v\n%s", c.mode, engine, out.String())
			}

			if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("dnsd after SIGTERM: %v\n%s", err, out.String())
				}
			case <-time.After(20 * time.Second):
				t.Fatalf("dnsd still running 20 s after SIGTERM:\n%s", out.String())
			}
			log := out.String()
			if !strings.Contains(log, "msg=stopped") || strings.Contains(log, " answer=0 ") {
				t.Errorf("log after SIGTERM:\n%s", log)
			}
		})
	}
}
