package bench

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/pktengine/pktengine/frame"
	"github.com/pktengine/pktengine/loadgen"
	"github.com/pktengine/pktengine/proto"
)

// The DNS generator's frames, and how a reply is told to belong to one
// query.
//
// A DNS reply echoes the query's ID and question and goes back to its
// source port, and nothing else of the query: there is no room for the
// echo generator's payload signature. So query number seq of a run goes
// out from source port
//
//	dnsSrcPort + (tag mod dnsTags)·dnsPorts + seq mod dnsPorts
//
// with DNS ID (seq / dnsPorts) mod 2^16. A reply's port says which run it
// belongs to (the run's tag; an earlier run's reply is stale) and, with
// its ID, the low bits of seq, seq mod dnsSeqWindow: the most recent
// query sent with those bits is the one answered, as long as fewer than
// dnsSeqWindow (a million) queries go out while one waits for its reply.
// Its question must come back octet for octet, with the RCODE the zone
// gives it.
const (
	dnsSrcPort   = loadgen.DefaultSrcPort
	dnsPorts     = 16 // flows: source ports of one run
	dnsTags      = 64 // runs told apart by their ports
	dnsSeqWindow = dnsPorts << 16
	// dnsSnapLen is how much of a reply the receive ring keeps: headers
	// (at most 14 + 40 + 8), the DNS header and the question.
	dnsSnapLen = 256
)

// dnsPort returns the source port of query seq in the run with tag.
func dnsPort(tag uint16, seq uint64) uint16 {
	return dnsSrcPort + (tag%dnsTags)*dnsPorts + uint16(seq%dnsPorts)
}

// dnsPortRange returns the lowest and highest source port the generator
// uses.
func dnsPortRange() (lo, hi uint16) { return dnsSrcPort, dnsSrcPort + dnsTags*dnsPorts - 1 }

// dnsLowSeq returns the low bits of the sequence number of the query
// that went out from port with ID id, and whether port belongs to the run
// with tag.
func dnsLowSeq(tag, port, id uint16) (low uint64, ok bool) {
	lo, hi := dnsPortRange()
	if port < lo || port > hi {
		return 0, false
	}
	p := port - dnsSrcPort
	if p/dnsPorts != tag%dnsTags {
		return 0, false
	}
	return uint64(id)*dnsPorts + uint64(p%dnsPorts), true
}

// dnsFullSeq returns the sequence number, below next (the count of
// queries sent so far), whose low bits are low: the most recent query
// with that port and ID. It fails if no such query has been sent.
func dnsFullSeq(low, next uint64) (uint64, bool) {
	if next == 0 || low >= dnsSeqWindow {
		return 0, false
	}
	last := next - 1
	back := (last - low) % dnsSeqWindow // unsigned: wraps as it should
	if back > last {
		return 0, false
	}
	return last - back, true
}

// dnsTemplates are the frames of the benchmark's queries, built once:
// each with source port dnsSrcPort and ID 0, and its UDP checksum for
// those. Writing query seq copies its frame and patches port, ID and
// checksum (RFC 1624).
type dnsTemplates struct {
	frames  [][]byte
	rcodes  []uint8
	udpOff  int // the UDP header in every frame
	meanLen float64
}

// newDNSTemplates builds the frames of qs from src to dst.
func newDNSTemplates(qs []dnsQuery, srcMAC, dstMAC frame.MAC, src netip.Addr, dst netip.AddrPort) (*dnsTemplates, error) {
	if len(qs) == 0 {
		return nil, fmt.Errorf("bench: no DNS queries")
	}
	t := &dnsTemplates{}
	total := 0
	for _, q := range qs {
		msg, err := q.wire()
		if err != nil {
			return nil, err
		}
		spec := &frame.UDPSpec{SrcMAC: srcMAC, DstMAC: dstMAC, Src: netip.AddrPortFrom(src, dnsSrcPort), Dst: dst, Payload: msg}
		b := make([]byte, frame.UDPFrameLen(spec))
		n, err := frame.BuildUDP(b, spec)
		if err != nil {
			return nil, err
		}
		// Frames shorter than Ethernet's minimum are padded on the
		// wire; the padding is not part of the datagram.
		b = b[:frame.PadEthernet(b, n)]
		t.frames = append(t.frames, b)
		t.rcodes = append(t.rcodes, q.Rcode)
		total += len(b) + loadgen.FCSLen
		t.udpOff = n - len(msg) - frame.UDPHeaderLen
	}
	t.meanLen = float64(total) / float64(len(qs))
	return t, nil
}

// maxLen returns the longest frame.
func (t *dnsTemplates) maxLen() int {
	n := 0
	for _, f := range t.frames {
		n = max(n, len(f))
	}
	return n
}

// write writes the frame of query seq of the run with tag into buf and
// returns its length.
func (t *dnsTemplates) write(buf []byte, seq uint64, tag uint16) int {
	f := t.frames[seq%uint64(len(t.frames))]
	n := copy(buf, f)
	u := buf[t.udpOff:]
	port, id := dnsPort(tag, seq), uint16(seq/dnsPorts)
	binary.BigEndian.PutUint16(u[0:], port)
	binary.BigEndian.PutUint16(u[frame.UDPHeaderLen:], id)
	sum := binary.BigEndian.Uint16(f[t.udpOff+6:])
	sum = proto.UpdateUDP16(sum, dnsSrcPort, port)
	sum = proto.UpdateUDP16(sum, 0, id)
	binary.BigEndian.PutUint16(u[6:], sum)
	return n
}

// dnsReplyParts returns a reply frame's destination port and DNS message
// (as much of it as the frame holds). The receive filter has passed only
// UDP over IPv4 or IPv6 without extension headers.
func dnsReplyParts(b []byte) (port uint16, msg []byte, ok bool) {
	if len(b) < frame.EthernetHeaderLen+frame.IPv4MinHeaderLen {
		return 0, nil, false
	}
	off := frame.EthernetHeaderLen
	switch binary.BigEndian.Uint16(b[12:]) {
	case proto.EtherTypeIPv4:
		off += int(b[off]&0xf) * 4
	case proto.EtherTypeIPv6:
		off += frame.IPv6HeaderLen
	default:
		return 0, nil, false
	}
	if len(b) < off+frame.UDPHeaderLen+dnsHeaderLen {
		return 0, nil, false
	}
	return binary.BigEndian.Uint16(b[off+2:]), b[off+frame.UDPHeaderLen:], true
}

// check reports whether msg answers query q: QR set, opcode QUERY, the
// RCODE the zone gives, and q's question octet for octet.
func (t *dnsTemplates) check(msg []byte, q int) bool {
	f := t.frames[q]
	query := f[t.udpOff+frame.UDPHeaderLen:]
	query = query[:binary.BigEndian.Uint16(f[t.udpOff+4:])-frame.UDPHeaderLen]
	if len(msg) < len(query) {
		return false
	}
	flags := binary.BigEndian.Uint16(msg[2:])
	const qr, opcode, rcode = 0x8000, 0x7800, 0x000f
	return flags&qr != 0 && flags&opcode == 0 && uint8(flags&rcode) == t.rcodes[q] &&
		binary.BigEndian.Uint16(msg[4:]) == 1 &&
		bytes.Equal(msg[dnsHeaderLen:len(query)], query[dnsHeaderLen:])
}
