package proto

import "testing"

func TestPortRangeOf(t *testing.T) {
	for _, tc := range []struct {
		port uint16
		want PortRange
	}{
		{0, WellKnown},
		{1, WellKnown},
		{7, WellKnown},
		{1023, WellKnown},
		{1024, Registered},
		{32787, Registered}, // the seed capture's client port (Linux ephemeral range)
		{49151, Registered},
		{49152, Dynamic},
		{60999, Dynamic},
		{65535, Dynamic},
	} {
		if got := PortRangeOf(tc.port); got != tc.want {
			t.Errorf("PortRangeOf(%d) = %v, want %v", tc.port, got, tc.want)
		}
		if !tc.want.Contains(tc.port) {
			t.Errorf("%v.Contains(%d) = false", tc.want, tc.port)
		}
	}
}

func TestPortRangeBounds(t *testing.T) {
	next := 0
	for _, r := range []PortRange{WellKnown, Registered, Dynamic} {
		first, last := r.Bounds()
		if int(first) != next {
			t.Errorf("%v starts at %d, want %d (ranges must tile 0-65535)", r, first, next)
		}
		if PortRangeOf(first) != r || PortRangeOf(last) != r {
			t.Errorf("%v.Bounds() = %d, %d: ends not in the range", r, first, last)
		}
		next = int(last) + 1
	}
	if next != 65536 {
		t.Errorf("ranges end at %d, want 65535", next-1)
	}
	if EphemeralMin != 49152 || EphemeralMax != 65535 || WellKnownMax != 1023 || RegisteredMin != 1024 || RegisteredMax != 49151 {
		t.Error("range constants differ from RFC 6335")
	}
	defer func() {
		if recover() == nil {
			t.Error("Bounds of an invalid PortRange did not panic")
		}
	}()
	PortRange(3).Bounds()
}

func TestPortRangeString(t *testing.T) {
	for r, want := range map[PortRange]string{
		WellKnown:  "well-known",
		Registered: "registered",
		Dynamic:    "dynamic",
		7:          "PortRange(7)",
	} {
		if got := r.String(); got != want {
			t.Errorf("PortRange(%d).String() = %q, want %q", uint8(r), got, want)
		}
	}
	if PortRange(7).Contains(7) {
		t.Error("an invalid PortRange contains a port")
	}
}
