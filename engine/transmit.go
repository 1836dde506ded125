package engine

import (
	"net"

	"github.com/pktengine/pktengine/frame"
)

// Transmit: how answers leave. A worker builds a frame in a buffer of
// its transmit ring (txNext, or txForward for a rewrite of the frame
// being handled), commits it, and flushes the ring once per batch.
// Applications' sends (Port.Send, send.go) share the engine's own
// transmit ring under txMu (commitLocked, flushLocked).

// txNext returns an empty buffer for an answer to the frame being
// handled.
func (w *worker) txNext() ([]byte, bool) {
	buf, err := w.tx.next()
	if err != nil {
		w.count[cSndbufErrors]++
		return nil, false
	}
	return buf, true
}

// txForward returns a buffer holding the frame being handled, to be
// rewritten into its answer in place, with room for the decoded packet
// and a VLAN tag.
func (w *worker) txForward() ([]byte, bool) {
	in := &w.in
	buf, err := w.tx.forward(in.batch, in.index)
	switch {
	case err == errTooBig || err == nil && len(buf) < int(in.pkt.End)+frame.VLANTagLen:
		w.count[cTXErrors]++
		return nil, false
	case err != nil:
		w.count[cSndbufErrors]++
		return nil, false
	}
	return buf, true
}

// retag puts the VLAN tag the kernel removed from the frame being
// answered back into the n-byte answer in buf, which was built from the
// frame's own headers, and returns the new length, or 0 if buf has no
// room.
func (w *worker) retag(buf []byte, n int) int {
	tag, ok := w.in.meta.strippedVLAN()
	if !ok || n <= 0 {
		return n
	}
	n, err := frame.InsertVLANTag(buf, n, tag)
	if err != nil {
		return 0
	}
	return n
}

// commit queues the n-byte frame in buf, which txNext or txForward
// returned; the end of the batch flushes it. n <= 0 means the frame
// could not be built. It reports whether the frame was queued.
func (w *worker) commit(buf []byte, n int) bool {
	if n <= 0 {
		w.count[cTXErrors]++
		return false
	}
	if err := w.tx.commit(n); err != nil {
		w.count[cTXErrors]++
		return false
	}
	w.count[cTXFrames]++
	w.txDirty = true
	return true
}

// commitUDP commits a datagram pt sends.
func (w *worker) commitUDP(buf []byte, n int, pt *Port) error {
	if !w.commit(buf, n) {
		return errBuild
	}
	w.sentUDP(pt)
	return nil
}

// sentUDP counts a datagram pt sent, in one frame or several.
func (w *worker) sentUDP(pt *Port) {
	w.count[cOutDatagrams]++
	w.portStats(pt).pending.out++
}

// flush hands the batch's answers to the kernel with one system call.
// A frame the kernel does not take is counted once by the ring
// (txStats.dropped, Counters.TXDropped) and taken into the worker's
// counters at publish; the log says when sending starts and stops
// failing, not at every batch.
func (w *worker) flush() {
	if !w.txDirty {
		return
	}
	w.txDirty = false
	err := w.tx.flush()
	switch {
	case err != nil && !w.txFailing:
		w.e.log.Warn("the kernel refuses frames; counting them in TXDropped", "worker", w.id, "err", err)
	case err == nil && w.txFailing:
		w.e.log.Info("the kernel takes frames again", "worker", w.id)
	}
	w.txFailing = err != nil
}

func (w *worker) nextID() uint16 {
	w.ipID++
	return w.ipID
}

// commitLocked builds one frame into the engine's shared transmit ring
// and commits it; flushLocked hands the committed frames to the kernel.
// e.txMu must be held.
func (e *Engine) commitLocked(build func([]byte) (int, error)) error {
	if e.tx == nil {
		return net.ErrClosed
	}
	buf, err := e.tx.next()
	if err != nil {
		e.appSndbufErrors.Add(1)
		if e.ctx.Err() != nil {
			return net.ErrClosed
		}
		return errNoBuffer
	}
	n, err := build(buf)
	if err == nil {
		err = e.tx.commit(n)
	}
	if err != nil {
		e.appTXErrors.Add(1)
		return err
	}
	e.appTXFrames.Add(1)
	e.txPending = true
	return nil
}

func (e *Engine) flushLocked() error {
	if !e.txPending || e.tx == nil {
		return nil
	}
	e.txPending = false
	return e.tx.flush()
}
