//go:build linux

package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/pktengine/pktengine/frame"
	"github.com/pktengine/pktengine/internal/lab"
	"github.com/pktengine/pktengine/loadgen"
	"github.com/pktengine/pktengine/xdp"
)

// The lab: the generator on host A (198.18.0.1, CPU GenCPU), responders on
// host B (198.18.0.2, CPU ResponderCPU).
//
// The generator sends from an address and a MAC that A does not have
// (genSrc4, genSrc6, genMAC), and B has a static neighbour entry for the
// address pointing at that MAC. The replies still reach the generator's
// ring, which sees every frame on the link, but A's kernel takes them for
// another host's (PACKET_OTHERHOST) and drops them on arrival: no route
// lookup, no socket lookup, no ICMP port unreachable. The generator's CPU
// then spends next to nothing on replies beyond reading them.
var (
	genSrc4 = netip.MustParseAddr("198.18.0.101")
	genSrc6 = netip.MustParseAddr("fd00::101")
	genMAC  = frame.MAC{0x02, 0, 0, 0, 0, 0xfd}
	// nobodyMAC is the destination of the generator comparison's frames:
	// B's kernel takes them for another host (PACKET_OTHERHOST) and
	// drops them at once, while the counting ring still sees them.
	nobodyMAC = frame.MAC{0x02, 0, 0, 0, 0, 0xfe}
)

const (
	echoPort    = 7
	discardPort = 9
)

// benchConfig is Config or DNSConfig: withDefaults fills the zero fields
// of a C and checks the rest.
type benchConfig[C any] interface {
	withDefaults() (C, error)
}

// setUp is the start of Run and RunDNS: it returns *cfg (the zero C for
// nil) with its defaults, log or io.Discard for nil, and an error if the
// configuration is wrong or the process lacks the privileges of a lab.
func setUp[C benchConfig[C]](cfg *C, log io.Writer) (C, io.Writer, error) {
	var c C
	if cfg != nil {
		c = *cfg
	}
	c, err := c.withDefaults()
	if err != nil {
		return c, nil, err
	}
	if log == nil {
		log = io.Discard
	}
	return c, log, lab.CheckPrivileges()
}

// childBinary returns the binary to run the children from: executable,
// or the running one if it is empty.
func childBinary(executable string) (string, error) {
	if executable != "" {
		return executable, nil
	}
	return os.Executable()
}

// Run runs the benchmark cfg describes and returns its report. It builds
// a lab of two network namespaces joined by veth, runs every responder in
// turn as a child process pinned to cfg.ResponderCPU in one namespace and
// the generator as another pinned to cfg.GenCPU in the other, and removes
// the lab when it is done. Progress lines go to log (nil discards them).
//
// It needs root (CAP_NET_ADMIN, CAP_NET_RAW, CAP_SYS_ADMIN) and a binary
// that dispatches ChildCommand to ChildMain (cfg.Executable, by default
// the running one).
func Run(ctx context.Context, cfg *Config, log io.Writer) (*Report, error) {
	c, log, err := setUp(cfg, log)
	if err != nil {
		return nil, err
	}
	self, err := childBinary(c.Executable)
	if err != nil {
		return nil, err
	}
	started := time.Now()
	rep := &Report{Date: started.UTC(), Machine: machine(), Config: c}
	l, err := lab.Create(nil)
	if err != nil {
		return nil, err
	}
	defer l.Close()
	h := &harness{cfg: c, self: self, log: log, a: l.A(), b: l.B()}
	if err := h.setup(ctx); err != nil {
		return nil, err
	}
	fmt.Fprintf(log, "lab %s: generator %s on CPU%d, responders %s on CPU%d; load %s\n",
		l.Prefix(), h.a.Name, c.GenCPU, h.b.Name, c.ResponderCPU, rep.Machine.LoadBefore)

	// The generator comparison runs without RPS: trafgen gives up when
	// its socket's send buffer fills (EAGAIN), which it does once the
	// peer's CPU, not the sending one, frees the frames.
	defer h.setPeerProgram(false)
	if !c.SkipGenerators {
		rep.Generator = h.compareGenerators(ctx)
	}
	h.genBackend = rep.Generator.fastestGenerator()
	if c.Generator != "" {
		h.genBackend, _ = loadgen.ParseBackend(c.Generator)
	}
	if rep.Generator != nil {
		rep.Generator.Chosen = h.genBackend.String()
	}
	fmt.Fprintf(log, "responder runs: pktengine gen on %s\n", h.genBackend)
	if c.RPS {
		if err := h.steer(ctx, true); err != nil {
			return nil, err
		}
		if !c.SkipGenerators {
			h.lineRate(ctx, rep.Generator)
		}
	}
	if rep.Responders, err = h.measureAll(ctx); err != nil {
		return nil, err
	}
	rep.finish()
	rep.Machine.LoadAfter = loadavg()
	rep.Elapsed = time.Since(started)
	return rep, ctx.Err()
}

type harness struct {
	cfg  Config
	self string
	log  io.Writer
	a, b *lab.Host

	// genBackend is the generator's backend in the responder runs.
	genBackend loadgen.Backend
	// peer is the XDP program that passes everything, on B's interface
	// while the live backend needs one there (setPeerProgram).
	peer *xdp.Program
}

