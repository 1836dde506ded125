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
		responderKind{ResponderInfo{"engine-v2", "pktengine engine, built-in echo on the inline path, TPACKET_V2 receive ring", true}, openEngine(engine.Config{RXVersion: ring.V2})},
		responderKind{ResponderInfo{"engine-v3", "pktengine engine, built-in echo on the inline path, TPACKET_V3 receive ring (1 ms block timeout)", true}, openEngine(engine.Config{RXVersion: ring.V3})},
		responderKind{ResponderInfo{xdpResponder, "pktengine engine on AF_XDP: its XDP program steers the echo port to an AF_XDP socket, echo answers in place in UMEM", true}, openEngine(engine.Config{Backend: engine.BackendXDP})},
	)
}

// xdpResponder is the AF_XDP engine's name: it brings its own XDP
// program, so the harness takes its pass-everything program off the
// responder's interface while it runs (see harness.preparePeer).
const xdpResponder = "engine-xdp"

// engineResponder is pktengine's engine with its echo service bound to the
// responder address, which it shares with the kernel (the kernel keeps
// ARP and ICMP; the engine reserves the port so the kernel stays quiet
// about it). Everything else is the engine's defaults: one worker, qdisc
// bypass, no busy polling.
type engineResponder struct {
	e *engine.Engine
}

// openEngine returns the opener of the engine as cfg configures it, on
// the TPACKET backend with a receive ring version or on AF_XDP (one
// worker per queue, veth has one, copy or zero-copy mode as the driver
// offers), with its echo service bound to the responder address.
func openEngine(cfg engine.Config) func(string, netip.AddrPort) (responder, error) {
	return func(ifname string, addr netip.AddrPort) (responder, error) {
		ifi, err := net.InterfaceByName(ifname)
		if err != nil {
			return nil, err
		}
		c := cfg // Open may fill in defaults: each responder gets its own
		e, err := engine.Open(ifi, &c)
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
