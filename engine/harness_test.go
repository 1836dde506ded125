package engine

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"testing"

	"github.com/pktengine/pktengine/frame"
	"github.com/pktengine/pktengine/ring"
)

// The unit tests drive a worker without rings: frames go into
// handleBatch through fakeBatch (the seam a fuzzer uses too), answers
// come out of fakeTX.

var (
	macEngine = frame.MAC{0x02, 0, 0, 0, 0, 0x01}
	macPeer   = frame.MAC{0x02, 0, 0, 0, 0, 0x02}
	macOther  = frame.MAC{0x02, 0, 0, 0, 0, 0x03}

	owned4  = netip.MustParseAddr("198.18.0.1")
	shared4 = netip.MustParseAddr("198.18.0.10")
	peer4   = netip.MustParseAddr("198.18.0.2")
	owned6  = netip.MustParseAddr("fd00::1")
	shared6 = netip.MustParseAddr("fd00::10")
	peer6   = netip.MustParseAddr("fd00::2")
	bcast4  = netip.MustParseAddr("198.18.0.255")
)

// testAddrs are the engine addresses of the unit tests: an owned and a
// shared address of each family.
var testAddrs = []AddrInfo{
	{Prefix: netip.PrefixFrom(owned4, 24), Owned: true},
	{Prefix: netip.PrefixFrom(shared4, 24)},
	{Prefix: netip.PrefixFrom(owned6, 64), Owned: true},
	{Prefix: netip.PrefixFrom(shared6, 64)},
}

// fakeTX is a txRing over private buffers. It keeps a copy of
// every committed frame unless discard is set, which makes Commit
// allocation-free for the allocation tests.
type fakeTX struct {
	buf     []byte
	held    bool
	frames  [][]byte
	discard bool
	txs     ring.TXStats
	dropped uint64
	refuse  error // flush fails with it, dropping what it holds
	flushes int
	closed  bool
}

func newFakeTX() *fakeTX { return &fakeTX{buf: make([]byte, 2048)} }

func (t *fakeTX) next() ([]byte, error) {
	if t.closed {
		return nil, ring.ErrClosed
	}
	t.held = true
	return t.buf, nil
}

func (t *fakeTX) forward(b rxBatch, i int) ([]byte, error) {
	buf, err := t.next()
	if err != nil {
		return nil, err
	}
	if len(b.data(i)) > len(buf) {
		return nil, errTooBig
	}
	copy(buf, b.data(i))
	return buf, nil
}

func (t *fakeTX) commit(n int) error {
	if !t.held {
		return ring.ErrNoBuffer
	}
	if n < 14 || n > len(t.buf) {
		return ring.ErrFrameSize
	}
	t.held = false
	t.txs.Committed++
	if !t.discard {
		t.frames = append(t.frames, bytes.Clone(t.buf[:n]))
	}
	return nil
}

func (t *fakeTX) flush() error {
	t.held = false
	t.flushes++
	if t.refuse != nil {
		// As a ring does when the kernel refuses the send: every
		// frame not yet sent is dropped and counted.
		t.dropped += t.txs.Committed - t.txs.Sent - t.dropped
		t.frames = nil
		return t.refuse
	}
	t.txs.Sent = t.txs.Committed - t.dropped
	return nil
}

func (t *fakeTX) stats() txStats { return txStats{rejected: t.txs.WrongFormat, dropped: t.dropped} }
func (t *fakeTX) close() error   { t.closed = true; return nil }

// take returns and forgets the committed frames.
func (t *fakeTX) take() [][]byte {
	f := t.frames
	t.frames = nil
	return f
}

// fakeBatch is a batch of frames with their metadata, as a TPACKET ring
// hands them over.
type fakeBatch struct {
	frames   [][]byte
	metas    []rxMeta
	released int
}

func (b *fakeBatch) len() int                     { return len(b.frames) }
func (b *fakeBatch) frame(i int) ([]byte, rxMeta) { return b.frames[i], b.metas[i] }
func (b *fakeBatch) data(i int) []byte            { return b.frames[i] }
func (b *fakeBatch) release()                     { b.released++ }

func (b *fakeBatch) add(f []byte, m ring.Meta) *fakeBatch {
	b.frames = append(b.frames, f)
	b.metas = append(b.metas, tpacketMeta(&m))
	return b
}

// ref returns the batch as the worker holds it.
func (r *testRig) ref(b rxBatch) *batchRef { return &batchRef{b: b, free: r.w.free} }

// testRig is an engine with one ring-less worker.
type testRig struct {
	e  *Engine
	w  *worker
	tx *fakeTX
}

func newRig(tb testing.TB, cfg *Config) *testRig {
	tb.Helper()
	c, err := cfg.withDefaults()
	if err != nil {
		tb.Fatal(err)
	}
	ifi := &net.Interface{Index: 7, Name: "test0", MTU: 1500, HardwareAddr: net.HardwareAddr(macEngine[:])}
	e, err := newEngine(ifi, c, testAddrs)
	if err != nil {
		tb.Fatal(err)
	}
	tx := newFakeTX()
	w := newWorker(e, 0, nil, tx, 8)
	e.workers = []*worker{w}
	e.tx = newFakeTX()
	tb.Cleanup(func() { e.Close() })
	return &testRig{e: e, w: w, tx: tx}
}

