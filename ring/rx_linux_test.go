package ring_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pktengine/pktengine/internal/lab"
	"github.com/pktengine/pktengine/internal/labtest"
	"github.com/pktengine/pktengine/ring"
	"golang.org/x/sys/unix"
)

const testPort = 7000

// seqPayload is "pkte" and a big-endian sequence number.
func seqPayload(i int) []byte {
	return binary.BigEndian.AppendUint32([]byte("pkte"), uint32(i))
}

func payloadSeq(p []byte) (int, bool) {
	if len(p) != 8 || string(p[:4]) != "pkte" {
		return 0, false
	}
	return int(binary.BigEndian.Uint32(p[4:])), true
}

// checkSeqs fails unless frames carry exactly the sequence numbers 0..n-1.
func checkSeqs(t *testing.T, frames []received, n int) {
	t.Helper()
	seen := make(map[int]int)
	for _, f := range frames {
		_, _, p, ok := parsedUDP(f.data)
		if !ok {
			t.Fatalf("not a UDP frame: % x", f.data)
		}
		s, ok := payloadSeq(p)
		if !ok {
			t.Fatalf("foreign payload % x", p)
		}
		seen[s]++
	}
	for i := range n {
		if seen[i] != 1 {
			t.Errorf("sequence %d seen %d times", i, seen[i])
		}
	}
	if len(frames) != n {
		t.Errorf("received %d frames, want exactly %d", len(frames), n)
	}
}

func TestRXKernelUDP(t *testing.T) {
	versions(t, func(t *testing.T, v ring.Version) {
		l := labtest.New(t, nil)
		a, b := l.A(), l.B()
		rx := hostRX(t, b, &ring.RXConfig{Version: v, Filter: udpDstPortFilter(t, testPort), RetireTimeout: time.Millisecond})

		// A listener on B keeps its kernel from answering with ICMP.
		listenUDP(t, b)
		c := labtest.DialUDP(t, a, netip.AddrPortFrom(b.IPv4.Addr(), testPort))
		const n = 200
		for i := range n {
			if _, err := c.Write(seqPayload(i)); err != nil {
				t.Fatal(err)
			}
			if i%32 == 31 {
				settle(t, uint64(i+1), rx)
			}
		}
		frames := collect(t, rx, n, 50*time.Millisecond, nil)
		checkSeqs(t, frames, n)
		for _, f := range frames[:1] {
			m := f.meta
			if m.Type != ring.PacketHost || m.Ifindex != b.Index || m.Protocol != 0x0800 {
				t.Errorf("meta %+v: want type host, ifindex %d, protocol 0x0800", m, b.Index)
			}
			if m.Length != len(f.data) || m.Length != 14+20+8+8 {
				t.Errorf("length %d, data %d bytes", m.Length, len(f.data))
			}
			if d := time.Since(m.Time()); d < 0 || d > time.Minute {
				t.Errorf("timestamp %v is %v from now", m.Time(), d)
			}
			// A local kernel socket on veth leaves the UDP checksum to
			// an offload that never runs.
			if !m.Status.ChecksumPartial() {
				t.Errorf("status %#x: TP_STATUS_CSUMNOTREADY not set for a local sender on veth", m.Status)
			}
			if _, _, ok := m.VLAN(); ok {
				t.Errorf("untagged frame reports a VLAN tag")
			}
		}
		st, err := rx.Stats()
		if err != nil {
			t.Fatal(err)
		}
		if st.Packets != n || st.Drops != 0 {
			t.Errorf("stats %+v, want %d packets and no drops", st, n)
		}
	})
}

// TestChecksumComplete is the other side of CSUMNOTREADY: with transmit
// checksum offload off, the kernel completes the checksum and the flag is
// gone.
func TestChecksumComplete(t *testing.T) {
	l := labtest.New(t, &lab.Config{Offloads: map[string]bool{"tx": false}})
	a, b := l.A(), l.B()
	rx := hostRX(t, b, &ring.RXConfig{Version: ring.V2, Filter: udpDstPortFilter(t, testPort)})
	c := labtest.DialUDP(t, a, netip.AddrPortFrom(b.IPv4.Addr(), testPort))
	if _, err := c.Write(seqPayload(0)); err != nil {
		t.Fatal(err)
	}
	f := collect(t, rx, 1, 20*time.Millisecond, nil)[0]
	if f.meta.Status.ChecksumPartial() {
		t.Errorf("status %#x: CSUMNOTREADY with checksum offload off", f.meta.Status)
	}
	if got := binary.BigEndian.Uint16(f.data[14+20+6:]); got == 0 {
		t.Errorf("UDP checksum is zero")
	}
}

