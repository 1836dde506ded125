//go:build linux

package engine

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pktengine/pktengine/internal/labtest"
)

// fanoutHelperEnv makes the test binary act as one engine process of
// TestFanoutGroupsApart.
const fanoutHelperEnv = "PKTENGINE_FANOUT_HELPER_IFACE"

// TestFanoutGroupsApart opens two engines of two workers each on one
// interface, from two processes that have the same pid: each is pid 1 of
// its own PID namespace, as two containers sharing a network namespace
// are. Fanout group IDs belong to the network namespace, so IDs derived
// from the pid collide there, and the second engine's rings would join
// the first's group and take a share of its frames. Each engine's workers
// must share a group of their own.
func TestFanoutGroupsApart(t *testing.T) {
	if iface := os.Getenv(fanoutHelperEnv); iface != "" {
		fanoutHelper(t, iface)
		return
	}
	l := labtest.New(t, nil)
	a := l.A()
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Fatalf("unshare (util-linux) is needed: %v", err)
	}
	// Cancelled after the helpers' cleanups (cleanups run last first),
	// so that it kills only a helper that failed to stop.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	var groups [][]string
	for i := range 2 {
		cmd := a.Command(ctx, "unshare", "--pid", "--fork", os.Args[0], "-test.run=^TestFanoutGroupsApart$", "-test.v")
		cmd.Env = append(os.Environ(), fanoutHelperEnv+"="+a.Iface)
		cmd.Stderr = os.Stderr
		stdin, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// The helper holds its engine open until its stdin closes, so
		// that the second engine opens while the first one's group
		// exists.
		t.Cleanup(func() {
			stdin.Close()
			if err := cmd.Wait(); err != nil {
				t.Errorf("helper %d: %v", i, err)
			}
		})
		g, err := readFanoutGroups(stdout)
		if err != nil {
			t.Fatalf("helper %d: %v", i, err)
		}
		go io.Copy(io.Discard, stdout)
		t.Logf("engine %d: pid %s, workers in fanout groups %v", i, g[0], g[1:])
		groups = append(groups, g)
	}
	for i, g := range groups {
		if g[0] != "1" {
			t.Errorf("helper %d ran as pid %s, not 1: the test does not reproduce the collision", i, g[0])
		}
		if len(g) != 3 || g[1] != g[2] {
			t.Errorf("engine %d: workers in groups %v, want two in one group", i, g[1:])
		}
	}
	if groups[0][1] == groups[1][1] {
		t.Errorf("both engines joined fanout group %s", groups[0][1])
	}
}

// readFanoutGroups reads the helper's report: "fanout pid group group".
func readFanoutGroups(r io.Reader) ([]string, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) > 1 && f[0] == "fanout" {
			return f[1:], nil
		}
	}
	return nil, fmt.Errorf("no report (%v)", sc.Err())
}

// fanoutHelper opens an engine with two workers, reports the fanout group
// of each worker's ring as the kernel has it, and waits for stdin to
// close.
func fanoutHelper(t *testing.T, iface string) {
	ifi, err := net.InterfaceByName(iface)
	if err != nil {
		t.Fatal(err)
	}
	e, err := Open(ifi, &Config{Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	report := []string{"fanout", fmt.Sprint(os.Getpid())}
	for _, w := range e.workers {
		rc, err := w.rx.(*tpacketRX).rx.SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		var v int
		var gerr error
		if err := rc.Control(func(fd uintptr) {
			v, gerr = unix.GetsockoptInt(int(fd), unix.SOL_PACKET, unix.PACKET_FANOUT)
		}); err != nil {
			t.Fatal(err)
		}
		if gerr != nil {
			t.Fatal(gerr)
		}
		report = append(report, fmt.Sprint(v&0xffff))
	}
	fmt.Println(strings.Join(report, " "))
	io.Copy(io.Discard, os.Stdin)
}
