package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
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
