package reassembly

import (
	"errors"
	"fmt"
	"hash/maphash"
	"time"

	"github.com/pktengine/pktengine/frame"
)

// Defaults, from Linux where it has one.
const (
	// DefaultMemoryLimit is net.ipv4.ipfrag_high_thresh's default.
	DefaultMemoryLimit = 4 << 20
	// DefaultTimeoutIPv4 is net.ipv4.ipfrag_time's default (IP_FRAG_TIME).
	DefaultTimeoutIPv4 = 30 * time.Second
	// DefaultTimeoutIPv6 is net.ipv6.ip6frag_time's default.
	DefaultTimeoutIPv6 = 60 * time.Second
	// DefaultIPv6SourcePrefix groups IPv6 sources by /64: one host holds
	// a whole /64, so counting its addresses apart would let it multiply
	// its share at will.
	DefaultIPv6SourcePrefix = 64
	// DefaultMaxDatagrams is how many reassembled datagrams may be
	// handed out and not yet released.
	DefaultMaxDatagrams = 8
	// MinMemoryLimit is the smallest Config.MemoryLimit New accepts.
	MinMemoryLimit = 256 << 10
)

// MaxFrameLen is the longest frame a Datagram holds: two VLAN tags, the
// IPv6 fixed header and the largest payload (65,535 bytes). An IPv4
// datagram with its header is at most 65,535 bytes.
const MaxFrameLen = frame.EthernetHeaderLen + 2*frame.VLANTagLen + frame.IPv6HeaderLen + 0xffff

// Layout of the state kept for a datagram under reassembly. Fragment data
// goes into pages of a preallocated arena; a queue maps its virtual space
// onto pages as fragments arrive. The virtual space starts with room for
// the first fragment's headers (link, IP, IPv6 extension and Fragment
// headers, right-aligned against the data) and continues with the
// fragmentable part at data offset 0:
//
//	virtual:  0 ........ headerRoom-hdrLen | headers | data 0 ............. 65,535
//	pages:    |  0  |  1  |  2  |  3  | ... |  65 |
//
// So a queue costs memory in proportion to the bytes its fragments carry
// (rounded to pages), whatever their offsets, and the header and data of
// the first fragment sit next to each other for the copy out.
const (
	pageShift    = 10
	pageSize     = 1 << pageShift
	headerRoom   = 2 * pageSize
	maxHeaderLen = headerRoom
	vPages       = (headerRoom + 0x10000) / pageSize
	unitShift    = 3 // coverage is tracked in 8-byte units, the fragment offset unit
	unitsPerPage = pageSize >> unitShift
	wordsPerPage = unitsPerPage / 64
	// quoteLen is how much of a timed-out datagram's first fragment, from
	// its IP header on, Expired carries: what an ICMPv6 error may quote
	// (RFC 4443 2.4 (c)); an ICMPv4 error quotes less.
	quoteLen = frame.IPv6MinMTU - frame.IPv6HeaderLen - frame.ICMPHeaderLen
)

// ICMPv6 Parameter Problem codes (RFC 4443 section 3.4, RFC 7112).
const (
	ICMPv6CodeErroneousField  uint8 = 0
	ICMPv6CodeIncompleteChain uint8 = 3
)

// Config configures a Reassembler. A nil *Config and zero fields mean the
// defaults given with each field.
type Config struct {
	// MemoryLimit bounds all the reassembly state, in bytes: the page
	// arena that holds fragment data and the queue and source tables.
	// New allocates it all up front and nothing grows afterwards.
	// Default DefaultMemoryLimit; at least MinMemoryLimit.
	MemoryLimit int

	// MaxQueues bounds the datagrams under reassembly at once. Default:
	// one per 4 KiB of MemoryLimit (1,024 for 4 MiB). Each costs about
	// 400 bytes of the limit.
	MaxQueues int

	// SourceLimit is the share of MemoryLimit (and, in proportion, of
	// MaxQueues) that one source may hold; a source that needs more
	// gives up its own least recently active datagrams first. Default
	// MemoryLimit/8; never less than one datagram of the largest size.
	SourceLimit int

	// IPv6SourcePrefix is the prefix length by which IPv6 sources are
	// grouped for SourceLimit (IPv4 sources count by address). Default
	// DefaultIPv6SourcePrefix; 128 counts every address apart.
	IPv6SourcePrefix int

	// TimeoutIPv4 and TimeoutIPv6 bound how long a datagram may take to
	// complete, counted from its first fragment to arrive, as Linux
	// counts. Defaults DefaultTimeoutIPv4 and DefaultTimeoutIPv6.
	TimeoutIPv4, TimeoutIPv6 time.Duration

	// MaxDatagrams bounds the reassembled datagrams handed out and not
	// yet released; each holds a buffer of MaxFrameLen bytes, outside
	// MemoryLimit. Default DefaultMaxDatagrams.
	MaxDatagrams int
}

// Outcome is what became of a fragment. Add returns the outcome of the
// fragment it is given; Stats counts every fragment under exactly one
// outcome at any moment: Held while its datagram is incomplete, then the
// fate of the whole datagram (Reassembled, Overlap, TimedOut, Evicted,
// ...). So the counters always add up to Stats.FragmentsIn, and Held is the
// only one that goes down.
type Outcome uint8

