package loadgen

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// ParseRate parses a rate in frames per second for a command line:
// "max" (or "0") for as fast as possible, else a number with an optional
// k, M or G suffix ("250k", "1.5M").
func ParseRate(s string) (float64, error) {
	if s == "max" {
		return 0, nil
	}
	mult := 1.0
	switch {
	case strings.HasSuffix(s, "k"):
		mult, s = 1e3, s[:len(s)-1]
	case strings.HasSuffix(s, "M"):
		mult, s = 1e6, s[:len(s)-1]
	case strings.HasSuffix(s, "G"):
		mult, s = 1e9, s[:len(s)-1]
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v < 0 || v*mult > 1e10 {
		return 0, fmt.Errorf("loadgen: bad rate %q: want max or frames per second such as 250k", s)
	}
	return v * mult, nil
}

// ParseSize parses a frame size for a command line: bytes with FCS, or
// "min" (the smallest the family allows: 64 for IPv4, 84 for IPv6) and
// "max" (1518, a full frame of a 1500-byte MTU).
func ParseSize(s string, ipv6 bool) (int, error) {
	switch s {
	case "min":
		return MinSize(ipv6, 0), nil
	case "max":
		return MaxSize(1500, 0), nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < MinSize(ipv6, 0) || n > 65535 {
		return 0, fmt.Errorf("loadgen: bad frame size %q: want %d to 65535 bytes (with FCS), min or max", s, MinSize(ipv6, 0))
	}
	return n, nil
}

// ParseEndpoint parses "ADDR", "ADDR:PORT" or "[ADDR6]:PORT". A missing
// port is 0.
func ParseEndpoint(s string) (netip.AddrPort, error) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap, nil
	}
	a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]"))
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("loadgen: bad address %q: want ADDR, ADDR:PORT or [ADDR6]:PORT", s)
	}
	return netip.AddrPortFrom(a, 0), nil
}
