package frame

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"strconv"
	"syscall"

	"github.com/pktengine/pktengine/proto"
)

// ICMP error types and codes beyond those in icmp.go (RFC 792, RFC 1122,
// RFC 1812, RFC 4443).
const (
	ICMPv4SourceQuench uint8 = 4
	ICMPv4Redirect     uint8 = 5

	// Destination Unreachable codes 5 to 15.
	ICMPv4CodeSourceRouteFailed   uint8 = 5
	ICMPv4CodeNetUnknown          uint8 = 6
	ICMPv4CodeHostUnknown         uint8 = 7
	ICMPv4CodeHostIsolated        uint8 = 8
	ICMPv4CodeNetProhibited       uint8 = 9
	ICMPv4CodeHostProhibited      uint8 = 10
	ICMPv4CodeNetUnreachTOS       uint8 = 11
	ICMPv4CodeHostUnreachTOS      uint8 = 12
	ICMPv4CodeHostPrecedence      uint8 = 14
	ICMPv4CodePrecedenceCutoff    uint8 = 15
	icmpv4MaxUnreachCode                = 15 // Linux's NR_ICMP_UNREACH
	ICMPv4CodeTTLExceeded         uint8 = 0  // Time Exceeded in transit
	ICMPv4CodeFragReassemblyTime  uint8 = 1  // fragment reassembly time exceeded
	ICMPv6CodeHopLimitExceeded    uint8 = 0
	ICMPv6CodeFragReassemblyTime  uint8 = 1
	ICMPv6CodeBeyondScope         uint8 = 2
	ICMPv6CodeSourcePolicy        uint8 = 5
	ICMPv6CodeRejectRoute         uint8 = 6
	ICMPv6CodeErroneousHeader     uint8 = 0 // Parameter Problem codes
	ICMPv6CodeUnrecognizedNext    uint8 = 1
	ICMPv6CodeUnrecognizedOption  uint8 = 2
	ICMPv6CodeIncompleteHeaders   uint8 = 3 // RFC 7112
	icmpv6InformationalTypesStart       = 128
)

// Errno is a socket error as Linux numbers it (asm-generic/errno.h): the
// errors that ICMP messages turn into. Error gives Linux's wording, as a
// kernel socket's error reads in Go on Linux ("connection refused"), on
// every platform; on Linux errors.Is matches the syscall.Errno of the
// same name.
type Errno uint16

// The errnos Linux gives for ICMP errors.
const (
	EACCES       Errno = 13
	ENONET       Errno = 64
	EPROTO       Errno = 71
	EMSGSIZE     Errno = 90
	ENOPROTOOPT  Errno = 92
	EOPNOTSUPP   Errno = 95
	ENETUNREACH  Errno = 101
	ECONNREFUSED Errno = 111
	EHOSTDOWN    Errno = 112
	EHOSTUNREACH Errno = 113
)

var errnoText = map[Errno]string{
	EACCES:       "permission denied",
	ENONET:       "machine is not on the network",
	EPROTO:       "protocol error",
	EMSGSIZE:     "message too long",
	ENOPROTOOPT:  "protocol not available",
	EOPNOTSUPP:   "operation not supported",
	ENETUNREACH:  "network is unreachable",
	ECONNREFUSED: "connection refused",
	EHOSTDOWN:    "host is down",
	EHOSTUNREACH: "no route to host",
}

// Error returns the error's text as Linux's strerror has it, in lower
// case as Go prints syscall errors.
func (e Errno) Error() string {
	if s, ok := errnoText[e]; ok {
		return s
	}
	return "errno " + strconv.Itoa(int(e))
}

// Is reports whether target is the syscall.Errno of the same name, so that
// errors.Is(err, syscall.ECONNREFUSED) works as with a kernel socket's
// error. It is always false off Linux.
func (e Errno) Is(target error) bool {
	t, ok := target.(syscall.Errno)
	return ok && t != 0 && t == e.sysErrno()
}