// Outcomes.
const (
	// Held: stored; the datagram is not complete yet.
	Held Outcome = iota
	// Reassembled: part of a datagram that completed. Add returns it for
	// the fragment that completed one, with the Datagram.
	Reassembled
	// Duplicate: dropped; its bytes lie within a run of fragments already
	// held (Linux's IPFRAG_DUP). The datagram goes on.
	Duplicate
	// Overlap: overlapped held data otherwise than as a duplicate; the
	// whole datagram is discarded (RFC 5722, and Linux for IPv4 too).
	Overlap
	// Inconsistent: its end contradicts the datagram's known end (past
	// the last fragment's end, or a last fragment with another end, or
	// ending before data already held), or it carries no data; the whole
	// datagram is discarded (Linux's discard_qp).
	Inconsistent
	// TooBig: the datagram would pass 65,535 bytes. IPv4: the fragment
	// and its datagram are discarded. IPv6 (fragment end past 65,535):
	// only the fragment is dropped and Result.ParamProblem says what to
	// send (code 0, pointing at the Fragment Offset field).
	TooBig
	// Unaligned: an IPv6 fragment other than the last whose length is not
	// a multiple of 8; dropped, Parameter Problem code 0 pointing at the
	// Payload Length (RFC 8200 section 4.5). IPv4 trims such fragments to
	// a multiple of 8 instead, as Linux does.
	Unaligned
	// IncompleteChain: an IPv6 first fragment without the whole header
	// chain through the upper-layer header (RFC 7112); dropped, Parameter
	// Problem code 3, pointer 0.
	IncompleteChain
	// BadECN: the datagram's fragments mixed Not-ECT with ECT or CE
	// (RFC 3168 section 5.3); discarded when it would have completed.
	BadECN
	// TimedOut: its datagram did not complete in time.
	TimedOut
	// Evicted: its datagram was discarded to make room for others (see
	// the package documentation).
	Evicted
	// NoBuffer: the datagram completed but MaxDatagrams were out; it is
	// discarded.
	NoBuffer
	// Malformed: not an IP fragment this package can take (not a
	// fragment at all, a frame inconsistent with its Packet, or more
	// headers before the data than a queue has room for).
	Malformed

	// NumOutcomes is the number of Outcome values, for counter arrays.
	NumOutcomes
)

var outcomeNames = [NumOutcomes]string{
	Held:            "held",
	Reassembled:     "reassembled",
	Duplicate:       "duplicate",
	Overlap:         "overlap",
	Inconsistent:    "inconsistent",
	TooBig:          "too-big",
	Unaligned:       "unaligned",
	IncompleteChain: "incomplete-chain",
	BadECN:          "bad-ecn",
	TimedOut:        "timed-out",
	Evicted:         "evicted",
	NoBuffer:        "no-buffer",
	Malformed:       "malformed",
}

// String returns the outcome's short name, such as "overlap".
func (o Outcome) String() string {
	if o < NumOutcomes {
		return outcomeNames[o]
	}
	return fmt.Sprintf("outcome-%d", int(o))
}

// ParamProblem is the ICMPv6 Parameter Problem (type 4) Linux sends about
// a dropped fragment, quoting the fragment itself: the code and the
// pointer, an offset from the start of the IPv6 header.
type ParamProblem struct {
	Code    uint8
	Pointer uint32
}

// Result is what Add did with a fragment.
type Result struct {
	// Outcome is the fragment's own outcome: Held, Reassembled, or the
	// reason it was dropped.
	Outcome Outcome

	// Datagram is the reassembled datagram when Outcome is Reassembled,
	// else nil. Release it when done.
	Datagram *Datagram

	// SendParamProblem says that Linux would answer this fragment with
	// an ICMPv6 Parameter Problem (Unaligned, IncompleteChain, IPv6
	// TooBig); ParamProblem has its code and pointer. Whether to send it
	// (rate limits, no errors to multicast destinations, RFC 4443 2.4
	// (e)) is the caller's decision.
	SendParamProblem bool
	ParamProblem     ParamProblem
}

// MIB holds the reassembly counters of Linux's Ip and Ip6 MIBs
// (/proc/net/snmp, /proc/net/snmp6), counted as Linux counts them:
// ReasmReqds per fragment received; ReasmOKs per datagram reassembled;
// ReasmFails per failure (a discarded datagram, a timeout, an eviction, a
// fragment refused), ReasmTimeout per timed-out datagram, ReasmOverlaps
// per datagram discarded for an overlap. InHdrErrors counts the IPv6
// fragments Linux refuses with a Parameter Problem (Ip6InHdrErrors;
// always 0 for IPv4).
type MIB struct {
	ReasmReqds    uint64
	ReasmOKs      uint64
	ReasmFails    uint64
	ReasmTimeout  uint64
	ReasmOverlaps uint64
	InHdrErrors   uint64
}

// Stats is a snapshot of a Reassembler's counters and gauges.
type Stats struct {
	IP, IP6 MIB

	// FragmentsIn counts every call of Add. Fragments counts them by
	// Outcome; Fragments[Held] is the number held now. The counters
	// always add up to FragmentsIn.
	FragmentsIn uint64
	Fragments   [NumOutcomes]uint64

	// Evictions counts datagrams discarded to make room (each also one
	// ReasmFails); SourceEvictions those among them discarded because
	// their own source was over its share.
	Evictions       uint64
	SourceEvictions uint64

	// Queues and Sources are the datagrams under reassembly and the
	// distinct sources they come from; Expired is how many timed-out
	// datagrams wait for NextExpired. MemoryInUse is the bytes of the
	// page arena in use, MemoryLimit its size. DatagramsOut counts
	// reassembled datagrams not yet released.
	Queues       int
	Sources      int
	Expired      int
	MemoryInUse  int
	MemoryLimit  int
	DatagramsOut int
}

