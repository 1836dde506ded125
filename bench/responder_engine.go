package bench

import (
	"context"
	"net"
	"net/netip"

	"github.com/pktengine/pktengine/engine"
	"github.com/pktengine/pktengine/ring"
)

func init() {
	responderKinds = append(responderKinds,
		responderKind{ResponderInfo{"engine-v2", "pktengine engine, built-in echo on the inline path, TPACKET_V2 receive ring", true}, openEngine(ring.V2)},
		responderKind{ResponderInfo{"engine-v3", "pktengine engine, built-in echo on the inline path, TPACKET_V3 receive ring (1 ms block timeout)", true}, openEngine(ring.V3)},
		responderKind{ResponderInfo{xdpResponder, "pktengine engine on AF_XDP: its XDP program steers the echo port to an AF_XDP socket, echo answers in place in UMEM", true}, openEngineXDP},
	)
}

// xdpResponder is the AF_XDP engine's name: it brings its own XDP
// program, so the harness takes its pass-everything program off the
// responder's interface while it runs (see harness.preparePeer).
const xdpResponder = "engine-xdp"

// openEngineXDP opens the engine on the AF_XDP backend: one worker per
// queue (veth has one), copy or zero-copy mode as the driver offers.
func openEngineXDP(ifname string, addr netip.AddrPort) (responder, error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, err
	}
	e, err := engine.Open(ifi, &engine.Config{Backend: engine.BackendXDP})
	if err != nil {
		return nil, err
	}
	if _, err := e.HandleService(addr, engine.Echo); err != nil {
		e.Close()
		return nil, err
	}
	return &engineResponder{e: e}, nil
}

// engineResponder is pktengine's engine with its echo service bound to the
// responder address, which it shares with the kernel (the kernel keeps
// ARP and ICMP; the engine reserves the port so the kernel stays quiet
// about it). Everything else is the engine's defaults: one worker, qdisc
// bypass, no busy polling.
type engineResponder struct {
	e *engine.Engine
}

func openEngine(v ring.Version) func(string, netip.AddrPort) (responder, error) {
	return func(ifname string, addr netip.AddrPort) (responder, error) {
		ifi, err := net.InterfaceByName(ifname)
		if err != nil {
			return nil, err
		}
		e, err := engine.Open(ifi, &engine.Config{RXVersion: v})
		if err != nil {
			return nil, err
		}
		if _, err := e.HandleService(addr, engine.Echo); err != nil {
			e.Close()
			return nil, err
		}
		return &engineResponder{e: e}, nil
	}
}

// serve waits: the engine's workers answer on their own goroutines.
func (r *engineResponder) serve(ctx context.Context) error {
	<-ctx.Done()
	return nil
}

func (r *engineResponder) counters() (uint64, uint64) {
	c := r.e.Counters()
	return c.UDP.OutDatagrams, c.RingDrops + c.UDP.RcvbufErrors + c.UDP.SndbufErrors
}

func (r *engineResponder) close() error { return r.e.Close() }
