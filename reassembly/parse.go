package reassembly

import (
	"encoding/binary"

	"github.com/pktengine/pktengine/frame"
	"github.com/pktengine/pktengine/proto"
)

// fragKey identifies the datagram a fragment belongs to: for IPv4 source,
// destination, Identification and Protocol (RFC 791), for IPv6 source,
// destination and the Fragment header's Identification (RFC 8200 section
// 4.5). It is packed into bytes so that comparing and hashing it is a
// memcmp and one maphash call.
//
//	src (16) | dst (16) | id (4) | family (1) | protocol (1) | 0 0
type fragKey [40]byte

// srcKey is the unit of per-source accounting: the family and the source
// address, IPv6 masked to Config.IPv6SourcePrefix.
type srcKey [17]byte

// fragInfo is what parseFragment learned about one fragment.
type fragInfo struct {
	family uint8 // 4 or 6; 0 if the frame is not an IP fragment at all
	key    fragKey
	src    srcKey
	offset int    // of the fragment's data in the fragmentable part, bytes
	end    int    // offset + data length (after IPv4's rounding down)
	more   bool   // MF / M
	data   []byte // the fragment's data, end-offset bytes
	hdr    []byte // the frame before the data: link header, IP header, extension headers, Fragment header
	l3Off  int
	nhOff  int   // IPv6: offset from the IP header of the Next Header byte that names the Fragment header
	fhOff  int   // IPv6: offset from the IP header of the Fragment header
	ecn    uint8 // 1 << (ECN field), as Linux's ip4_frag_ecn
	df     bool  // IPv4 DF
	size   int   // IPv4: IP length of the fragment after rounding (Linux's fragsize)
	pp     ParamProblem
}

// ecnBit is Linux's IPFRAG_ECN_* bit for an ECN field: 1 << ecn.
func ecnBit(dsfield uint8) uint8 { return 1 << (dsfield & 3) }

// parseFragment reads the fragment p describes in f. The outcome is 0 for
// a fragment to queue, or the reason to drop it before any queue is
// looked at: Malformed (family 0 for a frame that is not an IP fragment,
// 4 or 6 for one whose headers do not fit a queue's header room),
// IncompleteChain, Unaligned or TooBig for
// IPv6 (with the Parameter Problem Linux sends). It trusts p only as far
// as it checks it: any frame and any Packet give a verdict, never a panic.
func parseFragment(b []byte, p *frame.Packet, f *fragInfo, v6prefix int) Outcome {
	l3, end := int(p.L3Off), int(p.End)
	if end > len(b) || l3 > end {
		return Malformed
	}
	f.l3Off = l3
	switch p.IPVersion {
	case frame.IPv4Version:
		return parseIPv4(b[:end], l3, f)
	case frame.IPv6Version:
		return parseIPv6(b[:end], l3, f, v6prefix)
	}
	return Malformed
}

func parseIPv4(b []byte, l3 int, f *fragInfo) Outcome {
	ip := frame.IPv4(b[l3:])
	if !ip.IsValid() || int(ip.TotalLength()) != len(ip) {
		return Malformed
	}
	if !ip.IsFragment() {
		return Malformed
	}
	f.family = 4
	ihl := ip.HeaderLength()
	off := int(ip.FragmentOffset())
	dataLen := len(ip) - ihl
	f.offset, f.end = off, off+dataLen
	f.more = ip.MoreFragments()
	if f.more && f.end&7 != 0 {
		// Linux (ip_frag_queue) trims a non-last fragment to a multiple
		// of 8 bytes and keeps it.
		f.end &^= 7
		if f.end < f.offset {
			f.end = f.offset
		}
	}
	f.data = b[l3+ihl : l3+ihl+f.end-f.offset]
	f.hdr = b[:l3+ihl]
	f.df = ip.DontFragment()
	f.size = ihl + f.end - f.offset
	f.ecn = ecnBit(ip.TOS())
	copy(f.key[0:4], ip.SourceSlice())
	copy(f.key[16:20], ip.DestinationSlice())
	binary.BigEndian.PutUint32(f.key[32:], uint32(ip.ID()))
	f.key[36] = 4
	f.key[37] = ip.Protocol()
	f.src[0] = 4
	copy(f.src[1:5], ip.SourceSlice())
	return 0
}

