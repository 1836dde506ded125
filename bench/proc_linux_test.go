//go:build linux

package bench

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseCPUTicks(t *testing.T) {
	stat := []byte(`cpu  100 1 200 3000 4 5 60 0 0 0
cpu0 50 0 100 1500 2 2 30 0 0 0
cpu1 50 1 100 1500 2 3 31 0 0 0
intr 12345
`)
	c, err := parseCPUTicks(stat, 1)
	if err != nil || c != (cpuTicks{Busy: 151, Softirq: 31}) {
		t.Fatalf("%+v, %v", c, err)
	}
	if _, err := parseCPUTicks(stat, 2); err == nil {
		t.Fatal("cpu2 found")
	}
	// The real file parses too.
	if _, err := readCPUTicks(0); err != nil {
		t.Fatal(err)
	}
}

func TestParseProcTicks(t *testing.T) {
	// A command name with spaces and a parenthesis.
	line := []byte("4242 (we ird) name) S 1 4242 4242 0 -1 4194560 100 0 0 0 17 25 0 0 20 0 3 0 12345 1000000 200")
	n, err := parseProcTicks(line)
	if err != nil || n != 42 {
		t.Fatalf("%d, %v", n, err)
	}
	if _, err := parseProcTicks([]byte("4242 (x) S 1 2")); err == nil {
		t.Fatal("short line parsed")
	}
}

func TestCPUMask(t *testing.T) {
	for cpu, want := range map[int]string{0: "00000001", 1: "00000002", 31: "80000000", 33: "00000002,00000000"} {
		if got := cpuMask(cpu); got != want {
			t.Errorf("cpuMask(%d) = %s, want %s", cpu, got, want)
		}
	}
}

func TestTrafgenConfig(t *testing.T) {
	frame := make([]byte, 35)
	for i := range frame {
		frame[i] = byte(i * 7)
	}
	conf := string(trafgenConfig(frame))
	body := conf[strings.Index(conf, "{")+1 : strings.LastIndex(conf, "}")]
	var got []byte
	for _, f := range strings.Split(body, ",") {
		var x byte
		f = strings.TrimSpace(f)
		if _, err := fmt.Sscanf(f, "0x%02x", &x); err != nil {
			t.Fatalf("%q: %v\n%s", f, err, conf)
		}
		got = append(got, x)
	}
	if !bytes.Equal(got, frame) {
		t.Fatalf("%x\n%s", got, conf)
	}
}

func TestParseBacklogDrops(t *testing.T) {
	b := []byte("1f1c7063 00000010 00000001 00000000\n0a1fbc35 000000ff 00000003 00000000\n")
	if n, err := parseBacklogDrops(b); err != nil || n != 0x10+0xff {
		t.Fatalf("%d, %v", n, err)
	}
	if _, err := readBacklogDrops(); err != nil {
		t.Fatal(err)
	}
}

// TestUDPSnmp: the UDP receive-buffer and error counters add IPv4's
// (snmp's Udp table, not UdpLite's) and IPv6's, and a missing snmp6 (IPv6
// disabled) leaves IPv4's.
func TestUDPSnmp(t *testing.T) {
	dir := t.TempDir()
	snmp := "Udp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors\nUdp: 100 1 7 90 5 0\n" +
		"UdpLite: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors\nUdpLite: 0 0 50 0 50 0\n"
	snmp6 := "Udp6InDatagrams                 \t40\nUdp6InErrors                    \t3\nUdp6RcvbufErrors                \t2\n"
	if err := os.WriteFile(filepath.Join(dir, "snmp"), []byte(snmp), 0o644); err != nil {
		t.Fatal(err)
	}
	if rcv, inErr := udpSnmpIn(dir); rcv != 5 || inErr != 7 {
		t.Errorf("without snmp6: rcvbuf %d, in errors %d; want 5, 7", rcv, inErr)
	}
	if err := os.WriteFile(filepath.Join(dir, "snmp6"), []byte(snmp6), 0o644); err != nil {
		t.Fatal(err)
	}
	if rcv, inErr := udpSnmpIn(dir); rcv != 7 || inErr != 10 {
		t.Errorf("rcvbuf %d, in errors %d; want 7, 10", rcv, inErr)
	}
	// The real files parse too.
	udpSnmp()
}
