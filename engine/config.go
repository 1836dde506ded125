package engine

import (
	"cmp"
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	"github.com/pktengine/pktengine/internal/enum"
	"github.com/pktengine/pktengine/queue"
	"github.com/pktengine/pktengine/reassembly"
	"github.com/pktengine/pktengine/ring"
	"github.com/pktengine/pktengine/xdp"
)

// Defaults for the zero fields of Config.
const (
	DefaultQueueDepth    = 1024
	DefaultICMPRate      = 1000 // ICMP errors per second, as Linux's icmp_msgs_per_sec
	DefaultICMPBurst     = 50   // as Linux's icmp_msgs_burst
	DefaultTTL           = 64
	DefaultSourceRate    = 100 // service replies per second to one source
	DefaultSourceBurst   = 20
	DefaultSourceTable   = 4096
	DefaultTotalRate     = 10 * DefaultSourceRate  // replies per second of all the amplifying services together
	DefaultTotalBurst    = 10 * DefaultSourceBurst // ten sources' bursts
	DefaultResolveWait   = time.Second
	DefaultNeighborTTL   = 60 * time.Second
	DefaultRetireTimeout = time.Millisecond

	DefaultMulticastRobustness = 2 // as Linux's igmp_qrv and mld_qrv
	MaxVLANID                  = 4094
	// DefaultReassemblyMemory is Linux's ipfrag_high_thresh (4 MiB).
	DefaultReassemblyMemory = reassembly.DefaultMemoryLimit
)

// DefaultLoopPorts are the source ports the built-in services never
// answer: each of them is itself such a service, and answering it would
// start a loop (echo to chargen, echo to echo, ...).
var DefaultLoopPorts = []uint16{7, 9, 13, 17, 19}

// DefaultQuote is what the qotd service says unless Config.Quote is set.
const DefaultQuote = "Be conservative in what you do, be liberal in what you accept from others.\r\n  -- Jon Postel, RFC 793\r\n"

// FrameWriter records frames (`pktengine serve --pcap` writes them to a
// pcap file). It must be safe for use by several workers at once.
type FrameWriter interface {
	WriteFrame(unixNano int64, frame []byte, origLen int) error
}

// Backend is the kernel interface under the engine's receive and transmit
// rings. Everything above the rings (dispatch, ports, counters, services,
// ICMP, ARP and NDP) is the same on every backend.
type Backend uint8

const (
	// BackendTPACKET: AF_PACKET TPACKET_V2/V3 receive rings beside the
	// kernel (a packet tap: the kernel sees every frame too) and
	// PACKET_TX_RING transmit rings. Works on every interface.
	BackendTPACKET Backend = iota

	// BackendXDP: an XDP program steers the engine's frames to one
	// AF_XDP socket per receive queue, and the kernel never sees them;
	// answers leave from the frame they answer, in place (see
	// docs/XDP.md). Needs XDP in the interface's driver (or
	// XDPConfig.Generic) and CAP_BPF and CAP_NET_ADMIN as well.
	BackendXDP
)

var backendNames = enum.Names[Backend]{BackendTPACKET: "tpacket", BackendXDP: "xdp"}

func (b Backend) String() string { return backendNames.Format(b, "Backend") }

// ParseBackend returns the backend named s ("tpacket" or "xdp").
func ParseBackend(s string) (Backend, bool) { return backendNames.Parse(s) }

// XDPConfig configures the AF_XDP backend (Config.Backend BackendXDP).
// The zero value is what most users want.
type XDPConfig struct {
	// Mode is how the sockets bind: xdp.ModeAuto (zero-copy where the
	// driver offers it, copy mode otherwise; Status says which),
	// xdp.ModeCopy or xdp.ModeZeroCopy (an error where the driver has
	// none).
	Mode xdp.BindMode

	// Generic attaches the XDP program in generic (SKB) mode, which
	// every interface has, at a cost per frame. Without it, a driver
	// without native XDP fails Open (xdp.ErrNoDriverSupport): the
	// engine never falls back by itself.
	Generic bool

	// ReplaceForeign lets Open replace an XDP program of another
	// program's on the interface; without it Open fails with
	// xdp.ErrProgramPresent. A stale program of pktengine's, whose
	// process is gone, is always replaced; one whose process still runs
	// never is (xdp.ErrInUse).
	ReplaceForeign bool

	// FrameCount is the number of UMEM frames of each socket; zero
	// means the xdp package's default (4096).
	FrameCount int

	// BatchSize caps the frames of one receive batch; zero means the
	// xdp package's default (256).
	BatchSize int
}

