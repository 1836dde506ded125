package reassembly

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"net/netip"
	"testing"
	"time"

	"github.com/pktengine/pktengine/frame"
	"github.com/pktengine/pktengine/proto"
)

var (
	macA = frame.MAC{0x02, 0, 0, 0, 0, 0x0a}
	macB = frame.MAC{0x02, 0, 0, 0, 0, 0x0b}
	a4   = netip.MustParseAddr("198.18.0.1")
	b4   = netip.MustParseAddr("198.18.0.2")
	a6   = netip.MustParseAddr("fd00::1")
	b6   = netip.MustParseAddr("fd00::2")
	t0   = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
)

// rawFrag describes one fragment to build by hand, legal or not: any
// offset, length and flags.
type rawFrag struct {
	src, dst netip.Addr // the family picks IPv4 or IPv6
	id       uint32
	proto    uint8 // IPv4 protocol, or the Fragment header's Next Header (default UDP)
	off      int   // bytes; must be a multiple of 8
	more     bool
	data     []byte
	tos      uint8 // TOS / traffic class
	df       bool
	opts     []byte                // IPv4 options (multiple of 4)
	ext      []frame.IPv6ExtHeader // IPv6 headers before the Fragment header
	vlan     uint16                // a VLAN tag if not 0
	macs     *[2]frame.MAC         // source and destination MAC; nil for macA, macB
}

func (f rawFrag) build() []byte {
	p := f.proto
	if p == 0 {
		p = proto.IPProtoUDP
	}
	l2 := frame.EthernetHeaderLen
	if f.vlan != 0 {
		l2 += frame.VLANTagLen
	}
	b := make([]byte, 0, 128+len(f.data))
	if f.macs != nil {
		b = append(b, f.macs[1][:]...)
		b = append(b, f.macs[0][:]...)
	} else {
		b = append(b, macB[:]...)
		b = append(b, macA[:]...)
	}
	if f.vlan != 0 {
		b = binary.BigEndian.AppendUint16(b, proto.EtherTypeVLAN)
		b = binary.BigEndian.AppendUint16(b, f.vlan)
	}
	if f.src.Is4() {
		b = binary.BigEndian.AppendUint16(b, proto.EtherTypeIPv4)
		hl := frame.IPv4MinHeaderLen + len(f.opts)
		b = append(b, make([]byte, hl)...)
		ip := frame.IPv4(b[l2:])
		ip.SetHeaderLength(hl)
		ip.SetTOS(f.tos)
		ip.SetTotalLength(uint16(hl + len(f.data)))
		ip.SetID(uint16(f.id))
		var fl uint8
		if f.more {
			fl |= frame.IPv4FlagMoreFragments
		}
		if f.df {
			fl |= frame.IPv4FlagDontFragment
		}
		ip.SetFlagsFragmentOffset(fl, uint16(f.off))
		ip.SetTTL(64)
		ip.SetProtocol(p)
		ip.SetSource(f.src)
		ip.SetDestination(f.dst)
		copy(ip[frame.IPv4MinHeaderLen:], f.opts)
		ip.SetChecksum(ip.CalculateChecksum())
		return append(b, f.data...)
	}
	b = binary.BigEndian.AppendUint16(b, proto.EtherTypeIPv6)
	b = append(b, make([]byte, frame.IPv6HeaderLen)...)
	ip := frame.IPv6(b[l2:])
	ip.SetVersionTrafficClassFlowLabel(f.tos, 0)
	ip.SetHopLimit(64)
	ip.SetSource(f.src)
	ip.SetDestination(f.dst)
	nh := l2 + 6
	for _, h := range f.ext {
		b[nh] = h.Type
		nh = len(b)
		n := (2 + len(h.Data) + 7) &^ 7
		if h.Type == proto.IPProtoAH {
			n = (2 + len(h.Data) + 3) &^ 3
		}
		hdr := make([]byte, n)
		copy(hdr[2:], h.Data)
		if h.Type == proto.IPProtoAH {
			hdr[1] = byte(n/4 - 2)
		} else {
			hdr[1] = byte(n/8 - 1)
		}
		b = append(b, hdr...)
	}
	b[nh] = proto.IPProtoFragment
	fh := len(b)
	b = append(b, make([]byte, 8)...)
	frame.IPv6Fragment(b[fh:]).Set(p, uint16(f.off), f.more, f.id)
	b = append(b, f.data...)
	frame.IPv6(b[l2:]).SetPayloadLength(uint16(len(b) - l2 - frame.IPv6HeaderLen))
	return b
}