func TestRXRawFrames(t *testing.T) {
	versions(t, func(t *testing.T, v ring.Version) {
		methods(t, func(t *testing.T, method ring.TXMethod) {
			l := labtest.New(t, nil)
			a, b := l.A(), l.B()
			rx := hostRX(t, b, &ring.RXConfig{Version: v, Filter: udpDstPortFilter(t, testPort), RetireTimeout: time.Millisecond})
			tx := hostTX(t, a, &ring.TXConfig{Method: method})
			const n = 1000
			frames := make([][]byte, n)
			for i := range frames {
				frames[i] = udpFrameAB(a, b, 40000, testPort, seqPayload(i)).build()
			}
			sendPaced(t, tx, frames, rx)
			got := collect(t, rx, n, 50*time.Millisecond, nil)
			checkSeqs(t, got, n)
			if got[0].meta.Status.ChecksumPartial() {
				t.Errorf("raw frame with a full checksum reported CSUMNOTREADY")
			}
			if st := tx.Stats(); st.Committed != n || st.Sent != n || st.WrongFormat != 0 {
				t.Errorf("TX stats %+v, want %d committed and sent", st, n)
			}
		})
	})
}

func TestVLANStripped(t *testing.T) {
	versions(t, func(t *testing.T, v ring.Version) {
		l := labtest.New(t, nil)
		a, b := l.A(), l.B()
		// No filter: the tag is gone from the data the filter sees too,
		// but keep the test independent of that.
		rx := hostRX(t, b, &ring.RXConfig{Version: v, RetireTimeout: time.Millisecond, IgnoreOutgoing: true})
		tx := hostTX(t, a, nil)
		cases := []struct{ tpid, tci uint16 }{
			{0x8100, 5<<13 | 100},   // 802.1Q, priority 5, VLAN 100
			{0x88a8, 1<<12 | 0x123}, // 802.1ad S-tag with DEI, VLAN 0x123
			{0x8100, 0<<13 | 4094},  // highest VLAN ID
		}
		for i, c := range cases {
			f := udpFrameAB(a, b, 40000, testPort, seqPayload(i))
			f.tpid, f.tci = c.tpid, c.tci
			sendFrames(t, tx, f.build())
		}
		got := collect(t, rx, len(cases), 50*time.Millisecond, func(data []byte, m ring.Meta) bool {
			_, dport, _, ok := parsedUDP(data)
			return ok && dport == testPort
		})
		if len(got) != len(cases) {
			t.Fatalf("got %d frames, want %d", len(got), len(cases))
		}
		for _, g := range got {
			_, _, p, _ := parsedUDP(g.data)
			i, _ := payloadSeq(p)
			tci, tpid, ok := g.meta.VLAN()
			if !ok || tci != cases[i].tci || tpid != cases[i].tpid {
				t.Errorf("frame %d: VLAN() = %#04x %#04x %v, want %#04x %#04x", i, tci, tpid, ok, cases[i].tci, cases[i].tpid)
			}
			if g.meta.Protocol != 0x0800 {
				t.Errorf("frame %d: protocol %#04x, want the inner 0x0800", i, g.meta.Protocol)
			}
			if len(g.data) != 14+20+8+8 {
				t.Errorf("frame %d: %d bytes: tag not stripped from the data", i, len(g.data))
			}
		}
	})
}

func TestVLANSubinterface(t *testing.T) {
	labtest.NeedPrivileges(t)
	l, err := lab.Create(&lab.Config{VLANs: []lab.VLAN{{ID: 100}}})
	if errors.Is(err, lab.ErrVLANUnsupported) {
		t.Skip("kernel without 802.1Q subinterfaces; TestVLANStripped covers tag stripping with raw frames")
	}
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	a, b := l.A(), l.B()
	rx := hostRX(t, b, &ring.RXConfig{Version: ring.V2, IgnoreOutgoing: true})
	c := labtest.DialUDP(t, a, netip.AddrPortFrom(b.VLANs[0].IPv4.Addr(), testPort))
	if _, err := c.Write(seqPayload(0)); err != nil {
		t.Fatal(err)
	}
	got := collect(t, rx, 1, 20*time.Millisecond, func(data []byte, m ring.Meta) bool {
		_, dport, _, ok := parsedUDP(data)
		return ok && dport == testPort
	})
	tci, tpid, ok := got[0].meta.VLAN()
	if !ok || tci&0xfff != 100 || tpid != 0x8100 {
		t.Errorf("VLAN() = %#x %#x %v, want VLAN 100 over 0x8100", tci, tpid, ok)
	}
}

