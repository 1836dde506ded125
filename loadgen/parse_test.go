package loadgen

import (
	"net/netip"
	"testing"
)

func TestParseRate(t *testing.T) {
	for in, want := range map[string]float64{"max": 0, "0": 0, "1000": 1000, "250k": 250e3, "1.5M": 1.5e6, "2G": 2e9} {
		if got, err := ParseRate(in); err != nil || got != want {
			t.Errorf("ParseRate(%q) = %v, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "fast", "-5", "1T", "k", "20G"} {
		if _, err := ParseRate(in); err == nil {
			t.Errorf("ParseRate(%q) accepted", in)
		}
	}
}

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		v6   bool
		want int
	}{{"min", false, 64}, {"min", true, 84}, {"max", false, 1518}, {"512", false, 512}, {"84", true, 84}} {
		if got, err := ParseSize(tc.in, tc.v6); err != nil || got != tc.want {
			t.Errorf("ParseSize(%q, %v) = %d, %v", tc.in, tc.v6, got, err)
		}
	}
	for _, in := range []string{"63", "64x", "70000"} {
		if _, err := ParseSize(in, false); err == nil {
			t.Errorf("ParseSize(%q) accepted", in)
		}
	}
	if _, err := ParseSize("64", true); err == nil {
		t.Error("64-byte IPv6 accepted")
	}
}

func TestParseEndpoint(t *testing.T) {
	for in, want := range map[string]string{
		"198.18.0.2:7": "198.18.0.2:7", "198.18.0.2": "198.18.0.2:0", "[fd00::2]:7": "[fd00::2]:7", "fd00::2": "[fd00::2]:0", "[fd00::2]": "[fd00::2]:0",
	} {
		got, err := ParseEndpoint(in)
		if err != nil || got != netip.MustParseAddrPort(want) {
			t.Errorf("ParseEndpoint(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := ParseEndpoint("host:7"); err == nil {
		t.Error("name accepted")
	}
}
