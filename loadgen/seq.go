package loadgen

// DefaultWindow is the reordering window of a SeqTracker: how far behind
// the highest sequence number seen a frame may arrive and still be told
// apart from a duplicate.
const DefaultWindow = 1 << 16

// SeqStats are what a SeqTracker counted.
type SeqStats struct {
	// Received counts distinct sequence numbers (first arrivals).
	Received uint64 `json:"received"`
	// Duplicates counts arrivals of a sequence number already seen.
	Duplicates uint64 `json:"duplicates"`
	// Reordered counts first arrivals below the highest sequence number
	// seen before them (RFC 4737's reordered packets).
	Reordered uint64 `json:"reordered"`
	// Late counts arrivals so far behind that they fell out of the
	// window: counted as received and reordered, but a duplicate among
	// them would go unnoticed.
	Late uint64 `json:"late"`
	// Next is one past the highest sequence number seen.
	Next uint64 `json:"next"`
}

// Lost returns how many of sent frames never arrived.
func (s SeqStats) Lost(sent uint64) uint64 {
	if s.Received >= sent {
		return 0
	}
	return sent - s.Received
}

// Add adds o's counts to s, for totals over streams.
func (s *SeqStats) Add(o SeqStats) {
	s.Received += o.Received
	s.Duplicates += o.Duplicates
	s.Reordered += o.Reordered
	s.Late += o.Late
	s.Next += o.Next
}

// SeqTracker follows the sequence numbers of one stream with a sliding
// bitmap of the last Window numbers below the highest one seen: one bit per
// number, so a window of 65536 costs 8 KiB and each arrival a few word
// operations. It does not allocate after NewSeqTracker.
type SeqTracker struct {
	bits  []uint64
	mask  uint64 // window - 1
	stats SeqStats
}

// SeqResult classifies one arrival.
type SeqResult uint8

const (
	SeqInOrder   SeqResult = iota // above every number seen before (gaps allowed)
	SeqReordered                  // first arrival of a number below the highest seen
	SeqDuplicate                  // seen before
	SeqLate                       // below the window: first arrival as far as anyone can tell
)

// NewSeqTracker returns a tracker with a window of at least window numbers
// (rounded up to a power of two, at least 64; 0 means DefaultWindow).
func NewSeqTracker(window int) *SeqTracker {
	if window <= 0 {
		window = DefaultWindow
	}
	w := uint64(64)
	for w < uint64(window) {
		w <<= 1
	}
	return &SeqTracker{bits: make([]uint64, w/64), mask: w - 1}
}

// Window returns the window size.
func (t *SeqTracker) Window() int { return int(t.mask + 1) }

// Reset forgets everything.
func (t *SeqTracker) Reset() {
	clear(t.bits)
	t.stats = SeqStats{}
}

// Stats returns the counts so far.
func (t *SeqTracker) Stats() SeqStats { return t.stats }

// Add records the arrival of seq.
func (t *SeqTracker) Add(seq uint64) SeqResult {
	s := &t.stats
	if seq >= s.Next {
		// Numbers from Next to seq are new to the window: clear what
		// their bit positions held for numbers a window ago.
		t.clear(s.Next, seq)
		t.set(seq)
		s.Next = seq + 1
		s.Received++
		return SeqInOrder
	}
	if s.Next-seq > t.mask+1 {
		s.Late++
		s.Reordered++
		s.Received++
		return SeqLate
	}
	if t.test(seq) {
		s.Duplicates++
		return SeqDuplicate
	}
	t.set(seq)
	s.Reordered++
	s.Received++
	return SeqReordered
}

func (t *SeqTracker) set(seq uint64) {
	p := seq & t.mask
	t.bits[p/64] |= 1 << (p % 64)
}

func (t *SeqTracker) test(seq uint64) bool {
	p := seq & t.mask
	return t.bits[p/64]&(1<<(p%64)) != 0
}

// clear clears the bits of positions lo..hi (numbers, inclusive), all of
// them when the range spans the window.
func (t *SeqTracker) clear(lo, hi uint64) {
	if hi-lo >= t.mask {
		clear(t.bits)
		return
	}
	p, q := lo&t.mask, hi&t.mask
	if p > q { // wraps around the end of the bitmap
		t.clearPos(p, t.mask)
		p = 0
	}
	t.clearPos(p, q)
}

// clearPos clears bit positions p..q, p <= q, within the bitmap.
func (t *SeqTracker) clearPos(p, q uint64) {
	pw, qw := p/64, q/64
	lo := ^uint64(0) << (p % 64)    // bits p%64 and up
	hi := ^uint64(0) >> (63 - q%64) // bits q%64 and down
	if pw == qw {
		t.bits[pw] &^= lo & hi
		return
	}
	t.bits[pw] &^= lo
	clear(t.bits[pw+1 : qw])
	t.bits[qw] &^= hi
}
