package frame

import "strconv"

// Reason is Decode's verdict on a frame, and the verdict of the checksum
// checks. The engine counts frames by Reason, so every rule a frame can
// break has its own value, and NumReasons bounds an array of counters:
//
//	var drops [frame.NumReasons]uint64
//	drops[p.Decode(f)]++
//
// ReasonOK means a complete UDP datagram. The values up to
// ReasonNonFirstFragment classify frames that are well formed but are not
// a complete UDP datagram (ARP, ICMP, TCP, fragments, ...); the Packet is
// filled in for them as far as this package parses. The values from
// ReasonTruncatedEthernet on are protocol violations (Malformed reports
// which).
type Reason uint8

// Reasons. String gives each a short stable name for counters and logs.
const (
	// ReasonOK: a complete, well-formed UDP datagram over IPv4 or IPv6.
	ReasonOK Reason = iota

	// ReasonARP: a well-formed Ethernet/IPv4 ARP packet (p.ARP).
	ReasonARP
	// ReasonICMPv4: an ICMP message of at least 8 bytes over IPv4
	// (p.ICMPv4). May be a first fragment: check p.IsFragment.
	ReasonICMPv4
	// ReasonICMPv6: an ICMPv6 message of at least 8 bytes (p.ICMPv6). May
	// be a first fragment: check p.IsFragment.
	ReasonICMPv6
	// ReasonTCP: a TCP segment (not validated beyond IP).
	ReasonTCP
	// ReasonOtherIPProtocol: any other upper-layer protocol (p.Protocol),
	// including ESP and IPv6 No Next Header.
	ReasonOtherIPProtocol
	// ReasonUnknownEtherType: neither IPv4, IPv6 nor ARP (p.EtherType).
	ReasonUnknownEtherType
	// ReasonUDPFragment: the first fragment (offset 0, more to follow) of
	// a UDP datagram. Header and ports are decoded, but the datagram is
	// incomplete without reassembly, which this package does not do;
	// FlagUDPIncomplete is set when the UDP length runs past the fragment.
	ReasonUDPFragment
	// ReasonNonFirstFragment: a fragment with a nonzero offset; it carries
	// no upper-layer header to read.
	ReasonNonFirstFragment

	// ReasonTruncatedEthernet: shorter than an Ethernet header.
	ReasonTruncatedEthernet
	// ReasonTruncatedVLAN: a TPID with no room for its TCI and the
	// EtherType after it.
	ReasonTruncatedVLAN
	// ReasonTooManyVLANTags: more than MaxVLANTags tags.
	ReasonTooManyVLANTags
	// ReasonARPTruncated: shorter than an Ethernet/IPv4 ARP packet (28
	// bytes).
	ReasonARPTruncated
	// ReasonARPUnsupported: hardware or protocol type or length other
	// than Ethernet (1, 6) and IPv4 (0x0800, 4).
	ReasonARPUnsupported
	// ReasonIPv4Truncated: fewer than 20 bytes after the link header.
	ReasonIPv4Truncated
	// ReasonIPv4BadVersion: EtherType IPv4 but version field not 4.
	ReasonIPv4BadVersion
	// ReasonIPv4HeaderTooShort: IHL below 5.
	ReasonIPv4HeaderTooShort
	// ReasonIPv4HeaderPastEnd: IHL × 4 beyond the captured bytes.
	ReasonIPv4HeaderPastEnd
	// ReasonIPv4TotalLengthTooShort: total length below the header length.
	ReasonIPv4TotalLengthTooShort
	// ReasonIPv4TotalLengthPastEnd: total length beyond the captured bytes.
	ReasonIPv4TotalLengthPastEnd
	// ReasonIPv4BadOptions: an option whose length byte is missing, below
	// 2 or past the end of the header (the structural checks of Linux's
	// ip_options_compile; option contents are not judged).
	ReasonIPv4BadOptions
	// ReasonIPv6Truncated: fewer than 40 bytes after the link header.
	ReasonIPv6Truncated
	// ReasonIPv6BadVersion: EtherType IPv6 but version field not 6.
	ReasonIPv6BadVersion
	// ReasonIPv6PayloadPastEnd: payload length beyond the captured bytes.
	ReasonIPv6PayloadPastEnd
	// ReasonIPv6ExtHeaderTruncated: an extension header runs past the
	// payload length (this includes jumbograms, RFC 2675, which carry a
	// payload length of 0 and are not supported).
	ReasonIPv6ExtHeaderTruncated
	// ReasonIPv6AHTooShort: an Authentication Header shorter than its
	// 12-byte fixed part (RFC 4302 section 2.2).
	ReasonIPv6AHTooShort
	// ReasonIPv6BadOptions: a Hop-by-Hop or Destination Options header
	// whose options do not fit it exactly.
	ReasonIPv6BadOptions
	// ReasonIPv6UnknownOption: an option this package does not recognise
	// (it recognises only Pad1 and PadN) whose type's two high-order bits
	// say "discard the packet" (RFC 8200 section 4.2). Options with the
	// bits 00, such as Router Alert, are skipped.
	ReasonIPv6UnknownOption
	// ReasonIPv6HopByHopNotFirst: a Hop-by-Hop Options header anywhere
	// but right after the fixed header (RFC 8200 section 4.1).
	ReasonIPv6HopByHopNotFirst
	// ReasonIPv6TooManyExtHeaders: more than MaxIPv6ExtHeaders.
	ReasonIPv6TooManyExtHeaders
	// ReasonICMPv4Truncated: an ICMP message shorter than 8 bytes.
	ReasonICMPv4Truncated
	// ReasonICMPv6Truncated: an ICMPv6 message shorter than 8 bytes.
	ReasonICMPv6Truncated
	// ReasonUDPTruncated: fewer than 8 bytes of IP payload for the header.
	ReasonUDPTruncated
	// ReasonUDPLengthTooShort: UDP length below 8.
	ReasonUDPLengthTooShort
	// ReasonUDPLengthPastEnd: UDP length beyond the IP payload.
	ReasonUDPLengthPastEnd

	// ReasonIPv4BadHeaderChecksum: from VerifyIPv4HeaderChecksum.
	ReasonIPv4BadHeaderChecksum
	// ReasonUDPBadChecksum: from VerifyUDPChecksum.
	ReasonUDPBadChecksum
	// ReasonUDPZeroChecksumIPv6: a UDP checksum of 0 over IPv6, which RFC
	// 8200 section 8.1 forbids (RFC 6935/6936 tunnels excepted, which a
	// responder is not).
	ReasonUDPZeroChecksumIPv6

	// NumReasons is the number of Reason values, for counter arrays.
	NumReasons
)

