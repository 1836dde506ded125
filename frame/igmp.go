package frame

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"time"

	"github.com/pktengine/pktengine/proto"
)

// IGMP is an IGMP message (RFC 1112, RFC 2236, RFC 3376) in place, bounded
// by the IP payload: its length tells the versions of a query apart (RFC
// 3376 section 7.1). All versions share the first 8 bytes:
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|     Type      | Max Resp Code |           Checksum            |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                         Group Address                         |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// An IGMPv3 query (RFC 3376 section 4.1) continues:
//
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| Resv  |S| QRV |     QQIC      |     Number of Sources (N)     |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                       Source Address [1..N]                   |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// An IGMPv3 report (section 4.2) has, in place of Max Resp Code and Group
// Address, a reserved byte, 16 reserved bits and the Number of Group
// Records, then the records (see IGMPv3GroupRecord).
type IGMP []byte

// IGMP message types and sizes.
const (
	IGMPMembershipQuery    uint8 = 0x11
	IGMPv1MembershipReport uint8 = 0x12
	IGMPv2MembershipReport uint8 = 0x16
	IGMPv2LeaveGroup       uint8 = 0x17
	IGMPv3MembershipReport uint8 = 0x22

	IGMPHeaderLen           = 8
	IGMPv3QueryMinLen       = 12
	IGMPv3GroupRecordMinLen = 8
)

// Group record types of IGMPv3 and MLDv2 reports (RFC 3376 section
// 4.2.12, RFC 3810 section 5.2.12).
const (
	RecordModeIsInclude   uint8 = 1
	RecordModeIsExclude   uint8 = 2
	RecordChangeToInclude uint8 = 3
	RecordChangeToExclude uint8 = 4
	RecordAllowNewSources uint8 = 5
	RecordBlockOldSources uint8 = 6
)

// Well-known groups.
var (
	// IGMPv3Routers is 224.0.0.22, where IGMPv3 reports go.
	IGMPv3Routers = netip.AddrFrom4([4]byte{224, 0, 0, 22})
	// IPv4AllRouters is 224.0.0.2, where IGMPv2 Leave Group messages go.
	IPv4AllRouters = netip.AddrFrom4([4]byte{224, 0, 0, 2})
	// IPv4AllSystems is 224.0.0.1, where general queries go.
	IPv4AllSystems = netip.AddrFrom4([4]byte{224, 0, 0, 1})
)

// IPv4RouterAlert is the IPv4 Router Alert option (RFC 2113) every IGMP
// message carries: type 148, length 4, value 0 ("every router examines
// the packet").
var IPv4RouterAlert = [4]byte{IPv4OptionRouterAlert, 4, 0, 0}

// IGMPTOS is the TOS of IGMP messages: IP precedence Internetwork Control
// (RFC 3376 section 4), as Linux sends them.
const IGMPTOS = 0xc0

// Type returns the message type.
func (b IGMP) Type() uint8 { return b[0] }

// MaxRespCode returns the Max Resp Code (Max Resp Time in v2, unused in
// v1 and in reports).
func (b IGMP) MaxRespCode() uint8 { return b[1] }

// Checksum returns the checksum field.
func (b IGMP) Checksum() uint16 { return binary.BigEndian.Uint16(b[2:]) }

// GroupAddress returns the group of a query, v1/v2 report or leave.
func (b IGMP) GroupAddress() netip.Addr { return netip.AddrFrom4([4]byte(b[4:8])) }

// CalculateChecksum returns the checksum of the whole message with the
// checksum field taken as zero.
func (b IGMP) CalculateChecksum() uint16 {
	return ^proto.Checksum(b[4:], proto.Checksum(b[:2], 0))
}

// IsChecksumValid reports whether the checksum is right.
func (b IGMP) IsChecksumValid() bool { return proto.Checksum(b, 0) == 0xffff }

// NumberOfGroupRecords returns the record count of an IGMPv3 report.
func (b IGMP) NumberOfGroupRecords() uint16 { return binary.BigEndian.Uint16(b[6:]) }

// GroupRecords returns the records area of an IGMPv3 report; walk it with
// NextIGMPv3GroupRecord.
func (b IGMP) GroupRecords() []byte { return b[IGMPHeaderLen:] }

// IGMPv3GroupRecord is one group record of an IGMPv3 report:
//
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  Record Type  |  Aux Data Len |     Number of Sources (N)     |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                       Multicast Address                       |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                       Source Address [1..N]                   |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                 Auxiliary Data (Aux Data Len words)           |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
type IGMPv3GroupRecord []byte