// decode decodes a frame that must be a fragment.
func decode(t testing.TB, b []byte) *frame.Packet {
	t.Helper()
	p := new(frame.Packet)
	p.Decode(b)
	if !p.IsFragment() {
		t.Fatalf("test frame is not a fragment: %x", b)
	}
	return p
}

// tester feeds a Reassembler and checks its invariants after every call.
type tester struct {
	t   testing.TB
	r   *Reassembler
	now time.Time
}

func newTester(t testing.TB, cfg *Config) *tester {
	t.Helper()
	return &tester{t: t, r: mustNew(t, cfg), now: t0}
}

// mustNew is New for a test: an error fails it.
func mustNew(t testing.TB, cfg *Config) *Reassembler {
	t.Helper()
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func (x *tester) add(b []byte) Result {
	x.t.Helper()
	var p frame.Packet
	p.Decode(b)
	res := x.r.Add(b, &p, x.now)
	if err := x.r.check(); err != nil {
		x.t.Fatalf("after Add: %v", err)
	}
	return res
}

// want adds b and checks the outcome.
func (x *tester) want(b []byte, o Outcome) Result {
	x.t.Helper()
	res := x.add(b)
	if res.Outcome != o {
		x.t.Fatalf("outcome %v, want %v", res.Outcome, o)
	}
	if (res.Datagram != nil) != (o == Reassembled) {
		x.t.Fatalf("outcome %v with datagram %v", o, res.Datagram != nil)
	}
	return res
}

func (x *tester) advance(d time.Duration) { x.now = x.now.Add(d) }

// payload returns n bytes of a recognisable pattern.
func payload(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7+i>>8) ^ seed
	}
	return b
}

// addrs returns the test's source and destination addresses of one
// family: a4 and b4, or a6 and b6.
func addrs(v6 bool) (src, dst netip.Addr) {
	if v6 {
		return a6, b6
	}
	return a4, b4
}

// udpSpec returns a UDP datagram spec with n bytes of data.
func udpSpec(src, dst netip.Addr, n int, seed byte) *frame.UDPSpec {
	return &frame.UDPSpec{
		SrcMAC: macA, DstMAC: macB,
		Src: netip.AddrPortFrom(src, 40000), Dst: netip.AddrPortFrom(dst, 7),
		ID: 0x4242, Payload: payload(n, seed),
	}
}