// setPeerProgram attaches (on) or removes (off) an XDP program with no
// addresses, which passes every frame to the kernel, on B's interface:
// frames that XDP redirects into a veth (the live generator's) arrive only
// if the peer end runs a program. The engine on AF_XDP brings its own and
// finds none there when it starts.
func (h *harness) setPeerProgram(on bool) error {
	switch {
	case on && h.peer == nil:
		return h.b.Do(func() error {
			ifi, err := h.b.Interface()
			if err != nil {
				return err
			}
			h.peer, err = xdp.Attach(ifi, nil)
			if err != nil {
				return fmt.Errorf("bench: the peer's XDP program: %w", err)
			}
			return nil
		})
	case !on && h.peer != nil:
		err := h.peer.Close()
		h.peer = nil
		return err
	}
	return nil
}

// preparePeer sets up B's interface for responder name under the
// generator's backend: the pass-everything program for live, except for
// the AF_XDP engine, whose program then serves the purpose.
func (h *harness) preparePeer(name string) error {
	return h.setPeerProgram(h.genBackend == loadgen.BackendLive && name != xdpResponder)
}

// genSrc returns the generator's source address for the configured family.
func (h *harness) genSrc() netip.Addr {
	if h.cfg.IPv6 {
		return genSrc6
	}
	return genSrc4
}

// respAddr returns B's address for the configured family.
func (h *harness) respAddr() netip.Addr {
	if h.cfg.IPv6 {
		return h.b.IPv6.Addr()
	}
	return h.b.IPv4.Addr()
}

// setup points B's neighbour entries for the generator's source addresses
// at the generator's MAC.
func (h *harness) setup(ctx context.Context) error {
	for _, a := range []netip.Addr{genSrc4, genSrc6} {
		out, err := h.b.Command(ctx, "ip", "neigh", "replace", a.String(), "lladdr", genMAC.String(), "dev", h.b.Iface, "nud", "permanent").CombinedOutput()
		if err != nil {
			return fmt.Errorf("bench: ip neigh replace %v: %v: %s", a, err, bytes.TrimSpace(out))
		}
	}
	return nil
}

// steer turns RPS on (each namespace's veth queues what it receives to
// that side's CPU) or off (rps_cpus 0, veth's default).
//
// veth hands a frame to the peer's stack on the sending CPU, so by default
// the responder side's kernel receive (socket lookup and queueing, or the
// packet ring's copy) runs on the generator's CPU, and the generator
// side's receive of the replies on the responder's, as the lab notes
// describe. With RPS the kernel queues every received frame to the
// receiving side's CPU, as a NIC's interrupt would on two real hosts: the
// responder's CPU pays for everything the responder needs. It does so
// through an inter-processor interrupt per burst, which on a virtual
// machine costs much more than the work it moves (see docs/bench/gen.md),
// so it is an option, not the default.
func (h *harness) steer(ctx context.Context, on bool) error {
	for _, x := range []struct {
		host *lab.Host
		cpu  int
	}{{h.a, h.cfg.GenCPU}, {h.b, h.cfg.ResponderCPU}} {
		mask := "0"
		if on {
			mask = cpuMask(x.cpu)
		}
		// ip netns exec mounts the namespace's own /sys, so this is
		// the namespace's veth.
		file := "/sys/class/net/" + x.host.Iface + "/queues/rx-0/rps_cpus"
		out, err := x.host.Command(ctx, "sh", "-c", fmt.Sprintf("echo %s > %s", mask, file)).CombinedOutput()
		if err != nil {
			return fmt.Errorf("bench: set %s: %v: %s", file, err, bytes.TrimSpace(out))
		}
	}
	return nil
}

// cpuMask formats the CPU bitmap with one CPU set as sysfs wants it:
// hexadecimal words of 32 bits, separated by commas.
func cpuMask(cpu int) string {
	words := make([]string, cpu/32+1)
	for i := range words {
		words[i] = "00000000"
	}
	words[len(words)-1-cpu/32] = fmt.Sprintf("%08x", uint32(1)<<(cpu%32))
	return strings.Join(words, ",")
}

// genConfig is the generator's configuration for the responder runs.
func (h *harness) genConfig(dst netip.AddrPort, dstMAC frame.MAC, sendOnly bool, flows int) *loadgen.Config {
	return &loadgen.Config{
		Spec: loadgen.Spec{
			SrcMAC: genMAC, DstMAC: dstMAC,
			Src: netip.AddrPortFrom(h.genSrc(), loadgen.DefaultSrcPort), Dst: dst,
			Flows: flows, Size: h.cfg.Size,
		},
		Drain:    h.cfg.Drain,
		SendOnly: sendOnly,
		Backend:  h.genBackend,
		// Locks the worker to a thread (taskset already keeps it on
		// the CPU) so that its timer slack can be set for the pacer.
		CPUs: []int{h.cfg.GenCPU},
	}
}

// genChildSpec runs the generator with two Ps on its one CPU: the sending
// worker and the receive side then are two threads the kernel schedules,
// and the receive side wakes as soon as a ring block is ready instead of
// waiting for the worker to yield.
func (h *harness) genChildSpec(cfg *loadgen.Config) childSpec {
	return childSpec{Role: roleGen, Iface: h.a.Iface, Gen: cfg, GOMAXPROCS: 2}
}