// NextIGMPv3GroupRecord splits the first group record off a records area
// (IGMP.GroupRecords). ok is false if rest is empty or the record does not
// fit in it.
func NextIGMPv3GroupRecord(rest []byte) (rec IGMPv3GroupRecord, next []byte, ok bool) {
	return nextGroupRecord[IGMPv3GroupRecord](rest, 4)
}

// nextGroupRecord splits off a group record whose addresses are alen
// bytes long.
func nextGroupRecord[R ~[]byte](rest []byte, alen int) (R, []byte, bool) {
	if len(rest) < 4+alen {
		return nil, nil, false
	}
	n := 4 + alen + alen*int(binary.BigEndian.Uint16(rest[2:])) + 4*int(rest[1])
	if n > len(rest) {
		return nil, nil, false
	}
	return R(rest[:n]), rest[n:], true
}

// Type returns the record type (Record*).
func (r IGMPv3GroupRecord) Type() uint8 { return r[0] }

// NumberOfSources returns the source count.
func (r IGMPv3GroupRecord) NumberOfSources() int { return int(binary.BigEndian.Uint16(r[2:])) }

// MulticastAddress returns the group.
func (r IGMPv3GroupRecord) MulticastAddress() netip.Addr { return netip.AddrFrom4([4]byte(r[4:8])) }

// Source returns source address i.
func (r IGMPv3GroupRecord) Source(i int) netip.Addr {
	return netip.AddrFrom4([4]byte(r[8+4*i : 12+4*i]))
}

// AuxData returns the auxiliary data.
func (r IGMPv3GroupRecord) AuxData() []byte { return r[8+4*r.NumberOfSources():] }

// MulticastQuery is an IGMP or MLD query as a host reads it.
type MulticastQuery struct {
	// Version is 1, 2 or 3 for IGMP, 1 or 2 for MLD.
	Version int
	// Group is the group of a group-specific (or group-and-source-
	// specific) query; the unspecified address (0.0.0.0, ::) for a
	// general query.
	Group netip.Addr
	// MaxResponse is the longest a host may wait before reporting:
	// decoded from the Max Resp Code (IGMPv3: RFC 3376 4.1.1; MLDv2: RFC
	// 3810 5.1.3); 10 s for an IGMPv1 query, whose field is zero (RFC
	// 2236 section 4).
	MaxResponse time.Duration
	// SuppressRouterProcessing is the S flag (v3, MLDv2).
	SuppressRouterProcessing bool
	// QRV is the Querier's Robustness Variable and QQI the Querier's
	// Query Interval (from QQIC) of a v3 or MLDv2 query; 0 when absent.
	QRV uint8
	QQI time.Duration
	// sources holds the source addresses of a source-specific query.
	sources []byte
	alen    int
}

// NumberOfSources returns how many sources the query lists.
func (q *MulticastQuery) NumberOfSources() int {
	if q.alen == 0 {
		return 0
	}
	return len(q.sources) / q.alen
}

// Source returns source i (0 ≤ i < NumberOfSources) of the query.
func (q *MulticastQuery) Source(i int) netip.Addr {
	if q.alen == 4 {
		return netip.AddrFrom4([4]byte(q.sources[4*i : 4*i+4]))
	}
	return netip.AddrFrom16([16]byte(q.sources[16*i : 16*i+16]))
}

// Errors of the query parsers.
var (
	ErrNotQuery       = errors.New("frame: not a membership query")
	ErrQueryLength    = errors.New("frame: query of a length no version has (RFC 3376 7.1, RFC 3810 8.1): ignored")
	ErrQueryTruncated = errors.New("frame: query lists more sources than it holds")
	ErrGroupRecord    = errors.New("frame: invalid group record (type, group or source family, counts, aux data)")
)

// DecodeMaxRespCode returns the time an IGMPv3 Max Resp Code or QQIC
// stands for, in its units (tenths of a second, seconds): the code itself
// below 128, else the floating-point form of RFC 3376 section 4.1.1:
//
//	 0 1 2 3 4 5 6 7
//	+-+-+-+-+-+-+-+-+
//	|1| exp | mant  |   (mant | 0x10) << (exp + 3)
//	+-+-+-+-+-+-+-+-+
func DecodeMaxRespCode(code uint8) int {
	if code < 128 {
		return int(code)
	}
	return int(code&0x0f|0x10) << (code>>4&7 + 3)
}

