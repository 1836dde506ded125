//go:build linux

package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// netnsDir is where ip-netns(8) keeps the bind mounts that name namespaces.
const netnsDir = "/run/netns"

// create builds a lab as Create describes, from a checked Config.
func create(c *Config) (_ *Lab, err error) {
	if _, err := exec.LookPath("ip"); err != nil {
		return nil, fmt.Errorf("ip(8) from iproute2 is needed to build a lab: %w", err)
	}

	removeStale()
	l := &Lab{prefix: fmt.Sprintf("pkte-%d-%06x", os.Getpid(), rand.Uint32()&0xffffff)}
	// The deferred Close also runs when a panic unwinds through Create,
	// so a half-built lab never outlives it.
	ok := false
	defer func() {
		if !ok {
			// Join even a nil err: a panic is on its way up then.
			err = errors.Join(err, l.Close())
		}
	}()

	for i := range c.Hosts {
		h := &Host{
			Name:  fmt.Sprintf("%s-%c", l.prefix, 'a'+rune(i%26)),
			Iface: c.Iface,
			MAC:   mac(i),
		}
		if i >= 26 {
			h.Name = fmt.Sprintf("%s-h%d", l.prefix, i)
		}
		h.IPv4, h.IPv6 = hostAddrs(i, -1, 0)
		for k, v := range c.VLANs {
			vi := VLANIface{ID: v.ID, Protocol: v.Protocol, Iface: vlanIfaceName(c.Iface, v)}
			vi.IPv4, vi.IPv6 = hostAddrs(i, k, v.ID)
			h.VLANs = append(h.VLANs, vi)
		}
		l.Hosts = append(l.Hosts, h)
	}
	for _, h := range l.Hosts {
		if err := l.addNetns(h.Name); err != nil {
			return nil, err
		}
	}

	if err := l.wire(c); err != nil {
		return nil, err
	}
	for _, h := range l.Hosts {
		if err := configureHost(l, h, c); err != nil {
			return nil, err
		}
	}
	for _, h := range l.Hosts {
		if err := waitOperational(h); err != nil {
			return nil, err
		}
	}
	ok = true
	return l, nil
}

func removeStale() ([]string, error) {
	ents, err := os.ReadDir(netnsDir)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, nil
		}
		return nil, err
	}
	var removed []string
	var errs []error
	for _, e := range ents {
		rest, ok := strings.CutPrefix(e.Name(), "pkte-")
		if !ok {
			continue
		}
		pidStr, _, ok := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidStr)
		if !ok || err != nil || pid <= 0 {
			continue
		}
		if err := unix.Kill(pid, 0); err == nil || errors.Is(err, unix.EPERM) {
			continue // alive
		}
		if err := deleteNetns(e.Name()); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, e.Name())
	}
	return removed, errors.Join(errs...)
}

// addNetns creates a namespace, records it for Close, and switches off the
// IPv6 behaviour that would put unsolicited frames on the lab's links:
// router solicitations and duplicate address detection. The defaults apply
// to interfaces created afterwards, so this runs before wiring.
func (l *Lab) addNetns(name string) error {
	if err := runIP("", "netns add "+name); err != nil {
		return err
	}
	l.namespaces = append(l.namespaces, name)
	return doInNetns(name, func() error {
		for _, kv := range [][2]string{
			{"net/ipv6/conf/default/accept_dad", "0"},
			{"net/ipv6/conf/default/router_solicitations", "0"},
			{"net/ipv6/conf/default/accept_ra", "0"},
		} {
			if err := os.WriteFile("/proc/sys/"+kv[0], []byte(kv[1]), 0); err != nil {
				return fmt.Errorf("netns %s: %w", name, err)
			}
		}
		return nil
	})
}

