package main

import (
	"context"
	"fmt"
	"io"
	"math/bits"
	"net/netip"
	"strconv"
	"strings"

	"github.com/pktengine/pktengine/bpf"
)

// runFilter prints the program for an expression the way tcpdump's -d, -dd
// and -ddd flags do, so its output can be compared with tcpdump's or pasted
// where a classic BPF program is expected.
func runFilter(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("filter", "[-d|-dd|-ddd] [-vlan ancillary|packet] [-netmask MASK] [--] EXPR", stderr)
	d := fs.Bool("d", false, "print the program in human-readable form (the default)")
	dd := fs.Bool("dd", false, "print the program as a C array")
	ddd := fs.Bool("ddd", false, "print the program as decimal numbers, preceded by its length")
	vlan := fs.String("vlan", "ancillary", "how `vlan` tests tags: ancillary (AF_PACKET strips tags, the live default) or packet (tags in the frame, as tcpdump -y EN10MB on a file)")
	netmask := fs.String("netmask", "", "IPv4 netmask (255.255.255.0 or /24) for \"ip broadcast\", which tcpdump takes from the capture interface")
	if err := parseFlagsArgs(fs, args); err != nil {
		return err
	}
	expr := strings.Join(fs.Args(), " ")
	opts := &bpf.Options{}
	if *netmask != "" {
		m, err := parseNetmask(*netmask)
		if err != nil {
			return err
		}
		opts.Netmask = m
	}
	switch *vlan {
	case "ancillary":
		opts.VLAN = bpf.VLANAncillary
	case "packet":
		opts.VLAN = bpf.VLANInPacket
	default:
		return fmt.Errorf("-vlan %q: want ancillary or packet", *vlan)
	}
	prog, err := bpf.CompileRaw(expr, opts)
	if err != nil {
		return err
	}
	switch {
	case *ddd:
		return bpf.FormatDDD(stdout, prog)
	case *dd:
		return bpf.FormatDD(stdout, prog)
	default:
		_ = d
		return bpf.FormatD(stdout, prog)
	}
}

// parseNetmask reads a dotted IPv4 netmask or a prefix length (/24 or 24).
func parseNetmask(s string) (netip.Addr, error) {
	var m uint32
	if n, err := strconv.Atoi(strings.TrimPrefix(s, "/")); err == nil {
		if n < 0 || n > 32 {
			return netip.Addr{}, fmt.Errorf("-netmask %q: a prefix length is 0 to 32", s)
		}
		if n > 0 {
			m = ^uint32(0) << (32 - n)
		}
	} else {
		a, err := netip.ParseAddr(s)
		if err != nil || !a.Is4() {
			return netip.Addr{}, fmt.Errorf("-netmask %q: want a dotted IPv4 mask (255.255.255.0) or a prefix length", s)
		}
		b := a.As4()
		m = uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
		if m != 0 && m != ^uint32(0)<<bits.TrailingZeros32(m) {
			return netip.Addr{}, fmt.Errorf("-netmask %q: the ones of a netmask are contiguous", s)
		}
	}
	return netip.AddrFrom4([4]byte{byte(m >> 24), byte(m >> 16), byte(m >> 8), byte(m)}), nil
}
