package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"

	"github.com/pktengine/pktengine/engine"
	"github.com/pktengine/pktengine/examples/dnsd/zone"
	"github.com/pktengine/pktengine/ring"
)

// openEngine opens an engine on the interface for one address: owned by
// the engine if the kernel does not have it, shared if it does.
func openEngine(o *options, addr netip.Addr, log *slog.Logger) (*engine.Engine, error) {
	ifi, err := net.InterfaceByName(o.iface)
	if err != nil {
		return nil, fmt.Errorf("--iface %q: %w", o.iface, err)
	}
	c := &engine.Config{
		Addrs:   []netip.Prefix{netip.PrefixFrom(addr, addr.BitLen())},
		Workers: o.workers,
		Logger:  log,
	}
	var ok bool
	if c.Backend, ok = engine.ParseBackend(o.backend); !ok {
		return nil, fmt.Errorf("--backend %q: want tpacket or xdp: %w", o.backend, errUsage)
	}
	switch o.rxRing {
	case "v2":
		c.RXVersion = ring.V2
	case "v3":
		c.RXVersion = ring.V3
	default:
		return nil, fmt.Errorf("--rx-ring %q: want v2 or v3: %w", o.rxRing, errUsage)
	}
	if c.Backend == engine.BackendXDP {
		c.RXVersion, c.Workers = 0, 0 // one worker per receive queue
	}
	return engine.Open(ifi, c)
}

// serveInline serves z on the engine at ap until ctx ends or the engine
// stops by itself.
func serveInline(ctx context.Context, e *engine.Engine, ap netip.AddrPort, z *zone.Zone, st *stats) error {
	h := newInlineHandler(z, e.Interface().MTU, st)
	p, err := e.Handle(ap, h)
	if err != nil {
		return err
	}
	select {
	case <-ctx.Done():
	case <-e.Done():
		return e.Err()
	}
	return p.Close()
}

// serveConn serves z with dns.Server on the engine's net.PacketConn at ap
// until ctx ends or the engine stops by itself.
func serveConn(ctx context.Context, e *engine.Engine, ap netip.AddrPort, z *zone.Zone, st *stats) error {
	c, err := e.ListenUDP(ap)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-e.Done():
			cancel()
		case <-ctx.Done():
		}
	}()
	err = serveDNSServer(ctx, c, z, st)
	return errors.Join(err, e.Err(), closeConn(c))
}

// inlineHandler answers each query on the engine's receive goroutine,
// while the frame is still in the ring: it parses the query in place and
// writes the prepared answer over it with Responder.ReplyInPlace, so the
// answer leaves from the query's own frame (its UMEM frame on AF_XDP, its
// copy in a transmit slot on TPACKET). Nothing is allocated per query.
type inlineHandler struct {
	zone  *zone.Zone
	bufs  sync.Pool // *[]byte of size octets, for frames too small to answer over
	size  int
	stats *stats
}

// newInlineHandler makes a handler whose answers fit in one frame of the
// link's MTU: a larger answer is cut (TC set) to what fits, whatever the
// client offers, rather than sent as IP fragments (RFC 8900 explains why
// DNS avoids them).
func newInlineHandler(z *zone.Zone, mtu int, st *stats) *inlineHandler {
	const ipv6UDPHeaders = 40 + 8 // the larger of IPv4's and IPv6's
	size := max(min(z.MaxUDPSize(), mtu-ipv6UDPHeaders), zone.MinResponseBuffer)
	h := &inlineHandler{zone: z, size: size, stats: st}
	h.bufs.New = func() any {
		b := make([]byte, size)
		return &b
	}
	return h
}

func (h *inlineHandler) ServeUDP(r *engine.Responder, d *engine.Datagram) {
	if d.Src.Port() == 0 {
		h.stats.count(zone.Outcome{Kind: zone.Dropped}) // no answer can reach port 0
		return
	}
	small := false
	err := r.ReplyInPlace(func(payload []byte) int {
		n, ok := h.answerOver(payload)
		small = !ok
		return n
	})
	if small { // a link MTU below 540 bytes leaves no room for 512: answer apart
		bp := h.bufs.Get().(*[]byte)
		if resp := h.answer(d.Payload, *bp); len(resp) > 0 {
			err = r.Reply(resp)
		}
		h.bufs.Put(bp)
	}
	if err != nil {
		h.stats.sendErrors.Add(1)
	}
}

// answerOver writes the response to the query in payload over it, up to
// cap(payload) octets, and returns its length; ok is false, and nothing
// written, if cap(payload) is below zone.MinResponseBuffer. Respond parses
// the whole query before it writes a byte of the response, so the
// response can take the query's place.
func (h *inlineHandler) answerOver(payload []byte) (n int, ok bool) {
	if cap(payload) < zone.MinResponseBuffer {
		return 0, false
	}
	return len(h.answer(payload, payload[:min(cap(payload), h.size)])), true
}

// answer writes the response to query into buf and counts it: everything
// ServeUDP does but sending.
func (h *inlineHandler) answer(query, buf []byte) []byte {
	n, o := h.zone.Respond(query, buf)
	h.stats.count(o)
	return buf[:n]
}
