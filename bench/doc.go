// Package bench is pktengine's benchmark harness: RFC 2544 zero-loss
// throughput and latency of UDP echo responders, pktengine's against the
// kernel's, measured one after another in a lab of two network namespaces
// built for the run, plus the load generator (package loadgen) against
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
// Every trial offers a rate for Config.TrialDuration and counts the
// replies after Config.Drain. The zero-loss rate is found by the binary
// search of RFC 2544 section 26.1; a trial passes if it loses
// no more than Config.LossTolerance of its frames and the generator
// achieved 98 % of the offered rate (a trial in which it came within 90 %
// is run once more: that says nothing about the responder).
// Latency is then measured at 10, 50 and 90 % of each responder's median
// zero-loss rate. Responders take turns: each of Config.Trials rounds
// starts every responder, checks that it answers, warms it up with a short
// unpaced burst, measures it once and stops it, so that a change in the
// machine's load touches all of them alike. The report gives medians with
// min and max.
//
// The generator sends from an address and a MAC its own namespace does not
// have, so that its kernel drops the replies on arrival (its ring still
// reads them).
//
// veth runs the receiving side's kernel on the sending CPU: the responder
// namespace's receive of the requests on the generator's CPU, the
// generator namespace's receive of the replies on the responder's. That
// is the default, as in the lab notes. Config.RPS instead steers each
// side's receive to its own CPU (see Run).
//
// CPU cost is read from /proc/stat as the lab notes describe: the user and
// system ticks of the responder's CPU over a trial, and its softirq ticks
// separately, each divided by the replies sent; the table shows them at
// 90 % of the zero-loss rate. The responder process's own ticks
// (/proc/PID/stat) are in the JSON too; tick-based accounting charges them
// the softirqs that ran while it was on the CPU, so they overlap the
// softirq figure. Heap allocation is the responder process's
// runtime.MemStats, over the unpaced trials (the steady state: the data
// path never waits) and over all trials.
//
// The generator comparison sends one 64-byte frame (trafgen a static copy
// of it; pktengine's generator writes its signature and checksum into
// every frame) from the generator CPU as fast as each tool goes and counts
// what arrives in a TPACKET_V3 ring on the other side. The frames go to a
// MAC no host has, so B's kernel drops them on arrival. It always runs
// without RPS, which trafgen does not survive; with RPS the line rate,
// pktengine's generator into the same ring, follows.
package bench
