//go:build linux

package engine

import (
	"os"

	"golang.org/x/sys/unix"

	"github.com/pktengine/pktengine/frame"
)

// startMulticast gives the engine's multicast state what only the
// platform knows, the interface's link-local address (the source of MLD
// reports) and a socket to hold the groups' MAC addresses on the
// interface, then joins the engine's own groups.
func (e *Engine) startMulticast() error {
	if onIface, _, err := kernelAddrs(e.ifi); err == nil && !e.mcast.src6.IsLinkLocalUnicast() {
		for _, p := range onIface {
			if p.Addr().Is6() && p.Addr().IsLinkLocalUnicast() {
				e.mcast.src6 = p.Addr()
				break
			}
		}
	}
	link, err := openPacketMembership(e.ifi.Index)
	if err != nil {
		return err
	}
	if err := e.mcast.start(e.ctx, link); err != nil {
		return err
	}
	return nil
}

// packetMembership holds Ethernet multicast addresses on an interface's
// list, as a kernel socket's join adds its group's address (dev_mc_add):
// PACKET_ADD_MEMBERSHIP with PACKET_MR_MULTICAST on a packet socket of
// its own, opened with protocol 0 so that it never receives a frame. The
// kernel counts the memberships per device, so the addresses the kernel's
// own groups need stay; they all go when the socket closes.
type packetMembership struct {
	fd      int
	ifindex int
}

func openPacketMembership(ifindex int) (*packetMembership, error) {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	return &packetMembership{fd: fd, ifindex: ifindex}, nil
}

func (pm *packetMembership) set(opt int, mac frame.MAC) error {
	mr := unix.PacketMreq{Ifindex: int32(pm.ifindex), Type: unix.PACKET_MR_MULTICAST, Alen: uint16(len(mac))}
	copy(mr.Address[:], mac[:])
	return unix.SetsockoptPacketMreq(pm.fd, unix.SOL_PACKET, opt, &mr)
}

func (pm *packetMembership) add(mac frame.MAC) error {
	return os.NewSyscallError("setsockopt PACKET_ADD_MEMBERSHIP", pm.set(unix.PACKET_ADD_MEMBERSHIP, mac))
}

func (pm *packetMembership) drop(mac frame.MAC) error {
	return os.NewSyscallError("setsockopt PACKET_DROP_MEMBERSHIP", pm.set(unix.PACKET_DROP_MEMBERSHIP, mac))
}

func (pm *packetMembership) Close() error { return os.NewSyscallError("close", unix.Close(pm.fd)) }
