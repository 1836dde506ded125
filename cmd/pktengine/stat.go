package main

import (
	"context"
	"io"
	"time"

	"github.com/pktengine/pktengine/engine/statsock"
	"github.com/pktengine/pktengine/metrics"
)

func runStat(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("stat", "[--json] [--control PATH]", stderr)
	asJSON := fs.Bool("json", false, "print the status as JSON")
	path := fs.String("control", defaultStatSocket(), "the engine's stat socket `PATH`")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	st, err := statsock.Query(ctx, *path)
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(stdout, st)
	}
	return metrics.WriteStatus(stdout, st)
}
