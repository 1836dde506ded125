package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/pktengine/pktengine/engine"
	"github.com/pktengine/pktengine/engine/statsock"
	"github.com/pktengine/pktengine/metrics"
)

// defaultStatSocket is the stat socket serve listens on and stat asks:
// PKTENGINE_CONTROL if set, else statsock.DefaultPath.
func defaultStatSocket() string {
	if p := os.Getenv("PKTENGINE_CONTROL"); p != "" {
		return p
	}
	return statsock.DefaultPath
}

// startVisibility starts the stat socket and the metrics endpoint that
// f asks for, and returns a function that stops them.
func startVisibility(ctx context.Context, e *engine.Engine, f *serveFlags, stderr io.Writer) (stop func(), err error) {
	var stops []func()
	stop = func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}
	defer func() {
		if err != nil {
			stop()
		}
	}()
	if f.control != "" {
		l, err := statsock.Listen(f.control)
		if err != nil {
			return nil, err
		}
		cctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			if err := statsock.Serve(cctx, l, e.Status); err != nil {
				fmt.Fprintf(stderr, "pktengine: stat socket: %v\n", err)
			}
		}()
		stops = append(stops, func() { cancel(); <-done })
	}
	if f.metrics != "" {
		l, err := net.Listen("tcp", f.metrics)
		if err != nil {
			return nil, fmt.Errorf("--metrics: %w", err)
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", metrics.Handler(e))
		// Timeouts bound what an idle or slow scraper can hold: each
		// connection is a file descriptor.
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
			WriteTimeout: 10 * time.Second, IdleTimeout: 30 * time.Second, MaxHeaderBytes: 16 << 10}
		go func() {
			if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
				fmt.Fprintf(stderr, "pktengine: metrics: %v\n", err)
			}
		}()
		stops = append(stops, func() {
			sctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			srv.Shutdown(sctx)
		})
	}
	return stop, nil
}
