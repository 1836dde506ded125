package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/pktengine/pktengine/engine"
)

// writeStatus prints a status for people the way a Linux administrator
// reads a kernel's UDP state: the ports as `ss -ul` lists sockets, the Udp
// counters as `netstat -su` prints them, then what became of every frame
// and the engine's own counters.
func writeStatus(w io.Writer, st *engine.Status) error {
	ew := &errWriter{w: w}
	ew.printf("pktengine on %s (%s), %d worker(s), rx ring %s, up since %s\n",
		st.Interface, st.MAC, st.Workers, st.RXVersion, st.Started.Format("2006-01-02 15:04:05"))
	var addrs []string
	for _, a := range st.Addrs {
		kind := "shared with the kernel"
		if a.Owned {
			kind = "owned"
		}
		addrs = append(addrs, a.Prefix.String()+" ("+kind+")")
	}
	link := "up"
	if !st.LinkUp {
		link = "DOWN"
	}
	ew.printf("addresses: %s; link %s\n\n", strings.Join(addrs, ", "), link)
	engine.WritePorts(ew, st.Ports)
	ew.printf("\n")
	c := &st.Counters
	engine.WriteNetstat(ew, &c.UDP)
	engine.WriteOutcomes(ew, c)
	engine.WriteEngine(ew, c)
	if err := c.Check(); err != nil {
		ew.printf("    WARNING: %v\n", err)
	}
	return ew.err
}

// errWriter keeps the first write error so the printing code stays flat.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}

func (e *errWriter) printf(format string, args ...any) { fmt.Fprintf(e, format, args...) }
