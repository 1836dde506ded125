// Package lab builds throw-away network labs out of Linux network namespaces
// joined by veth, for pktengine's privileged tests and its benchmark harness.
//
// A lab is two or more namespaces ("hosts") with unique names. Two hosts are
// joined by one veth pair; three or more by one veth each to a bridge that
// lives in a further, hidden namespace. Every interface the lab creates lives
// inside one of its namespaces: nothing is ever added to, moved out of or
// changed in the root namespace, and deleting the namespaces deletes
// everything the lab made.
//
// Host i (counting from 0) gets
//
//	interface  veth0 (Config.Iface), interface index 10+i
//	MAC        02:00:00:00:00:<i+1>      (locally administered, unicast)
//	IPv4       198.18.0.<i+1>/24         (RFC 2544 benchmarking range)
//	IPv6       fd00::<i+1>/64            (unique local, added with nodad)
//
// and, for the k-th entry of Config.VLANs with ID n, a VLAN subinterface
// veth0.<n> with 198.19.<k>.<i+1>/24 and fd00:0:0:<n>::<i+1>/64. Static
// neighbour entries for every peer address are installed so that tests see
// no ARP or neighbour discovery in front of their traffic, and router
// solicitations and duplicate address detection are off. Create returns
// once every link is operational, so the first frame sent is not lost.
//
// Programs (pktengine demo, the benchmark harness) use Create and Close, and
// CheckPrivileges to say why they cannot. Tests use the test-only package
// internal/labtest, which builds a lab with these and removes it when the
// test ends; lab itself does not import testing, so that the pktengine
// binary does not link it.
package lab

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
)

// ErrVLANUnsupported is returned (wrapped) by Create when Config.VLANs asks
// for subinterfaces and the kernel has no 802.1Q support (CONFIG_VLAN_8021Q).
// The kernel's receive path strips VLAN tags into packet metadata with or
// without it, so tagged frames written raw still work.
var ErrVLANUnsupported = errors.New("lab: the kernel does not support VLAN subinterfaces (CONFIG_VLAN_8021Q)")

// Config describes a lab. The zero value (and a nil *Config) is two hosts
// joined by one veth pair with the kernel's default MTU and offloads.
type Config struct {
	// Hosts is the number of namespaces, at least 2. Zero means 2.
	Hosts int

	// Iface names the lab interface inside every host. Empty means "veth0".
	Iface string

	// MTU sets the MTU of every lab interface (veth, bridge ports and VLAN
	// subinterfaces). Zero leaves the kernel default, 1500.
	MTU int

	// VLANs adds one VLAN subinterface per entry on every host, on top of
	// the lab interface.
	VLANs []VLAN

	// Offloads are ethtool -K features set on every host's lab interface,
	// for example {"tx": false} to make the kernel complete checksums in
	// software instead of handing partial ones to the peer.
	Offloads map[string]bool
}

// VLAN describes a VLAN subinterface.
type VLAN struct {
	// ID is the VLAN identifier, 1 to 4094.
	ID uint16

	// Protocol is the tag's TPID: 0 or 0x8100 for an 802.1Q C-tag, 0x88a8
	// for an 802.1ad S-tag.
	Protocol uint16
}

// Host is one namespace of a lab.
type Host struct {
	// Name is the network namespace name, as `ip netns` knows it.
	Name string

	// Iface is the lab interface's name inside the namespace and Index its
	// interface index there.
	Iface string
	Index int

	// MAC is the lab interface's hardware address.
	MAC net.HardwareAddr

	// IPv4 and IPv6 are the lab interface's addresses with their prefix
	// lengths.
	IPv4 netip.Prefix
	IPv6 netip.Prefix

	// VLANs are the VLAN subinterfaces, in Config.VLANs order.
	VLANs []VLANIface
}

// VLANIface is a VLAN subinterface of a host.
type VLANIface struct {
	ID       uint16
	Protocol uint16 // 0x8100 or 0x88a8
	Iface    string
	Index    int
	IPv4     netip.Prefix
	IPv6     netip.Prefix
}

// Lab is a set of namespaces built by Create.
type Lab struct {
	// Hosts are the lab's namespaces; Hosts[0] is A, Hosts[1] is B.
	Hosts []*Host

	// prefix is the common part of all namespace names and namespaces
	// lists every namespace the lab created, hidden ones included, in
	// creation order.
	prefix     string
	namespaces []string
	closed     bool
}

// A returns the first host.
func (l *Lab) A() *Host { return l.Hosts[0] }

// B returns the second host.
func (l *Lab) B() *Host { return l.Hosts[1] }

// Prefix returns the prefix shared by the names of all the lab's
// namespaces, "pkte-<pid>-<random>".
func (l *Lab) Prefix() string { return l.prefix }

