package ring_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/pktengine/pktengine/frame"
	"github.com/pktengine/pktengine/internal/lab"
	"github.com/pktengine/pktengine/internal/labtest"
	"github.com/pktengine/pktengine/ring"
	"golang.org/x/net/bpf"
)

// udp4Frame describes a test frame: Ethernet (optionally tagged), IPv4,
// UDP with a full checksum.
type udp4Frame struct {
	dstMAC, srcMAC net.HardwareAddr
	src, dst       netip.Addr
	sport, dport   uint16
	payload        []byte
	tpid, tci      uint16 // tpid != 0 adds a VLAN tag
}

// build writes the frame with frame.BuildUDP. The tests that deliver
// frames to a kernel UDP socket on the peer double as a check of its
// checksums: the kernel drops a datagram whose checksum is wrong.
func (f udp4Frame) build() []byte {
	spec := &frame.UDPSpec{
		SrcMAC:       frame.MAC(f.srcMAC),
		DstMAC:       frame.MAC(f.dstMAC),
		Src:          netip.AddrPortFrom(f.src, f.sport),
		Dst:          netip.AddrPortFrom(f.dst, f.dport),
		DontFragment: true,
		Payload:      f.payload,
	}
	if f.tpid != 0 {
		spec.VLANs = []frame.VLANTag{{TPID: f.tpid, TCI: f.tci}}
	}
	buf := make([]byte, frame.UDPFrameLen(spec))
	n, err := frame.BuildUDP(buf, spec)
	if err != nil {
		panic(err)
	}
	return buf[:n]
}

// udpFrameAB returns a frame from host a to host b.
func udpFrameAB(a, b *lab.Host, sport, dport uint16, payload []byte) udp4Frame {
	return udp4Frame{
		dstMAC: b.MAC, srcMAC: a.MAC,
		src: a.IPv4.Addr(), dst: b.IPv4.Addr(),
		sport: sport, dport: dport, payload: payload,
	}
}

// parsedUDP picks the UDP ports and payload out of an untagged
// Ethernet/IPv4/UDP frame; ok is false for anything else.
func parsedUDP(data []byte) (sport, dport uint16, payload []byte, ok bool) {
	if len(data) < 14+20+8 || binary.BigEndian.Uint16(data[12:]) != 0x0800 || data[14+9] != 17 {
		return 0, 0, nil, false
	}
	ihl := int(data[14]&0xf) * 4
	u := data[14+ihl:]
	if len(u) < 8 {
		return 0, 0, nil, false
	}
	return binary.BigEndian.Uint16(u), binary.BigEndian.Uint16(u[2:]), u[8:], true
}

// udpDstPortFilter accepts untagged IPv4 UDP frames to port, first
// fragments or not, and rejects everything else.
func udpDstPortFilter(t testing.TB, port uint16) []bpf.RawInstruction {
	t.Helper()
	prog, err := bpf.Assemble([]bpf.Instruction{
		bpf.LoadAbsolute{Off: 12, Size: 2},
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: 0x0800, SkipTrue: 6},
		bpf.LoadAbsolute{Off: 23, Size: 1},
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: 17, SkipTrue: 4},
		bpf.LoadMemShift{Off: 14},
		bpf.LoadIndirect{Off: 16, Size: 2},
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: uint32(port), SkipTrue: 1},
		bpf.RetConstant{Val: 0x40000},
		bpf.RetConstant{Val: 0},
	})
	if err != nil {
		t.Fatal(err)
	}
	return prog
}

// hostRX opens a receive ring on the lab interface of h.
func hostRX(t testing.TB, h *lab.Host, cfg *ring.RXConfig) *ring.RX {
	t.Helper()
	return labtest.Open(t, h, func(ifi *net.Interface) (*ring.RX, error) { return ring.NewRX(ifi, cfg) })
}

// hostTX opens a Transmitter on the lab interface of h.
func hostTX(t testing.TB, h *lab.Host, cfg *ring.TXConfig) ring.Transmitter {
	t.Helper()
	return labtest.Open(t, h, func(ifi *net.Interface) (ring.Transmitter, error) { return ring.NewTransmitter(ifi, cfg) })
}

// listenUDP opens a kernel UDP socket on h's IPv4 address and testPort:
// it counts what arrives and keeps h's kernel from answering with ICMP.
func listenUDP(t testing.TB, h *lab.Host) *net.UDPConn {
	t.Helper()
	return labtest.ListenUDP(t, h, netip.AddrPortFrom(h.IPv4.Addr(), testPort))
}

