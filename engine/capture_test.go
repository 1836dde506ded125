package engine

import (
	"net/netip"
	"testing"

	"github.com/pktengine/pktengine/frame"
	"github.com/pktengine/pktengine/ring"
)

// recordWriter is a FrameWriter that keeps what it is given.
type recordWriter struct {
	frames  [][]byte
	origLen []int
}

func (w *recordWriter) WriteFrame(ns int64, f []byte, origLen int) error {
	w.frames = append(w.frames, append([]byte(nil), f...))
	w.origLen = append(w.origLen, origLen)
	return nil
}

func TestCapture(t *testing.T) {
	for _, dropped := range []bool{false, true} {
		rec := &recordWriter{}
		r := newRig(t, &Config{Capture: rec, CaptureDropped: dropped, VLAN: 5})
		r.e.HandleService(ap(netip.Addr{}, 7), Echo)
		echo := udpFrame(t, ap(peer4, 1), ap(owned4, 7), []byte("kept"))
		bad := clone(echo)
		bad[len(bad)-1] ^= 0xff // breaks the UDP checksum
		r.one(echo, ring.Meta{Status: tpStatusVLANValid, VLANTCI: 5, Length: len(echo)})
		r.one(bad, ring.Meta{Status: tpStatusVLANValid, VLANTCI: 5})
		want := 2
		if dropped {
			want = 1
		}
		if len(rec.frames) != want {
			t.Fatalf("CaptureDropped=%v: %d frames recorded, want %d", dropped, len(rec.frames), want)
		}
		if !dropped {
			// The stripped tag is put back for the file.
			if f := rec.frames[0]; len(f) != len(echo)+4 || f[12] != 0x81 || f[15] != 5 || rec.origLen[0] != len(echo)+4 {
				t.Errorf("captured %x (orig %d)", f, rec.origLen[0])
			}
		}
		// As received: the stripped tag put back.
		tagged := append(clone(bad), 0, 0, 0, 0)
		if _, err := frame.InsertVLANTag(tagged, len(bad), frame.VLANTag{TPID: 0x8100, TCI: 5}); err != nil {
			t.Fatal(err)
		}
		if last := rec.frames[len(rec.frames)-1]; string(last) != string(tagged) {
			t.Errorf("the dropped frame was not recorded as received")
		}
	}
}
