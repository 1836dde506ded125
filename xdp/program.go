package xdp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/cilium/ebpf/asm"

	"github.com/pktengine/pktengine/internal/enum"
)

// Program is pktengine's XDP program on one interface: it redirects to
// the AF_XDP socket of the receiving queue (an XSKMAP keyed by
// rx_queue_index) exactly the frames the engine serves, and passes
// everything else to the kernel:
//
//   - UDP over IPv4 or IPv6 to one of its addresses, fragments included
//     (every fragment of a UDP datagram goes to the engine, which
//     reassembles);
//   - ARP whose target protocol address is one of its addresses, and
//     IPv6 neighbour solicitations whose target is (and advertisements
//     to one);
//   - ICMP and ICMPv6 to one of its addresses;
//   - with ProgramConfig.VLAN, the same behind one 802.1Q or 802.1ad tag.
//
// An address served with ServeUDPPorts instead of ServeUDP (one the
// engine shares with the kernel) steers only the unfragmented UDP
// datagrams to the ports AddPort lists for it; every other datagram to
// it, fragments included, goes to the kernel.
//
// The addresses live in an eBPF hash map that AddAddr and RemoveAddr
// update while the program runs, the ports in a second one. A frame that matches but finds no socket
// on its queue is passed to the kernel too (bpf_redirect_map's default
// action), and counted.
//
// The program is built in Go with cilium/ebpf's asm package, so building
// pktengine needs no C compiler. It is attached with a bpf_link, which
// the kernel removes when the last descriptor to it closes: Close, or the
// end of the process however it ends.
type Program struct {
	cfg ProgramConfig
	prog
}

// ProgramConfig configures a Program. A nil *ProgramConfig and zero
// fields mean the defaults given with each field.
type ProgramConfig struct {
	// Addrs are served from the start, for everything (ServeAll).
	Addrs []netip.Addr

	// VLAN also steers frames with one 802.1Q (0x8100) or 802.1ad
	// (0x88a8) tag by the same rules. Without it tagged frames pass.
	VLAN bool

	// Queues is the size of the XSKMAP: receive queues 0 to Queues-1
	// can have a socket. Zero means 64.
	Queues int

	// MaxAddrs is the size of the address map. Zero means 256.
	MaxAddrs int

	// MaxPorts is the size of the port map (address and port pairs for
	// ServeUDPPorts). Zero means 4096.
	MaxPorts int

	// Generic attaches in generic (SKB) mode instead of the driver's
	// native mode. Without it, an interface whose driver has no native
	// XDP is an error (ErrNoDriverSupport), never a silent fallback.
	Generic bool

	// ReplaceForeign allows Attach to detach an XDP program that is not
	// pktengine's. A stale program of pktengine's, whose process is
	// gone, is always replaced; one whose process still runs never is.
	ReplaceForeign bool
}

// ServeFlags say what the program steers to the engine for an address.
type ServeFlags uint32

const (
	ServeUDP      ServeFlags = 1 << iota // UDP and UDP fragments
	ServeICMP                            // ICMP (IPv4) and ICMPv6 other than neighbour discovery
	ServeNeighbor                        // ARP and IPv6 neighbour discovery
	// ServeUDPPorts steers unfragmented UDP to the ports AddPort lists
	// for the address, and nothing else of its UDP: for an address the
	// kernel keeps, or a group address a port is bound to. ServeUDP
	// takes precedence.
	ServeUDPPorts

	ServeAll = ServeUDP | ServeICMP | ServeNeighbor
)

// Class is why the program redirected or passed a frame; ProgramStats
// counts each.
type Class int

const (
	ClassPassed     Class = iota // not the engine's: passed to the kernel
	ClassUDPv4                   // UDP to an engine address over IPv4
	ClassUDPv6                   // ... over IPv6
	ClassFragmentV4              // an IPv4 fragment of a UDP datagram
	ClassFragmentV6              // an IPv6 fragment of a UDP datagram
	ClassARP                     // ARP for an engine address
	ClassNDP                     // IPv6 neighbour discovery for an engine address
	ClassICMPv4                  // ICMP to an engine address
	ClassICMPv6                  // ICMPv6 to an engine address
	ClassNoSocket                // matched, but no socket on the receiving queue: passed
	numClasses
)

var classNames = [numClasses]string{"passed", "udp4", "udp6", "fragment4", "fragment6", "arp", "ndp", "icmp4", "icmp6", "no-socket"}