// wire creates the veth pairs: directly between the two hosts, or from
// every host to a bridge in a hidden switch namespace. Each pair is created
// from inside one lab namespace with its peer placed straight into another,
// so no end ever appears in the root namespace.
func (l *Lab) wire(c *Config) error {
	mtu := ""
	if c.MTU != 0 {
		mtu = fmt.Sprintf(" mtu %d", c.MTU)
	}
	// Every veth end gets its own interface index (10+i on host i, 100+i
	// on the switch). With the kernel's default numbering both ends of a
	// pair would be index 2 in their namespaces, and the link watcher,
	// which takes a device whose index equals its peer's for a plain
	// device, would then delay its carrier event by up to a second, during
	// which the noop qdisc silently drops everything sent.
	if len(l.Hosts) == 2 {
		a, b := l.Hosts[0], l.Hosts[1]
		return runIP(a.Name, fmt.Sprintf("link add %s index %d address %s%s type veth peer name %s index %d address %s%s netns %s",
			a.Iface, hostIndex(0), a.MAC, mtu, b.Iface, hostIndex(1), b.MAC, mtu, b.Name))
	}
	sw := l.prefix + "-sw"
	if err := l.addNetns(sw); err != nil {
		return err
	}
	var batch strings.Builder
	fmt.Fprintf(&batch, "link add br0%s type bridge stp_state 0\n", mtu)
	for i, h := range l.Hosts {
		fmt.Fprintf(&batch, "link add p%d index %d%s type veth peer name %s index %d address %s%s netns %s\n",
			i, 100+i, mtu, h.Iface, hostIndex(i), h.MAC, mtu, h.Name)
		fmt.Fprintf(&batch, "link set p%d master br0 up\n", i)
	}
	batch.WriteString("link set br0 up\n")
	return runIP(sw, batch.String())
}

// hostIndex is the interface index of host i's lab interface.
func hostIndex(i int) int { return 10 + i }

// configureHost addresses and raises a host's interfaces, applies offload
// settings, adds static neighbours for every peer and records interface
// indexes.
func configureHost(l *Lab, h *Host, c *Config) error {
	var b strings.Builder
	b.WriteString("link set lo up\n")
	fmt.Fprintf(&b, "addr add %s dev %s\n", h.IPv4, h.Iface)
	fmt.Fprintf(&b, "addr add %s dev %s nodad\n", h.IPv6, h.Iface)
	for _, v := range h.VLANs {
		proto := "802.1Q"
		if v.Protocol == 0x88a8 {
			proto = "802.1ad"
		}
		mtu := ""
		if c.MTU != 0 {
			mtu = fmt.Sprintf(" mtu %d", c.MTU)
		}
		fmt.Fprintf(&b, "link add link %s name %s%s type vlan protocol %s id %d\n", h.Iface, v.Iface, mtu, proto, v.ID)
		fmt.Fprintf(&b, "addr add %s dev %s\n", v.IPv4, v.Iface)
		fmt.Fprintf(&b, "addr add %s dev %s nodad\n", v.IPv6, v.Iface)
	}
	for _, p := range l.Hosts {
		if p == h {
			continue
		}
		fmt.Fprintf(&b, "neigh replace %s lladdr %s dev %s nud permanent\n", p.IPv4.Addr(), p.MAC, h.Iface)
		fmt.Fprintf(&b, "neigh replace %s lladdr %s dev %s nud permanent\n", p.IPv6.Addr(), p.MAC, h.Iface)
		for k, v := range p.VLANs {
			fmt.Fprintf(&b, "neigh replace %s lladdr %s dev %s nud permanent\n", v.IPv4.Addr(), p.MAC, h.VLANs[k].Iface)
			fmt.Fprintf(&b, "neigh replace %s lladdr %s dev %s nud permanent\n", v.IPv6.Addr(), p.MAC, h.VLANs[k].Iface)
		}
	}
	fmt.Fprintf(&b, "link set %s up\n", h.Iface)
	for _, v := range h.VLANs {
		fmt.Fprintf(&b, "link set %s up\n", v.Iface)
	}
	if err := runIP(h.Name, b.String()); err != nil {
		if len(h.VLANs) > 0 && strings.Contains(err.Error(), "Unknown device type") {
			return fmt.Errorf("%w: %w", ErrVLANUnsupported, err)
		}
		return err
	}

	if len(c.Offloads) > 0 {
		args := []string{"-K", h.Iface}
		for _, k := range slices.Sorted(mapKeys(c.Offloads)) {
			args = append(args, k, map[bool]string{true: "on", false: "off"}[c.Offloads[k]])
		}
		out, err := h.Command(context.Background(), "ethtool", args...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("netns %s: ethtool %s: %v: %s", h.Name, strings.Join(args, " "), err, bytes.TrimSpace(out))
		}
	}

	return h.Do(func() error {
		ifi, err := net.InterfaceByName(h.Iface)
		if err != nil {
			return err
		}
		h.Index = ifi.Index
		for i := range h.VLANs {
			ifi, err := net.InterfaceByName(h.VLANs[i].Iface)
			if err != nil {
				return err
			}
			h.VLANs[i].Index = ifi.Index
		}
		return nil
	})
}