// Expired describes a datagram that timed out after its first fragment
// arrived: what an ICMP Time Exceeded, code 1 ("fragment reassembly time
// exceeded", RFC 792, RFC 4443 section 3.3) quotes. RFC 1122 3.3.2 and RFC
// 8200 4.5 send it only when the first fragment was received; Linux also
// applies its usual rules (no error to a multicast or broadcast
// destination, rate limits), which are the caller's.
type Expired struct {
	// Frame is the first fragment as it arrived: link header, IP header
	// (with IPv6 extension and Fragment headers) and the start of its
	// data, at most 1,232 bytes from the IP header on. The header's
	// lengths are the fragment's own. Valid until the next call to the
	// Reassembler.
	Frame []byte
	// L3Off is where the IP header starts in Frame; IPVersion is 4 or 6.
	L3Off     int
	IPVersion uint8
}

// Datagram returns the part of Frame an ICMP error quotes (from the IP
// header on; an ICMPv4 error quotes its first 28+ bytes).
func (e *Expired) Datagram() []byte { return e.Frame[e.L3Off:] }

// Datagram is a reassembled datagram in a pooled buffer, from Add until
// Release.
type Datagram struct {
	buf    []byte
	n      int
	l3Off  int
	frags  int
	family uint8
	idx    int32
	out    bool
}

// Frame returns the reassembled datagram as a complete frame: the first
// fragment's link header (with its VLAN tags), then the IP header of the
// first fragment rewritten as the kernel rewrites it (IPv4: total length,
// flags and offset cleared (DF kept if the largest fragment had it), ECN
// merged, header checksum; IPv6: the Fragment header removed, Next Header
// and Payload Length fixed, ECN merged), then the whole payload.
// frame.(*Packet).Decode reads it as an unfragmented packet (ReasonOK for
// a well-formed UDP datagram), so everything that handles a single frame
// handles it, VerifyUDPChecksum included. It may be longer than any MTU.
func (d *Datagram) Frame() []byte { return d.buf[:d.n] }

// L3Off is where the IP header starts in Frame.
func (d *Datagram) L3Off() int { return d.l3Off }

// IPVersion is 4 or 6.
func (d *Datagram) IPVersion() uint8 { return d.family }

// Fragments is how many fragments made the datagram.
func (d *Datagram) Fragments() int { return d.frags }

// queue flags, as Linux's INET_FRAG_*.
const (
	firstIn uint8 = 1 << iota
	lastIn
)

// queue states.
const (
	stateFree uint8 = iota
	stateLive
	stateExpired // timed out with its first fragment; waits for NextExpired
)

// A queue is one datagram under reassembly. Queues live in a table,
// referred to by index (0 is "none"), linked into a hash chain and three
// lists.
type queue struct {
	key   fragKey
	hnext int32
	links [numLists]link
	src   int32

	state  uint8
	family uint8
	flags  uint8
	ecn    uint8

	deadline int64
	len      int32 // Linux's q.len: the datagram's end as far as known
	meat     int32 // bytes held
	tailEnd  int32 // end of the highest fragment held (the last run's end)
	firstEnd int32 // end of the first fragment's data
	frags    int32
	npages   int32
	maxSize  int32 // IPv4: largest fragment, and largest with DF (Linux's max_size, max_df_size)
	maxDF    int32

	hdrLen uint16 // bytes of the first fragment before its data
	l3Off  uint16
	nhOff  uint16 // IPv6: offset from the IP header of the Next Header naming the Fragment header

	pages [vPages]int32
}

// The lists a queue is on.
const (
	listActive = iota // live queues, least recently active first
	listAge           // live queues of one family by creation (so by deadline); expired queues in expiry order
	listSource        // the live queues of one source, least recently active first
	numLists
)

type link struct{ prev, next int32 }

type listHead struct{ first, last int32 }

// A source is the accounting of one sender (an IPv4 address or an IPv6
// prefix): the pages and queues its live datagrams hold.
type source struct {
	key    srcKey
	hnext  int32
	pages  int32
	nqueue int32
	queues listHead
}

// Reassembler reassembles IPv4 and IPv6 fragments. It is meant to be
// owned by one goroutine (an engine worker), which makes every call,
// Release included; it takes no locks. New allocates everything it will
// use; Add, Release and NextExpired do not allocate.
type Reassembler struct {
	seed maphash.Seed

	timeout   [2]int64 // nanoseconds, by family index
	v6prefix  int
	epoch     time.Time
	started   bool
	lastClock int64

	mem       []byte // the page arena; page 0 is never used
	cover     [][wordsPerPage]uint64
	starts    [][wordsPerPage]uint64
	freePages []int32

	queues     []queue // queues[0] is the "none" sentinel
	freeQueues []int32
	qbuckets   []int32
	sources    []source
	freeSrcs   []int32
	sbuckets   []int32

	active  listHead
	age     [2]listHead
	expired listHead

	srcPages  int32 // per-source limits
	srcQueues int32

	dgrams     []Datagram
	freeDgrams []int32

	quote []byte
	stats Stats
}

// Errors from New.
var (
	ErrMemoryLimit = errors.New("reassembly: Config.MemoryLimit below MinMemoryLimit, or too small for MaxQueues")
	ErrConfig      = errors.New("reassembly: invalid Config")
)

