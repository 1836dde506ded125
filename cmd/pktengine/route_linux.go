package main

import (
	"errors"
	"net/netip"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// kernelNextHop returns where the kernel's main routing table sends a
// datagram to dst: the router of the longest matching route, or dst itself
// for a route without one (on a link of the kernel's). It reads the table
// with an rtnetlink dump in the current network namespace.
func kernelNextHop(dst netip.Addr) (netip.Addr, error) {
	family := unix.AF_INET
	if dst.Is6() {
		family = unix.AF_INET6
	}
	b, err := syscall.NetlinkRIB(unix.RTM_GETROUTE, family)
	if err != nil {
		return netip.Addr{}, os.NewSyscallError("netlink", err)
	}
	msgs, err := syscall.ParseNetlinkMessage(b)
	if err != nil {
		return netip.Addr{}, os.NewSyscallError("netlink", err)
	}
	best, found := -1, false
	var hop netip.Addr
	for i := range msgs {
		m := &msgs[i]
		if m.Header.Type != unix.RTM_NEWROUTE || len(m.Data) < unix.SizeofRtMsg {
			continue
		}
		// struct rtmsg: family, dst_len, src_len, tos, table, protocol,
		// scope, type, flags.
		rtFamily, dstLen, rtTable, rtType := m.Data[0], m.Data[1], m.Data[4], m.Data[7]
		if rtType != unix.RTN_UNICAST || int(rtFamily) != family {
			continue
		}
		attrs, err := syscall.ParseNetlinkRouteAttr(m)
		if err != nil {
			continue
		}
		table := uint32(rtTable)
		prefix := netip.PrefixFrom(netip.IPv6Unspecified(), 0)
		if family == unix.AF_INET {
			prefix = netip.PrefixFrom(netip.IPv4Unspecified(), 0)
		}
		var gw netip.Addr
		for _, a := range attrs {
			switch a.Attr.Type {
			case unix.RTA_TABLE:
				if len(a.Value) >= 4 {
					table = uint32(a.Value[0]) | uint32(a.Value[1])<<8 | uint32(a.Value[2])<<16 | uint32(a.Value[3])<<24
				}
			case unix.RTA_DST:
				if ip, ok := netip.AddrFromSlice(a.Value); ok {
					prefix = netip.PrefixFrom(ip, int(dstLen))
				}
			case unix.RTA_GATEWAY:
				gw, _ = netip.AddrFromSlice(a.Value)
			}
		}
		if table != unix.RT_TABLE_MAIN || !prefix.Contains(dst) || prefix.Bits() <= best {
			continue
		}
		best, found, hop = prefix.Bits(), true, gw
	}
	if !found {
		return netip.Addr{}, errors.New("the kernel has no route either")
	}
	if !hop.IsValid() {
		return dst, nil
	}
	return hop, nil
}
