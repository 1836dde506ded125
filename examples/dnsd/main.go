// Command dnsd is an authoritative DNS server for one zone, on pktengine or
// on a kernel socket, answered the way Knot DNS answers it.
//
//	dnsd --iface IF --addr ADDR --zone FILE [--origin NAME] --mode kernel|conn|inline [--port 53]
//	dnsd --zone FILE --print-queries
//
// It loads an RFC 1035 master file and prepares the answer to every
// question the zone can be asked, in wire format (package zone). Then it
// serves UDP queries on ADDR:port in one of three ways:
//
//   - kernel: github.com/miekg/dns's dns.Server on a kernel UDP socket,
//     the way a Go DNS server usually runs;
//   - conn: the same dns.Server on the engine's net.PacketConn
//     (engine.Conn), unchanged;
//   - inline: an engine handler that parses each query in place and writes
//     the prepared answer straight into the TX ring, with no allocation.
//
// --print-queries prints the zone's questions (each name, each type) as a
// dnsperf data file instead.
//
// All three give the same answers: the handler of dns.Server and the
// inline handler both answer through zone.Answer. SIGINT or SIGTERM stops
// dnsd; it then logs what it answered. See README.md for the behaviour
// and the differences from Knot DNS.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"syscall"

	"github.com/pktengine/pktengine/examples/dnsd/zone"
)

// errUsage marks errors in the command line: exit status 2.
var errUsage = errors.New("usage")

type options struct {
	iface, addr, zoneFile, origin, mode string
	backend, rxRing                     string
	port, maxUDP, workers               int
	verbose, printQueries               bool
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "dnsd:", err)
		if errors.Is(err, errUsage) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var o options
	fs := flag.NewFlagSet("dnsd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.iface, "iface", "", "interface (inline and conn modes)")
	fs.StringVar(&o.addr, "addr", "", "address to serve on")
	fs.IntVar(&o.port, "port", 53, "UDP port")
	fs.StringVar(&o.zoneFile, "zone", "", "the zone's RFC 1035 master file")
	fs.StringVar(&o.origin, "origin", "", "origin of relative names before any $ORIGIN (default the root)")
	fs.StringVar(&o.mode, "mode", "inline", "kernel, conn or inline")
	fs.IntVar(&o.maxUDP, "max-udp", zone.DefaultMaxUDPSize, "largest UDP response to EDNS clients, and the size advertised")
	fs.IntVar(&o.workers, "workers", 1, "engine workers (inline and conn modes)")
	fs.StringVar(&o.backend, "backend", "tpacket", "the engine's backend (inline and conn modes): tpacket or xdp")
	fs.StringVar(&o.rxRing, "rx-ring", "v2", "TPACKET receive ring (inline and conn modes): v2 (least latency) or v3 (least CPU per query under load)")
	fs.BoolVar(&o.verbose, "v", false, "log the engine's events")
	fs.BoolVar(&o.printQueries, "print-queries", false, "print a dnsperf data file of the zone's questions and exit")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	if o.printQueries {
		if o.zoneFile == "" {
			return fmt.Errorf("%w: --zone is required", errUsage)
		}
		z, err := zone.LoadFile(o.zoneFile, o.origin, nil)
		if err != nil {
			return err
		}
		return zone.WriteDnsperf(stdout, z.Templates(nil))
	}
	addr, err := netip.ParseAddr(o.addr)
	if err != nil {
		return fmt.Errorf("%w: --addr: %w", errUsage, err)
	}
	if o.port < 1 || o.port > 65535 {
		return fmt.Errorf("%w: --port %d", errUsage, o.port)
	}
	if o.zoneFile == "" {
		return fmt.Errorf("%w: --zone is required", errUsage)
	}
	ap := netip.AddrPortFrom(addr, uint16(o.port))
	switch o.mode {
	case "kernel":
	case "inline", "conn":
		if o.iface == "" {
			return fmt.Errorf("%w: --mode %s needs --iface", errUsage, o.mode)
		}
	default:
		return fmt.Errorf("%w: --mode %q: want kernel, conn or inline", errUsage, o.mode)
	}

	z, err := zone.LoadFile(o.zoneFile, o.origin, &zone.Config{MaxUDPSize: o.maxUDP})
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	var st stats
	reports, stopReports := reportOnUSR1(ctx, stdout, &st)
	defer stopReports()
	switch o.mode {
	case "kernel":
		pc, err := net.ListenPacket("udp", ap.String())
		if err != nil {
			return err
		}
		log.Info("serving", "zone", z, "mode", o.mode, "addr", ap)
		err = serveDNSServer(ctx, pc, z, &st)
		log.Info("stopped", st.attrs()...)
		return errors.Join(err, closeConn(pc))
	default:
		var elog *slog.Logger
		if o.verbose {
			elog = log
		}
		e, err := openEngine(&o, addr, elog)
		if err != nil {
			return err
		}
		reports.engine.Store(e)
		log.Info("serving", "zone", z, "mode", o.mode, "addr", ap, "iface", o.iface)
		if o.mode == "inline" {
			err = serveInline(ctx, e, ap, z, &st)
		} else {
			err = serveConn(ctx, e, ap, z, &st)
		}
		log.Info("stopped", st.attrs()...)
		return errors.Join(err, e.Close())
	}
}
