//go:build linux

package ring

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"

	"github.com/mdlayher/socket"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// Socket options that x/sys/unix names but that are collected here with
// the flags this package combines them with.
const (
	fanoutFlagRollover = 0x1000 // PACKET_FANOUT_FLAG_ROLLOVER
	fanoutFlagDefrag   = 0x8000 // PACKET_FANOUT_FLAG_DEFRAG
	soLockFilter       = 44     // SO_LOCK_FILTER
)

// packetSocket is an AF_PACKET socket in the making. Every step wraps its
// error as a *net.OpError naming the interface, with the system call in an
// *os.SyscallError inside.
type packetSocket struct {
	conn *socket.Conn
	addr *Addr
	op   string // "listen" or "dial", for errors
}

// openPacket creates a SOCK_RAW AF_PACKET socket with protocol 0, which
// receives nothing until it is bound with a real protocol: rings and
// filters are set up first, so no frame ever bypasses them.
func openPacket(op string, ifi *net.Interface) (*packetSocket, error) {
	if ifi == nil {
		return nil, &net.OpError{Op: op, Net: "packet", Err: errors.New("nil interface")}
	}
	ps := &packetSocket{addr: &Addr{Index: ifi.Index, Name: ifi.Name}, op: op}
	c, err := socket.Socket(unix.AF_PACKET, unix.SOCK_RAW, 0, "packet", nil)
	if err != nil {
		return nil, ps.wrap(err)
	}
	ps.conn = c
	return ps, nil
}

// wrap turns err into a *net.OpError and explains EPERM.
func (ps *packetSocket) wrap(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
		err = fmt.Errorf("%w (AF_PACKET sockets need CAP_NET_RAW)", err)
	}
	return &net.OpError{Op: ps.op, Net: "packet", Addr: ps.addr, Err: err}
}

func (ps *packetSocket) close() { ps.conn.Close() }

func (ps *packetSocket) setInt(name string, level, opt, v int) error {
	if err := ps.conn.SetsockoptInt(level, opt, v); err != nil {
		return ps.wrap(fmt.Errorf("%s: %w", name, err))
	}
	return nil
}

// control runs f with the raw descriptor, for the calls the Conn has no
// wrapper for (mmap, ring requests).
func (ps *packetSocket) control(f func(fd int) error) error {
	rc, err := ps.conn.SyscallConn()
	if err != nil {
		return ps.wrap(err)
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = f(int(fd)) }); err != nil {
		return ps.wrap(err)
	}
	return ps.wrap(ferr)
}

// mmap maps size bytes of the socket's rings.
func (ps *packetSocket) mmap(size int) ([]byte, error) {
	var mem []byte
	err := ps.control(func(fd int) error {
		var err error
		mem, err = unix.Mmap(fd, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
		return os.NewSyscallError("mmap", err)
	})
	return mem, err
}

// attachFilter attaches a classic BPF program, and locks it if asked.
func (ps *packetSocket) attachFilter(filter []bpf.RawInstruction, lock bool) error {
	if len(filter) > 0 {
		if err := ps.conn.SetBPF(filter); err != nil {
			return ps.wrap(fmt.Errorf("SO_ATTACH_FILTER: %w", err))
		}
	}
	if lock {
		return ps.setInt("SO_LOCK_FILTER", unix.SOL_SOCKET, soLockFilter, 1)
	}
	return nil
}

// bind binds to the interface and EtherType (host order; 0 receives
// nothing, which is what a transmit-only socket wants).
func (ps *packetSocket) bind(protocol uint16) error {
	sa := &unix.SockaddrLinklayer{Protocol: htons(protocol), Ifindex: ps.addr.Index}
	if err := ps.conn.Bind(sa); err != nil {
		return ps.wrap(err)
	}
	return nil
}

// joinFanout adds the socket to a fanout group. The kernel only accepts
// bound sockets.
func (ps *packetSocket) joinFanout(f *Fanout) error {
	mode := int(f.Type)
	if f.Rollover {
		mode |= fanoutFlagRollover
	}
	if f.Defrag {
		mode |= fanoutFlagDefrag
	}
	return ps.setInt("PACKET_FANOUT", unix.SOL_PACKET, unix.PACKET_FANOUT, int(f.GroupID)|mode<<16)
}

// promiscuous adds a PACKET_MR_PROMISC membership.
func (ps *packetSocket) promiscuous() error {
	mreq := &unix.PacketMreq{Ifindex: int32(ps.addr.Index), Type: unix.PACKET_MR_PROMISC}
	if err := ps.conn.SetsockoptPacketMreq(unix.SOL_PACKET, unix.PACKET_ADD_MEMBERSHIP, mreq); err != nil {
		return ps.wrap(fmt.Errorf("PACKET_ADD_MEMBERSHIP: %w", err))
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