// queueCost is what one queue slot costs of MemoryLimit: the queue, its
// source slot and hash buckets.
const queueCost = 400

// pageCost is what one page costs: its bytes and its coverage bitmaps.
const pageCost = pageSize + 4*wordsPerPage*8

// New returns a Reassembler for cfg (nil for the defaults).
func New(cfg *Config) (*Reassembler, error) {
	var c Config
	if cfg != nil {
		c = *cfg
	}
	if c.MemoryLimit == 0 {
		c.MemoryLimit = DefaultMemoryLimit
	}
	if c.MemoryLimit < MinMemoryLimit {
		return nil, ErrMemoryLimit
	}
	if c.MaxQueues == 0 {
		c.MaxQueues = c.MemoryLimit / 4096
	}
	if c.IPv6SourcePrefix == 0 {
		c.IPv6SourcePrefix = DefaultIPv6SourcePrefix
	}
	if c.TimeoutIPv4 == 0 {
		c.TimeoutIPv4 = DefaultTimeoutIPv4
	}
	if c.TimeoutIPv6 == 0 {
		c.TimeoutIPv6 = DefaultTimeoutIPv6
	}
	if c.MaxDatagrams == 0 {
		c.MaxDatagrams = DefaultMaxDatagrams
	}
	if c.MaxQueues < 2 || c.IPv6SourcePrefix < 0 || c.IPv6SourcePrefix > 128 ||
		c.TimeoutIPv4 < 0 || c.TimeoutIPv6 < 0 || c.MaxDatagrams < 0 || c.SourceLimit < 0 {
		return nil, ErrConfig
	}
	npages := (c.MemoryLimit - c.MaxQueues*queueCost) / pageCost
	if npages < 2*vPages {
		return nil, ErrMemoryLimit
	}
	if c.SourceLimit == 0 {
		c.SourceLimit = c.MemoryLimit / 8
	}

	r := &Reassembler{
		seed:     maphash.MakeSeed(),
		timeout:  [2]int64{int64(c.TimeoutIPv4), int64(c.TimeoutIPv6)},
		v6prefix: c.IPv6SourcePrefix,
		quote:    make([]byte, 0, maxHeaderLen+quoteLen),
	}
	r.mem = make([]byte, (npages+1)*pageSize)
	r.cover = make([][wordsPerPage]uint64, npages+1)
	r.starts = make([][wordsPerPage]uint64, npages+1)
	r.freePages = make([]int32, npages)
	for i := range r.freePages {
		r.freePages[i] = int32(npages - i)
	}
	r.queues = make([]queue, c.MaxQueues+1)
	r.freeQueues = make([]int32, c.MaxQueues)
	for i := range r.freeQueues {
		r.freeQueues[i] = int32(c.MaxQueues - i)
	}
	// Every source has at least one live queue, so there are never more
	// sources than queues.
	r.sources = make([]source, c.MaxQueues+1)
	r.freeSrcs = make([]int32, c.MaxQueues)
	for i := range r.freeSrcs {
		r.freeSrcs[i] = int32(c.MaxQueues - i)
	}
	nb := 1
	for nb < 2*c.MaxQueues {
		nb <<= 1
	}
	r.qbuckets = make([]int32, nb)
	r.sbuckets = make([]int32, nb)

	// A source may always hold one datagram of the largest size.
	r.srcPages = int32(max(int64(c.SourceLimit)*int64(npages)/int64(c.MemoryLimit), vPages))
	r.srcPages = min(r.srcPages, int32(npages))
	r.srcQueues = int32(max(int64(c.SourceLimit)*int64(c.MaxQueues)/int64(c.MemoryLimit), 1))

	r.dgrams = make([]Datagram, c.MaxDatagrams)
	r.freeDgrams = make([]int32, c.MaxDatagrams)
	for i := range r.dgrams {
		r.freeDgrams[i] = int32(c.MaxDatagrams - 1 - i)
		r.dgrams[i] = Datagram{buf: make([]byte, MaxFrameLen), idx: int32(i)}
	}
	r.stats.MemoryLimit = npages * pageSize
	return r, nil
}

// clock turns now into nanoseconds since the first call, never going
// backwards.
func (r *Reassembler) clock(now time.Time) int64 {
	if !r.started {
		r.epoch, r.started = now, true
	}
	t := int64(now.Sub(r.epoch))
	if t < r.lastClock {
		t = r.lastClock
	}
	r.lastClock = t
	return t
}

func famIndex(family uint8) int {
	if family == 6 {
		return 1
	}
	return 0
}

func (r *Reassembler) mib(family uint8) *MIB {
	if family == 6 {
		return &r.stats.IP6
	}
	return &r.stats.IP
}

