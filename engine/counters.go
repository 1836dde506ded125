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

	// VLANs and multicast (vlan.go, multicast.go).

	// OutcomeOtherVLAN: a frame of a VLAN the engine does not serve
	// (Config.VLAN; by default any but untagged and priority-tagged
	// frames). The kernel's base interface marks such a frame
	// PACKET_OTHERHOST; the engine names it apart so that a trunk's
	// misconfiguration shows.
	OutcomeOtherVLAN
	// OutcomeIGMP: an IGMP message (a membership query, or another
	// host's report), read by the engine's multicast state.
	OutcomeIGMP
	// Fragments (udp-frag). A fragment's outcome is what the reassembler
	// did with it when the ring handed it over; the datagram a fragment
	// completes is dispatched like a frame and counted in
	// Counters.Reassembled, not as another frame.

	// OutcomeFragmentHeld: stored; its datagram was not complete yet.
	// What became of the datagram later is in the Ip/Ip6 counters.
	OutcomeFragmentHeld
	// OutcomeFragmentReassembled: completed a datagram, which went on
	// through the receive path (Counters.Reassembled).
	OutcomeFragmentReassembled
	// OutcomeFragmentDuplicate: its bytes were already held; dropped.
	OutcomeFragmentDuplicate
	// OutcomeFragmentOverlap: overlapped held data otherwise than as a
	// duplicate: the whole datagram is discarded (RFC 5722).
	OutcomeFragmentOverlap
	// OutcomeFragmentInconsistent: its end contradicts the datagram's,
	// or it carries no data: the whole datagram is discarded.
	OutcomeFragmentInconsistent
	// OutcomeFragmentTooBig: the datagram would pass 65,535 bytes.
	OutcomeFragmentTooBig
	// OutcomeFragmentUnaligned: an IPv6 fragment other than the last
	// whose length is not a multiple of 8 (a Parameter Problem follows).
	OutcomeFragmentUnaligned
	// OutcomeFragmentIncompleteChain: an IPv6 first fragment without the
	// whole header chain (RFC 7112; a Parameter Problem follows).
	OutcomeFragmentIncompleteChain
	// OutcomeFragmentBadECN: it completed a datagram whose fragments mixed
	// Not-ECT with ECT or CE (RFC 3168); the datagram is discarded.
	OutcomeFragmentBadECN
	// OutcomeFragmentNoBuffer: it completed a datagram while the
	// reassembler had no buffer to hand it out in; discarded.
	OutcomeFragmentNoBuffer
	// OutcomeFragmentMalformed: not a fragment the reassembler can take.
	OutcomeFragmentMalformed

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

	OutcomeOtherVLAN - Outcome(frame.NumReasons):               "other-vlan",
	OutcomeIGMP - Outcome(frame.NumReasons):                    "igmp",
	OutcomeFragmentHeld - Outcome(frame.NumReasons):            "fragment-held",
	OutcomeFragmentReassembled - Outcome(frame.NumReasons):     "fragment-reassembled",
	OutcomeFragmentDuplicate - Outcome(frame.NumReasons):       "fragment-duplicate",
	OutcomeFragmentOverlap - Outcome(frame.NumReasons):         "fragment-overlap",
	OutcomeFragmentInconsistent - Outcome(frame.NumReasons):    "fragment-inconsistent",
	OutcomeFragmentTooBig - Outcome(frame.NumReasons):          "fragment-too-big",
	OutcomeFragmentUnaligned - Outcome(frame.NumReasons):       "fragment-unaligned",
	OutcomeFragmentIncompleteChain - Outcome(frame.NumReasons): "fragment-incomplete-chain",
	OutcomeFragmentBadECN - Outcome(frame.NumReasons):          "fragment-bad-ecn",
	OutcomeFragmentNoBuffer - Outcome(frame.NumReasons):        "fragment-no-buffer",
	OutcomeFragmentMalformed - Outcome(frame.NumReasons):       "fragment-malformed",
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
		Outcome(frame.ReasonARP), Outcome(frame.ReasonICMPv4), Outcome(frame.ReasonICMPv6),
		OutcomeIGMP,
		OutcomeFragmentHeld, OutcomeFragmentReassembled:
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

	// Multicast counts the engine's IGMP and MLD (multicast.go).
	Multicast MulticastCounters

	// Fragments and ICMP errors (udp-frag; docs/ENGINE.md, "Fragments"
	// and "ICMP errors to the sender").

	// IP and IP6 are the fragment counters of Linux's Ip and Ip6 MIBs,
	// with their names and meanings.
	IP, IP6 IPFragCounters

	// Reassembled counts the datagrams that fragments completed by what
	// became of them, as Outcomes counts frames (delivered, no-port,
	// udp-bad-checksum, icmpv4, ...). It adds up to
	// Outcomes[fragment-reassembled]; the Udp counters include it.
	Reassembled OutcomeCounts

	// ReasmEvictions counts datagrams under reassembly discarded to make
	// room for others (each also one ReasmFails), ReasmSourceEvictions
	// those among them that their own source's share
	// (Config.ReassemblySourceShare) pushed out.
	ReasmEvictions       uint64
	ReasmSourceEvictions uint64
	// Gauges, over all workers: the datagrams under reassembly, the
	// fragments they hold, and the reassemblers' memory in use and
	// allocated (Config.ReassemblyMemory; 0 until a fragment arrives).
	ReasmQueues      uint64
	ReasmFragments   uint64
	ReasmMemoryInUse uint64
	ReasmMemoryLimit uint64

	// ICMPErrorsIn counts the ICMP and ICMPv6 error messages (destination
	// unreachable, packet too big, time exceeded, parameter problem)
	// that reached an engine address; each ends in one of
	// ICMPErrorsDelivered (to the port that sent the quoted datagram),
	// ICMPErrorsUnmatched (well formed, but no port of the engine sent
	// the quoted datagram) or ICMPErrorsInvalid (bad checksum, quote
	// cut short, not about UDP, or a message Linux keeps from sockets).
	ICMPErrorsIn        uint64
	ICMPErrorsDelivered uint64
	ICMPErrorsUnmatched uint64
	ICMPErrorsInvalid   uint64
	// PMTUUpdates counts the times a Fragmentation Needed or Packet Too
	// Big lowered the path MTU to a destination.
	PMTUUpdates uint64
	// ICMPTimeExceededSent counts the Time Exceeded (fragment reassembly)
	// messages sent, ICMPParamProblemSent the ICMPv6 Parameter Problems
	// about refused fragments. (ICMPSent counts port unreachables;
	// ICMPRateLimited and ICMPSuppressed count all three kinds.)
	ICMPTimeExceededSent uint64
	ICMPParamProblemSent uint64

	// XDP are the AF_XDP backend's counters, summed over its sockets;
	// all zero on TPACKET. RingPackets and RingDrops hold what the
	// sockets received and lost there too.
	XDP XDPCounters
}

