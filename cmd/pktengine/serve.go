package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"syscall"

	"github.com/pktengine/pktengine/engine"
	"github.com/pktengine/pktengine/metrics"
	"github.com/pktengine/pktengine/proto"
	"github.com/pktengine/pktengine/ring"
	"github.com/pktengine/pktengine/xdp"
)

// prefixList is a repeatable --addr flag.
type prefixList []netip.Prefix

func (l *prefixList) String() string { return joinValues(*l) }

// Set accepts an address ("198.18.0.10") or a prefix ("198.18.0.10/24").
func (l *prefixList) Set(v string) error {
	if p, err := netip.ParsePrefix(v); err == nil {
		*l = append(*l, p)
		return nil
	}
	a, err := netip.ParseAddr(v)
	if err != nil {
		return fmt.Errorf("%q is neither an IP address nor a prefix", v)
	}
	*l = append(*l, netip.PrefixFrom(a, a.BitLen()))
	return nil
}

// groupList is a repeatable --join flag.
type groupList []netip.Addr

func (l *groupList) String() string { return joinValues(*l) }

// joinValues is a repeatable flag's String: its values, comma-separated.
func joinValues[T fmt.Stringer](vs []T) string {
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = v.String()
	}
	return strings.Join(s, ",")
}

// Set accepts an IPv4 or IPv6 multicast address.
func (l *groupList) Set(v string) error {
	g, err := netip.ParseAddr(v)
	if err != nil || !g.Unmap().IsMulticast() {
		return fmt.Errorf("%q is not a multicast group address", v)
	}
	*l = append(*l, g.Unmap())
	return nil
}

type serveFlags struct {
	iface    string
	addrs    prefixList
	services [len(serviceFlags)]string
	filter   string
	workers  int
	rxRing   string
	metrics  string
	control  string
	pcap     string
	dropped  bool
	user     string
	linkDown string
	verbose  bool

	// VLANs and multicast.
	vlan       uint
	joins      groupList
	backend    string
	xdpBind    string
	xdpGeneric bool
	xdpReplace bool
}