var reasonNames = [NumReasons]string{
	ReasonOK:                      "ok",
	ReasonARP:                     "arp",
	ReasonICMPv4:                  "icmpv4",
	ReasonICMPv6:                  "icmpv6",
	ReasonTCP:                     "tcp",
	ReasonOtherIPProtocol:         "other-ip-protocol",
	ReasonUnknownEtherType:        "unknown-ethertype",
	ReasonUDPFragment:             "udp-fragment",
	ReasonNonFirstFragment:        "non-first-fragment",
	ReasonTruncatedEthernet:       "truncated-ethernet",
	ReasonTruncatedVLAN:           "truncated-vlan",
	ReasonTooManyVLANTags:         "too-many-vlan-tags",
	ReasonARPTruncated:            "arp-truncated",
	ReasonARPUnsupported:          "arp-unsupported",
	ReasonIPv4Truncated:           "ipv4-truncated",
	ReasonIPv4BadVersion:          "ipv4-bad-version",
	ReasonIPv4HeaderTooShort:      "ipv4-header-too-short",
	ReasonIPv4HeaderPastEnd:       "ipv4-header-past-end",
	ReasonIPv4TotalLengthTooShort: "ipv4-total-length-too-short",
	ReasonIPv4TotalLengthPastEnd:  "ipv4-total-length-past-end",
	ReasonIPv4BadOptions:          "ipv4-bad-options",
	ReasonIPv6Truncated:           "ipv6-truncated",
	ReasonIPv6BadVersion:          "ipv6-bad-version",
	ReasonIPv6PayloadPastEnd:      "ipv6-payload-past-end",
	ReasonIPv6ExtHeaderTruncated:  "ipv6-ext-header-truncated",
	ReasonIPv6AHTooShort:          "ipv6-ah-too-short",
	ReasonIPv6BadOptions:          "ipv6-bad-options",
	ReasonIPv6UnknownOption:       "ipv6-unknown-option",
	ReasonIPv6HopByHopNotFirst:    "ipv6-hop-by-hop-not-first",
	ReasonIPv6TooManyExtHeaders:   "ipv6-too-many-ext-headers",
	ReasonICMPv4Truncated:         "icmpv4-truncated",
	ReasonICMPv6Truncated:         "icmpv6-truncated",
	ReasonUDPTruncated:            "udp-truncated",
	ReasonUDPLengthTooShort:       "udp-length-too-short",
	ReasonUDPLengthPastEnd:        "udp-length-past-end",
	ReasonIPv4BadHeaderChecksum:   "ipv4-bad-header-checksum",
	ReasonUDPBadChecksum:          "udp-bad-checksum",
	ReasonUDPZeroChecksumIPv6:     "udp-zero-checksum-ipv6",
}

// String returns the reason's short name, such as "udp-bad-checksum".
func (r Reason) String() string {
	if r < NumReasons {
		return reasonNames[r]
	}
	return "reason-" + strconv.Itoa(int(r))
}

// Malformed reports whether r is a protocol violation (a truncated or
// inconsistent header, or a bad checksum) rather than ReasonOK or the
// classification of a well-formed frame that is not a complete UDP
// datagram.
func (r Reason) Malformed() bool { return r >= ReasonTruncatedEthernet && r < NumReasons }
