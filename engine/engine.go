package engine

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pktengine/pktengine/frame"
	"github.com/pktengine/pktengine/proto"
	"github.com/pktengine/pktengine/xdp"
)

// Engine is a UDP endpoint on an AF_PACKET interface: receive rings with
// a kernel filter, one worker goroutine per ring that parses, validates
// and dispatches every frame, and TX rings for the answers. See the
// package documentation for the life of a frame.
type Engine struct {
	ifi   *net.Interface
	mac   frame.MAC
	mtu   int
	cfg   Config
	log   *slog.Logger
	addrs *addrSet
	infos []AddrInfo

	table     atomic.Pointer[portTable]
	ephemeral [2]uint16  // the range port 0 draws from: RFC 6335's dynamic ports
	bindMu    sync.Mutex // serialises changes to table and ports
	ports     []*Port

	workers    []*worker
	auxWorkers int // the last ones of workers, beside the backend's (openAux)
	wg         sync.WaitGroup
	ctx        context.Context
	cancel     context.CancelFunc

	// The transmit ring for Port.Send and Port.Reply, shared by every
	// port, and its counters once it is closed.
	txMu      sync.Mutex
	tx        txRing
	txSpec    frame.UDPSpec
	txID      uint16
	txPending bool // frames committed to tx and not yet flushed
	txFinal   txStats

	appOut, appSndbufErrors, appTXFrames, appTXErrors atomic.Uint64

	// Fragments out (fragment.go) and path MTU (pmtu.go): the fragmenter
	// of Port sends (under txMu), the fragment identifications, and
	// FragOKs, FragFails, FragCreates of Port sends, IPv4 then IPv6.
	txFrag  frame.UDPFragmenter
	fragIDs *frame.FragmentIDs
	appFrag [6]atomic.Uint64
	pmtu    pmtuCache

	neigh      *neighbors
	icmpBucket bucket
	icmpRate   rate
	guard      guardState
	quote      []byte

	// reserveShared makes a kernel UDP socket hold an engine port on a
	// shared address (nil in tests without a kernel).
	reserveShared func(netip.AddrPort) (io.Closer, error)
	// steerGroup makes the backend deliver a group address's datagrams
	// to a port bound to it (nil: the backend delivers them anyway).
	steerGroup func(netip.AddrPort) (io.Closer, error)
	closers    []io.Closer

	// report adds the backend's own counters and status (nil: none).
	report backendReport

	// The link (link.go): what the monitor last saw, and the outages.
	link               linkWatch
	monitor            interface{ Close() error }
	runMonitor         func()
	monitorDone        chan struct{}
	linkDown           atomic.Bool
	linkDowns, linkUps atomic.Uint64

	// Stopping, by itself or by Close (Done, Err).
	done     chan struct{}
	stopOnce sync.Once
	stopErr  error
	stopErrs []error // from closing the receive rings

	closed     atomic.Bool
	closeOnce  sync.Once
	closeErr   error
	finalPorts []PortInfo // the ports as Close found them
	started    time.Time
	captureErr atomic.Bool

	// VLANs and multicast (vlan.go, multicast.go): the tags of what the
	// engine sends on its own, and its groups.
	linkVLANs []frame.VLANTag
	mcast     *multicast
}

