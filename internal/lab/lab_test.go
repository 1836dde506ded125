package lab_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pktengine/pktengine/internal/lab"
	"github.com/pktengine/pktengine/internal/labtest"
)

func TestConfigValidation(t *testing.T) {
	for _, cfg := range []*lab.Config{
		{Hosts: 1},
		{Hosts: 251},
		{MTU: 10},
		{Iface: "averylongname"},
		{VLANs: []lab.VLAN{{ID: 0}}},
		{VLANs: []lab.VLAN{{ID: 4095}}},
		{VLANs: []lab.VLAN{{ID: 5, Protocol: 0x9100}}},
		{VLANs: []lab.VLAN{{ID: 5}, {ID: 5, Protocol: 0x8100}}},
	} {
		if l, err := lab.Create(cfg); err == nil {
			l.Close()
			t.Errorf("Create(%+v) succeeded, want an error", *cfg)
		}
	}
}

// rootLinks describes the root namespace's interfaces, to prove a lab
// leaves it alone.
func rootLinks(t *testing.T) []string {
	t.Helper()
	ifs, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, ifi := range ifs {
		out = append(out, fmt.Sprintf("%d %s %s mtu=%d %v", ifi.Index, ifi.Name, ifi.HardwareAddr, ifi.MTU, ifi.Flags))
	}
	return out
}

// deliver sends a datagram from one host to a kernel UDP socket on the
// other and checks that it arrives from the expected source.
func deliver(t *testing.T, from, to *lab.Host, src, dst netip.Addr, payload []byte) {
	t.Helper()
	network := lab.UDPNetwork(dst)
	rc, err := to.ListenUDP(network, net.UDPAddrFromAddrPort(netip.AddrPortFrom(dst, 0)))
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	sc, err := from.DialUDP(network, net.UDPAddrFromAddrPort(netip.AddrPortFrom(src, 0)), rc.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	if _, err := sc.Write(payload); err != nil {
		t.Fatal(err)
	}
	rc.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, len(payload)+1)
	n, peer, err := rc.ReadFromUDPAddrPort(buf)
	if err != nil {
		t.Fatalf("%s -> %s: %v", src, dst, err)
	}
	if !bytes.Equal(buf[:n], payload) {
		t.Errorf("%s -> %s: got %d bytes, want %d", src, dst, n, len(payload))
	}
	if peer.Addr().Unmap() != src {
		t.Errorf("%s -> %s: datagram came from %s", src, dst, peer)
	}
}

