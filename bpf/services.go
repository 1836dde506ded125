package bpf

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"sync"
)

// The system services database, read once. tcpdump resolves port names
// through the same file (getservbyname), so names mean the same to both.
var (
	servicesOnce sync.Once
	services     map[string]uint16 // "name/proto" -> port
)

func loadServices() {
	services = make(map[string]uint16)
	f, err := os.Open("/etc/services")
	if err != nil {
		return
	}
	defer f.Close()
	parseServices(bufio.NewScanner(f), services)
}

// parseServices reads /etc/services lines: "name port/proto [aliases...]".
func parseServices(sc *bufio.Scanner, into map[string]uint16) {
	for sc.Scan() {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		fs := strings.Fields(line)
		if len(fs) < 2 {
			continue
		}
		num, proto, ok := strings.Cut(fs[1], "/")
		if !ok {
			continue
		}
		n, err := strconv.ParseUint(num, 10, 16)
		if err != nil {
			continue
		}
		for _, name := range append([]string{fs[0]}, fs[2:]...) {
			key := name + "/" + proto
			if _, dup := into[key]; !dup {
				into[key] = uint16(n)
			}
		}
	}
}

func systemLookupPort(name, transport string) (uint16, bool) {
	servicesOnce.Do(loadServices)
	p, ok := services[name+"/"+transport]
	return p, ok
}

func (o *Options) lookupPort(name, transport string) (uint16, bool) {
	if o != nil && o.LookupPort != nil {
		return o.LookupPort(name, transport)
	}
	return systemLookupPort(name, transport)
}