func (c Class) String() string {
	if c >= 0 && c < numClasses {
		return classNames[c]
	}
	return fmt.Sprintf("Class(%d)", int(c))
}

// ProgramStats counts frames by Class, summed over CPUs. A redirected
// frame that found no socket counts in its class and in NoSocket.
type ProgramStats [numClasses]uint64

// Steered returns the frames that matched, whether or not a socket took
// them.
func (s ProgramStats) Steered() uint64 {
	var n uint64
	for c := ClassUDPv4; c <= ClassICMPv6; c++ {
		n += s[c]
	}
	return n
}

// Action is an XDP program's verdict.
type Action uint32

const (
	ActionAborted  Action = 0 // XDP_ABORTED
	ActionDrop     Action = 1 // XDP_DROP
	ActionPass     Action = 2 // XDP_PASS
	ActionTX       Action = 3 // XDP_TX
	ActionRedirect Action = 4 // XDP_REDIRECT
)

var actionNames = enum.Names[Action]{
	ActionAborted:  "XDP_ABORTED",
	ActionDrop:     "XDP_DROP",
	ActionPass:     "XDP_PASS",
	ActionTX:       "XDP_TX",
	ActionRedirect: "XDP_REDIRECT",
}

func (a Action) String() string { return actionNames.Format(a, "Action") }

// AttachInfo describes how a Program was attached.
type AttachInfo struct {
	Ifindex int
	Name    string
	Generic bool // generic (SKB) mode rather than native

	// Replaced is the program Attach found and detached, if any:
	// its ID and name, and whether it was a stale one of pktengine's
	// (its process gone) rather than a foreign one (ReplaceForeign).
	ReplacedID    uint32
	ReplacedName  string
	ReplacedStale bool
}

// Errors from Attach, wrapped with the details in a *net.OpError.
var (
	// ErrProgramPresent: another program's XDP program is attached to
	// the interface. ProgramConfig.ReplaceForeign replaces it.
	ErrProgramPresent = errors.New("another XDP program is attached to the interface")

	// ErrInUse: a live pktengine process serves the interface with its
	// own program.
	ErrInUse = errors.New("the interface is served by another pktengine process")

	// ErrNoDriverSupport: the interface's driver has no native XDP.
	ErrNoDriverSupport = errors.New("the interface's driver does not support native XDP")

	// ErrMTUTooLarge: the MTU does not fit single-buffer XDP.
	ErrMTUTooLarge = errors.New("the MTU is too large for single-buffer XDP")

	// ErrPermission: the process lacks a capability XDP needs.
	ErrPermission = errors.New("missing capability for eBPF and XDP")
)

// NewProgram loads the program and its maps into the kernel without
// attaching it: Test runs it over crafted frames, Attach puts it on an
// interface.
func NewProgram(cfg *ProgramConfig) (*Program, error) { return newProgram(cfg) }

