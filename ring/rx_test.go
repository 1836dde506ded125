package ring_test

import (
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/pktengine/pktengine/ring"
)

func TestMetaVLAN(t *testing.T) {
	for _, c := range []struct {
		m         ring.Meta
		tci, tpid uint16
		ok        bool
	}{
		{ring.Meta{}, 0, 0, false},
		{ring.Meta{VLANTCI: 100}, 0, 0, false}, // no VLAN_VALID: ignore the field
		{ring.Meta{Status: 0x10, VLANTCI: 100}, 100, 0x8100, true},
		{ring.Meta{Status: 0x10 | 0x40, VLANTCI: 7, VLANTPID: 0x88a8}, 7, 0x88a8, true},
		{ring.Meta{Status: 0x10 | 0x40, VLANTCI: 7}, 7, 0x8100, true}, // TPID valid but zero
	} {
		tci, tpid, ok := c.m.VLAN()
		if tci != c.tci || tpid != c.tpid || ok != c.ok {
			t.Errorf("%+v: VLAN() = %#x %#x %v, want %#x %#x %v", c.m, tci, tpid, ok, c.tci, c.tpid, c.ok)
		}
	}
}

func TestStatusBits(t *testing.T) {
	s := ring.Status(0x1 | 0x4 | 0x8 | 0x80)
	if !s.Losing() || !s.ChecksumPartial() || !s.ChecksumValid() || s.Truncated() || s.VLANValid() {
		t.Errorf("status %#x decoded wrongly", uint32(s))
	}
	if ring.Status(0x2).Truncated() != true {
		t.Error("TP_STATUS_COPY not reported as truncated")
	}
}

func TestNames(t *testing.T) {
	for v, want := range map[interface{ String() string }]string{
		ring.V2: "TPACKET_V2", ring.V3: "TPACKET_V3", ring.Version(7): "Version(7)",
		ring.PacketOutgoing: "outgoing", ring.PacketOtherHost: "otherhost", ring.PacketType(9): "PacketType(9)",
		ring.TXRing: "ring", ring.TXSendmmsg: "sendmmsg",
	} {
		if got := v.String(); got != want {
			t.Errorf("String() = %q, want %q", got, want)
		}
	}
}

// TestConfigErrors needs no privileges: bad configurations are refused
// before a socket is opened.
func TestConfigErrors(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("rings are Linux only")
	}
	// An index no interface has: should validation let a config through,
	// bind fails, and the test sees the wrong error rather than a socket
	// bound in the root namespace.
	none := &net.Interface{Index: 0x7fff0000, Name: "none", MTU: 1500}
	for _, c := range []ring.RXConfig{
		{Version: 4},
		{BlockSize: 1000},
		{BlockSize: -4096},
		{BlockCount: -1},
		{Version: ring.V2, FrameSize: 100},
		{Version: ring.V2, FrameSize: 2047},
		{Version: ring.V2, FrameCount: -5},
		{Version: ring.V2, BatchSize: -1},
		{BusyPoll: -1},
		{RetireTimeout: -time.Second},
		{Fanout: &ring.Fanout{UniqueID: true, GroupID: 7}},
	} {
		if _, err := ring.NewRX(none, &c); err == nil || !strings.Contains(err.Error(), "RXConfig") {
			t.Errorf("NewRX(%+v): %v, want a configuration error", c, err)
		}
	}
	for _, c := range []ring.TXConfig{
		{Method: ring.TXRing, FrameSize: 30},
		{Method: ring.TXRing, FrameCount: -1},
		{Method: ring.TXSendmmsg, FrameCount: 2000},
		{Method: 9},
	} {
		if _, err := ring.NewTransmitter(none, &c); err == nil || !strings.Contains(err.Error(), "Config") && !strings.Contains(err.Error(), "TXMethod") {
			t.Errorf("NewTransmitter(%+v): %v, want a configuration error", c, err)
		}
	}
}