// UDPError is what an ICMP or ICMPv6 error message says about the UDP
// datagram it quotes: which datagram, what happened, and what a Linux UDP
// socket that sent it would see.
type UDPError struct {
	// Type and Code are the ICMP message's.
	Type, Code uint8

	// Info is the message's type-specific value, as Linux passes it to
	// the socket (sock_extended_err's ee_info): the next-hop MTU of an
	// ICMPv4 Fragmentation Needed (RFC 1191), the MTU of an ICMPv6 Packet
	// Too Big, the pointer of a Parameter Problem; 0 otherwise.
	Info uint32

	// Src and Dst are the quoted datagram's addresses and ports: Src the
	// sender (this host, for an error about a datagram it sent), Dst where
	// it was going. A socket is found by them.
	Src, Dst netip.AddrPort

	// Errno is the error Linux reports for the message
	// (net/ipv4/udp.c __udp4_lib_err with icmp_err_convert,
	// net/ipv6/udp.c __udp6_lib_err with icmpv6_err_convert).
	Errno Errno

	// Fatal is Linux's "harderr": a connected socket without
	// IP_RECVERR/IPV6_RECVERR fails its next call with Errno only for a
	// fatal error (port or protocol unreachable, administratively
	// prohibited, parameter problem, Fragmentation Needed and Packet Too
	// Big under the default path MTU discovery). Net and host
	// unreachable and time exceeded are transient (RFC 1122 4.1.3.3,
	// 3.2.2.1) and reach only sockets that asked for the error queue.
	Fatal bool

	// Quote is the quoted packet from its IP header on, as the message
	// carries it (a view into the message).
	Quote []byte
}

// Errors of ParseICMPv4Error and ParseICMPv6Error: the message is not one
// to deliver to a UDP socket. An engine counts them and drops the message.
var (
	ErrNotICMPError      = errors.New("frame: not an ICMP error message a UDP socket receives")
	ErrICMPUnknownCode   = errors.New("frame: ICMP Destination Unreachable code above 15")
	ErrQuoteTruncated    = errors.New("frame: the quoted packet lacks its whole IP header or the 8 bytes of its UDP header")
	ErrQuoteNotUDP       = errors.New("frame: the quoted packet is not UDP, or not its first fragment")
	ErrQuoteBadIPVersion = errors.New("frame: the quoted packet is not of the message's IP version")
)

// icmpv4Unreach is Linux's icmp_err_convert (net/ipv4/icmp.c): the errno
// and fatality of each Destination Unreachable code. RFC 1122 3.2.2.1 makes
// net, host and source route failures transient.
var icmpv4Unreach = [icmpv4MaxUnreachCode + 1]struct {
	errno Errno
	fatal bool
}{
	{ENETUNREACH, false},  // 0 net unreachable
	{EHOSTUNREACH, false}, // 1 host unreachable
	{ENOPROTOOPT, true},   // 2 protocol unreachable
	{ECONNREFUSED, true},  // 3 port unreachable
	{EMSGSIZE, false},     // 4 fragmentation needed (UDP overrides, below)
	{EOPNOTSUPP, false},   // 5 source route failed
	{ENETUNREACH, true},   // 6 destination network unknown
	{EHOSTDOWN, true},     // 7 destination host unknown
	{ENONET, true},        // 8 source host isolated
	{ENETUNREACH, true},   // 9 network administratively prohibited
	{EHOSTUNREACH, true},  // 10 host administratively prohibited
	{ENETUNREACH, false},  // 11 network unreachable for TOS
	{EHOSTUNREACH, false}, // 12 host unreachable for TOS
	{EHOSTUNREACH, true},  // 13 communication administratively prohibited
	{EHOSTUNREACH, true},  // 14 host precedence violation
	{EHOSTUNREACH, true},  // 15 precedence cutoff in effect
}

// ICMPv4ErrorErrno returns the errno and fatality Linux's UDP gives an
// ICMPv4 error of type and code (__udp4_lib_err), for a socket with the
// default path MTU discovery setting. ok is false for the messages Linux
// does not report to a UDP socket at all (Source Quench, Redirect,
// Destination Unreachable codes above 15, Time Exceeded code 1 "fragment
// reassembly time exceeded", non-errors).
func ICMPv4ErrorErrno(typ, code uint8) (e Errno, fatal, ok bool) {
	switch typ {
	case ICMPv4DestUnreachable:
		if code > icmpv4MaxUnreachCode {
			return 0, false, false // icmp_unreach drops them
		}
		if code == ICMPv4CodeFragNeeded {
			// Path MTU discovery: EMSGSIZE, hard unless the socket
			// set IP_PMTUDISC_DONT.
			return EMSGSIZE, true, true
		}
		c := icmpv4Unreach[code]
		return c.errno, c.fatal, true
	case ICMPv4TimeExceeded:
		if code == ICMPv4CodeFragReassemblyTime {
			// icmp_unreach passes fragment reassembly timeouts to no
			// transport protocol.
			return 0, false, false
		}
		return EHOSTUNREACH, false, true
	case ICMPv4ParameterProblem:
		return EPROTO, true, true
	}
	return 0, false, false
}

