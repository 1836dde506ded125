package engine

import (
	"encoding/json"
	"fmt"
	"runtime"
	"sync/atomic"

	"github.com/pktengine/pktengine/frame"
)

// Outcome is what became of one frame the ring handed over. Every frame
// ends in exactly one outcome, so the outcome counters always add up to
// the frames received (Counters.Check).
//
// The first frame.NumReasons values are frame.Reason values: the slot of
// frame.ReasonOK counts complete UDP datagrams delivered to at least one
// port (OutcomeDelivered); every other reason counts the frames Decode
// classified (ARP, ICMP, TCP, fragments, ...) or rejected (a malformed
// header, a bad checksum). The engine's own verdicts follow.
type Outcome uint8

const (
	// OutcomeDelivered: a UDP datagram handed to at least one port, into
	// its queue or to its inline handler.
	OutcomeDelivered = Outcome(frame.ReasonOK)

	// OutcomeQueueFull: a datagram for bound ports whose queues were all
	// full (RcvbufErrors).
	OutcomeQueueFull = Outcome(frame.NumReasons) + iota - 1
	// OutcomeNoPort: a unicast datagram for an unbound port of an address
	// the engine owns (NoPorts; an ICMP port unreachable may follow).
	OutcomeNoPort
	// OutcomeNoPortMulti: a broadcast or multicast datagram no port
	// matched (IgnoredMulti).
	OutcomeNoPortMulti
	// OutcomeKernel: a datagram for a port the engine has not bound on an
	// address it shares with the kernel. The kernel received the frame
	// too and answers it (or sends the ICMP error) itself.
	OutcomeKernel
	// OutcomeOtherHost: not addressed to the engine: another MAC
	// (PACKET_OTHERHOST), a frame this host sent, or an IP destination
	// that is none of the engine's addresses, broadcasts or multicasts.
	OutcomeOtherHost
	// OutcomeTruncated: cut short by the ring slot or the filter's snap
	// length, so it cannot be parsed whole.
	OutcomeTruncated

	// NumOutcomes bounds arrays indexed by Outcome.
	NumOutcomes
)

var outcomeNames = [NumOutcomes - Outcome(frame.NumReasons)]string{
	OutcomeQueueFull - Outcome(frame.NumReasons):   "queue-full",
	OutcomeNoPort - Outcome(frame.NumReasons):      "no-port",
	OutcomeNoPortMulti - Outcome(frame.NumReasons): "no-port-multi",
	OutcomeKernel - Outcome(frame.NumReasons):      "kernel",
	OutcomeOtherHost - Outcome(frame.NumReasons):   "other-host",
	OutcomeTruncated - Outcome(frame.NumReasons):   "truncated",
}

// String returns the outcome's short stable name: "delivered", a
// frame.Reason name such as "arp" or "udp-bad-checksum", or one of the
// engine's, such as "no-port".
func (o Outcome) String() string {
	switch {
	case o == OutcomeDelivered:
		return "delivered"
	case o < Outcome(frame.NumReasons):
		return frame.Reason(o).String()
	case o < NumOutcomes:
		return outcomeNames[o-Outcome(frame.NumReasons)]
	}
	return fmt.Sprintf("Outcome(%d)", uint8(o))
}

// Dropped reports whether the engine discarded the frame without using
// it: everything but a delivery, a frame left to the kernel, and the
// ARP and ICMP messages the engine reads (answered or learned from).
func (o Outcome) Dropped() bool {
	switch o {
	case OutcomeDelivered, OutcomeKernel,
		Outcome(frame.ReasonARP), Outcome(frame.ReasonICMPv4), Outcome(frame.ReasonICMPv6):
		return false
	}
	return true
}

// ParseOutcome returns the outcome named s (the inverse of String).
func ParseOutcome(s string) (Outcome, bool) {
	for o := range NumOutcomes {
		if o.String() == s {
			return o, true
		}
	}
	return 0, false
}

// OutcomeCounts counts frames by outcome. It marshals to JSON as an
// object keyed by outcome name, leaving out zeros.
type OutcomeCounts [NumOutcomes]uint64

