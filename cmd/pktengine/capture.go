package main

import (
	"bufio"
	"errors"
	"os"
	"sync"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/pktengine/pktengine/engine"
)

// pcapSnapLen is the snapshot length of `serve --pcap` files: libpcap's
// largest, far above a jumbo frame with tags, so no frame is cut.
const pcapSnapLen = 262144

// errCaptureClosed is what WriteFrame returns after Close.
var errCaptureClosed = errors.New("capture file closed")

// pcapFile is the engine.FrameWriter of `serve --pcap`: a pcap file with
// nanosecond timestamps and Ethernet frames, written by gopacket's pcapgo.
// The engine's workers call WriteFrame at once from their goroutines, and a
// pcapgo.Writer is for one, so a mutex serialises them. A frame is copied
// into the buffer while the ring still holds it: one copy, no allocation.
type pcapFile struct {
	mu   sync.Mutex
	file *os.File
	buf  *bufio.Writer
	w    *pcapgo.Writer
	err  error // the first error; every later call returns it
}

// createPcap creates the file at path and writes its header.
func createPcap(path string) (*pcapFile, error) {
	file, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	p := &pcapFile{file: file, buf: bufio.NewWriterSize(file, 64<<10)}
	p.w = pcapgo.NewWriterNanos(p.buf)
	if err := p.w.WriteFileHeader(pcapSnapLen, layers.LinkTypeEthernet); err != nil {
		file.Close()
		return nil, err
	}
	return p, nil
}

// WriteFrame records frame, received at unixNano. origLen is its length on
// the wire, which exceeds len(frame) when the ring's snapshot cut it.
func (p *pcapFile) WriteFrame(unixNano int64, frame []byte, origLen int) error {
	ci := gopacket.CaptureInfo{
		Timestamp:     time.Unix(0, unixNano),
		CaptureLength: min(len(frame), pcapSnapLen),
		Length:        max(origLen, len(frame)),
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err == nil {
		p.err = p.w.WritePacket(ci, frame[:ci.CaptureLength])
	}
	return p.err
}

// Close writes what is buffered and closes the file.
func (p *pcapFile) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if errors.Is(p.err, errCaptureClosed) {
		return nil
	}
	err := errors.Join(p.err, p.buf.Flush(), p.file.Close())
	p.err = errCaptureClosed
	return err
}

var _ engine.FrameWriter = (*pcapFile)(nil)
