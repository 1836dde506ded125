package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/pktengine/pktengine/bpf"
)

// runFilter prints the program for an expression the way tcpdump's -d, -dd
// and -ddd flags do, so its output can be compared with tcpdump's or pasted
// where a classic BPF program is expected.
func runFilter(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("filter", "[-d|-dd|-ddd] [-vlan ancillary|packet] EXPR", stderr)
	d := fs.Bool("d", false, "print the program in human-readable form (the default)")
	dd := fs.Bool("dd", false, "print the program as a C array")
	ddd := fs.Bool("ddd", false, "print the program as decimal numbers, preceded by its length")
	vlan := fs.String("vlan", "ancillary", "how `vlan` tests tags: ancillary (AF_PACKET strips tags, the live default) or packet (tags in the frame, as tcpdump -y EN10MB on a file)")
	if err := parseFlagsArgs(fs, args); err != nil {
		return err
	}
	expr := strings.Join(fs.Args(), " ")
	opts := &bpf.Options{}
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
