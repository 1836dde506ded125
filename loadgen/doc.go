// Package loadgen is a UDP load generator for load-testing tools: it
// writes Ethernet frames straight into AF_PACKET TX rings at a paced rate,
// reads the replies from an RX ring, and reports what came back: loss,
// duplicates, reordering and round-trip latency. On the project's lab
// machine one core offers about a million 64-byte frames per second
// (docs/bench/gen.md). It backs `pktengine gen` and the benchmark harness
// (package bench).
//
// # Use
//
//	ifi, err := net.InterfaceByName("veth0")
//	...
//	sum, err := loadgen.Run(ctx, ifi, &loadgen.Config{
//		Spec: loadgen.Spec{Dst: netip.MustParseAddrPort("198.18.0.2:7"), Flows: 16},
//		Load: loadgen.Load{Rate: 250e3, Duration: 10 * time.Second},
//	}, func(p loadgen.Progress) { fmt.Println(p) })
//	if err != nil {
//		...
//	}
//	fmt.Print(sum) // or encoding/json: every field has a JSON name
//
// Run opens the rings, sends the load once and closes them. To send
// several loads on one set of rings (a rate search, say), open a
// Generator with New and call its Run method for each: every run has its
// own tag, so a late reply to one run never counts for the next.
//
// The rings need CAP_NET_RAW, and they belong to the network namespace of
// the thread that opens them. Zero fields default: the interface's MAC
// and its first address of Dst's family, source port DefaultSrcPort
// (61000, above Linux's ephemeral ports), and the destination MAC from the
// kernel's neighbour table (LookupNeighbor; it does not resolve, so ping
// the target first or set Spec.DstMAC).
//
// # What it sends
//
// A [Template] is one UDP frame over IPv4 or IPv6, optionally VLAN-tagged,
// of a given size, built once with frame.BuildUDP, plus a table of flows:
// every combination of a range of source addresses, source ports and
// destination ports (Spec.SrcAddrs, SrcPorts, DstPorts; Spec.Flows alone
// varies the source port). Each flow's IPv4 header checksum and UDP
// checksum are derived from the previous flow's with RFC 1624 incremental
// updates, once, when the template is built. Per frame only the payload
// signature changes:
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
// Frames go round the flows, one frame per flow in turn.
//
// Sizes are Ethernet frame sizes as RFC 1242 and RFC 2544 count them: with
// the 4-byte frame check sequence, which the NIC (or nobody, on veth)
// appends. A 64-byte frame is written as 60 bytes.
//
// # Pacing
//
// Each worker (Config.Workers) owns one TX ring (PACKET_QDISC_BYPASS) and
// one stream of sequence numbers. It fills a batch of slots and kicks the
// kernel once per batch. A rate is enforced per batch by a token bucket:
// the worker waits for the batch's deadline, then writes the whole batch at
// ring speed, so a paced run costs no more per frame than an unpaced one
// (trafgen falls back to one sendto per frame when given a rate). Below
// the batch size, batches shrink so that a burst never spans more than
// Config.Quantum of the schedule ([DefaultQuantum], 50 µs: at 10 kframes/s
// a batch is one frame). A worker that fell behind catches up at most 1 ms
// of schedule back to back; frames beyond that are not sent, and
// Summary.SentRate shows it. Config.CPUs pins the workers. Frames the
// kernel refuses because the way out is full (ENOBUFS: on veth, the
// peer's queue) are counted in Summary.TX.Dropped, and as lost: an
// overloaded peer does not end the run.
//
// # Backends
//
// Config.Backend chooses how frames leave: TPACKET TX rings (the
// default), AF_XDP sockets sending from UMEM frames that keep the
// template and get only their varying fields rewritten (BackendXDP), or
// BPF_PROG_RUN live frames stamped per frame by a small XDP program
// (BackendLive, fastest, but paced in bursts: see DefaultLiveQuantum).
// docs/XDP.md has the details.
//
// # Replies
//
// The responder must send the payload's first 18 bytes back to the
// frame's source address and port, as an echo service (RFC 862) does. The
// receive side reads a TPACKET_V3 RX ring whose classic BPF filter passes
// only UDP to the generator's source ports. Every reply with the current
// run tag is matched by (stream, sequence number) in a sliding bitmap
// window ([SeqTracker]): duplicates, reordering and, at the end, loss.
// Replies to an earlier run count as Summary.Stale, frames without a
// signature as Summary.Foreign.
//
// The kernel of the sending host sees the replies too. If the source
// address is its own and no socket holds the source ports, it answers
// each with ICMP port unreachable; the benchmark harness sends from an
// address its host does not have, with a static neighbour entry on the
// responder's side, so that its kernel drops the replies at once.
//
// A tool with a receive side of its own (Config.SendOnly) finds the
// signature with [ParseSignature] and counts with a [SeqTracker] and a
// [Histogram], as this package does.
//
// # Latency
//
// Latency is the ring's receive timestamp minus the send time in the
// payload. Both are CLOCK_REALTIME: the kernel stamps a frame as it puts
// it into the ring (tpacket_rcv; from skb->tstamp when that is set, else
// ktime_get_real), so neither the V3 block retire timeout nor when the
// receiving goroutine runs adds anything to the figure. The send time is
// taken once per batch just before the batch is written, so a frame's
// latency includes the time to fill the rest of its batch (about 30 ns per
// frame) and the kick. Latencies go into a log-linear [Histogram] (no
// allocation per sample, at most 1/128 relative error); Summary.Latency
// has its percentiles.
package loadgen