// batch feeds frames through the worker as one ring batch and returns
// their outcomes.
func (r *testRig) batch(b *fakeBatch) []Outcome {
	rec := &recordingBatch{fakeBatch: b, w: r.w}
	r.w.handleBatch(r.ref(rec))
	if b.len() > 0 {
		rec.out = append(rec.out, rec.diff())
	}
	return rec.out
}

// one feeds a single frame with metadata m.
func (r *testRig) one(f []byte, m ring.Meta) Outcome {
	return r.batch(new(fakeBatch).add(f, m))[0]
}

// checkOneFrameCounted checks, for the case called name, that the
// engine's counters agree with each other and count one frame more than
// before.
func (r *testRig) checkOneFrameCounted(t *testing.T, name string, before Counters) {
	t.Helper()
	after := r.e.Counters()
	if err := after.Check(); err != nil {
		t.Errorf("%s: %v", name, err)
	}
	if after.FramesIn != before.FramesIn+1 {
		t.Errorf("%s: FramesIn moved by %d", name, after.FramesIn-before.FramesIn)
	}
}

// recordingBatch notes the outcome of every frame by comparing the
// worker's outcome counters between frames.
type recordingBatch struct {
	*fakeBatch
	w    *worker
	out  []Outcome
	prev counterSet
}

func (b *recordingBatch) frame(i int) ([]byte, rxMeta) {
	if i > 0 {
		b.out = append(b.out, b.diff())
	}
	b.prev = b.w.count
	return b.fakeBatch.frame(i)
}

// diff returns the outcome counted since prev; 255 if none or several.
func (b *recordingBatch) diff() Outcome {
	found, n := Outcome(255), 0
	for o := range NumOutcomes {
		d := b.w.count[cOutcome0+counter(o)] - b.prev[cOutcome0+counter(o)]
		if d != 0 {
			found, n = o, n+int(d)
		}
	}
	if n != 1 {
		return 255
	}
	return found
}

// udpFrame builds a UDP datagram from (src) to (dst) in an Ethernet frame
// from macPeer to macEngine.
func udpFrame(tb testing.TB, src, dst netip.AddrPort, payload []byte, mod ...func(*frame.UDPSpec)) []byte {
	tb.Helper()
	s := &frame.UDPSpec{SrcMAC: macPeer, DstMAC: macEngine, Src: src, Dst: dst, Payload: payload, ID: 77}
	for _, m := range mod {
		m(s)
	}
	buf := make([]byte, 2048)
	n, err := frame.BuildUDP(buf, s)
	if err != nil {
		tb.Fatal(err)
	}
	return buf[:n]
}

func ap(a netip.Addr, port uint16) netip.AddrPort { return netip.AddrPortFrom(a, port) }

// refSum is a naive RFC 1071 sum, independent of proto's, for checking
// what the engine sends.
func refSum(bs ...[]byte) uint16 {
	var s uint32
	for _, b := range bs {
		for i := 0; i+1 < len(b); i += 2 {
			s += uint32(b[i])<<8 | uint32(b[i+1])
		}
		if len(b)%2 == 1 {
			s += uint32(b[len(b)-1]) << 8
		}
	}
	for s > 0xffff {
		s = s&0xffff + s>>16
	}
	return uint16(s)
}

// checkUDPFrame verifies the IPv4 header checksum and the UDP checksum of
// an untagged or tagged frame with the naive sum, and returns the
// decoded packet.
func checkUDPFrame(tb testing.TB, f []byte) *frame.Packet {
	tb.Helper()
	var p frame.Packet
	if r := p.Decode(f); r != frame.ReasonOK {
		tb.Fatalf("reply does not decode: %v", r)
	}
	u := f[p.L4Off:p.L4End]
	var pseudo []byte
	if p.IPVersion == 4 {
		h := f[p.L3Off:p.L4Off]
		if refSum(h) != 0xffff {
			tb.Errorf("IPv4 header checksum wrong: sum %#04x", refSum(h))
		}
		pseudo = append(append(append([]byte{}, h[12:20]...), 0, 17), byte(len(u)>>8), byte(len(u)))
	} else {
		h := f[p.L3Off : p.L3Off+40]
		pseudo = append(append([]byte{}, h[8:40]...), 0, 0, byte(len(u)>>8), byte(len(u)), 0, 0, 0, 17)
	}
	if binary.BigEndian.Uint16(u[6:]) == 0 && p.IPVersion == 4 {
		return &p
	}
	if refSum(pseudo, u) != 0xffff {
		tb.Errorf("UDP checksum wrong: sum %#04x", refSum(pseudo, u))
	}
	return &p
}
