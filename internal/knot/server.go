//go:build linux

package knot

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/pktengine/pktengine/internal/lab"
)

// Setup describes a Knot DNS server to start.
type Setup struct {
	// Binary is knotd's path; "" looks it up with LookPath.
	Binary string
	// Dir is the server's own directory (it must exist): knot.conf, the
	// copy of the zone file, the run directory and the storage go there.
	Dir string
	// Origin and ZoneFile are the zone to serve.
	Origin, ZoneFile string
	Options
	// Prefix, if not empty, is a command that runs knotd, such as
	// taskset -c 1 (knotd is appended with its arguments).
	Prefix []string
}

// Server is a running knotd.
type Server struct {
	Conf   string // the configuration file
	cmd    *exec.Cmd
	log    lab.Buffer
	exited chan struct{} // closed when knotd has exited, with err set
	err    error
}

// Start writes the configuration and a copy of the zone file into s.Dir
// and starts knotd in h's namespace, in the foreground, logging to a
// buffer (Log). It returns once knotd runs; WaitServing waits until it
// answers.
func Start(h *lab.Host, s *Setup) (*Server, error) {
	bin := s.Binary
	if bin == "" {
		var err error
		if bin, err = LookPath("knotd"); err != nil {
			return nil, err
		}
	}
	for _, d := range []string{"run", "db"} {
		if err := os.MkdirAll(filepath.Join(s.Dir, d), 0o755); err != nil {
			return nil, err
		}
	}
	data, err := os.ReadFile(s.ZoneFile)
	if err != nil {
		return nil, err
	}
	zf := filepath.Join(s.Dir, filepath.Base(s.ZoneFile))
	if err := os.WriteFile(zf, data, 0o644); err != nil {
		return nil, err
	}
	k := &Server{Conf: filepath.Join(s.Dir, "knot.conf"), exited: make(chan struct{})}
	if err := os.WriteFile(k.Conf, []byte(Config(s.Dir, s.Origin, zf, s.Options)), 0o644); err != nil {
		return nil, err
	}
	args := append(append([]string(nil), s.Prefix...), bin, "-c", k.Conf)
	// ip netns exec runs knotd in h's namespace (and in a mount
	// namespace of its own); ip, taskset and knotd exec one another, so
	// the process is knotd's.
	k.cmd = h.Command(context.Background(), args[0], args[1:]...)
	k.cmd.Stdout, k.cmd.Stderr = &k.log, &k.log
	k.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := k.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		k.err = k.cmd.Wait()
		close(k.exited)
	}()
	return k, nil
}

// PID returns knotd's process ID.
func (k *Server) PID() int { return k.cmd.Process.Pid }

// Log returns what knotd has logged so far.
func (k *Server) Log() string { return k.log.String() }

// Exited is closed when knotd has exited; Err then says how.
func (k *Server) Exited() <-chan struct{} { return k.exited }

// Err returns knotd's exit error, once Exited is closed.
func (k *Server) Err() error { return k.err }

// Stop ends knotd with SIGTERM, or SIGKILL if it has not exited after ten
// seconds, and waits for it.
func (k *Server) Stop() error {
	select {
	case <-k.exited:
		return nil
	default:
	}
	k.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-k.exited:
		return nil
	case <-time.After(10 * time.Second):
		k.cmd.Process.Kill()
		<-k.exited
		return errors.New("knot: knotd did not stop within 10s of SIGTERM: killed")
	}
}

// WaitServing waits until knotd answers query (a well-formed query for
// the zone, such as its SOA) at ask, sent from a kernel socket in from,
// with NOERROR and the AA flag, or fails after timeout or if knotd exits.
func (k *Server) WaitServing(from *lab.Host, ask netip.AddrPort, query []byte, timeout time.Duration) error {
	start := time.Now()
	for {
		select {
		case <-k.exited:
			return fmt.Errorf("knot: knotd exited: %v\n%s", k.err, k.Log())
		default:
		}
		resp, err := from.RoundTrip(ask, query, 200*time.Millisecond)
		if err == nil && Answered(query, resp) {
			return nil
		}
		if time.Since(start) > timeout {
			return fmt.Errorf("knot: knotd does not answer at %s after %v (%v):\n%s", ask, timeout, err, k.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