// Add takes one fragment: the frame, the Packet frame.Decode filled for it
// and the current time (any clock; only differences matter). Pass every
// frame Decode flags as a fragment (p.IsFragment()), whatever Reason it
// returned with it: the reassembler judges the fragment by the IP layer,
// as the kernel does, and a first fragment whose upper-layer header Decode
// found truncated or bad is still a fragment (IPv4), or one to refuse with
// a Parameter Problem (IPv6, RFC 7112). The frame is copied: its buffer
// may be reused as soon as Add returns.
//
// It first retires the datagrams whose time is up (see NextExpired).
func (r *Reassembler) Add(b []byte, p *frame.Packet, now time.Time) Result {
	r.reap(r.clock(now))
	r.stats.FragmentsIn++

	var f fragInfo
	o := parseFragment(b, p, &f, r.v6prefix)
	if f.family == 0 {
		return r.drop(Malformed)
	}
	m := r.mib(f.family)
	m.ReasmReqds++
	switch o {
	case 0:
	case Malformed:
		m.ReasmFails++
		return r.drop(Malformed)
	default: // IPv6 IncompleteChain, TooBig, Unaligned
		m.InHdrErrors++
		res := r.drop(o)
		res.SendParamProblem, res.ParamProblem = true, f.pp
		return res
	}

	h := maphash.Bytes(r.seed, f.key[:])
	qi := r.lookup(&f.key, h)
	// Refusals that end the datagram whether or not it had a queue:
	// Linux's checks would discard a queue made for the fragment at once,
	// so none is made.
	if f.end == f.offset || f.family == 4 && f.end > frame.IPv4MaxTotalLen-frame.IPv4MinHeaderLen {
		o := Inconsistent
		if f.end != f.offset {
			// Linux finds this only once the datagram completes (in
			// ip_frag_reasm); the memory is better freed now.
			o = TooBig
		}
		if qi != 0 {
			r.discard(qi, o)
		} else {
			m.ReasmFails++
		}
		return r.drop(o)
	}
	if qi == 0 {
		qi = r.create(&f, h)
	}
	q := &r.queues[qi]

	// ip_frag_queue / ip6_frag_queue: the datagram's end.
	if !f.more {
		if int32(f.end) < q.len || q.flags&lastIn != 0 && int32(f.end) != q.len {
			r.discard(qi, Inconsistent)
			return r.drop(Inconsistent)
		}
		q.flags |= lastIn
		q.len = int32(f.end)
	} else if int32(f.end) > q.len {
		if q.flags&lastIn != 0 {
			r.discard(qi, Inconsistent)
			return r.drop(Inconsistent)
		}
		q.len = int32(f.end)
	}

	// inet_frag_queue_insert: overlaps and duplicates by runs of
	// fragments.
	u0, u1 := f.offset>>unitShift, (f.end+(1<<unitShift)-1)>>unitShift
	newRun := true
	switch {
	case q.frags == 0:
	case int(q.tailEnd) < f.end:
		if f.offset < int(q.tailEnd) {
			r.discard(qi, Overlap)
			return r.drop(Overlap)
		}
		newRun = f.offset != int(q.tailEnd)
	default:
		if any, inOneRun := r.scan(q, u0, u1); inOneRun {
			return r.drop(Duplicate)
		} else if any {
			r.discard(qi, Overlap)
			return r.drop(Overlap)
		}
	}

	// Store.
	r.reservePages(qi, r.pagesNeeded(q, &f))
	q = &r.queues[qi]
	if f.offset == 0 {
		q.flags |= firstIn
		q.hdrLen = uint16(len(f.hdr))
		q.l3Off = uint16(f.l3Off)
		q.nhOff = uint16(f.nhOff)
		q.firstEnd = int32(f.end)
		r.write(q, headerRoom-len(f.hdr), f.hdr)
	}
	r.write(q, headerRoom+f.offset, f.data)
	r.mark(q, u0, u1, newRun)
	q.meat += int32(f.end - f.offset)
	q.frags++
	r.stats.Fragments[Held]++
	q.tailEnd = max(q.tailEnd, int32(f.end))
	q.ecn |= f.ecn
	if f.family == 4 {
		q.maxSize = max(q.maxSize, int32(f.size))
		if f.df {
			q.maxDF = max(q.maxDF, int32(f.size))
		}
	}
	r.touch(qi)

	if q.flags == firstIn|lastIn && q.meat == q.len {
		return r.complete(qi)
	}
	return Result{Outcome: Held}
}

// drop counts the arriving fragment under o and returns the Result.
func (r *Reassembler) drop(o Outcome) Result {
	r.stats.Fragments[o]++
	return Result{Outcome: o}
}

// settle moves a queue's held fragments to outcome o.
func (r *Reassembler) settle(q *queue, o Outcome) {
	r.stats.Fragments[o] += uint64(q.frags)
	r.stats.Fragments[Held] -= uint64(q.frags)
	q.frags = 0
}

// discard ends a live datagram that failed with outcome o: Linux's
// inet_frag_kill and ReasmFails (and ReasmOverlaps for an overlap).
func (r *Reassembler) discard(qi int32, o Outcome) {
	q := &r.queues[qi]
	m := r.mib(q.family)
	m.ReasmFails++
	if o == Overlap {
		m.ReasmOverlaps++
	}
	r.settle(q, o)
	r.free(qi)
}

// ecnTable is Linux's ip_frag_ecn_table (net/ipv4/inet_fragment.c): from
// the OR of the fragments' ECN bits (Not-ECT 1, ECT(1) 2, ECT(0) 4, CE 8)
// the ECN value to OR into the reassembled header, or 0xff to drop the
// datagram (RFC 3168 section 5.3).
var ecnTable = [16]uint8{
	8 | 4:     3,
	8 | 2:     3,
	8 | 4 | 2: 3,

	1 | 8:         0xff,
	1 | 4:         0xff,
	1 | 2:         0xff,
	1 | 4 | 2:     0xff,
	1 | 8 | 4:     0xff,
	1 | 8 | 2:     0xff,
	1 | 8 | 4 | 2: 0xff,
}

