// Package bench is pktengine's benchmark harness: RFC 2544 zero-loss
// throughput and latency of UDP echo responders, pktengine's against the
// kernel's, measured one after another in a lab of two network namespaces
// built for the run, plus the load generator (package gen) against
// trafgen.
//
// # Method
//
// The lab is two namespaces joined by one veth pair (internal/lab). The
// generator runs in A, pinned to one CPU; each responder in turn runs in
// B, pinned to the other. Both are child processes of the harness, started
// with `ip netns exec NS taskset -c CPU BINARY __bench-child ...` (see
// ChildCommand): a child pinned by taskset before its runtime starts keeps
// every thread, its garbage collector's included, on its CPU, which a
// goroutine pinned inside the harness's own process could not promise.
// The responders are
//
//   - kernel: net.UDPConn ReadFrom/WriteTo, what most Go servers do;
//   - kernel-batch: x/net/ipv4 ReadBatch/WriteBatch, 64 datagrams per
//     recvmmsg/sendmmsg, the best the kernel's UDP offers a Go program;
//   - engine-v2, engine-v3: pktengine's engine with the built-in echo
//     service on its inline path, TPACKET_V2 and TPACKET_V3 receive rings.
//
// For each, every trial offers a rate for Config.TrialDuration and counts
// the replies after Config.Drain. The zero-loss rate is found by the
// binary search of RFC 2544 section 26.1 (see search); a trial passes if
// it loses no more than Config.LossTolerance of its frames and the
// generator achieved 98 % of the offered rate. The search repeats
// Config.Trials times; the report gives the median with min and max.
// Latency is then measured at 10, 50 and 90 % of the median zero-loss
// rate, Config.Trials times each.
//
// CPU cost is read from /proc: the responder process's user and system
// ticks over a trial, and the softirq ticks of its CPU, each divided by
// the replies it sent. On veth a frame is delivered on the sending CPU,
// so the softirq time on the responder's CPU is mostly the generator
// side's kernel taking in replies (about the same per reply for every
// responder), while the responder side's kernel receiving requests runs
// on the generator's CPU. Heap allocation is the responder process's
// runtime.MemStats over all its trials.
//
// The generator comparison sends one static 64-byte frame (pktengine's
// generator still writes its signature and checksum into every frame)
// from the generator CPU as fast as each tool goes and counts what
// arrives in a TPACKET_V3 ring on the other side. The frames go to a MAC
// no host has, so B's kernel drops them on arrival.
package bench
