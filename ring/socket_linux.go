//go:build linux

package ring

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"

	"github.com/mdlayher/packet"
	xbpf "golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// packetSocket is an AF_PACKET socket in the making. Every step wraps its
// error as a *net.OpError naming the interface, with the system call in an
// *os.SyscallError inside.
type packetSocket struct {
	conn *packet.Conn
	rc   syscall.RawConn
	addr *Addr
	op   string // "listen" or "dial", for errors
	mem  []byte // the ring's mapping, once mapRing made it
}

// listenPacket opens a SOCK_RAW AF_PACKET socket on ifi with
// packet.Listen, which attaches filter (if any) and binds to the interface
// with protocol 0. Bound to protocol 0 the socket receives nothing, so the
// rings and options are set up before bind gives it a real protocol and
// the first frame arrives.
func listenPacket(op string, ifi *net.Interface, filter []xbpf.RawInstruction) (*packetSocket, error) {
	if ifi == nil {
		return nil, &net.OpError{Op: op, Net: "packet", Err: errors.New("nil interface")}
	}
	ps := &packetSocket{addr: &Addr{Index: ifi.Index, Name: ifi.Name}, op: op}
	c, err := packet.Listen(ifi, packet.Raw, 0, &packet.Config{Filter: filter})
	if err != nil {
		return nil, ps.wrap(err)
	}
	ps.conn = c
	if ps.rc, err = c.SyscallConn(); err != nil {
		c.Close()
		return nil, ps.wrap(err)
	}
	return ps, nil
}

// wrap turns err into a *net.OpError naming the interface and explains
// EPERM.
func (ps *packetSocket) wrap(err error) error { return ps.wrapOp(ps.op, err) }

// wrapOp is wrap for another operation than the socket's opening. A
// *net.OpError from package packet, which names the hardware address, is
// replaced.
func (ps *packetSocket) wrapOp(op string, err error) error {
	if err == nil {
		return nil
	}
	err = unwrapOp(err)
	if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
		err = fmt.Errorf("%w (AF_PACKET sockets need CAP_NET_RAW)", err)
	}
	return opError(op, ps.addr, err)
}

// abandon closes a socket whose setup failed, and unmaps its ring.
func (ps *packetSocket) abandon() {
	ps.conn.Close()
	if ps.mem != nil {
		unix.Munmap(ps.mem)
	}
}

// control runs f with the raw descriptor, for the calls package packet has
// no wrapper for (socket options, mmap, bind).
func (ps *packetSocket) control(f func(fd int) error) error {
	var ferr error
	if err := ps.rc.Control(func(fd uintptr) { ferr = f(int(fd)) }); err != nil {
		return ps.wrap(err)
	}
	return ps.wrap(ferr)
}

func (ps *packetSocket) setInt(name string, level, opt, v int) error {
	return ps.control(func(fd int) error {
		return os.NewSyscallError("setsockopt "+name, unix.SetsockoptInt(fd, level, opt, v))
	})
}

// mapRing selects the TPACKET version, requests a ring (opt is
// PACKET_RX_RING or PACKET_TX_RING) laid out as l and maps it into
// ps.mem. The request is a struct tpacket_req3 whatever the version: for
// V2 the kernel reads only its first four fields, which are struct
// tpacket_req.
func (ps *packetSocket) mapRing(version, opt int, l *ringLayout, retireMs int) error {
	if err := ps.setInt("PACKET_VERSION", unix.SOL_PACKET, unix.PACKET_VERSION, version); err != nil {
		return err
	}
	req := unix.TpacketReq3{
		Block_size:     uint32(l.blockSize),
		Block_nr:       uint32(l.blockNr),
		Frame_size:     uint32(l.frameSize),
		Frame_nr:       uint32(l.frameNr),
		Retire_blk_tov: uint32(retireMs),
	}
	name := map[int]string{unix.PACKET_RX_RING: "PACKET_RX_RING", unix.PACKET_TX_RING: "PACKET_TX_RING"}[opt]
	return ps.control(func(fd int) error {
		if err := unix.SetsockoptTpacketReq3(fd, unix.SOL_PACKET, opt, &req); err != nil {
			return os.NewSyscallError("setsockopt "+name, err)
		}
		mem, err := unix.Mmap(fd, 0, l.size(), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
		ps.mem = mem
		return os.NewSyscallError("mmap", err)
	})
}

// bind binds the socket, again, to its interface and an EtherType (host
// order), from which moment frames arrive.
func (ps *packetSocket) bind(protocol uint16) error {
	sa := &unix.SockaddrLinklayer{Protocol: htons(protocol), Ifindex: ps.addr.Index}
	return ps.control(func(fd int) error { return os.NewSyscallError("bind", unix.Bind(fd, sa)) })
}

// joinFanout adds the socket to a fanout group and returns the group's
// ID: f.GroupID, or the one the kernel picked for f.UniqueID, which
// getsockopt(PACKET_FANOUT) reports in its low 16 bits. The kernel only
// accepts bound sockets.
func (ps *packetSocket) joinFanout(f *Fanout) (uint16, error) {
	mode := int(f.Type)
	if f.Rollover {
		mode |= unix.PACKET_FANOUT_FLAG_ROLLOVER
	}
	if f.Defrag {
		mode |= unix.PACKET_FANOUT_FLAG_DEFRAG
	}
	if f.UniqueID {
		mode |= unix.PACKET_FANOUT_FLAG_UNIQUEID
	}
	if err := ps.setInt("PACKET_FANOUT", unix.SOL_PACKET, unix.PACKET_FANOUT, int(f.GroupID)|mode<<16); err != nil {
		return 0, err
	}
	if !f.UniqueID {
		return f.GroupID, nil
	}
	var v int
	err := ps.control(func(fd int) error {
		var err error
		v, err = unix.GetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_FANOUT)
		return os.NewSyscallError("getsockopt PACKET_FANOUT", err)
	})
	return uint16(v), err
}

// promiscuous adds a PACKET_MR_PROMISC membership.
func (ps *packetSocket) promiscuous() error {
	if err := ps.conn.SetPromiscuous(true); err != nil {
		return ps.wrap(err)
	}
	return nil
}

// htons puts v in network byte order as the kernel reads a __be16 field
// from host memory.
func htons(v uint16) uint16 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], v)
	return native.Uint16(b[:])
}
