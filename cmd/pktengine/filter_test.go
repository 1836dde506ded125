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
	for _, expr := range []string{"ip proto 17", "udp[8:2] & 0x8000 = 0", "icmp[icmptype] == icmp-echo",
		"tcp[tcpflags] & tcp-syn != 0", "len > 1000", "-ip[3] = -54"} {
		want, err := exec.Command(tcpdump, "-y", "EN10MB", "-ddd", "--", expr).Output()
		if err != nil {
			t.Fatalf("tcpdump -ddd %q: %v", expr, err)
		}
		var got, errb bytes.Buffer
		if code := run(context.Background(), []string{"filter", "-vlan", "packet", "-ddd", "--", expr}, &got, &errb); code != 0 {
			t.Fatalf("exit %d: %s", code, errb.String())
		}
		if got.String() != string(want) {
			t.Errorf("pktengine filter -ddd %q:\n%s\ntcpdump -ddd:\n%s", expr, got.String(), want)
		}
	}
}

// TestFilterNetmask: "ip broadcast" needs -netmask, given as a mask or a
// prefix length.
func TestFilterNetmask(t *testing.T) {
	var outs []string
	for _, mask := range []string{"255.255.255.0", "/24", "24"} {
		var out, errb bytes.Buffer
		if code := run(context.Background(), []string{"filter", "-netmask", mask, "ip", "broadcast"}, &out, &errb); code != 0 {
			t.Fatalf("-netmask %s: exit %d: %s", mask, code, errb.String())
		}
		if !strings.Contains(out.String(), "and      #0xff") {
			t.Errorf("-netmask %s: no host-part mask in\n%s", mask, out.String())
		}
		outs = append(outs, out.String())
	}
	if outs[0] != outs[1] || outs[1] != outs[2] {
		t.Errorf("the three spellings of /24 compile differently")
	}
	for _, args := range [][]string{
		{"filter", "ip", "broadcast"},
		{"filter", "-netmask", "255.0.255.0", "ip", "broadcast"},
		{"filter", "-netmask", "33", "ip", "broadcast"},
		{"filter", "-netmask", "fd00::", "ip", "broadcast"},
	} {
		var out, errb bytes.Buffer
		if code := run(context.Background(), args, &out, &errb); code != 1 || errb.Len() == 0 {
			t.Errorf("%q: exit %d, stderr %q; want an error", args, code, errb.String())
		}
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
