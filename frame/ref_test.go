package frame

// A slow reference decoder and checksum, written separately from the
// package code and from the RFCs rather than from decode.go, for the fuzz
// and differential tests to compare against. It favours obviousness over
// speed: a cursor that takes bytes, plain ints, byte-at-a-time sums.

// refPacket is what the reference decoder finds.
type refPacket struct {
	reason    Reason
	l3, l4    int // -1 when not reached
	payload   int
	l4end     int
	end       int
	etherType int
	vlans     []VLANTag
	ipVersion int
	protocol  int
	fragment  bool
	more      bool
	nonFirst  bool
	options   bool
	ext       bool
	routing   bool
	udp       bool
	partial   bool // first fragment with a UDP length past its end
}

func word(b []byte, i int) int { return int(b[i])<<8 | int(b[i+1]) }

func refDecode(f []byte) refPacket {
	r := refPacket{l3: -1, l4: -1, payload: -1, l4end: -1, end: -1, etherType: -1, protocol: -1}
	if len(f) < 6+6+2 {
		r.reason = ReasonTruncatedEthernet
		return r
	}
	pos := 12
	for {
		t := word(f, pos)
		if t != 0x8100 && t != 0x88a8 {
			r.etherType = t
			pos += 2
			break
		}
		if len(r.vlans) == 2 {
			r.reason = ReasonTooManyVLANTags
			return r
		}
		// TPID, TCI, and the next type must all be there.
		if pos+2+2+2 > len(f) {
			r.reason = ReasonTruncatedVLAN
			return r
		}
		r.vlans = append(r.vlans, VLANTag{TPID: uint16(t), TCI: uint16(word(f, pos+2))})
		pos += 4
	}
	r.l3 = pos
	switch r.etherType {
	case 0x0800:
		refIPv4(f, &r)
	case 0x86dd:
		refIPv6(f, &r)
	case 0x0806:
		refARP(f, &r)
	default:
		r.reason = ReasonUnknownEtherType
		r.l4, r.payload, r.l4end, r.end = r.l3, r.l3, len(f), len(f)
	}
	return r
}

func refARP(f []byte, r *refPacket) {
	a := f[r.l3:]
	if len(a) < 8+2*(6+4) {
		r.reason = ReasonARPTruncated
		return
	}
	if word(a, 0) != 1 || word(a, 2) != 0x0800 || a[4] != 6 || a[5] != 4 {
		r.reason = ReasonARPUnsupported
		return
	}
	r.end = r.l3 + 28
	r.l4, r.payload, r.l4end = r.end, r.end, r.end
	r.reason = ReasonARP
}

func refIPv4(f []byte, r *refPacket) {
	ip := f[r.l3:]
	switch {
	case len(ip) < 20:
		r.reason = ReasonIPv4Truncated
		return
	case ip[0]/16 != 4:
		r.reason = ReasonIPv4BadVersion
		return
	case int(ip[0]%16)*4 < 20:
		r.reason = ReasonIPv4HeaderTooShort
		return
	case int(ip[0]%16)*4 > len(ip):
		r.reason = ReasonIPv4HeaderPastEnd
		return
	case word(ip, 2) < int(ip[0]%16)*4:
		r.reason = ReasonIPv4TotalLengthTooShort
		return
	case word(ip, 2) > len(ip):
		r.reason = ReasonIPv4TotalLengthPastEnd
		return
	}
	hlen := int(ip[0]%16) * 4
	for i := 20; i < hlen; {
		if ip[i] == 0 { // end of list; the rest is padding
			break
		}
		if ip[i] == 1 {
			i++
			continue
		}
		if i+1 >= hlen || ip[i+1] < 2 || i+int(ip[i+1]) > hlen {
			r.reason = ReasonIPv4BadOptions
			return
		}
		i += int(ip[i+1])
	}
	r.ipVersion = 4
	r.protocol = int(ip[9])
	r.end = r.l3 + word(ip, 2)
	r.l4 = r.l3 + hlen
	r.payload, r.l4end = r.l4, r.l4
	r.options = hlen > 20
	mf := ip[6]&0x20 != 0
	offset := word(ip, 6) % 0x2000
	r.fragment = mf || offset != 0
	r.more = mf
	if offset != 0 {
		r.nonFirst = true
		r.l4end = r.end
		r.reason = ReasonNonFirstFragment
		return
	}
	refUpper(f, r)
}

