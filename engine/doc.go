// Package engine is a UDP endpoint built on kernel rings: it receives
// frames from memory it shares with the kernel, parses and validates them
// in place, dispatches datagrams by destination address and port, and
// answers through a TX ring, without allocating. An inline handler runs
// on the frame in the ring (echo copies it once, into its TX slot, or on
// AF_XDP rewrites it where it is); a queued datagram is copied into one
// of its port's buffers unless Config.ZeroCopy leaves it in the ring.
//
// Config.Backend chooses the rings: AF_PACKET TPACKET rings beside the
// kernel (BackendTPACKET, the default), or AF_XDP sockets fed by an XDP
// program that steers only the engine's frames to them (BackendXDP; see
// docs/ENGINE.md and docs/XDP.md). Everything above the rings is the same.
//
//	e, err := engine.Open(ifi, &engine.Config{Addrs: []netip.Prefix{prefix}})
//	...
//	defer e.Close()
//
//	// The fastest path: an inline handler on the receive goroutine.
//	e.HandleService(netip.AddrPortFrom(netip.Addr{}, 7), engine.Echo)
//
//	// A queued port: datagrams (copies, by default) valid until released.
//	p, err := e.Bind(netip.AddrPortFrom(netip.Addr{}, 5353))
//	ds := make([]engine.Datagram, 64)
//	for {
//		n, err := p.Recv(ctx, ds) // releases what ds held before
//		...
//		for i := range ds[:n] {
//			p.Reply(&ds[i], answer(ds[i].Payload))
//		}
//	}
//
// # The life of a frame
//
// Each worker owns one receive ring (several join a PACKET_FANOUT hash
// group) and one TX ring. For every frame of a ring batch,
// worker.handleFrame in worker.go reads top to bottom:
//
//  1. A frame of a VLAN the engine does not serve (Config.VLAN; by default
//     untagged frames), one the ring truncated, or one for another host,
//     ends there.
//  2. frame.Packet.Decode classifies it. A fragment goes to the worker's
//     reassembler (package reassembly) and ends in a fragment-* outcome;
//     the datagram it completes goes on from step 3 as if it were a frame
//     (its own outcome in Counters.Reassembled). ARP and ICMP go to the
//     neighbour, ping and ICMP-error handlers, IGMP and MLD to the
//     multicast state; everything else that is not a complete UDP
//     datagram ends in the outcome named by its frame.Reason.
//  3. A datagram not to one of the engine's addresses, broadcasts or
//     joined multicast groups ends as other-host. Then the IPv4 header checksum
//     is verified, an IPv6 checksum of 0 rejected, and the UDP checksum
//     verified unless the ring says the device did or the sender left it
//     partial (a local socket on a veth).
//  4. The port table, an immutable two-level array swapped atomically on
//     Bind and Close, gives the port: exact address first, then the
//     wildcard of the family (a port connected to another peer does not
//     match). Broadcasts and multicasts go to every port that matches
//     (and, for a group, whose own source filter takes the source).
//  5. An inline handler runs at once on the frame in the ring (echo
//     copies it into a TX slot, rewrites it with frame.ReplyInPlace and
//     commits); a queued port gets a Datagram whose payload is copied
//     into one of the port's buffers, so that the ring never waits for a
//     slow consumer (Config.ZeroCopy points it into the ring instead). A
//     full queue drops and counts, as a socket's full receive buffer
//     does.
//  6. An unbound port on an owned address draws an ICMP port unreachable,
//     within the rules of RFC 1122 and RFC 4443 and a token bucket; on a
//     shared address the kernel, which received the frame too, answers.
//  7. The frame's one outcome is counted. At the end of the batch the TX
//     ring is flushed with one system call and the worker's counters are
//     published.
//
// # Counters
//
// Every frame ends in exactly one Outcome, so Counters.FramesIn always
// equals the sum of Counters.Outcomes (Counters.Check). The Udp counters
// of /proc/net/snmp are derived with the kernel's names. Each worker
// counts in private memory and publishes under a sequence lock once per
// batch; a snapshot is consistent per worker.
//
// # Fragments and ICMP errors
//
// Whatever the engine sends beyond the path MTU leaves as fragments (IPv4
// without DF, IPv6 with RFC 7739 identifications), up to 65,507 bytes of
// UDP data over IPv4 and 65,527 over IPv6; more fails with EMSGSIZE. An
// ICMP error about a datagram a port sent goes to that port
// (Port.ReadErrors; a connected port's next receive or send fails with
// Linux's errno for a hard error), and Fragmentation Needed or Packet Too
// Big lowers the path MTU to the destination for 10 minutes.
//
// # The link
//
// The engine follows its interface through rtnetlink. An outage is
// counted (Counters.LinkDowns, LinkUps) and logged, and by default served
// through (LinkResume); with Config.OnLinkDown = LinkFail the engine
// stops. The removal of the interface always stops it. An engine that
// stops by itself closes Done and reports why in Err, as a context does;
// Close is still needed, and Status keeps working after it.
//
// # Multicast and VLANs
//
// Ports join groups as sockets do (Port.JoinGroup, JoinSourceGroup,
// BlockSource, ...; the same on a Conn with x/net's signatures); the
// engine merges their filters into one interface state, reports it with
// IGMPv3 and MLDv2 (or IGMPv2, IGMPv1 and MLDv1 while an older querier is
// present), answers queries, and puts the groups' MAC addresses on the
// interface's list. It serves one VLAN, untagged by default, and tags
// what it sends with it.
//
// # Addresses
//
// An address the kernel does not have is owned: the engine answers ARP,
// neighbour solicitations and pings for it. An address the kernel has is
// shared: the kernel keeps its neighbour discovery and ICMP, and for each
// engine port a kernel UDP socket with a drop-all filter keeps the kernel
// from answering or sending ICMP. docs/ENGINE.md has the details.
package engine