// Open starts an engine on ifi: it opens the receive rings with a filter
// built from the engine's addresses (and Config.Filter), the TX rings,
// and the workers. The engine answers ARP, NDP and pings for its owned
// addresses from then on, and UDP as soon as ports are bound. A nil cfg
// means the defaults of Config.
//
// Open needs CAP_NET_RAW (and CAP_NET_ADMIN for the kernel sockets that
// guard shared addresses). It must run in the network namespace of ifi;
// the engine remembers that namespace for the sockets it opens later.
func Open(ifi *net.Interface, cfg *Config) (*Engine, error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if ifi == nil {
		return nil, errors.New("engine: nil interface")
	}
	infos, err := resolveAddrs(ifi, c.Addrs)
	if err != nil {
		return nil, err
	}
	e, err := newEngine(ifi, c, infos)
	if err != nil {
		return nil, err
	}
	prog, err := buildFilter(e.addrs, c.Filter, c.VLAN, true)
	if err != nil {
		return nil, err
	}
	if err := e.openPlatform(prog); err != nil {
		return nil, errors.Join(err, e.Close())
	}
	if err := e.startMulticast(); err != nil {
		return nil, errors.Join(err, e.Close())
	}
	for _, w := range e.workers {
		e.wg.Add(1)
		w.started = true
		go func() {
			defer e.wg.Done()
			w.exitErr = w.run()
			if w.exitErr != nil {
				e.stop(fmt.Errorf("engine: worker %d: %w", w.id, w.exitErr))
			}
		}()
	}
	if e.runMonitor != nil {
		e.monitorDone = make(chan struct{})
		go func() {
			defer close(e.monitorDone)
			e.runMonitor()
		}()
	}
	for _, ai := range infos {
		e.log.Info("engine address", "addr", ai.Prefix, "owned", ai.Owned)
	}
	if c.Backend == BackendXDP {
		mode := ""
		if st := e.report.status(); st != nil {
			mode = st.Mode
		}
		e.log.Info("engine open", "iface", ifi.Name, "workers", len(e.workers)-e.auxWorkers, "backend", c.Backend, "mode", mode)
	} else {
		e.log.Info("engine open", "iface", ifi.Name, "workers", len(e.workers), "rx", c.RXVersion)
	}
	return e, nil
}

// newEngine builds everything but the rings and workers' sockets.
func newEngine(ifi *net.Interface, c Config, infos []AddrInfo) (*Engine, error) {
	if len(ifi.HardwareAddr) != 6 {
		return nil, fmt.Errorf("engine: %s has no Ethernet address", ifi.Name)
	}
	addrs, err := newAddrSet(infos)
	if err != nil {
		return nil, err
	}
	e := &Engine{
		ifi:      ifi,
		mac:      frame.MAC(ifi.HardwareAddr),
		mtu:      ifi.MTU,
		cfg:      c,
		log:      c.Logger,
		addrs:    addrs,
		infos:    infos,
		neigh:    newNeighbors(),
		icmpRate: newRate(c.ICMPRate, c.ICMPBurst),
		quote:    []byte(c.Quote),
		started:  time.Now(),
	}
	if e.mtu <= 0 {
		e.mtu = frame.EthernetMTU
	}
	e.guard = newGuardState(&c.Guard)
	e.linkVLANs = vlanTags(c.VLAN)
	e.mcast = newMulticast(e)
	e.fragIDs = frame.NewFragmentIDs()
	e.pmtu.seed = rand.Uint64()
	e.table.Store(new(portTable))
	e.ephemeral[0], e.ephemeral[1] = proto.Dynamic.Bounds()
	e.ctx, e.cancel = context.WithCancel(context.Background())
	e.done = make(chan struct{})
	return e, nil
}

// resolveAddrs decides which configured addresses are owned and which
// shared, and fills in on-link prefix lengths.
func resolveAddrs(ifi *net.Interface, want []netip.Prefix) ([]AddrInfo, error) {
	onIface, all, err := kernelAddrs(ifi)
	if err != nil {
		return nil, fmt.Errorf("engine: reading the addresses of %s: %w", ifi.Name, err)
	}
	if len(want) == 0 {
		if len(onIface) == 0 {
			return nil, fmt.Errorf("engine: %s has no addresses and Config.Addrs is empty", ifi.Name)
		}
		infos := make([]AddrInfo, 0, len(onIface))
		for _, p := range onIface {
			infos = append(infos, AddrInfo{Prefix: p})
		}
		return infos, nil
	}
	infos := make([]AddrInfo, 0, len(want))
	for _, w := range want {
		a := w.Addr().Unmap()
		p := netip.PrefixFrom(a, w.Bits())
		if !p.IsValid() {
			return nil, fmt.Errorf("engine: invalid address %v", w)
		}
		if p.Bits() == a.BitLen() {
			// No length given: take the kernel's on-link prefix.
			for _, k := range onIface {
				if k.Contains(a) {
					p = netip.PrefixFrom(a, k.Bits())
					break
				}
			}
		}
		owned := !slices.ContainsFunc(all, func(k netip.Prefix) bool { return k.Addr() == a })
		infos = append(infos, AddrInfo{Prefix: p, Owned: owned})
	}
	return infos, nil
}