// ParseIGMPQuery reads a membership query; b must be exactly the IGMP
// message (the IP payload). The version follows from the length and the
// Max Resp Code, as RFC 3376 section 7.1 says: 8 bytes with code 0 is
// IGMPv1, 8 bytes otherwise IGMPv2, 12 or more IGMPv3; any other length is
// ErrQueryLength (to be ignored). It does not check the checksum and does
// not allocate.
func ParseIGMPQuery(b IGMP) (MulticastQuery, error) {
	if len(b) < IGMPHeaderLen || b.Type() != IGMPMembershipQuery {
		return MulticastQuery{}, ErrNotQuery
	}
	q := MulticastQuery{Group: b.GroupAddress(), alen: 4}
	switch {
	case len(b) == IGMPHeaderLen && b.MaxRespCode() == 0:
		q.Version = 1
		q.MaxResponse = 10 * time.Second
	case len(b) == IGMPHeaderLen:
		q.Version = 2
		q.MaxResponse = time.Duration(b.MaxRespCode()) * 100 * time.Millisecond
	case len(b) >= IGMPv3QueryMinLen:
		q.Version = 3
		q.MaxResponse = time.Duration(DecodeMaxRespCode(b.MaxRespCode())) * 100 * time.Millisecond
		q.SuppressRouterProcessing = b[8]&0x08 != 0
		q.QRV = b[8] & 0x07
		q.QQI = time.Duration(DecodeMaxRespCode(b[9])) * time.Second
		n := int(binary.BigEndian.Uint16(b[10:]))
		if IGMPv3QueryMinLen+4*n > len(b) {
			return MulticastQuery{}, ErrQueryTruncated
		}
		q.sources = b[IGMPv3QueryMinLen : IGMPv3QueryMinLen+4*n]
	default:
		return MulticastQuery{}, ErrQueryLength
	}
	return q, nil
}

// IGMP returns the IGMP message of a decoded IPv4 packet whose Protocol is
// proto.IPProtoIGMP (Decode calls it ReasonOtherIPProtocol), bounded by
// the IP payload.
func (p *Packet) IGMP(frame []byte) IGMP { return IGMP(frame[p.L4Off:p.L4End]) }

// GroupRecord is a group record for BuildIGMPv3Report (IPv4 addresses) or
// BuildMLDv2Report (IPv6 addresses).
type GroupRecord struct {
	Type    uint8 // Record*
	Group   netip.Addr
	Sources []netip.Addr
	// AuxData is appended to the record; a multiple of 4 bytes, at most
	// 1020 (RFC 3376 and 3810 define none; receivers skip it).
	AuxData []byte
}

// groupRecordsLen returns the size of the records with alen-byte
// addresses, or -1 if one is invalid: a type other than 1 to 6, a group
// that is not a multicast address of the family, a source of another
// family, too many sources, aux data not in whole words.
func groupRecordsLen(records []GroupRecord, v6 bool) int {
	if len(records) > 0xffff {
		return -1
	}
	alen := 4
	if v6 {
		alen = 16
	}
	n := 0
	for _, r := range records {
		if r.Type < RecordModeIsInclude || r.Type > RecordBlockOldSources || !r.Group.IsMulticast() ||
			r.Group.Is4() == v6 || r.Group.Is4In6() || len(r.Sources) > 0xffff || len(r.AuxData)%4 != 0 || len(r.AuxData) > 255*4 {
			return -1
		}
		for _, s := range r.Sources {
			if s.Is4() == v6 || s.Is4In6() {
				return -1
			}
		}
		n += 4 + alen + alen*len(r.Sources) + len(r.AuxData)
	}
	return n
}

// putGroupRecords writes records into b.
func putGroupRecords(b []byte, records []GroupRecord) {
	for _, r := range records {
		b[0], b[1] = r.Type, uint8(len(r.AuxData)/4)
		binary.BigEndian.PutUint16(b[2:], uint16(len(r.Sources)))
		off := 4
		off += putAddr(b[off:], r.Group)
		for _, s := range r.Sources {
			off += putAddr(b[off:], s)
		}
		off += copy(b[off:], r.AuxData)
		b = b[off:]
	}
}

// putAddr writes a's 4 or 16 bytes into b and returns how many.
func putAddr(b []byte, a netip.Addr) int {
	if a.Is4() {
		a4 := a.As4()
		return copy(b, a4[:])
	}
	a16 := a.As16()
	return copy(b, a16[:])
}

// IGMPv3ReportLen returns the length of the IGMPv3 report message (not the
// frame) for records, or -1 if they are invalid.
func IGMPv3ReportLen(records []GroupRecord) int {
	n := groupRecordsLen(records, false)
	if n < 0 {
		return -1
	}
	return IGMPHeaderLen + n
}

