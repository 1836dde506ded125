package proto

import "github.com/pktengine/pktengine/internal/enum"

// Port number ranges of RFC 6335 section 6, used alike for UDP, TCP, SCTP
// and DCCP:
//
//	0     - 1023   System Ports ("well-known"), assigned by IETF review
//	1024  - 49151  User Ports ("registered"), assigned by IANA
//	49152 - 65535  Dynamic Ports ("private", "ephemeral"), never assigned
//
// The dynamic range is what RFC 6056 recommends for choosing ephemeral
// source ports. Operating systems differ: Linux by default picks from
// 32768-60999 (net.ipv4.ip_local_port_range), so a client's source port may
// well sit in the registered range, as 32787 does in the seed capture.
const (
	WellKnownMin  uint16 = 0
	WellKnownMax  uint16 = 1023
	RegisteredMin uint16 = 1024
	RegisteredMax uint16 = 49151
	DynamicMin    uint16 = 49152
	DynamicMax    uint16 = 65535

	// EphemeralMin and EphemeralMax are the dynamic range under the name
	// used when picking a source port (RFC 6056).
	EphemeralMin = DynamicMin
	EphemeralMax = DynamicMax
)

// PortRange is one of the three RFC 6335 port number ranges.
type PortRange uint8

const (
	WellKnown  PortRange = iota // 0-1023: System Ports
	Registered                  // 1024-49151: User Ports
	Dynamic                     // 49152-65535: Dynamic (private, ephemeral) Ports
)

// PortRangeOf returns the range that port falls in.
func PortRangeOf(port uint16) PortRange {
	switch {
	case port <= WellKnownMax:
		return WellKnown
	case port <= RegisteredMax:
		return Registered
	}
	return Dynamic
}

// Bounds returns the first and last port of r. It panics for a PortRange
// value other than the three constants.
func (r PortRange) Bounds() (first, last uint16) {
	switch r {
	case WellKnown:
		return WellKnownMin, WellKnownMax
	case Registered:
		return RegisteredMin, RegisteredMax
	case Dynamic:
		return DynamicMin, DynamicMax
	}
	panic("proto: invalid PortRange " + r.String())
}

// Contains reports whether port falls in r.
func (r PortRange) Contains(port uint16) bool {
	return r <= Dynamic && PortRangeOf(port) == r
}

// String returns "well-known", "registered" or "dynamic".
func (r PortRange) String() string { return portRangeNames.Format(r, "PortRange") }

var portRangeNames = enum.Names[PortRange]{
	WellKnown:  "well-known",
	Registered: "registered",
	Dynamic:    "dynamic",
}
