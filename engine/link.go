package engine

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/pktengine/pktengine/internal/enum"
)

// LinkPolicy is what the engine does when its interface's link goes down
// while it serves (Config.OnLinkDown).
type LinkPolicy uint8

const (
	// LinkResume counts the outage (Counters.LinkDowns, LinkUps), logs
	// "link down" and "link up", and keeps the rings and workers: the
	// kernel unhooks a packet socket from a device that goes down and
	// hooks it up again when it comes back, so the engine answers again
	// as soon as the link is up. The default.
	LinkResume LinkPolicy = iota
	// LinkFail stops the engine (Done, Err) with an error wrapping
	// syscall.ENETDOWN when the link goes down, for a supervisor that
	// would rather restart or fail over than wait. Open fails the same
	// way if the interface is administratively down.
	LinkFail
)

var linkPolicyNames = enum.Names[LinkPolicy]{LinkResume: "resume", LinkFail: "fail"}

// String returns "resume" or "fail".
func (p LinkPolicy) String() string { return linkPolicyNames.Format(p, "LinkPolicy") }

// ParseLinkPolicy returns the policy called s ("resume" or "fail",
// case-insensitive).
func ParseLinkPolicy(s string) (LinkPolicy, bool) {
	return linkPolicyNames.Parse(strings.ToLower(s))
}

// linkState is the engine's interface as rtnetlink last described it.
// The link is up when the interface is up (IFF_UP) and operational
// (IFF_RUNNING: it has a carrier; for veth, the peer is up too).
type linkState struct {
	exists  bool // false: unregistered, or moved to another namespace
	adminUp bool // IFF_UP
	running bool // IFF_RUNNING
}

func (s linkState) up() bool { return s.exists && s.adminUp && s.running }

// why says why a link that exists is down, for the log.
func (s linkState) why() string {
	if !s.adminUp {
		return "interface down"
	}
	return "no carrier"
}

// linkWatch is the engine's record of its link. Only the link monitor's
// goroutine calls apply; the fields it publishes are atomics.
type linkWatch struct {
	state     linkState
	downSince time.Time
}

// Done returns a channel that is closed when the engine stops: by
// itself (see Err) or by Close. Until then the engine serves.
func (e *Engine) Done() <-chan struct{} { return e.done }

// Err returns nil while the engine serves. Once Done is closed it returns
// why the engine stopped: an error wrapping syscall.ENODEV (naming the
// interface) if the interface was removed, or moved to another network
// namespace, or its namespace went away; one wrapping syscall.ENETDOWN if
// the link went down under LinkFail; a worker's receive ring error; or
// net.ErrClosed if Close stopped it first.
//
// An engine that stopped by itself has stopped receiving, but keeps its
// ports, counters and resources: Status still works, Recv returns what
// was queued and then waits, and Close is still needed (and returns
// promptly) to free everything.
func (e *Engine) Err() error {
	select {
	case <-e.done:
		return e.stopErr
	default:
		return nil
	}
}

// LinkUp reports whether the engine's link was up at the last change the
// kernel reported (for an engine without a link monitor, true).
func (e *Engine) LinkUp() bool { return !e.linkDown.Load() }

// stop ends serving: it records why, closes the receive rings so that
// the workers finish their batch and exit, and closes Done. Only the
// first call counts. Close calls it with net.ErrClosed; the link monitor
// and the workers call it with what went wrong.
func (e *Engine) stop(err error) {
	e.stopOnce.Do(func() {
		e.stopErr = err
		if !errors.Is(err, net.ErrClosed) {
			e.log.Error("engine stopped", "iface", e.ifi.Name, "err", err)
		}
		e.cancel()
		for _, w := range e.workers {
			if w.rx == nil {
				continue
			}
			// Fold in the kernel's last PACKET_STATISTICS first:
			// after Close the socket cannot be asked, and Counters
			// reports what was read last.
			w.rx.stats()
			e.stopErrs = append(e.stopErrs, w.rx.close())
		}
		close(e.done)
	})
}

// errLinkGone is the error of an engine whose interface went away.
func (e *Engine) errLinkGone() error {
	return fmt.Errorf("engine: interface %s (index %d) was removed or left the engine's network namespace: %w",
		e.ifi.Name, e.ifi.Index, syscall.ENODEV)
}

func (e *Engine) errLinkDown(s linkState) error {
	return fmt.Errorf("engine: interface %s: link down (%s): %w", e.ifi.Name, s.why(), syscall.ENETDOWN)
}

// linkInit records the link's state at Open. It returns an error if
// the engine cannot serve on it: the interface is gone, or down under
// LinkFail.
func (e *Engine) linkInit(s linkState, now time.Time) error {
	lw := &e.link
	lw.state = s
	switch {
	case !s.exists:
		return e.errLinkGone()
	case !s.adminUp && e.cfg.OnLinkDown == LinkFail:
		return e.errLinkDown(s)
	case !s.up():
		lw.downSince = now
		e.linkDown.Store(true)
		e.log.Warn("link down at open", "iface", e.ifi.Name, "why", s.why())
	}
	return nil
}

// linkApply takes a new state of the link from the monitor: it counts
// and logs a change, and stops the engine if the interface is gone, or
// down under LinkFail. It reports whether the engine stopped.
func (e *Engine) linkApply(s linkState, now time.Time) bool {
	lw := &e.link
	was := lw.state
	lw.state = s
	switch {
	case !s.exists:
		if was.up() {
			e.linkDowns.Add(1)
		}
		e.linkDown.Store(true)
		e.stop(e.errLinkGone())
		return true
	case was.up() && !s.up():
		lw.downSince = now
		e.linkDowns.Add(1)
		e.linkDown.Store(true)
		if e.cfg.OnLinkDown == LinkFail {
			e.stop(e.errLinkDown(s))
			return true
		}
		e.log.Warn("link down", "iface", e.ifi.Name, "why", s.why())
	case !was.up() && s.up():
		e.linkUps.Add(1)
		e.linkDown.Store(false)
		e.log.Info("link up", "iface", e.ifi.Name, "down_for", now.Sub(lw.downSince).Round(time.Millisecond))
	}
	return false
}
