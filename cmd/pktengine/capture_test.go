package main

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/pktengine/pktengine/internal/labtest"
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

// The seed frame's timestamp, 2008-05-06 16:31:30.947137000 UTC.
const echoRequestTime = 1_210_091_490_947_137_000

// TestPcapFile writes frames from several goroutines at once, as the
// engine's workers do, and reads the file back with pcapgo's reader: the
// header says nanoseconds and Ethernet, and every record is whole, with
// its timestamp and lengths.
func TestPcapFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rx.pcap")
	p, err := createPcap(path)
	if err != nil {
		t.Fatal(err)
	}
	const writers, each = 4, 500
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			frame := append([]byte(nil), echoRequest...)
			frame[len(frame)-1] = byte(w) // which writer
			for i := range each {
				// A frame the ring cut: 60 bytes kept of 1514.
				if err := p.WriteFrame(echoRequestTime+int64(i), frame, 1514); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.WriteFrame(0, echoRequest, 0); !errors.Is(err, errCaptureClosed) {
		t.Errorf("write after close: %v, want errCaptureClosed", err)
	}
	if err := p.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}

	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := pcapgo.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	if r.LinkType() != layers.LinkTypeEthernet || r.Snaplen() != pcapSnapLen || r.Resolution() != (gopacket.TimestampResolution{Base: 10, Exponent: -9}) {
		t.Errorf("header: link type %v, snap length %d, resolution %v", r.LinkType(), r.Snaplen(), r.Resolution())
	}
	perWriter := make([]int, writers)
	for {
		data, ci, err := r.ReadPacketData()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		w := int(data[len(data)-1])
		if w >= writers || !bytes.Equal(data[:len(data)-1], echoRequest[:len(echoRequest)-1]) {
			t.Fatalf("record %d of writer %d is not the frame written: %x", perWriter[0], w, data)
		}
		if ns := ci.Timestamp.UnixNano() - echoRequestTime; ns != int64(perWriter[w]) || ci.CaptureLength != 60 || ci.Length != 1514 {
			t.Fatalf("record %d of writer %d: +%d ns, %d of %d bytes", perWriter[w], w, ns, ci.CaptureLength, ci.Length)
		}
		perWriter[w]++
	}
	for w, n := range perWriter {
		if n != each {
			t.Errorf("writer %d: %d records, want %d", w, n, each)
		}
	}
}

func TestPcapFileLengths(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rx.pcap")
	p, err := createPcap(path)
	if err != nil {
		t.Fatal(err)
	}
	huge := make([]byte, pcapSnapLen+100)
	for _, frame := range [][]byte{echoRequest, huge} {
		if err := p.WriteFrame(1, frame, 0); err != nil { // 0: the frame's own length
			t.Fatal(err)
		}
	}
	p.Close()
	f, _ := os.Open(path)
	defer f.Close()
	r, err := pcapgo.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range [][2]int{{60, 60}, {pcapSnapLen, pcapSnapLen + 100}} {
		_, ci, err := r.ReadPacketData()
		if err != nil || ci.CaptureLength != want[0] || ci.Length != want[1] {
			t.Errorf("record: %d of %d bytes (%v), want %d of %d", ci.CaptureLength, ci.Length, err, want[0], want[1])
		}
	}
}

// TestPcapFileAllocs: recording a frame allocates nothing, since the
// engine records from its receive loop.
func TestPcapFileAllocs(t *testing.T) {
	p, err := createPcap(filepath.Join(t.TempDir(), "rx.pcap"))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if allocs := testing.AllocsPerRun(1000, func() { p.WriteFrame(echoRequestTime, echoRequest, 0) }); allocs != 0 {
		t.Errorf("WriteFrame allocates %.1f times per call", allocs)
	}
}

// TestPcapFileTshark has tshark, an independent reader, decode the file
// and verify the seed frame's checksums and timestamp.
func TestPcapFileTshark(t *testing.T) {
	tshark := labtest.NeedTool(t, "tshark")
	path := filepath.Join(t.TempDir(), "echo.pcap")
	p, err := createPcap(path)
	if err != nil {
		t.Fatal(err)
	}
	p.WriteFrame(echoRequestTime, echoRequest, 0)
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(tshark, "-r", path, "-o", "udp.check_checksum:TRUE", "-o", "ip.check_checksum:TRUE",
		"-T", "fields", "-e", "ip.src", "-e", "udp.dstport", "-e", "udp.checksum.status", "-e", "ip.checksum.status",
		"-e", "frame.time_epoch").CombinedOutput()
	if err != nil {
		t.Fatalf("tshark: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	fields := strings.Split(lines[len(lines)-1], "\t")
	// checksum.status: 0 bad, 1 good, 2 unverified (tshark's enumeration).
	if len(fields) != 5 || fields[0] != "10.10.12.166" || fields[1] != "7" || fields[2] != "1" || fields[3] != "1" ||
		!strings.HasPrefix(fields[4], "1210091490.947137") {
		t.Fatalf("tshark read %q", lines)
	}
}
