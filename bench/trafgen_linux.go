//go:build linux

package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/pktengine/pktengine/loadgen"
)

// trafgen is netsniff-ng's trafgen set up to send the generator's frame
// as a static packet: one process (--cpus 1) pinned with taskset to the
// generator CPU, qdisc bypass (its default), without touching IRQ
// affinity or the system's socket memory settings.
type trafgen struct {
	h          *harness
	path, conf string
	dir        string
}

func (h *harness) newTrafgen(cfg *loadgen.Config) (*trafgen, error) {
	bin := h.cfg.Trafgen
	if bin == "" {
		bin = "trafgen"
	}
	path, err := exec.LookPath(bin)
	if err != nil {
		return nil, err
	}
	tmpl, err := loadgen.NewTemplate(&cfg.Spec)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "pktengine-trafgen-")
	if err != nil {
		return nil, err
	}
	conf := filepath.Join(dir, "frame.cfg")
	if err := os.WriteFile(conf, trafgenConfig(tmpl.Bytes()), 0o644); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return &trafgen{h: h, path: path, conf: conf, dir: dir}, nil
}

func (t *trafgen) cleanup() { os.RemoveAll(t.dir) }

// trial runs trafgen once against the sink.
func (t *trafgen) trial(ctx context.Context, m *sinkMeter) (float64, error) {
	h := t.h
	var cmd *exec.Cmd
	var out bytes.Buffer
	rate, err := m.measure(func() error {
		cmd = h.a.Command(ctx, "taskset", "-c", strconv.Itoa(h.cfg.GenCPU), t.path,
			"--dev", h.a.Iface, "--conf", t.conf, "--cpus", "1", "--notouch-irq", "--no-sock-mem")
		cmd.Stdout, cmd.Stderr = &out, &out
		// trafgen forks its workers: signal the whole group.
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
		cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
		return cmd.Start()
	}, func() error {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGINT)
		err := cmd.Wait()
		var ee *exec.ExitError
		if errors.As(err, &ee) && !ee.Exited() {
			return nil // ended by our signal
		}
		if err != nil {
			return fmt.Errorf("%v: %s", err, strings.TrimSpace(out.String()))
		}
		return nil
	})
	if err == nil && rate == 0 {
		err = fmt.Errorf("no frames arrived: %s", strings.TrimSpace(out.String()))
	}
	return rate, err
}

// trafgenConfig writes frame as a trafgen packet: { 0x02, 0x00, ... }.
func trafgenConfig(frame []byte) []byte {
	var b bytes.Buffer
	b.WriteString("/* pktengine bench: the generator's frame, signature zero */\n{\n")
	for i, x := range frame {
		if i%16 == 0 {
			b.WriteString("  ")
		}
		fmt.Fprintf(&b, "0x%02x", x)
		if i < len(frame)-1 {
			b.WriteByte(',')
		}
		if i%16 == 15 || i == len(frame)-1 {
			b.WriteByte('\n')
		} else {
			b.WriteByte(' ')
		}
	}
	b.WriteString("}\n")
	return b.Bytes()
}