// complete builds the datagram of a queue that has all its data (Linux's
// ip_frag_reasm, ip6_frag_reasm).
func (r *Reassembler) complete(qi int32) Result {
	q := &r.queues[qi]
	ecn := ecnTable[q.ecn]
	if ecn == 0xff {
		r.discard(qi, BadECN)
		return Result{Outcome: BadECN}
	}
	hdr, l3 := int(q.hdrLen), int(q.l3Off)
	out := hdr + int(q.len)
	if q.family == 4 {
		if hdr-l3+int(q.len) > frame.IPv4MaxTotalLen {
			r.discard(qi, TooBig)
			return Result{Outcome: TooBig}
		}
	} else {
		out -= frame.IPv6FragmentHeaderLen
		if out-l3-frame.IPv6HeaderLen > 0xffff {
			r.discard(qi, TooBig)
			return Result{Outcome: TooBig}
		}
	}
	if len(r.freeDgrams) == 0 {
		r.discard(qi, NoBuffer)
		return Result{Outcome: NoBuffer}
	}
	d := &r.dgrams[r.freeDgrams[len(r.freeDgrams)-1]]
	r.freeDgrams = r.freeDgrams[:len(r.freeDgrams)-1]
	d.out, d.n, d.l3Off, d.family, d.frags = true, out, l3, q.family, int(q.frags)
	b := d.buf[:out]
	if q.family == 4 {
		r.read(q, b, headerRoom-hdr)
		ip := frame.IPv4(b[l3:])
		ip.SetTotalLength(uint16(out - l3))
		ip.SetTOS(ip.TOS() | ecn)
		// Linux keeps DF only if the largest fragment had it.
		var flags uint8
		if q.maxDF == q.maxSize {
			flags = frame.IPv4FlagDontFragment
		}
		ip.SetFlagsFragmentOffset(flags, 0)
		ip.SetChecksum(0)
		ip.SetChecksum(ip.CalculateChecksum())
	} else {
		fh := headerRoom - frame.IPv6FragmentHeaderLen
		r.read(q, b[:hdr-frame.IPv6FragmentHeaderLen], headerRoom-hdr)
		r.read(q, b[hdr-frame.IPv6FragmentHeaderLen:], headerRoom)
		var next [1]byte
		r.read(q, next[:], fh)
		ip := frame.IPv6(b[l3:])
		ip.SetPayloadLength(uint16(out - l3 - frame.IPv6HeaderLen))
		ip[q.nhOff] = next[0]
		ip.SetVersionTrafficClassFlowLabel(ip.TrafficClass()|ecn, ip.FlowLabel())
	}
	r.mib(q.family).ReasmOKs++
	r.settle(q, Reassembled)
	r.free(qi)
	return Result{Outcome: Reassembled, Datagram: d}
}

// Release returns a Datagram that Add handed out to the pool. The
// Datagram and its Frame must not be used afterwards. Releasing nil or a
// released Datagram does nothing.
func (r *Reassembler) Release(d *Datagram) {
	if d == nil || !d.out || d.idx < 0 || int(d.idx) >= len(r.dgrams) || &r.dgrams[d.idx] != d {
		return
	}
	d.out = false
	r.freeDgrams = append(r.freeDgrams, d.idx)
}

// NextExpired retires the datagrams whose time is up and reports, one per
// call, those whose first fragment had arrived, for the ICMP Time
// Exceeded that RFC 792 and RFC 8200 call for. It returns false when there
// is nothing (more) to report. Call it regularly, say every few hundred
// milliseconds: Add retires expired datagrams too, so that none takes
// fragments after its time, but only NextExpired hands out the reports
// and the memory they hold (which Add reclaims first under pressure, the
// report then lost).
//
//	for r.NextExpired(now, &e) {
//		// send ICMP Time Exceeded code 1 to e's source, quoting e.Datagram()
//	}
func (r *Reassembler) NextExpired(now time.Time, e *Expired) bool {
	r.reap(r.clock(now))
	qi := r.expired.first
	if qi == 0 {
		return false
	}
	q := &r.queues[qi]
	hdr, l3 := int(q.hdrLen), int(q.l3Off)
	n := min(hdr+int(q.firstEnd), l3+quoteLen)
	e.Frame = r.quote[:n]
	r.read(q, e.Frame, headerRoom-hdr)
	e.L3Off, e.IPVersion = l3, q.family
	r.free(qi)
	return true
}

// reap retires every live queue whose deadline is not after now (Linux's
// ip_expire, ip6frag_expire_frag_queue): ReasmFails and ReasmTimeout,
// and a report for NextExpired if the first fragment was there.
func (r *Reassembler) reap(now int64) {
	for fi := range r.age {
		for qi := r.age[fi].first; qi != 0 && r.queues[qi].deadline <= now; qi = r.age[fi].first {
			q := &r.queues[qi]
			m := r.mib(q.family)
			m.ReasmFails++
			m.ReasmTimeout++
			r.settle(q, TimedOut)
			if q.flags&firstIn == 0 {
				r.free(qi)
				continue
			}
			// Keep the pages for the report; the queue leaves the
			// hash, its lists and its source.
			r.unhash(qi)
			r.unlink(listActive, &r.active, qi)
			r.unlink(listAge, &r.age[fi], qi)
			r.leaveSource(qi)
			q.state = stateExpired
			r.pushBack(listAge, &r.expired, qi)
			r.stats.Expired++
		}
	}
}

// Stats returns the counters and gauges.
func (r *Reassembler) Stats() Stats {
	s := r.stats
	s.MemoryInUse = (len(r.mem)/pageSize - 1 - len(r.freePages)) * pageSize
	s.DatagramsOut = len(r.dgrams) - len(r.freeDgrams)
	return s
}

