package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"github.com/pktengine/pktengine/loadgen"
)

func runGen(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("gen", "--iface IF --dst ADDR:PORT [--src ADDR[:PORT]] [--rate N|max] [--size N] [--flows N] [--duration D] [--backend tpacket|xdp|live] [--json]", stderr)
	iface := fs.String("iface", "", "interface to send on (required)")
	dst := fs.String("dst", "", "destination `ADDR:PORT` (required; [ADDR6]:PORT for IPv6)")
	src := fs.String("src", "", "source `ADDR[:PORT]` of the first flow (default: the interface's address, port 61000)")
	rate := fs.String("rate", "max", "offered rate in frames/s over all workers (250k, 1.5M), or max")
	size := fs.String("size", "64", "Ethernet frame size with FCS, 64-1518 (RFC 2544 sizes: 64 128 256 512 1024 1280 1518), or min/max")
	flows := fs.Int("flows", 1, "flows to cycle through (consecutive source ports)")
	duration := fs.Duration("duration", 10*time.Second, "how long to send (0: until interrupted or --count)")
	count := fs.Uint64("count", 0, "stop after this many frames (0: no limit)")
	workers := fs.Int("workers", 1, "sending goroutines, each with its own TX ring (AF_XDP socket, live sender)")
	backend := fs.String("backend", "tpacket", "how frames leave: tpacket (PACKET_TX_RING), xdp (AF_XDP TX ring from UMEM: worker i takes queue i) or live (BPF_PROG_RUN live frames: source ports vary only; on veth the peer needs an XDP program for the frames to arrive)")
	sendOnly := fs.Bool("send-only", false, "do not count replies")
	asJSON := fs.Bool("json", false, "print the summary as JSON")
	progress := fs.Bool("progress", isTerminal(stderr), "print a progress line each second (default: when stderr is a terminal)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *iface == "" || *dst == "" {
		return badUsage(fs, "--iface and --dst are required")
	}
	ifi, err := net.InterfaceByName(*iface)
	if err != nil {
		return fmt.Errorf("no such interface %q in this network namespace: %w", *iface, err)
	}
	b, ok := loadgen.ParseBackend(*backend)
	if !ok {
		return badUsage(fs, "--backend %q: want tpacket, xdp or live", *backend)
	}
	cfg := &loadgen.Config{Workers: *workers, SendOnly: *sendOnly, Backend: b}
	if cfg.Dst, err = loadgen.ParseEndpoint(*dst); err != nil {
		return fmt.Errorf("--dst: %w", err)
	}
	if cfg.Dst.Port() == 0 {
		return fmt.Errorf("--dst %s: a port is required", *dst)
	}
	if *src != "" {
		if cfg.Src, err = loadgen.ParseEndpoint(*src); err != nil {
			return fmt.Errorf("--src: %w", err)
		}
	}
	if cfg.Rate, err = loadgen.ParseRate(*rate); err != nil {
		return fmt.Errorf("--rate: %w", err)
	}
	if cfg.Size, err = loadgen.ParseSize(*size, cfg.Dst.Addr().Is6()); err != nil {
		return fmt.Errorf("--size: %w", err)
	}
	cfg.Flows, cfg.Duration, cfg.Count = *flows, *duration, *count

	var report func(loadgen.Progress)
	if *progress {
		report = func(p loadgen.Progress) { fmt.Fprintln(stderr, p.String()) }
	}
	sum, err := loadgen.Run(ctx, ifi, cfg, report)
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(stdout, sum)
	}
	_, err = fmt.Fprintln(stdout, sum.String())
	return err
}

// isTerminal reports whether w is a character device, as a terminal is.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
