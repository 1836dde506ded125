//go:build linux

package ring

import (
	"errors"
	"net"
	"os"

	xbpf "golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/pktengine/pktengine/proto"
)

// testHookListened, when set by a test, runs in open between
// packet.Listen and the ring's setup: frames sent then must never show.
var testHookListened func()

// open sets up the socket in the order NewRX describes.
func (r *RX) open(ifi *net.Interface, c *RXConfig, g *rxGeom) error {
	ps, err := listenPacket("listen", ifi, c.Filter)
	if err != nil {
		return err
	}
	if testHookListened != nil {
		testHookListened()
	}
	if err := r.setup(ps, c, g); err != nil {
		ps.abandon()
		return err
	}
	r.conn, r.rc, r.addr, r.mem = ps.conn, ps.rc, ps.addr, ps.mem
	return nil
}

func (r *RX) setup(ps *packetSocket, c *RXConfig, g *rxGeom) error {
	version := unix.TPACKET_V2
	if g.v3 {
		version = unix.TPACKET_V3
	}
	if err := ps.mapRing(version, unix.PACKET_RX_RING, &g.layout, g.retireMs); err != nil {
		return err
	}
	if c.LockFilter {
		if err := ps.setInt("SO_LOCK_FILTER", unix.SOL_SOCKET, unix.SO_LOCK_FILTER, 1); err != nil {
			return err
		}
	}
	if c.IgnoreOutgoing {
		if err := ps.setInt("PACKET_IGNORE_OUTGOING", unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1); err != nil {
			return err
		}
	}
	protocol := c.Protocol
	if protocol == 0 {
		protocol = proto.EtherTypeAll
	}
	if err := ps.bind(protocol); err != nil {
		return err
	}
	if c.Fanout != nil {
		id, err := ps.joinFanout(c.Fanout)
		if err != nil {
			return err
		}
		r.fanoutID, r.fanoutJoined = id, true
	}
	if c.Promiscuous {
		return ps.promiscuous()
	}
	return nil
}

// setFilter attaches filter with package packet, or detaches the filter
// when there is none.
func (r *RX) setFilter(filter []xbpf.RawInstruction) error {
	if len(filter) > 0 {
		return r.conn.SetBPF(filter)
	}
	var err error
	cerr := r.rc.Control(func(fd uintptr) {
		err = os.NewSyscallError("setsockopt SO_DETACH_FILTER", unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_DETACH_FILTER, 0))
	})
	return errors.Join(cerr, err)
}

func unmap(mem []byte) error { return os.NewSyscallError("munmap", unix.Munmap(mem)) }