// Addrs returns the engine's addresses.
func (e *Engine) Addrs() []AddrInfo { return slices.Clone(e.infos) }

// Interface returns the interface the engine runs on.
func (e *Engine) Interface() *net.Interface { return e.ifi }

// Close stops the workers, closes every port (releasing queued
// datagrams), the rings and the kernel sockets, and returns every error
// it met. Datagrams the application still holds stay valid until
// released; the receive rings are unmapped after the last release.
// Close is needed after the engine stopped by itself too (Done), and
// returns promptly then. Counters, Ports and Status keep working after
// Close and report the final counts: every frame a worker took from a
// ring is counted, and Ports lists the ports as Close found them.
func (e *Engine) Close() error {
	e.closeOnce.Do(func() { e.closeErr = e.close() })
	return e.closeErr
}

func (e *Engine) close() error {
	e.bindMu.Lock()
	e.closed.Store(true)
	ports := slices.Clone(e.ports)
	e.bindMu.Unlock()

	e.stop(net.ErrClosed)
	errs := slices.Clone(e.stopErrs)
	if e.monitor != nil {
		errs = append(errs, e.monitor.Close())
		if e.monitorDone != nil {
			<-e.monitorDone
		}
	}
	e.wg.Wait()
	for _, w := range e.workers {
		errs = append(errs, w.exitErr)
		if !w.started && w.tx != nil {
			errs = append(errs, w.tx.close())
		}
	}
	// The workers are gone, so these are the ports' final counts.
	final := make([]PortInfo, 0, len(ports))
	for _, p := range ports {
		final = append(final, p.Info())
	}
	sortPortInfos(final)
	for _, p := range ports {
		errs = append(errs, p.Close())
	}
	// The ports left their groups; the engine leaves its own, while the
	// transmit ring is open for the reports.
	errs = append(errs, e.mcast.close())
	e.bindMu.Lock()
	e.finalPorts = final
	e.bindMu.Unlock()
	e.txMu.Lock()
	if e.tx != nil {
		errs = append(errs, e.tx.close())
		e.txFinal = e.tx.stats()
		e.tx = nil
	}
	e.txMu.Unlock()
	errs = append(errs, closeAll(e.closers))
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("engine: close: %w", err)
	}
	return nil
}

// quiesce waits until every worker that was inside a batch has finished
// it, so that none still uses a table entry removed before the call.
func (e *Engine) quiesce() {
	for _, w := range e.workers {
		s := w.epoch.Load()
		if s&1 == 0 {
			continue
		}
		for w.epoch.Load() == s {
			time.Sleep(20 * time.Microsecond)
		}
	}
}

// Counters returns a snapshot of the engine's counters. Each worker's
// share is read consistently, so Counters.Check holds for every snapshot.
func (e *Engine) Counters() Counters {
	var c Counters
	var s counterSet
	for _, w := range e.workers {
		w.published.read(&s)
		s.addTo(&c)
		if w.rx != nil {
			st := w.rx.stats() // after Close: the totals so far
			c.RingPackets += st.packets
			c.RingDrops += st.drops
			c.RingFreezes += st.freezes
		}
	}
	e.txMu.Lock()
	app := e.txFinal
	if e.tx != nil {
		app = e.tx.stats()
	}
	e.txMu.Unlock()
	c.UDP.OutDatagrams += e.appOut.Load()
	c.UDP.SndbufErrors += e.appSndbufErrors.Load()
	c.TXFrames += e.appTXFrames.Load()
	c.TXErrors += e.appTXErrors.Load() + app.rejected
	c.TXDropped += app.dropped
	c.LinkDowns = e.linkDowns.Load()
	c.LinkUps = e.linkUps.Load()
	c.Multicast = e.mcast.counters()
	for i, ip := range [2]*IPFragCounters{&c.IP, &c.IP6} {
		ip.FragOKs += e.appFrag[3*i].Load()
		ip.FragFails += e.appFrag[3*i+1].Load()
		ip.FragCreates += e.appFrag[3*i+2].Load()
	}
	if e.report != nil {
		e.report.addCounters(&c)
	}
	c.finishUDP()
	return c
}