// Attach loads the program and attaches it to ifi; see Program.Attach.
func Attach(ifi *net.Interface, cfg *ProgramConfig) (*Program, error) {
	p, err := newProgram(cfg)
	if err != nil {
		return nil, err
	}
	if err := p.Attach(ifi); err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

// Attach attaches the program to ifi, in native mode unless
// ProgramConfig.Generic. An XDP program already there is replaced if it is
// a stale one of pktengine's (its process is gone) or if ReplaceForeign
// allows it; otherwise Attach fails with ErrProgramPresent or ErrInUse.
// It fails with ErrNoDriverSupport, ErrMTUTooLarge or ErrPermission when
// the kernel refuses, naming the cause. Call it on a thread in ifi's
// network namespace.
func (p *Program) Attach(ifi *net.Interface) error { return p.attach(ifi) }

// Info returns how the program was attached.
func (p *Program) Info() AttachInfo { return p.info }

// Register puts s in the XSKMAP at its queue: from then on the program
// redirects that queue's matching frames to it. Closing the socket
// removes it from the map.
func (p *Program) Register(s *Socket) error { return p.register(s) }

// AddAddr serves addr (IPv4 or IPv6) for what flags say; it replaces the
// flags of an address already served.
func (p *Program) AddAddr(addr netip.Addr, flags ServeFlags) error { return p.addAddr(addr, flags) }

// RemoveAddr stops serving addr.
func (p *Program) RemoveAddr(addr netip.Addr) error { return p.removeAddr(addr) }

// AddPort steers UDP datagrams to ap (not fragments) when ap's address is
// served with ServeUDPPorts.
func (p *Program) AddPort(ap netip.AddrPort) error { return p.addPort(ap) }

// RemovePort stops steering datagrams to ap by port.
func (p *Program) RemovePort(ap netip.AddrPort) error { return p.removePort(ap) }

// Stats returns the program's counters.
func (p *Program) Stats() (ProgramStats, error) { return p.stats() }

// Test runs the program once over frame with BPF_PROG_RUN, as if it had
// arrived on the given receive queue, and returns its verdict and the
// class it counted. It is how the program is tested without a network.
func (p *Program) Test(frame []byte, queue int) (Action, Class, error) { return p.test(frame, queue) }

// Close detaches the program (if attached) and releases it and its maps.
func (p *Program) Close() error { return p.close() }

// Names the kernel shows for the program and its maps (at most 15 bytes):
// Attach recognises a program of pktengine's by them.
const (
	steerProgName = "pkte_steer"
	xsksMapName   = "pkte_xsks"
	addrsMapName  = "pkte_addrs"
	portsMapName  = "pkte_ports"
	statsMapName  = "pkte_stats"
	ownerMapName  = "pkte_owner"
)

// be16 and be32 return the value a native-endian load of v's big-endian
// bytes gives: the constant to compare a packet field with.
func be16(v uint16) int32 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], v)
	return int32(binary.NativeEndian.Uint16(b[:]))
}

// ne32 returns the native-endian u32 of 4 bytes.
func ne32(b [4]byte) int32 { return int32(binary.NativeEndian.Uint32(b[:])) }

// builder appends instructions and puts pending labels on the next one.
type builder struct {
	insns   asm.Instructions
	pending string
}

func (b *builder) label(name string) {
	if b.pending != "" {
		// Two labels on one place: a jump to the first one.
		b.emit(asm.Ja.Label(name))
	}
	b.pending = name
}

func (b *builder) emit(insns ...asm.Instruction) {
	for _, ins := range insns {
		if b.pending != "" {
			ins = ins.WithSymbol(b.pending)
			b.pending = ""
		}
		b.insns = append(b.insns, ins)
	}
}

// checkBounds emits the check the verifier wants before a packet read:
// dst = base + n; if dst > R8, the data end, jump to fail.
func (b *builder) checkBounds(dst, base asm.Register, n int32, fail string) {
	b.emit(
		asm.Mov.Reg(dst, base),
		asm.Add.Imm(dst, n),
		asm.JGT.Reg(dst, asm.R8, fail),
	)
}

// lookup emits a map lookup: R0 = the value in mapName under the key on
// the stack at keyOff; with no such value, a jump to miss. It clobbers R0
// to R5.
func (b *builder) lookup(mapName string, keyOff int32, miss string) {
	b.emit(
		asm.LoadMapPtr(asm.R1, 0).WithReference(mapName),
		asm.Mov.Reg(asm.R2, asm.R10),
		asm.Add.Imm(asm.R2, keyOff),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, miss),
	)
}

// copy16 emits a copy of the 16 bytes at src+srcOff to dst+dstOff (an
// address key), in two 64-bit moves through tmp.
func (b *builder) copy16(dst asm.Register, dstOff int16, src asm.Register, srcOff int16, tmp asm.Register) {
	b.emit(
		asm.LoadMem(tmp, src, srcOff, asm.DWord),
		asm.StoreMem(dst, dstOff, tmp, asm.DWord),
		asm.LoadMem(tmp, src, srcOff+8, asm.DWord),
		asm.StoreMem(dst, dstOff+8, tmp, asm.DWord),
	)
}

// Offsets in struct xdp_md.
const (
	xdpMDData       = 0
	xdpMDDataEnd    = 4
	xdpMDRxQueueIdx = 16
)

// Stack slots of the steering program (offsets from R10).
const (
	stackKey   = -16 // 16-byte address key
	stackFlag  = -20 // u32 ServeFlags the class needs
	stackClass = -24 // u32 stats index
	stackPort  = -28 // u32: 0x10000 | destination port (as a native load of its bytes), or 0 if unknown
	stackPKey  = -48 // 20-byte port key: address key, port, two zero bytes
)

