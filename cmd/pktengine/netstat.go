package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/pktengine/pktengine/engine"
)

// writeNetstat prints st the way a Linux administrator reads a kernel's UDP
// state: the ports as `netstat -ulp`/`ss -ulp` list sockets, the Udp
// counters as `netstat -su` prints them, then the engine's own counters.
func writeNetstat(w io.Writer, st *engine.Status) error {
	ew := &errWriter{w: w}
	ew.printf("pktengine on %s (%s), %d worker(s), rx ring %s, up since %s\n",
		st.Interface, st.MAC, st.Workers, st.RXVersion, st.Started.Format("2006-01-02 15:04:05"))
	var addrs []string
	for _, a := range st.Addrs {
		kind := "shared"
		if a.Owned {
			kind = "owned"
		}
		addrs = append(addrs, a.Prefix.String()+" ("+kind+")")
	}
	ew.printf("addresses: %s\n\n", strings.Join(addrs, ", "))

	tw := tabwriter.NewWriter(ew, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "Proto\tLocal Address\tService\tRecv-Q\tQueue-Cap\tDrops\tIn\tOut\tSuppressed")
	for _, p := range st.Ports {
		svc, capacity := p.Service, fmt.Sprint(p.QueueCap)
		if svc == "" {
			svc = "-"
		}
		if p.Inline {
			capacity = "inline"
		}
		fmt.Fprintf(tw, "udp\t%s\t%s\t%d\t%s\t%d\t%d\t%d\t%d\n",
			p.Local(), svc, p.QueueLen, capacity, p.Drops, p.InDatagrams, p.OutDatagrams, p.Suppressed)
	}
	tw.Flush()

	u := &st.Counters.UDP
	ew.printf("\nUdp:\n")
	ew.printf("    %d packets received\n", u.InDatagrams)
	ew.printf("    %d packets to unknown port received\n", u.NoPorts)
	ew.printf("    %d packet receive errors\n", u.InErrors)
	ew.printf("    %d packets sent\n", u.OutDatagrams)
	ew.printf("    %d receive buffer errors\n", u.RcvbufErrors)
	ew.printf("    %d send buffer errors\n", u.SndbufErrors)
	ew.printf("    InCsumErrors: %d\n", u.InCsumErrors)
	ew.printf("    IgnoredMulti: %d\n", u.IgnoredMulti)

	c := &st.Counters
	ew.printf("Engine:\n")
	ew.printf("    %d frames received (%d bytes)\n", c.FramesIn, c.BytesIn)
	for o := engine.Outcome(0); o < engine.NumOutcomes; o++ {
		if n := c.Outcomes[o]; n != 0 {
			ew.printf("        %d %s\n", n, o)
		}
	}
	ew.printf("    %d frames sent, %d transmit errors\n", c.TXFrames, c.TXErrors)
	ew.printf("    %d ARP and %d NDP requests answered, %d pings answered\n", c.ARPAnswered, c.NDPAnswered, c.PingAnswered)
	ew.printf("    %d ICMP port unreachable sent, %d rate-limited, %d suppressed\n", c.ICMPSent, c.ICMPRateLimited, c.ICMPSuppressed)
	ew.printf("    service guards: %d loop, %d source, %d group, %d rate-limited\n", c.GuardLoop, c.GuardSource, c.GuardNonUnicast, c.GuardRateLimited)
	ew.printf("    kernel ring: %d packets, %d drops, %d freezes\n", c.RingPackets, c.RingDrops, c.RingFreezes)
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
