package engine

import (
	"github.com/pktengine/pktengine/frame"
	"github.com/pktengine/pktengine/ring"
)

// The TPACKET backend's metadata, apart from its Linux-only rings so
// that the unit tests can describe frames as a ring hands them over on
// every platform.

// tpacketMeta translates the ring's frame metadata.
func tpacketMeta(m *ring.Meta) rxMeta {
	r := rxMeta{time: m.Timestamp, wireLen: m.Length, kind: tpacketKinds[m.Type&7]}
	if m.Status.Truncated() {
		r.flags |= metaTruncated
	}
	if tci, tpid, ok := m.VLAN(); ok {
		r.vlan, r.flags = frame.VLANTag{TPID: tpid, TCI: tci}, r.flags|metaVLAN
	}
	if m.Status.ChecksumPartial() {
		r.flags |= metaCsumPartial
	}
	if m.Status.ChecksumValid() {
		r.flags |= metaCsumValid
	}
	return r
}

// tpacketKinds maps sll_pkttype to frameKind; the types the engine has
// no name for (loopback, user, kernel) count as another host's.
var tpacketKinds = [8]frameKind{
	ring.PacketHost:      kindHost,
	ring.PacketBroadcast: kindBroadcast,
	ring.PacketMulticast: kindMulticast,
	ring.PacketOtherHost: kindOtherHost,
	ring.PacketOutgoing:  kindOutgoing,
	5:                    kindOtherHost,
	6:                    kindOtherHost,
	7:                    kindOtherHost,
}
