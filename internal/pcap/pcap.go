// Package pcap writes capture files in the classic libpcap format, which
// Wireshark, tshark and tcpdump read. It records nanosecond timestamps
// (magic 0xa1b23c4d) and the Ethernet link type.
//
// The engine uses it for `serve --pcap`: a frame is copied into a buffered
// writer while the ring still holds it, so writing costs one copy and no
// allocation per frame.
package pcap

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	"sync"
)

// File header fields (https://www.tcpdump.org/manpages/pcap-savefile.5.html).
const (
	magicNanoseconds = 0xa1b23c4d
	versionMajor     = 2
	versionMinor     = 4
	// LinkTypeEthernet is LINKTYPE_ETHERNET.
	LinkTypeEthernet = 1

	fileHeaderLen   = 24
	recordHeaderLen = 16
)

// DefaultSnapLen is the snapshot length written into the file header when
// none is given: large enough for a 9000-byte jumbo frame with tags.
const DefaultSnapLen = 262144

// Writer writes frames to a pcap stream. It is safe for concurrent use, so
// several RX workers may share one file.
type Writer struct {
	mu      sync.Mutex
	w       *bufio.Writer
	snapLen uint32
	hdr     [recordHeaderLen]byte
	err     error
}

// NewWriter writes the file header to w and returns a Writer for frames of
// at most snapLen bytes (0 means DefaultSnapLen). Longer frames are cut and
// recorded with their original length.
func NewWriter(w io.Writer, snapLen uint32) (*Writer, error) {
	if snapLen == 0 {
		snapLen = DefaultSnapLen
	}
	pw := &Writer{w: bufio.NewWriterSize(w, 64<<10), snapLen: snapLen}
	var h [fileHeaderLen]byte
	binary.LittleEndian.PutUint32(h[0:], magicNanoseconds)
	binary.LittleEndian.PutUint16(h[4:], versionMajor)
	binary.LittleEndian.PutUint16(h[6:], versionMinor)
	// thiszone and sigfigs stay 0.
	binary.LittleEndian.PutUint32(h[16:], snapLen)
	binary.LittleEndian.PutUint32(h[20:], LinkTypeEthernet)
	if _, err := pw.w.Write(h[:]); err != nil {
		return nil, err
	}
	return pw, nil
}

// WriteFrame records one frame captured at unixNano. origLen is the length
// of the frame on the wire, which may exceed len(frame) when the ring's
// snapshot cut it; 0 means len(frame). After the first error every call
// returns that error.
func (pw *Writer) WriteFrame(unixNano int64, frame []byte, origLen int) error {
	if origLen < len(frame) {
		origLen = len(frame)
	}
	if uint32(len(frame)) > pw.snapLen {
		frame = frame[:pw.snapLen]
	}
	pw.mu.Lock()
	defer pw.mu.Unlock()
	if pw.err != nil {
		return pw.err
	}
	h := pw.hdr[:]
	binary.LittleEndian.PutUint32(h[0:], uint32(unixNano/1e9))
	binary.LittleEndian.PutUint32(h[4:], uint32(unixNano%1e9))
	binary.LittleEndian.PutUint32(h[8:], uint32(len(frame)))
	binary.LittleEndian.PutUint32(h[12:], uint32(origLen))
	if _, err := pw.w.Write(h); err != nil {
		pw.err = err
		return err
	}
	if _, err := pw.w.Write(frame); err != nil {
		pw.err = err
		return err
	}
	return nil
}

// Flush writes buffered records to the underlying writer.
func (pw *Writer) Flush() error {
	pw.mu.Lock()
	defer pw.mu.Unlock()
	if pw.err != nil {
		return pw.err
	}
	pw.err = pw.w.Flush()
	return pw.err
}

// ErrClosed is returned by WriteFrame after Close.
var ErrClosed = errors.New("pcap: writer closed")

// Close flushes the writer. It does not close the underlying io.Writer.
func (pw *Writer) Close() error {
	err := pw.Flush()
	pw.mu.Lock()
	if pw.err == nil {
		pw.err = ErrClosed
	}
	pw.mu.Unlock()
	return err
}
