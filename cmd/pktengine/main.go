// Command pktengine is the one binary of the pktengine packet engine.
//
//	pktengine serve  --iface IF [--addr IP]... [--echo PORT] ...   run the UDP responder
//	pktengine stat   [--json] [--control PATH]                     show a running engine's ports and counters
//	pktengine demo   [--rx-ring v2|v3]                             serve and query echo in a two-namespace lab
//	pktengine filter [-d|-dd|-ddd] [-netmask M] EXPR               compile a tcpdump-style filter
//	pktengine gen    --iface IF --dst ADDR:PORT ...                generate UDP load and measure replies
//	pktengine bench  [...]                                         pktengine against kernel UDP in a lab
//	pktengine nc     --iface IF [--addr ADDR] HOST:PORT            send stdin as a datagram, print the replies
//
// Each subcommand lives in its own file; this one lists them and dispatches.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/pktengine/pktengine/bench"
)

// command is one subcommand: its name, a one-line summary for the usage
// text, and the function that parses its arguments and runs it.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

// commands are the subcommands, in the order of the usage text; each has
// a file of its own.
var commands = []command{
	{"serve", "run the UDP responder (echo, discard, daytime, qotd, chargen) on an interface", runServe},
	{"stat", "show a running engine's ports and counters (netstat -ulp / -su style)", runStat},
	{"demo", "build a two-namespace lab, serve echo in one, talk to it from the other, show stat", runDemo},
	{"filter", "compile a tcpdump-style filter expression to classic BPF", runFilter},
	{"gen", "send UDP load through a TX ring and measure the replies (loss, reordering, latency)", runGen},
	{"bench", "measure pktengine's echo against kernel UDP (RFC 2544) and the generator against trafgen, in a lab", runBench},
	{"nc", "send standard input as a UDP datagram from an engine port and print the replies (netcat -u)", runNC},
}

func main() {
	ctx, stop := signalContext()
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	// The benchmark harness runs its responders and generator as children
	// of this binary under a hidden subcommand that takes no flags.
	if len(args) > 0 && args[0] == bench.ChildCommand {
		return bench.ChildMain(args[1:])
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, args[1:], stdout, stderr)
		var ue usageError
		switch {
		case err == nil:
			return 0
		case errors.As(err, &ue):
			if ue.reason != "" {
				fmt.Fprintf(stderr, "pktengine %s: %s\n", c.name, ue.reason)
			}
			return 2
		default:
			fmt.Fprintf(stderr, "pktengine %s: %v\n", c.name, err)
			return 1
		}
	}
	fmt.Fprintf(stderr, "pktengine: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: pktengine <command> [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "commands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-7s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'pktengine <command> -h' for a command's flags.")
}

// newFlagSet returns a FlagSet that reports errors instead of exiting, with
// a usage line naming the subcommand.
func newFlagSet(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("pktengine "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: pktengine %s %s\n\nflags:\n", name, synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// A usageError is a command line that cannot run: run prints the reason
// (after the usage text, which the subcommand has printed) and exits with
// status 2.
type usageError struct{ reason string }

func (e usageError) Error() string { return "usage: " + e.reason }

// badUsage prints fs's usage text and returns reason as a usageError.
func badUsage(fs *flag.FlagSet, format string, args ...any) error {
	fs.Usage()
	return usageError{fmt.Sprintf(format, args...)}
}

// parseFlagsArgs parses args into fs and leaves the positional arguments in
// fs.Args. An unknown flag, a bad value or -h is a usageError; flag has
// printed why, and the usage text, already.
func parseFlagsArgs(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return usageError{}
	}
	return nil
}

// parseFlags parses args into fs for a command that takes no positional
// arguments.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := parseFlagsArgs(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return badUsage(fs, "unexpected arguments %q", fs.Args())
	}
	return nil
}

// flagSet reports whether the command line set the flag name.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// printJSON writes v to w as indented JSON: the --json output of gen and
// stat.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
