//go:build linux

package robust_test

import (
	"bytes"
	"net"
	"testing"
	"time"

	"github.com/pktengine/pktengine/engine"
	"github.com/pktengine/pktengine/frame"
)

// robustBackend is the backend tryOpen opens engines with. TestXDP runs
// the robustness suites again with engine.BackendXDP.
var robustBackend = engine.BackendTPACKET

// robustConfig returns cfg for robustBackend: on XDP the engine runs one
// worker per receive queue (a veth has one), so Workers becomes 0.
func robustConfig(cfg *engine.Config) *engine.Config {
	if robustBackend == engine.BackendTPACKET {
		return cfg
	}
	var c engine.Config
	if cfg != nil {
		c = *cfg
	}
	c.Backend = robustBackend
	c.Workers = 0
	return &c
}

// hostileMTU is the lab MTU of TestHostileFrames: 9000 for jumbo frames,
// 3000 on XDP, whose single-buffer frames on veth must fit a page.
func hostileMTU() int {
	if robustBackend == engine.BackendXDP {
		return 3000
	}
	return 9000
}

// engineTap returns a FrameWriter (Config.Capture) that counts, into a,
// the frames the engine receives from mac, leaving out what countArrivals
// leaves out. On XDP A's own tap sees only the frames the program leaves
// to the kernel; the engine's capture sees the others.
func (a *arrivals) engineTap(from net.HardwareAddr, skipPort uint16) engine.FrameWriter {
	return frameWriterFunc(func(_ int64, f []byte, _ int) error {
		if len(f) < 12 || !bytes.Equal(f[6:12], from) {
			return nil
		}
		var p frame.Packet
		switch p.Decode(f) {
		case frame.ReasonICMPv6:
			return nil
		case frame.ReasonOK:
			if p.DstPort(f) == skipPort {
				return nil
			}
		}
		a.mu.Lock()
		a.n++
		a.mu.Unlock()
		return nil
	})
}

type frameWriterFunc func(unixNano int64, frame []byte, origLen int) error

func (f frameWriterFunc) WriteFrame(unixNano int64, frame []byte, origLen int) error {
	return f(unixNano, frame, origLen)
}

// xdpHostileKernel lists the hostile frames the XDP program leaves to the
// kernel, so that on XDP no engine counter moves for them (they are
// "filtered" as far as the engine is concerned): what the program cannot
// take for UDP to a port of the engine's (a header it does not parse, no
// room for the port), group destinations on the shared addresses, which
// the kernel keeps, and a second VLAN tag, which the
// program does not look behind. Every name must be one of hostileCases'.
var xdpHostileKernel = []string{
	"IPv4 header, no room for UDP",
	"IPv4 version 6 in an IPv4 EtherType",
	"IPv4 IHL 4 (< 5)",
	"IPv4 IHL 15, past the end of the frame",
	"double VLAN tags (802.1ad 100, 802.1Q 200) to echo",
	"closed port on a shared address",
	"subnet broadcast to echo",
	"limited broadcast to a closed port",
	"IPv4 multicast to echo",
	"IPv6 multicast to echo",
	"IPv4 multicast to a group not joined",
}

// xdpHostileCases turns the cases the XDP program leaves to the kernel
// into filtered ones.
func xdpHostileCases(cases []hostileCase) []hostileCase {
	out := append([]hostileCase(nil), cases...)
	for _, name := range xdpHostileKernel {
		found := false
		for i := range out {
			if out[i].name == name {
				out[i].filtered, out[i].outcome, out[i].extra, out[i].replies = true, "", nil, 0
				found = true
			}
		}
		if !found {
			panic("xdpHostileKernel: no hostile case " + name)
		}
	}
	return out
}

// onXDP runs f with tryOpen opening AF_XDP engines.
func onXDP(f func(*testing.T)) func(*testing.T) {
	return func(t *testing.T) {
		robustBackend = engine.BackendXDP
		defer func() { robustBackend = engine.BackendTPACKET }()
		f(t)
	}
}

// TestXDP runs the robustness suites on the AF_XDP backend: hostile
// frames, overload with exact accounting, faults (link down and up,
// link failure, interface and peer namespace deleted, Close under load)
// and slow consumers.
func TestXDP(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    func(*testing.T)
	}{
		{"HostileFrames", TestHostileFrames},
		{"InterfaceDownUp", TestInterfaceDownUp},
		{"LinkFail", TestLinkFail},
		{"InterfaceDeleted", TestInterfaceDeleted},
		{"PeerNamespaceDeleted", TestPeerNamespaceDeleted},
		{"OwnNamespaceNameDeleted", TestOwnNamespaceNameDeleted},
		{"CloseUnderLoad", TestCloseUnderLoad},
		{"StatusAfterClose", TestStatusAfterClose},
		{"SlowConsumerIsolation", TestSlowConsumerIsolation},
		{"Overload", TestOverload},
	} {
		t.Run(tc.name, onXDP(tc.f))
	}
}

// checkUMEM checks, after an AF_XDP engine ran under load for d, that no
// UMEM frame was lost or counted twice: the workers checked every
// frame's place about once a second while busy (fill + kernel RX + held
// + TX + completion + free = total, two ways), all passed, and after
// Close the final count of every socket adds up with nothing held and
// nothing stranded on a TX ring.
func checkUMEM(t *testing.T, e *engine.Engine, d time.Duration) {
	t.Helper()
	st := e.Status()
	x := st.Counters.XDP
	if x.FrameCheckFailures != 0 || x.FrameChecks < uint64(d/(2*time.Second)) {
		t.Errorf("%d frame checks over %v of load, %d failed: %+v", x.FrameChecks, d.Round(time.Second), x.FrameCheckFailures, st.XDP)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	st = e.Status()
	for _, s := range st.XDP.Sockets {
		f := s.Frames
		if s.CheckError != "" || f.Total != s.FrameCount || f.Sum() != f.Total || f.Held != 0 || f.TX != 0 {
			t.Errorf("queue %d after Close: %v (%s)", s.Queue, f, s.CheckError)
		} else {
			t.Logf("queue %d after Close: %v", s.Queue, f)
		}
	}
	c := st.Counters.XDP
	t.Logf("UMEM: %d frame checks, %d failed; received %d, transmitted %d, completed %d, dropped %d; kernel: ring full %d, dropped %d",
		c.FrameChecks, c.FrameCheckFailures, c.Received, c.Transmitted, c.Completed, c.TXDropped, c.RxRingFull, c.RxDropped)
	if c.Transmitted != c.Completed {
		t.Errorf("transmitted %d frames, completed %d", c.Transmitted, c.Completed)
	}
}
