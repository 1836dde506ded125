package loadgen

import (
	"testing"
	"time"
)

func TestFormat(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{FormatSI(0), "0"},
		{FormatSI(7), "7.00"},
		{FormatSI(12.5), "12.5"},
		{FormatSI(999), "999"},
		{FormatSI(1000), "1.00k"},
		{FormatSI(980e3), "980k"},
		{FormatSI(1.25e6), "1.25M"},
		{FormatSI(-2.5e9), "-2.50G"},
		{FormatRate(1.25e6), "1.25Mfps"},
		{FormatBitRate(640e6), "640Mbit/s"},
		{FormatDuration(850), "850ns"},
		{FormatDuration(23200 * time.Nanosecond), "23.2µs"},
		{FormatDuration(1030 * time.Microsecond), "1.03ms"},
		{FormatDuration(2 * time.Second), "2.00s"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}