// lookup finds the live queue for key k with hash h.
func (r *Reassembler) lookup(k *fragKey, h uint64) int32 {
	for qi := r.qbuckets[h&uint64(len(r.qbuckets)-1)]; qi != 0; qi = r.queues[qi].hnext {
		if r.queues[qi].key == *k {
			return qi
		}
	}
	return 0
}

func (r *Reassembler) unhash(qi int32) {
	q := &r.queues[qi]
	b := &r.qbuckets[maphash.Bytes(r.seed, q.key[:])&uint64(len(r.qbuckets)-1)]
	for p := b; *p != 0; p = &r.queues[*p].hnext {
		if *p == qi {
			*p = q.hnext
			q.hnext = 0
			return
		}
	}
}

// create makes a live queue for f, first making room for it: a source
// over its share of queues gives up its least recently active one; with
// no queue slot free, the oldest expired report or else the least recently
// active datagram goes.
func (r *Reassembler) create(f *fragInfo, h uint64) int32 {
	sh := maphash.Bytes(r.seed, f.src[:])
	si := r.findSource(&f.src, sh)
	for si != 0 && r.sources[si].nqueue >= r.srcQueues {
		r.evict(r.sources[si].queues.first, true)
		si = r.findSource(&f.src, sh) // the source may be gone with its last queue
	}
	if len(r.freeQueues) == 0 {
		r.evictAny(0)
		si = r.findSource(&f.src, sh)
	}
	qi := r.freeQueues[len(r.freeQueues)-1]
	r.freeQueues = r.freeQueues[:len(r.freeQueues)-1]
	if si == 0 {
		si = r.freeSrcs[len(r.freeSrcs)-1]
		r.freeSrcs = r.freeSrcs[:len(r.freeSrcs)-1]
		s := &r.sources[si]
		*s = source{key: f.src}
		b := &r.sbuckets[sh&uint64(len(r.sbuckets)-1)]
		s.hnext, *b = *b, si
		r.stats.Sources++
	}
	q := &r.queues[qi]
	*q = queue{key: f.key, state: stateLive, family: f.family, src: si}
	q.deadline = r.lastClock + r.timeout[famIndex(f.family)]
	b := &r.qbuckets[h&uint64(len(r.qbuckets)-1)]
	q.hnext, *b = *b, qi
	r.pushBack(listActive, &r.active, qi)
	r.pushBack(listAge, &r.age[famIndex(f.family)], qi)
	s := &r.sources[si]
	r.pushBack(listSource, &s.queues, qi)
	s.nqueue++
	r.stats.Queues++
	return qi
}

func (r *Reassembler) findSource(k *srcKey, h uint64) int32 {
	for si := r.sbuckets[h&uint64(len(r.sbuckets)-1)]; si != 0; si = r.sources[si].hnext {
		if r.sources[si].key == *k {
			return si
		}
	}
	return 0
}

// leaveSource takes a live queue out of its source's accounting and frees
// the source with its last queue.
func (r *Reassembler) leaveSource(qi int32) {
	q := &r.queues[qi]
	si := q.src
	s := &r.sources[si]
	r.unlink(listSource, &s.queues, qi)
	s.nqueue--
	s.pages -= q.npages
	q.src = 0
	r.stats.Queues--
	if s.nqueue > 0 {
		return
	}
	b := &r.sbuckets[maphash.Bytes(r.seed, s.key[:])&uint64(len(r.sbuckets)-1)]
	for p := b; *p != 0; p = &r.sources[*p].hnext {
		if *p == si {
			*p = s.hnext
			break
		}
	}
	*s = source{}
	r.freeSrcs = append(r.freeSrcs, si)
	r.stats.Sources--
}

// free returns a queue and its pages to the pools; its fragments must
// have been settled.
func (r *Reassembler) free(qi int32) {
	q := &r.queues[qi]
	switch q.state {
	case stateLive:
		r.unhash(qi)
		r.unlink(listActive, &r.active, qi)
		r.unlink(listAge, &r.age[famIndex(q.family)], qi)
		r.leaveSource(qi)
	case stateExpired:
		r.unlink(listAge, &r.expired, qi)
		r.stats.Expired--
	}
	for i, pg := range q.pages {
		if pg != 0 {
			r.freePages = append(r.freePages, pg)
			q.pages[i] = 0
		}
	}
	q.state, q.npages = stateFree, 0
	r.freeQueues = append(r.freeQueues, qi)
}

// evict discards queue qi to make room: an expired one silently (its
// report is lost), a live one as an Evicted datagram (ReasmFails).
func (r *Reassembler) evict(qi int32, bySource bool) {
	q := &r.queues[qi]
	if q.state == stateExpired {
		r.free(qi)
		return
	}
	r.stats.Evictions++
	if bySource {
		r.stats.SourceEvictions++
	}
	r.discard(qi, Evicted)
}

// evictAny discards the oldest expired report or else the least recently
// active live datagram other than keep. It reports false if there is
// none.
func (r *Reassembler) evictAny(keep int32) bool {
	if qi := r.expired.first; qi != 0 {
		r.evict(qi, false)
		return true
	}
	qi := r.active.first
	if qi == keep {
		qi = r.queues[qi].links[listActive].next
	}
	if qi == 0 {
		return false
	}
	r.evict(qi, false)
	return true
}

