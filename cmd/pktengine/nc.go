package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/pktengine/pktengine/engine"
	"github.com/pktengine/pktengine/frame"
)

// ncStdin is what nc sends; tests replace it.
var ncStdin io.Reader = os.Stdin

type ncFlags struct {
	iface   string
	addrs   prefixList
	gateway string
	lines   bool
	wait    time.Duration
	verbose bool
}

// runNC is `pktengine nc`: a UDP client on an engine port, to see the
// engine from the sending side. It sends standard input as one datagram
// (or one per line), prints every reply's payload, waits a while after
// the last send, and reports an ICMP error as a kernel socket would.
func runNC(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var f ncFlags
	fs := newFlagSet("nc", "--iface IF [--addr ADDR] [--gateway IP] [--lines] [--wait D] HOST:PORT", stderr)
	fs.StringVar(&f.iface, "iface", "", "interface to send on (required)")
	fs.Var(&f.addrs, "addr", "address (or prefix) to send from; repeatable. Default: the interface's own addresses")
	fs.StringVar(&f.gateway, "gateway", "", "router for a HOST outside the engine's prefixes. Default: the kernel's route to HOST")
	fs.BoolVar(&f.lines, "lines", false, "send each line of standard input (with its newline) as a datagram of its own")
	fs.DurationVar(&f.wait, "wait", 2*time.Second, "how long to wait for replies after the last send")
	fs.BoolVar(&f.verbose, "v", false, "log engine events to stderr")
	if err := parseFlagsArgs(fs, args); err != nil {
		return err
	}
	if f.iface == "" {
		return badUsage(fs, "--iface is required")
	}
	if fs.NArg() != 1 {
		return badUsage(fs, "want one HOST:PORT")
	}
	if f.wait < 0 {
		return badUsage(fs, "--wait must not be negative")
	}
	dst, err := resolveHostPort(ctx, fs.Arg(0))
	if err != nil {
		return err
	}
	var gw netip.Addr
	if f.gateway != "" {
		if gw, err = netip.ParseAddr(f.gateway); err != nil || gw.Is4() != dst.Addr().Is4() {
			return badUsage(fs, "--gateway %q: want an address of %v's family", f.gateway, dst.Addr())
		}
	}
	msgs, err := readDatagrams(ncStdin, f.lines, maxPayload(dst.Addr()))
	if err != nil {
		return err
	}
	return nc(ctx, &f, dst, gw, msgs, stdout, stderr)
}

// resolveHostPort parses HOST:PORT; HOST may be an address or a name.
func resolveHostPort(ctx context.Context, s string) (netip.AddrPort, error) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("%q: want HOST:PORT: %w", s, err)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil || p == 0 {
		return netip.AddrPort{}, fmt.Errorf("%q: bad port %q", s, port)
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		as, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		if err != nil || len(as) == 0 {
			return netip.AddrPort{}, fmt.Errorf("%s: %w", host, err)
		}
		a = as[0]
	}
	return netip.AddrPortFrom(a.Unmap(), uint16(p)), nil
}

func maxPayload(a netip.Addr) int {
	if a.Is4() {
		return frame.MaxUDPPayloadIPv4
	}
	return frame.MaxUDPPayloadIPv6
}

