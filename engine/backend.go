package engine

import "github.com/pktengine/pktengine/frame"

// The backend boundary. A worker receives frames from an rxRing and
// sends frames through a txRing; the engine's shared transmitter for
// Port.Send is one more txRing. TPACKET rings implement them
// (backend_tpacket_linux.go); nothing on this side of the boundary knows
// which kernel interface is underneath.

// backend opens an engine's rings.
type backend interface {
	// openWorker opens worker i's receive ring and transmit ring.
	openWorker(i int) (rxRing, txRing, error)
	// openShared opens the transmit ring that Port.Send shares.
	openShared() (txRing, error)
}

// openWorkers opens the shared transmit ring and a worker per
// Config.Workers, each with its pair of rings.
func (e *Engine) openWorkers(b backend) error {
	var err error
	if e.tx, err = b.openShared(); err != nil {
		return err
	}
	for i := range e.cfg.Workers {
		rx, tx, err := b.openWorker(i)
		if err != nil {
			return err
		}
		// The free list holds every batch the ring can hand out, and
		// the one being read.
		e.workers = append(e.workers, newWorker(e, i, rx, tx, rx.maxBatches()+2))
	}
	if ab, ok := b.(auxBackend); ok {
		rx, tx, err := ab.openAux()
		if err != nil {
			return err
		}
		if rx != nil {
			e.workers = append(e.workers, newWorker(e, len(e.workers), rx, tx, rx.maxBatches()+2))
			e.auxWorkers++
		}
	}
	return nil
}

// auxBackend is a backend with a ring beside the workers' (the AF_XDP
// backend's neighbour tap): one more worker, not counted in
// Status.Workers. openAux returns nil rings if there is none.
type auxBackend interface {
	openAux() (rxRing, txRing, error)
}

// rxRing hands out received frames in batches.
type rxRing interface {
	// newBatch returns an empty batch for readInto. A worker makes one
	// per batch it may hold at once and reuses them.
	newBatch() rxBatch
	// readInto waits until frames arrive and fills b with them; b must
	// be released (or empty). It returns an error wrapping
	// net.ErrClosed once the ring is closed.
	readInto(b rxBatch) error
	// maxBatches is the most batches that can be held at once: the
	// ring's geometry, which sizes the worker's free list.
	maxBatches() int
	// stats returns the ring's counters since it was opened; after
	// close, the last ones read.
	stats() rxStats
	// close wakes a waiting readInto. Frames of batches not yet
	// released stay readable until released.
	close() error
}

// rxBatch is a run of received frames that the engine owns until
// release. Its frames may be read, and written in place, until then.
type rxBatch interface {
	len() int
	// frame returns frame i and what the backend knows about it; data
	// returns its bytes alone.
	frame(i int) ([]byte, rxMeta)
	data(i int) []byte
	// release gives the frames back; any goroutine may call it, once.
	release()
}

// txRing queues whole Ethernet frames and hands them to the kernel in
// batches. One goroutine at a time uses it.
type txRing interface {
	// next returns an empty buffer for the next frame, as long as a
	// frame may be; when none is free it flushes and waits.
	next() ([]byte, error)
	// forward returns a buffer holding frame i of b, ready to be
	// rewritten into an answer and committed: a copy in a transmit slot,
	// or the received frame itself where the backend transmits from
	// receive memory. The buffer may be longer than the frame (room for
	// a VLAN tag).
	forward(b rxBatch, i int) ([]byte, error)
	// commit queues the first n bytes of the buffer next or forward
	// returned.
	commit(n int) error
	// flush hands the committed frames to the kernel. Frames the kernel
	// will not take are counted in txStats, never left behind.
	flush() error
	stats() txStats
	// close flushes and closes.
	close() error
}

// rxMeta is what the backend knows about a received frame besides its
// bytes.
type rxMeta struct {
	// time is when the frame was received, in ns since the Unix epoch;
	// 0 if the backend does not say (the worker reads the clock).
	time int64
	// wireLen is the frame's length on the wire without a stripped VLAN
	// tag; 0 means the length of its data.
	wireLen int
	// kind is how the frame's destination relates to this host.
	kind frameKind
	// vlan is a tag the kernel removed from the frame (flag metaVLAN).
	vlan  frame.VLANTag
	flags metaFlags
}

// frameKind is what a frame's destination MAC address is to this host
// (sll_pkttype for AF_PACKET).
type frameKind uint8

const (
	kindHost      frameKind = iota // to this host's MAC address
	kindBroadcast                  // to ff:ff:ff:ff:ff:ff
	kindMulticast                  // to a multicast MAC address
	kindOtherHost                  // to another host (promiscuous mode)
	kindOutgoing                   // sent by this host
)

// metaFlags are the yes-or-no facts of rxMeta.
type metaFlags uint8

const (
	// metaTruncated: the data is shorter than the frame was.
	metaTruncated metaFlags = 1 << iota
	// metaVLAN: the kernel removed rxMeta.vlan from the frame.
	metaVLAN
	// metaCsumPartial: the transport checksum holds only the pseudo-
	// header sum (a local sender on a veth left it to an offload).
	metaCsumPartial
	// metaCsumValid: the device verified the transport checksum.
	metaCsumValid
	// metaCsumUnknown: the backend cannot say whether a checksum is
	// partial (AF_XDP has no flag for it): one that fails but equals
	// the pseudo-header sum is taken for partial
	// (frame.Packet.VerifyUDPChecksumPartial), and metaCsumPartial set.
	metaCsumUnknown
)

// strippedVLAN returns the tag the kernel removed from the frame.
func (m *rxMeta) strippedVLAN() (frame.VLANTag, bool) { return m.vlan, m.flags&metaVLAN != 0 }

// mustVerifyChecksum reports whether the engine has to verify the
// transport checksum itself: neither did the device, nor is it partial.
func (m *rxMeta) mustVerifyChecksum() bool { return m.flags&(metaCsumPartial|metaCsumValid) == 0 }

// rxStats are a receive ring's counters: the frames the kernel passed
// through the filter, those lost because the ring was full, and the
// times the ring stopped because user space still held its next slot.
type rxStats struct {
	packets, drops, freezes uint64
}

// backendReport is what a backend adds to Counters and Status beyond
// its rings' counters (the AF_XDP backend: XDP statistics, the program's
// counters, the frame checks). TPACKET has none.
type backendReport interface {
	addCounters(c *Counters)
	status() *XDPStatus
}

// txStats are a transmit ring's counters of frames that did not leave:
// rejected as malformed by the kernel, and dropped because the kernel
// refused the send (no buffer, link down).
type txStats struct {
	rejected, dropped uint64
}