// Sum returns the total over all outcomes.
func (c *OutcomeCounts) Sum() uint64 {
	var s uint64
	for _, v := range c {
		s += v
	}
	return s
}

// MarshalJSON implements json.Marshaler.
func (c OutcomeCounts) MarshalJSON() ([]byte, error) {
	m := make(map[string]uint64)
	for o, v := range c {
		if v != 0 {
			m[Outcome(o).String()] = v
		}
	}
	return json.Marshal(m)
}

// UnmarshalJSON implements json.Unmarshaler. Unknown names are an error,
// so that a client never silently loses frames from the sum.
func (c *OutcomeCounts) UnmarshalJSON(b []byte) error {
	var m map[string]uint64
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	*c = OutcomeCounts{}
	for k, v := range m {
		o, ok := ParseOutcome(k)
		if !ok {
			return fmt.Errorf("engine: unknown outcome %q", k)
		}
		c[o] = v
	}
	return nil
}

// UDPCounters are the Udp counters of /proc/net/snmp, with the kernel's
// names and meanings as far as an engine can have them:
//
//   - InDatagrams: datagrams delivered to a port (one per port for a
//     broadcast that several ports receive).
//   - NoPorts: unicast datagrams to an unbound port of an owned address.
//   - InErrors: datagrams dropped for a UDP-level fault: bad length, bad
//     or (IPv6) missing checksum, or a full queue.
//   - OutDatagrams: datagrams sent.
//   - RcvbufErrors: deliveries dropped because the port's queue was full.
//   - SndbufErrors: datagrams not sent because no TX buffer was free.
//   - InCsumErrors: datagrams with a bad UDP checksum.
//   - IgnoredMulti: broadcast and multicast datagrams no port wanted.
type UDPCounters struct {
	InDatagrams  uint64
	NoPorts      uint64
	InErrors     uint64
	OutDatagrams uint64
	RcvbufErrors uint64
	SndbufErrors uint64
	InCsumErrors uint64
	IgnoredMulti uint64
}

// Counters is a snapshot of an engine's counters.
type Counters struct {
	UDP UDPCounters

	// FramesIn and BytesIn count what the rings handed over (bytes on
	// the wire, without FCS).
	FramesIn uint64
	BytesIn  uint64

	// Outcomes partitions FramesIn: every frame is counted in exactly
	// one outcome.
	Outcomes OutcomeCounts

	// ARPAnswered and NDPAnswered count ARP replies and Neighbor
	// Advertisements sent for owned addresses; PingAnswered echo
	// replies (ICMP and ICMPv6) for them. NeighborsLearned counts
	// neighbour entries created or changed from ARP and NDP.
	ARPAnswered      uint64
	NDPAnswered      uint64
	PingAnswered     uint64
	NeighborsLearned uint64

	// ICMPSent counts ICMP and ICMPv6 port unreachable messages sent,
	// ICMPRateLimited those the token bucket held back, and
	// ICMPSuppressed those RFC 1122 section 3.2.2 and RFC 4443 section
	// 2.4 forbid (to a broadcast, multicast or non-host source, or for
	// a link-layer broadcast).
	ICMPSent        uint64
	ICMPRateLimited uint64
	ICMPSuppressed  uint64

	// Service guards: requests a built-in service did not answer because
	// the source port belongs to another such service (GuardLoop), the
	// source is no single remote host (GuardSource), the request went to
	// a broadcast or multicast address (GuardNonUnicast), the source's
	// token bucket was empty (GuardRateLimited) or the engine-wide one
	// (GuardTotalLimited, Guard.TotalRate).
	GuardLoop         uint64
	GuardSource       uint64
	GuardNonUnicast   uint64
	GuardRateLimited  uint64
	GuardTotalLimited uint64

	// TXFrames counts frames committed to the transmit rings (replies,
	// ICMP, ARP and NDP); TXErrors those that could not be built or that
	// the kernel rejected as malformed; TXDropped those the kernel
	// refused to send (no buffer, link down), each counted once: a
	// committed frame that did not leave is never left in a ring.
	TXFrames  uint64
	TXErrors  uint64
	TXDropped uint64

	// RingPackets, RingDrops and RingFreezes are the RX sockets'
	// PACKET_STATISTICS: frames that passed the filter, frames lost
	// because the ring was full, and V3 queue freezes.
	RingPackets uint64
	RingDrops   uint64
	RingFreezes uint64

	// LinkDowns counts the times the interface's link went down while
	// the engine ran (the interface was set down, lost its carrier, or
	// went away), LinkUps the times it came back. The link's state at
	// Open is not counted.
	LinkDowns uint64
	LinkUps   uint64

	// XDP are the AF_XDP backend's counters, summed over its sockets;
	// all zero on TPACKET. RingPackets and RingDrops hold what the
	// sockets received and lost there too.
	XDP XDPCounters
}

