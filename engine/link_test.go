package engine

import (
	"errors"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestLinkPolicyNames(t *testing.T) {
	for _, p := range []LinkPolicy{LinkResume, LinkFail} {
		if got, ok := ParseLinkPolicy(strings.ToUpper(p.String())); !ok || got != p {
			t.Errorf("ParseLinkPolicy(%q) = %v, %v", p, got, ok)
		}
	}
	if _, ok := ParseLinkPolicy("retry"); ok {
		t.Error("retry accepted")
	}
	if _, err := (&Config{OnLinkDown: 7}).withDefaults(); err == nil {
		t.Error("OnLinkDown 7 accepted")
	}
}

var (
	linkUp      = linkState{exists: true, adminUp: true, running: true}
	linkAdmDown = linkState{exists: true}
	linkNoCarr  = linkState{exists: true, adminUp: true}
	linkGone    = linkState{}
)

func stopped(e *Engine) bool {
	select {
	case <-e.Done():
		return true
	default:
		return false
	}
}

func TestLinkResume(t *testing.T) {
	r := newRig(t, nil)
	e, now := r.e, time.Now()
	if err := e.linkInit(linkUp, now); err != nil {
		t.Fatal(err)
	}
	for i, s := range []linkState{linkUp, linkAdmDown, linkAdmDown, linkNoCarr, linkUp, linkNoCarr, linkUp} {
		if e.linkApply(s, now.Add(time.Duration(i)*time.Second)) {
			t.Fatalf("step %d: the engine stopped", i)
		}
		if e.LinkUp() != s.up() {
			t.Errorf("step %d: LinkUp %v, want %v", i, e.LinkUp(), s.up())
		}
	}
	c := e.Counters()
	if c.LinkDowns != 2 || c.LinkUps != 2 {
		t.Errorf("LinkDowns %d, LinkUps %d; want 2, 2", c.LinkDowns, c.LinkUps)
	}
	if stopped(e) || e.Err() != nil {
		t.Errorf("stopped %v, Err %v", stopped(e), e.Err())
	}
	if st := e.Status(); !st.LinkUp || st.Counters.LinkDowns != 2 {
		t.Errorf("Status: LinkUp %v, LinkDowns %d", st.LinkUp, st.Counters.LinkDowns)
	}
	// Going away stops the engine whatever the policy.
	if !e.linkApply(linkGone, now) {
		t.Fatal("the engine did not stop when its interface went away")
	}
	checkStopped(t, e, syscall.ENODEV)
	if c := e.Counters(); c.LinkDowns != 3 {
		t.Errorf("LinkDowns %d after the interface went away, want 3", c.LinkDowns)
	}
	if err := e.Close(); err != nil {
		t.Errorf("Close after stopping: %v", err)
	}
	checkStopped(t, e, syscall.ENODEV) // Close does not change why
}

func TestLinkFail(t *testing.T) {
	r := newRig(t, &Config{OnLinkDown: LinkFail})
	e, now := r.e, time.Now()
	// No carrier at Open is allowed (a NIC negotiates for a while after
	// it is set up); administratively down is not.
	if err := e.linkInit(linkAdmDown, now); !errors.Is(err, syscall.ENETDOWN) || !strings.Contains(err.Error(), "test0") {
		t.Errorf("linkInit(down) under LinkFail: %v, want ENETDOWN naming test0", err)
	}
	if err := e.linkInit(linkGone, now); !errors.Is(err, syscall.ENODEV) {
		t.Errorf("linkInit(gone): %v, want ENODEV", err)
	}
	if err := e.linkInit(linkNoCarr, now); err != nil {
		t.Fatal(err)
	}
	if e.linkApply(linkNoCarr, now) || e.linkApply(linkUp, now) {
		t.Fatal("stopped without going down")
	}
	if !e.linkApply(linkNoCarr, now) {
		t.Fatal("LinkFail: the engine did not stop when the link went down")
	}
	checkStopped(t, e, syscall.ENETDOWN)
	if _, err := e.Bind(ap(owned4, 5000)); !errors.Is(err, syscall.ENETDOWN) {
		t.Errorf("Bind on a stopped engine: %v, want ENETDOWN", err)
	}
	if err := e.Err(); !strings.Contains(err.Error(), "no carrier") {
		t.Errorf("Err %q does not say why", err)
	}
	if c := e.Counters(); c.LinkDowns != 1 || c.LinkUps != 1 {
		t.Errorf("LinkDowns %d, LinkUps %d; want 1, 1", c.LinkDowns, c.LinkUps)
	}
}

func TestCloseStops(t *testing.T) {
	r := newRig(t, nil)
	if stopped(r.e) || r.e.Err() != nil {
		t.Fatal("stopped before Close")
	}
	r.e.Close()
	checkStopped(t, r.e, net.ErrClosed)
}

func checkStopped(t *testing.T, e *Engine, want error) {
	t.Helper()
	if !stopped(e) {
		t.Fatal("Done is not closed")
	}
	err := e.Err()
	if !errors.Is(err, want) {
		t.Errorf("Err() = %v, want %v", err, want)
	}
	if want != net.ErrClosed && !strings.Contains(err.Error(), "test0") {
		t.Errorf("Err() = %q does not name the interface", err)
	}
}