func parseIPv6(b []byte, l3 int, f *fragInfo, v6prefix int) Outcome {
	ip := frame.IPv6(b[l3:])
	if !ip.IsValid() || frame.IPv6HeaderLen+int(ip.PayloadLength()) != len(ip) {
		return Malformed
	}
	// The unfragmentable part: every extension header before the first
	// Fragment header (RFC 8200 section 4.5).
	next, off, nh := ip.NextHeader(), frame.IPv6HeaderLen, 6
	for n := 0; next != proto.IPProtoFragment; n++ {
		hl, ok := extHeaderLen(ip, next, off)
		if !ok || n == frame.MaxIPv6ExtHeaders {
			return Malformed
		}
		next, nh, off = ip[off], off, off+hl
	}
	if off+frame.IPv6FragmentHeaderLen > len(ip) {
		return Malformed
	}
	fh := frame.IPv6Fragment(ip[off : off+frame.IPv6FragmentHeaderLen])
	f.offset = int(fh.FragmentOffset())
	f.more = fh.MoreFragments()
	if f.offset == 0 && !f.more {
		return Malformed // an atomic fragment (RFC 6946) is a whole packet
	}
	f.family = 6
	if l3+off+frame.IPv6FragmentHeaderLen > maxHeaderLen {
		// More link and extension headers than a queue keeps room for.
		return Malformed
	}
	data := off + frame.IPv6FragmentHeaderLen
	f.end = f.offset + len(ip) - data
	f.nhOff, f.fhOff = nh, off
	f.data = ip[data:]
	f.hdr = b[:l3+data]
	f.ecn = ecnBit(ip.TrafficClass())
	copy(f.key[0:16], ip.SourceSlice())
	copy(f.key[16:32], ip.DestinationSlice())
	binary.BigEndian.PutUint32(f.key[32:], fh.ID())
	f.key[36] = 6
	f.src[0] = 6
	copy(f.src[1:], ip.SourceSlice())
	maskPrefix(f.src[1:], v6prefix)

	// The order of Linux's ipv6_frag_rcv and ip6_frag_queue: the header
	// chain of a first fragment (RFC 7112), then the end of the
	// fragment, then its alignment.
	if f.offset == 0 && !chainComplete(ip, fh.NextHeader(), data) {
		f.pp = ParamProblem{Code: ICMPv6CodeIncompleteChain, Pointer: 0}
		return IncompleteChain
	}
	if f.end > 0xffff {
		f.pp = ParamProblem{Code: ICMPv6CodeErroneousField, Pointer: uint32(off + 2)}
		return TooBig
	}
	if f.more && f.end&7 != 0 {
		f.pp = ParamProblem{Code: ICMPv6CodeErroneousField, Pointer: 4}
		return Unaligned
	}
	return 0
}

// extHeaderLen returns the length of the IPv6 extension header of type
// next at ip[off:], and false if next is not an extension header that can
// precede a Fragment header or the header does not fit.
func extHeaderLen(ip []byte, next uint8, off int) (int, bool) {
	if !proto.IsIPv6ExtensionHeader(next) || off+2 > len(ip) {
		return 0, false
	}
	var hl int
	switch next {
	case proto.IPProtoAH:
		hl = (int(ip[off+1]) + 2) << 2
	default:
		hl = (int(ip[off+1]) + 1) << 3
	}
	if off+hl > len(ip) {
		return 0, false
	}
	return hl, true
}

// chainComplete reports whether the first fragment ip holds the whole
// header chain from next at off through the upper-layer header, as RFC
// 8200 section 4.5 and RFC 7112 require. The upper-layer header must be
// there as far as Linux's ipv6frag_thdr_truncated checks it: 20 bytes of
// TCP, 8 of UDP or ICMPv6, 1 of anything else; No Next Header needs
// nothing. An extension header cut short by the end of the fragment is
// incomplete too (Linux lets that one through and leaves it to the
// reassembled packet; RFC 7112 calls for the drop, and frame.Decode already
// calls such a fragment malformed).
func chainComplete(ip []byte, next uint8, off int) bool {
	for n := 0; n < 2*frame.MaxIPv6ExtHeaders; n++ {
		switch next {
		case proto.IPProtoNoNext:
			return true
		case proto.IPProtoTCP:
			return off+20 <= len(ip)
		case proto.IPProtoUDP, proto.IPProtoICMPv6:
			return off+8 <= len(ip)
		case proto.IPProtoFragment:
			if off+frame.IPv6FragmentHeaderLen > len(ip) {
				return false
			}
			next, off = ip[off], off+frame.IPv6FragmentHeaderLen
			continue
		}
		if !proto.IsIPv6ExtensionHeader(next) {
			return off+1 <= len(ip)
		}
		hl, ok := extHeaderLen(ip, next, off)
		if !ok {
			return false
		}
		next, off = ip[off], off+hl
	}
	// A longer chain than any packet needs: the reassembled packet's
	// decode will judge it.
	return true
}

// maskPrefix clears the bits of a past the first bits.
func maskPrefix(a []byte, bits int) {
	for i := range a {
		switch {
		case bits >= 8:
			bits -= 8
		case bits > 0:
			a[i] &= ^byte(0xff >> bits)
			bits = 0
		default:
			a[i] = 0
		}
	}
}