func refIPv6(f []byte, r *refPacket) {
	ip := f[r.l3:]
	if len(ip) < 40 {
		r.reason = ReasonIPv6Truncated
		return
	}
	if ip[0]/16 != 6 {
		r.reason = ReasonIPv6BadVersion
		return
	}
	if 40+word(ip, 4) > len(ip) {
		r.reason = ReasonIPv6PayloadPastEnd
		return
	}
	r.ipVersion = 6
	r.end = r.l3 + 40 + word(ip, 4)
	pkt := f[r.l3:r.end]
	next, at, count := int(ip[6]), 40, 0
	for isExt(next) {
		r.ext = true
		if next == 0 && count > 0 {
			r.reason = ReasonIPv6HopByHopNotFirst
			return
		}
		if count == 8 {
			r.reason = ReasonIPv6TooManyExtHeaders
			return
		}
		var size int
		switch next {
		case 44:
			size = 8
		case 51:
			if at+2 > len(pkt) {
				r.reason = ReasonIPv6ExtHeaderTruncated
				return
			}
			size = 4 * (int(pkt[at+1]) + 2)
			if size < 12 {
				r.reason = ReasonIPv6AHTooShort
				return
			}
		default:
			if at+2 > len(pkt) {
				r.reason = ReasonIPv6ExtHeaderTruncated
				return
			}
			size = 8 * (int(pkt[at+1]) + 1)
		}
		if at+size > len(pkt) {
			r.reason = ReasonIPv6ExtHeaderTruncated
			return
		}
		if next == 0 || next == 60 {
			opts := pkt[at+2 : at+size]
			for i := 0; i < len(opts); {
				if opts[i] == 0 {
					i++
					continue
				}
				if i+1 >= len(opts) || i+2+int(opts[i+1]) > len(opts) {
					r.reason = ReasonIPv6BadOptions
					return
				}
				if opts[i] != 1 && opts[i]&0xc0 != 0 {
					r.reason = ReasonIPv6UnknownOption
					return
				}
				i += 2 + int(opts[i+1])
			}
		}
		cur, hdr := next, pkt[at:at+size]
		count++
		at += size
		next = int(hdr[0])
		if cur == 43 {
			r.routing = true
		}
		if cur == 44 {
			offset := word(hdr, 2) &^ 7
			more := hdr[3]&1 == 1
			if offset != 0 || more {
				r.fragment, r.more = true, more
			}
			if offset != 0 {
				r.nonFirst = true
				r.protocol = next
				r.l4, r.payload, r.l4end = r.l3+at, r.l3+at, r.end
				r.reason = ReasonNonFirstFragment
				return
			}
		}
	}
	r.protocol = next
	r.l4 = r.l3 + at
	r.payload, r.l4end = r.l4, r.l4
	refUpper(f, r)
}

func isExt(n int) bool {
	for _, e := range []int{0, 43, 44, 51, 60, 135, 139, 140} {
		if n == e {
			return true
		}
	}
	return false
}

func refUpper(f []byte, r *refPacket) {
	avail := r.end - r.l4
	switch {
	case r.protocol == 17:
		if avail < 8 {
			r.reason = ReasonUDPTruncated
			return
		}
		ulen := word(f, r.l4+4)
		if ulen < 8 {
			r.reason = ReasonUDPLengthTooShort
			return
		}
		if ulen > avail && !r.fragment {
			r.reason = ReasonUDPLengthPastEnd
			return
		}
		r.udp = true
		r.payload = r.l4 + 8
		if ulen > avail {
			r.partial = true
			r.l4end = r.end
		} else {
			r.l4end = r.l4 + ulen
		}
		if r.fragment {
			r.reason = ReasonUDPFragment
		} else {
			r.reason = ReasonOK
		}
	case r.protocol == 1 && r.ipVersion == 4:
		if avail < 8 {
			r.reason = ReasonICMPv4Truncated
			return
		}
		r.l4end = r.end
		r.reason = ReasonICMPv4
	case r.protocol == 58 && r.ipVersion == 6:
		if avail < 8 {
			r.reason = ReasonICMPv6Truncated
			return
		}
		r.l4end = r.end
		r.reason = ReasonICMPv6
	case r.protocol == 6:
		r.l4end = r.end
		r.reason = ReasonTCP
	default:
		r.l4end = r.end
		r.reason = ReasonOtherIPProtocol
	}
}

// refSum is the RFC 1071 sum, one 16-bit word at a time with the carry
// folded in after each addition.
func refSum(parts ...[]byte) uint16 {
	var s uint32
	var odd bool
	var hi byte
	add := func(w uint32) {
		s += w
		s = s&0xffff + s>>16
	}
	for _, p := range parts {
		for _, c := range p {
			if !odd {
				hi, odd = c, true
			} else {
				add(uint32(hi)<<8 | uint32(c))
				odd = false
			}
		}
	}
	if odd {
		add(uint32(hi) << 8)
	}
	return uint16(s)
}

// refUDPChecksumOK is the reference verdict on the checksum of a UDP
// datagram udp (exactly UDP-length bytes) carried between src and dst.
func refUDPChecksumOK(v6 bool, src, dst, udp []byte) Reason {
	ck := word(udp, 6)
	if ck == 0 {
		if v6 {
			return ReasonUDPZeroChecksumIPv6
		}
		return ReasonOK
	}
	n := len(udp)
	pseudo := []byte{0, 17, byte(n >> 8), byte(n)}
	if refSum(src, dst, pseudo, udp) != 0xffff {
		return ReasonUDPBadChecksum
	}
	return ReasonOK
}