// portKeyLen is the size of a port map key: the 16-byte address key, the
// port in network byte order, and two zero bytes.
const portKeyLen = 20

// portKey returns the port map key of ap.
func portKey(ap netip.AddrPort) ([portKeyLen]byte, error) {
	var k [portKeyLen]byte
	a := ap.Addr()
	if !a.IsValid() {
		return k, errors.New("xdp: invalid address")
	}
	a16 := a.Unmap().As16()
	copy(k[:], a16[:])
	binary.BigEndian.PutUint16(k[16:], ap.Port())
	return k, nil
}

// steerInstructions returns the steering program. Registers: R6 the
// context, R7 the data start (later the class), R8 the data end, R9 the
// network header.
func steerInstructions(vlan bool) asm.Instructions {
	var b builder
	const (
		r0, r1, r2, r3, r4, r5, r6, r7, r8, r9, r10 = asm.R0, asm.R1, asm.R2, asm.R3, asm.R4, asm.R5, asm.R6, asm.R7, asm.R8, asm.R9, asm.R10
	)
	// ipHeader checks that the network header holds n bytes and is of IP
	// version v, or passes the frame.
	ipHeader := func(n, v int32) {
		b.checkBounds(r2, r9, n, "pass")
		b.emit(
			asm.LoadMem(r2, r9, 0, asm.Byte),
			asm.And.Imm(r2, 0xf0),
			asm.JNE.Imm(r2, v<<4, "pass"),
		)
	}
	// port puts the destination port of the UDP header at l4 in
	// stackPort (as that slot holds it), if the frame holds the port, and
	// goes on at next. It clobbers R4 and tmp.
	port := func(l4, tmp asm.Register, next string) {
		b.checkBounds(tmp, l4, 4, next)
		b.emit(
			asm.LoadMem(r4, l4, 2, asm.Half),
			asm.Or.Imm(r4, 0x10000),
			asm.StoreMem(r10, stackPort, r4, asm.Word),
			asm.Ja.Label(next),
		)
	}
	b.emit(
		// Referencing the owner map ties it to the program, where
		// Attach finds it (the kernel lists a program's maps).
		asm.LoadMapPtr(r0, 0).WithReference(ownerMapName),
		asm.Mov.Reg(r6, r1),
		asm.StoreImm(r10, stackPort, 0, asm.Word),
		asm.LoadMem(r7, r6, xdpMDData, asm.Word),
		asm.LoadMem(r8, r6, xdpMDDataEnd, asm.Word),
	)
	b.checkBounds(r9, r7, 14, "pass")
	b.emit(asm.LoadMem(r4, r7, 12, asm.Half))
	if vlan {
		b.emit(
			asm.JEq.Imm(r4, be16(0x8100), "vlan"),
			asm.JNE.Imm(r4, be16(0x88a8), "l3"),
		)
		b.label("vlan")
		b.checkBounds(r9, r7, 18, "pass")
		b.emit(asm.LoadMem(r4, r7, 16, asm.Half))
	}
	b.label("l3")
	b.emit(
		asm.JEq.Imm(r4, be16(0x0800), "ipv4"),
		asm.JEq.Imm(r4, be16(0x86dd), "ipv6"),
		asm.JNE.Imm(r4, be16(0x0806), "pass"),
	)

	// ARP for IPv4 over Ethernet, keyed by the target protocol address.
	b.checkBounds(r2, r9, 28, "pass")
	b.emit(
		asm.LoadMem(r2, r9, 2, asm.Half),
		asm.JNE.Imm(r2, be16(0x0800), "pass"),
		asm.LoadMem(r2, r9, 4, asm.Half), // hardware and protocol address lengths
		asm.JNE.Imm(r2, be16(0x0604), "pass"),
		asm.LoadMem(r3, r9, 24, asm.Word),
		asm.Mov.Imm(r7, int32(ClassARP)),
		asm.StoreImm(r10, stackFlag, int64(ServeNeighbor), asm.Word),
		asm.Ja.Label("key4"),
	)

	// IPv4, keyed by the destination. Every fragment of a UDP datagram
	// carries protocol 17, so fragments need no transport header.
	b.label("ipv4")
	ipHeader(20, 4)
	b.emit(
		asm.LoadMem(r3, r9, 16, asm.Word),
		asm.LoadMem(r4, r9, 9, asm.Byte),
		asm.LoadMem(r5, r9, 6, asm.Half),
		asm.And.Imm(r5, be16(0x3fff)), // MF and fragment offset
		asm.JEq.Imm(r4, 1, "icmp4"),
		asm.JNE.Imm(r4, 17, "pass"),
		asm.StoreImm(r10, stackFlag, int64(ServeUDP), asm.Word),
		asm.Mov.Imm(r7, int32(ClassUDPv4)),
		asm.JEq.Imm(r5, 0, "port4"),
		asm.Mov.Imm(r7, int32(ClassFragmentV4)),
		asm.Ja.Label("key4"),
	)
	// The destination port, behind the header length the IHL gives,
	// for addresses served by port.
	b.label("port4")
	b.emit(
		asm.LoadMem(r2, r9, 0, asm.Byte),
		asm.And.Imm(r2, 0x0f),
		asm.LSh.Imm(r2, 2),
		asm.Add.Reg(r2, r9),
	)
	port(r2, r4, "key4")
	b.label("icmp4")
	b.emit(
		asm.StoreImm(r10, stackFlag, int64(ServeICMP), asm.Word),
		asm.Mov.Imm(r7, int32(ClassICMPv4)),
	)
	// The IPv4 address in R3 becomes an IPv4-mapped IPv6 key.
	b.label("key4")
	b.emit(
		asm.StoreImm(r10, stackKey, 0, asm.Word),
		asm.StoreImm(r10, stackKey+4, 0, asm.Word),
		asm.StoreImm(r10, stackKey+8, int64(ne32([4]byte{0, 0, 0xff, 0xff})), asm.Word),
		asm.StoreMem(r10, stackKey+12, r3, asm.Word),
		asm.Ja.Label("lookup"),
	)

	// IPv6: walk up to four extension headers (hop-by-hop, routing,
	// destination options, fragment) to the upper-layer header. R4 is
	// the next header, R5 the cursor, R0 set if a fragment header was
	// seen.
	b.label("ipv6")
	ipHeader(40, 6)
	b.emit(
		asm.LoadMem(r4, r9, 6, asm.Byte),
		asm.Mov.Reg(r5, r9),
		asm.Add.Imm(r5, 40),
		asm.Mov.Imm(r0, 0),
	)
	const maxExt = 4
	for k := range maxExt {
		ext, opt, frag, next := fmt.Sprintf("ext%d", k), fmt.Sprintf("opt%d", k), fmt.Sprintf("frag%d", k), fmt.Sprintf("ext%d", k+1)
		b.label(ext)
		b.emit(
			asm.JEq.Imm(r4, 44, frag),
			asm.JEq.Imm(r4, 0, opt),
			asm.JEq.Imm(r4, 43, opt),
			asm.JEq.Imm(r4, 60, opt),
			asm.Ja.Label("l4v6"),
		)
		b.label(opt)
		b.checkBounds(r2, r5, 8, "pass")
		b.emit(
			asm.LoadMem(r2, r5, 1, asm.Byte),
			asm.LoadMem(r4, r5, 0, asm.Byte),
			asm.Add.Imm(r2, 1),
			asm.LSh.Imm(r2, 3),
			asm.Add.Reg(r5, r2),
			asm.Ja.Label(next),
		)
		b.label(frag)
		b.checkBounds(r2, r5, 8, "pass")
		b.emit(
			asm.LoadMem(r4, r5, 0, asm.Byte),
			asm.Mov.Imm(r0, 1),
			asm.Add.Imm(r5, 8),
			asm.Ja.Label(next),
		)
	}
	// Still an extension header after maxExt: not walked, passed.
	b.label(fmt.Sprintf("ext%d", maxExt))
	b.emit(
		asm.JEq.Imm(r4, 44, "pass"),
		asm.JEq.Imm(r4, 0, "pass"),
		asm.JEq.Imm(r4, 43, "pass"),
		asm.JEq.Imm(r4, 60, "pass"),
	)
	b.label("l4v6")
	b.emit(
		asm.JEq.Imm(r4, 58, "icmp6"),
		asm.JNE.Imm(r4, 17, "pass"),
		asm.StoreImm(r10, stackFlag, int64(ServeUDP), asm.Word),
		asm.Mov.Imm(r7, int32(ClassUDPv6)),
		asm.JEq.Imm(r0, 0, "port6"),
		asm.Mov.Imm(r7, int32(ClassFragmentV6)),
		asm.Ja.Label("key6dst"),
	)
	b.label("port6")
	port(r5, r2, "key6dst")
	// ICMPv6: a neighbour solicitation goes to a solicited-node group,
	// so it is keyed by its target; everything else by the destination.
	b.label("icmp6")
	b.emit(
		asm.StoreImm(r10, stackFlag, int64(ServeICMP), asm.Word),
		asm.Mov.Imm(r7, int32(ClassICMPv6)),
		asm.JNE.Imm(r0, 0, "key6dst"), // a fragment: no ICMPv6 header to read
	)
	b.checkBounds(r2, r5, 4, "pass")
	b.emit(
		asm.LoadMem(r3, r5, 0, asm.Byte),
		asm.JEq.Imm(r3, 135, "ns"),
		asm.JNE.Imm(r3, 136, "key6dst"),
		asm.StoreImm(r10, stackFlag, int64(ServeNeighbor), asm.Word),
		asm.Mov.Imm(r7, int32(ClassNDP)),
		asm.Ja.Label("key6dst"),
	)
	b.label("ns")
	b.checkBounds(r2, r5, 24, "pass")
	b.emit(
		asm.StoreImm(r10, stackFlag, int64(ServeNeighbor), asm.Word),
		asm.Mov.Imm(r7, int32(ClassNDP)),
	)
	b.copy16(r10, stackKey, r5, 8, r2) // the target address
	b.emit(asm.Ja.Label("lookup"))
	b.label("key6dst")
	b.copy16(r10, stackKey, r9, 24, r2) // the destination address

	// Is the key one of ours, for this class?
	b.label("lookup")
	b.lookup(addrsMapName, stackKey, "pass")
	b.emit(
		asm.LoadMem(r2, r0, 0, asm.Word),
		asm.LoadMem(r3, r10, stackFlag, asm.Word),
		asm.Mov.Reg(r4, r2),
		asm.And.Reg(r4, r3),
		asm.JNE.Imm(r4, 0, "steer"),
		// Not served for the class; an unfragmented datagram may be
		// served by its port.
		asm.JNE.Imm(r3, int32(ServeUDP), "pass"),
		asm.And.Imm(r2, int32(ServeUDPPorts)),
		asm.JEq.Imm(r2, 0, "pass"),
		asm.LoadMem(r2, r10, stackPort, asm.Word),
		asm.JEq.Imm(r2, 0, "pass"), // a fragment, or no room for the port
	)
	b.copy16(r10, stackPKey, r10, stackKey, r3)
	b.emit(
		asm.StoreImm(r10, stackPKey+16, 0, asm.Word),
		asm.StoreMem(r10, stackPKey+16, r2, asm.Half),
	)
	b.lookup(portsMapName, stackPKey, "pass")
	b.label("steer")
	emitCount(&b, r7)
	b.emit(
		asm.LoadMem(r2, r6, xdpMDRxQueueIdx, asm.Word),
		asm.LoadMapPtr(r1, 0).WithReference(xsksMapName),
		asm.Mov.Imm(r3, int32(ActionPass)), // no socket on the queue: pass
		asm.FnRedirectMap.Call(),
		asm.JEq.Imm(r0, int32(ActionRedirect), "exit"),
		asm.Mov.Imm(r7, int32(ClassNoSocket)),
		asm.Ja.Label("countpass"),
	)
	b.label("pass")
	b.emit(asm.Mov.Imm(r7, int32(ClassPassed)))
	b.label("countpass")
	emitCount(&b, r7)
	b.emit(asm.Mov.Imm(r0, int32(ActionPass)))
	b.label("exit")
	b.emit(asm.Return())
	return b.insns
}

// emitCount adds one to the per-CPU counter of the class in reg. It
// clobbers R0 to R5.
func emitCount(b *builder, reg asm.Register) {
	skip := fmt.Sprintf("counted%d", len(b.insns))
	b.emit(asm.StoreMem(asm.R10, stackClass, reg, asm.Word))
	b.lookup(statsMapName, stackClass, skip)
	b.emit(
		asm.LoadMem(asm.R1, asm.R0, 0, asm.DWord),
		asm.Add.Imm(asm.R1, 1),
		asm.StoreMem(asm.R0, 0, asm.R1, asm.DWord),
	)
	b.label(skip)
}