func TestIgnoreOutgoing(t *testing.T) {
	for _, ignore := range []bool{false, true} {
		t.Run(fmt.Sprint("ignore=", ignore), func(t *testing.T) {
			l := labtest.New(t, nil)
			a, b := l.A(), l.B()
			rx := hostRX(t, a, &ring.RXConfig{Version: ring.V2, IgnoreOutgoing: ignore, Filter: udpDstPortFilter(t, testPort)})
			txA := hostTX(t, a, nil)
			txB := hostTX(t, b, nil)
			const n = 10
			for i := range n {
				sendFrames(t, txA, udpFrameAB(a, b, 40000, testPort, seqPayload(i)).build())
			}
			// A frame from B marks the end: A's own are tapped as they
			// leave, before it is even sent.
			sendFrames(t, txB, udpFrameAB(b, a, 40000, testPort, seqPayload(n)).build())
			want := n
			if ignore {
				want = 0
			}
			got := collect(t, rx, want+1, 50*time.Millisecond, nil)
			outgoing := 0
			for _, g := range got {
				switch g.meta.Type {
				case ring.PacketOutgoing:
					outgoing++
				case ring.PacketHost:
				default:
					t.Errorf("unexpected packet type %v", g.meta.Type)
				}
			}
			if outgoing != want || len(got) != want+1 {
				t.Errorf("saw %d outgoing of %d frames, want %d outgoing and the incoming one", outgoing, len(got), want)
			}
		})
	}
}

func TestFanoutHash(t *testing.T) {
	l := labtest.New(t, nil)
	a, b := l.A(), l.B()
	const workers = 4
	rxs := make([]*ring.RX, workers)
	for i := range rxs {
		rxs[i] = hostRX(t, b, &ring.RXConfig{
			Version: ring.V2,
			Filter:  udpDstPortFilter(t, testPort),
			Fanout:  &ring.Fanout{Type: ring.FanoutHash, GroupID: 4242},
		})
	}
	tx := hostTX(t, a, nil)
	const flows, perFlow = 32, 8
	var frames [][]byte
	for f := range flows {
		for i := range perFlow {
			frames = append(frames, udpFrameAB(a, b, uint16(50000+f), testPort, seqPayload(f*perFlow+i)).build())
		}
	}
	sendPaced(t, tx, frames, rxs...)
	// Each worker reads its own ring until a quiet period.
	got := make([][]received, workers)
	var wg sync.WaitGroup
	for i, rx := range rxs {
		wg.Go(func() { got[i] = collect(t, rx, 0, 100*time.Millisecond, nil) })
	}
	wg.Wait()
	flowWorker := map[uint16]int{}
	total, busy := 0, 0
	for w, frames := range got {
		if len(frames) > 0 {
			busy++
		}
		for _, f := range frames {
			total++
			sport, _, _, _ := parsedUDP(f.data)
			if prev, ok := flowWorker[sport]; ok && prev != w {
				t.Errorf("flow %d seen by workers %d and %d", sport, prev, w)
			}
			flowWorker[sport] = w
		}
	}
	if total != flows*perFlow {
		t.Errorf("workers saw %d frames in all, want %d (each exactly once)", total, flows*perFlow)
	}
	if busy < 2 {
		t.Errorf("%d flows all went to one worker", flows)
	}
	t.Logf("frames per worker: %d %d %d %d", len(got[0]), len(got[1]), len(got[2]), len(got[3]))
}