// Config configures an Engine. A nil *Config and zero fields mean the
// defaults given with each field.
type Config struct {
	// Backend chooses the rings: BackendTPACKET (the default) or
	// BackendXDP, configured by XDP. Nothing falls back from one to the
	// other: an interface where XDP cannot run fails Open, with the
	// cause.
	Backend Backend
	XDP     XDPConfig

	// Addrs are the addresses the engine serves, with their on-link
	// prefix lengths (a /32 or /128 means the prefix of the kernel's
	// address that contains it, if any, else just the host). An address
	// the kernel has on any interface is shared: the kernel keeps
	// answering ARP, NDP and ICMP for it, and the engine takes only the
	// UDP ports it binds. Any other address is owned: the engine answers
	// ARP and neighbour solicitations and pings for it and sends ICMP
	// port unreachable for its unbound ports. Empty means the
	// interface's own addresses, all shared.
	Addrs []netip.Prefix

	// Filter is a tcpdump-style expression (see docs/BPF.md) that narrows
	// the UDP datagrams the engine receives, for example "src net
	// 198.18.0.0/24". It is ANDed with the engine's own filter, which
	// passes only UDP to the engine's addresses; ARP and NDP for them are
	// accepted whatever it says, so an expression can never cut the
	// engine off the link. On TPACKET the kernel runs it on the receive
	// sockets; on XDP, where a classic BPF program cannot run, each worker
	// runs it in x/net/bpf's VM on the frames the XDP program steered to
	// it (Counters.XDP.Filtered counts those it rejects, and the kernel
	// never sees them either), with VLAN tags in the frame: "vlan" tests
	// the frame's own tag and shifts what follows, as tcpdump does on a
	// savefile.
	Filter string

	// Workers is the number of receive rings, each with its own goroutine
	// and TX ring, joined in a PACKET_FANOUT hash group so that a flow
	// stays on one worker. Zero means 1. On XDP there is one worker per
	// receive queue of the interface (the NIC's RSS spreads the flows):
	// zero means that many, and any other number must be it.
	Workers int

	// RXVersion selects TPACKET_V2 or V3 for the receive rings. Zero
	// means ring.V2: a responder answers each frame as it comes, and V2
	// hands it over at once, where V3 holds a lone frame for the whole
	// retire timeout; in the lab V2 sustains at least V3's echo rate
	// (docs/bench/engine.md). V3 takes less CPU per received frame under
	// a flood. RetireTimeout bounds how long a V3 block waits to fill
	// before the engine sees it; zero means DefaultRetireTimeout (1 ms),
	// which is then the reply latency on a quiet link.
	RXVersion     ring.Version
	RetireTimeout time.Duration
	// RXBlockSize, RXBlockCount (V3) and RXFrameCount (V2) shape the
	// receive rings; zero means ring's defaults.
	RXBlockSize  int
	RXBlockCount int
	RXFrameCount int
	// TXFrameCount is the number of slots of each TX ring; zero means
	// ring's default.
	TXFrameCount int
	// BusyPoll is how many times a worker re-checks an empty ring before
	// sleeping (see ring.RXConfig.BusyPoll). Zero sleeps at once.
	BusyPoll int
	// KeepQdisc sends through the interface's queueing discipline. By
	// default frames bypass it (PACKET_QDISC_BYPASS), which is faster and
	// what a responder wants unless tc shapes its traffic.
	KeepQdisc bool

	// QueueDepth is the number of datagrams each port queues for Recv.
	// Zero means DefaultQueueDepth. It is rounded up to a power of two.
	// It also bounds the datagrams a port's application holds: a full
	// queue, or received datagrams not yet released, make the port drop
	// (RcvbufErrors), as a kernel socket's full receive buffer does.
	QueueDepth int

	// ZeroCopy makes queued datagrams point into the receive ring
	// instead of being copied into their port's buffers. It saves a
	// copy per datagram, but the ring hands slots back to the kernel in
	// order, so a datagram that waits in a queue or in the application
	// keeps its slot and every later one from the kernel: one slow
	// consumer then fills the ring and the kernel drops frames for
	// every port. Use it only when every consumer keeps up and releases
	// at once. Inline handlers run on the frame in the ring either way.
	ZeroCopy bool

	// ICMPRate and ICMPBurst shape the token bucket for ICMP and ICMPv6
	// port unreachable messages. Zero means DefaultICMPRate and
	// DefaultICMPBurst; a negative ICMPRate sends none.
	ICMPRate  float64
	ICMPBurst int

	// TTL is the IPv4 TTL and IPv6 hop limit of what the engine sends.
	// Zero means DefaultTTL.
	TTL uint8

	// Gateway4 and Gateway6 are the routers Port.Send goes through for
	// destinations outside the engine's prefixes. Zero means none: such
	// sends fail with EHOSTUNREACH. Replies never need them.
	Gateway4, Gateway6 netip.Addr

	// ResolveWait bounds how long Port.Send waits for ARP or NDP to
	// resolve a next hop. Zero means DefaultResolveWait. NeighborTTL is
	// how long a resolved neighbour is used without a new confirmation
	// before the engine solicits it again (still using it meanwhile).
	// Zero means DefaultNeighborTTL.
	ResolveWait time.Duration
	NeighborTTL time.Duration

	// Guard configures the built-in services' protections.
	Guard Guard

	// Quote is what the qotd service sends. Empty means DefaultQuote.
	Quote string

	// Capture, if set, receives every frame the rings hand over, or with
	// CaptureDropped only those the engine dropped (see
	// Outcome.Dropped), before the engine acts on them.
	Capture        FrameWriter
	CaptureDropped bool

	// OnLinkDown is what the engine does when its interface's link goes
	// down: LinkResume (the default) counts, logs and keeps serving;
	// LinkFail stops the engine (Engine.Done, Engine.Err). The removal
	// of the interface, or of its namespace, always stops the engine.
	OnLinkDown LinkPolicy

	// Logger receives the engine's log records. Nil means none.
	Logger *slog.Logger

	// --- VLANs and multicast (vlan.go, multicast.go) ---

	// VLAN is the one VLAN the engine serves. Zero (the default) means
	// untagged frames, and priority-tagged ones (VLAN ID 0), which is
	// what the kernel's base interface receives; 1 to 4094 means frames
	// with exactly that one tag, whether the kernel moved it into the
	// ring's metadata or left it in the frame. Frames of any other VLAN
	// are counted (OutcomeOtherVLAN) and never answered; everything the
	// engine sends carries the tag. A NIC that filters VLANs in hardware
	// (ethtool's rx-vlan-filter) drops the frames of a VLAN no kernel VLAN
	// interface has registered: turn the filter off for Config.VLAN.
	VLAN uint16

	// MulticastRobustness is the IGMP and MLD Robustness Variable (RFC
	// 3376 section 8.1, RFC 3810 section 9.1) until a querier announces
	// its own: how many times a state-change report is sent, and a factor
	// of how long an older-version querier is remembered. Zero means 2,
	// Linux's igmp_qrv and mld_qrv.
	MulticastRobustness int

	// Fragments (docs/ENGINE.md, "Fragments"): reassembly of what the
	// engine receives, fragmentation of what it sends, path MTU.

	// ReassemblyMemory bounds the memory that fragment reassembly may
	// hold, over all the workers: each worker has a reassembler of its
	// own with an equal share (at least reassembly.MinMemoryLimit,
	// 256 KiB), allocated once, when its first fragment arrives. It is
	// Linux's ipfrag_high_thresh. Zero means DefaultReassemblyMemory
	// (4 MiB); a negative value turns reassembly off, and fragments are
	// counted (udp-fragment, non-first-fragment, ...) and dropped.
	ReassemblyMemory int
	// ReassemblySourceShare is how much of ReassemblyMemory one source
	// (an IPv4 address, an IPv6 /64) may hold before it has to give up
	// its own oldest datagrams, so that a flood from a few sources
	// cannot evict everyone else's. Zero means an eighth.
	ReassemblySourceShare int
	// ReassemblyTimeout4 and ReassemblyTimeout6 bound how long a
	// datagram may take to complete, from its first fragment (Linux's
	// ipfrag_time and ip6frag_time). Zero means 30 s and 60 s.
	ReassemblyTimeout4, ReassemblyTimeout6 time.Duration
}

