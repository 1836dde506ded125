package metrics

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/pktengine/pktengine/engine"
)

// WriteStatus writes st for people, the way a Linux administrator reads a
// kernel's UDP state: a heading (interface, addresses, link), the ports as
// `ss -ul` lists sockets, the Udp counters as `netstat -su` prints them,
// then what became of every frame and the engine's own counters. A
// snapshot whose outcomes do not add up (engine.Counters.Check) ends with a
// WARNING line.
func WriteStatus(w io.Writer, st *engine.Status) error {
	var b strings.Builder
	writeHeading(&b, st)
	writePorts(&b, st.Ports)
	b.WriteString("\n")
	writeGroups(&b, st.Groups)
	c := &st.Counters
	writeNetstat(&b, &c.UDP)
	writeOutcomes(&b, c)
	writeEngine(&b, c)
	writeFragments(&b, c)
	writeXDP(&b, st)
	if err := c.Check(); err != nil {
		fmt.Fprintf(&b, "    WARNING: %v\n", err)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func writeHeading(b *strings.Builder, st *engine.Status) {
	rings := "rx ring " + st.RXVersion
	if st.XDP != nil {
		rings = "AF_XDP, " + st.XDP.Mode + " mode"
		if st.XDP.Generic {
			rings += ", generic XDP"
		}
	}
	fmt.Fprintf(b, "pktengine on %s (%s), %d worker(s), %s, up since %s\n",
		st.Interface, st.MAC, st.Workers, rings, st.Started.Format("2006-01-02 15:04:05"))
	addrs := make([]string, len(st.Addrs))
	for i, a := range st.Addrs {
		kind := "shared with the kernel"
		if a.Owned {
			kind = "owned"
		}
		addrs[i] = a.Prefix.String() + " (" + kind + ")"
	}
	link := "up"
	if !st.LinkUp {
		link = "DOWN"
	}
	vlan := ""
	if st.VLAN != 0 {
		vlan = "; VLAN " + strconv.Itoa(int(st.VLAN))
	}
	fmt.Fprintf(b, "addresses: %s; link %s%s\n\n", strings.Join(addrs, ", "), link, vlan)
}

// writeGroups writes the multicast groups joined on the interface, as
// `ip maddr` and /proc/net/mcfilter would: the group, its filter mode and
// sources, and who holds it.
func writeGroups(b *strings.Builder, groups []engine.GroupInfo) {
	if len(groups) == 0 {
		return
	}
	tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "Group\tFilter\tSources\tPorts\tEngine\tReported\t")
	for _, g := range groups {
		mode := "include"
		if g.Exclude {
			mode = "exclude"
		}
		srcs := make([]string, len(g.Sources))
		for i, s := range g.Sources {
			srcs[i] = s.String()
		}
		src := strings.Join(srcs, ",")
		if src == "" {
			src = "-"
		}
		yes := map[bool]string{true: "yes", false: "no"}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t\n", g.Group, mode, src, g.Ports, yes[g.Engine], yes[g.Reported])
	}
	tw.Flush()
	b.WriteString("\n")
}

// writePorts writes ports as a table in the manner of `ss -ul`: local
// address, service, how datagrams are taken (a queue with its fill and
// capacity, or inline), and the port's counters.
func writePorts(b *strings.Builder, ports []engine.PortInfo) {
	tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "Local Address:Port\tService\tRecv-Q\tDrops\tIn\tOut\tSuppressed\t")
	for i := range ports {
		p := &ports[i]
		q := "inline"
		if !p.Inline {
			q = strconv.Itoa(p.QueueLen) + "/" + strconv.Itoa(p.QueueCap)
		}
		svc := p.Service
		if svc == "" {
			svc = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t\n", p.Local(), svc, q, p.Drops, p.InDatagrams, p.OutDatagrams, p.Suppressed)
	}
	tw.Flush() // a strings.Builder does not fail
}

// writeNetstat writes the Udp counters as `netstat -su` shows the kernel's.
func writeNetstat(b *strings.Builder, u *engine.UDPCounters) {
	fmt.Fprintf(b, `Udp:
    %d packets received
    %d packets to unknown port received
    %d packet receive errors
    %d packets sent
    %d receive buffer errors
    %d send buffer errors
    InCsumErrors: %d
    IgnoredMulti: %d
`, u.InDatagrams, u.NoPorts, u.InErrors, u.OutDatagrams, u.RcvbufErrors, u.SndbufErrors, u.InCsumErrors, u.IgnoredMulti)
}

// writeOutcomes writes the frames received and the nonzero outcomes they
// add up to, one per line.
func writeOutcomes(b *strings.Builder, c *engine.Counters) {
	fmt.Fprintf(b, "Frames: %d in, %d bytes\n", c.FramesIn, c.BytesIn)
	for o := range engine.NumOutcomes {
		if v := c.Outcomes[o]; v != 0 {
			fmt.Fprintf(b, "    %d %s\n", v, o)
		}
	}
}

// writeEngine writes the engine's own counters, the ones neither the Udp
// counters nor the outcomes show: what it sent, its answers for owned
// addresses, ICMP errors, the services' guards, link outages and the
// kernel rings' statistics.
func writeEngine(b *strings.Builder, c *engine.Counters) {
	fmt.Fprintf(b, `Engine:
    %d frames sent, %d transmit errors, %d refused by the kernel
    %d ARP and %d NDP requests answered, %d pings answered, %d neighbours learned
    %d ICMP port unreachable sent, %d ICMP errors rate-limited, %d suppressed
    service guards: %d loop, %d source, %d group, %d rate-limited, %d over the total cap
    link: %d down, %d up
    kernel ring: %d packets, %d drops, %d freezes
    multicast: %d groups; %d IGMP and %d MLD queries, %d invalid; %d IGMP and %d MLD reports sent; %d reports heard; %d answers rate-limited
`, c.TXFrames, c.TXErrors, c.TXDropped,
		c.ARPAnswered, c.NDPAnswered, c.PingAnswered, c.NeighborsLearned,
		c.ICMPSent, c.ICMPRateLimited, c.ICMPSuppressed,
		c.GuardLoop, c.GuardSource, c.GuardNonUnicast, c.GuardRateLimited, c.GuardTotalLimited,
		c.LinkDowns, c.LinkUps,
		c.RingPackets, c.RingDrops, c.RingFreezes,
		c.Multicast.Groups, c.Multicast.IGMPQueries, c.Multicast.MLDQueries, c.Multicast.InvalidQueries,
		c.Multicast.IGMPReports, c.Multicast.MLDReports, c.Multicast.ReportsHeard, c.Multicast.AnswersLimited)
}

// writeFragments writes the fragment counters as `netstat -s` shows the
// kernel's Ip and Ip6 ones, what became of the reassembled datagrams
// (their nonzero outcomes), the reassemblers' state, and the ICMP errors
// the engine received about its own datagrams.
func writeFragments(b *strings.Builder, c *engine.Counters) {
	for _, f := range []struct {
		name string
		ip   *engine.IPFragCounters
	}{{"Ip", &c.IP}, {"Ip6", &c.IP6}} {
		ip := f.ip
		fmt.Fprintf(b, `%s:
    %d fragments received, %d reassembled, %d reassembly failures: %d timed out, %d overlapping; %d header errors
    %d datagrams fragmented, %d fragments created, %d fragmentation failures
`, f.name, ip.ReasmReqds, ip.ReasmOKs, ip.ReasmFails, ip.ReasmTimeout, ip.ReasmOverlaps, ip.InHdrErrors,
			ip.FragOKs, ip.FragCreates, ip.FragFails)
	}
	fmt.Fprintf(b, "Reassembly: %d datagrams in progress holding %d fragments, %d of %d bytes; %d evicted, %d of them by their source's share\n",
		c.ReasmQueues, c.ReasmFragments, c.ReasmMemoryInUse, c.ReasmMemoryLimit, c.ReasmEvictions, c.ReasmSourceEvictions)
	for o := range engine.NumOutcomes {
		if v := c.Reassembled[o]; v != 0 {
			fmt.Fprintf(b, "    %d reassembled %s\n", v, o)
		}
	}
	fmt.Fprintf(b, `ICMP errors about the engine's datagrams: %d in, %d delivered to ports, %d matching no port, %d invalid
    %d path MTUs lowered; %d time exceeded and %d parameter problems sent
`, c.ICMPErrorsIn, c.ICMPErrorsDelivered, c.ICMPErrorsUnmatched, c.ICMPErrorsInvalid,
		c.PMTUUpdates, c.ICMPTimeExceededSent, c.ICMPParamProblemSent)
}

// writeXDP writes the AF_XDP backend's counters and each socket's last
// frame count, when there is an AF_XDP backend (or any of its counters is
// set).
func writeXDP(b *strings.Builder, st *engine.Status) {
	x := &st.Counters.XDP
	if st.XDP == nil && *x == (engine.XDPCounters{}) {
		return
	}
	fmt.Fprintf(b, `AF_XDP:
    program: %d steered, %d passed to the kernel, %d without a socket
    %d received, %d filtered; %d transmitted, %d completed, %d not sent
    kernel: %d RX ring full, %d dropped, %d fill ring empty, %d invalid RX and %d invalid TX descriptors, %d TX ring empty
    frame checks: %d, %d failed
`, x.Steered, x.Passed, x.NoSocket,
		x.Received, x.Filtered, x.Transmitted, x.Completed, x.TXDropped,
		x.RxRingFull, x.RxDropped, x.RxFillRingEmpty, x.RxInvalidDescs, x.TxInvalidDescs, x.TxRingEmpty,
		x.FrameChecks, x.FrameCheckFailures)
	if st.XDP == nil {
		return
	}
	if st.XDP.Replaced != "" {
		fmt.Fprintf(b, "    replaced XDP program %s\n", st.XDP.Replaced)
	}
	for _, s := range st.XDP.Sockets {
		fmt.Fprintf(b, "    queue %d: %s mode, %d frames of %d bytes, TX budget %d; %v", s.Queue, s.Mode, s.FrameCount, s.FrameSize, s.TXBudget, s.Frames)
		if s.CheckError != "" {
			fmt.Fprintf(b, "; WRONG: %s", s.CheckError)
		}
		b.WriteString("\n")
	}
}