func TestStatsDrops(t *testing.T) {
	versions(t, func(t *testing.T, v ring.Version) {
		l := labtest.New(t, nil)
		a, b := l.A(), l.B()
		cfg := &ring.RXConfig{Version: v, Filter: udpDstPortFilter(t, testPort), FrameCount: 32, BlockSize: 4096, BlockCount: 2, RetireTimeout: time.Millisecond}
		rx := hostRX(t, b, cfg)
		tx := hostTX(t, a, nil)
		const n = 2000
		for i := range n {
			sendFrames(t, tx, udpFrameAB(a, b, 40000, testPort, seqPayload(i)).build())
			if i%64 == 63 {
				time.Sleep(100 * time.Microsecond) // let a starved softirq keep up
			}
		}
		// Drain what the undrained ring kept. (Polling the statistics to
		// see the flood through would clear the losing condition checked
		// next, so a long quiet period stands in for it; frames that come
		// later still are counted with the marker below.)
		stored := collect(t, rx, 1, 200*time.Millisecond, nil)

		// A frame that arrives while drops are unreported carries
		// TP_STATUS_LOSING; reading the statistics clears the condition.
		sendFrames(t, tx, udpFrameAB(a, b, 40000, testPort, seqPayload(n)).build())
		marker := collect(t, rx, 1, 20*time.Millisecond, nil)
		if m := marker[len(marker)-1].meta; !m.Status.Losing() {
			t.Errorf("status %#x: no TP_STATUS_LOSING after unreported drops", m.Status)
		}
		stored = append(stored, marker[:len(marker)-1]...) // late arrivals
		st := waitStats(t, rx, func(st ring.Stats) bool { return st.Packets >= n+1 })
		// Every frame that reached the socket was stored (and read here)
		// or dropped. (On a badly loaded machine a few may be lost before
		// the socket, in the per-CPU backlog, so Packets is not pinned to
		// n+1.)
		if st.Packets != uint64(len(stored))+1+st.Drops || st.Drops == 0 || st.Packets < n/2 {
			t.Errorf("undrained ring: stats %+v, want %d packets = %d stored + 1 marker + drops", st, n+1, len(stored))
		}
		if v == ring.V3 && st.FreezeQueue == 0 {
			t.Errorf("V3 ring never froze: %+v", st)
		}
		sendFrames(t, tx, udpFrameAB(a, b, 40000, testPort, seqPayload(n+1)).build())
		if m := collect(t, rx, 1, 20*time.Millisecond, nil)[0].meta; m.Status.Losing() {
			t.Errorf("status %#x: TP_STATUS_LOSING after the statistics were read", m.Status)
		}
		// Counters accumulate across reads although the kernel's restart
		// at zero.
		st2 := waitStats(t, rx, func(s ring.Stats) bool { return s.Packets >= st.Packets+1 })
		if st2.Packets != st.Packets+1 || st2.Drops != st.Drops {
			t.Errorf("second read %+v, want one more packet than %+v", st2, st)
		}
	})
}

func TestFilterBeforeBind(t *testing.T) {
	l := labtest.New(t, nil)
	a, b := l.A(), l.B()
	tx := hostTX(t, a, nil)
	noise := udpFrameAB(a, b, 40000, testPort+1, seqPayload(0)).build()

	// Flood B with frames the filter rejects while rings open and close.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			for range 32 {
				if err := send(tx, noise); err != nil {
					t.Error(err)
					return
				}
			}
			if err := tx.Flush(); err != nil {
				t.Error(err)
				return
			}
			time.Sleep(50 * time.Microsecond)
		}
	})
	defer func() { close(stop); wg.Wait() }()

	for _, v := range []ring.Version{ring.V2, ring.V3} {
		for range 5 {
			rx := hostRX(t, b, &ring.RXConfig{Version: v, Filter: udpDstPortFilter(t, testPort), RetireTimeout: time.Millisecond})
			time.Sleep(5 * time.Millisecond)
			st, err := rx.Stats()
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
			var batch ring.Batch
			err = rx.ReadInto(ctx, &batch)
			cancel()
			if err == nil {
				data, _ := batch.Frame(0)
				t.Fatalf("%v: filtered ring received a frame: % x", v, data)
			}
			if st.Packets != 0 {
				t.Fatalf("%v: filtered ring counted %d packets", v, st.Packets)
			}
			rx.Close()
		}
	}
	// The same flood does reach a ring without the filter: the test can
	// see frames when there are some.
	rx := hostRX(t, b, &ring.RXConfig{Version: ring.V2})
	collect(t, rx, 1, 0, nil)
}

func TestPromiscuous(t *testing.T) {
	l := labtest.New(t, nil)
	b := l.B()
	promiscuity := func() string {
		out, err := b.Command(context.Background(), "ip", "-d", "link", "show", b.Iface).CombinedOutput()
		if err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		i := strings.Index(string(out), "promiscuity ")
		if i < 0 {
			t.Fatalf("no promiscuity in %s", out)
		}
		return strings.Fields(string(out)[i:])[1]
	}
	if got := promiscuity(); got != "0" {
		t.Fatalf("promiscuity %s before", got)
	}
	rx := hostRX(t, b, &ring.RXConfig{Promiscuous: true, Filter: udpDstPortFilter(t, testPort)})
	if got := promiscuity(); got != "1" {
		t.Errorf("promiscuity %s with a promiscuous ring open, want 1", got)
	}
	rx.Close()
	if got := promiscuity(); got != "0" {
		t.Errorf("promiscuity %s after Close, want 0", got)
	}
}