// fragments builds the frames of s for mtu with IPv6 id.
func fragments(t testing.TB, s *frame.UDPSpec, mtu int, id uint32) [][]byte {
	t.Helper()
	var f frame.UDPFragmenter
	if err := f.Reset(s, mtu, id); err != nil {
		t.Fatal(err)
	}
	out := make([][]byte, f.Fragments())
	for i := range out {
		out[i] = make([]byte, f.FrameLen(i))
		if _, err := f.Build(out[i], i); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// checkUDP checks that d is the datagram s describes: it decodes as a
// complete UDP datagram with valid checksums and s's addresses, ports and
// payload.
func checkUDP(t testing.TB, d *Datagram, s *frame.UDPSpec) {
	t.Helper()
	b := d.Frame()
	var p frame.Packet
	if r := p.Decode(b); r != frame.ReasonOK {
		t.Fatalf("reassembled frame decodes as %v", r)
	}
	if r := p.VerifyChecksums(b); r != frame.ReasonOK {
		t.Fatalf("reassembled frame: %v", r)
	}
	if p.Src(b) != s.Src || p.Dst(b) != s.Dst {
		t.Fatalf("addresses %v -> %v, want %v -> %v", p.Src(b), p.Dst(b), s.Src, s.Dst)
	}
	if !bytes.Equal(p.Payload(b), s.Payload) {
		t.Fatalf("payload differs (%d bytes, want %d)", len(p.Payload(b)), len(s.Payload))
	}
	if p.IsFragment() || int(p.L3Off) != d.L3Off() || p.Len() != len(b) {
		t.Fatalf("frame layout: fragment %v l3 %d/%d len %d/%d", p.IsFragment(), p.L3Off, d.L3Off(), p.Len(), len(b))
	}
	if p.IPVersion == 4 {
		ip := p.IPv4(b)
		if ip.Flags()&frame.IPv4FlagMoreFragments != 0 || ip.FragmentOffset() != 0 || !ip.IsChecksumValid() {
			t.Fatalf("IPv4 header %x", b[p.L3Off:p.L4Off])
		}
	}
}

// check verifies the Reassembler's internal invariants: every live queue
// hashed and on its lists, page and queue accounting exact, and the
// fragment counters adding up.
func (r *Reassembler) check() error {
	var live, expired, held int
	used := map[int32]bool{}
	srcPages := map[int32]int32{}
	srcQueues := map[int32]int32{}
	for qi := int32(1); qi < int32(len(r.queues)); qi++ {
		q := &r.queues[qi]
		if q.state == stateFree {
			continue
		}
		var n int32
		for _, pg := range q.pages {
			if pg != 0 {
				if used[pg] {
					return fmt.Errorf("page %d used twice", pg)
				}
				used[pg] = true
				n++
			}
		}
		if n != q.npages {
			return fmt.Errorf("queue %d: npages %d, has %d", qi, q.npages, n)
		}
		held += int(q.frags)
		switch q.state {
		case stateLive:
			live++
			if r.lookup(&q.key, maphash64(r, q.key[:])) != qi {
				return fmt.Errorf("queue %d not found by its key", qi)
			}
			srcPages[q.src] += n
			srcQueues[q.src]++
			if q.frags == 0 {
				return fmt.Errorf("live queue %d holds no fragment", qi)
			}
		case stateExpired:
			expired++
		}
	}
	if held != int(r.stats.Fragments[Held]) {
		return fmt.Errorf("held %d, counted %d", held, r.stats.Fragments[Held])
	}
	if len(used)+len(r.freePages) != len(r.mem)/pageSize-1 {
		return fmt.Errorf("%d pages used + %d free != %d", len(used), len(r.freePages), len(r.mem)/pageSize-1)
	}
	if live != r.stats.Queues || expired != r.stats.Expired || live+expired+len(r.freeQueues) != len(r.queues)-1 {
		return fmt.Errorf("%d live (%d counted), %d expired (%d), %d free of %d", live, r.stats.Queues, expired, r.stats.Expired, len(r.freeQueues), len(r.queues)-1)
	}
	if n := r.listLen(listActive, r.active); n != live {
		return fmt.Errorf("active list has %d of %d live queues", n, live)
	}
	if n := r.listLen(listAge, r.age[0]) + r.listLen(listAge, r.age[1]); n != live {
		return fmt.Errorf("age lists have %d of %d live queues", n, live)
	}
	if n := r.listLen(listAge, r.expired); n != expired {
		return fmt.Errorf("expired list has %d of %d", n, expired)
	}
	nsrc := 0
	for si := int32(1); si < int32(len(r.sources)); si++ {
		s := &r.sources[si]
		if s.nqueue == 0 {
			continue
		}
		nsrc++
		if s.pages != srcPages[si] || s.nqueue != srcQueues[si] || r.listLen(listSource, s.queues) != int(s.nqueue) {
			return fmt.Errorf("source %d: %d pages %d queues, has %d pages %d queues", si, s.pages, s.nqueue, srcPages[si], srcQueues[si])
		}
		if s.pages > r.srcPages || s.nqueue > r.srcQueues {
			return fmt.Errorf("source %d over its share: %d pages, %d queues", si, s.pages, s.nqueue)
		}
	}
	if nsrc != r.stats.Sources || nsrc+len(r.freeSrcs) != len(r.sources)-1 {
		return fmt.Errorf("%d sources, counted %d, %d free", nsrc, r.stats.Sources, len(r.freeSrcs))
	}
	var sum uint64
	for _, n := range r.stats.Fragments {
		sum += n
	}
	if sum != r.stats.FragmentsIn {
		return fmt.Errorf("fragment outcomes add up to %d, %d came in", sum, r.stats.FragmentsIn)
	}
	return nil
}

func (r *Reassembler) listLen(l int, h listHead) int {
	n := 0
	prev := int32(0)
	for qi := h.first; qi != 0; qi = r.queues[qi].links[l].next {
		if r.queues[qi].links[l].prev != prev {
			return -1
		}
		prev = qi
		n++
		if n > len(r.queues) {
			return -1
		}
	}
	if prev != h.last {
		return -1
	}
	return n
}

func maphash64(r *Reassembler, b []byte) uint64 { return maphash.Bytes(r.seed, b) }
