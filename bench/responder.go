package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync/atomic"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// A responder answers UDP echo requests in the responder's namespace. It
// runs in a child process (see ChildMain) pinned to one CPU.
type responder interface {
	// serve answers until ctx is done or the responder fails.
	serve(ctx context.Context) error
	// counters returns the replies sent so far and any drops the
	// responder itself can see (ring or queue drops; kernel socket
	// buffer drops are read from /proc/net/snmp instead).
	counters() (replies, drops uint64)
	close() error
}

// ResponderInfo describes a responder the harness can measure.
type ResponderInfo struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	// Engine marks pktengine's own responders, whose results are
	// compared with the kernel's.
	Engine bool `json:"engine"`
}

// responderKind is a registered responder.
type responderKind struct {
	ResponderInfo
	open func(ifname string, addr netip.AddrPort) (responder, error)
}

var responderKinds = []responderKind{
	{ResponderInfo{"kernel", "kernel UDP, net.UDPConn ReadFrom/WriteTo, one datagram per system call", false}, openKernel},
	{ResponderInfo{"kernel-batch", "kernel UDP, x/net/ipv4 ReadBatch/WriteBatch (recvmmsg/sendmmsg), 64 per call", false}, openKernelBatch},
}

// Responders lists the responders this build can measure, in the order
// the harness runs them.
func Responders() []ResponderInfo {
	var out []ResponderInfo
	for _, k := range responderKinds {
		out = append(out, k.ResponderInfo)
	}
	return out
}

func lookupResponder(name string) (responderKind, bool) {
	i := slices.IndexFunc(responderKinds, func(k responderKind) bool { return k.Name == name })
	if i < 0 {
		return responderKind{}, false
	}
	return responderKinds[i], true
}

// kernelResponder is what most Go programs write: one ReadFrom, one
// WriteTo. ReadFrom allocates the source address every time.
type kernelResponder struct {
	conn    *net.UDPConn
	replies atomic.Uint64
}

func listenUDP(addr netip.AddrPort) (*net.UDPConn, error) {
	network := "udp4"
	if addr.Addr().Is6() {
		network = "udp6"
	}
	return net.ListenUDP(network, net.UDPAddrFromAddrPort(addr))
}

func openKernel(_ string, addr netip.AddrPort) (responder, error) {
	c, err := listenUDP(addr)
	if err != nil {
		return nil, err
	}
	return &kernelResponder{conn: c}, nil
}

func (r *kernelResponder) serve(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { r.conn.Close() })
	defer stop()
	buf := make([]byte, 65536)
	for {
		n, from, err := r.conn.ReadFrom(buf)
		if err != nil {
			return closedIsNil(err)
		}
		if _, err := r.conn.WriteTo(buf[:n], from); err == nil {
			r.replies.Add(1)
		}
	}
}

func (r *kernelResponder) counters() (uint64, uint64) { return r.replies.Load(), 0 }
func (r *kernelResponder) close() error               { return closedIsNil(r.conn.Close()) }

func closedIsNil(err error) error {
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// batchConn is the part of ipv4.PacketConn and ipv6.PacketConn the
// batched responder needs.
type batchConn interface {
	ReadBatch(ms []ipv4.Message, flags int) (int, error)
	WriteBatch(ms []ipv4.Message, flags int) (int, error)
}

// batchSize is the batched kernel responder's recvmmsg/sendmmsg vector.
const batchSize = 64

// kernelBatchResponder is the best kernel UDP a Go program gets without
// leaving the socket API: up to 64 datagrams per recvmmsg and sendmmsg.
type kernelBatchResponder struct {
	conn    *net.UDPConn
	pc      batchConn
	replies atomic.Uint64
}

func openKernelBatch(_ string, addr netip.AddrPort) (responder, error) {
	c, err := listenUDP(addr)
	if err != nil {
		return nil, err
	}
	r := &kernelBatchResponder{conn: c}
	if addr.Addr().Is6() {
		r.pc = ipv6.NewPacketConn(c)
	} else {
		r.pc = ipv4.NewPacketConn(c)
	}
	return r, nil
}

func (r *kernelBatchResponder) serve(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { r.conn.Close() })
	defer stop()
	in := make([]ipv4.Message, batchSize)
	out := make([]ipv4.Message, batchSize)
	for i := range in {
		in[i].Buffers = [][]byte{make([]byte, 65536)}
		out[i].Buffers = make([][]byte, 1)
	}
	for {
		n, err := r.pc.ReadBatch(in, 0)
		if err != nil {
			return closedIsNil(err)
		}
		for i := range n {
			out[i].Buffers[0] = in[i].Buffers[0][:in[i].N]
			out[i].Addr = in[i].Addr
		}
		for sent := 0; sent < n; {
			k, err := r.pc.WriteBatch(out[sent:n], 0)
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return nil
				}
				break // the kernel refused (a full send buffer): drop the rest, as a server would
			}
			sent += k
			r.replies.Add(uint64(k))
		}
	}
}

func (r *kernelBatchResponder) counters() (uint64, uint64) { return r.replies.Load(), 0 }
func (r *kernelBatchResponder) close() error               { return closedIsNil(r.conn.Close()) }

var errUnknownResponder = errors.New("bench: unknown responder")

func openResponder(name, ifname string, addr netip.AddrPort) (responder, error) {
	k, ok := lookupResponder(name)
	if !ok {
		return nil, fmt.Errorf("%w %q", errUnknownResponder, name)
	}
	return k.open(ifname, addr)
}