func TestSetFilterAndLock(t *testing.T) {
	l := labtest.New(t, nil)
	a, b := l.A(), l.B()
	tx := hostTX(t, a, nil)
	toPort := func(port uint16, i int) []byte { return udpFrameAB(a, b, 40000, port, seqPayload(i)).build() }
	isUDP := func(data []byte, m ring.Meta) bool { _, _, _, ok := parsedUDP(data); return ok }

	rx := hostRX(t, b, &ring.RXConfig{Version: ring.V2, Filter: udpDstPortFilter(t, testPort)})
	sendFrames(t, tx, toPort(testPort+1, 0), toPort(testPort, 1))
	got := collect(t, rx, 1, 20*time.Millisecond, isUDP)
	if len(got) != 1 {
		t.Fatalf("got %d frames through the first filter, want 1", len(got))
	}
	if err := rx.SetFilter(udpDstPortFilter(t, testPort+1)); err != nil {
		t.Fatal(err)
	}
	sendFrames(t, tx, toPort(testPort, 2), toPort(testPort+1, 3))
	got = collect(t, rx, 1, 20*time.Millisecond, isUDP)
	if _, dport, _, _ := parsedUDP(got[0].data); len(got) != 1 || dport != testPort+1 {
		t.Fatalf("after SetFilter: %d frames, first to port %d", len(got), dport)
	}
	if err := rx.SetFilter(nil); err != nil {
		t.Fatal(err)
	}
	sendFrames(t, tx, toPort(testPort, 4), toPort(testPort+1, 5))
	if got := collect(t, rx, 2, 20*time.Millisecond, isUDP); len(got) != 2 {
		t.Fatalf("without a filter: %d frames, want both", len(got))
	}

	locked := hostRX(t, b, &ring.RXConfig{Filter: udpDstPortFilter(t, testPort), LockFilter: true})
	if err := locked.SetFilter(udpDstPortFilter(t, testPort+1)); !errors.Is(err, unix.EPERM) {
		t.Errorf("SetFilter on a locked filter: %v, want EPERM", err)
	}
	if err := locked.SetFilter(nil); !errors.Is(err, unix.EPERM) {
		t.Errorf("removing a locked filter: %v, want EPERM", err)
	}
}

func TestFanoutLB(t *testing.T) {
	l := labtest.New(t, nil)
	a, b := l.A(), l.B()
	var rxs [2]*ring.RX
	for i := range rxs {
		rxs[i] = hostRX(t, b, &ring.RXConfig{
			Version: ring.V2,
			Filter:  udpDstPortFilter(t, testPort),
			Fanout:  &ring.Fanout{Type: ring.FanoutLB, GroupID: 7},
		})
	}
	// A listener keeps B from answering with ICMP: its outgoing frames
	// would take turns in the round robin too.
	listenUDP(t, b)
	tx := hostTX(t, a, nil)
	const n = 100
	for i := range n {
		sendFrames(t, tx, udpFrameAB(a, b, 40000, testPort, seqPayload(i)).build())
	}
	// One flow, yet round robin splits it evenly.
	for i, rx := range rxs {
		if got := collect(t, rx, n/2, 20*time.Millisecond, nil); len(got) != n/2 {
			t.Errorf("worker %d got %d frames, want %d", i, len(got), n/2)
		}
	}
}

// TestGeometry checks that a ring reports the shape the kernel was asked
// for, defaults included.
func TestGeometry(t *testing.T) {
	l := labtest.New(t, nil)
	b := l.B()
	for _, c := range []struct {
		cfg  ring.RXConfig
		want ring.Geometry
	}{
		{ring.RXConfig{}, ring.Geometry{Version: ring.V3, Slots: 32, SlotSize: 256 << 10}},
		{ring.RXConfig{BlockSize: 64 << 10, BlockCount: 3}, ring.Geometry{Version: ring.V3, Slots: 3, SlotSize: 64 << 10}},
		{ring.RXConfig{Version: ring.V2}, ring.Geometry{Version: ring.V2, Slots: 4096, SlotSize: 2048, BatchFrames: 64}},
		// 32 frames of 2048 bytes fill the smallest block, 64 KiB.
		{ring.RXConfig{Version: ring.V2, FrameCount: 1, BatchSize: 8}, ring.Geometry{Version: ring.V2, Slots: 32, SlotSize: 2048, BatchFrames: 8}},
	} {
		if got := hostRX(t, b, &c.cfg).Geometry(); got != c.want {
			t.Errorf("%+v: Geometry() = %+v, want %+v", c.cfg, got, c.want)
		}
	}
}