// igmpFrame writes the link and IPv4 header of an IGMP message of l4
// bytes to dst, as Linux sends one: TTL 1, TOS 0xc0 (unless s.TOS), DF,
// Router Alert; the destination MAC derived from dst unless s.DstMAC.
func igmpFrame(buf []byte, s *IPSpec, dst netip.Addr, l4 int) (l2, n int, err error) {
	if !s.Src.Is4() || !dst.Is4() {
		return 0, 0, ErrAddressFamily
	}
	if len(s.VLANs) > MaxVLANTags {
		return 0, 0, ErrTooManyVLANs
	}
	l2 = linkLen(len(s.VLANs))
	l3 := IPv4MinHeaderLen + len(IPv4RouterAlert)
	n = l2 + l3 + l4
	if len(buf) < n {
		return 0, 0, ErrShortBuffer
	}
	mac := s.DstMAC
	if mac.IsZero() {
		mac = IPv4MulticastMAC(dst.As4())
	}
	tos := s.TOS
	if tos == 0 {
		tos = IGMPTOS
	}
	putLink(buf, s.SrcMAC, mac, s.VLANs, proto.EtherTypeIPv4)
	putIPv4(buf[l2:], tos, uint16(l3+l4), s.ID, IPv4FlagDontFragment, 0, 1, proto.IPProtoIGMP,
		s.Src, dst, IPv4RouterAlert[:])
	return l2 + l3, n, nil
}

// BuildIGMPv3Report writes an IGMPv3 Membership Report (RFC 3376 section
// 4.2) with records into buf as a complete frame: to 224.0.0.22 (or
// s.Dst, if valid), TTL 1, TOS 0xc0, DF, the Router Alert option, the IGMP
// checksum. s.Src may be 0.0.0.0 before the interface has an address
// (RFC 3376 section 4.2.13). It returns ErrGroupRecord for an invalid
// record; a report that does not fit the MTU is the caller's to split.
func BuildIGMPv3Report(buf []byte, s *IPSpec, records []GroupRecord) (int, error) {
	l4 := IGMPv3ReportLen(records)
	if l4 < 0 {
		return 0, ErrGroupRecord
	}
	dst := s.Dst
	if !dst.IsValid() {
		dst = IGMPv3Routers
	}
	off, n, err := igmpFrame(buf, s, dst, l4)
	if err != nil {
		return 0, err
	}
	m := IGMP(buf[off:n])
	m[0], m[1] = IGMPv3MembershipReport, 0
	clear(m[2:6])
	binary.BigEndian.PutUint16(m[6:], uint16(len(records)))
	putGroupRecords(m[IGMPHeaderLen:], records)
	binary.BigEndian.PutUint16(m[2:], m.CalculateChecksum())
	return n, nil
}

// buildIGMPSimple writes an 8-byte IGMP message of type about group.
func buildIGMPSimple(buf []byte, s *IPSpec, typ uint8, group, dst netip.Addr) (int, error) {
	if !group.Is4() || !group.IsMulticast() {
		return 0, ErrGroupRecord
	}
	if s.Dst.IsValid() {
		dst = s.Dst
	}
	off, n, err := igmpFrame(buf, s, dst, IGMPHeaderLen)
	if err != nil {
		return 0, err
	}
	m := IGMP(buf[off:n])
	m[0], m[1], m[2], m[3] = typ, 0, 0, 0
	a := group.As4()
	copy(m[4:8], a[:])
	binary.BigEndian.PutUint16(m[2:], m.CalculateChecksum())
	return n, nil
}

// BuildIGMPv2Report writes an IGMPv2 Membership Report (RFC 2236) for
// group, sent to the group itself, with the IP header of
// BuildIGMPv3Report.
func BuildIGMPv2Report(buf []byte, s *IPSpec, group netip.Addr) (int, error) {
	return buildIGMPSimple(buf, s, IGMPv2MembershipReport, group, group)
}

// BuildIGMPv2Leave writes an IGMPv2 Leave Group message for group, sent
// to all routers (224.0.0.2).
func BuildIGMPv2Leave(buf []byte, s *IPSpec, group netip.Addr) (int, error) {
	return buildIGMPSimple(buf, s, IGMPv2LeaveGroup, group, IPv4AllRouters)
}

// BuildIGMPv1Report writes an IGMPv1 Membership Report (RFC 1112), sent
// to the group, what a host answers while an IGMPv1 querier is present.
func BuildIGMPv1Report(buf []byte, s *IPSpec, group netip.Addr) (int, error) {
	return buildIGMPSimple(buf, s, IGMPv1MembershipReport, group, group)
}

// IPv4MulticastMAC returns the Ethernet address an IPv4 group maps to (RFC
// 1112 section 6.4): 01:00:5e and the low 23 bits of the group.
func IPv4MulticastMAC(group [4]byte) MAC {
	return MAC{0x01, 0x00, 0x5e, group[1] & 0x7f, group[2], group[3]}
}
