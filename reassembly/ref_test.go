package reassembly

import (
	"encoding/binary"
	"slices"
	"time"

	"github.com/pktengine/pktengine/frame"
)

// refReassembler is a slow, obviously-correct model of Reassembler for the
// differential fuzzer: queues in a map, fragments as explicit runs of
// intervals, pages as sets, "least recently active" found by scanning for
// the smallest activity stamp, and its own header parsing. It follows the
// same specification (Linux's rules and this package's memory policy),
// written the simplest way.
type refReassembler struct {
	npages, nqueues     int
	srcPages, srcQueues int
	timeout             [2]int64
	prefix              int
	maxDgrams           int

	live    map[fragKey]*refQueue
	expired []*refQueue
	seq     int64
	used    int // pages
	out     int // datagrams out
	stats   Stats

	started bool
	epoch   time.Time
	last    int64
}

type refRun struct{ off, end int }

type refQueue struct {
	key      fragKey
	src      srcKey
	family   uint8
	runs     []refRun // in offset order
	lastRun  int      // index of the run the highest fragment belongs to
	length   int
	first    bool
	last     bool
	meat     int
	frags    int
	data     []byte
	hdr      []byte
	l3, nh   int
	firstEnd int
	pages    map[int]bool
	deadline int64
	created  int64
	active   int64
	ecns     map[uint8]bool
	maxSize  int
	maxDF    int
}

func newRef(r *Reassembler) *refReassembler {
	// The same sizes as the real one: they are part of the policy.
	return &refReassembler{
		npages: len(r.mem)/pageSize - 1, nqueues: len(r.queues) - 1,
		srcPages: int(r.srcPages), srcQueues: int(r.srcQueues),
		timeout: r.timeout, prefix: r.v6prefix, maxDgrams: len(r.dgrams),
		live: map[fragKey]*refQueue{},
	}
}

type refResult struct {
	o      Outcome
	frame  []byte
	sendPP bool
	pp     ParamProblem
}

func (r *refReassembler) clock(now time.Time) int64 {
	if !r.started {
		r.epoch, r.started = now, true
	}
	t := max(int64(now.Sub(r.epoch)), r.last)
	r.last = t
	return t
}

func (r *refReassembler) mib(fam uint8) *MIB {
	if fam == 6 {
		return &r.stats.IP6
	}
	return &r.stats.IP
}

// refFrag is what refParse reads from a fragment.
type refFrag struct {
	fam       uint8
	key       fragKey
	src       srcKey
	off, end  int
	more, df  bool
	data, hdr []byte
	l3, nh    int
	ecn       uint8 // the 2-bit ECN field
	size      int
}

