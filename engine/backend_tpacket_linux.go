//go:build linux

package engine

import (
	"context"
	"errors"
	"net"
	"time"

	"github.com/pktengine/pktengine/ring"
)

// The TPACKET backend: AF_PACKET receive rings (TPACKET_V2 or V3) and
// PACKET_TX_RING transmitters from package ring, behind the engine's
// rxRing and txRing.

// tpacketBackend opens the rings of one engine.
type tpacketBackend struct {
	ifi *net.Interface
	rx  ring.RXConfig
	tx  ring.TXConfig
	ctx context.Context // ends when the engine stops: a waiting send gives up
}

// openWorker opens a receive ring (joining the fanout group, if any) and
// a transmit ring of its own.
func (b *tpacketBackend) openWorker(int) (rxRing, txRing, error) {
	tx, err := b.openShared()
	if err != nil {
		return nil, nil, err
	}
	c := b.rx
	rx, err := ring.NewRX(b.ifi, &c)
	if err != nil {
		return nil, nil, errors.Join(err, tx.close())
	}
	if f := b.rx.Fanout; f != nil && f.UniqueID {
		if id, ok := rx.FanoutGroup(); ok {
			b.rx.Fanout = &ring.Fanout{Type: f.Type, GroupID: id}
		}
	}
	// At most one batch per ring slot is ever outstanding.
	return &tpacketRX{rx: rx, slots: rx.Geometry().Slots}, tx, nil
}

func (b *tpacketBackend) openShared() (txRing, error) {
	c := b.tx
	t, err := ring.NewTransmitter(b.ifi, &c)
	if err != nil {
		return nil, err
	}
	return &tpacketTX{t: t, ctx: b.ctx}, nil
}

// tpacketRX is a ring.RX as an rxRing.
type tpacketRX struct {
	rx    *ring.RX
	slots int
}

func (r *tpacketRX) newBatch() rxBatch { return new(tpacketBatch) }

// readInto waits without a context: a context would allocate in a
// sleeping ReadInto, and close wakes it instead.
func (r *tpacketRX) readInto(b rxBatch) error {
	return r.rx.ReadInto(context.Background(), &b.(*tpacketBatch).b)
}

// setReadDeadline makes readInto give up at t (rxWaker): the worker wakes
// up to sweep timed-out fragments.
func (r *tpacketRX) setReadDeadline(t time.Time) error { return r.rx.SetReadDeadline(t) }

func (r *tpacketRX) maxBatches() int { return r.slots }

func (r *tpacketRX) stats() rxStats {
	s, _ := r.rx.Stats() // after Close: the totals read last
	return rxStats{packets: s.Packets, drops: s.Drops, freezes: s.FreezeQueue}
}

func (r *tpacketRX) close() error { return r.rx.Close() }

// tpacketBatch is a ring.Batch as an rxBatch.
type tpacketBatch struct{ b ring.Batch }

func (b *tpacketBatch) len() int { return b.b.Len() }

func (b *tpacketBatch) frame(i int) ([]byte, rxMeta) {
	data, m := b.b.Frame(i)
	return data, tpacketMeta(&m)
}

func (b *tpacketBatch) data(i int) []byte { return b.b.Data(i) }
func (b *tpacketBatch) release()          { b.b.Release() }

// tpacketTX is a ring.Transmitter as a txRing.
type tpacketTX struct {
	t   ring.Transmitter
	ctx context.Context
}

func (t *tpacketTX) next() ([]byte, error) { return t.t.Next(t.ctx) }

// forward copies the received frame into the next transmit slot: the
// receive and transmit rings are separate mappings.
func (t *tpacketTX) forward(b rxBatch, i int) ([]byte, error) {
	f := b.data(i)
	buf, err := t.t.Next(t.ctx)
	if err != nil {
		return nil, err
	}
	if len(f) > len(buf) {
		return nil, errTooBig
	}
	copy(buf, f)
	return buf, nil
}

func (t *tpacketTX) commit(n int) error { return t.t.Commit(n) }
func (t *tpacketTX) flush() error       { return t.t.Flush() }
func (t *tpacketTX) close() error       { return t.t.Close() }

func (t *tpacketTX) stats() txStats {
	s := t.t.Stats()
	return txStats{rejected: s.WrongFormat, dropped: s.Dropped}
}
