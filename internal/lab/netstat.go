package lab

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// NetCounters reads the kernel's network counters in h's namespace from
// /proc/net files ("snmp", "netstat", "snmp6"), merged into one map:
// the two-line tables of snmp and netstat as "Ip:ReasmOKs",
// "IpExt:ReasmOverlaps", snmp6's lines as they are ("Ip6ReasmOKs").
func (h *Host) NetCounters(files ...string) (map[string]uint64, error) {
	var out map[string]uint64
	err := h.Do(func() error {
		// thread-self: /proc/net follows the process's first thread,
		// which is in another namespace.
		var err error
		out, err = ReadNetCounters("/proc/thread-self/net", files...)
		return err
	})
	return out, err
}

// ReadNetCounters reads the counters of files in dir as NetCounters
// does, for a namespace the caller names by its directory: /proc/net for
// the calling process's, /proc/PID/net for process PID's. A file it
// cannot read is left out, and its error returned with the counters of
// the others.
func ReadNetCounters(dir string, files ...string) (map[string]uint64, error) {
	out := map[string]uint64{}
	var errs []error
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		parseNetCounters(string(b), out)
	}
	return out, errors.Join(errs...)
}

// parseNetCounters adds the counters of one /proc/net file to out.
func parseNetCounters(s string, out map[string]uint64) {
	lines := strings.Split(s, "\n")
	for i, line := range lines {
		f := strings.Fields(line)
		if len(f) == 2 && !strings.HasSuffix(f[0], ":") {
			if v, err := strconv.ParseUint(f[1], 10, 64); err == nil {
				out[f[0]] = v
			}
			continue
		}
		if len(f) < 2 || !strings.HasSuffix(f[0], ":") || i+1 >= len(lines) {
			continue
		}
		vals := strings.Fields(lines[i+1])
		if len(vals) != len(f) || vals[0] != f[0] {
			continue
		}
		// A header line is followed by its values; a values line by the
		// next table's header, whose first field is not a number.
		if _, err := strconv.ParseInt(vals[1], 10, 64); err != nil {
			continue
		}
		for j := 1; j < len(f); j++ {
			if v, err := strconv.ParseUint(vals[j], 10, 64); err == nil {
				out[f[0]+f[j]] = v
			}
		}
	}
}
