package statsock

import (
	"context"
	"net"
	"net/netip"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/pktengine/pktengine/engine"
	"github.com/pktengine/pktengine/frame"
)

func sampleStatus() engine.Status {
	var c engine.Counters
	c.FramesIn = 10
	c.Outcomes[engine.OutcomeDelivered] = 7
	c.Outcomes[engine.OutcomeNoPort] = 2
	c.Outcomes[frame.ReasonARP] = 1
	c.UDP.InDatagrams, c.UDP.NoPorts = 7, 2
	return engine.Status{
		Interface: "veth0",
		MAC:       "02:00:00:00:00:01",
		Addrs:     []engine.AddrInfo{{Prefix: netip.MustParsePrefix("198.18.0.1/24")}, {Prefix: netip.MustParsePrefix("fd00::100/64"), Owned: true}},
		Workers:   1,
		RXVersion: "TPACKET_V3",
		Started:   time.Date(2026, 11, 23, 6, 0, 0, 0, time.UTC),
		Ports: []engine.PortInfo{
			{Port: 7, Service: "echo", Inline: true, InDatagrams: 5, OutDatagrams: 5},
			{Addr: netip.MustParseAddr("198.18.0.1"), Port: 5000, QueueLen: 1, QueueCap: 1024, InDatagrams: 2, Drops: 1},
		},
		Counters: c,
	}
}

func TestStatRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "engine.sock")
	l, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	want := sampleStatus()
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, l, func() engine.Status { return want }) }()

	got, err := Query(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(*got, want) {
		t.Errorf("status after the round trip:\n%+v\nwant\n%+v", *got, want)
	}
	if err := got.Counters.Check(); err != nil {
		t.Error(err)
	}

	// A second listener on a live socket is refused.
	if _, err := Listen(path); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("Listen on a live socket: %v", err)
	}
	// A bad request gets an error answer.
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte(`{"op":"reboot"}`))
	buf := make([]byte, 200)
	n, _ := c.Read(buf)
	c.Close()
	if !strings.Contains(string(buf[:n]), `unknown op`) {
		t.Errorf("answer to an unknown op: %s", buf[:n])
	}

	cancel()
	if err := <-done; err != nil {
		t.Errorf("Serve: %v", err)
	}
	if _, err := Query(t.Context(), path); err == nil {
		t.Error("Query succeeded after the server stopped")
	}
}

func TestListenStale(t *testing.T) {
	path := filepath.Join(t.TempDir(), "stale.sock")
	// A socket file nobody listens on.
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	l2, err := Listen(path)
	if err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	l2.Close()
}
