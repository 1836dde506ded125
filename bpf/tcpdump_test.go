package bpf

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	xbpf "golang.org/x/net/bpf"

	"github.com/pktengine/pktengine/internal/labtest"
	"github.com/pktengine/pktengine/proto"
)

// tcpdumpRun runs tcpdump with a dead Ethernet handle ("-y EN10MB" and no
// interface), as a printer of compiled filters: no privileges, no capture.
func tcpdumpRun(t testing.TB, flag, expr string) (string, error) {
	t.Helper()
	cmd := exec.Command(labtest.NeedTool(t, "tcpdump"), flag, "-y", "EN10MB", expr)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		return "", &tcpdumpError{strings.TrimSpace(stderr.String())}
	}
	return out.String(), nil
}

type tcpdumpError struct{ msg string }

func (e *tcpdumpError) Error() string { return e.msg }

// tcpdumpProgram is tcpdump's compiled program for expr.
func tcpdumpProgram(t testing.TB, expr string) ([]xbpf.RawInstruction, error) {
	t.Helper()
	out, err := tcpdumpRun(t, "-ddd", expr)
	if err != nil {
		return nil, err
	}
	prog, err := parseDDD(strings.NewReader(out))
	if err != nil {
		t.Fatalf("tcpdump -ddd %q: %v\n%s", expr, err, out)
	}
	return prog, nil
}

// etcServices resolves names through /etc/services alone, as tcpdump does,
// for comparisons with tcpdump (proto.DefaultServices adds a built-in table
// under the file).
var etcServices = sync.OnceValue(func() *proto.Services {
	f, err := os.Open("/etc/services")
	if err != nil {
		return nil
	}
	defer f.Close()
	s, _ := proto.ParseServices(f)
	return s
})

// tcpdumpOptions compiles as tcpdump -y EN10MB does: tags in the frame,
// service names from /etc/services.
func tcpdumpOptions() *Options {
	return &Options{VLAN: VLANInPacket, LookupPort: func(name, transport string) (uint16, bool) {
		return etcServices().Port(name, transport)
	}}
}

func formatD(prog []xbpf.RawInstruction) string {
	var b bytes.Buffer
	FormatD(&b, prog)
	return b.String()
}
