package engine

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"text/tabwriter"
)

// WritePrometheus writes c and ports in the Prometheus text exposition
// format (version 0.0.4).
func WritePrometheus(w io.Writer, c *Counters, ports []PortInfo) error {
	bw := bufio.NewWriter(w)
	metric := func(name, typ, help string) {
		fmt.Fprintf(bw, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
	}
	one := func(name, help string, v uint64) {
		metric(name, "counter", help)
		fmt.Fprintf(bw, "%s %d\n", name, v)
	}

	u := &c.UDP
	for _, m := range []struct {
		name, help string
		v          uint64
	}{
		{"in_datagrams", "UDP datagrams delivered to ports (Udp InDatagrams).", u.InDatagrams},
		{"no_ports", "Unicast datagrams to unbound ports of owned addresses (Udp NoPorts).", u.NoPorts},
		{"in_errors", "Datagrams dropped for a bad length, a bad checksum or a full queue (Udp InErrors).", u.InErrors},
		{"out_datagrams", "UDP datagrams sent (Udp OutDatagrams).", u.OutDatagrams},
		{"rcvbuf_errors", "Deliveries dropped because a port's queue was full (Udp RcvbufErrors).", u.RcvbufErrors},
		{"sndbuf_errors", "Datagrams not sent for want of a TX buffer (Udp SndbufErrors).", u.SndbufErrors},
		{"in_csum_errors", "Datagrams with a bad UDP checksum (Udp InCsumErrors).", u.InCsumErrors},
		{"ignored_multi", "Broadcast and multicast datagrams no port wanted (Udp IgnoredMulti).", u.IgnoredMulti},
	} {
		one("pktengine_udp_"+m.name+"_total", m.help, m.v)
	}

	one("pktengine_frames_total", "Frames the receive rings handed over.", c.FramesIn)
	one("pktengine_frame_bytes_total", "Bytes of the frames the receive rings handed over.", c.BytesIn)
	metric("pktengine_frame_outcomes_total", "counter", "Frames by what became of them; the outcomes add up to pktengine_frames_total.")
	for o := range NumOutcomes {
		fmt.Fprintf(bw, "pktengine_frame_outcomes_total{outcome=\"%s\"} %d\n", promLabel(o.String()), c.Outcomes[o])
	}
	one("pktengine_arp_answered_total", "ARP replies sent for owned addresses.", c.ARPAnswered)
	one("pktengine_ndp_answered_total", "Neighbor Advertisements sent for owned addresses.", c.NDPAnswered)
	one("pktengine_ping_answered_total", "ICMP and ICMPv6 echo replies sent for owned addresses.", c.PingAnswered)
	one("pktengine_neighbors_learned_total", "Neighbour entries created or changed from ARP and NDP.", c.NeighborsLearned)
	one("pktengine_icmp_sent_total", "ICMP and ICMPv6 port unreachable messages sent.", c.ICMPSent)
	one("pktengine_icmp_rate_limited_total", "Port unreachable messages the token bucket held back.", c.ICMPRateLimited)
	one("pktengine_icmp_suppressed_total", "Port unreachable messages RFC 1122 and RFC 4443 forbid.", c.ICMPSuppressed)
	metric("pktengine_service_guard_drops_total", "counter", "Requests the built-in services' guards left unanswered, by guard.")
	for _, g := range []struct {
		name string
		v    uint64
	}{{"loop", c.GuardLoop}, {"source", c.GuardSource}, {"group", c.GuardNonUnicast}, {"rate", c.GuardRateLimited}, {"total", c.GuardTotalLimited}} {
		fmt.Fprintf(bw, "pktengine_service_guard_drops_total{guard=\"%s\"} %d\n", g.name, g.v)
	}
	one("pktengine_tx_frames_total", "Frames committed to the TX rings.", c.TXFrames)
	one("pktengine_tx_errors_total", "Frames that could not be built or that the kernel rejected.", c.TXErrors)
	one("pktengine_ring_packets_total", "Frames that passed the kernel filter (PACKET_STATISTICS tp_packets).", c.RingPackets)
	one("pktengine_ring_drops_total", "Frames lost because a receive ring was full (PACKET_STATISTICS tp_drops).", c.RingDrops)
	one("pktengine_ring_freezes_total", "TPACKET_V3 queue freezes (PACKET_STATISTICS tp_freeze_q_cnt).", c.RingFreezes)
	one("pktengine_link_downs_total", "Times the interface's link went down while the engine ran.", c.LinkDowns)
	one("pktengine_link_ups_total", "Times the interface's link came back up.", c.LinkUps)

	portMetric := func(name, typ, help string, v func(*PortInfo) uint64) {
		metric(name, typ, help)
		for i := range ports {
			p := &ports[i]
			fmt.Fprintf(bw, "%s{local=\"%s\",service=\"%s\"} %d\n", name, promLabel(p.Local()), promLabel(p.Service), v(p))
		}
	}
	portMetric("pktengine_port_in_datagrams_total", "counter", "Datagrams delivered to the port.", func(p *PortInfo) uint64 { return p.InDatagrams })
	portMetric("pktengine_port_out_datagrams_total", "counter", "Datagrams sent from the port.", func(p *PortInfo) uint64 { return p.OutDatagrams })
	portMetric("pktengine_port_drops_total", "counter", "Datagrams lost to the port's full queue.", func(p *PortInfo) uint64 { return p.Drops })
	portMetric("pktengine_port_suppressed_total", "counter", "Requests the port's service guards left unanswered.", func(p *PortInfo) uint64 { return p.Suppressed })
	portMetric("pktengine_port_queue_length", "gauge", "Datagrams waiting in the port's queue.", func(p *PortInfo) uint64 { return uint64(p.QueueLen) })
	portMetric("pktengine_port_queue_capacity", "gauge", "Capacity of the port's queue (0 for an inline handler).", func(p *PortInfo) uint64 { return uint64(p.QueueCap) })
	return bw.Flush()
}

// promLabel escapes a label value: backslash, double quote and line feed
// are the only characters the text format escapes.
var promLabelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)

