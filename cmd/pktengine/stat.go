package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/pktengine/pktengine/engine/control"
)

func init() {
	register(command{
		name:    "stat",
		summary: "show a running engine's ports and counters (netstat -ulp / -su style)",
		run:     runStat,
	})
}

func runStat(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("stat", "[--json] [--control PATH]", stderr)
	asJSON := fs.Bool("json", false, "print the status as JSON")
	path := fs.String("control", defaultControlPath(), "the engine's control socket `PATH`")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return fmt.Errorf("unexpected arguments %q: %w", fs.Args(), errUsage)
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	st, err := control.Query(ctx, *path)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	return writeStatus(stdout, st)
}
