// Package reassembly puts IPv4 (RFC 791, RFC 815) and IPv6 (RFC 8200
// section 4.5) fragments back together the way Linux does
// (net/ipv4/ip_fragment.c, net/ipv6/reassembly.c, net/ipv4/inet_fragment.c),
// within a fixed memory budget that a flood of fragments cannot turn
// against the datagrams of other senders.
//
// # Use
//
// One Reassembler per engine worker, used by that worker's goroutine only:
//
//	r, _ := reassembly.New(nil)
//	...
//	if p.IsFragment() {
//		res := r.Add(frame, &p, now)
//		counters[res.Outcome]++ // or read r.Stats()
//		if res.SendParamProblem { /* ICMPv6 type 4, res.ParamProblem, quoting frame */ }
//		if d := res.Datagram; d != nil {
//			handle(d.Frame()) // decodes as an unfragmented frame
//			r.Release(d)
//		}
//	}
//	...
//	for r.NextExpired(now, &e) { /* ICMP Time Exceeded code 1 quoting e.Datagram() */ }
//
// A reassembled datagram is a complete frame: the first fragment's link
// header and IP header, rewritten as the kernel rewrites them, and the whole
// payload. frame.(*Packet).Decode reads it as ReasonOK, VerifyUDPChecksum
// checks the checksum over the whole datagram, an ICMP error quotes its
// header and first bytes (what the first fragment carried), a reply is built
// from it like from any request.
//
// # Linux's rules
//
// Fragments belong together by source, destination and Identification (and
// Protocol for IPv4). The datagram is complete when the fragment at offset
// 0 and the last fragment (MF clear) have arrived and the bytes held add up
// to the last fragment's end. On the way:
//
//   - Fragments are kept as Linux keeps them, in runs of fragments that
//     arrived contiguously at the end. A fragment whose bytes lie within one
//     run is a duplicate and is dropped, the datagram goes on; one that
//     overlaps held data in any other way discards the whole datagram
//     (RFC 5722, and Linux does the same for IPv4 since 4.20): ReasmOverlaps
//     and ReasmFails.
//   - A last fragment with another end than a previous last fragment, a
//     fragment past the last fragment's end, a last fragment ending before
//     held data, and a fragment without data discard the datagram
//     (ReasmFails).
//   - IPv4: a fragment with MF whose length is not a multiple of 8 is cut
//     down to one. IPv6: it is dropped with an ICMPv6 Parameter Problem
//     (code 0, pointing at the Payload Length); so is a fragment ending past
//     65,535 (pointing at the Fragment Offset), and a first fragment without
//     the whole header chain through the upper-layer header (RFC 7112; code
//     3, pointer 0). Those count as Ip6InHdrErrors, not as ReasmFails, and
//     leave the datagram alone.
//   - ECN: Not-ECT mixed with ECT or CE drops the datagram; CE in any
//     fragment marks the result CE (RFC 3168 section 5.3).
//   - IPv4 DF is kept on the result only if the largest fragment had it.
//   - A datagram times out its timeout after its first fragment to arrive
//     (30 s IPv4, 60 s IPv6); later fragments do not extend it. Timing out
//     counts ReasmFails and ReasmTimeout, and if the fragment at offset 0
//     had arrived, NextExpired hands out what an ICMP Time Exceeded (code 1)
//     quotes (RFC 792, RFC 1122 3.3.2, RFC 8200 4.5).
//   - A fragment that arrives for a datagram already completed, discarded
//     or timed out starts a new one.
//
// Deliberate differences from Linux: an IPv4 fragment ending past 65,515
// bytes (so that no datagram with it can be 65,535 bytes or less) discards
// its datagram at once instead of on completion, freeing the memory
// sooner; the IPv6 checks above refuse the fragment before any queue is
// made for it (Linux makes one, which then times out empty); a first
// fragment whose extension-header chain is cut short by the end of the
// fragment is refused by RFC 7112 (Linux lets it through); and memory is
// managed as below rather than by ipfrag_high_thresh, past which Linux
// refuses every fragment of every datagram until timeouts free memory (for
// up to 30 s after a flood). Linux's ipfrag_max_dist heuristic (a queue is
// restarted when 64 fragments of other datagrams from its source came in
// between) is not kept: the per-source share below does its job.
//
// # Memory
//
// New allocates all the state up front, within Config.MemoryLimit (4 MiB,
// Linux's ipfrag_high_thresh, by default): a table of queues, a table of
// sources, and an arena of 1 KiB pages for fragment data. Nothing is
// allocated per fragment; reassembled datagrams come from a pool of
// Config.MaxDatagrams buffers of MaxFrameLen bytes, outside the limit.
//
// A queue maps its datagram's byte range onto pages as fragments arrive,
// so a datagram costs memory in proportion to the bytes it holds, whatever
// the offsets (scattered fragments cost no more than adjacent ones), plus
// the first fragment's headers. Which 8-byte units are held, and where runs
// start, are two bitmaps beside each page, so placing a fragment costs time
// in proportion to its length, never to the number of fragments held: the
// FragmentSmack pattern (many tiny fragments of one datagram) stays linear.
// Completing a datagram copies it once more, out of the pages into the
// contiguous buffer; the benchmarks put the whole at about 110 ns per
// 1,480-byte fragment.
//
// # Floods
//
// Fragments are cheap to send and each one can open a datagram that never
// completes, so a reassembler is a memory an attacker can fill. The policy
// has two layers:
//
//   - Per source. Every datagram is charged to its source: the IPv4
//     address, or the IPv6 address's /64 (Config.IPv6SourcePrefix), since
//     one host owns a whole /64. A source may hold at most
//     Config.SourceLimit (an eighth of the memory by default, never less
//     than one datagram of the largest size) and the same share of the
//     queues. A source that needs more gives up its own least recently
//     active datagram. So a flood from one host, or from up to seven, only
//     ever evicts its own datagrams: the others' are never touched, however
//     fast it sends.
//   - Overall. When memory or queues run out, the least recently active
//     datagram goes (after the reports of timed-out datagrams that wait for
//     NextExpired). "Active" means a fragment of it was stored; duplicates
//     do not count. A datagram being received is active at the pace of its
//     own fragments, while a flood's datagrams get one fragment each and
//     never another: under a flood of random fragments from any number of
//     spoofed sources, a datagram completes as long as fewer new datagrams
//     than there are queues (1,024 by default) arrive between two of its
//     fragments. The hostile tests check both bounds, and that a datagram
//     whose fragments come further apart does get evicted.
//
// Evicted datagrams count as ReasmFails (as Linux's old evictor counted
// them), and in Stats.Evictions. Every fragment is in exactly one outcome
// counter of Stats.Fragments at any moment (see Outcome).
package reassembly
