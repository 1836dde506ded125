package frame

import (
	"encoding/binary"
	"net/netip"
	"time"

	"github.com/pktengine/pktengine/proto"
)

// MLD is a Multicast Listener Discovery message (RFC 2710, RFC 3810): an
// ICMPv6 message of type 130 to 132 or 143, bounded by the IPv6 payload,
// whose length tells the versions of a query apart (RFC 3810 section
// 8.1). Queries and MLDv1 messages share the first 24 bytes:
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|     Type      |     Code      |          Checksum             |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|    Maximum Response Code      |           Reserved            |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                                                               |
//	+                       Multicast Address                       +
//	|                            (16)                               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// An MLDv2 query (RFC 3810 section 5.1) continues like an IGMPv3 query,
// with 16-byte sources:
//
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| Resv  |S| QRV |     QQIC      |     Number of Sources (N)     |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                  Source Address [1..N] (16 each)              |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// An MLDv2 report (type 143, section 5.2) has after the checksum 16
// reserved bits, the Nr of Mcast Address Records, and the records (see
// MLDv2AddressRecord).
type MLD []byte

// MLD message types and sizes.
const (
	MLDQuery    uint8 = 130
	MLDv1Report uint8 = 131
	MLDv1Done   uint8 = 132
	MLDv2Report uint8 = 143

	MLDv1Len                 = 24
	MLDv2QueryMinLen         = 28
	MLDv2ReportHeaderLen     = 8
	MLDv2AddressRecordMinLen = 20
)

// Well-known IPv6 groups.
var (
	// MLDv2Routers is ff02::16, where MLDv2 reports go.
	MLDv2Routers = netip.AddrFrom16([16]byte{0: 0xff, 1: 0x02, 15: 0x16})
	// IPv6AllRouters is ff02::2, where MLDv1 Done messages go.
	IPv6AllRouters = netip.AddrFrom16([16]byte{0: 0xff, 1: 0x02, 15: 0x02})
	// IPv6AllNodes is ff02::1, where general queries go.
	IPv6AllNodes = allNodes
)

// IPv6OptionRouterAlert is the Router Alert option type of a Hop-by-Hop
// Options header (RFC 2711); its value 0 means an MLD message.
const IPv6OptionRouterAlert uint8 = 5

// mldHopByHop is the Hop-by-Hop Options header of every MLD message, as
// Linux writes it: Router Alert (value 0: MLD) and a PadN to 8 bytes. The
// next header (ICMPv6) goes in byte 0.
var mldHopByHop = [8]byte{proto.IPProtoICMPv6, 0, IPv6OptionRouterAlert, 2, 0, 0, IPv6OptionPadN, 0}

// Type returns the ICMPv6 type.
func (b MLD) Type() uint8 { return b[0] }

// MaxRespCode returns the Maximum Response Code (MLDv2) or Maximum
// Response Delay in milliseconds (MLDv1).
func (b MLD) MaxRespCode() uint16 { return binary.BigEndian.Uint16(b[4:]) }

// MulticastAddress returns the group of a query or MLDv1 message.
func (b MLD) MulticastAddress() netip.Addr { return netip.AddrFrom16([16]byte(b[8:24])) }

// NumberOfAddressRecords returns the record count of an MLDv2 report.
func (b MLD) NumberOfAddressRecords() uint16 { return binary.BigEndian.Uint16(b[6:]) }

// AddressRecords returns the records area of an MLDv2 report; walk it
// with NextMLDv2AddressRecord.
func (b MLD) AddressRecords() []byte { return b[MLDv2ReportHeaderLen:] }

// MLDv2AddressRecord is one Multicast Address Record of an MLDv2 report:
// the layout of IGMPv3GroupRecord with 16-byte addresses.
type MLDv2AddressRecord []byte

