package main

import (
	"context"
	"io"
	"slices"
	"strings"

	"github.com/pktengine/pktengine/bench"
)

// isDNSBench reports whether a bench command line asks for the DNS
// benchmark.
func isDNSBench(args []string) bool {
	return slices.ContainsFunc(args, func(a string) bool {
		return a == "--dns" || a == "-dns" || a == "--dns=true" || a == "-dns=true"
	})
}

// benchDNSArgs is a bench --dns command line, parsed.
type benchDNSArgs struct {
	cfg bench.DNSConfig
	out *outputFlags
}

func parseBenchDNS(args []string, stderr io.Writer) (*benchDNSArgs, error) {
	fs := newFlagSet("bench --dns", "[--demo] [--responders LIST] [--trials N] [--trial D] [--names N] [--dnsd PATH] [--json FILE] [--svg FILE] [--out DIR]", stderr)
	fs.Bool("dns", true, "the DNS benchmark: Knot DNS (kernel UDP, XDP) and examples/dnsd (kernel, conn, inline) side by side")
	demo := fs.Bool("demo", false, "the short run of `make demo`: one round of 200 ms trials, a coarser search, no dnsperf; under a minute")
	responders := fs.String("responders", "", "comma-separated servers to measure (default: all: knot-udp, knot-xdp, dnsd-kernel, dnsd-conn, dnsd-inline)")
	trials := fs.Int("trials", 0, "rounds of every measurement (default 3; --demo 1)")
	trial := fs.Duration("trial", 0, "length of one trial (default 1s; --demo 200ms)")
	loss := fs.Float64("loss", bench.DefaultDNSConfig().LossTolerance, "fraction of queries a trial may leave unanswered and still pass")
	names := fs.Int("names", 0, "hosts in the benchmark zone, each with an A and an AAAA record (default 10000)")
	dnsd := fs.String("dnsd", "", "the dnsd binary (default: dnsd beside this executable, else on $PATH)")
	dnsdEngine := fs.String("dnsd-engine", "", "dnsd's engine flags for its conn and inline modes, e.g. \"--rx-ring v3\" or \"--backend xdp\" (default: dnsd's, TPACKET_V2)")
	knotd := fs.String("knotd", "", "the knotd binary (default: knotd on $PATH or in /usr/sbin)")
	dnsperf := fs.String("dnsperf", "", "the dnsperf binary (default: dnsperf on $PATH)")
	skipDnsperf := fs.Bool("skip-dnsperf", false, "leave out the dnsperf runs")
	out := addOutputFlags(fs, "bench-dns")
	if err := parseFlags(fs, args); err != nil {
		return nil, err
	}
	cfg := bench.DefaultDNSConfig()
	if *demo {
		cfg = bench.DemoDNSConfig()
	}
	cfg.DnsdEngine = strings.Fields(*dnsdEngine)
	if *responders != "" {
		cfg.Responders = strings.Split(*responders, ",")
	}
	if *trials != 0 {
		cfg.Trials = *trials
	}
	if *trial != 0 {
		cfg.TrialDuration = *trial
	}
	cfg.LossTolerance = *loss
	if *names != 0 {
		cfg.Names = *names
	}
	cfg.Dnsd, cfg.Knotd, cfg.Dnsperf = *dnsd, *knotd, *dnsperf
	cfg.SkipDnsperf = cfg.SkipDnsperf || *skipDnsperf
	return &benchDNSArgs{cfg: cfg, out: out}, nil
}

func runBenchDNS(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	a, err := parseBenchDNS(args, stderr)
	if err != nil {
		return err
	}
	rep, err := bench.RunDNS(ctx, &a.cfg, a.out.log(stderr))
	if rep == nil {
		return err
	}
	rep.Command = "pktengine bench " + strings.Join(args, " ")
	if werr := rep.WriteTable(stdout); werr != nil {
		return werr
	}
	if err != nil {
		return err
	}
	return writeReport(stdout, rep, a.out, "")
}
