package frame_test

import (
	"bytes"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/pktengine/pktengine/frame"
	"github.com/pktengine/pktengine/internal/lab"
	"github.com/pktengine/pktengine/internal/labtest"
	"github.com/pktengine/pktengine/ring"
)

// TestFragmentsToKernel sends UDP datagrams of 1,473 to 65,507 bytes (and
// 65,527 over IPv6), fragmented by frame.UDPFragmenter for the lab's MTU
// of 1500, through a TPACKET TX ring in one namespace to a kernel UDP
// socket in the other, which must receive every datagram whole: the
// kernel reassembles them, checks the UDP checksum over the whole
// datagram, and counts one ReasmOKs per datagram.
func TestFragmentsToKernel(t *testing.T) {
	l := labtest.New(t, nil)
	a, b := l.A(), l.B()
	tx := labtest.Open(t, a, func(ifi *net.Interface) (ring.Transmitter, error) {
		return ring.NewTransmitter(ifi, &ring.TXConfig{FrameCount: 256})
	})
	ids := frame.NewFragmentIDs()

	for _, fam := range []struct {
		name      string
		src, dst  netip.Addr
		sizes     []int
		snmp, key string
	}{
		{"udp4", a.IPv4.Addr(), b.IPv4.Addr(), []int{1473, 1480, 1481, 2952, 2953, 8192, 16001, 32768, 65000, frame.MaxUDPPayloadIPv4}, "snmp", "Ip:ReasmOKs"},
		{"udp6", a.IPv6.Addr(), b.IPv6.Addr(), []int{1453, 1473, 1500, 8192, 30000, frame.MaxUDPPayloadIPv4, frame.MaxUDPPayloadIPv6}, "snmp6", "Ip6ReasmOKs"},
	} {
		t.Run(fam.name, func(t *testing.T) {
			ln, err := b.ListenUDP(fam.name, &net.UDPAddr{IP: fam.dst.AsSlice(), Port: 7007})
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			before := kernelCounter(t, b, fam.snmp, fam.key)
			rbuf := make([]byte, 70000)
			var f frame.UDPFragmenter
			for k, n := range fam.sizes {
				s := &frame.UDPSpec{
					SrcMAC: frame.MAC(a.MAC), DstMAC: frame.MAC(b.MAC),
					Src: netip.AddrPortFrom(fam.src, 40000), Dst: netip.AddrPortFrom(fam.dst, 7007),
					Payload: make([]byte, n),
				}
				for i := range s.Payload {
					s.Payload[i] = byte(i*13 + k)
				}
				id := ids.Next(fam.src, fam.dst)
				s.ID = uint16(id)
				if err := f.Reset(s, 1500, id); err != nil {
					t.Fatal(err)
				}
				if !f.Fragmented() {
					t.Fatalf("%d bytes not fragmented", n)
				}
				labtest.SendBuilt(t, tx, f.Fragments(), f.Build)
				ln.SetReadDeadline(time.Now().Add(5 * time.Second))
				got, from, err := ln.ReadFromUDPAddrPort(rbuf)
				if err != nil {
					t.Fatalf("%d bytes in %d fragments: nothing received (%v); tx %+v", n, f.Fragments(), err, tx.Stats())
				}
				if got != n || !bytes.Equal(rbuf[:got], s.Payload) || from.Addr().Unmap() != fam.src || from.Port() != 40000 {
					t.Fatalf("%d bytes sent, %d received from %v", n, got, from)
				}
			}
			if d := kernelCounter(t, b, fam.snmp, fam.key) - before; d != uint64(len(fam.sizes)) {
				t.Errorf("%s rose by %d, want %d", fam.key, d, len(fam.sizes))
			}
		})
	}
	if st := tx.Stats(); st.WrongFormat != 0 {
		t.Errorf("tx %+v", st)
	}
}

// kernelCounter reads one counter of a host's /proc/net/snmp ("Ip:Name"),
// netstat ("IpExt:Name") or snmp6 ("Ip6Name").
func kernelCounter(t testing.TB, h *lab.Host, file, name string) uint64 {
	t.Helper()
	c, err := h.NetCounters(file)
	if err != nil {
		t.Fatal(err)
	}
	v, ok := c[name]
	if !ok {
		t.Fatalf("no %s in %s", name, file)
	}
	return v
}