// pagesNeeded counts the pages f needs that q does not have yet.
func (r *Reassembler) pagesNeeded(q *queue, f *fragInfo) int32 {
	var n int32
	lo, hi := (headerRoom+f.offset)>>pageShift, (headerRoom+f.end-1)>>pageShift
	if f.offset == 0 {
		lo = (headerRoom - len(f.hdr)) >> pageShift
	}
	for p := lo; p <= hi; p++ {
		if q.pages[p] == 0 {
			n++
		}
	}
	return n
}

// reservePages makes sure that queue qi can take need more pages: within
// its source's share (by evicting the source's own least recently active
// datagrams) and within the arena (by evicting expired reports, then the
// least recently active datagrams of anyone). qi itself always fits: a
// source's share and the arena are at least one whole queue.
func (r *Reassembler) reservePages(qi int32, need int32) {
	for {
		s := &r.sources[r.queues[qi].src]
		if s.pages+need <= r.srcPages {
			break
		}
		victim := s.queues.first
		if victim == qi {
			victim = r.queues[qi].links[listSource].next
		}
		if victim == 0 {
			break // cannot happen: a source's share holds a whole queue
		}
		r.evict(victim, true)
	}
	for int32(len(r.freePages)) < need && r.evictAny(qi) {
	}
}

// write copies b into q's virtual space at v, taking pages as needed
// (reservePages made sure there are enough).
func (r *Reassembler) write(q *queue, v int, b []byte) {
	for len(b) > 0 {
		pi := v >> pageShift
		pg := q.pages[pi]
		if pg == 0 {
			pg = r.freePages[len(r.freePages)-1]
			r.freePages = r.freePages[:len(r.freePages)-1]
			q.pages[pi] = pg
			q.npages++
			r.sources[q.src].pages++
			r.cover[pg] = [wordsPerPage]uint64{}
			r.starts[pg] = [wordsPerPage]uint64{}
		}
		o := v & (pageSize - 1)
		n := copy(r.mem[int(pg)<<pageShift+o:int(pg+1)<<pageShift], b)
		b = b[n:]
		v += n
	}
}

// read copies q's virtual space from v into b.
func (r *Reassembler) read(q *queue, b []byte, v int) {
	for len(b) > 0 {
		pg := q.pages[v>>pageShift]
		o := v & (pageSize - 1)
		n := copy(b, r.mem[int(pg)<<pageShift+o:int(pg+1)<<pageShift])
		b = b[n:]
		v += n
	}
}

// scan looks at the 8-byte units [u0, u1) of q's data: whether any is
// held, and whether all are held within one run of fragments (covered,
// and no run starts after u0).
func (r *Reassembler) scan(q *queue, u0, u1 int) (any, inOneRun bool) {
	v0, v1 := u0+headerRoom>>unitShift, u1+headerRoom>>unitShift
	all := true
	for w := v0 >> 6; w <= (v1-1)>>6; w++ {
		mask := ^uint64(0)
		if w == v0>>6 {
			mask &= ^uint64(0) << (v0 & 63)
		}
		if w == (v1-1)>>6 {
			mask &= ^uint64(0) >> (63 - (v1-1)&63)
		}
		var cov, st uint64
		if pg := q.pages[w/wordsPerPage]; pg != 0 {
			cov, st = r.cover[pg][w%wordsPerPage], r.starts[pg][w%wordsPerPage]
		}
		if cov&mask != 0 {
			any = true
		}
		if cov&mask != mask {
			all = false
		}
		if w == v0>>6 {
			mask &^= 1 << (v0 & 63) // a run may start at u0 itself
		}
		if st&mask != 0 {
			all = false
		}
	}
	return any, any && all
}

// mark records units [u0, u1) as held, u0 starting a new run if newRun.
func (r *Reassembler) mark(q *queue, u0, u1 int, newRun bool) {
	v0, v1 := u0+headerRoom>>unitShift, u1+headerRoom>>unitShift
	for w := v0 >> 6; w <= (v1-1)>>6; w++ {
		mask := ^uint64(0)
		if w == v0>>6 {
			mask &= ^uint64(0) << (v0 & 63)
		}
		if w == (v1-1)>>6 {
			mask &= ^uint64(0) >> (63 - (v1-1)&63)
		}
		r.cover[q.pages[w/wordsPerPage]][w%wordsPerPage] |= mask
	}
	if newRun {
		r.starts[q.pages[v0>>6/wordsPerPage]][(v0>>6)%wordsPerPage] |= 1 << (v0 & 63)
	}
}

// touch makes qi the most recently active queue, overall and of its
// source.
func (r *Reassembler) touch(qi int32) {
	r.unlink(listActive, &r.active, qi)
	r.pushBack(listActive, &r.active, qi)
	s := &r.sources[r.queues[qi].src]
	r.unlink(listSource, &s.queues, qi)
	r.pushBack(listSource, &s.queues, qi)
}

func (r *Reassembler) pushBack(l int, h *listHead, qi int32) {
	q := &r.queues[qi]
	q.links[l] = link{prev: h.last}
	if h.last != 0 {
		r.queues[h.last].links[l].next = qi
	} else {
		h.first = qi
	}
	h.last = qi
}

func (r *Reassembler) unlink(l int, h *listHead, qi int32) {
	q := &r.queues[qi]
	p, n := q.links[l].prev, q.links[l].next
	if p != 0 {
		r.queues[p].links[l].next = n
	} else {
		h.first = n
	}
	if n != 0 {
		r.queues[n].links[l].prev = p
	} else {
		h.last = p
	}
	q.links[l] = link{}
}
