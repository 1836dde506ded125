package loadgen

import (
	"fmt"
	"math"
	"time"
)

// The figures of Progress.String and Summary.String, for tools that print
// their own lines beside them.

// FormatSI formats v with a k, M or G suffix and three significant digits:
// 1.25M, 980k, 12.5.
func FormatSI(v float64) string {
	switch a := math.Abs(v); {
	case a >= 1e9:
		return sig3(v/1e9) + "G"
	case a >= 1e6:
		return sig3(v/1e6) + "M"
	case a >= 1e3:
		return sig3(v/1e3) + "k"
	}
	return sig3(v)
}

func sig3(v float64) string {
	switch a := math.Abs(v); {
	case a >= 100 || a == 0:
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

// FormatRate formats a rate in frames per second: 1.25Mfps.
func FormatRate(v float64) string { return FormatSI(v) + "fps" }

// FormatBitRate formats a rate in bits per second: 640Mbit/s.
func FormatBitRate(v float64) string { return FormatSI(v) + "bit/s" }

// FormatDuration formats a latency with three significant digits: 23.2µs,
// 1.03ms, 850ns.
func FormatDuration(d time.Duration) string {
	switch {
	case d >= time.Second:
		return sig3(d.Seconds()) + "s"
	case d >= time.Millisecond:
		return sig3(float64(d)/1e6) + "ms"
	case d >= time.Microsecond:
		return sig3(float64(d)/1e3) + "µs"
	}
	return fmt.Sprintf("%dns", int64(d))
}
