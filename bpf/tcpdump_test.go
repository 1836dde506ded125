package bpf

import (
	"bytes"
	"net/netip"
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
// Answers are cached for the test binary's life.
func tcpdumpRun(t testing.TB, flag, expr string) (string, error) {
	t.Helper()
	path := labtest.NeedTool(t, "tcpdump")
	key := flag + "\x00" + expr
	if r, ok := tcpdumpCache.Load(key); ok {
		r := r.(tcpdumpResult)
		return r.out, r.err
	}
	cmd := exec.Command(path, flag, "-y", "EN10MB", "--", expr)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	var r tcpdumpResult
	if err := cmd.Run(); err != nil {
		r.err = &tcpdumpError{strings.TrimSpace(stderr.String())}
	} else {
		r.out = out.String()
	}
	tcpdumpCache.Store(key, r)
	return r.out, r.err
}

type tcpdumpResult struct {
	out string
	err error
}

var tcpdumpCache sync.Map

// tcpdumpPrefetch runs tcpdump for many expressions at once (each run is
// a process start, some 20 ms), filling the cache.
func tcpdumpPrefetch(t testing.TB, flag string, exprs []string) {
	t.Helper()
	labtest.NeedTool(t, "tcpdump")
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for _, e := range exprs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			tcpdumpRun(t, flag, e)
		}()
	}
	wg.Wait()
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
// service names from /etc/services, and the netmask 0 that tcpdump uses
// without an interface.
func tcpdumpOptions() *Options {
	return &Options{VLAN: VLANInPacket, Netmask: netip.IPv4Unspecified(), LookupPort: func(name, transport string) (uint16, bool) {
		return etcServices().Port(name, transport)
	}}
}

func formatD(prog []xbpf.RawInstruction) string {
	var b bytes.Buffer
	FormatD(&b, prog)
	return b.String()
}
