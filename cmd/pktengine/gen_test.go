package main

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/pktengine/pktengine/internal/lab"
	"github.com/pktengine/pktengine/internal/labtest"
	"github.com/pktengine/pktengine/loadgen"
)

// TestGenAgainstServe runs `pktengine gen` in A against `pktengine serve`
// in B, both as the user would start them, and checks the JSON summary:
// every frame sent was answered, in order, with latency figures.
func TestGenAgainstServe(t *testing.T) {
	l := labtest.New(t, nil)
	s := startServe(t, l.B(), "--echo", "7")
	genEcho(t, l.A())
	if err := s.stop(t); err != nil {
		t.Fatalf("serve: %v", err)
	}
}

// TestGenBackendsAgainstServeXDP runs `pktengine gen --backend xdp` and
// `--backend live` against `pktengine serve --backend xdp` (whose XDP
// program also lets the live frames, redirected into the veth, arrive):
// every frame is answered.
func TestGenBackendsAgainstServeXDP(t *testing.T) {
	l := labtest.New(t, nil)
	s := startServe(t, l.B(), "--backend", "xdp", "--echo", "7")
	for _, backend := range []string{"xdp", "live"} {
		t.Run(backend, func(t *testing.T) {
			if sum := genEcho(t, l.A(), "--backend", backend); sum.Backend.String() != backend {
				t.Errorf("backend %v; want %s", sum.Backend, backend)
			}
		})
	}
	if err := s.stop(t); err != nil {
		t.Fatalf("serve: %v", err)
	}
}

// genEcho runs `pktengine gen` in h, with args, against the echo port of
// the lab's host B (198.18.0.2:7): 2000 frames at 5k/s over 4 flows. It
// checks that every frame was answered, with latency figures, and returns
// gen's --json summary.
func genEcho(t *testing.T, h *lab.Host, args ...string) loadgen.Summary {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := pktengineIn(ctx, t, h, append([]string{"gen", "--iface", h.Iface, "--dst", "198.18.0.2:7",
		"--rate", "5k", "--count", "2000", "--duration", "0", "--flows", "4", "--json"}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("gen: %v\n%s", err, errb.String())
	}
	var sum loadgen.Summary
	if err := json.Unmarshal(out.Bytes(), &sum); err != nil {
		t.Fatalf("gen --json: %v\n%s", err, out.String())
	}
	if sum.Sent != 2000 || sum.Received != 2000 || sum.Lost != 0 {
		t.Errorf("sent %d, received %d, lost %d; want 2000/2000/0", sum.Sent, sum.Received, sum.Lost)
	}
	if sum.Latency.Count == 0 {
		t.Errorf("no latency samples: %+v", sum.Latency)
	}
	return sum
}
