package lab

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"time"
)

// Do runs fn on an OS thread that has been switched into the host's
// network namespace, and switches it back afterwards. Sockets fn opens
// stay in the namespace after Do returns. Goroutines fn starts do not
// inherit the namespace; name resolution may run on one, so give fn
// literal addresses. fn runs on another goroutine, so it must not call
// t.FailNow and friends; a panic in fn is re-raised in the caller after
// the thread is restored.
//
// If the thread cannot be switched back, it is left locked so the Go
// runtime terminates it instead of running other goroutines in the wrong
// namespace.
func (h *Host) Do(fn func() error) error {
	return doInNetns(h.Name, fn)
}

// inHost is Do for a function that returns what it opened or looked up.
func inHost[T any](h *Host, fn func() (T, error)) (T, error) {
	var v T
	err := h.Do(func() error {
		var err error
		v, err = fn()
		return err
	})
	return v, err
}

// Sysctl sets a per-namespace kernel parameter inside the host, for
// example Sysctl("net.core.rmem_max", "8388608") or, for the lab
// interface, Sysctl("net.ipv4.conf.veth0.rp_filter", "0"). It returns the
// previous value.
func (h *Host) Sysctl(name, value string) (string, error) {
	path := "/proc/sys/" + strings.ReplaceAll(name, ".", "/")
	var old string
	err := h.Do(func() error {
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		old = strings.TrimSpace(string(b))
		return os.WriteFile(path, []byte(value), 0)
	})
	if err != nil {
		return "", fmt.Errorf("netns %s: sysctl %s: %w", h.Name, name, err)
	}
	return old, nil
}

// Interface returns the lab interface as seen inside the host's namespace.
func (h *Host) Interface() (*net.Interface, error) {
	return h.InterfaceByName(h.Iface)
}

// InterfaceByName looks an interface up inside the host's namespace, for
// example one of h.VLANs.
func (h *Host) InterfaceByName(name string) (*net.Interface, error) {
	ifi, err := inHost(h, func() (*net.Interface, error) { return net.InterfaceByName(name) })
	if err != nil {
		return nil, fmt.Errorf("netns %s: %w", h.Name, err)
	}
	return ifi, nil
}

// Command returns a command that runs name inside the host's namespace
// through `ip netns exec`.
func (h *Host) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", h.Name, name}, args...)...)
}

// ListenUDP is net.ListenUDP inside the host's namespace.
func (h *Host) ListenUDP(network string, laddr *net.UDPAddr) (*net.UDPConn, error) {
	return inHost(h, func() (*net.UDPConn, error) { return net.ListenUDP(network, laddr) })
}

// ListenPacket is net.ListenPacket inside the host's namespace. The address
// must be literal: name resolution may run on another thread.
func (h *Host) ListenPacket(network, address string) (net.PacketConn, error) {
	return inHost(h, func() (net.PacketConn, error) { return net.ListenPacket(network, address) })
}

// DialUDP is net.DialUDP inside the host's namespace.
func (h *Host) DialUDP(network string, laddr, raddr *net.UDPAddr) (*net.UDPConn, error) {
	return inHost(h, func() (*net.UDPConn, error) { return net.DialUDP(network, laddr, raddr) })
}

// OnInterface calls open inside h's namespace with h's lab interface and
// returns what open opened: the one way to open a ring, an engine or a
// generator on a lab interface. Sockets must be made inside the namespace
// to belong to it, and they stay there after OnInterface returns.
func OnInterface[T any](h *Host, open func(ifi *net.Interface) (T, error)) (T, error) {
	return inHost(h, func() (T, error) {
		ifi, err := net.InterfaceByName(h.Iface)
		if err != nil {
			var zero T
			return zero, fmt.Errorf("netns %s: %w", h.Name, err)
		}
		return open(ifi)
	})
}

// UDPNetwork is "udp4" for an IPv4 address and "udp6" for any other, the
// network argument of net.ListenUDP and net.DialUDP for addr.
func UDPNetwork(addr netip.Addr) string {
	if addr.Is4() {
		return "udp4"
	}
	return "udp6"
}

// RoundTrip sends payload from a new kernel UDP socket in h, connected to
// dst, and returns the first datagram that comes back within timeout. A
// port nobody serves shows up as an error wrapping ECONNREFUSED: the
// kernel reports the peer's ICMP port unreachable on a connected socket.
func (h *Host) RoundTrip(dst netip.AddrPort, payload []byte, timeout time.Duration) ([]byte, error) {
	c, err := h.DialUDP(UDPNetwork(dst.Addr()), nil, net.UDPAddrFromAddrPort(dst))
	if err != nil {
		return nil, err
	}
	defer c.Close()
	buf := make([]byte, 65536)
	n, err := Exchange(c, payload, buf, timeout)
	if err != nil {
		return nil, err
	}
	return buf[:n:n], nil
}

// Exchange writes payload on the connected UDP socket c and reads the
// first datagram that comes back within timeout into buf, returning its
// length (a longer datagram is cut to len(buf)). It sets c's deadline.
func Exchange(c *net.UDPConn, payload, buf []byte, timeout time.Duration) (int, error) {
	if err := c.SetDeadline(time.Now().Add(timeout)); err != nil {
		return 0, err
	}
	if _, err := c.Write(payload); err != nil {
		return 0, err
	}
	return c.Read(buf)
}
