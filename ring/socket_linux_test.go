package ring_test

import (
	"errors"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/pktengine/pktengine/ring"
	"golang.org/x/sys/unix"
)

// TestPermissionError checks that opening a ring without CAP_NET_RAW
// fails with an error that says so. Run as root, it re-runs itself with
// CAP_NET_RAW dropped from the bounding set (capsh).
func TestPermissionError(t *testing.T) {
	// An interface index that does not exist: even if socket() were
	// allowed, bind fails, so nothing is ever bound in this namespace.
	none := &net.Interface{Index: 0x7fff0000, Name: "none", MTU: 1500}
	if os.Getenv("RING_TEST_NO_NET_RAW") == "1" || !hasNetRaw(t) {
		_, err := ring.NewRX(none, nil)
		if !errors.Is(err, unix.EPERM) {
			t.Fatalf("NewRX without CAP_NET_RAW: %v, want EPERM", err)
		}
		var oe *net.OpError
		if !errors.As(err, &oe) || !strings.Contains(err.Error(), "CAP_NET_RAW") {
			t.Fatalf("error %q (%T) is not a *net.OpError naming CAP_NET_RAW", err, err)
		}
		_, err = ring.NewTransmitter(none, nil)
		if !errors.Is(err, unix.EPERM) || !strings.Contains(err.Error(), "CAP_NET_RAW") {
			t.Fatalf("NewTransmitter without CAP_NET_RAW: %v", err)
		}
		return
	}
	capsh, err := exec.LookPath("capsh")
	if err != nil {
		t.Skip("running with CAP_NET_RAW and no capsh to drop it")
	}
	cmd := exec.Command(capsh, "--drop=cap_net_raw", "--", "-c", `exec "$0" -test.run '^TestPermissionError$' -test.v`, os.Args[0])
	cmd.Env = append(os.Environ(), "RING_TEST_NO_NET_RAW=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestPermissionError") {
		t.Fatalf("helper without CAP_NET_RAW: %v\n%s", err, out)
	}
}

func hasNetRaw(t *testing.T) bool {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		t.Fatal(err)
	}
	return data[0].Effective&(1<<unix.CAP_NET_RAW) != 0
}
