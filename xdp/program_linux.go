//go:build linux

package xdp

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// prog is the Linux part of a Program.
type prog struct {
	mu      sync.Mutex
	coll    *ebpf.Collection
	bpfProg *ebpf.Program
	xsks    *ebpf.Map
	addrs   *ebpf.Map
	ports   *ebpf.Map
	stat    *ebpf.Map
	link    link.Link
	ifi     *net.Interface
	info    AttachInfo
	closed  bool
}

// owner is the value of the owner map: the process that loaded the
// program, and when it started (so that a reused pid is not mistaken for
// the owner).
type owner struct {
	PID   uint32
	_     uint32
	Start uint64 // /proc/PID/stat starttime, in clock ticks since boot
}

func newProgram(cfg *ProgramConfig) (*Program, error) {
	start, err := processStart(os.Getpid())
	if err != nil {
		return nil, fmt.Errorf("xdp: %w", err)
	}
	return newProgramOwned(cfg, owner{PID: uint32(os.Getpid()), Start: start})
}

// newProgramOwned loads the program with the given owner in its owner map.
func newProgramOwned(cfg *ProgramConfig, own owner) (*Program, error) {
	var c ProgramConfig
	if cfg != nil {
		c = *cfg
	}
	c.Queues = orDefault(c.Queues, 64)
	c.MaxAddrs = orDefault(c.MaxAddrs, 256)
	c.MaxPorts = orDefault(c.MaxPorts, 4096)
	if c.Queues < 1 || c.Queues > 4096 || c.MaxAddrs < 1 || c.MaxAddrs > 1<<16 || c.MaxPorts < 1 || c.MaxPorts > 1<<20 {
		return nil, fmt.Errorf("xdp: ProgramConfig.Queues = %d (1 to 4096), MaxAddrs = %d (1 to 65536), MaxPorts = %d (1 to 1048576)", c.Queues, c.MaxAddrs, c.MaxPorts)
	}
	spec := &ebpf.CollectionSpec{
		Maps: map[string]*ebpf.MapSpec{
			xsksMapName:  {Name: xsksMapName, Type: ebpf.XSKMap, KeySize: 4, ValueSize: 4, MaxEntries: uint32(c.Queues)},
			addrsMapName: {Name: addrsMapName, Type: ebpf.Hash, KeySize: 16, ValueSize: 4, MaxEntries: uint32(c.MaxAddrs)},
			portsMapName: {Name: portsMapName, Type: ebpf.Hash, KeySize: portKeyLen, ValueSize: 4, MaxEntries: uint32(c.MaxPorts)},
			statsMapName: {Name: statsMapName, Type: ebpf.PerCPUArray, KeySize: 4, ValueSize: 8, MaxEntries: uint32(numClasses)},
			ownerMapName: {Name: ownerMapName, Type: ebpf.Array, KeySize: 4, ValueSize: 16, MaxEntries: 1,
				Contents: []ebpf.MapKV{{Key: uint32(0), Value: own}}},
		},
		Programs: map[string]*ebpf.ProgramSpec{
			steerProgName: {
				Name:         steerProgName,
				Type:         ebpf.XDP,
				License:      "GPL", // bpf_redirect_map is GPL-only
				Instructions: steerInstructions(c.VLAN),
			},
		},
	}
	coll, err := ebpf.NewCollection(spec)
	if err != nil {
		return nil, loadError(err)
	}
	p := &Program{cfg: c}
	p.coll = coll
	p.bpfProg = coll.Programs[steerProgName]
	p.xsks = coll.Maps[xsksMapName]
	p.addrs = coll.Maps[addrsMapName]
	p.ports = coll.Maps[portsMapName]
	p.stat = coll.Maps[statsMapName]
	for _, a := range c.Addrs {
		if err := p.addAddr(a, ServeAll); err != nil {
			coll.Close()
			return nil, err
		}
	}
	return p, nil
}

// loadError names a missing capability.
func loadError(err error) error {
	if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
		return fmt.Errorf("xdp: loading the XDP program: %w: %w (loading eBPF programs needs CAP_BPF, or CAP_SYS_ADMIN, and attaching XDP needs CAP_NET_ADMIN)", ErrPermission, err)
	}
	return fmt.Errorf("xdp: loading the XDP program: %w", err)
}

// processStart returns the start time of a process (field 22 of
// /proc/PID/stat).
func processStart(pid int) (uint64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may hold
	// spaces; count from the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f)+2)
	}
	return strconv.ParseUint(f[19], 10, 64) // field 22 is the 20th after the name
}

