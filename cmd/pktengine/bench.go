package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/pktengine/pktengine/bench"
)

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if isDNSBench(args) {
		return runBenchDNS(ctx, args, stdout, stderr)
	}
	fs := newFlagSet("bench", "[--dns] [--demo] [--responders LIST] [--trials N] [--trial D] [--json FILE] [--svg FILE] [--out DIR]", stderr)
	fs.Bool("dns", false, "the DNS benchmark instead: Knot DNS against examples/dnsd (see pktengine bench --dns -h)")
	demo := fs.Bool("demo", false, "the short run of `make demo`: 200 ms trials and a coarser search, under a minute")
	responders := fs.String("responders", "", "comma-separated responders to measure (default: all: kernel, kernel-batch, engine-v2, engine-v3, engine-xdp)")
	trials := fs.Int("trials", 0, "rounds of every measurement (default 3)")
	trial := fs.Duration("trial", 0, "length of one trial (default 1s; --demo 200ms)")
	loss := fs.Float64("loss", 0, "fraction of frames a trial may lose and still pass (RFC 2544: 0)")
	size := fs.Int("size", 0, "Ethernet frame size with FCS (default 64)")
	ipv6 := fs.Bool("ipv6", false, "send IPv6 instead of IPv4")
	rps := fs.Bool("rps", false, "steer each side's veth receive processing to its own CPU (RPS) instead of the sending CPU")
	skipGen := fs.Bool("skip-generators", false, "leave out the comparison of the generators (pktengine gen on each backend, trafgen)")
	generator := fs.String("generator", "", "pktengine gen's backend in the responder runs: tpacket, xdp or live (default: the fastest in the comparison)")
	out := addOutputFlags(fs, "bench")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg := bench.DefaultConfig()
	if *demo {
		cfg = bench.DemoConfig()
	}
	if *responders != "" {
		cfg.Responders = strings.Split(*responders, ",")
	}
	if *trials != 0 {
		cfg.Trials = *trials
	}
	if *trial != 0 {
		cfg.TrialDuration = *trial
	}
	if *size != 0 {
		cfg.Size = *size
	}
	cfg.LossTolerance, cfg.IPv6, cfg.SkipGenerators, cfg.RPS = *loss, *ipv6, *skipGen, *rps
	cfg.Generator = *generator

	rep, err := bench.Run(ctx, &cfg, out.log(stderr))
	if err != nil {
		return err
	}
	rep.Command = "pktengine bench " + strings.Join(args, " ")
	if err := rep.WriteTable(stdout); err != nil {
		return err
	}
	return writeReport(stdout, rep, out, "bench-"+time.Now().UTC().Format("2006-01-02T1504"))
}

// outputFlags are the flags bench and bench --dns share: where the report
// goes besides the table on stdout, and -q.
type outputFlags struct {
	jsonPath, svgPath, outDir string
	quiet                     bool
}

// addOutputFlags adds --json, --svg, --out (which names its files
// prefix-<date>) and -q to fs.
func addOutputFlags(fs *flag.FlagSet, prefix string) *outputFlags {
	o := &outputFlags{}
	fs.StringVar(&o.jsonPath, "json", "", "also write the report as JSON to `FILE`")
	fs.StringVar(&o.svgPath, "svg", "", "also write the plot as SVG to `FILE`")
	fs.StringVar(&o.outDir, "out", "", "write "+prefix+"-<date>.json and "+prefix+"-<date>.svg into `DIR`")
	fs.BoolVar(&o.quiet, "q", false, "no progress lines on stderr")
	return o
}

// log returns where the progress lines go: stderr, or nowhere with -q.
func (o *outputFlags) log(stderr io.Writer) io.Writer {
	if o.quiet {
		return nil
	}
	return stderr
}

// report is a bench.Report or a bench.DNSReport.
type report interface {
	WriteJSON(io.Writer) error
	WriteSVG(io.Writer) error
	Save(dir, name string) (jsonPath, svgPath string, err error)
}

// writeReport writes rep as the flags --json, --svg and --out ask: as JSON
// to o.jsonPath and as SVG to o.svgPath unless they are empty, and with
// Save into o.outDir under name unless it is empty, saying so on stdout.
func writeReport(stdout io.Writer, rep report, o *outputFlags, name string) error {
	write := func(path string, fn func(io.Writer) error) error {
		if path == "" {
			return nil
		}
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		if err := fn(f); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	}
	if err := write(o.jsonPath, rep.WriteJSON); err != nil {
		return err
	}
	if err := write(o.svgPath, rep.WriteSVG); err != nil {
		return err
	}
	if o.outDir != "" {
		j, s, err := rep.Save(o.outDir, name)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "\nwrote %s and %s\n", filepath.Clean(j), filepath.Clean(s))
	}
	return nil
}
