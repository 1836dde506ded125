package engine

import (
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/pktengine/pktengine/frame"
)

// Datagram is one received UDP datagram. Payload lives in one of the
// port's buffers, or with Config.ZeroCopy in the receive ring itself. It
// stays valid until Release (or until the Datagram is handed to Port.Recv
// again), after which the memory is reused. A Datagram must not be copied
// while it holds that memory: release the one you were given, once.
type Datagram struct {
	// Payload is the UDP data. Its capacity ends with it, so an append
	// never writes into the ring.
	Payload []byte
	// Src is the sender and Dst the address and port the datagram was
	// sent to (a broadcast or multicast address for a group datagram).
	Src, Dst netip.AddrPort
	// Time is when the kernel received the frame.
	Time time.Time

	// What a reply needs besides the addresses: the sender's MAC and
	// the VLAN tags the frame carried, outermost first.
	srcMAC frame.MAC
	vlans  [1 + frame.MaxVLANTags]frame.VLANTag
	nvlan  uint8

	ref   *batchRef // zero-copy: the ring batch Payload points into
	buf   []byte    // copied: the port buffer Payload lives in
	owner *Port     // whose buf it is
}

// Release gives the datagram's memory back to its port or the receive
// ring. It does nothing for a datagram already released or handed to an
// inline handler.
func (d *Datagram) Release() {
	if d.ref != nil {
		d.ref.unref(1)
		d.ref = nil
	}
	if d.buf != nil {
		d.owner.putBuf(d.buf)
		d.buf, d.owner = nil, nil
	}
}

// VLANs returns the VLAN tags the datagram arrived with, outermost first.
// The slice points into d.
func (d *Datagram) VLANs() []frame.VLANTag { return d.vlans[:d.nvlan] }

// SrcMAC returns the Ethernet source address of the datagram's frame.
func (d *Datagram) SrcMAC() frame.MAC { return d.srcMAC }

// fill sets d from the datagram being handled.
func (d *Datagram) fill(in *inFrame) {
	p, f := &in.pkt, in.data
	payload := p.Payload(f)
	d.Payload = payload[:len(payload):len(payload)]
	d.Src = p.Src(f)
	d.Dst = p.Dst(f)
	d.Time = time.Unix(0, in.now)
	d.srcMAC = frame.Ethernet(f).Source()
	d.nvlan = 0
	if tag, ok := in.meta.strippedVLAN(); ok {
		d.vlans[0] = tag
		d.nvlan = 1
	}
	for i := range p.NumVLANs {
		d.vlans[d.nvlan] = p.VLANs[i]
		d.nvlan++
	}
	d.ref, d.buf, d.owner = nil, nil, nil
}

// releaseAll releases every datagram in ds, with one atomic operation per
// run of zero-copy datagrams from the same ring batch.
func releaseAll(ds []Datagram) {
	var cur *batchRef
	var n int64
	for i := range ds {
		if d := &ds[i]; d.buf != nil {
			d.owner.putBuf(d.buf)
			d.buf, d.owner = nil, nil
		}
		r := ds[i].ref
		if r == nil {
			continue
		}
		ds[i].ref = nil
		if r != cur {
			if cur != nil {
				cur.unref(n)
			}
			cur, n = r, 0
		}
		n++
	}
	if cur != nil {
		cur.unref(n)
	}
}

// refBias is the reference a worker holds on the batch it is working
// on. Queued datagrams add one each, but the worker counts them locally
// and settles the sum with its own reference in one atomic add at the
// end of the batch; the bias keeps the count above zero meanwhile, even
// if consumers release datagrams before the worker has added them.
const refBias = 1 << 40

// batchRef is a ring batch shared by the datagrams queued from it. The
// last reference to go hands the batch back to the ring and the
// batchRef back to its worker.
type batchRef struct {
	b      rxBatch
	refs   atomic.Int64
	queued int64 // datagrams queued from the batch so far; worker only
	free   chan *batchRef
}

func (r *batchRef) unref(n int64) {
	if r.refs.Add(-n) != 0 {
		return
	}
	r.b.release()
	select {
	case r.free <- r:
	default: // the free list is full: let the garbage collector have it
	}
}
