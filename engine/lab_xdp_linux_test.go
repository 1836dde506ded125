//go:build linux

package engine

import (
	"testing"
)

// labBackend is the backend openLab opens engines with. TestLabXDP runs
// the lab tests again with BackendXDP: everything above the backend
// boundary must behave the same on both.
var labBackend = BackendTPACKET

// labConfig returns cfg for labBackend. On XDP the engine runs one
// worker per receive queue of the interface, so a test's Workers becomes
// that (veth: one, unless ethtool gives it more).
func labConfig(cfg *Config) *Config {
	if labBackend == BackendTPACKET {
		return cfg
	}
	var c Config
	if cfg != nil {
		c = *cfg
	}
	c.Backend = labBackend
	c.Workers = 0
	return &c
}

// onXDP runs f with openLab opening AF_XDP engines.
func onXDP(t *testing.T, f func(t *testing.T)) {
	t.Helper()
	labBackend = BackendXDP
	defer func() { labBackend = BackendTPACKET }()
	f(t)
}

// TestLabXDP runs the engine's lab tests on the AF_XDP backend. The
// peer's kernel sockets send partial UDP checksums over veth, which
// AF_XDP cannot flag: the engine must take them for partial (the rule of
// frame.Packet.VerifyUDPChecksumPartial) and complete them in answers, or
// the peer's kernel drops every echo.
func TestLabXDP(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    func(*testing.T)
	}{
		{"Owned", TestLabOwned},
		{"Shared", TestLabShared},
		{"PortAPI", TestLabPortAPI},
		{"NoAllocs", TestLabNoAllocs},
	} {
		t.Run(tc.name, func(t *testing.T) { onXDP(t, tc.f) })
	}
}
