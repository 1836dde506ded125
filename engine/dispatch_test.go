package engine

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/pktengine/pktengine/frame"
	"github.com/pktengine/pktengine/proto"
	"github.com/pktengine/pktengine/ring"
)

// Status bits of tp_status, for fake metadata.
const (
	tpStatusCopy         = 1 << 1
	tpStatusCsumNotReady = 1 << 3
	tpStatusVLANValid    = 1 << 4
	tpStatusCsumValid    = 1 << 7
)

func TestOutcomeNames(t *testing.T) {
	seen := map[string]Outcome{}
	for o := range NumOutcomes {
		name := o.String()
		if name == "" {
			t.Errorf("outcome %d has no name", o)
		}
		if prev, dup := seen[name]; dup {
			t.Errorf("outcomes %d and %d are both %q", prev, o, name)
		}
		seen[name] = o
		if back, ok := ParseOutcome(name); !ok || back != o {
			t.Errorf("ParseOutcome(%q) = %d, %v", name, back, ok)
		}
	}
}

// TestDispatchOutcomes feeds one frame of every kind through the worker
// and checks that it ends in the expected outcome, in exactly one, and
// that the snapshot's invariant holds after each.
func TestDispatchOutcomes(t *testing.T) {
	r := newRig(t, nil)
	if _, err := r.e.Bind(ap(owned4, 5000)); err != nil {
		t.Fatal(err)
	}
	if _, err := r.e.Bind(ap(netip.Addr{}, 5001)); err != nil {
		t.Fatal(err)
	}
	if _, err := r.e.HandleService(ap(netip.Addr{}, 7), Echo); err != nil {
		t.Fatal(err)
	}
	full, err := r.e.Bind(ap(owned6, 5002))
	if err != nil {
		t.Fatal(err)
	}
	// A group joined on the interface (by port 5002: any port's join
	// serves every port), and one nobody joined.
	mdns, unjoined := netip.MustParseAddr("ff02::fb"), netip.MustParseAddr("ff02::fc")
	if err := full.JoinGroup(mdns); err != nil {
		t.Fatal(err)
	}
	// Fill port 5002's queue.
	for range full.q.Cap() {
		r.one(udpFrame(t, ap(peer6, 40000), ap(owned6, 5002), []byte("x")), ring.Meta{})
	}

	payload := []byte("TEST")
	good4 := udpFrame(t, ap(peer4, 40000), ap(owned4, 5000), payload)
	badIPsum := clone(good4)
	badIPsum[14+10] ^= 0xff
	badUDPsum := clone(good4)
	badUDPsum[14+20+6] ^= 0x01
	zero6 := udpFrame(t, ap(peer6, 40000), ap(owned6, 5001), payload)
	binary.BigEndian.PutUint16(zero6[14+40+6:], 0)
	longUDP := clone(good4)
	binary.BigEndian.PutUint16(longUDP[14+20+4:], 100) // UDP length past the IP payload
	shortUDP := clone(good4)
	binary.BigEndian.PutUint16(shortUDP[14+20+4:], 4)
	frag := udpFragment(t, ap(peer4, 40000), ap(owned4, 5000), 0, 16)
	nonFirst := udpFragment(t, ap(peer4, 40000), ap(owned4, 5000), 16, 16)
	tcp := clone(good4)
	tcp[14+9] = proto.IPProtoTCP
	fixIPv4Checksum(tcp[14:34])

	cases := []struct {
		name string
		f    []byte
		m    ring.Meta
		want Outcome
	}{
		{"exact bound", good4, ring.Meta{}, OutcomeDelivered},
		{"wildcard bound v6", udpFrame(t, ap(peer6, 40000), ap(owned6, 5001), payload), ring.Meta{}, OutcomeDelivered},
		{"wildcard bound on shared", udpFrame(t, ap(peer4, 40000), ap(shared4, 5001), payload), ring.Meta{}, OutcomeDelivered},
		{"inline echo", udpFrame(t, ap(peer4, 40000), ap(owned4, 7), payload), ring.Meta{}, OutcomeDelivered},
		{"queue full", udpFrame(t, ap(peer6, 40000), ap(owned6, 5002), payload), ring.Meta{}, OutcomeQueueFull},
		{"unbound owned", udpFrame(t, ap(peer4, 40000), ap(owned4, 6000), payload), ring.Meta{}, OutcomeNoPort},
		{"unbound owned v6", udpFrame(t, ap(peer6, 40000), ap(owned6, 6000), payload), ring.Meta{}, OutcomeNoPort},
		{"unbound shared", udpFrame(t, ap(peer4, 40000), ap(shared4, 6000), payload), ring.Meta{}, OutcomeKernel},
		{"exact binding elsewhere", udpFrame(t, ap(peer4, 40000), ap(shared4, 5000), payload), ring.Meta{}, OutcomeKernel},
		{"broadcast no port", udpFrame(t, ap(peer4, 40000), ap(bcast4, 6000), payload), ring.Meta{Type: ring.PacketBroadcast}, OutcomeNoPortMulti},
		{"broadcast wildcard", udpFrame(t, ap(peer4, 40000), ap(bcast4, 5001), payload), ring.Meta{Type: ring.PacketBroadcast}, OutcomeDelivered},
		{"multicast no port", udpFrame(t, ap(peer6, 40000), ap(mdns, 5353), payload), ring.Meta{Type: ring.PacketMulticast}, OutcomeNoPortMulti},
		{"multicast wildcard", udpFrame(t, ap(peer6, 40000), ap(mdns, 5001), payload), ring.Meta{Type: ring.PacketMulticast}, OutcomeDelivered},
		{"multicast not joined", udpFrame(t, ap(peer6, 40000), ap(unjoined, 5001), payload), ring.Meta{Type: ring.PacketMulticast}, OutcomeOtherHost},
		{"other VLAN", good4, ring.Meta{Status: tpStatusVLANValid, VLANTCI: 10}, OutcomeOtherVLAN},
		{"other VLAN, cut by the filter", good4[:64], ring.Meta{Status: tpStatusVLANValid, VLANTCI: 10, Length: len(good4)}, OutcomeOtherVLAN},
		{"priority-tagged", good4, ring.Meta{Status: tpStatusVLANValid, VLANTCI: frame.MakeTCI(5, false, 0)}, OutcomeDelivered},
		{"other IP", udpFrame(t, ap(peer4, 40000), ap(netip.MustParseAddr("198.18.0.99"), 5000), payload), ring.Meta{}, OutcomeOtherHost},
		{"other MAC", good4, ring.Meta{Type: ring.PacketOtherHost}, OutcomeOtherHost},
		{"outgoing", good4, ring.Meta{Type: ring.PacketOutgoing}, OutcomeOtherHost},
		{"truncated by ring", good4, ring.Meta{Status: tpStatusCopy}, OutcomeTruncated},
		{"cut by snap length", good4[:30], ring.Meta{Length: len(good4)}, OutcomeTruncated},
		{"bad IPv4 header checksum", badIPsum, ring.Meta{}, Outcome(frame.ReasonIPv4BadHeaderChecksum)},
		{"bad UDP checksum", badUDPsum, ring.Meta{}, Outcome(frame.ReasonUDPBadChecksum)},
		{"bad UDP checksum, device verified", badUDPsum, ring.Meta{Status: tpStatusCsumValid}, OutcomeDelivered},
		{"partial UDP checksum", badUDPsum, ring.Meta{Status: tpStatusCsumNotReady}, OutcomeDelivered},
		{"IPv6 zero checksum", zero6, ring.Meta{}, Outcome(frame.ReasonUDPZeroChecksumIPv6)},
		{"IPv6 zero checksum, partial", zero6, ring.Meta{Status: tpStatusCsumNotReady}, Outcome(frame.ReasonUDPZeroChecksumIPv6)},
		{"UDP length past IP", longUDP, ring.Meta{}, Outcome(frame.ReasonUDPLengthPastEnd)},
		{"UDP length too short", shortUDP, ring.Meta{}, Outcome(frame.ReasonUDPLengthTooShort)},
		{"first fragment", frag, ring.Meta{}, OutcomeFragmentHeld},
		{"non-first fragment", nonFirst, ring.Meta{}, OutcomeFragmentHeld},
		{"TCP", tcp, ring.Meta{}, Outcome(frame.ReasonTCP)},
		{"runt", good4[:10], ring.Meta{}, Outcome(frame.ReasonTruncatedEthernet)},
		{"ARP request owned", arpRequest(t, peer4, owned4), ring.Meta{Type: ring.PacketBroadcast}, Outcome(frame.ReasonARP)},
		{"NS owned", neighborSolicitation(t, peer6, owned6), ring.Meta{Type: ring.PacketMulticast}, Outcome(frame.ReasonICMPv6)},
	}
	for _, tc := range cases {
		before := r.e.Counters()
		got := r.one(tc.f, tc.m)
		if got != tc.want {
			t.Errorf("%s: outcome %v, want %v", tc.name, got, tc.want)
		}
		r.checkOneFrameCounted(t, tc.name, before)
	}
	c := r.e.Counters()
	if c.UDP.InCsumErrors != 1 || c.UDP.NoPorts != 2 || c.UDP.IgnoredMulti != 2 || c.UDP.RcvbufErrors != 1 {
		t.Errorf("Udp counters %+v", c.UDP)
	}
	// Bad checksum, zero IPv6 checksum twice, two bad lengths, one full queue.
	if c.UDP.InErrors != 6 {
		t.Errorf("InErrors = %d, want 6", c.UDP.InErrors)
	}
	if c.ICMPSent != 2 || c.ARPAnswered != 1 || c.NDPAnswered != 1 {
		t.Errorf("ICMPSent %d, ARPAnswered %d, NDPAnswered %d; want 2, 1, 1", c.ICMPSent, c.ARPAnswered, c.NDPAnswered)
	}
	if c.UDP.OutDatagrams != 1 {
		t.Errorf("OutDatagrams = %d, want 1 (the echo)", c.UDP.OutDatagrams)
	}
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }

func fixIPv4Checksum(h []byte) {
	h[10], h[11] = 0, 0
	binary.BigEndian.PutUint16(h[10:], ^refSum(h))
}

func udpFragment(tb testing.TB, src, dst netip.AddrPort, off, n int) []byte {
	tb.Helper()
	s := &frame.UDPSpec{SrcMAC: macPeer, DstMAC: macEngine, Src: src, Dst: dst, Payload: make([]byte, 64), ID: 9}
	buf := make([]byte, 2048)
	m, err := frame.BuildUDPFragment(buf, s, frame.Fragment{Offset: off, Length: n})
	if err != nil {
		tb.Fatal(err)
	}
	return buf[:m]
}

func arpRequest(tb testing.TB, sender, target netip.Addr) []byte {
	tb.Helper()
	buf := make([]byte, 64)
	n, err := frame.BuildARP(buf, &frame.ARPSpec{Op: frame.ARPRequest, SenderMAC: macPeer, SenderIP: sender, TargetIP: target})
	if err != nil {
		tb.Fatal(err)
	}
	return buf[:frame.PadEthernet(buf, n)]
}

func neighborSolicitation(tb testing.TB, src, target netip.Addr) []byte {
	tb.Helper()
	buf := make([]byte, 128)
	n, err := buildNeighborSolicitation(buf, macPeer, src, target)
	if err != nil {
		tb.Fatal(err)
	}
	return buf[:n]
}