func (r *refReassembler) add(b []byte, p *frame.Packet, now time.Time) refResult {
	r.reap(r.clock(now))
	r.stats.FragmentsIn++
	f, o, pp := refParse(b, p, r.prefix)
	if f.fam == 0 {
		return r.drop(Malformed)
	}
	m := r.mib(f.fam)
	m.ReasmReqds++
	switch o {
	case Malformed:
		m.ReasmFails++
		return r.drop(o)
	case IncompleteChain, TooBig, Unaligned:
		m.InHdrErrors++
		res := r.drop(o)
		res.sendPP, res.pp = true, pp
		return res
	}
	q := r.live[f.key]
	if f.end == f.off || f.fam == 4 && f.end > 65515 {
		o := Inconsistent
		if f.end != f.off {
			o = TooBig
		}
		if q != nil {
			r.discard(q, o)
		} else {
			m.ReasmFails++
		}
		return r.drop(o)
	}
	if q == nil {
		q = r.create(&f)
	}
	if !f.more {
		if f.end < q.length || q.last && f.end != q.length {
			r.discard(q, Inconsistent)
			return r.drop(Inconsistent)
		}
		q.last, q.length = true, f.end
	} else if f.end > q.length {
		if q.last {
			r.discard(q, Inconsistent)
			return r.drop(Inconsistent)
		}
		q.length = f.end
	}
	// Runs, as inet_frag_queue_insert keeps them.
	switch {
	case len(q.runs) == 0:
		q.runs = []refRun{{f.off, f.end}}
		q.lastRun = 0
	case q.runs[q.lastRun].end < f.end:
		tail := q.runs[q.lastRun].end
		if f.off < tail {
			r.discard(q, Overlap)
			return r.drop(Overlap)
		}
		if f.off == tail {
			q.runs[q.lastRun].end = f.end
		} else {
			q.runs = append(q.runs, refRun{f.off, f.end})
			q.lastRun = len(q.runs) - 1
		}
	default:
		for _, run := range q.runs {
			if f.off >= run.off && f.end <= run.end {
				return r.drop(Duplicate)
			}
		}
		for _, run := range q.runs {
			if f.off < run.end && run.off < f.end {
				r.discard(q, Overlap)
				return r.drop(Overlap)
			}
		}
		q.runs = append(q.runs, refRun{f.off, f.end})
		slices.SortFunc(q.runs, func(a, b refRun) int { return a.off - b.off })
		q.lastRun = q.lastRunFor()
	}
	// Memory.
	want := map[int]bool{}
	lo := headerRoom + f.off
	if f.off == 0 {
		lo = headerRoom - len(f.hdr)
	}
	for v := lo; v < headerRoom+f.end; v++ {
		if !q.pages[v/pageSize] {
			want[v/pageSize] = true
		}
	}
	need := len(want)
	for r.srcUsage(q.src)+need > r.srcPages {
		r.evict(r.lru(func(o *refQueue) bool { return o != q && o.src == q.src }), true)
	}
	for r.npages-r.used < need {
		if len(r.expired) > 0 {
			r.evict(r.expired[0], false)
			continue
		}
		r.evict(r.lru(func(o *refQueue) bool { return o != q }), false)
	}
	for pg := range want {
		q.pages[pg] = true
	}
	r.used += need
	// Store.
	if f.off == 0 {
		q.first = true
		q.hdr = slices.Clone(f.hdr)
		q.l3, q.nh, q.firstEnd = f.l3, f.nh, f.end
	}
	copy(q.data[f.off:], f.data)
	q.meat += f.end - f.off
	q.frags++
	r.stats.Fragments[Held]++
	q.ecns[f.ecn] = true
	if f.fam == 4 {
		q.maxSize = max(q.maxSize, f.size)
		if f.df {
			q.maxDF = max(q.maxDF, f.size)
		}
	}
	r.seq++
	q.active = r.seq
	if q.first && q.last && q.meat == q.length {
		return r.complete(q)
	}
	return refResult{o: Held}
}

// lastRunFor returns the index of the run that ends highest.
func (q *refQueue) lastRunFor() int {
	best := 0
	for i, run := range q.runs {
		if run.end > q.runs[best].end {
			best = i
		}
	}
	return best
}

func (r *refReassembler) drop(o Outcome) refResult {
	r.stats.Fragments[o]++
	return refResult{o: o}
}

func (r *refReassembler) srcUsage(s srcKey) int {
	n := 0
	for _, q := range r.live {
		if q.src == s {
			n += len(q.pages)
		}
	}
	return n
}

// lru returns the live queue with the oldest activity among those ok
// accepts.
func (r *refReassembler) lru(ok func(*refQueue) bool) *refQueue {
	var best *refQueue
	for _, q := range r.live {
		if ok(q) && (best == nil || q.active < best.active) {
			best = q
		}
	}
	return best
}

func (r *refReassembler) create(f *refFrag) *refQueue {
	for {
		n := 0
		for _, q := range r.live {
			if q.src == f.src {
				n++
			}
		}
		if n < r.srcQueues {
			break
		}
		r.evict(r.lru(func(q *refQueue) bool { return q.src == f.src }), true)
	}
	if len(r.live)+len(r.expired) == r.nqueues {
		if len(r.expired) > 0 {
			r.evict(r.expired[0], false)
		} else {
			r.evict(r.lru(func(*refQueue) bool { return true }), false)
		}
	}
	r.seq++
	q := &refQueue{
		key: f.key, src: f.src, family: f.fam, data: make([]byte, 0x10000),
		pages: map[int]bool{}, ecns: map[uint8]bool{},
		created: r.seq, active: r.seq,
		deadline: r.last + r.timeout[famIndex(f.fam)],
	}
	r.live[f.key] = q
	return q
}

func (r *refReassembler) settle(q *refQueue, o Outcome) {
	r.stats.Fragments[o] += uint64(q.frags)
	r.stats.Fragments[Held] -= uint64(q.frags)
	q.frags = 0
}

func (r *refReassembler) release(q *refQueue) {
	delete(r.live, q.key)
	r.used -= len(q.pages)
}

