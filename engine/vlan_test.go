package engine

import (
	"net/netip"
	"testing"

	"github.com/pktengine/pktengine/frame"
	"github.com/pktengine/pktengine/ring"
)

// inFrameTag inserts tag into f: a frame as a backend that leaves tags in
// place (AF_XDP) hands it over.
func inFrameTag(t *testing.T, f []byte, tci uint16) []byte {
	t.Helper()
	buf := append(clone(f), 0, 0, 0, 0)
	n, err := frame.InsertVLANTag(buf, len(f), frame.VLANTag{TPID: 0x8100, TCI: tci})
	if err != nil {
		t.Fatal(err)
	}
	return buf[:n]
}

// TestVLAN: the engine serves one VLAN. Whether the tag came in the
// ring's metadata or in the frame, a frame of the VLAN served is answered
// (echo, ARP, NDP, ping, ICMP) with the tag, and a frame of any other,
// or untagged when a VLAN is served, is other-vlan and draws nothing; by
// default untagged and priority-tagged frames are served.
func TestVLAN(t *testing.T) {
	meta := func(tci uint16) ring.Meta { return ring.Meta{Status: tpStatusVLANValid, VLANTCI: tci} }
	echo4 := udpFrame(t, ap(peer4, 40000), ap(owned4, 7), []byte("v"))
	echo6 := udpFrame(t, ap(peer6, 40000), ap(owned6, 7), []byte("v"))
	kinds := []struct {
		name string
		f    []byte
	}{
		{"echo", echo4},
		{"echo6", echo6},
		{"arp", arpRequest(t, peer4, owned4)},
		{"ns", neighborSolicitation(t, peer6, owned6)},
		{"ping", echoRequest(t, peer4, owned4)},
		{"port unreachable", udpFrame(t, ap(peer4, 40000), ap(owned4, 999), nil)},
	}
	for _, tc := range []struct {
		name    string
		vlan    uint16
		inFrame bool   // the tag in the frame, not in metadata
		tci     uint16 // 0xffff: untagged
		served  bool
	}{
		{"untagged, default", 0, false, 0xffff, true},
		{"priority tag, default", 0, false, frame.MakeTCI(3, false, 0), true},
		{"priority tag in the frame, default", 0, true, frame.MakeTCI(3, false, 0), true},
		{"vlan 100, default", 0, false, 100, false},
		{"vlan 100 in the frame, default", 0, true, 100, false},
		{"vlan 100 served", 100, false, frame.MakeTCI(2, false, 100), true},
		{"vlan 100 in the frame served", 100, true, frame.MakeTCI(2, false, 100), true},
		{"vlan 101, 100 served", 100, false, 101, false},
		{"untagged, 100 served", 100, false, 0xffff, false},
		{"priority tag, 100 served", 100, false, 0, false},
	} {
		r := newRig(t, &Config{VLAN: tc.vlan})
		if _, err := r.e.HandleService(ap(netip.Addr{}, 7), Echo); err != nil {
			t.Fatal(err)
		}
		for _, k := range kinds {
			f, m := k.f, ring.Meta{}
			switch {
			case tc.tci == 0xffff:
			case tc.inFrame:
				f = inFrameTag(t, f, tc.tci)
			default:
				m = meta(tc.tci)
			}
			if k.name == "arp" {
				m.Type = ring.PacketBroadcast
			}
			o := r.one(f, m)
			out := r.tx.take()
			if !tc.served {
				if o != OutcomeOtherVLAN || len(out) != 0 {
					t.Errorf("%s, %s: outcome %v, %d answers; want other-vlan and none", tc.name, k.name, o, len(out))
				}
				continue
			}
			if o == OutcomeOtherVLAN || len(out) != 1 {
				t.Errorf("%s, %s: outcome %v, %d answers; want 1", tc.name, k.name, o, len(out))
				continue
			}
			var p frame.Packet
			p.Decode(out[0])
			switch {
			case tc.tci == 0xffff && p.NumVLANs != 0:
				t.Errorf("%s, %s: answer tagged %v", tc.name, k.name, p.VLANs[0])
			case tc.tci != 0xffff && (p.NumVLANs != 1 || p.VLANs[0].TCI != tc.tci):
				t.Errorf("%s, %s: answer tags %v, want TCI %#x", tc.name, k.name, p.VLANs[:p.NumVLANs], tc.tci)
			}
		}
		if c := r.e.Counters(); c.Check() != nil {
			t.Error(c.Check())
		}
	}
	// Two tags: never served (QinQ is not looked through).
	r := newRig(t, &Config{VLAN: 100})
	if o := r.one(inFrameTag(t, echo4, 200), meta(100)); o != OutcomeOtherVLAN {
		t.Errorf("100 in metadata, 200 in the frame: %v", o)
	}
	if _, err := (&Config{VLAN: 4095}).withDefaults(); err == nil {
		t.Error("VLAN 4095 accepted")
	}
}
