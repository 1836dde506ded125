package engine

import (
	"encoding/binary"

	"github.com/pktengine/pktengine/frame"
	"github.com/pktengine/pktengine/proto"
)

// VLANs: the engine serves one VLAN (Config.VLAN), by default the untagged
// frames, as the kernel's base interface does. The kernel's filter
// (bpf.ServeFilter) already cuts frames of other VLANs to a few bytes;
// the worker's check below decides, for every backend: a packet ring gets
// the outermost tag in its metadata (the kernel strips it before any tap),
// AF_XDP leaves it in the frame.

// inVLAN reports whether the frame being handled belongs to the VLAN the
// engine serves: exactly one tag of that ID, in the metadata or in the
// frame, or for VLAN 0 no tag or one priority tag (VLAN ID 0), which the
// kernel's base interface takes for untagged. A priority tag in front of
// a VLAN tag is not looked through, and a frame of another VLAN is the
// kernel's PACKET_OTHERHOST: neither is served.
func (w *worker) inVLAN() bool {
	in := &w.in
	want := w.e.cfg.VLAN
	tagged := false
	if tag, ok := in.meta.strippedVLAN(); ok {
		if tag.ID() != want {
			return false
		}
		tagged = true
	}
	d := in.data
	if len(d) >= frame.EthernetHeaderLen && isTPID(binary.BigEndian.Uint16(d[12:])) {
		if tagged || len(d) < frame.EthernetHeaderLen+frame.VLANTagLen {
			return false
		}
		return binary.BigEndian.Uint16(d[14:])&0x0fff == want && !isTPID(binary.BigEndian.Uint16(d[16:]))
	}
	return tagged || want == 0
}

func isTPID(et uint16) bool { return et == proto.EtherTypeVLAN || et == proto.EtherTypeQinQ }

// vlanTags returns the tags of what the engine sends on its own (a
// Port.Send, ARP and NDP solicitations, membership reports): the served
// VLAN's 802.1Q tag, or none.
func vlanTags(id uint16) []frame.VLANTag {
	if id == 0 {
		return nil
	}
	return []frame.VLANTag{{TPID: proto.EtherTypeVLAN, TCI: frame.MakeTCI(0, false, id)}}
}