// readDatagrams reads what nc sends: all of r as one datagram, or with
// lines each line with its newline. A datagram longer than max is an
// error wrapping EMSGSIZE, and nothing is sent.
func readDatagrams(r io.Reader, lines bool, max int) ([][]byte, error) {
	tooBig := func(n int) error {
		return fmt.Errorf("%d bytes: %w (a UDP datagram carries at most %d)", n, syscall.EMSGSIZE, max)
	}
	if !lines {
		b, err := io.ReadAll(io.LimitReader(r, int64(max)+1))
		if err != nil {
			return nil, err
		}
		if len(b) > max {
			return nil, tooBig(len(b))
		}
		return [][]byte{b}, nil
	}
	br := bufio.NewReader(r)
	var out [][]byte
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > max {
			return nil, tooBig(len(line))
		}
		if len(line) > 0 {
			out = append(out, line)
		}
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

func nc(ctx context.Context, f *ncFlags, dst netip.AddrPort, gw netip.Addr, msgs [][]byte, stdout, stderr io.Writer) (err error) {
	ifi, err := net.InterfaceByName(f.iface)
	if err != nil {
		return fmt.Errorf("no such interface %q in this network namespace: %w", f.iface, err)
	}
	cfg := &engine.Config{Addrs: f.addrs}
	if f.verbose {
		cfg.Logger = slog.New(slog.NewTextHandler(stderr, nil))
	}
	if !gw.IsValid() && !onLink(ifi, f.addrs, dst.Addr()) {
		// Off the engine's prefixes: through the kernel's router, or
		// straight to HOST if the kernel has it on a link of its own.
		if gw, err = kernelNextHop(dst.Addr()); err != nil {
			return fmt.Errorf("no route to %v: %w (give --gateway)", dst.Addr(), err)
		}
	}
	if gw.Is4() {
		cfg.Gateway4 = gw
	} else if gw.IsValid() {
		cfg.Gateway6 = gw
	}
	e, err := engine.Open(ifi, cfg)
	if err != nil {
		return explainOpenError(err)
	}
	defer func() { err = errors.Join(err, e.Close()) }()
	c, err := e.DialUDP(netip.AddrPort{}, dst)
	if err != nil {
		return err
	}
	defer c.Close()

	// Print replies as they come, until the deadline after the last
	// send, or an ICMP error.
	var (
		mu      sync.Mutex
		replies int
		readErr error
	)
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 65536)
		for {
			n, err := c.Read(buf)
			if err != nil {
				mu.Lock()
				readErr = err
				mu.Unlock()
				return
			}
			mu.Lock()
			replies++
			mu.Unlock()
			stdout.Write(buf[:n])
		}
	}()
	stopRead := func() { c.SetReadDeadline(time.Unix(1, 0)) }
	for _, m := range msgs {
		if _, err := c.Write(m); err != nil {
			stopRead()
			<-done
			return ncError(dst, err)
		}
	}
	c.SetReadDeadline(time.Now().Add(f.wait))
	select {
	case <-done:
	case <-ctx.Done():
		stopRead()
		<-done
	}
	mu.Lock()
	defer mu.Unlock()
	if readErr != nil && !errors.Is(readErr, os.ErrDeadlineExceeded) {
		return ncError(dst, readErr)
	}
	// A soft error (host unreachable, time exceeded) fails no read on a
	// connected socket; say so when nothing came back.
	var es [1]engine.ICMPError
	if replies == 0 && c.ReadErrors(es[:]) == 1 {
		return fmt.Errorf("%v: %w", dst, &es[0])
	}
	if replies == 0 {
		return fmt.Errorf("%v: no reply within %v", dst, f.wait)
	}
	return nil
}

// ncError words a send or receive failure as the kernel does ("connection
// refused"), with the destination.
func ncError(dst netip.AddrPort, err error) error {
	var se *os.SyscallError
	if errors.As(err, &se) {
		return fmt.Errorf("%v: %w", dst, se.Err)
	}
	return err
}

// onLink reports whether dst is in one of addrs' prefixes, or with no
// addrs, in one of ifi's: the engine reaches it without a router.
func onLink(ifi *net.Interface, addrs []netip.Prefix, dst netip.Addr) bool {
	if dst.IsLinkLocalUnicast() || dst.IsMulticast() {
		return true
	}
	prefixes := addrs
	if len(prefixes) == 0 {
		as, _ := ifi.Addrs()
		for _, a := range as {
			if ipn, ok := a.(*net.IPNet); ok {
				if ip, ok := netip.AddrFromSlice(ipn.IP); ok {
					bits, _ := ipn.Mask.Size()
					prefixes = append(prefixes, netip.PrefixFrom(ip.Unmap(), bits))
				}
			}
		}
	}
	for _, p := range prefixes {
		if p.Bits() < p.Addr().BitLen() && p.Masked().Contains(dst) {
			return true
		}
	}
	return false
}
