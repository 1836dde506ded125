// Package bpf builds classic BPF socket filters for pktengine, as
// golang.org/x/net/bpf instructions, without libpcap or cgo.
//
// Compile and CompileRaw take tcpdump (pcap-filter) expressions; the
// builders (EtherType, UDPDstPort, DstAddr, NotOutgoing, VLAN, And, Or,
// Not ...) make the engine's own filters from the same parts. Both lower
// each primitive the way libpcap does and run an optimiser with libpcap's
// transformations, so programs match tcpdump's verdicts frame for frame
// (truncated frames included) and, for the test corpus, its length.
//
// Options.VLAN chooses how VLAN tags are found: from Linux ancillary data
// (the default, right for AF_PACKET sockets, where the kernel has already
// removed the outer tag) or in the frame (tcpdump's "-y EN10MB" behaviour).
//
// FormatD, FormatDD and FormatDDD print programs as tcpdump -d, -dd and
// -ddd do. Attach, Lock and Detach manage a socket's filter.
//
// docs/BPF.md describes the language and the deliberate differences from
// tcpdump.
package bpf
