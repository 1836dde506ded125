package pcap

import (
	"bytes"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// echoRequest is the seed capture's echo request: 10.10.12.166:32787 →
// 10.10.11.66:7 "TEST", padded to 60 bytes.
var echoRequest = []byte{
	0x00, 0xd0, 0xb7, 0x1f, 0xfe, 0xe6, 0x00, 0x05, 0x85, 0x88, 0xcc, 0xdb, 0x08, 0x00,
	0x45, 0x00, 0x00, 0x20, 0x00, 0x00, 0x40, 0x00, 0x3e, 0x11, 0x10, 0xd2,
	0x0a, 0x0a, 0x0c, 0xa6, 0x0a, 0x0a, 0x0b, 0x42,
	0x80, 0x13, 0x00, 0x07, 0x00, 0x0c, 0xac, 0x26, 'T', 'E', 'S', 'T',
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
}

func TestWriterLayout(t *testing.T) {
	var buf bytes.Buffer
	w, err := NewWriter(&buf, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteFrame(1_210_091_490_947_137_000, echoRequest, 0); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	if got, want := len(b), fileHeaderLen+recordHeaderLen+len(echoRequest); got != want {
		t.Fatalf("file is %d bytes, want %d", got, want)
	}
	le := binary.LittleEndian
	if le.Uint32(b) != magicNanoseconds || le.Uint32(b[20:]) != LinkTypeEthernet || le.Uint32(b[16:]) != DefaultSnapLen {
		t.Fatalf("bad file header % x", b[:fileHeaderLen])
	}
	r := b[fileHeaderLen:]
	if sec, nsec := le.Uint32(r), le.Uint32(r[4:]); sec != 1_210_091_490 || nsec != 947_137_000 {
		t.Errorf("timestamp %d.%09d", sec, nsec)
	}
	if incl, orig := le.Uint32(r[8:]), le.Uint32(r[12:]); incl != 60 || orig != 60 {
		t.Errorf("lengths incl=%d orig=%d, want 60/60", incl, orig)
	}
	if err := w.WriteFrame(0, echoRequest, 0); err != ErrClosed {
		t.Errorf("write after close: %v, want ErrClosed", err)
	}
}

func TestWriterSnapLen(t *testing.T) {
	var buf bytes.Buffer
	w, err := NewWriter(&buf, 42)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteFrame(0, echoRequest, 0); err != nil {
		t.Fatal(err)
	}
	w.Flush()
	r := buf.Bytes()[fileHeaderLen:]
	if incl, orig := binary.LittleEndian.Uint32(r[8:]), binary.LittleEndian.Uint32(r[12:]); incl != 42 || orig != 60 {
		t.Errorf("lengths incl=%d orig=%d, want 42/60", incl, orig)
	}
}

func TestWriterAllocs(t *testing.T) {
	var buf bytes.Buffer
	buf.Grow(1 << 20)
	w, _ := NewWriter(&buf, 0)
	allocs := testing.AllocsPerRun(100, func() { w.WriteFrame(1, echoRequest, 0) })
	if allocs != 0 {
		t.Errorf("WriteFrame allocates %.1f times per call", allocs)
	}
}

// TestTsharkReads has tshark, an independent reader, decode the file and
// verify the seed frame's checksums.
func TestTsharkReads(t *testing.T) {
	tshark, err := exec.LookPath("tshark")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("tshark is not installed (CI must install it)")
		}
		t.Skip("tshark is not installed")
	}
	path := filepath.Join(t.TempDir(), "echo.pcap")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w, _ := NewWriter(f, 0)
	w.WriteFrame(1_210_091_490_947_137_000, echoRequest, 0)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	out, err := exec.Command(tshark, "-r", path, "-o", "udp.check_checksum:TRUE", "-o", "ip.check_checksum:TRUE",
		"-T", "fields", "-e", "ip.src", "-e", "udp.dstport", "-e", "udp.checksum.status", "-e", "ip.checksum.status",
		"-e", "frame.time_epoch").CombinedOutput()
	if err != nil {
		t.Fatalf("tshark: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	fields := strings.Split(lines[len(lines)-1], "\t")
	if len(fields) != 5 || fields[0] != "10.10.12.166" || fields[1] != "7" || fields[2] != "1" || fields[3] != "1" ||
		!strings.HasPrefix(fields[4], "1210091490.947137") {
		// checksum.status: 0 bad, 1 good, 2 unverified (tshark's enumeration).
		t.Fatalf("tshark read %q", lines)
	}
}
