//go:build linux

package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/pktengine/pktengine/internal/lab"
	"github.com/pktengine/pktengine/loadgen"
)

// child is one of the harness's child processes.
type child struct {
	name  string
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Scanner
	pid   int
	mu    sync.Mutex
}

// start runs a child in host's namespace, pinned to cpu, and waits until
// it is ready.
func (h *harness) start(ctx context.Context, name string, host *lab.Host, cpu int, spec childSpec) (*child, error) {
	js, err := json.Marshal(spec)
	if err != nil {
		return nil, err
	}
	cmd := host.Command(ctx, "taskset", "-c", strconv.Itoa(cpu), h.self, ChildCommand, string(js))
	cmd.Stderr = &prefixWriter{w: h.log, prefix: "  [" + name + "] "}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	c := &child{name: name, cmd: cmd}
	if c.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	c.out = bufio.NewScanner(stdout)
	c.out.Buffer(make([]byte, 64<<10), 16<<20)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("bench: start %s: %w", name, err)
	}
	r, err := c.read()
	if err != nil {
		c.close()
		return nil, err
	}
	if !r.Ready {
		c.close()
		return nil, fmt.Errorf("bench: %s did not start", name)
	}
	c.pid = r.PID
	return c, nil
}

func (c *child) read() (*childReply, error) {
	if !c.out.Scan() {
		err := c.out.Err()
		if err == nil {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("bench: %s: %w", c.name, err)
	}
	var r childReply
	if err := json.Unmarshal(c.out.Bytes(), &r); err != nil {
		return nil, fmt.Errorf("bench: %s: %w", c.name, err)
	}
	if r.Error != "" && r.Summary == nil {
		return nil, fmt.Errorf("bench: %s: %s", c.name, r.Error)
	}
	return &r, nil
}

// call sends one request line and reads the reply.
func (c *child) call(req string) (*childReply, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, err := io.WriteString(c.stdin, req+"\n"); err != nil {
		return nil, fmt.Errorf("bench: %s: %w", c.name, err)
	}
	return c.read()
}

// ask sends req and returns what part picks from the reply; a reply
// without it is an error.
func ask[T any](c *child, req string, part func(*childReply) *T) (*T, error) {
	r, err := c.call(req)
	if err != nil {
		return nil, err
	}
	if v := part(r); v != nil {
		return v, nil
	}
	return nil, fmt.Errorf("bench: %s sent no reply to %s", c.name, req)
}

func (c *child) stats() (*ResponderStats, error) {
	return ask(c, "stats", func(r *childReply) *ResponderStats { return r.Stats })
}

func (c *child) run(load loadgen.Load) (*loadgen.Summary, error) {
	js, _ := json.Marshal(load)
	r, err := c.call("run " + string(js))
	return c.summary(r, err)
}

// begin starts a generator run without waiting for it; end stops it (a
// run without count or duration lasts until then) and returns its
// summary.
func (c *child) begin(load loadgen.Load) error {
	js, _ := json.Marshal(load)
	c.mu.Lock()
	defer c.mu.Unlock()
	_, err := io.WriteString(c.stdin, "run "+string(js)+"\n")
	return err
}

func (c *child) end() (*loadgen.Summary, error) {
	s, _, err := c.endAlloc()
	return s, err
}

// endAlloc is end with what the run allocated.
func (c *child) endAlloc() (*loadgen.Summary, *Alloc, error) {
	r, err := c.call("stop")
	s, err := c.summary(r, err)
	if err != nil {
		return s, nil, err
	}
	return s, r.RunAlloc, nil
}

func (c *child) summary(r *childReply, err error) (*loadgen.Summary, error) {
	if err != nil {
		return nil, err
	}
	if r.Summary == nil {
		return nil, fmt.Errorf("bench: %s sent no summary", c.name)
	}
	if r.Error != "" {
		return r.Summary, fmt.Errorf("bench: %s: %s", c.name, r.Error)
	}
	return r.Summary, nil
}

func (c *child) count() (*sinkCount, error) {
	return ask(c, "count", func(r *childReply) *sinkCount { return r.Count })
}

// close ends the child: its input closes, which it takes as the end, and
// if it has not exited after five seconds it is killed.
func (c *child) close() error {
	c.stdin.Close()
	done := make(chan error, 1)
	go func() { done <- c.cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(5 * time.Second):
		c.cmd.Process.Kill()
		return <-done
	}
}