func (r *refReassembler) discard(q *refQueue, o Outcome) {
	m := r.mib(q.family)
	m.ReasmFails++
	if o == Overlap {
		m.ReasmOverlaps++
	}
	r.settle(q, o)
	r.release(q)
}

func (r *refReassembler) evict(q *refQueue, bySource bool) {
	if i := slices.Index(r.expired, q); i >= 0 {
		r.expired = slices.Delete(r.expired, i, i+1)
		r.used -= len(q.pages)
		return
	}
	r.stats.Evictions++
	if bySource {
		r.stats.SourceEvictions++
	}
	r.discard(q, Evicted)
}

func (r *refReassembler) reap(now int64) {
	for _, fam := range []uint8{4, 6} {
		var due []*refQueue
		for _, q := range r.live {
			if q.family == fam && q.deadline <= now {
				due = append(due, q)
			}
		}
		slices.SortFunc(due, func(a, b *refQueue) int { return int(a.created - b.created) })
		for _, q := range due {
			m := r.mib(fam)
			m.ReasmFails++
			m.ReasmTimeout++
			r.settle(q, TimedOut)
			delete(r.live, q.key)
			if q.first {
				r.expired = append(r.expired, q)
			} else {
				r.used -= len(q.pages)
			}
		}
	}
}

func (r *refReassembler) nextExpired(now time.Time) ([]byte, bool) {
	r.reap(r.clock(now))
	if len(r.expired) == 0 {
		return nil, false
	}
	q := r.expired[0]
	r.expired = r.expired[1:]
	r.used -= len(q.pages)
	b := append(slices.Clone(q.hdr), q.data[:q.firstEnd]...)
	return b[:min(len(b), q.l3+quoteLen)], true
}

func (r *refReassembler) complete(q *refQueue) refResult {
	notECT, ce := q.ecns[0], q.ecns[3]
	if notECT && (ce || q.ecns[1] || q.ecns[2]) {
		r.discard(q, BadECN)
		return refResult{o: BadECN}
	}
	var out []byte
	if q.family == 4 {
		if len(q.hdr)-q.l3+q.length > 65535 {
			r.discard(q, TooBig)
			return refResult{o: TooBig}
		}
		out = append(slices.Clone(q.hdr), q.data[:q.length]...)
		ip := out[q.l3:]
		binary.BigEndian.PutUint16(ip[2:], uint16(len(ip)))
		if ce {
			ip[1] |= 3
		}
		ip[6], ip[7] = 0, 0
		if q.maxDF == q.maxSize {
			ip[6] = 0x40
		}
		ip[10], ip[11] = 0, 0
		var sum uint32
		for i := 0; i < int(ip[0]&0xf)*4; i += 2 {
			sum += uint32(binary.BigEndian.Uint16(ip[i:]))
		}
		for sum > 0xffff {
			sum = sum&0xffff + sum>>16
		}
		binary.BigEndian.PutUint16(ip[10:], ^uint16(sum))
	} else {
		fh := len(q.hdr) - 8
		if fh-q.l3-40+q.length > 65535 {
			r.discard(q, TooBig)
			return refResult{o: TooBig}
		}
		out = append(slices.Clone(q.hdr[:fh]), q.data[:q.length]...)
		ip := out[q.l3:]
		ip[q.nh] = q.hdr[fh]
		binary.BigEndian.PutUint16(ip[4:], uint16(len(ip)-40))
		if ce {
			ip[1] |= 3 << 4
		}
	}
	if r.out == r.maxDgrams {
		r.discard(q, NoBuffer)
		return refResult{o: NoBuffer}
	}
	r.out++
	r.mib(q.family).ReasmOKs++
	r.settle(q, Reassembled)
	r.release(q)
	return refResult{o: Reassembled, frame: out}
}