// MulticastCounters count the host side of IGMP and MLD: the queries the
// engine heard and the reports it sent.
type MulticastCounters struct {
	// IGMPQueries and MLDQueries count the queries, of every version,
	// the engine acted on; InvalidQueries those it ignored (a bad
	// checksum or length; for MLD a source that is not link-local, a hop
	// limit other than 1, or no Router Alert option, RFC 3810 section
	// 6.2).
	IGMPQueries    uint64
	MLDQueries     uint64
	InvalidQueries uint64
	// ReportsHeard counts other hosts' IGMPv1/v2 and MLDv1 reports for a
	// group the engine has joined; while an older querier is present,
	// such a report stands in for the engine's own (RFC 2236 section 3).
	ReportsHeard uint64
	// IGMPReports and MLDReports count the report frames the engine sent:
	// state changes, answers to queries, IGMPv1/v2 and MLDv1 reports,
	// leaves and dones.
	IGMPReports uint64
	MLDReports  uint64
	// AnswersLimited counts answers to queries that the engine's rate
	// limit held back (queries come from anyone on the link).
	AnswersLimited uint64
	// Groups is the number of groups joined on the interface, the
	// engine's own (all-systems, all-nodes, solicited-node) included.
	Groups uint64
}

// IPFragCounters are the fragment counters of Linux's Ip MIB
// (/proc/net/snmp; ReasmOverlaps from IpExt in /proc/net/netstat) or Ip6
// MIB (/proc/net/snmp6), counted as Linux counts them: ReasmReqds per
// fragment received, ReasmOKs per datagram reassembled, ReasmFails per
// failure (a datagram discarded, timed out or evicted, a fragment
// refused), ReasmTimeout per datagram timed out, ReasmOverlaps per
// datagram discarded for an overlap; InHdrErrors the IPv6 fragments
// refused with a Parameter Problem (always 0 for IPv4); FragOKs the
// datagrams sent as fragments, FragCreates the fragments made,
// FragFails the datagrams that could not all be sent.
type IPFragCounters struct {
	ReasmReqds    uint64
	ReasmOKs      uint64
	ReasmFails    uint64
	ReasmTimeout  uint64
	ReasmOverlaps uint64
	InHdrErrors   uint64
	FragOKs       uint64
	FragFails     uint64
	FragCreates   uint64
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
// ended in exactly one outcome, so FramesIn equals the sum of Outcomes;
// and every datagram a fragment completed ended in one outcome too.
func (c *Counters) Check() error {
	if s := c.Outcomes.Sum(); s != c.FramesIn {
		return fmt.Errorf("engine: %d frames in but outcomes sum to %d", c.FramesIn, s)
	}
	if s, n := c.Reassembled.Sum(), c.Outcomes[OutcomeFragmentReassembled]; s != n {
		return fmt.Errorf("engine: %d fragments completed a datagram but reassembled outcomes sum to %d", n, s)
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
	cAfterOutcomes = cOutcome0 + counter(NumOutcomes)
)

// The fragment and ICMP-error counters (udp-frag), after the outcomes.
const (
	cICMPErrorsIn counter = cAfterOutcomes + iota
	cICMPErrorsDelivered
	cICMPErrorsUnmatched
	cICMPErrorsInvalid
	cPMTUUpdates
	cICMPTimeExceededSent
	cICMPParamProblemSent
	cFragOKs4
	cFragFails4
	cFragCreates4
	cFragOKs6
	cFragFails6
	cFragCreates6
	// The worker's reassembler's own counts (reassembly.Stats), copied
	// at each publish: evictions, the gauges, then the 12 slots of the
	// Ip and Ip6 ReasmReqds, ReasmOKs, ReasmFails, ReasmTimeout,
	// ReasmOverlaps, InHdrErrors.
	cReasmEvictions
	cReasmSourceEvictions
	cReasmQueues
	cReasmFragments
	cReasmMemoryInUse
	cReasmMemoryLimit
	cReasmStat0
	// What became of reassembled datagrams, by Outcome.
	cReasmOutcome0 = cReasmStat0 + 12
	numCounters    = cReasmOutcome0 + counter(NumOutcomes)
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

// publish copies c into the shared copy. Worker only. Only the counters
// that moved since the last publish are stored: a store is a locked
// instruction, and most of the counters (the outcomes, the fragment
// counters) do not move in a given batch. The worker, the only writer,
// reads its own last stores plainly.
func (p *publishedCounters) publish(c *counterSet) {
	p.seq.Add(1)
	for i := range c {
		if p.v[i] != c[i] {
			atomic.StoreUint64(&p.v[i], c[i])
		}
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
	s.addFragmentsTo(c)
}

// addFragmentsTo adds the worker's fragment and ICMP-error counters to c.
func (s *counterSet) addFragmentsTo(c *Counters) {
	for o := range NumOutcomes {
		c.Reassembled[o] += s[cReasmOutcome0+counter(o)]
	}
	c.ICMPErrorsIn += s[cICMPErrorsIn]
	c.ICMPErrorsDelivered += s[cICMPErrorsDelivered]
	c.ICMPErrorsUnmatched += s[cICMPErrorsUnmatched]
	c.ICMPErrorsInvalid += s[cICMPErrorsInvalid]
	c.PMTUUpdates += s[cPMTUUpdates]
	c.ICMPTimeExceededSent += s[cICMPTimeExceededSent]
	c.ICMPParamProblemSent += s[cICMPParamProblemSent]
	for i, ip := range [2]*IPFragCounters{&c.IP, &c.IP6} {
		r := cReasmStat0 + counter(6*i)
		ip.ReasmReqds += s[r]
		ip.ReasmOKs += s[r+1]
		ip.ReasmFails += s[r+2]
		ip.ReasmTimeout += s[r+3]
		ip.ReasmOverlaps += s[r+4]
		ip.InHdrErrors += s[r+5]
		f := cFragOKs4 + counter(3*i)
		ip.FragOKs += s[f]
		ip.FragFails += s[f+1]
		ip.FragCreates += s[f+2]
	}
	c.ReasmEvictions += s[cReasmEvictions]
	c.ReasmSourceEvictions += s[cReasmSourceEvictions]
	c.ReasmQueues += s[cReasmQueues]
	c.ReasmFragments += s[cReasmFragments]
	c.ReasmMemoryInUse += s[cReasmMemoryInUse]
	c.ReasmMemoryLimit += s[cReasmMemoryLimit]
}

// finishUDP derives the Udp counters that are sums of outcomes.
// A reassembled datagram counts like a frame.
func (c *Counters) finishUDP() {
	both := func(o Outcome) uint64 { return c.Outcomes[o] + c.Reassembled[o] }
	c.UDP.NoPorts = both(OutcomeNoPort)
	c.UDP.IgnoredMulti = both(OutcomeNoPortMulti)
	c.UDP.InCsumErrors = both(Outcome(frame.ReasonUDPBadChecksum))
	c.UDP.InErrors = c.UDP.RcvbufErrors
	for _, r := range udpInErrorReasons {
		c.UDP.InErrors += both(Outcome(r))
	}
}
