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
	r.conn, r.rc, r.addr = ps.conn, ps.rc, ps.addr
	if testHookListened != nil {
		testHookListened()
	}
	ok := false
	defer func() {
		if !ok {
			ps.close()
			if r.mem != nil {
				unix.Munmap(r.mem)
			}
		}
	}()

	if err := r.setupRing(ps, g); err != nil {
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
		if r.fanoutID, err = ps.joinFanout(c.Fanout); err != nil {
			return err
		}
		r.fanoutJoined = true
	}
	if c.Promiscuous {
		if err := ps.promiscuous(); err != nil {
			return err
		}
	}
	ok = true
	return nil
}

// setupRing selects the TPACKET version, requests the ring and maps it.
func (r *RX) setupRing(ps *packetSocket, g *rxGeom) error {
	ver := unix.TPACKET_V2
	if g.v3 {
		ver = unix.TPACKET_V3
	}
	if err := ps.setInt("PACKET_VERSION", unix.SOL_PACKET, unix.PACKET_VERSION, ver); err != nil {
		return err
	}
	err := ps.control(func(fd int) error {
		if g.v3 {
			req := unix.TpacketReq3{
				Block_size:     uint32(g.blockSize),
				Block_nr:       uint32(g.blockNr),
				Frame_size:     uint32(g.frameSize),
				Frame_nr:       uint32(g.frameNr),
				Retire_blk_tov: uint32(g.retireMs),
			}
			return os.NewSyscallError("setsockopt PACKET_RX_RING", unix.SetsockoptTpacketReq3(fd, unix.SOL_PACKET, unix.PACKET_RX_RING, &req))
		}
		req := unix.TpacketReq{
			Block_size: uint32(g.blockSize),
			Block_nr:   uint32(g.blockNr),
			Frame_size: uint32(g.frameSize),
			Frame_nr:   uint32(g.frameNr),
		}
		return os.NewSyscallError("setsockopt PACKET_RX_RING", unix.SetsockoptTpacketReq(fd, unix.SOL_PACKET, unix.PACKET_RX_RING, &req))
	})
	if err != nil {
		return err
	}
	r.mem, err = ps.mmap(g.mapSize)
	return err
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