// waitOperational waits until the kernel's link watcher has seen every
// lab interface of h come up. Until then the interface's queueing
// discipline is still noop, which silently drops everything sent through
// it: a test that sends right away would lose its first frames.
func waitOperational(h *Host) error {
	names := []string{h.Iface}
	for _, v := range h.VLANs {
		names = append(names, v.Iface)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, err := exec.Command("ip", "-n", h.Name, "-o", "link", "show").CombinedOutput()
		if err != nil {
			return fmt.Errorf("netns %s: ip link show: %v: %s", h.Name, err, bytes.TrimSpace(out))
		}
		pending := ""
		for _, line := range strings.Split(string(out), "\n") {
			f := strings.Fields(line)
			if len(f) < 2 {
				continue
			}
			name, _, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@")
			if slices.Contains(names, name) && (!strings.Contains(line, "state UP") || strings.Contains(line, "qdisc noop")) {
				pending = name
			}
		}
		if pending == "" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("netns %s: %s did not become operational:\n%s", h.Name, pending, out)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func mapKeys(m map[string]bool) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// runIP feeds commands to `ip [-n netns] -batch -`. An empty netns runs in
// the current namespace, which is only ever used for `netns add/del`.
func runIP(netns, commands string) error {
	args := []string{"-batch", "-"}
	if netns != "" {
		args = append([]string{"-n", netns}, args...)
	}
	cmd := exec.Command("ip", args...)
	cmd.Stdin = strings.NewReader(commands)
	out, err := cmd.CombinedOutput()
	if err != nil {
		where := "root namespace"
		if netns != "" {
			where = "netns " + netns
		}
		return fmt.Errorf("ip (%s): %v: %s\ncommands:\n%s", where, err, bytes.TrimSpace(out), commands)
	}
	return nil
}

// deleteNetns deletes a named namespace. One that is already gone (another
// process may have swept it first) is no error.
func deleteNetns(name string) error {
	if err := runIP("", "netns del "+name); err != nil {
		if _, serr := os.Stat(filepath.Join(netnsDir, name)); serr == nil {
			return err
		}
	}
	return nil
}

func doInNetns(name string, fn func() error) error {
	target, err := unix.Open(filepath.Join(netnsDir, name), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("netns %s: %w", name, os.NewSyscallError("open", err))
	}
	defer unix.Close(target)

	type result struct {
		err      error
		panicked bool
		value    any
	}
	done := make(chan result, 1)
	go func() {
		var r result
		runtime.LockOSThread()
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			done <- result{err: os.NewSyscallError("open", err)}
			return
		}
		defer unix.Close(orig)
		if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			done <- result{err: fmt.Errorf("netns %s: %w", name, os.NewSyscallError("setns", err))}
			return
		}
		func() {
			defer func() {
				if p := recover(); p != nil {
					r.panicked, r.value = true, p
				}
			}()
			r.err = fn()
		}()
		if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
			// Stay locked: the thread dies with this goroutine.
			r.err = errors.Join(r.err, fmt.Errorf("netns %s: restoring the original namespace: %w", name, os.NewSyscallError("setns", err)))
			done <- r
			return
		}
		runtime.UnlockOSThread()
		done <- r
	}()
	r := <-done
	if r.panicked {
		panic(r.value)
	}
	return r.err
}

func checkPrivileges() error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return os.NewSyscallError("capget", err)
	}
	var missing []string
	for _, c := range []struct {
		bit  uint
		name string
	}{
		{unix.CAP_NET_ADMIN, "CAP_NET_ADMIN"},
		{unix.CAP_NET_RAW, "CAP_NET_RAW"},
		{unix.CAP_SYS_ADMIN, "CAP_SYS_ADMIN"},
	} {
		if data[c.bit/32].Effective&(1<<(c.bit%32)) == 0 {
			missing = append(missing, c.name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing %s", strings.Join(missing, ", "))
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return fmt.Errorf("ip(8) from iproute2 not found: %w", err)
	}
	// Try to create a namespace on a throw-away thread: the goroutine
	// exits locked, so the runtime discards the thread afterwards.
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		errc <- unix.Unshare(unix.CLONE_NEWNET)
	}()
	if err := <-errc; err != nil {
		return fmt.Errorf("cannot create a network namespace: %w", os.NewSyscallError("unshare", err))
	}
	return nil
}