// NextMLDv2AddressRecord splits the first record off a records area
// (MLD.AddressRecords). ok is false if rest is empty or the record does
// not fit in it.
func NextMLDv2AddressRecord(rest []byte) (rec MLDv2AddressRecord, next []byte, ok bool) {
	return nextGroupRecord[MLDv2AddressRecord](rest, 16)
}

// Type returns the record type (Record*).
func (r MLDv2AddressRecord) Type() uint8 { return r[0] }

// NumberOfSources returns the source count.
func (r MLDv2AddressRecord) NumberOfSources() int { return int(binary.BigEndian.Uint16(r[2:])) }

// MulticastAddress returns the group.
func (r MLDv2AddressRecord) MulticastAddress() netip.Addr {
	return netip.AddrFrom16([16]byte(r[4:20]))
}

// Source returns source address i.
func (r MLDv2AddressRecord) Source(i int) netip.Addr {
	return netip.AddrFrom16([16]byte(r[20+16*i : 36+16*i]))
}

// AuxData returns the auxiliary data.
func (r MLDv2AddressRecord) AuxData() []byte { return r[20+16*r.NumberOfSources():] }

// DecodeMLDMaxRespCode returns the milliseconds an MLDv2 Maximum Response
// Code stands for (RFC 3810 section 5.1.3): the code itself below 32768,
// else
//
//	 0 1 2 3 4 5 6 7 8 9 A B C D E F
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|1| exp |          mant         |   (mant | 0x1000) << (exp + 3)
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
func DecodeMLDMaxRespCode(code uint16) int {
	if code < 0x8000 {
		return int(code)
	}
	return int(code&0x0fff|0x1000) << (code>>12&7 + 3)
}

// ParseMLDQuery reads a Multicast Listener Query; b must be exactly the
// ICMPv6 message (the rest of the IPv6 payload). The version follows from
// the length (RFC 3810 section 8.1): 24 bytes is MLDv1, 28 or more MLDv2,
// anything else ErrQueryLength. It does not check the checksum (the
// caller does, with the pseudo-header) and does not allocate.
func ParseMLDQuery(b MLD) (MulticastQuery, error) {
	if len(b) < MLDv1Len || b.Type() != MLDQuery {
		return MulticastQuery{}, ErrNotQuery
	}
	q := MulticastQuery{Group: b.MulticastAddress(), alen: 16}
	switch {
	case len(b) == MLDv1Len:
		q.Version = 1
		q.MaxResponse = time.Duration(b.MaxRespCode()) * time.Millisecond
	case len(b) >= MLDv2QueryMinLen:
		q.Version = 2
		q.MaxResponse = time.Duration(DecodeMLDMaxRespCode(b.MaxRespCode())) * time.Millisecond
		q.SuppressRouterProcessing = b[24]&0x08 != 0
		q.QRV = b[24] & 0x07
		q.QQI = time.Duration(DecodeMaxRespCode(b[25])) * time.Second
		n := int(binary.BigEndian.Uint16(b[26:]))
		if MLDv2QueryMinLen+16*n > len(b) {
			return MulticastQuery{}, ErrQueryTruncated
		}
		q.sources = b[MLDv2QueryMinLen : MLDv2QueryMinLen+16*n]
	default:
		return MulticastQuery{}, ErrQueryLength
	}
	return q, nil
}

// MLDv2ReportLen returns the length of the MLDv2 report message (not the
// frame) for records, or -1 if they are invalid.
func MLDv2ReportLen(records []GroupRecord) int {
	n := groupRecordsLen(records, true)
	if n < 0 {
		return -1
	}
	return MLDv2ReportHeaderLen + n
}