// XDPCounters count what happened to the AF_XDP backend's frames. A UMEM
// frame leaves the engine's hands in one of these ways: given back to the
// fill ring for receiving (the frames of a batch, once released, except
// those answered in place), or put on the TX ring (Transmitted) and then
// given back by the kernel on the completion ring (Completed), sent or
// not (TXDropped). Status.XDP has each socket's frame count, which must
// add up to its UMEM.
type XDPCounters struct {
	// XDP_STATISTICS: frames dropped because a socket's RX ring was full
	// (RxRingFull) or for another reason, an empty fill ring included
	// (RxDropped; the kernel counts an empty fill ring in
	// RxFillRingEmpty as well, so the two overlap); descriptors the
	// kernel rejected (RxInvalidDescs, TxInvalidDescs); times the kernel
	// found the TX ring empty (TxRingEmpty).
	RxDropped       uint64
	RxRingFull      uint64
	RxFillRingEmpty uint64
	RxInvalidDescs  uint64
	TxInvalidDescs  uint64
	TxRingEmpty     uint64

	// Received counts frames taken from the RX rings; Filtered those of
	// them Config.Filter rejected (not counted in FramesIn, as the
	// kernel's filter keeps them from a TPACKET ring).
	Received uint64
	Filtered uint64

	// Transmitted counts frames put on the TX rings: answers in place
	// and frames built in UMEM. Completed counts those the kernel gave
	// back; TXDropped those it gave back unsent (the driver dropped
	// them), those the engine kept off the TX ring because the link was
	// down, and those still on a TX ring when the socket closed. All of
	// them count in Counters.TXDropped as well.
	Transmitted uint64
	Completed   uint64
	TXDropped   uint64

	// Steered counts frames the XDP program redirected to the sockets,
	// Passed those it left to the kernel (not the engine's), NoSocket
	// the engine's frames it had to pass because their receive queue had
	// no socket.
	Steered  uint64
	Passed   uint64
	NoSocket uint64

	// FrameChecks counts the checks of the sockets' frame accounting
	// (each worker checks about once a second while busy, and once at
	// close); FrameCheckFailures those that found a frame lost or in two
	// places. Nonzero failures mean a bug: see Status.XDP.
	FrameChecks        uint64
	FrameCheckFailures uint64
}

// Check verifies the engine's central invariant: every frame received
// ended in exactly one outcome, so FramesIn equals the sum of Outcomes.
func (c *Counters) Check() error {
	if s := c.Outcomes.Sum(); s != c.FramesIn {
		return fmt.Errorf("engine: %d frames in but outcomes sum to %d", c.FramesIn, s)
	}
	return nil
}

// counter indexes the per-worker counter array.
type counter int

const (
	cFrames counter = iota
	cBytes
	cUDPIn
	cRcvbufErrors
	cOutDatagrams
	cSndbufErrors
	cARPAnswered
	cNDPAnswered
	cPingAnswered
	cNeighborsLearned
	cICMPSent
	cICMPRateLimited
	cICMPSuppressed
	cGuardLoop
	cGuardSource
	cGuardNonUnicast
	cGuardRateLimited
	cGuardTotalLimited
	cTXFrames
	cTXErrors
	cTXRejected // frames the kernel rejected as malformed, from the transmit ring's count
	cTXDropped  // frames the kernel refused to send, from the transmit ring's count
	cOutcome0
	numCounters = cOutcome0 + counter(NumOutcomes)
)

