package main

import (
	"bytes"
	"context"
	"os/exec"
	"strings"
	"testing"

	"github.com/pktengine/pktengine/internal/labtest"
)

// TestFilterMatchesTcpdumpFormat runs `pktengine filter` and tcpdump on the
// same expressions and compares the -ddd programs' verdict format: the
// first line is the instruction count and each later line has four decimal
// fields, exactly as tcpdump prints them.
func TestFilterOutputFormats(t *testing.T) {
	for _, flag := range []string{"-d", "-dd", "-ddd"} {
		var out, errb bytes.Buffer
		code := run(context.Background(), []string{"filter", flag, "udp", "dst", "port", "echo"}, &out, &errb)
		if code != 0 {
			t.Fatalf("filter %s: exit %d: %s", flag, code, errb.String())
		}
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		switch flag {
		case "-d":
			if !strings.HasPrefix(lines[0], "(000) ") || !strings.Contains(out.String(), "ret") {
				t.Errorf("-d output does not look like tcpdump -d:\n%s", out.String())
			}
		case "-dd":
			if !strings.HasPrefix(lines[0], "{ 0x") {
				t.Errorf("-dd output does not look like tcpdump -dd:\n%s", out.String())
			}
		case "-ddd":
			if len(lines) < 2 || len(strings.Fields(lines[1])) != 4 {
				t.Errorf("-ddd output does not look like tcpdump -ddd:\n%s", out.String())
			}
		}
	}
}

// TestFilterAgreesWithTcpdump compares our -d listing with tcpdump's for an
// expression whose program both compile the same way: tcpdump is an
// independent oracle for the printer (and, in bpf/, for the verdicts).
func TestFilterAgreesWithTcpdump(t *testing.T) {
	tcpdump := labtest.NeedTool(t, "tcpdump")
	const expr = "ip proto 17"
	want, err := exec.Command(tcpdump, "-y", "EN10MB", "-ddd", expr).Output()
	if err != nil {
		t.Fatalf("tcpdump -ddd %q: %v", expr, err)
	}
	var got, errb bytes.Buffer
	if code := run(context.Background(), []string{"filter", "-vlan", "packet", "-ddd", expr}, &got, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if got.String() != string(want) {
		t.Errorf("pktengine filter -ddd %q:\n%s\ntcpdump -ddd:\n%s", expr, got.String(), want)
	}
}

func TestFilterErrors(t *testing.T) {
	for _, args := range [][]string{
		{"filter", "udp", "port", "no-such-service-name"},
		{"filter", "udp", "port", "70000"},
		{"filter", "udp", "and", "("},
		{"filter", "-vlan", "sideways", "udp"},
	} {
		var out, errb bytes.Buffer
		if code := run(context.Background(), args, &out, &errb); code != 1 {
			t.Errorf("%q: exit %d, want 1 (stderr %q)", args, code, errb.String())
		}
		if errb.Len() == 0 {
			t.Errorf("%q: no error message", args)
		}
	}
}

func TestUnknownCommand(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"frobnicate"}, &out, &errb); code != 2 {
		t.Errorf("exit %d, want 2", code)
	}
	if !strings.Contains(errb.String(), "unknown command") {
		t.Errorf("stderr %q", errb.String())
	}
}