func TestTwoHosts(t *testing.T) {
	labtest.NeedPrivileges(t)
	before := rootLinks(t)

	l, err := lab.Create(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	a, b := l.A(), l.B()
	if a.Name == b.Name || !strings.HasPrefix(a.Name, l.Prefix()) {
		t.Fatalf("namespace names %q and %q, prefix %q", a.Name, b.Name, l.Prefix())
	}
	if got := labtest.Namespaces(t); len(got) != 2 {
		t.Errorf("namespaces %v, want 2", got)
	}
	want := map[*lab.Host][3]string{
		a: {"02:00:00:00:00:01", "198.18.0.1/24", "fd00::1/64"},
		b: {"02:00:00:00:00:02", "198.18.0.2/24", "fd00::2/64"},
	}
	for h, w := range want {
		if h.MAC.String() != w[0] || h.IPv4.String() != w[1] || h.IPv6.String() != w[2] {
			t.Errorf("%s: %s %s %s, want %v", h.Name, h.MAC, h.IPv4, h.IPv6, w)
		}
		ifi, err := h.Interface()
		if err != nil {
			t.Fatal(err)
		}
		if ifi.Index != h.Index || ifi.HardwareAddr.String() != w[0] || ifi.Flags&net.FlagUp == 0 {
			t.Errorf("%s: interface %+v, want index %d MAC %s up", h.Name, ifi, h.Index, w[0])
		}
	}

	payload := []byte("lab datagram")
	deliver(t, a, b, a.IPv4.Addr(), b.IPv4.Addr(), payload)
	deliver(t, b, a, b.IPv4.Addr(), a.IPv4.Addr(), payload)
	deliver(t, a, b, a.IPv6.Addr(), b.IPv6.Addr(), payload)

	// Command runs inside the namespace: the only non-loopback link there
	// is the lab's.
	out, err := a.Command(context.Background(), "ip", "-o", "link", "show").CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if !strings.Contains(string(out), a.Iface) || strings.Count(strings.TrimSpace(string(out)), "\n") != 1 {
		t.Errorf("links in %s:\n%s", a.Name, out)
	}

	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if got := labtest.Namespaces(t); len(got) != 0 {
		t.Errorf("namespaces left after Close: %v", got)
	}
	if after := rootLinks(t); !slices.Equal(before, after) {
		t.Errorf("root namespace links changed:\nbefore %q\nafter  %q", before, after)
	}
}

func TestMTU(t *testing.T) {
	l := labtest.New(t, &lab.Config{MTU: 9000})
	a, b := l.A(), l.B()
	for _, h := range l.Hosts {
		ifi, err := h.Interface()
		if err != nil {
			t.Fatal(err)
		}
		if ifi.MTU != 9000 {
			t.Errorf("%s: MTU %d, want 9000", h.Name, ifi.MTU)
		}
	}
	// An 8000-byte datagram crosses in one frame only with a jumbo MTU.
	deliver(t, a, b, a.IPv4.Addr(), b.IPv4.Addr(), make([]byte, 8000))
}

func TestVLANs(t *testing.T) {
	l := labtest.New(t, &lab.Config{
		MTU:   9000,
		VLANs: []lab.VLAN{{ID: 100}, {ID: 200, Protocol: 0x88a8}},
	})
	a, b := l.A(), l.B()
	if len(a.VLANs) != 2 || a.VLANs[0].Iface != "veth0.100" || a.VLANs[1].Iface != "veth0.s200" {
		t.Fatalf("VLANs %+v", a.VLANs)
	}
	if got := a.VLANs[1].IPv4.String(); got != "198.19.1.1/24" {
		t.Errorf("second VLAN's IPv4 = %s", got)
	}
	if got := b.VLANs[0].IPv6.String(); got != "fd00:0:0:64::2/64" {
		t.Errorf("first VLAN's IPv6 on B = %s", got)
	}
	for k := range a.VLANs {
		vi, err := a.InterfaceByName(a.VLANs[k].Iface)
		if err != nil {
			t.Fatal(err)
		}
		if vi.Index != a.VLANs[k].Index {
			t.Errorf("%s index %d, recorded %d", vi.Name, vi.Index, a.VLANs[k].Index)
		}
		deliver(t, a, b, a.VLANs[k].IPv4.Addr(), b.VLANs[k].IPv4.Addr(), []byte("tagged"))
		deliver(t, b, a, b.VLANs[k].IPv6.Addr(), a.VLANs[k].IPv6.Addr(), []byte("tagged6"))
	}
}

func TestThreeHostsBridged(t *testing.T) {
	l := labtest.New(t, &lab.Config{Hosts: 3})
	if got := labtest.Namespaces(t); len(got) < 4 {
		t.Errorf("namespaces %v, want three hosts and a switch", got)
	}
	c := l.Hosts[2]
	if c.IPv4.String() != "198.18.0.3/24" || c.MAC.String() != "02:00:00:00:00:03" {
		t.Errorf("third host %s %s", c.IPv4, c.MAC)
	}
	deliver(t, l.A(), c, l.A().IPv4.Addr(), c.IPv4.Addr(), []byte("a to c"))
	deliver(t, c, l.B(), c.IPv6.Addr(), l.B().IPv6.Addr(), []byte("c to b"))
}

func TestCreateFailureCleansUp(t *testing.T) {
	labtest.NeedPrivileges(t)
	before := labtest.Namespaces(t)
	l, err := lab.Create(&lab.Config{Offloads: map[string]bool{"no-such-feature": false}})
	if err == nil {
		l.Close()
		t.Fatal("Create with a bogus offload succeeded")
	}
	if after := labtest.Namespaces(t); !slices.Equal(before, after) {
		t.Errorf("namespaces before %v, after a failed Create %v", before, after)
	}
}

func TestOffloads(t *testing.T) {
	l := labtest.New(t, &lab.Config{Offloads: map[string]bool{"tx": false}})
	out, err := l.A().Command(context.Background(), "ethtool", "-k", l.A().Iface).CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if !strings.Contains(string(out), "tx-checksumming: off") {
		t.Errorf("tx checksumming not off:\n%s", out)
	}
}

// netnsInode identifies the network namespace of the calling thread.
func netnsInode(t *testing.T) string {
	t.Helper()
	s, err := os.Readlink("/proc/thread-self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestDo(t *testing.T) {
	l := labtest.New(t, nil)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	root := netnsInode(t)

	var inside string
	if err := l.A().Do(func() error {
		s, err := os.Readlink("/proc/thread-self/ns/net")
		inside = s
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if inside == root || inside == "" {
		t.Errorf("Do ran in %q, the caller is in %q", inside, root)
	}
	if got := netnsInode(t); got != root {
		t.Errorf("caller's namespace changed to %s", got)
	}

	wantErr := fmt.Errorf("from fn")
	if err := l.A().Do(func() error { return wantErr }); err != wantErr {
		t.Errorf("Do returned %v, want fn's error", err)
	}

	func() {
		defer func() {
			if p := recover(); p != "boom" {
				t.Errorf("recovered %v, want fn's panic", p)
			}
		}()
		l.B().Do(func() error { panic("boom") })
	}()

	// Every thread the runtime has is back in the root namespace: probe
	// many goroutines.
	errs := make(chan string, 64)
	for range 64 {
		go func() {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			s, _ := os.Readlink("/proc/thread-self/ns/net")
			errs <- s
		}()
	}
	for range 64 {
		if s := <-errs; s != root {
			t.Fatalf("a thread is in %s, not the root namespace %s", s, root)
		}
	}
}

func TestSysctl(t *testing.T) {
	l := labtest.New(t, nil)
	a, b := l.A(), l.B()
	name := "net.ipv4.conf." + a.Iface + ".rp_filter"
	old, err := a.Sysctl(name, "2")
	if err != nil {
		t.Fatal(err)
	}
	got, err := a.Sysctl(name, old)
	if err != nil {
		t.Fatal(err)
	}
	if got != "2" {
		t.Errorf("read back %q, want 2", got)
	}
	// The setting is A's alone: B keeps its own.
	if v, err := b.Sysctl(name, old); err != nil || v != old {
		t.Errorf("B's %s = %q (%v), want %q", name, v, err, old)
	}
	if _, err := a.Sysctl("net.no.such.knob", "1"); err == nil {
		t.Error("setting a missing sysctl succeeded")
	}
}

func TestRemoveStale(t *testing.T) {
	l := labtest.New(t, nil) // a live lab must survive
	// A pid above the kernel's pid_max is never alive.
	stale := fmt.Sprintf("pkte-%d-000000-a", 1<<30)
	if out, err := exec.Command("ip", "netns", "add", stale).CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	defer exec.Command("ip", "netns", "del", stale).Run()
	removed, err := lab.RemoveStale()
	if err != nil {
		t.Fatal(err)
	}
	// (Another test process may sweep it first, so it need not be in
	// removed; it must be gone.)
	if slices.Contains(removed, l.A().Name) {
		t.Errorf("removed the live lab's %s", l.A().Name)
	}
	if _, err := os.Stat("/run/netns/" + stale); !os.IsNotExist(err) {
		t.Errorf("%s still exists: %v", stale, err)
	}
	if _, err := os.Stat("/run/netns/" + l.A().Name); err != nil {
		t.Errorf("live lab namespace: %v", err)
	}
}

func TestOnInterface(t *testing.T) {
	l := labtest.New(t, nil)
	a := l.A()
	var inside string
	ifi, err := lab.OnInterface(a, func(ifi *net.Interface) (*net.Interface, error) {
		s, err := os.Readlink("/proc/thread-self/ns/net")
		inside = s
		return ifi, err
	})
	if err != nil {
		t.Fatal(err)
	}
	if ifi.Name != a.Iface || ifi.Index != a.Index {
		t.Errorf("open got %s (index %d), want %s (index %d)", ifi.Name, ifi.Index, a.Iface, a.Index)
	}
	root, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	if inside == root {
		t.Errorf("open ran in the root namespace %s", root)
	}
	wantErr := errors.New("from open")
	if _, err := lab.OnInterface(a, func(*net.Interface) (int, error) { return 0, wantErr }); err != wantErr {
		t.Errorf("OnInterface returned %v, want open's error", err)
	}
}

// TestRoundTrip: an answer comes back, a closed port is ECONNREFUSED, and
// silence is a timeout after the deadline, over both address families.
func TestRoundTrip(t *testing.T) {
	l := labtest.New(t, nil)
	a, b := l.A(), l.B()
	for _, dst := range []netip.Addr{b.IPv4.Addr(), b.IPv6.Addr()} {
		echo := netip.AddrPortFrom(dst, 7)
		labtest.EchoUDP(t, b, echo)
		got, err := a.RoundTrip(echo, []byte("ping"), 3*time.Second)
		if err != nil || string(got) != "ping" {
			t.Errorf("round trip to %v: %q, %v", echo, got, err)
		}
		if _, err := a.RoundTrip(netip.AddrPortFrom(dst, 9), []byte("anyone?"), 3*time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("round trip to a closed port on %v: %v, want ECONNREFUSED", dst, err)
		}
		silent := labtest.ListenUDP(t, b, netip.AddrPortFrom(dst, 0))
		start := time.Now()
		_, err = a.RoundTrip(netip.AddrPortFrom(dst, silent.LocalAddr().(*net.UDPAddr).AddrPort().Port()), []byte("hello?"), 100*time.Millisecond)
		if !errors.Is(err, os.ErrDeadlineExceeded) || time.Since(start) < 100*time.Millisecond {
			t.Errorf("round trip to a silent socket on %v: %v after %v, want a timeout after 100ms", dst, err, time.Since(start))
		}
	}
}
