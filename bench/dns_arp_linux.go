//go:build linux

package bench

import (
	"errors"
	"net"
	"net/netip"

	"github.com/mdlayher/packet"
	"golang.org/x/sys/unix"

	"github.com/pktengine/pktengine/frame"
)

// arpResponder answers ARP requests for the generator's source address
// with the generator's MAC, as the host the generator plays would. The
// kernel servers and the engine's inline handler answer a query to the
// MAC it came from (or the static neighbour entry of the lab); dnsd's conn
// mode sends its answers through the engine's Conn, which resolves next
// hops itself, with ARP.
type arpResponder struct {
	c    *packet.Conn
	done chan struct{}
}

func startARPResponder(ifi *net.Interface, ip netip.Addr, mac frame.MAC) (*arpResponder, error) {
	c, err := packet.Listen(ifi, packet.Raw, unix.ETH_P_ARP, nil)
	if err != nil {
		return nil, err
	}
	r := &arpResponder{c: c, done: make(chan struct{})}
	go r.serve(ip, mac)
	return r, nil
}

func (r *arpResponder) serve(ip netip.Addr, mac frame.MAC) {
	defer close(r.done)
	buf := make([]byte, 1514)
	out := make([]byte, frame.EthernetMinFrameLen)
	for {
		n, _, err := r.c.ReadFrom(buf)
		if err != nil {
			return // closed
		}
		if n < frame.EthernetHeaderLen+frame.ARPLen {
			continue
		}
		a := frame.ARP(buf[frame.EthernetHeaderLen:n])
		if !a.IsValid() || a.Op() != frame.ARPRequest || a.TargetIP() != ip {
			continue
		}
		m, err := frame.BuildARP(out, &frame.ARPSpec{Op: frame.ARPReply, SenderMAC: mac, SenderIP: ip, TargetMAC: a.SenderMAC(), TargetIP: a.SenderIP()})
		if err != nil {
			continue
		}
		m = frame.PadEthernet(out, m)
		to := a.SenderMAC()
		r.c.WriteTo(out[:m], &packet.Addr{HardwareAddr: net.HardwareAddr(to[:])})
	}
}

func (r *arpResponder) Close() error {
	err := r.c.Close()
	<-r.done
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}