// Guard configures the protections of the built-in services (echo,
// discard, daytime, qotd, chargen). The zero value is the safe default.
type Guard struct {
	// LoopPorts are source ports a service never answers. Nil means
	// DefaultLoopPorts; an empty, non-nil slice means none. Source port
	// 0 is never answered: no reply can be addressed to it.
	LoopPorts []uint16

	// AnswerGroup answers requests sent to a broadcast or multicast
	// address, which by default are ignored: one such request draws an
	// answer from every responder on the link.
	AnswerGroup bool

	// AnySource answers sources that cannot be one remote host:
	// unspecified, broadcast, multicast, loopback, class E, or one of
	// the engine's own addresses. Meant for tests only.
	AnySource bool

	// SourceRate and SourceBurst shape a token bucket per source address
	// for the services whose answer can be larger than the question
	// (daytime, qotd, chargen), so that the engine cannot be used to
	// flood a victim whose address an attacker forges. Zero means
	// DefaultSourceRate and DefaultSourceBurst; a negative SourceRate
	// turns the limit off. SourceTable is the number of buckets (a power
	// of two; zero means DefaultSourceTable): sources that hash to one
	// bucket share it.
	SourceRate  float64
	SourceBurst int
	SourceTable int

	// TotalRate and TotalBurst shape one token bucket, shared by every
	// source and worker, for all the replies of the amplifying services
	// together: the per-source buckets bound what one victim receives,
	// this bounds what the engine sends when an attacker forges many
	// victims. The unit is replies, as for SourceRate: a reply of these
	// services is at most 512 bytes of data, so the default (1000/s,
	// bursts of 200) caps the engine's share of a reflection attack at
	// about 4.6 Mbit/s on the wire, the order of Linux's own budget for
	// ICMP errors. Zero means DefaultTotalRate and DefaultTotalBurst; a
	// negative TotalRate turns the cap off. SourceRate < 0 leaves it on.
	TotalRate  float64
	TotalBurst int

	// LimitEcho applies the per-source limit and the total cap to echo as
	// well. Echo's answer is never larger than the question, so by
	// default only the loop, source and group guards apply to it, and a
	// load generator can measure it at full rate.
	LimitEcho bool
}

