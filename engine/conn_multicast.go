package engine

import (
	"net"
	"net/netip"
	"os"
	"syscall"
)

// Multicast on a Conn: the group-membership methods of x/net/ipv4's and
// x/net/ipv6's PacketConn, with their signatures, so that code that joins
// groups on a kernel socket through them does the same on a Conn. They
// are Port's (multicast.go) under the hood; see Port.JoinGroup for what a
// membership does and how datagrams to groups are delivered.
//
// ifi is nil or the engine's own interface: a Conn lives on one
// interface, so another is ENODEV. group and source are *net.UDPAddr or
// *net.IPAddr (the port, if any, is ignored). Errors are *net.OpError
// with Op "set" naming the group, as the kernel socket's are.

// JoinGroup joins group from any source (IP_ADD_MEMBERSHIP,
// IPV6_JOIN_GROUP; see Port.JoinGroup).
func (c *Conn) JoinGroup(ifi *net.Interface, group net.Addr) error {
	return c.membership(ifi, group, nil, joinAny)
}

// LeaveGroup leaves group, whatever the membership's sources.
func (c *Conn) LeaveGroup(ifi *net.Interface, group net.Addr) error {
	return c.membership(ifi, group, nil, leaveAny)
}

// JoinSourceSpecificGroup joins group from source, or adds source to a
// source-specific membership (see Port.JoinSourceGroup).
func (c *Conn) JoinSourceSpecificGroup(ifi *net.Interface, group, source net.Addr) error {
	return c.membership(ifi, group, source, joinSource)
}

// LeaveSourceSpecificGroup removes source from a source-specific
// membership, leaving the group with its last source.
func (c *Conn) LeaveSourceSpecificGroup(ifi *net.Interface, group, source net.Addr) error {
	return c.membership(ifi, group, source, leaveSource)
}

// ExcludeSourceSpecificGroup blocks source on an any-source membership
// (see Port.BlockSource).
func (c *Conn) ExcludeSourceSpecificGroup(ifi *net.Interface, group, source net.Addr) error {
	return c.membership(ifi, group, source, blockSource)
}

// IncludeSourceSpecificGroup unblocks source (Port.UnblockSource).
func (c *Conn) IncludeSourceSpecificGroup(ifi *net.Interface, group, source net.Addr) error {
	return c.membership(ifi, group, source, unblockSource)
}

var errOtherInterface = os.NewSyscallError("setsockopt", syscall.ENODEV)

func (c *Conn) membership(ifi *net.Interface, group, source net.Addr, edit membershipEdit) error {
	if c.isClosed() {
		return c.opError("set", group, net.ErrClosed)
	}
	if ifi != nil && ifi.Index != c.p.e.ifi.Index {
		return c.opError("set", group, errOtherInterface)
	}
	g, ok := ipOf(group)
	if !ok {
		return c.opError("set", group, errNotGroup)
	}
	var s netip.Addr
	if source != nil {
		if s, ok = ipOf(source); !ok {
			return c.opError("set", group, errNotGroup)
		}
	}
	if err := c.p.changeMembership(g, s, edit); err != nil {
		return c.opError("set", group, err)
	}
	return nil
}

// ipOf returns the IP address of a *net.UDPAddr or *net.IPAddr.
func ipOf(a net.Addr) (netip.Addr, bool) {
	var ip net.IP
	switch a := a.(type) {
	case *net.UDPAddr:
		if a != nil {
			ip = a.IP
		}
	case *net.IPAddr:
		if a != nil {
			ip = a.IP
		}
	}
	addr, ok := netip.AddrFromSlice(ip)
	return addr.Unmap(), ok
}
