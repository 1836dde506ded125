//go:build linux

package xdp

import (
	"bufio"
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/pktengine/pktengine/internal/lab"
	"github.com/pktengine/pktengine/internal/labtest"
)

// attachIn attaches a program to host h's lab interface and, on success,
// registers its Close.
func attachIn(t testing.TB, h *lab.Host, cfg *ProgramConfig) (*Program, error) {
	t.Helper()
	p, err := lab.OnInterface(h, func(ifi *net.Interface) (*Program, error) { return Attach(ifi, cfg) })
	if err == nil {
		t.Cleanup(func() { p.Close() })
	}
	return p, err
}

func attachmentOf(t testing.TB, h *lab.Host) xdpAttachment {
	t.Helper()
	att, err := lab.OnInterface(h, func(ifi *net.Interface) (xdpAttachment, error) { return queryXDP(ifi.Index) })
	if err != nil {
		t.Fatal(err)
	}
	return att
}

// detachAll removes whatever XDP program is left on h's interface, so
// that a failing test leaves nothing behind.
func detachAll(t testing.TB, h *lab.Host) {
	t.Cleanup(func() {
		inIface(h, func(ifi *net.Interface) error {
			att, err := queryXDP(ifi.Index)
			if err != nil {
				return err
			}
			for _, a := range att.ids() {
				detachProgram(ifi.Index, a.id, a.flag)
			}
			return nil
		})
	})
}

// TestLabStaleProgramReplaced leaves a program of ours on the interface
// the way a crashed process of an older, netlink-attaching pktengine would
// (attached without a link, its owner gone) and checks that Attach
// replaces it and that Close then leaves nothing.
func TestLabStaleProgramReplaced(t *testing.T) {
	l := labtest.New(t, nil)
	a := l.A()
	detachAll(t, a)
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	stale, err := newProgramOwned(nil, owner{PID: uint32(dead.Process.Pid), Start: 1})
	if err != nil {
		t.Fatal(err)
	}
	err = inIface(a, func(ifi *net.Interface) error {
		return setXDP(ifi.Index, stale.bpfProg.FD(), unix.XDP_FLAGS_DRV_MODE)
	})
	stale.Close() // the attachment keeps the program alive
	if err != nil {
		t.Fatal(err)
	}
	staleID := attachmentOf(t, a).progID
	if staleID == 0 {
		t.Fatal("the stale program is not attached")
	}

	p, err := attachIn(t, a, nil)
	if err != nil {
		t.Fatalf("Attach over a stale program: %v", err)
	}
	info := p.Info()
	if !info.ReplacedStale || info.ReplacedID != staleID || info.ReplacedName != steerProgName {
		t.Errorf("Info %+v, want the stale program %d replaced", info, staleID)
	}
	if att := attachmentOf(t, a); att.progID == staleID || att.mode != xdpAttachedDrv {
		t.Errorf("attachment %+v after replacing %d", att, staleID)
	}
	p.Close()
	if att := attachmentOf(t, a); att.mode != xdpAttachedNone {
		t.Errorf("attachment %+v after Close", att)
	}
}

// TestLabLiveOwnerRefused checks that a program whose process runs is
// never replaced: here the owner is this process.
func TestLabLiveOwnerRefused(t *testing.T) {
	l := labtest.New(t, nil)
	a := l.A()
	detachAll(t, a)
	if _, err := attachIn(t, a, nil); err != nil {
		t.Fatal(err)
	}
	_, err := attachIn(t, a, &ProgramConfig{ReplaceForeign: true})
	if !errors.Is(err, ErrInUse) {
		t.Fatalf("second Attach: %v, want ErrInUse", err)
	}
	t.Log(err)
}

// TestLabForeignProgram checks that another program's XDP program is
// refused, named, and replaced only with ReplaceForeign.
func TestLabForeignProgram(t *testing.T) {
	l := labtest.New(t, nil)
	a := l.A()
	detachAll(t, a)
	labtest.NeedPrivileges(t)
	foreign, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name: "foreign", Type: ebpf.XDP, License: "MIT",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, int32(ActionPass)), asm.Return()},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer foreign.Close()
	fl, err := lab.OnInterface(a, func(ifi *net.Interface) (link.Link, error) {
		return link.AttachXDP(link.XDPOptions{Program: foreign, Interface: ifi.Index, Flags: link.XDPDriverMode})
	})
	if err != nil {
		t.Fatal(err)
	}
	defer fl.Close()

	_, err = attachIn(t, a, nil)
	if !errors.Is(err, ErrProgramPresent) || !strings.Contains(err.Error(), `"foreign"`) {
		t.Fatalf("Attach over a foreign program: %v, want ErrProgramPresent naming it", err)
	}
	t.Log(err)
	p, err := attachIn(t, a, &ProgramConfig{ReplaceForeign: true})
	if err != nil {
		t.Fatalf("Attach with ReplaceForeign: %v", err)
	}
	if info := p.Info(); info.ReplacedName != "foreign" || info.ReplacedStale {
		t.Errorf("Info %+v", info)
	}
}

