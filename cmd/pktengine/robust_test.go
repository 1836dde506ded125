package main

import (
	"context"
	"net"
	"net/netip"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/pktengine/pktengine/internal/lab"
	"github.com/pktengine/pktengine/internal/labtest"
	"github.com/pktengine/pktengine/loadgen"
)

// TestServeSIGTERMUnderLoad stops `pktengine serve` with SIGTERM while
// the generator floods it from the peer as fast as it can. The command
// must exit 0 within stop's 10 s, having printed its final counters:
// frames handled, the outcomes adding up to them (no WARNING), and the
// kernel ring's statistics, which can only be at or above the frames
// handled plus the ring's drops (frames still in the ring at shutdown are
// counted by the kernel but were never handled).
func TestServeSIGTERMUnderLoad(t *testing.T) {
	l := labtest.New(t, nil)
	a, b := l.A(), l.B()
	s := startServe(t, b, "--echo", "7")
	if got, err := labtest.RoundTrip(t, a, netip.AddrPortFrom(b.IPv4.Addr(), 7), "TEST"); err != nil || got != "TEST" {
		t.Fatalf("echo: %q, %v", got, err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	genDone := make(chan error, 1)
	var sum *loadgen.Summary
	go func() {
		var err error
		sum, err = lab.OnInterface(a, func(ifi *net.Interface) (*loadgen.Summary, error) {
			// From an address A does not have, so that A's kernel
			// drops the answers quietly.
			return loadgen.Run(ctx, ifi, &loadgen.Config{
				Spec: loadgen.Spec{
					Src:      netip.AddrPortFrom(netip.MustParseAddr("198.18.0.51"), loadgen.DefaultSrcPort),
					Dst:      netip.AddrPortFrom(b.IPv4.Addr(), 7),
					SrcPorts: 64,
				},
				SendOnly: true,
				Load:     loadgen.Load{Duration: 30 * time.Second},
			}, nil)
		})
		genDone <- err
	}()
	time.Sleep(time.Second) // well into the load

	start := time.Now()
	if err := s.stop(t); err != nil {
		t.Fatalf("serve exited with %v under load\nstderr: %s", err, s.stderr.String())
	}
	took := time.Since(start)
	cancel()
	if err := <-genDone; err != nil {
		t.Errorf("generator: %v", err)
	}

	out := s.stdout.String()
	num := func(re string) uint64 {
		m := regexp.MustCompile(re).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("final counters lack %s:\n%s", re, out)
		}
		n, _ := strconv.ParseUint(m[1], 10, 64)
		return n
	}
	frames := num(`Frames: (\d+) in`)
	ringPackets := num(`kernel ring: (\d+) packets`)
	ringDrops := num(`kernel ring: \d+ packets, (\d+) drops`)
	t.Logf("SIGTERM under load: exit 0 after %v; final counters: %d frames handled, ring %d packets, %d drops; the generator sent %d",
		took.Round(time.Millisecond), frames, ringPackets, ringDrops, sum.TX.Sent)
	if regexp.MustCompile(`WARNING`).MatchString(out) {
		t.Errorf("final counters do not add up:\n%s", out)
	}
	// How many frames a raced, loaded engine gets through in a second
	// is no business of this test; that it was handling load when the
	// signal came is.
	if frames == 0 {
		t.Errorf("final counters show no frame handled after a second of load:\n%s", out)
	}
	if ringPackets < frames+ringDrops {
		t.Errorf("ring packets %d < handled %d + drops %d", ringPackets, frames, ringDrops)
	}
	if !regexp.MustCompile(`pktengine: shutting down`).MatchString(s.stderr.String()) {
		t.Errorf("stderr does not say it is shutting down: %s", s.stderr.String())
	}
}