// send copies frame into the next buffer of tx and commits it.
func send(tx ring.Transmitter, frame []byte) error {
	buf, err := tx.Next(context.Background())
	if err != nil {
		return err
	}
	if len(frame) > len(buf) {
		return fmt.Errorf("%w: %d bytes, at most %d", ring.ErrFrameSize, len(frame), len(buf))
	}
	return tx.Commit(copy(buf, frame))
}

// sendFrames sends every frame through tx and flushes.
func sendFrames(t testing.TB, tx ring.Transmitter, frames ...[]byte) {
	t.Helper()
	labtest.Send(t, tx, frames...)
}

// received is one frame copied out of a ring.
type received struct {
	data []byte
	meta ring.Meta
}

// collect reads frames from rx until want of them satisfy keep, or until
// quiet passes without a frame (after the wanted ones arrived, to catch
// extras) or the overall timeout ends.
func collect(t testing.TB, rx *ring.RX, want int, quiet time.Duration, keep func([]byte, ring.Meta) bool) []received {
	t.Helper()
	var out []received
	deadline := time.Now().Add(10 * time.Second)
	var b ring.Batch
	defer b.Release()
	for {
		wait := time.Until(deadline)
		if len(out) >= want {
			wait = quiet
		}
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		err := rx.ReadInto(ctx, &b)
		cancel()
		if errors.Is(err, context.DeadlineExceeded) {
			if len(out) < want {
				st, serr := rx.Stats()
				t.Fatalf("received %d frames, want %d; ring stats %+v %v", len(out), want, st, serr)
			}
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		for data, m := range b.All() {
			if keep == nil || keep(data, m) {
				out = append(out, received{append([]byte(nil), data...), m})
			}
		}
	}
}

// methods runs f for each Transmitter.
func methods(t *testing.T, f func(t *testing.T, m ring.TXMethod)) {
	for _, m := range []ring.TXMethod{ring.TXRing, ring.TXSendmmsg} {
		t.Run(m.String(), func(t *testing.T) { f(t, m) })
	}
}

// within waits up to 5 seconds for what done delivers, failing with
// "<what> <error>" if it is not an error matching want (nil: no error).
func within(t *testing.T, done <-chan error, want error, what string) {
	t.Helper()
	select {
	case err := <-done:
		if want == nil && err != nil || want != nil && !errors.Is(err, want) {
			t.Errorf("%s: %v, want %v", what, err, want)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: nothing after 5s", what)
	}
}

// versions runs f for each TPACKET version.
func versions(t *testing.T, f func(t *testing.T, v ring.Version)) {
	for _, v := range []ring.Version{ring.V2, ring.V3} {
		t.Run(v.String(), func(t *testing.T) { f(t, v) })
	}
}

// waitStats polls rx.Stats until cond holds, for up to 10 seconds, and
// returns the last reading. Frames reach a ring in softirq context, which a
// loaded machine may defer to ksoftirqd: a test never assumes a sleep was
// long enough.
func waitStats(t testing.TB, rx *ring.RX, cond func(ring.Stats) bool) ring.Stats {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := rx.Stats()
		if err != nil {
			t.Fatal(err)
		}
		if cond(st) || time.Now().After(deadline) {
			return st
		}
		time.Sleep(time.Millisecond)
	}
}

// settle waits, for up to 10 seconds, until the rings together have seen
// at least n frames (PACKET_STATISTICS). Tests that send many frames pause
// on it every few dozen: on a loaded machine the receive softirq may be
// left to ksoftirqd, and a sender that runs ahead of it overflows the
// per-CPU backlog (netdev_max_backlog), losing frames before any ring.
func settle(t testing.TB, n uint64, rxs ...*ring.RX) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); packets(t, rxs...) < n && time.Now().Before(deadline); {
		time.Sleep(100 * time.Microsecond)
	}
}

// packets returns the frames the rings have seen (PACKET_STATISTICS).
func packets(t testing.TB, rxs ...*ring.RX) uint64 {
	t.Helper()
	var sum uint64
	for _, rx := range rxs {
		st, err := rx.Stats()
		if err != nil {
			t.Fatal(err)
		}
		sum += st.Packets
	}
	return sum
}

// sendPaced sends frames in flushes of 32, settling the rings after each.
func sendPaced(t testing.TB, tx ring.Transmitter, frames [][]byte, rxs ...*ring.RX) {
	t.Helper()
	base := packets(t, rxs...)
	for i := 0; i < len(frames); i += 32 {
		sendFrames(t, tx, frames[i:min(i+32, len(frames))]...)
		settle(t, base+uint64(min(i+32, len(frames))), rxs...)
	}
}