// TestLabMTUTooLarge checks the error for an MTU that single-buffer XDP
// cannot take.
func TestLabMTUTooLarge(t *testing.T) {
	l := labtest.New(t, &lab.Config{MTU: 9000})
	a := l.A()
	detachAll(t, a)
	_, err := attachIn(t, a, nil)
	if !errors.Is(err, ErrMTUTooLarge) || !strings.Contains(err.Error(), "9000") {
		t.Fatalf("Attach with MTU 9000: %v, want ErrMTUTooLarge naming the MTU", err)
	}
	t.Log(err)
	// The socket refuses such an MTU too, before the kernel would drop
	// every long frame.
	err = inIface(a, func(ifi *net.Interface) error {
		s, err := Listen(ifi, 0, nil)
		if err == nil {
			s.Close()
		}
		return err
	})
	if err == nil || !strings.Contains(err.Error(), "MTU 9000") {
		t.Fatalf("Listen with MTU 9000: %v", err)
	}
}

// TestLabNoDriverSupport attaches in native mode to the loopback
// interface, whose driver has no XDP.
func TestLabNoDriverSupport(t *testing.T) {
	l := labtest.New(t, nil)
	a := l.A()
	var err error
	a.Do(func() error {
		lo, e := net.InterfaceByName("lo")
		if e != nil {
			err = e
			return nil
		}
		var p *Program
		p, err = Attach(lo, nil)
		if err == nil {
			p.Close()
		}
		return nil
	})
	if !errors.Is(err, ErrNoDriverSupport) || !strings.Contains(err.Error(), "Generic") {
		t.Fatalf("native Attach to lo: %v, want ErrNoDriverSupport suggesting generic mode", err)
	}
	t.Log(err)
}

// TestNoCapability loads the program on a thread without CAP_BPF,
// CAP_SYS_ADMIN and CAP_NET_ADMIN.
func TestNoCapability(t *testing.T) {
	labtest.NeedPrivileges(t)
	errc := make(chan error, 1)
	go func() {
		// The thread dies with the goroutine, its capabilities with it.
		runtime.LockOSThread()
		hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
		var data [2]unix.CapUserData
		if err := unix.Capget(&hdr, &data[0]); err != nil {
			errc <- err
			return
		}
		for _, c := range []uint{unix.CAP_BPF, unix.CAP_SYS_ADMIN, unix.CAP_NET_ADMIN, unix.CAP_PERFMON} {
			data[c/32].Effective &^= 1 << (c % 32)
		}
		if err := unix.Capset(&hdr, &data[0]); err != nil {
			errc <- err
			return
		}
		p, err := NewProgram(nil)
		if err == nil {
			p.Close()
		}
		errc <- err
	}()
	err := <-errc
	if !errors.Is(err, ErrPermission) || !strings.Contains(err.Error(), "CAP_BPF") {
		t.Fatalf("NewProgram without capabilities: %v, want ErrPermission naming CAP_BPF", err)
	}
	t.Log(err)
}

// TestLabCrashLeavesNothing attaches from a child process, checks that a
// live owner in another process is refused, kills the child with SIGKILL
// and checks that the kernel removed its program: a bpf_link dies with its
// last descriptor.
func TestLabCrashLeavesNothing(t *testing.T) {
	l := labtest.New(t, nil)
	a := l.A()
	detachAll(t, a)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := a.Command(ctx, exe, "-test.run=^TestHelperAttach$", "-test.count=1")
	cmd.Env = append(os.Environ(), "XDP_HELPER_IFACE="+a.Iface)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "attached") {
		t.Fatalf("helper: %q, %v", line, err)
	}
	if att := attachmentOf(t, a); att.mode != xdpAttachedDrv {
		t.Fatalf("attachment %+v while the helper runs", att)
	}
	if _, err := attachIn(t, a, nil); !errors.Is(err, ErrInUse) {
		t.Fatalf("Attach beside a live helper: %v, want ErrInUse", err)
	}
	cmd.Process.Signal(unix.SIGKILL)
	cmd.Wait()
	// The link is released when the dead process's files are closed,
	// which has happened by the time wait(2) returns.
	deadline := time.Now().Add(5 * time.Second)
	for attachmentOf(t, a).mode != xdpAttachedNone {
		if time.Now().After(deadline) {
			t.Fatalf("the killed helper's program is still attached: %+v", attachmentOf(t, a))
		}
		time.Sleep(10 * time.Millisecond)
	}
	p, err := attachIn(t, a, nil)
	if err != nil {
		t.Fatalf("Attach after the crash: %v", err)
	}
	if p.Info().ReplacedID != 0 {
		t.Errorf("Info %+v: nothing should have been left to replace", p.Info())
	}
}

// TestHelperAttach is the child of TestLabCrashLeavesNothing; it runs only
// with XDP_HELPER_IFACE set, inside the lab namespace.
func TestHelperAttach(t *testing.T) {
	name := os.Getenv("XDP_HELPER_IFACE")
	if name == "" {
		t.Skip("helper process only")
	}
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Attach(ifi, nil); err != nil {
		t.Fatal(err)
	}
	os.Stdout.WriteString("attached\n")
	time.Sleep(time.Minute) // until killed
}
