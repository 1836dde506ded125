package ring_test

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/pktengine/pktengine/internal/lab"
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

// build writes the frame by hand: frame/ is tested separately, and these
// tests must not depend on it being right.
func (f udp4Frame) build() []byte {
	b := make([]byte, 0, 64+len(f.payload))
	b = append(b, f.dstMAC...)
	b = append(b, f.srcMAC...)
	if f.tpid != 0 {
		b = binary.BigEndian.AppendUint16(b, f.tpid)
		b = binary.BigEndian.AppendUint16(b, f.tci)
	}
	b = binary.BigEndian.AppendUint16(b, 0x0800)
	ip := len(b)
	udpLen := 8 + len(f.payload)
	b = append(b, 0x45, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(20+udpLen))
	b = append(b, 0, 0, 0x40, 0, 64, 17, 0, 0) // id, DF, TTL, UDP, checksum
	b = append(b, f.src.AsSlice()...)
	b = append(b, f.dst.AsSlice()...)
	binary.BigEndian.PutUint16(b[ip+10:], ^inetSum(b[ip:ip+20], 0))
	u := len(b)
	b = binary.BigEndian.AppendUint16(b, f.sport)
	b = binary.BigEndian.AppendUint16(b, f.dport)
	b = binary.BigEndian.AppendUint16(b, uint16(udpLen))
	b = append(b, 0, 0)
	b = append(b, f.payload...)
	pseudo := make([]byte, 0, 12)
	pseudo = append(pseudo, f.src.AsSlice()...)
	pseudo = append(pseudo, f.dst.AsSlice()...)
	pseudo = append(pseudo, 0, 17)
	pseudo = binary.BigEndian.AppendUint16(pseudo, uint16(udpLen))
	c := ^inetSum(b[u:], inetSum(pseudo, 0))
	if c == 0 {
		c = 0xffff
	}
	binary.BigEndian.PutUint16(b[u+6:], c)
	return b
}

// inetSum is the RFC 1071 ones'-complement sum, the slow obvious way.
func inetSum(b []byte, initial uint16) uint16 {
	s := uint32(initial)
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return uint16(s)
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
	var rx *ring.RX
	err := h.Do(func() error {
		ifi, err := net.InterfaceByName(h.Iface)
		if err != nil {
			return err
		}
		rx, err = ring.NewRX(ifi, cfg)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rx.Close() })
	return rx
}

// hostTX opens a Transmitter on the lab interface of h.
func hostTX(t testing.TB, h *lab.Host, cfg *ring.TXConfig) ring.Transmitter {
	t.Helper()
	var tx ring.Transmitter
	err := h.Do(func() error {
		ifi, err := net.InterfaceByName(h.Iface)
		if err != nil {
			return err
		}
		tx, err = ring.NewTransmitter(ifi, cfg)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tx.Close() })
	return tx
}

// sendFrames sends every frame through tx and flushes.
func sendFrames(t testing.TB, tx ring.Transmitter, frames ...[]byte) {
	t.Helper()
	for _, f := range frames {
		if err := ring.Send(context.Background(), tx, f); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Flush(); err != nil {
		t.Fatal(err)
	}
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
				t.Fatalf("received %d frames, want %d", len(out), want)
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

// versions runs f for each TPACKET version.
func versions(t *testing.T, f func(t *testing.T, v ring.Version)) {
	for _, v := range []ring.Version{ring.V2, ring.V3} {
		t.Run(v.String(), func(t *testing.T) { f(t, v) })
	}
}
