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

// visibility is serve's stat socket and metrics endpoint. Their listeners
// are opened while serve still has root's rights (the socket's directory,
// a low port), and they answer only from start, which serve calls once
// --user has dropped those rights: a client that gets an answer talks to
// the process as it will run.
type visibility struct {
	stat, metrics net.Listener // nil when not asked for
	stops         []func()     // stop serving, in the order started
}

// listenVisibility opens the listeners f asks for.
func listenVisibility(f *serveFlags) (v *visibility, err error) {
	v = &visibility{}
	if f.control != "" {
		if v.stat, err = statsock.Listen(f.control); err != nil {
			return nil, err
		}
	}
	if f.metrics != "" {
		if v.metrics, err = net.Listen("tcp", f.metrics); err != nil {
			v.stop()
			return nil, fmt.Errorf("--metrics: %w", err)
		}
	}
	return v, nil
}

// start serves e's status on the stat socket and its metrics on the
// endpoint, until stop.
func (v *visibility) start(ctx context.Context, e *engine.Engine, stderr io.Writer) {
	if v.stat != nil {
		ctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			if err := statsock.Serve(ctx, v.stat, e.Status); err != nil {
				fmt.Fprintf(stderr, "pktengine: stat socket: %v\n", err)
			}
		}()
		v.stops = append(v.stops, func() { cancel(); <-done })
	}
	if v.metrics != nil {
		mux := http.NewServeMux()
		mux.Handle("/metrics", metrics.Handler(e))
		// Timeouts bound what an idle or slow scraper can hold: each
		// connection is a file descriptor (docs/SECURITY.md).
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
			WriteTimeout: 10 * time.Second, IdleTimeout: 30 * time.Second, MaxHeaderBytes: 16 << 10}
		go func() {
			if err := srv.Serve(v.metrics); err != nil && !errors.Is(err, http.ErrServerClosed) {
				fmt.Fprintf(stderr, "pktengine: metrics: %v\n", err)
			}
		}()
		v.stops = append(v.stops, func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			srv.Shutdown(ctx)
		})
	}
}

// stop stops serving and closes the listeners (removing the stat socket's
// file), started or not.
func (v *visibility) stop() {
	for i := len(v.stops) - 1; i >= 0; i-- {
		v.stops[i]()
	}
	v.stops = nil
	for _, l := range []net.Listener{v.stat, v.metrics} {
		if l != nil {
			l.Close() // a second Close after Serve's own is harmless
		}
	}
}