// Create builds a lab. On any failure, and on a panic, it removes whatever
// it had built before returning. The caller must Close the lab.
func Create(cfg *Config) (*Lab, error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	return create(&c)
}

// RemoveStale deletes the namespaces of labs whose process is gone: a test
// binary killed before its cleanup ran leaves its namespaces behind, and
// their names carry its pid. Create calls it; it returns what it removed.
func RemoveStale() ([]string, error) { return removeStale() }

// Close deletes the lab's namespaces, and with them every interface the lab
// made. Sockets opened inside a namespace keep it alive until they are
// closed, but the name and the links between hosts go away at once. Close
// is idempotent.
func (l *Lab) Close() error {
	if l == nil || l.closed {
		return nil
	}
	l.closed = true
	var errs []error
	// Delete in reverse creation order: hosts last, so a bridge's ports
	// go before the hosts' ends.
	for _, ns := range slices.Backward(l.namespaces) {
		errs = append(errs, deleteNetns(ns))
	}
	return errors.Join(errs...)
}

var (
	privOnce sync.Once
	privErr  error
)

// CheckPrivileges reports why the process cannot build a lab, or nil if it
// can. The result is computed once.
func CheckPrivileges() error {
	privOnce.Do(func() { privErr = checkPrivileges() })
	return privErr
}

// mac returns the MAC of host i: 02:00:00:00:<hi>:<lo> with i+1 in the
// last two bytes.
func mac(i int) net.HardwareAddr {
	n := i + 1
	return net.HardwareAddr{0x02, 0, 0, 0, byte(n >> 8), byte(n)}
}

// hostAddrs returns the IPv4 and IPv6 prefixes of host i on the untagged
// network (vlan < 0) or on the vlan-th entry of Config.VLANs, with ID id.
func hostAddrs(i, vlan int, id uint16) (v4, v6 netip.Prefix) {
	n := i + 1
	if vlan < 0 {
		return netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18, 0, byte(n)}), 24),
			netip.PrefixFrom(netip.AddrFrom16([16]byte{0: 0xfd, 14: byte(n >> 8), 15: byte(n)}), 64)
	}
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 19, byte(vlan), byte(n)}), 24),
		netip.PrefixFrom(netip.AddrFrom16([16]byte{0: 0xfd, 6: byte(id >> 8), 7: byte(id), 14: byte(n >> 8), 15: byte(n)}), 64)
}

// withDefaults checks cfg and returns a copy with the defaults filled in.
func (cfg *Config) withDefaults() (Config, error) {
	var c Config
	if cfg != nil {
		c = *cfg
	}
	// Copy the slice so that filling in defaults never writes through to
	// the caller's Config.
	c.VLANs = append([]VLAN(nil), c.VLANs...)
	if c.Hosts == 0 {
		c.Hosts = 2
	}
	if c.Hosts < 2 || c.Hosts > 250 {
		return c, fmt.Errorf("Config.Hosts = %d, want 2 to 250", c.Hosts)
	}
	if c.Iface == "" {
		c.Iface = "veth0"
	}
	if len(c.Iface) > 10 {
		return c, fmt.Errorf("Config.Iface %q is longer than 10 bytes (VLAN subinterfaces append .<id>)", c.Iface)
	}
	if c.MTU < 0 || (c.MTU != 0 && c.MTU < 68) {
		return c, fmt.Errorf("Config.MTU = %d, want 0 or at least 68", c.MTU)
	}
	if len(c.VLANs) > 256 {
		return c, fmt.Errorf("%d VLANs, want at most 256", len(c.VLANs))
	}
	seen := map[string]bool{}
	for i, v := range c.VLANs {
		if v.ID < 1 || v.ID > 4094 {
			return c, fmt.Errorf("Config.VLANs[%d].ID = %d, want 1 to 4094", i, v.ID)
		}
		switch v.Protocol {
		case 0:
			c.VLANs[i].Protocol = 0x8100
		case 0x8100, 0x88a8:
		default:
			return c, fmt.Errorf("Config.VLANs[%d].Protocol = %#04x, want 0x8100 or 0x88a8", i, v.Protocol)
		}
		name := vlanIfaceName(c.Iface, c.VLANs[i])
		if seen[name] {
			return c, fmt.Errorf("Config.VLANs[%d]: VLAN %d appears twice", i, v.ID)
		}
		seen[name] = true
	}
	return c, nil
}

// vlanIfaceName is <iface>.<id> for 802.1Q and <iface>.s<id> for 802.1ad.
func vlanIfaceName(iface string, v VLAN) string {
	if v.Protocol == 0x88a8 {
		return fmt.Sprintf("%s.s%d", iface, v.ID)
	}
	return fmt.Sprintf("%s.%d", iface, v.ID)
}