// counterSet is one worker's counters. The worker alone writes its
// local copy, with plain increments; at the end of every batch it
// publishes the copy into shared memory under a sequence lock, so a
// reader always sees one consistent state of each worker and the outcome
// invariant holds in every snapshot, not only at rest.
type counterSet [numCounters]uint64

// publishedCounters is the shared copy of a worker's counters.
type publishedCounters struct {
	seq atomic.Uint64 // odd while the worker is writing
	v   counterSet    // accessed only with atomics
	_   [64]byte      // keep the next worker's seq off this cache line
}

// publish copies c into the shared copy. Worker only.
func (p *publishedCounters) publish(c *counterSet) {
	p.seq.Add(1)
	for i := range c {
		atomic.StoreUint64(&p.v[i], c[i])
	}
	p.seq.Add(1)
}

// read copies a consistent state of the shared copy into out.
func (p *publishedCounters) read(out *counterSet) {
	for {
		s := p.seq.Load()
		if s&1 != 0 {
			runtime.Gosched()
			continue
		}
		for i := range out {
			out[i] = atomic.LoadUint64(&p.v[i])
		}
		if p.seq.Load() == s {
			return
		}
	}
}

// udpInErrorReasons are the Decode and checksum verdicts on frames that
// were UDP datagrams to the kernel's eyes, which it counts in InErrors.
var udpInErrorReasons = [...]frame.Reason{
	frame.ReasonUDPTruncated,
	frame.ReasonUDPLengthTooShort,
	frame.ReasonUDPLengthPastEnd,
	frame.ReasonUDPBadChecksum,
	frame.ReasonUDPZeroChecksumIPv6,
}

// addTo adds the worker counters in s to c.
func (s *counterSet) addTo(c *Counters) {
	c.FramesIn += s[cFrames]
	c.BytesIn += s[cBytes]
	for o := range NumOutcomes {
		c.Outcomes[o] += s[cOutcome0+counter(o)]
	}
	c.UDP.InDatagrams += s[cUDPIn]
	c.UDP.RcvbufErrors += s[cRcvbufErrors]
	c.UDP.OutDatagrams += s[cOutDatagrams]
	c.UDP.SndbufErrors += s[cSndbufErrors]
	c.ARPAnswered += s[cARPAnswered]
	c.NDPAnswered += s[cNDPAnswered]
	c.PingAnswered += s[cPingAnswered]
	c.NeighborsLearned += s[cNeighborsLearned]
	c.ICMPSent += s[cICMPSent]
	c.ICMPRateLimited += s[cICMPRateLimited]
	c.ICMPSuppressed += s[cICMPSuppressed]
	c.GuardLoop += s[cGuardLoop]
	c.GuardSource += s[cGuardSource]
	c.GuardNonUnicast += s[cGuardNonUnicast]
	c.GuardRateLimited += s[cGuardRateLimited]
	c.GuardTotalLimited += s[cGuardTotalLimited]
	c.TXFrames += s[cTXFrames]
	c.TXErrors += s[cTXErrors] + s[cTXRejected]
	c.TXDropped += s[cTXDropped]
}

// finishUDP derives the Udp counters that are sums of outcomes.
func (c *Counters) finishUDP() {
	c.UDP.NoPorts = c.Outcomes[OutcomeNoPort]
	c.UDP.IgnoredMulti = c.Outcomes[OutcomeNoPortMulti]
	c.UDP.InCsumErrors = c.Outcomes[frame.ReasonUDPBadChecksum]
	c.UDP.InErrors = c.UDP.RcvbufErrors
	for _, r := range udpInErrorReasons {
		c.UDP.InErrors += c.Outcomes[r]
	}
}