// mldFrame writes the link, IPv6 and Hop-by-Hop headers of an MLD message
// of l4 bytes to dst, as RFC 3810 section 5 asks and Linux sends: hop
// limit 1, a Router Alert option; the destination MAC derived from dst
// unless s.DstMAC. s.Src should be link-local (or :: for a report before
// the interface has one, RFC 3810 5.2.13).
func mldFrame(buf []byte, s *IPSpec, dst netip.Addr, l4 int) (ip IPv6, off, n int, err error) {
	if !s.Src.Is6() || !dst.Is6() {
		return nil, 0, 0, ErrAddressFamily
	}
	if len(s.VLANs) > MaxVLANTags {
		return nil, 0, 0, ErrTooManyVLANs
	}
	l2 := linkLen(len(s.VLANs))
	off = l2 + IPv6HeaderLen + len(mldHopByHop)
	n = off + l4
	if len(buf) < n {
		return nil, 0, 0, ErrShortBuffer
	}
	mac := s.DstMAC
	if mac.IsZero() {
		mac = IPv6MulticastMAC(dst.As16())
	}
	putLink(buf, s.SrcMAC, mac, s.VLANs, proto.EtherTypeIPv6)
	ip = IPv6(buf[l2:n])
	putIPv6(ip, s.TOS, 0, uint16(len(mldHopByHop)+l4), 1, s.Src, dst)
	ip.SetNextHeader(proto.IPProtoHopByHop)
	copy(ip[IPv6HeaderLen:], mldHopByHop[:])
	return ip, off, n, nil
}

// BuildMLDv2Report writes an MLDv2 Multicast Listener Report (RFC 3810
// section 5.2, ICMPv6 type 143) with records into buf as a complete frame:
// to ff02::16 (or s.Dst, if valid), hop limit 1, a Hop-by-Hop header with
// Router Alert, the ICMPv6 checksum. It returns ErrGroupRecord for an
// invalid record.
func BuildMLDv2Report(buf []byte, s *IPSpec, records []GroupRecord) (int, error) {
	l4 := MLDv2ReportLen(records)
	if l4 < 0 {
		return 0, ErrGroupRecord
	}
	dst := s.Dst
	if !dst.IsValid() {
		dst = MLDv2Routers
	}
	ip, off, n, err := mldFrame(buf, s, dst, l4)
	if err != nil {
		return 0, err
	}
	m := ICMPv6(buf[off:n])
	m[0], m[1] = MLDv2Report, 0
	clear(m[2:6])
	binary.BigEndian.PutUint16(m[6:], uint16(len(records)))
	putGroupRecords(m[MLDv2ReportHeaderLen:], records)
	m.SetChecksum(m.CalculateChecksum(ip.PseudoHeaderSum(proto.IPProtoICMPv6, uint32(l4))))
	return n, nil
}

// buildMLDv1 writes a 24-byte MLDv1 message of type about group.
func buildMLDv1(buf []byte, s *IPSpec, typ uint8, group, dst netip.Addr) (int, error) {
	if !group.Is6() || group.Is4In6() || !group.IsMulticast() {
		return 0, ErrGroupRecord
	}
	if s.Dst.IsValid() {
		dst = s.Dst
	}
	ip, off, n, err := mldFrame(buf, s, dst, MLDv1Len)
	if err != nil {
		return 0, err
	}
	m := ICMPv6(buf[off:n])
	clear(m)
	m[0] = typ
	g := group.As16()
	copy(m[8:24], g[:])
	m.SetChecksum(m.CalculateChecksum(ip.PseudoHeaderSum(proto.IPProtoICMPv6, MLDv1Len)))
	return n, nil
}

// BuildMLDv1Report writes an MLDv1 Multicast Listener Report (RFC 2710,
// type 131) for group, sent to the group, with the headers of
// BuildMLDv2Report.
func BuildMLDv1Report(buf []byte, s *IPSpec, group netip.Addr) (int, error) {
	return buildMLDv1(buf, s, MLDv1Report, group, group)
}

// BuildMLDv1Done writes an MLDv1 Multicast Listener Done (type 132) for
// group, sent to all routers (ff02::2).
func BuildMLDv1Done(buf []byte, s *IPSpec, group netip.Addr) (int, error) {
	return buildMLDv1(buf, s, MLDv1Done, group, IPv6AllRouters)
}