// serviceFlags are the --echo, --discard, ... flags in engine.Service order.
var serviceFlags = [...]engine.Service{engine.Echo, engine.Discard, engine.Daytime, engine.QOTD, engine.Chargen}

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var f serveFlags
	fs := newFlagSet("serve", "--iface IF [--addr IP]... [--echo PORT] [--discard PORT] ... [flags]", stderr)
	fs.StringVar(&f.iface, "iface", "", "interface to serve on (required)")
	fs.Var(&f.addrs, "addr", "address (or prefix) to serve; repeatable. Default: the interface's own addresses. An address the kernel does not have is owned: the engine answers ARP/NDP and ping for it")
	for i, s := range serviceFlags {
		fs.StringVar(&f.services[i], s.String(), "", fmt.Sprintf("serve %s on `PORT` (a number or a service name, e.g. %d or %s)", s, s.Port(), s))
	}
	fs.StringVar(&f.filter, "filter", "", "tcpdump-style expression narrowing the datagrams served (ANDed with the engine's own filter)")
	fs.IntVar(&f.workers, "workers", 0, "receive rings and worker goroutines: on tpacket a PACKET_FANOUT hash group (0: one), on xdp one per receive queue of the interface (0: that many; anything else must be it)")
	fs.StringVar(&f.rxRing, "rx-ring", "v2", "tpacket receive ring version: v2 (one frame at a time: lowest latency, the default) or v3 (blocks: least CPU per frame under a flood, but a lone frame waits up to the 1 ms retire timeout)")
	fs.StringVar(&f.backend, "backend", "tpacket", "the rings under the engine: tpacket (AF_PACKET rings beside the kernel; works everywhere) or xdp (an XDP program steers the engine's frames to AF_XDP sockets and answers leave from the frames they answer; needs XDP in the driver and CAP_BPF)")
	fs.StringVar(&f.xdpBind, "xdp-bind", "auto", "with --backend xdp: how the AF_XDP sockets bind: auto (zero-copy where the driver offers it, else copy), copy or zerocopy")
	fs.BoolVar(&f.xdpGeneric, "xdp-generic", false, "with --backend xdp: attach the XDP program in generic (SKB) mode, for a driver without native XDP (slower; never chosen by itself)")
	fs.BoolVar(&f.xdpReplace, "xdp-replace", false, "with --backend xdp: replace another program's XDP program on the interface (a stale one of pktengine's is always replaced)")
	fs.StringVar(&f.metrics, "metrics", "", "serve Prometheus metrics on `ADDR` (host:port), at /metrics")
	fs.StringVar(&f.control, "control", defaultStatSocket(), "unix stat socket `PATH` for 'pktengine stat' (empty: none)")
	fs.StringVar(&f.pcap, "pcap", "", "write received frames to `FILE` (pcap, nanosecond timestamps)")
	fs.BoolVar(&f.dropped, "pcap-dropped", false, "with --pcap, write only the frames the engine dropped")
	fs.StringVar(&f.linkDown, "on-link-down", "resume", "when the interface goes down: resume (count, log, serve on when it comes back) or fail (exit 1). Removal of the interface always ends serve")
	fs.StringVar(&f.user, "user", "", "drop privileges to `NAME` once the sockets are open")
	fs.BoolVar(&f.verbose, "v", false, "log engine events to stderr")
	fs.UintVar(&f.vlan, "vlan", 0, "serve only frames of 802.1Q VLAN `ID` (1-4094), and tag every answer; 0, the default, serves untagged frames as the interface itself does")
	fs.Var(&f.joins, "join", "join multicast `GROUP` (IPv4 or IPv6) on every service port, reported with IGMP/MLD; repeatable. The services receive the group's datagrams but, by their guards, answer none")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if f.iface == "" {
		return badUsage(fs, "--iface is required")
	}
	if f.dropped && f.pcap == "" {
		return badUsage(fs, "--pcap-dropped needs --pcap FILE")
	}
	if f.vlan > engine.MaxVLANID {
		return badUsage(fs, "--vlan %d: want 1-%d (0: untagged)", f.vlan, engine.MaxVLANID)
	}
	if f.backend != "xdp" {
		for _, name := range []string{"xdp-bind", "xdp-generic", "xdp-replace"} {
			if flagSet(fs, name) {
				return badUsage(fs, "--%s needs --backend xdp", name)
			}
		}
	} else if flagSet(fs, "rx-ring") {
		return badUsage(fs, "--rx-ring is for --backend tpacket")
	}
	return serve(ctx, &f, stdout, stderr)
}

