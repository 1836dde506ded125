package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/pktengine/pktengine/bench"
)

func TestIsDNSBench(t *testing.T) {
	for args, want := range map[string]bool{
		"--dns":                  true,
		"-dns":                   true,
		"--demo --dns":           true,
		"--dns=true":             true,
		"--demo":                 false,
		"--responders dns":       false,
		"--dns=false --trials 1": false,
		"":                       false,
	} {
		if got := isDNSBench(strings.Fields(args)); got != want {
			t.Errorf("isDNSBench(%q) = %v", args, got)
		}
	}
}

// TestBenchDNSUsage: command lines that cannot run fail before any lab is
// built.
func TestBenchDNSUsage(t *testing.T) {
	for _, c := range []struct {
		args  []string
		usage bool
		text  string
	}{
		{[]string{"--dns", "--bogus"}, true, "bogus"},
		{[]string{"--dns", "extra"}, true, "unexpected arguments"},
		{[]string{"--dns", "--responders", "bind"}, false, `unknown responder "bind"`},
		{[]string{"--dns", "--names", "100000"}, false, "names"},
		{[]string{"--dns", "--loss", "1.5"}, false, "loss tolerance"},
	} {
		var out bytes.Buffer
		err := runBench(context.Background(), c.args, &out, &out)
		var ue usageError
		if err == nil || errors.As(err, &ue) != c.usage || !strings.Contains(err.Error()+out.String(), c.text) {
			t.Errorf("bench %q: %v (usage error %v), want %q in:\n%s", c.args, err, errors.As(err, &ue), c.text, out.String())
		}
	}
}

// TestBenchDNSFlags: every flag reaches the configuration, with --demo
// too (--demo once replaced the configuration after --dnsd-engine had
// been put into it), and --loss defaults to the configuration's own.
func TestBenchDNSFlags(t *testing.T) {
	for _, c := range []struct {
		args   string
		engine string
		loss   float64
		trials int
	}{
		{"--dns", "", bench.DefaultDNSConfig().LossTolerance, bench.DefaultDNSConfig().Trials},
		{"--dns --dnsd-engine=--rx-ring=v3", "--rx-ring=v3", 0.001, 3},
		{"--dns --demo --dnsd-engine=--backend=xdp", "--backend=xdp", 0.001, 1},
		{"--dns --demo --loss 0 --trials 2", "", 0, 2},
	} {
		a, err := parseBenchDNS(strings.Fields(c.args), io.Discard)
		if err != nil {
			t.Errorf("%s: %v", c.args, err)
			continue
		}
		if got := strings.Join(a.cfg.DnsdEngine, " "); got != c.engine {
			t.Errorf("%s: dnsd engine flags %q, want %q", c.args, got, c.engine)
		}
		if a.cfg.LossTolerance != c.loss || a.cfg.Trials != c.trials {
			t.Errorf("%s: loss %v trials %d, want %v and %d", c.args, a.cfg.LossTolerance, a.cfg.Trials, c.loss, c.trials)
		}
	}
}