func promLabel(s string) string { return promLabelEscaper.Replace(s) }

// MetricsHandler serves e's counters and ports in the Prometheus text
// format.
func MetricsHandler(e *Engine) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, ports := e.Counters(), e.Ports()
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		WritePrometheus(w, &c, ports)
	})
}

// WriteNetstat writes the Udp counters as `netstat -su` shows the kernel's.
func WriteNetstat(w io.Writer, u *UDPCounters) error {
	_, err := fmt.Fprintf(w, `Udp:
    %d packets received
    %d packets to unknown port received
    %d packet receive errors
    %d packets sent
    %d receive buffer errors
    %d send buffer errors
    InCsumErrors: %d
    IgnoredMulti: %d
`, u.InDatagrams, u.NoPorts, u.InErrors, u.OutDatagrams, u.RcvbufErrors, u.SndbufErrors, u.InCsumErrors, u.IgnoredMulti)
	return err
}

// WritePorts writes ports as a table in the manner of `ss -ul`: local
// address, service, how datagrams are taken (a queue with its fill and
// capacity, or inline), and the port's counters.
func WritePorts(w io.Writer, ports []PortInfo) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
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
	return tw.Flush()
}

// WriteOutcomes writes the nonzero frame outcomes, one per line, and the
// frames they add up to.
func WriteOutcomes(w io.Writer, c *Counters) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Frames: %d in, %d bytes\n", c.FramesIn, c.BytesIn)
	for o := range NumOutcomes {
		if v := c.Outcomes[o]; v != 0 {
			fmt.Fprintf(&b, "    %d %s\n", v, o)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteEngine writes the engine's own counters, the ones neither the Udp
// counters nor the outcomes show: what it sent, its answers for owned
// addresses, ICMP errors, the services' guards, link outages and the
// kernel rings' statistics.
func WriteEngine(w io.Writer, c *Counters) error {
	_, err := fmt.Fprintf(w, `Engine:
    %d frames sent, %d transmit errors
    %d ARP and %d NDP requests answered, %d pings answered
    %d ICMP port unreachable sent, %d rate-limited, %d suppressed
    service guards: %d loop, %d source, %d group, %d rate-limited, %d over the total cap
    link: %d down, %d up
    kernel ring: %d packets, %d drops, %d freezes
`, c.TXFrames, c.TXErrors,
		c.ARPAnswered, c.NDPAnswered, c.PingAnswered,
		c.ICMPSent, c.ICMPRateLimited, c.ICMPSuppressed,
		c.GuardLoop, c.GuardSource, c.GuardNonUnicast, c.GuardRateLimited, c.GuardTotalLimited,
		c.LinkDowns, c.LinkUps,
		c.RingPackets, c.RingDrops, c.RingFreezes)
	return err
}
