package bench

import (
	"bufio"
	"fmt"
	"strconv"
	"strings"
)

// parseDnsperf reads the statistics dnsperf (2.x) prints at the end of a
// run:
//
//	Queries sent:         261553
//	Queries completed:    261550 (100.00%)
//	Queries lost:         3 (0.00%)
//	...
//	Run time (s):         5.002099
//	Queries per second:   52288.049477
//
//	Average Latency (s):  0.002049 (min 0.000020, max 0.090986)
//	Latency StdDev (s):   0.002733
func parseDnsperf(out string) (DnsperfStats, error) {
	var s DnsperfStats
	seen := make(map[string]bool)
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		key, val, ok := strings.Cut(strings.TrimSpace(sc.Text()), ":")
		if !ok {
			continue
		}
		f := strings.Fields(strings.NewReplacer("(", " ", ")", " ", ",", " ").Replace(val))
		if len(f) == 0 {
			continue
		}
		num := func(i int) float64 {
			if i >= len(f) {
				return -1
			}
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				return -1
			}
			return v
		}
		sec := func(i int) float64 { return num(i) * 1e9 }
		var bad bool
		switch key {
		case "Queries sent":
			s.Sent, bad = uint64(num(0)), num(0) < 0
		case "Queries completed":
			s.Completed, bad = uint64(num(0)), num(0) < 0
		case "Queries lost":
			s.Lost, bad = uint64(num(0)), num(0) < 0
		case "Run time (s)":
			s.Seconds, bad = num(0), num(0) < 0
		case "Queries per second":
			s.QPS, bad = num(0), num(0) < 0
		case "Average Latency (s)":
			// 0.002049 (min 0.000020, max 0.090986)
			s.Mean, s.Min, s.Max = sec(0), sec(2), sec(4)
			bad = len(f) < 5 || f[1] != "min" || f[3] != "max" || s.Mean < 0 || s.Min < 0 || s.Max < 0
		case "Latency StdDev (s)":
			s.StdDev, bad = sec(0), num(0) < 0
		default:
			continue
		}
		if bad {
			return s, fmt.Errorf("bench: dnsperf: cannot read %q", sc.Text())
		}
		seen[key] = true
	}
	for _, k := range []string{"Queries sent", "Queries completed", "Queries lost", "Queries per second"} {
		if !seen[k] {
			return s, fmt.Errorf("bench: dnsperf printed no %q", k)
		}
	}
	return s, nil
}
