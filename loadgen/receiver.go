package loadgen

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/pktengine/pktengine/bpf"
	"github.com/pktengine/pktengine/ring"
)

// replySnapLen is how much of a reply the receive ring keeps: headers and
// the signature (14 + 40 + 8 + 18 = 80 bytes for IPv6), rounded up.
const replySnapLen = 128

// receiver is the receive side: one goroutine reading the RX ring and
// matching replies to streams. Its state is guarded by mu, taken once per
// ring batch (a V3 block), so progress reports and the start and end of a
// run can look at it consistently.
type receiver struct {
	rx   *ring.RX
	done chan struct{}

	mu      sync.Mutex
	tag     uint16
	streams []*SeqTracker
	hist    Histogram // this run
	ivl     Histogram // since the last progress report
	frames  uint64    // frames read from the ring this run
	stale   uint64    // replies to an earlier run (another tag)
	foreign uint64    // frames that passed the filter but carry no signature of ours
}

func newReceiver(ifi *net.Interface, cfg *ring.RXConfig, lo, hi uint16, streams, window int) (*receiver, error) {
	// 64 blocks of 256 KiB hold about 80 ms of replies at a million a
	// second (snap length 128): room for the receiving thread to be
	// scheduled late on a CPU it shares with a sending worker.
	c := ring.RXConfig{Version: ring.V3, RetireTimeout: time.Millisecond, BlockCount: 64}
	if cfg != nil {
		c = *cfg
	}
	prog, err := bpf.ReplyFilter(lo, hi, replySnapLen)
	if err != nil {
		return nil, err
	}
	c.Filter = prog
	c.IgnoreOutgoing = true
	rx, err := ring.NewRX(ifi, &c)
	if err != nil {
		return nil, err
	}
	r := &receiver{rx: rx, done: make(chan struct{})}
	for range streams {
		r.streams = append(r.streams, NewSeqTracker(window))
	}
	go r.loop()
	return r, nil
}

func (r *receiver) close() error {
	err := r.rx.Close()
	<-r.done
	return err
}

func (r *receiver) loop() {
	defer close(r.done)
	var b ring.Batch
	ctx := context.Background()
	for {
		if err := r.rx.ReadInto(ctx, &b); err != nil {
			return // closed
		}
		r.mu.Lock()
		for i := range b.Len() {
			data, meta := b.Frame(i)
			r.handle(data, meta.Timestamp)
		}
		r.mu.Unlock()
	}
}

// handle matches one reply. The filter has checked that it is UDP over
// IPv4 or IPv6 (without extension headers) to one of our ports, so the
// payload offset follows from the IP header alone.
func (r *receiver) handle(data []byte, rxTime int64) {
	r.frames++
	var off int
	switch {
	case len(data) < 34:
		r.foreign++
		return
	case binary.BigEndian.Uint16(data[12:]) == 0x0800:
		off = 14 + int(data[14]&0x0f)*4 + 8
	default:
		off = 14 + 40 + 8
	}
	if len(data) < off {
		r.foreign++
		return
	}
	sig, ok := ParseSignature(data[off:])
	switch {
	case !ok || int(sig.Stream) >= len(r.streams):
		r.foreign++
		return
	case sig.Tag != r.tag:
		r.stale++
		return
	}
	if r.streams[sig.Stream].Add(sig.Seq) == SeqDuplicate {
		return
	}
	lat := rxTime - sig.Time
	r.hist.Record(lat)
	r.ivl.Record(lat)
}

// begin resets the counts for a run with a new tag and returns the ring's
// statistics so far.
func (r *receiver) begin(tag uint16) ring.Stats {
	st, _ := r.rx.Stats()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.tag = tag
	for _, t := range r.streams {
		t.Reset()
	}
	r.hist.Reset()
	r.ivl.Reset()
	r.frames, r.stale, r.foreign = 0, 0, 0
	return st
}

// received returns the distinct replies of this run so far.
func (r *receiver) receivedLocked() uint64 {
	var n uint64
	for _, t := range r.streams {
		n += t.Stats().Received
	}
	return n
}

// snapshot returns the replies so far and moves the interval histogram
// into h.
func (r *receiver) snapshot(h *Histogram) uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	*h = r.ivl
	r.ivl.Reset()
	return r.receivedLocked()
}

// drain waits until sent replies have arrived or d has passed.
func (r *receiver) drain(sent uint64, d time.Duration) {
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		r.mu.Lock()
		n := r.receivedLocked()
		r.mu.Unlock()
		if n >= sent {
			// Wait a little more for duplicates, then stop.
			time.Sleep(min(time.Until(end), 2*time.Millisecond))
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// finish fills in the receive side of s.
func (r *receiver) finish(s *Summary, before ring.Stats) {
	st, err := r.rx.Stats()
	if !errors.Is(err, ring.ErrClosed) {
		s.RingDrops = st.Drops - before.Drops
	}
	r.finish0(s)
}

// finish0 fills in the counts of s.
func (r *receiver) finish0(s *Summary) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, t := range r.streams {
		s.Seq.Add(t.Stats())
	}
	s.Received = s.Seq.Received
	s.Stale, s.Foreign = r.stale, r.foreign
	s.Latency = r.hist.Summary()
}
