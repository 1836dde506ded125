package knot

import (
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestConfig(t *testing.T) {
	for _, c := range []struct {
		name      string
		o         Options
		want, not []string
	}{
		{"udp", Options{Listen: []netip.AddrPort{netip.MustParseAddrPort("198.18.0.2:53"), netip.MustParseAddrPort("[fd00::2]:53")}},
			[]string{"    listen: [ 198.18.0.2@53, fd00::2@53 ]\n", "udp-workers: 1\n", `rundir: "/d/run"`, `storage: "/d/db"`, "  - domain: example.com.\n    file: \"/z/example.com.zone\"\n"},
			[]string{"xdp:"}},
		{"xdp", Options{XDPIface: "veth0", XDPPort: 53},
			[]string{"xdp:\n    listen: [ veth0@53 ]\n", `identity: ""`, `nsid: ""`},
			[]string{"    listen: [ 1"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			conf := Config("/d", "example.com.", "/z/example.com.zone", c.o)
			for _, w := range c.want {
				if !strings.Contains(conf, w) {
					t.Errorf("config lacks %q:\n%s", w, conf)
				}
			}
			for _, n := range c.not {
				if strings.Contains(conf, n) {
					t.Errorf("config has %q:\n%s", n, conf)
				}
			}
		})
	}
}

// TestConfigChecks has Knot's own knotc check a generated configuration,
// where Knot is installed.
func TestConfigChecks(t *testing.T) {
	knotc, err := LookPath("knotc")
	if err != nil {
		t.Skipf("knotc is not installed (scripts/deps.sh installs knot): %v", err)
	}
	dir := t.TempDir()
	zf := filepath.Join(dir, "example.com.zone")
	if err := os.WriteFile(zf, []byte("$ORIGIN example.com.\n$TTL 300\n@ SOA ns hostmaster 1 2 3 4 5\n@ NS ns\nns A 198.18.0.53\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, o := range []Options{{Listen: []netip.AddrPort{netip.MustParseAddrPort("198.18.0.2:53")}}, {XDPIface: "lo", XDPPort: 53}} {
		conf := filepath.Join(dir, "knot.conf")
		if err := os.WriteFile(conf, []byte(Config(dir, "example.com.", zf, o)), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(knotc, "-c", conf, "conf-check").CombinedOutput(); err != nil {
			t.Errorf("knotc conf-check %+v: %v\n%s", o, err, out)
		}
	}
}

func TestAnswered(t *testing.T) {
	q := []byte{0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0}
	ok := []byte{0x12, 0x34, 0x85, 0x00, 0, 1, 0, 1, 0, 0, 0, 0}
	if !Answered(q, ok) {
		t.Error("a NOERROR AA answer with the query's ID is not taken")
	}
	for name, r := range map[string][]byte{
		"other ID":  {0x12, 0x35, 0x85, 0x00, 0, 1, 0, 1, 0, 0, 0, 0},
		"no QR":     {0x12, 0x34, 0x05, 0x00, 0, 1, 0, 1, 0, 0, 0, 0},
		"no AA":     {0x12, 0x34, 0x81, 0x00, 0, 1, 0, 1, 0, 0, 0, 0},
		"REFUSED":   {0x12, 0x34, 0x85, 0x05, 0, 1, 0, 0, 0, 0, 0, 0},
		"too short": {0x12, 0x34, 0x85, 0x00},
	} {
		if Answered(q, r) {
			t.Errorf("%s: taken as an answer", name)
		}
	}
}

func TestLookPath(t *testing.T) {
	if _, err := LookPath("sh"); err != nil {
		t.Error(err)
	}
	if p, err := LookPath("no-such-program-pktengine"); err == nil {
		t.Errorf("found %s", p)
	}
}
