package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/pktengine/pktengine/engine/statsock"
	"github.com/pktengine/pktengine/internal/lab"
	"github.com/pktengine/pktengine/metrics"
)

// The demo's engine owns addresses the kernel does not have, so the client
// reaches it only through the engine's own ARP and NDP answers.
var (
	demoAddr4 = netip.MustParsePrefix("198.18.0.10/24")
	demoAddr6 = netip.MustParsePrefix("fd00::10/64")
)

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("demo", "[--rx-ring v2|v3]", stderr)
	rxRing := fs.String("rx-ring", "v2", "receive ring version for the engine: v2 or v3")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := lab.CheckPrivileges(); err != nil {
		return fmt.Errorf("the demo builds network namespaces: %w", err)
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}

	l, err := lab.Create(nil)
	if err != nil {
		return err
	}
	defer l.Close()
	client, server := l.A(), l.B()
	fmt.Fprintf(stdout, "lab: namespaces %s (client, %s) and %s (engine, %s) joined by veth\n",
		client.Name, client.IPv4.Addr(), server.Name, server.IPv4.Addr())

	dir, err := os.MkdirTemp("", "pktengine-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "stat.sock")

	serveArgs := []string{"serve", "--iface", server.Iface,
		"--addr", demoAddr4.String(), "--addr", demoAddr6.String(),
		"--echo", "echo", "--discard", "discard", "--daytime", "daytime", "--qotd", "qotd", "--chargen", "chargen",
		"--rx-ring", *rxRing, "--control", sock}
	fmt.Fprintf(stdout, "engine: ip netns exec %s pktengine %s\n", server.Name, joinArgs(serveArgs))
	cmd := server.Command(context.Background(), self, serveArgs...)
	// The engine prints its final counters on exit; the demo has shown
	// them through stat already, so keep only what the engine says on
	// stderr.
	var final strings.Builder
	cmd.Stdout, cmd.Stderr = &final, stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		if cmd.ProcessState == nil {
			cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(5 * time.Second):
				cmd.Process.Kill()
				<-exited
			}
		}
	}()
	if err := waitStatSocket(ctx, sock, exited); err != nil {
		return err
	}

	fmt.Fprintln(stdout, "\nclient: a kernel UDP socket (Go's net package) in the client namespace")
	for _, step := range []struct {
		what   string
		to     netip.AddrPort
		send   string
		expect string // "echo", "any" or "refused"
	}{
		{"echo over IPv4", netip.AddrPortFrom(demoAddr4.Addr(), 7), "TEST", "echo"},
		{"echo over IPv6", netip.AddrPortFrom(demoAddr6.Addr(), 7), "TEST", "echo"},
		{"daytime", netip.AddrPortFrom(demoAddr4.Addr(), 13), "", "any"},
		{"qotd", netip.AddrPortFrom(demoAddr6.Addr(), 17), "", "any"},
		{"a closed port", netip.AddrPortFrom(demoAddr4.Addr(), 4000), "hello?", "refused"},
		{"a closed port over IPv6", netip.AddrPortFrom(demoAddr6.Addr(), 4000), "hello?", "refused"},
	} {
		// A closed port shows up as ECONNREFUSED, which the kernel
		// reports on the round trip's connected socket once the ICMP
		// error arrives.
		answer, err := client.RoundTrip(step.to, []byte(step.send), 3*time.Second)
		got := string(answer)
		switch {
		case step.expect == "refused" && errors.Is(err, syscall.ECONNREFUSED):
			fmt.Fprintf(stdout, "  %-26s %-18s -> connection refused (ICMP port unreachable from the engine)\n", step.what, step.to)
		case err != nil:
			return fmt.Errorf("%s to %s: %w", step.what, step.to, err)
		case step.expect == "echo" && got != step.send:
			return fmt.Errorf("%s to %s: sent %q, got %q back", step.what, step.to, step.send, got)
		case step.expect == "refused":
			return fmt.Errorf("%s to %s: got %q, want connection refused", step.what, step.to, got)
		default:
			fmt.Fprintf(stdout, "  %-26s %-18s -> %q\n", step.what, step.to, trim(got, 60))
		}
	}

	fmt.Fprintf(stdout, "\n$ pktengine stat --control %s\n", sock)
	st, err := statsock.Query(ctx, sock)
	if err != nil {
		return err
	}
	if err := metrics.WriteStatus(stdout, st); err != nil {
		return err
	}

	fmt.Fprintln(stdout, "\nengine: SIGTERM; it prints its final counters and exits")
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		if err != nil {
			return fmt.Errorf("engine exited: %w\n%s", err, final.String())
		}
		fmt.Fprintf(stdout, "engine: exited cleanly after printing its final counters (%d lines)\n", strings.Count(final.String(), "\n"))
	case <-time.After(10 * time.Second):
		return errors.New("engine did not exit within 10s of SIGTERM")
	}
	fmt.Fprintln(stdout, "lab: removed")
	return nil
}

// waitStatSocket waits until the engine answers on its stat socket.
func waitStatSocket(ctx context.Context, sock string, exited <-chan error) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		qctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		_, err := statsock.Query(qctx, sock)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case err := <-exited:
			return fmt.Errorf("engine exited before it was ready: %v", err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("engine not ready after 10s: %w", err)
		}
	}
}

func trim(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

func joinArgs(a []string) string { return strings.Join(a, " ") }
