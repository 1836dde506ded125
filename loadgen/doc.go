// Package loadgen is pktengine's UDP load generator: precomputed frame
// templates written into a TX ring in batches, paced at batch granularity,
// and a receive side on an RX ring that matches replies to what was sent.
//
// It is meant to be linked into load-testing tools as well as to back
// `pktengine gen` and the benchmark harness.
//
// # Frames
//
// A [Template] is one UDP frame over IPv4 or IPv6 of a given size, built
// once with frame.BuildUDP, plus a table of flows: every combination of a
// range of source addresses, source ports and destination ports. Each flow's
// IPv4 header checksum and UDP checksum are derived from the previous flow's
// with RFC 1624 incremental updates, once, when the template is built. Per
// frame only the payload signature changes:
//
//	payload offset  0        2                      10                     18
//	                +--------+----------------------+----------------------+-----
//	                | run tag| stream:16 | seq:48   | send time (ns, Unix) | fill
//	                +--------+----------------------+----------------------+-----
//
// and the UDP checksum is the flow's precomputed sum plus those nine words:
// an incremental update over the changed payload words, never a recount of
// the frame. The signature takes 18 bytes, which is exactly what a 64-byte
// IPv4 frame leaves for UDP data; so the smallest IPv6 frame is 84 bytes.
//
// Sizes are Ethernet frame sizes as RFC 1242 and RFC 2544 count them: with
// the 4-byte frame check sequence, which the NIC (or nobody, on veth)
// appends. A 64-byte frame is written as 60 bytes.
//
// # Sending
//
// Each worker owns one TX ring (ring.Transmitter, PACKET_QDISC_BYPASS) and
// one stream of sequence numbers. It fills a batch of slots and kicks the
// kernel once per batch. A rate is enforced per batch ([Pacer]): the
// worker waits for the batch's deadline, then writes the whole batch at
// ring speed, so a paced run costs no more per frame than an unpaced one
// (trafgen falls back to one sendto per frame when given a rate). Below
// the batch size, batches shrink so that a burst never spans more than
// [BurstQuantum] of the schedule: at 10 kframes/s a batch is one frame.
//
// # Receiving and measuring
//
// The receive side reads replies from a TPACKET_V3 RX ring whose classic
// BPF filter passes only UDP to the generator's source ports. Every reply
// with the current run tag is matched by (stream, sequence number) in a
// sliding bitmap window ([SeqTracker]): duplicates, reordering and, at the
// end, loss. Latency is the ring's receive timestamp minus the send time in
// the payload. Both are CLOCK_REALTIME: the kernel stamps a frame as it
// puts it into the ring (tpacket_rcv; from skb->tstamp when that is set,
// else ktime_get_real), so neither the V3 block retire timeout nor when the
// receiving goroutine runs adds anything to the figure. The send time is
// taken once per batch just before the batch is written, so a frame's
// latency includes the time to fill the rest of its batch (about 30 ns per
// frame) and the kick. Latencies go into a log-linear [Histogram] (no
// allocation per sample, at most 1/128 relative error).
package loadgen
