//go:build !linux

package main

import (
	"errors"
	"net/netip"
)

// kernelNextHop needs Linux's rtnetlink; elsewhere give --gateway.
func kernelNextHop(netip.Addr) (netip.Addr, error) {
	return netip.Addr{}, errors.New("reading the kernel's routes needs Linux")
}
