//go:build unix

package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// reportOnUSR1 writes the counters line (see reporter) to w on every
// SIGUSR1 until ctx ends or stop is called. SIGUSR1 stays caught
// afterwards, so that a late one does not end dnsd. The caller sets the
// reporter's engine once it has one.
func reportOnUSR1(ctx context.Context, w io.Writer, st *stats) (r *reporter, stop func()) {
	r = &reporter{st: st, w: w}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGUSR1)
	ctx, cancel := context.WithCancel(ctx)
	wait := reportOnSignal(ctx, r, sigs)
	return r, func() {
		cancel()
		wait()
	}
}