func (p *Program) opError(err error) error {
	var addr net.Addr
	if p.ifi != nil {
		addr = &Addr{Index: p.ifi.Index, Name: p.ifi.Name, Queue: -1}
	}
	return &net.OpError{Op: "attach", Net: "xdp", Addr: addr, Err: err}
}

func (p *Program) attach(ifi *net.Interface) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return ErrClosed
	}
	if p.link != nil {
		return p.opError(errors.New("program already attached"))
	}
	p.ifi = ifi
	info := AttachInfo{Ifindex: ifi.Index, Name: ifi.Name, Generic: p.cfg.Generic}
	if err := p.clearInterface(ifi, &info); err != nil {
		return p.opError(err)
	}
	flags := link.XDPDriverMode
	if p.cfg.Generic {
		flags = link.XDPGenericMode
	}
	l, err := link.AttachXDP(link.XDPOptions{Program: p.bpfProg, Interface: ifi.Index, Flags: flags})
	if err != nil {
		return p.opError(p.attachError(ifi, err))
	}
	p.link = l
	p.info = info
	return nil
}

// attachError names the cause of a refused attachment.
func (p *Program) attachError(ifi *net.Interface, err error) error {
	switch {
	case errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, ebpf.ErrNotSupported):
		if p.cfg.Generic {
			return fmt.Errorf("%w: generic XDP: %w", ErrNoDriverSupport, err)
		}
		return fmt.Errorf("%w: %s: %w (generic mode, ProgramConfig.Generic, works on any interface at a cost)", ErrNoDriverSupport, ifi.Name, err)
	case errors.Is(err, unix.ERANGE):
		return fmt.Errorf("%w: %s has MTU %d (on veth, the peer's MTU counts; single-buffer XDP needs it below about 3500 bytes with 4 KiB pages): %w", ErrMTUTooLarge, ifi.Name, ifi.MTU, err)
	case errors.Is(err, unix.EBUSY) || errors.Is(err, unix.EEXIST):
		return fmt.Errorf("%w: a program appeared on %s while attaching: %w", ErrProgramPresent, ifi.Name, err)
	case errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES):
		return fmt.Errorf("%w: attaching XDP needs CAP_NET_ADMIN (and CAP_BPF): %w", ErrPermission, err)
	}
	return err
}

// clearInterface looks at the XDP programs on ifi and detaches those that
// may go: a stale one of ours, or a foreign one with ReplaceForeign.
func (p *Program) clearInterface(ifi *net.Interface, info *AttachInfo) error {
	att, err := queryXDP(ifi.Index)
	if err != nil {
		return err
	}
	for _, a := range att.ids() {
		name, own, err := describeProgram(a.id)
		if err != nil {
			return fmt.Errorf("inspecting XDP program %d on %s: %w", a.id, ifi.Name, err)
		}
		stale := false
		if name == steerProgName {
			if own == nil {
				return fmt.Errorf("%w: XDP program %d %q on %s has no owner map", ErrProgramPresent, a.id, name, ifi.Name)
			}
			if alive(own) {
				return fmt.Errorf("%w: process %d (program %d on %s)", ErrInUse, own.PID, a.id, ifi.Name)
			}
			stale = true
		} else if !p.cfg.ReplaceForeign {
			return fmt.Errorf("%w: %s has XDP program %d %q (ProgramConfig.ReplaceForeign replaces it)", ErrProgramPresent, ifi.Name, a.id, name)
		}
		if err := detachProgram(ifi.Index, a.id, a.flag); err != nil {
			return fmt.Errorf("detaching XDP program %d %q from %s: %w", a.id, name, ifi.Name, err)
		}
		info.ReplacedID, info.ReplacedName, info.ReplacedStale = a.id, name, stale
	}
	return nil
}

// describeProgram returns the name of the program with the given ID and,
// for one of ours, the owner its owner map records.
func describeProgram(id uint32) (string, *owner, error) {
	pr, err := ebpf.NewProgramFromID(ebpf.ProgramID(id))
	if err != nil {
		return "", nil, err
	}
	defer pr.Close()
	pi, err := pr.Info()
	if err != nil {
		return "", nil, err
	}
	if pi.Name != steerProgName {
		return pi.Name, nil, nil
	}
	ids, _ := pi.MapIDs()
	for _, mid := range ids {
		m, err := ebpf.NewMapFromID(mid)
		if err != nil {
			continue
		}
		mi, err := m.Info()
		if err == nil && mi.Name == ownerMapName && mi.ValueSize == 16 {
			var o owner
			err = m.Lookup(uint32(0), &o)
			m.Close()
			if err != nil {
				return pi.Name, nil, err
			}
			return pi.Name, &o, nil
		}
		m.Close()
	}
	return pi.Name, nil, nil
}

