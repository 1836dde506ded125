//go:build linux

package robust_test

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/pktengine/pktengine/engine"
	"github.com/pktengine/pktengine/internal/labtest"
)

// slowConsumer drains p at most batch datagrams at a time, sleeping delay
// after each batch, until ctx ends; it releases what it holds when it
// stops.
func slowConsumer(ctx context.Context, p *engine.Port, batch int, delay time.Duration) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		ds := make([]engine.Datagram, batch)
		defer p.Release(ds)
		for {
			if _, err := p.Recv(ctx, ds); err != nil {
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(delay):
			}
		}
	}()
	return done
}

// TestSlowConsumerIsolation: a port whose consumer falls behind must
// lose its own datagrams, counted as its queue's overflows, and nobody
// else's, as a kernel socket whose receive buffer is full does. A kernel
// sender in B sends 10 000 datagrams at about 10 000 a second to a port
// whose consumer takes 10 ms per datagram, while the echo client
// exchanges with an inline echo port. The client must not miss an
// answer, the ring must drop nothing, and every datagram to the slow
// port must be either delivered or counted as an overflow.
//
// It failed while queued datagrams pointed into the receive ring: the
// ring hands slots back to the kernel in order, so the slow port's queue
// pinned the ring from its oldest datagram on, the ring filled, and the
// kernel dropped frames for every port (6 137 ring drops here, and the
// client timed out). The engine now copies queued datagrams into their
// port's buffers unless Config.ZeroCopy asks otherwise.
func TestSlowConsumerIsolation(t *testing.T) {
	a, b, e := echoLab(t, nil, clientPort)
	p := bind(t, e, slowPort)
	ctx, cancel := context.WithCancel(context.Background())
	done := slowConsumer(ctx, p, 1, 10*time.Millisecond)
	defer func() { cancel(); <-done }()

	client := startEchoClient(t, b, netip.AddrPortFrom(a.IPv4.Addr(), clientPort))
	conn := labtest.DialUDP(t, b, netip.AddrPortFrom(a.IPv4.Addr(), slowPort))
	before := settledWithClient(t, e, client)
	pi0 := portInfo(t, e, slowPort)
	const n = 10000
	for i := range n {
		if _, err := conn.Write([]byte("to the slow port")); err != nil {
			t.Fatal(err)
		}
		if i%10 == 9 {
			time.Sleep(time.Millisecond)
		}
	}
	after := settledWithClient(t, e, client)
	pi := portInfo(t, e, slowPort)
	in, drops := pi.InDatagrams-pi0.InDatagrams, pi.Drops-pi0.Drops
	ringDrops := after.c["RingDrops"] - before.c["RingDrops"]
	t.Logf("slow port: %d delivered, %d overflowed; ring drops %d; %d client exchanges meanwhile, %d failed",
		in, drops, ringDrops, after.exchanges-before.exchanges, len(client.failures))
	if ringDrops != 0 || in+drops != n {
		t.Errorf("one slow consumer made the ring drop %d frames; of %d datagrams to its port %d were delivered and %d overflowed",
			ringDrops, n, in, drops)
	}
}
