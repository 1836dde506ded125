// Package bpf holds every classic BPF socket filter of pktengine, as
// golang.org/x/net/bpf instructions, without libpcap or cgo.
//
// The programs:
//
//   - ServeFilter is the engine's receive filter: UDP to its addresses,
//     broadcasts and groups (narrowed by a tcpdump expression if set), and
//     the ARP, NDP and ICMP traffic it answers, from a ServeSpec;
//   - ReplyFilter is the load generator's: UDP to a range of ports;
//   - DropAll accepts nothing, for the kernel sockets that hold the
//     engine's ports on addresses it shares with the kernel;
//   - Compile and CompileRaw take tcpdump (pcap-filter) expressions
//     (docs/BPF.md describes the language and the deliberate differences
//     from tcpdump). They lower each primitive the way libpcap does and
//     run an optimiser with libpcap's transformations, so programs match
//     tcpdump's verdicts frame for frame (truncated frames included) and,
//     for the test corpus, its length. Options.VLAN chooses how VLAN tags
//     are found: from Linux ancillary data (the default, right for
//     AF_PACKET sockets, where the kernel has already removed the outer
//     tag) or in the frame (tcpdump's "-y EN10MB" behaviour).
//
// The hand-written programs are built with a small label assembler (named
// forward jumps, far jumps through a conditional skip over a ja), not with
// counted skips.
//
// AttachFD installs a program on a socket and Lock freezes it there
// (SO_LOCK_FILTER). Packet sockets take theirs before bind through
// ring.RXConfig.Filter or mdlayher/packet's Config.Filter.
//
// FormatD, FormatDD and FormatDDD print programs as tcpdump -d, -dd and
// -ddd do.
package bpf