// alive reports whether the owner process still runs: its pid exists and
// started when the owner map says.
func alive(o *owner) bool {
	start, err := processStart(int(o.PID))
	return err == nil && start == o.Start
}

// detachProgram removes program id from the interface: through its
// bpf_link if it has one (BPF_LINK_DETACH, which also works on a link
// pinned by a process that is gone), else with netlink.
func detachProgram(ifindex int, id uint32, flag uint32) error {
	it := new(link.Iterator)
	defer it.Close()
	for it.Next() {
		li, err := it.Link.Info()
		if err != nil || li.Type != link.XDPType || uint32(li.Program) != id {
			continue
		}
		d, ok := it.Link.(interface{ Detach() error })
		if !ok {
			return fmt.Errorf("link %d of type %T cannot be detached", it.ID, it.Link)
		}
		return d.Detach()
	}
	if err := it.Err(); err != nil {
		return err
	}
	return setXDP(ifindex, -1, flag)
}

func (p *Program) register(s *Socket) error {
	if s.Queue() >= p.cfg.Queues {
		return fmt.Errorf("xdp: socket on queue %d, but the XSKMAP holds queues 0 to %d (ProgramConfig.Queues)", s.Queue(), p.cfg.Queues-1)
	}
	return s.control(func(fd int) error {
		if err := p.xsks.Put(uint32(s.Queue()), uint32(fd)); err != nil {
			return fmt.Errorf("xdp: registering the socket of queue %d: %w", s.Queue(), err)
		}
		return nil
	})
}

func addrKey(a netip.Addr) ([16]byte, error) {
	if !a.IsValid() {
		return [16]byte{}, errors.New("xdp: invalid address")
	}
	return a.Unmap().As16(), nil // IPv4 as ::ffff:a.b.c.d, as the program builds its keys
}

func (p *Program) addAddr(a netip.Addr, f ServeFlags) error {
	k, err := addrKey(a)
	if err != nil {
		return err
	}
	if err := p.addrs.Put(k, uint32(f)); err != nil {
		return fmt.Errorf("xdp: adding %v: %w", a, err)
	}
	return nil
}

func (p *Program) removeAddr(a netip.Addr) error {
	k, err := addrKey(a)
	if err != nil {
		return err
	}
	if err := p.addrs.Delete(k); err != nil {
		return fmt.Errorf("xdp: removing %v: %w", a, err)
	}
	return nil
}

func (p *Program) addPort(ap netip.AddrPort) error {
	k, err := portKey(ap)
	if err != nil {
		return err
	}
	if err := p.ports.Put(k, uint32(1)); err != nil {
		return fmt.Errorf("xdp: adding port %v: %w", ap, err)
	}
	return nil
}

func (p *Program) removePort(ap netip.AddrPort) error {
	k, err := portKey(ap)
	if err != nil {
		return err
	}
	if err := p.ports.Delete(k); err != nil {
		return fmt.Errorf("xdp: removing port %v: %w", ap, err)
	}
	return nil
}

func (p *Program) stats() (ProgramStats, error) {
	var st ProgramStats
	var per []uint64
	for c := range numClasses {
		if err := p.stat.Lookup(uint32(c), &per); err != nil {
			return st, fmt.Errorf("xdp: reading program counters: %w", err)
		}
		for _, v := range per {
			st[c] += v
		}
	}
	return st, nil
}

// xdpMD is struct xdp_md, the context BPF_PROG_RUN takes.
type xdpMD struct {
	Data, DataEnd, DataMeta, IngressIfindex, RxQueueIndex, EgressIfindex uint32
}

func (p *Program) test(frame []byte, queue int) (Action, Class, error) {
	before, err := p.stats()
	if err != nil {
		return 0, 0, err
	}
	ret, err := p.bpfProg.Run(&ebpf.RunOptions{
		Data:    frame,
		Context: xdpMD{DataEnd: uint32(len(frame)), RxQueueIndex: uint32(queue)},
	})
	if err != nil {
		return 0, 0, fmt.Errorf("xdp: BPF_PROG_RUN: %w", err)
	}
	after, err := p.stats()
	if err != nil {
		return 0, 0, err
	}
	// A frame that matched but found no socket counts in its class and
	// in ClassNoSocket; its class is the answer.
	class := ClassNoSocket
	for c := ClassPassed; c < ClassNoSocket; c++ {
		if after[c] != before[c] {
			class = c
			break
		}
	}
	return Action(ret), class, nil
}

func (p *Program) close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	p.closed = true
	var errs []error
	if p.link != nil {
		errs = append(errs, p.link.Close())
	}
	p.coll.Close()
	if err := errors.Join(errs...); err != nil {
		return p.opError(err)
	}
	return nil
}