// Ports describes the bound ports, ordered by port number and address.
// After Close it describes the ports the engine had when it closed, with
// their final counters.
func (e *Engine) Ports() []PortInfo {
	e.bindMu.Lock()
	if e.closed.Load() && e.finalPorts != nil {
		infos := slices.Clone(e.finalPorts)
		e.bindMu.Unlock()
		return infos
	}
	ports := slices.Clone(e.ports)
	e.bindMu.Unlock()
	infos := make([]PortInfo, 0, len(ports))
	for _, p := range ports {
		infos = append(infos, p.Info())
	}
	sortPortInfos(infos)
	return infos
}

func sortPortInfos(infos []PortInfo) {
	slices.SortFunc(infos, func(a, b PortInfo) int {
		return cmp.Or(cmp.Compare(a.Port, b.Port), a.Addr.Compare(b.Addr))
	})
}

// Status is what `pktengine stat` shows: the engine, its ports and its
// counters.
type Status struct {
	Interface string
	MAC       string
	Addrs     []AddrInfo
	Workers   int
	RXVersion string
	Started   time.Time
	// LinkUp reports whether the interface's link is up (Engine.LinkUp).
	LinkUp   bool
	Ports    []PortInfo
	Counters Counters
	// VLAN is the VLAN served (Config.VLAN; 0: untagged frames) and
	// Groups the multicast groups joined on the interface.
	VLAN   uint16      `json:",omitempty"`
	Groups []GroupInfo `json:",omitempty"`

	// Backend is the rings' kernel interface, "tpacket" or "xdp";
	// RXVersion is empty on XDP. XDP describes the AF_XDP backend (nil
	// on TPACKET).
	Backend string
	XDP     *XDPStatus `json:",omitempty"`
}

// XDPStatus describes the AF_XDP backend: how its program is attached
// and how each socket is bound, with its last frame check.
type XDPStatus struct {
	// Mode is how the sockets are bound: "copy" (the kernel copies each
	// frame between its buffers and UMEM) or "zerocopy" (the driver
	// works in UMEM itself). "mixed" if the sockets differ.
	Mode string
	// Generic is true if the program runs in generic (SKB) mode rather
	// than in the driver.
	Generic bool
	// Replaced names a program Open found on the interface and replaced
	// (a stale one of pktengine's, or a foreign one with
	// XDPConfig.ReplaceForeign); empty if none.
	Replaced string `json:",omitempty"`
	Sockets  []XDPSocketStatus
}

// XDPSocketStatus describes one AF_XDP socket.
type XDPSocketStatus struct {
	Queue      int
	Mode       string
	FrameSize  int
	FrameCount int
	// TXBudget is XDP_MAX_TX_SKB_BUDGET (0: the kernel's default).
	TXBudget int
	// Frames is where the UMEM frames were at the last check, taken by
	// the socket's worker (about once a second while busy) or at close;
	// CheckedAt is when (zero: never yet), CheckError what was wrong.
	Frames     xdp.FrameCounts
	CheckedAt  time.Time
	CheckError string `json:",omitempty"`
}

// Status returns the engine's status.
func (e *Engine) Status() Status {
	st := Status{
		Interface: e.ifi.Name,
		MAC:       e.mac.String(),
		Addrs:     e.Addrs(),
		Workers:   len(e.workers) - e.auxWorkers,
		RXVersion: e.cfg.RXVersion.String(),
		Started:   e.started,
		LinkUp:    e.LinkUp(),
		Ports:     e.Ports(),
		Counters:  e.Counters(),
		VLAN:      e.cfg.VLAN,
		Groups:    e.Groups(),
		Backend:   e.cfg.Backend.String(),
	}
	if e.cfg.Backend != BackendTPACKET {
		st.RXVersion = ""
	}
	if e.report != nil {
		st.XDP = e.report.status()
	}
	return st
}

// Backend returns the engine's backend and, on XDP, how its sockets are
// bound ("copy" or "zerocopy"; empty on TPACKET).
func (e *Engine) Backend() (b Backend, xdpMode string) {
	if e.report != nil {
		if st := e.report.status(); st != nil {
			xdpMode = st.Mode
		}
	}
	return e.cfg.Backend, xdpMode
}
