package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/pktengine/pktengine/frame"
	"github.com/pktengine/pktengine/loadgen"
)

// roleDNSGen is the DNS generator child (dns_gen_linux.go).
const roleDNSGen = "dnsgen"

// dnsGenSpec configures the DNS generator child.
type dnsGenSpec struct {
	// Queries is a JSON file of the queries ([]dnsQuery): too many to
	// pass on a command line.
	Queries string         `json:"queries"`
	SrcMAC  frame.MAC      `json:"src_mac"`
	DstMAC  frame.MAC      `json:"dst_mac"`
	Src     netip.Addr     `json:"src"`
	Dst     netip.AddrPort `json:"dst"`
	// CPU is the CPU the sending thread is pinned to.
	CPU int `json:"cpu"`
	// Drain is how long a run waits for the last replies.
	Drain time.Duration `json:"drain_ns"`
}

// dnsGenRunner is what the child serves: one run per request.
type dnsGenRunner interface {
	Run(ctx context.Context, load loadgen.Load) (*loadgen.Summary, error)
	// Settle waits until no reply has come for a while (see dnsGen).
	Settle()
	Close() error
}

// readQueries reads a JSON file of queries.
func readQueries(path string) ([]dnsQuery, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var qs []dnsQuery
	if err := json.Unmarshal(b, &qs); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return qs, nil
}

// childDNSGen runs the DNS generator: "run LOAD" requests, each answered
// with the run's summary, as the echo generator child does, and "settle",
// answered once the server has stopped answering.
func childDNSGen(ctx context.Context, spec *childSpec, c *childIO) error {
	if spec.DNSGen == nil {
		return c.fail(errors.New("no DNS generator config"))
	}
	g, err := openDNSGen(spec.Iface, spec.DNSGen)
	if err != nil {
		return c.fail(err)
	}
	defer g.Close()
	if err := c.reply(&childReply{Ready: true, PID: os.Getpid()}); err != nil {
		return err
	}
	for c.in.Scan() {
		if c.in.Text() == "settle" {
			g.Settle()
			if err := c.reply(&childReply{Ready: true}); err != nil {
				return err
			}
			continue
		}
		req, ok := strings.CutPrefix(c.in.Text(), "run ")
		if !ok {
			c.fail(fmt.Errorf("unknown request %q", c.in.Text()))
			continue
		}
		var load loadgen.Load
		if err := json.Unmarshal([]byte(req), &load); err != nil {
			c.fail(err)
			continue
		}
		s, err := g.Run(ctx, load)
		r := &childReply{Summary: s}
		if err != nil {
			r.Error = err.Error()
			if s == nil {
				r.Summary = &loadgen.Summary{}
			}
		}
		if err := c.reply(r); err != nil {
			return err
		}
	}
	return g.Close()
}
