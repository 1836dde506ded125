package main

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/pktengine/pktengine/examples/dnsd/zone"
)

// serveDNSServer serves z with github.com/miekg/dns's dns.Server on pc
// until ctx ends: a kernel UDP socket in kernel mode, the engine's Conn in
// conn mode. dns.Server is used as it comes, with two of its own hooks.
func serveDNSServer(ctx context.Context, pc net.PacketConn, z *zone.Zone, st *stats) error {
	started := make(chan struct{})
	srv := &dns.Server{
		PacketConn: pc,
		Handler:    &handler{zone: z, stats: st, bufs: newBufPool(z.MaxUDPSize())},
		// Read whole datagrams: a query may be longer than 512 octets.
		UDPSize: 65535,
		// The filter below has already dropped what is not to be
		// answered; the handler answers the rest, NOTIMP included.
		MsgAcceptFunc:     func(dns.Header) dns.MsgAcceptAction { return dns.MsgAccept },
		DecorateReader:    func(r dns.Reader) dns.Reader { return &filter{Reader: r, zone: z, stats: st} },
		NotifyStartedFunc: func() { close(started) },
	}
	served := make(chan error, 1)
	go func() { served <- srv.ActivateAndServe() }()
	select {
	case err := <-served:
		return err
	case <-started:
	}
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return errors.Join(srv.ShutdownContext(sctx), <-served)
}

// closeConn closes a conn that dns.Server may have closed already (it does
// when it stops).
func closeConn(c io.Closer) error {
	if err := c.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		return err
	}
	return nil
}

// handler answers the queries dns.Server unpacked, through the same
// prepared answers as the inline handler.
type handler struct {
	zone  *zone.Zone
	stats *stats
	bufs  *sync.Pool
}

func (h *handler) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	var q zone.Query
	if err := zone.QueryFromMsg(req, &q); err != nil {
		h.stats.count(zone.Outcome{Kind: zone.Dropped})
		return
	}
	bp := h.bufs.Get().(*[]byte)
	defer h.bufs.Put(bp)
	n, o := h.zone.Answer(&q, *bp)
	h.stats.count(o)
	if n > 0 {
		if _, err := w.Write((*bp)[:n]); err != nil {
			h.stats.sendErrors.Add(1)
		}
	}
}

// filter reads datagrams for dns.Server and keeps back those that are not
// well-formed queries, so that malformed ones get the answers Knot DNS
// gives (dns.Server would answer FORMERR to some it should drop, and
// accept some it should not): it drops and counts what zone.ParseQuery
// says to drop, and answers FORMERR itself to what it finds malformed.
type filter struct {
	dns.Reader
	zone  *zone.Zone
	stats *stats
}

func (f *filter) ReadUDP(conn *net.UDPConn, timeout time.Duration) ([]byte, *dns.SessionUDP, error) {
	for {
		m, s, err := f.Reader.ReadUDP(conn, timeout)
		if err != nil {
			return m, s, err
		}
		if reply, ok := f.check(m); ok {
			return m, s, nil
		} else if reply != nil {
			dns.WriteToSessionUDP(conn, reply, s)
		}
	}
}

func (f *filter) ReadPacketConn(conn net.PacketConn, timeout time.Duration) ([]byte, net.Addr, error) {
	pcr, ok := f.Reader.(dns.PacketConnReader)
	if !ok {
		return nil, nil, errors.New("dnsd: dns.Server's reader cannot read a net.PacketConn")
	}
	for {
		m, a, err := pcr.ReadPacketConn(conn, timeout)
		if err != nil {
			return m, a, err
		}
		if reply, ok := f.check(m); ok {
			return m, a, nil
		} else if reply != nil {
			conn.WriteTo(reply, a)
		}
	}
}

// check reports whether m is a query for dns.Server to answer; if not, it
// returns the FORMERR answer to send instead, if any.
func (f *filter) check(m []byte) ([]byte, bool) {
	var q zone.Query
	switch zone.ParseQuery(m, &q) {
	case zone.Valid:
		return nil, true
	case zone.Malformed:
		buf := make([]byte, zone.MinResponseBuffer)
		n, o := f.zone.Respond(m, buf)
		f.stats.count(o)
		return buf[:n], false
	default:
		f.stats.count(zone.Outcome{Kind: zone.Dropped})
		return nil, false
	}
}

func newBufPool(size int) *sync.Pool {
	size = max(size, zone.MinResponseBuffer)
	return &sync.Pool{New: func() any {
		b := make([]byte, size)
		return &b
	}}
}
