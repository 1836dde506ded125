// Package frame reads and writes the headers of Ethernet frames in place:
// Ethernet II with up to two 802.1Q/802.1ad VLAN tags, IPv4, IPv6 with its
// extension headers, UDP, ARP, ICMPv4 and ICMPv6 (with the NDP messages a
// responder needs, and the errors a UDP socket is told about), IGMP and
// MLD.
//
// It has four layers:
//
//   - Views. Ethernet, VLAN, IPv4, IPv6, UDP, ARP, ICMPv4, ICMPv6, IGMP
//     and MLD are byte-slice types with getters and setters over one
//     header, in the style of gVisor's tcpip/header. They never copy and
//     never allocate, and they trust their caller: a view must be at least
//     as long as its fixed header (check IsValid, or get it from a decoded
//     Packet).
//
//   - Decode. (*Packet).Decode walks a frame once, validates every length
//     on the way and records offsets in a small caller-owned Packet. It
//     returns a Reason: ReasonOK for a complete UDP datagram, one of a few
//     classification reasons for frames that are well formed but not UDP
//     (ARP, ICMP, TCP, fragments, ...), or the precise rule a malformed
//     frame broke. Decode does not verify checksums: whether to do so
//     depends on what the NIC or ring has already checked, so that is a
//     separate call (VerifyIPv4HeaderChecksum, VerifyUDPChecksum).
//
//   - Writers. BuildUDP and its siblings write complete frames with full
//     checksums into a caller buffer; ReplyInPlace turns a received
//     datagram into its answer by swapping addresses and ports, keeping
//     every checksum valid with RFC 1624 incremental updates; the
//     *Checksummed setters change one field of a template frame and its
//     checksums together, for load generators. UDPFragmenter and
//     FrameFragmenter write datagrams larger than the MTU as fragments, one
//     ring slot at a time, with FragmentIDs for their identifications; the
//     IGMP and MLD builders write membership reports.
//
//   - Control-plane parsers. ParseICMPv4Error and ParseICMPv6Error read
//     the UDP datagram an ICMP error quotes and the errno Linux would
//     report for it; ParseIGMPQuery and ParseMLDQuery read membership
//     queries of every version.
//
// Nothing on the receive or reply path allocates; the tests hold every such
// function to testing.AllocsPerRun == 0.
package frame