// icmpv6Unreach is Linux's tab_unreach (net/ipv6/icmp.c).
var icmpv6Unreach = [...]struct {
	errno Errno
	fatal bool
}{
	{ENETUNREACH, false},  // 0 no route
	{EACCES, true},        // 1 administratively prohibited
	{EHOSTUNREACH, false}, // 2 beyond scope (was "not a neighbour")
	{EHOSTUNREACH, false}, // 3 address unreachable
	{ECONNREFUSED, true},  // 4 port unreachable
	{EACCES, true},        // 5 source address failed policy
	{EACCES, true},        // 6 reject route
}

// ICMPv6ErrorErrno returns the errno and fatality Linux's UDP gives an
// ICMPv6 error of type and code (icmpv6_err_convert, __udp6_lib_err), for
// a socket with the default path MTU discovery setting. Every error type
// (below 128) is reported; ok is false for informational messages.
func ICMPv6ErrorErrno(typ, code uint8) (e Errno, fatal, ok bool) {
	switch {
	case typ >= icmpv6InformationalTypesStart:
		return 0, false, false
	case typ == ICMPv6DestUnreachable:
		if int(code) < len(icmpv6Unreach) {
			return icmpv6Unreach[code].errno, icmpv6Unreach[code].fatal, true
		}
		return EPROTO, true, true
	case typ == ICMPv6PacketTooBig:
		return EMSGSIZE, true, true // hard unless IPV6_PMTUDISC_DONT
	case typ == ICMPv6ParameterProblem:
		return EPROTO, true, true
	case typ == ICMPv6TimeExceeded:
		return EHOSTUNREACH, false, true
	}
	return EPROTO, false, true // an error type Linux does not know
}

// ParseICMPv4Error reads an ICMP Destination Unreachable (any code up to
// 15, Fragmentation Needed with its next-hop MTU included), Time Exceeded
// (but not code 1, which Linux keeps from sockets) or Parameter Problem
// message m (the ICMP message from its type byte on,
// as Packet.ICMPv4 returns it) that quotes a UDP datagram. The quote must
// hold the whole IPv4 header (IHL at least 5) and the 8 bytes of UDP
// header after it, as Linux's icmp_unreach requires, and be the first
// fragment of a UDP datagram. The ICMP checksum is the caller's to verify
// (ICMPv4.IsChecksumValid). It does not allocate.
func ParseICMPv4Error(m ICMPv4) (UDPError, error) {
	if len(m) < ICMPHeaderLen {
		return UDPError{}, ErrNotICMPError
	}
	errno, fatal, ok := ICMPv4ErrorErrno(m.Type(), m.Code())
	if !ok {
		if m.Type() == ICMPv4DestUnreachable {
			return UDPError{}, ErrICMPUnknownCode
		}
		return UDPError{}, ErrNotICMPError
	}
	q := m[ICMPHeaderLen:]
	if len(q) < IPv4MinHeaderLen {
		return UDPError{}, ErrQuoteTruncated
	}
	if q[0]>>4 != IPv4Version {
		return UDPError{}, ErrQuoteBadIPVersion
	}
	ip := IPv4(q)
	hl := ip.HeaderLength()
	if hl < IPv4MinHeaderLen || len(q) < hl+UDPHeaderLen {
		return UDPError{}, ErrQuoteTruncated
	}
	if ip.Protocol() != proto.IPProtoUDP || binary.BigEndian.Uint16(q[ipv4FlagsFrag:])&0x1fff != 0 {
		return UDPError{}, ErrQuoteNotUDP
	}
	u := UDP(q[hl:])
	e := UDPError{
		Type: m.Type(), Code: m.Code(), Errno: errno, Fatal: fatal, Quote: q,
		Src: netip.AddrPortFrom(ip.Source(), u.SourcePort()),
		Dst: netip.AddrPortFrom(ip.Destination(), u.DestinationPort()),
	}
	switch {
	case m.Type() == ICMPv4DestUnreachable && m.Code() == ICMPv4CodeFragNeeded:
		e.Info = uint32(binary.BigEndian.Uint16(m[6:])) // RFC 1191 next-hop MTU
	case m.Type() == ICMPv4ParameterProblem:
		e.Info = uint32(m[4]) // the pointer
	}
	return e, nil
}