func serve(ctx context.Context, f *serveFlags, stdout, stderr io.Writer) (err error) {
	ifi, err := net.InterfaceByName(f.iface)
	if err != nil {
		return fmt.Errorf("no such interface %q in this network namespace: %w", f.iface, err)
	}
	ports, err := f.servicePorts()
	if err != nil {
		return err
	}
	cfg := &engine.Config{
		Addrs:          f.addrs,
		Filter:         f.filter,
		Workers:        f.workers,
		CaptureDropped: f.dropped,
		VLAN:           uint16(f.vlan),
	}
	policy, ok := engine.ParseLinkPolicy(f.linkDown)
	if !ok {
		return fmt.Errorf("--on-link-down %q: want resume or fail", f.linkDown)
	}
	cfg.OnLinkDown = policy
	backend, ok := engine.ParseBackend(strings.ToLower(f.backend))
	if !ok {
		return fmt.Errorf("--backend %q: want tpacket or xdp", f.backend)
	}
	cfg.Backend = backend
	cfg.XDP.Generic, cfg.XDP.ReplaceForeign = f.xdpGeneric, f.xdpReplace
	switch strings.ToLower(f.xdpBind) {
	case "auto":
		cfg.XDP.Mode = xdp.ModeAuto
	case "copy":
		cfg.XDP.Mode = xdp.ModeCopy
	case "zerocopy", "zero-copy":
		cfg.XDP.Mode = xdp.ModeZeroCopy
	default:
		return fmt.Errorf("--xdp-bind %q: want auto, copy or zerocopy", f.xdpBind)
	}
	switch strings.ToLower(f.rxRing) {
	case "v3", "3":
		cfg.RXVersion = ring.V3
	case "v2", "2":
		cfg.RXVersion = ring.V2
	default:
		return fmt.Errorf("--rx-ring %q: want v2 or v3", f.rxRing)
	}
	if f.verbose {
		cfg.Logger = slog.New(slog.NewTextHandler(stderr, nil))
	}
	if f.pcap != "" {
		w, err := createPcap(f.pcap)
		if err != nil {
			return err
		}
		// After the engine's Close (deferred below, so run before this):
		// no worker writes any more.
		defer func() { err = errors.Join(err, w.Close()) }()
		cfg.Capture = w
	}

	e, err := engine.Open(ifi, cfg)
	if err != nil {
		return explainOpenError(err)
	}
	closeEngine := sync.OnceValue(e.Close)
	defer func() { err = errors.Join(err, closeEngine()) }()
	for _, sp := range ports {
		p, err := e.HandleService(netip.AddrPortFrom(netip.Addr{}, sp.port), sp.service)
		if err != nil {
			return fmt.Errorf("%s on port %d: %w", sp.service, sp.port, err)
		}
		for _, g := range f.joins {
			if err := p.JoinGroup(g); err != nil {
				return fmt.Errorf("--join %v: %w", g, err)
			}
		}
	}

	vis, err := listenVisibility(f)
	if err != nil {
		return err
	}
	stopVisibility := sync.OnceFunc(vis.stop)
	defer stopVisibility()

	if f.user != "" {
		if err := dropPrivileges(f.user); err != nil {
			return err
		}
	}
	vis.start(ctx, e, stderr)

	st := e.Status()
	rings := "rx ring " + st.RXVersion
	if st.XDP != nil {
		rings = "AF_XDP " + st.XDP.Mode + " mode"
		if st.XDP.Generic {
			rings += " (generic XDP)"
		}
	}
	fmt.Fprintf(stderr, "pktengine: serving on %s (%s), %d worker(s), %s:", st.Interface, st.MAC, st.Workers, rings)
	for _, p := range st.Ports {
		fmt.Fprintf(stderr, " %s/%s", p.Local(), p.Service)
	}
	if st.VLAN != 0 {
		fmt.Fprintf(stderr, "; VLAN %d", st.VLAN)
	}
	if len(f.joins) > 0 {
		fmt.Fprintf(stderr, "; groups %s", f.joins.String())
	}
	fmt.Fprintln(stderr)

	// Serve until a signal, or until the engine stops by itself: its
	// interface went away, or went down under --on-link-down=fail.
	var stopped error
	select {
	case <-ctx.Done():
		fmt.Fprintln(stderr, "pktengine: shutting down")
	case <-e.Done():
		stopped = e.Err()
		fmt.Fprintf(stderr, "pktengine: engine stopped: %v\n", stopped)
	}
	// Close first, so that the final counters include every frame the
	// workers took from the rings before they stopped.
	stopVisibility()
	closeErr := closeEngine()
	final := e.Status()
	metrics.WriteStatus(stdout, &final)
	if stopped != nil {
		return stopped
	}
	return closeErr
}

type servicePort struct {
	service engine.Service
	port    uint16
}

// servicePorts resolves the service flags; with none given it serves echo
// on its well-known port, the responder most users start pktengine for.
func (f *serveFlags) servicePorts() ([]servicePort, error) {
	var out []servicePort
	for i, v := range f.services {
		if v == "" {
			continue
		}
		p, err := proto.ParsePort(v, "udp")
		if err != nil {
			return nil, fmt.Errorf("--%s: %w", serviceFlags[i], err)
		}
		out = append(out, servicePort{serviceFlags[i], p})
	}
	if len(out) == 0 {
		out = append(out, servicePort{engine.Echo, engine.Echo.Port()})
	}
	return out, nil
}

// explainOpenError adds what to do about the errors a user meets first.
func explainOpenError(err error) error {
	switch {
	case strings.Contains(err.Error(), "CAP_NET_RAW"):
		return err // already says what to do
	case errors.Is(err, xdp.ErrPermission):
		return err // names the capabilities
	case errors.Is(err, syscall.EPERM), errors.Is(err, syscall.EACCES):
		return fmt.Errorf("%w (AF_PACKET rings need CAP_NET_RAW, and CAP_NET_ADMIN for shared addresses: run as root or grant them with setcap cap_net_raw,cap_net_admin+ep)", err)
	}
	return err
}
