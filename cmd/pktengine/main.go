// Command pktengine is the one binary of the pktengine packet engine.
//
//	pktengine serve  --iface IF [--addr IP]... [--echo PORT] ...   run the UDP responder
//	pktengine stat   [--json] [--control PATH]                     show a running engine's ports and counters
//	pktengine filter [-d|-dd|-ddd] [-netmask M] EXPR               compile a tcpdump-style filter
//	pktengine gen    --iface IF --dst ADDR:PORT ...                generate UDP load and measure replies
//	pktengine bench  [...]                                         pktengine against kernel UDP in a lab
//
// Each subcommand lives in its own file; this one only dispatches.
package main

import (
	"context"
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

var commands []command

// register adds a subcommand; each subcommand's file calls it from init.
func register(c command) { commands = append(commands, c) }

// errUsage marks an error already explained by a usage message: main exits
// with status 2 without printing it again.
var errUsage = errors.New("usage")

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
		switch {
		case err == nil:
			return 0
		case errors.Is(err, errUsage), errors.Is(err, flag.ErrHelp):
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
