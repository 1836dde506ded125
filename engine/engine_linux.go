//go:build linux

package engine

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	xbpf "golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/pktengine/pktengine/bpf"
	"github.com/pktengine/pktengine/ring"
)

// kernelAddrs returns the addresses of ifi and of every interface in the
// namespace, with prefix lengths.
func kernelAddrs(ifi *net.Interface) (onIface, all []netip.Prefix, err error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, nil, err
	}
	for _, i := range ifs {
		as, err := i.Addrs()
		if err != nil {
			return nil, nil, err
		}
		for _, a := range as {
			ipn, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			addr, ok := netip.AddrFromSlice(ipn.IP)
			if !ok {
				continue
			}
			bits, _ := ipn.Mask.Size()
			p := netip.PrefixFrom(addr.Unmap(), bits)
			all = append(all, p)
			if i.Index == ifi.Index {
				onIface = append(onIface, p)
			}
		}
	}
	return onIface, all, nil
}

func (e *Engine) openPlatform(prog []xbpf.RawInstruction) error {
	c := &e.cfg
	ns, err := currentNetns()
	if err != nil {
		return err
	}
	e.closers = append(e.closers, ns)
	e.reserveShared = func(ap netip.AddrPort) (io.Closer, error) { return ns.reserveUDP(ap, e.ifi.Index) }
	e.warnForwarding()

	// Watch the link before opening the rings: an interface that is
	// gone, or down under LinkFail, fails Open here.
	m, s, err := e.openLinkMonitor(ns)
	if err != nil {
		return err
	}
	e.monitor = m
	if err := e.linkInit(s, time.Now()); err != nil {
		return err
	}
	e.runMonitor = func() { m.run(e) }

	if c.Backend == BackendXDP {
		return e.openXDP(ns, c.Filter)
	}
	b := &tpacketBackend{
		ifi: e.ifi,
		ctx: e.ctx,
		tx:  ring.TXConfig{QdiscBypass: !c.KeepQdisc, FrameCount: c.TXFrameCount},
		rx: ring.RXConfig{
			Version:        c.RXVersion,
			BlockSize:      c.RXBlockSize,
			BlockCount:     c.RXBlockCount,
			RetireTimeout:  c.RetireTimeout,
			FrameCount:     c.RXFrameCount,
			Filter:         prog,
			LockFilter:     true,
			IgnoreOutgoing: true,
			BusyPoll:       c.BusyPoll,
		},
	}
	if c.Workers > 1 {
		// The kernel picks the group's ID when the first ring joins;
		// the others join that group (openWorker).
		b.rx.Fanout = &ring.Fanout{Type: ring.FanoutHash, UniqueID: true}
	}
	return e.openWorkers(b)
}

// warnForwarding logs when the kernel forwards on the engine's interface
// while the engine owns addresses: the kernel would then route frames
// for those addresses instead of dropping them quietly.
func (e *Engine) warnForwarding() {
	for _, fam := range []struct {
		v4  bool
		dir string
	}{{true, "ipv4"}, {false, "ipv6"}} {
		owned := false
		for _, la := range e.addrs.list {
			owned = owned || la.owned && la.addr.Is4() == fam.v4
		}
		if !owned {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc/sys/net", fam.dir, "conf", e.ifi.Name, "forwarding"))
		if err == nil && strings.TrimSpace(string(b)) != "0" {
			e.log.Warn("the kernel forwards on this interface; it may route datagrams for owned addresses as well",
				"iface", e.ifi.Name, "family", fam.dir)
		}
	}
}

// netns is the network namespace the engine was opened in. Sockets the
// engine opens later (on Bind, from any goroutine) must be created there.
type netns struct {
	fd       int
	dev, ino uint64
}

const threadNetns = "/proc/thread-self/ns/net"

func currentNetns() (*netns, error) {
	fd, err := unix.Open(threadNetns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("engine: %w", os.NewSyscallError("open "+threadNetns, err))
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("engine: %w", os.NewSyscallError("fstat", err))
	}
	return &netns{fd: fd, dev: st.Dev, ino: st.Ino}, nil
}

func (n *netns) Close() error { return os.NewSyscallError("close", unix.Close(n.fd)) }

// do runs fn on a thread in the namespace. When the thread is elsewhere
// it switches, and back; a thread that cannot switch back is never
// returned to the Go scheduler (its goroutine exits locked).
func (n *netns) do(fn func() error) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		var st unix.Stat_t
		if err := unix.Stat(threadNetns, &st); err == nil && st.Dev == n.dev && st.Ino == n.ino {
			err := fn()
			runtime.UnlockOSThread()
			done <- err
			return
		}
		orig, err := unix.Open(threadNetns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			done <- os.NewSyscallError("open "+threadNetns, err)
			return
		}
		defer unix.Close(orig)
		if err := unix.Setns(n.fd, unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			done <- os.NewSyscallError("setns", err)
			return
		}
		ferr := fn()
		if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
			done <- errors.Join(ferr, os.NewSyscallError("setns (restoring)", err))
			return // stay locked: the thread dies with the goroutine
		}
		runtime.UnlockOSThread()
		done <- ferr
	}()
	return <-done
}

// reserveUDP keeps the kernel quiet about an engine port on a shared
// address: a kernel UDP socket bound to ap with a classic BPF filter
// that drops everything. The kernel finds a socket for each datagram, so
// it sends no ICMP port unreachable, and the filter drops the datagram,
// so nothing is queued and nobody answers. (The kernel counts each drop
// in its own Udp InErrors.) The socket also holds the port against
// kernel programs, and fails with EADDRINUSE if one already has it.
func (n *netns) reserveUDP(ap netip.AddrPort, ifindex int) (io.Closer, error) {
	fd := -1
	err := n.do(func() error {
		a := ap.Addr()
		family := unix.AF_INET
		if a.Is6() {
			family = unix.AF_INET6
		}
		s, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.IPPROTO_UDP)
		if err != nil {
			return os.NewSyscallError("socket", err)
		}
		fd = s
		if family == unix.AF_INET6 {
			if err := unix.SetsockoptInt(s, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1); err != nil {
				return os.NewSyscallError("setsockopt IPV6_V6ONLY", err)
			}
		}
		if err := bpf.AttachFD(s, bpf.DropAll()); err != nil {
			return err
		}
		var sa unix.Sockaddr
		if a.Is4() {
			sa = &unix.SockaddrInet4{Port: int(ap.Port()), Addr: a.As4()}
		} else {
			s6 := &unix.SockaddrInet6{Port: int(ap.Port()), Addr: a.As16()}
			if a.IsLinkLocalUnicast() {
				s6.ZoneId = uint32(ifindex)
			}
			sa = s6
		}
		return os.NewSyscallError("bind", unix.Bind(s, sa))
	})
	if err != nil {
		if fd >= 0 {
			unix.Close(fd)
		}
		return nil, err
	}
	return fdCloser(fd), nil
}

type fdCloser int

func (f fdCloser) Close() error { return os.NewSyscallError("close", unix.Close(int(f))) }
