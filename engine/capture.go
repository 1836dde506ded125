package engine

import "github.com/pktengine/pktengine/frame"

// capture records the frame being handled (Config.Capture), with the VLAN
// tag the kernel removed put back, so that the file shows the frame as
// it was on the wire. The copy is made only for tagged frames.
func (w *worker) capture(cw FrameWriter) {
	in := &w.in
	data, wireLen := in.data, in.meta.wireLen
	if tag, ok := in.meta.strippedVLAN(); ok && len(data) >= frame.EthernetHeaderLen {
		need := len(data) + frame.VLANTagLen
		if cap(w.captureBuf) < need {
			w.captureBuf = make([]byte, need+need/2)
		}
		b := w.captureBuf[:need]
		copy(b, data)
		if _, err := frame.InsertVLANTag(b, len(data), tag); err == nil {
			data = b
			if wireLen != 0 {
				wireLen += frame.VLANTagLen
			}
		}
	}
	if err := cw.WriteFrame(in.meta.time, data, wireLen); err != nil && w.e.captureErr.CompareAndSwap(false, true) {
		w.e.log.Error("capture failed; no further frames are recorded", "err", err)
	}
}