// ParseICMPv6Error reads an ICMPv6 error message m (types 1 to 127:
// Destination Unreachable, Packet Too Big with its MTU, Time Exceeded,
// Parameter Problem with its pointer, and the error types Linux passes on
// as unknown) that quotes a UDP datagram: the quoted IPv6 header, its
// extension headers up to UDP (a first fragment's, when fragmented) and
// the 8 bytes of UDP header must all be in the quote, as Linux's
// icmpv6_notify requires. The checksum is the caller's to verify. It does
// not allocate.
func ParseICMPv6Error(m ICMPv6) (UDPError, error) {
	if len(m) < ICMPHeaderLen {
		return UDPError{}, ErrNotICMPError
	}
	errno, fatal, ok := ICMPv6ErrorErrno(m.Type(), m.Code())
	if !ok {
		return UDPError{}, ErrNotICMPError
	}
	q := m[ICMPHeaderLen:]
	if len(q) < IPv6HeaderLen {
		return UDPError{}, ErrQuoteTruncated
	}
	if q[0]>>4 != IPv6Version {
		return UDPError{}, ErrQuoteBadIPVersion
	}
	// Walk the quoted chain within the quote (the quoted payload length
	// speaks of the whole packet, of which the quote may be a part).
	next, off := q[ipv6NextHeader], IPv6HeaderLen
	for n := 0; next != proto.IPProtoUDP; n++ {
		if !proto.IsIPv6ExtensionHeader(next) || n == MaxIPv6ExtHeaders {
			return UDPError{}, ErrQuoteNotUDP
		}
		if off+2 > len(q) {
			return UDPError{}, ErrQuoteTruncated
		}
		var hl int
		switch next {
		case proto.IPProtoFragment:
			if off+IPv6FragmentHeaderLen > len(q) {
				return UDPError{}, ErrQuoteTruncated
			}
			if IPv6Fragment(q[off:]).FragmentOffset() != 0 {
				return UDPError{}, ErrQuoteNotUDP
			}
			hl = IPv6FragmentHeaderLen
		case proto.IPProtoAH:
			hl = (int(q[off+1]) + 2) << 2
		default:
			hl = (int(q[off+1]) + 1) << 3
		}
		next, off = q[off], off+hl
	}
	if off+UDPHeaderLen > len(q) {
		return UDPError{}, ErrQuoteTruncated
	}
	ip := IPv6(q)
	u := UDP(q[off:])
	e := UDPError{
		Type: m.Type(), Code: m.Code(), Errno: errno, Fatal: fatal, Quote: q,
		Src: netip.AddrPortFrom(ip.Source(), u.SourcePort()),
		Dst: netip.AddrPortFrom(ip.Destination(), u.DestinationPort()),
	}
	switch m.Type() {
	case ICMPv6PacketTooBig, ICMPv6ParameterProblem:
		e.Info = binary.BigEndian.Uint32(m[4:]) // the MTU, the pointer
	}
	return e, nil
}

// BuildICMPv4Error writes an ICMPv4 error message of type and code with
// the type-specific word (RFC 1191's next-hop MTU for Fragmentation
// Needed, pointer<<24 for Parameter Problem, 0 otherwise), quoting the
// invoking datagram orig (from its IP header on): its header and 8 bytes
// of payload (RFC 792). The caller applies RFC 1122 3.2.2 (no error about
// an error, a broadcast or multicast, a non-first fragment).
func BuildICMPv4Error(buf []byte, s *IPSpec, typ, code uint8, word uint32, orig []byte) (int, error) {
	if !s.Src.Is4() || !s.Dst.Is4() {
		return 0, ErrAddressFamily
	}
	if len(s.VLANs) > MaxVLANTags {
		return 0, ErrTooManyVLANs
	}
	q := ICMPv4QuoteLen(orig)
	l2 := linkLen(len(s.VLANs))
	l4 := ICMPHeaderLen + q
	n := l2 + IPv4MinHeaderLen + l4
	if len(buf) < n {
		return 0, ErrShortBuffer
	}
	putLink(buf, s.SrcMAC, s.DstMAC, s.VLANs, proto.EtherTypeIPv4)
	putIPv4(buf[l2:], s.TOS, uint16(IPv4MinHeaderLen+l4), s.ID, 0, 0, s.TTL,
		proto.IPProtoICMP, s.Src, s.Dst, nil)
	m := ICMPv4(buf[l2+IPv4MinHeaderLen : n])
	m.SetType(typ)
	m.SetCode(code)
	m.SetChecksum(0)
	binary.BigEndian.PutUint32(m[4:], word)
	copy(m[ICMPHeaderLen:], orig[:q])
	m.SetChecksum(m.CalculateChecksum())
	return n, nil
}

// BuildICMPv6Error writes an ICMPv6 error message of type and code with
// the type-specific word (the MTU for Packet Too Big, the pointer for
// Parameter Problem, 0 otherwise), quoting as much of the invoking packet
// orig as fits in 1280 bytes (RFC 4443 2.4 (c)). The caller applies RFC
// 4443 2.4 (e).
func BuildICMPv6Error(buf []byte, s *IPSpec, typ, code uint8, word uint32, orig []byte) (int, error) {
	return buildICMPv6Error(buf, s, typ, code, word, orig)
}