// withDefaults returns a copy of c with every zero field set.
func (c *Config) withDefaults() (Config, error) {
	var d Config
	if c != nil {
		d = *c
	}
	if d.Backend != BackendTPACKET && d.Backend != BackendXDP {
		return d, fmt.Errorf("engine: Config.Backend %d is neither BackendTPACKET nor BackendXDP", d.Backend)
	}
	if d.Workers == 0 && d.Backend == BackendTPACKET {
		d.Workers = 1 // on XDP, the interface's queues decide (Open)
	}
	if d.XDP.FrameCount < 0 || d.XDP.BatchSize < 0 {
		return d, fmt.Errorf("engine: negative XDPConfig.FrameCount or BatchSize")
	}
	if d.Workers < 0 || d.Workers > 64 {
		return d, fmt.Errorf("engine: Config.Workers %d out of range 1-64", d.Workers)
	}
	// cmp.Or keeps a field that is set and gives a zero one its default.
	d.RXVersion = cmp.Or(d.RXVersion, ring.V2)
	if d.OnLinkDown != LinkResume && d.OnLinkDown != LinkFail {
		return d, fmt.Errorf("engine: Config.OnLinkDown %d is neither LinkResume nor LinkFail", d.OnLinkDown)
	}
	if d.RXVersion != ring.V2 && d.RXVersion != ring.V3 {
		return d, fmt.Errorf("engine: Config.RXVersion %d is neither V2 nor V3", d.RXVersion)
	}
	d.RetireTimeout = cmp.Or(d.RetireTimeout, DefaultRetireTimeout)
	d.QueueDepth = cmp.Or(d.QueueDepth, DefaultQueueDepth)
	if d.QueueDepth < 0 || d.QueueDepth > queue.MaxCapacity {
		return d, fmt.Errorf("engine: Config.QueueDepth %d out of range", d.QueueDepth)
	}
	d.ICMPRate = cmp.Or(d.ICMPRate, DefaultICMPRate)
	d.ICMPBurst = cmp.Or(d.ICMPBurst, DefaultICMPBurst)
	d.TTL = cmp.Or(d.TTL, DefaultTTL)
	d.ResolveWait = cmp.Or(d.ResolveWait, DefaultResolveWait)
	d.NeighborTTL = cmp.Or(d.NeighborTTL, DefaultNeighborTTL)
	g := &d.Guard
	if g.LoopPorts == nil {
		g.LoopPorts = DefaultLoopPorts
	}
	g.SourceRate = cmp.Or(g.SourceRate, DefaultSourceRate)
	g.SourceBurst = cmp.Or(g.SourceBurst, DefaultSourceBurst)
	g.SourceTable = cmp.Or(g.SourceTable, DefaultSourceTable)
	g.TotalRate = cmp.Or(g.TotalRate, DefaultTotalRate)
	g.TotalBurst = cmp.Or(g.TotalBurst, DefaultTotalBurst)
	if g.SourceTable < 0 || g.SourceTable > 1<<24 {
		return d, fmt.Errorf("engine: Guard.SourceTable %d out of range", g.SourceTable)
	}
	d.Quote = cmp.Or(d.Quote, DefaultQuote)
	if len(d.Quote) > 512 {
		return d, fmt.Errorf("engine: Config.Quote is %d bytes; RFC 865 asks for at most 512", len(d.Quote))
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.VLAN > MaxVLANID {
		return d, fmt.Errorf("engine: Config.VLAN %d out of range 0-%d", d.VLAN, MaxVLANID)
	}
	d.MulticastRobustness = cmp.Or(d.MulticastRobustness, DefaultMulticastRobustness)
	if d.MulticastRobustness < 1 || d.MulticastRobustness > 7 {
		// QRV is a 3-bit field: a querier cannot announce more.
		return d, fmt.Errorf("engine: Config.MulticastRobustness %d out of range 1-7", d.MulticastRobustness)
	}
	for _, gw := range []netip.Addr{d.Gateway4, d.Gateway6} {
		if gw.IsValid() && (gw.IsUnspecified() || gw.IsMulticast()) {
			return d, fmt.Errorf("engine: gateway %v is not a unicast address", gw)
		}
	}
	if d.Gateway4.IsValid() && !d.Gateway4.Is4() || d.Gateway6.IsValid() && !d.Gateway6.Is6() {
		return d, fmt.Errorf("engine: Gateway4 must be IPv4 and Gateway6 IPv6")
	}
	if err := d.fragmentDefaults(); err != nil {
		return d, err
	}
	return d, nil
}

// fragmentDefaults fills in and checks the fields of reassembly.
func (d *Config) fragmentDefaults() error {
	d.ReassemblyMemory = cmp.Or(d.ReassemblyMemory, DefaultReassemblyMemory)
	d.ReassemblyTimeout4 = cmp.Or(d.ReassemblyTimeout4, reassembly.DefaultTimeoutIPv4)
	d.ReassemblyTimeout6 = cmp.Or(d.ReassemblyTimeout6, reassembly.DefaultTimeoutIPv6)
	if d.ReassemblyTimeout4 < 0 || d.ReassemblyTimeout6 < 0 {
		return fmt.Errorf("engine: negative reassembly timeout")
	}
	if d.ReassemblySourceShare < 0 || d.ReassemblyMemory > 0 && d.ReassemblySourceShare > d.ReassemblyMemory {
		return fmt.Errorf("engine: Config.ReassemblySourceShare %d out of range 0-%d", d.ReassemblySourceShare, d.ReassemblyMemory)
	}
	return nil
}

// reassemblyConfig is the configuration of one worker's reassembler, nil
// if reassembly is off: an equal share of the memory and of the source
// share, and one reassembled datagram out at a time (the worker releases
// each before it takes the next fragment).
func (d *Config) reassemblyConfig() *reassembly.Config {
	if d.ReassemblyMemory < 0 {
		return nil
	}
	n := max(d.Workers, 1)
	rc := &reassembly.Config{
		MemoryLimit:  max(d.ReassemblyMemory/n, reassembly.MinMemoryLimit),
		TimeoutIPv4:  d.ReassemblyTimeout4,
		TimeoutIPv6:  d.ReassemblyTimeout6,
		MaxDatagrams: 1,
	}
	if d.ReassemblySourceShare > 0 {
		rc.SourceLimit = min(d.ReassemblySourceShare/n, rc.MemoryLimit)
	}
	return rc
}