// refParse reads a fragment with plain byte indexing.
func refParse(b []byte, p *frame.Packet, prefix int) (f refFrag, o Outcome, pp ParamProblem) {
	l3, end := int(p.L3Off), int(p.End)
	if end > len(b) || l3 > end {
		return f, Malformed, pp
	}
	ip := b[l3:end]
	f.l3 = l3
	switch {
	case p.IPVersion == 4:
		if len(ip) < 20 || ip[0]>>4 != 4 || int(ip[0]&15)*4 < 20 || int(ip[0]&15)*4 > len(ip) ||
			int(binary.BigEndian.Uint16(ip[2:])) != len(ip) {
			return f, Malformed, pp
		}
		ff := binary.BigEndian.Uint16(ip[6:])
		if ff&0x3fff == 0 {
			return f, Malformed, pp
		}
		ihl := int(ip[0]&15) * 4
		f.fam = 4
		f.off = int(ff&0x1fff) * 8
		f.more = ff&0x2000 != 0
		f.df = ff&0x4000 != 0
		f.end = f.off + len(ip) - ihl
		if f.more {
			f.end = max(f.off, f.end/8*8)
		}
		f.data = ip[ihl : ihl+f.end-f.off]
		f.hdr = b[:l3+ihl]
		f.size = ihl + f.end - f.off
		f.ecn = ip[1] & 3
		copy(f.key[:4], ip[12:16])
		copy(f.key[16:20], ip[16:20])
		f.key[34], f.key[35] = ip[4], ip[5]
		f.key[36], f.key[37] = 4, ip[9]
		f.src[0] = 4
		copy(f.src[1:], ip[12:16])
		return f, 0, pp
	case p.IPVersion == 6:
		if len(ip) < 40 || ip[0]>>4 != 6 || 40+int(binary.BigEndian.Uint16(ip[4:])) != len(ip) {
			return f, Malformed, pp
		}
		next, off, nh := ip[6], 40, 6
		for n := 0; next != 44; n++ {
			ok := n < 8 && off+2 <= len(ip)
			hl := 0
			switch next {
			case 0, 43, 60, 135, 139, 140:
				if ok {
					hl = int(ip[off+1])*8 + 8
				}
			case 51:
				if ok {
					hl = int(ip[off+1])*4 + 8
				}
			default:
				ok = false
			}
			if !ok || off+hl > len(ip) {
				return f, Malformed, pp
			}
			next, nh, off = ip[off], off, off+hl
		}
		if off+8 > len(ip) {
			return f, Malformed, pp
		}
		fo := binary.BigEndian.Uint16(ip[off+2:])
		f.off, f.more = int(fo&^7), fo&1 != 0
		if f.off == 0 && !f.more {
			return f, Malformed, pp
		}
		f.fam = 6
		if l3+off+8 > headerRoom {
			return f, Malformed, pp
		}
		data := off + 8
		f.end = f.off + len(ip) - data
		f.nh = nh
		f.data, f.hdr = ip[data:], b[:l3+data]
		f.ecn = byte(binary.BigEndian.Uint16(ip[0:])>>4) & 3
		copy(f.key[:16], ip[8:24])
		copy(f.key[16:32], ip[24:40])
		copy(f.key[32:36], ip[off+4:off+8])
		f.key[36] = 6
		f.src[0] = 6
		for i := range 16 {
			bits := min(max(prefix-8*i, 0), 8)
			f.src[1+i] = ip[8+i] & byte(uint16(0xff00)>>bits)
		}
		if f.off == 0 && !refChainComplete(ip[data:], ip[off]) {
			return f, IncompleteChain, ParamProblem{3, 0}
		}
		if f.end > 65535 {
			return f, TooBig, ParamProblem{0, uint32(off + 2)}
		}
		if f.more && f.end%8 != 0 {
			return f, Unaligned, ParamProblem{0, 4}
		}
		return f, 0, pp
	}
	return f, Malformed, pp
}

// refChainComplete is chainComplete over the fragmentable part alone.
func refChainComplete(d []byte, next uint8) bool {
	for range 16 {
		switch next {
		case 59:
			return true
		case 6:
			return len(d) >= 20
		case 17, 58:
			return len(d) >= 8
		case 44:
			if len(d) < 8 {
				return false
			}
			next, d = d[0], d[8:]
		case 0, 43, 60, 135, 139, 140, 51:
			if len(d) < 2 {
				return false
			}
			hl := int(d[1])*8 + 8
			if next == 51 {
				hl = int(d[1])*4 + 8
			}
			if hl > len(d) {
				return false
			}
			next, d = d[0], d[hl:]
		default:
			return len(d) >= 1
		}
	}
	return true
}

func (r *refReassembler) snapshot() Stats {
	s := r.stats
	s.Queues = len(r.live)
	s.Expired = len(r.expired)
	srcs := map[srcKey]bool{}
	for _, q := range r.live {
		srcs[q.src] = true
	}
	s.Sources = len(srcs)
	s.MemoryInUse = r.used * pageSize
	s.DatagramsOut = r.out
	return s
}