// TestFanoutUniqueID opens two groups whose IDs the kernel picks, beside
// one whose ID was chosen by hand. The IDs differ, so the groups stay
// apart: each sees every frame once, shared among its own members.
func TestFanoutUniqueID(t *testing.T) {
	l := labtest.New(t, nil)
	a, b := l.A(), l.B()
	open := func(f ring.Fanout) *ring.RX {
		return hostRX(t, b, &ring.RXConfig{Version: ring.V2, Filter: udpDstPortFilter(t, testPort), Fanout: &f})
	}
	chosen := open(ring.Fanout{Type: ring.FanoutHash, GroupID: 0})
	groups := [][]*ring.RX{{chosen}}
	ids := map[uint16]int{0: 0}
	for g := 1; g <= 2; g++ {
		first := open(ring.Fanout{Type: ring.FanoutHash, UniqueID: true})
		id, ok := first.FanoutGroup()
		if !ok {
			t.Fatal("FanoutGroup reports no group")
		}
		if prev, dup := ids[id]; dup {
			t.Fatalf("group %d got ID %d, already group %d's", g, id, prev)
		}
		ids[id] = g
		second := open(ring.Fanout{Type: ring.FanoutHash, GroupID: id})
		if got, _ := second.FanoutGroup(); got != id {
			t.Errorf("second member of group %d reports group %d", id, got)
		}
		groups = append(groups, []*ring.RX{first, second})
	}
	t.Logf("group IDs %v", ids)

	tx := hostTX(t, a, nil)
	const n = 64
	var frames [][]byte
	for i := range n {
		frames = append(frames, udpFrameAB(a, b, uint16(50000+i), testPort, seqPayload(i)).build())
	}
	var all []*ring.RX
	for _, g := range groups {
		all = append(all, g...)
	}
	sendPaced(t, tx, frames, all...)
	for i, g := range groups {
		var got []received
		for _, rx := range g {
			got = append(got, collect(t, rx, 0, 50*time.Millisecond, nil)...)
		}
		t.Run(fmt.Sprint("group", i), func(t *testing.T) { checkSeqs(t, got, n) })
	}
}

// TestNothingBeforeRing sends frames that pass the filter while NewRX is
// between packet.Listen and the ring's setup, and waits until they have
// reached B (a ring opened earlier counts them). The new ring must neither
// hold them nor count them: a socket that had received them before
// PACKET_RX_RING would count them in PACKET_STATISTICS and then throw
// them away with its receive queue. Frames sent once NewRX has returned
// all arrive, and nothing else is counted.
func TestNothingBeforeRing(t *testing.T) {
	versions(t, func(t *testing.T, v ring.Version) {
		l := labtest.New(t, nil)
		a, b := l.A(), l.B()
		cfg := &ring.RXConfig{Version: v, Filter: udpDstPortFilter(t, testPort), RetireTimeout: time.Millisecond}
		witness := hostRX(t, b, cfg)
		tx := hostTX(t, a, nil)
		const early, late = 20, 30
		restore := ring.SetTestHookListened(func() {
			for i := range early {
				if err := send(tx, udpFrameAB(a, b, 40000, testPort, seqPayload(1000+i)).build()); err != nil {
					t.Error(err)
					return
				}
			}
			if err := tx.Flush(); err != nil {
				t.Error(err)
			}
			settle(t, early, witness)
		})
		rx := hostRX(t, b, cfg)
		restore()
		if st, err := witness.Stats(); err != nil || st.Packets != early {
			t.Fatalf("the early frames did not all reach B while the ring was being opened: %+v, %v", st, err)
		}
		var frames [][]byte
		for i := range late {
			frames = append(frames, udpFrameAB(a, b, 40000, testPort, seqPayload(i)).build())
		}
		sendPaced(t, tx, frames, rx)
		checkSeqs(t, collect(t, rx, late, 50*time.Millisecond, nil), late)
		if st, err := rx.Stats(); err != nil || st.Packets != late || st.Drops != 0 {
			t.Errorf("stats %+v, %v: want the %d late frames, no drops", st, err, late)
		}
	})
}
