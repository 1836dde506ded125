package main

import (
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/pktengine/pktengine/engine"
)

// writePrometheus writes st in the Prometheus text exposition format
// (version 0.0.4). Every counter is a monotonic total; the queue lengths
// are gauges. Labels carry the port's local address and service name.
func writePrometheus(w io.Writer, st *engine.Status) error {
	ew := &errWriter{w: w}
	c := &st.Counters
	counter := func(name, help string, v uint64) {
		ew.printf("# HELP pktengine_%s %s\n# TYPE pktengine_%s counter\npktengine_%s %d\n", name, help, name, name, v)
	}
	u := &c.UDP
	udp := []struct {
		name string
		v    uint64
	}{
		{"InDatagrams", u.InDatagrams}, {"NoPorts", u.NoPorts}, {"InErrors", u.InErrors},
		{"OutDatagrams", u.OutDatagrams}, {"RcvbufErrors", u.RcvbufErrors}, {"SndbufErrors", u.SndbufErrors},
		{"InCsumErrors", u.InCsumErrors}, {"IgnoredMulti", u.IgnoredMulti},
	}
	ew.printf("# HELP pktengine_udp_total The Udp counters of /proc/net/snmp, as the engine keeps them.\n# TYPE pktengine_udp_total counter\n")
	for _, m := range udp {
		ew.printf("pktengine_udp_total{counter=%q} %d\n", m.name, m.v)
	}
	counter("frames_received_total", "Frames the receive rings handed over.", c.FramesIn)
	counter("bytes_received_total", "Bytes of the frames the receive rings handed over.", c.BytesIn)
	ew.printf("# HELP pktengine_frame_outcomes_total Frames by what became of them; the outcomes add up to frames_received_total.\n# TYPE pktengine_frame_outcomes_total counter\n")
	for o := engine.Outcome(0); o < engine.NumOutcomes; o++ {
		ew.printf("pktengine_frame_outcomes_total{outcome=%q} %d\n", o.String(), c.Outcomes[o])
	}
	counter("frames_sent_total", "Frames committed to the transmit rings.", c.TXFrames)
	counter("transmit_errors_total", "Frames that could not be built or that the kernel rejected.", c.TXErrors)
	counter("arp_answered_total", "ARP requests answered for owned addresses.", c.ARPAnswered)
	counter("ndp_answered_total", "Neighbor solicitations answered for owned addresses.", c.NDPAnswered)
	counter("ping_answered_total", "Echo requests answered for owned addresses.", c.PingAnswered)
	counter("icmp_unreachable_sent_total", "ICMP and ICMPv6 port unreachable messages sent.", c.ICMPSent)
	counter("icmp_rate_limited_total", "Port unreachable messages held back by the token bucket.", c.ICMPRateLimited)
	counter("icmp_suppressed_total", "Port unreachable messages RFC 1122 and RFC 4443 forbid.", c.ICMPSuppressed)
	ew.printf("# HELP pktengine_guard_total Requests the built-in services' guards left unanswered, by guard.\n# TYPE pktengine_guard_total counter\n")
	ew.printf("pktengine_guard_total{guard=\"loop\"} %d\npktengine_guard_total{guard=\"source\"} %d\npktengine_guard_total{guard=\"group\"} %d\npktengine_guard_total{guard=\"rate\"} %d\n",
		c.GuardLoop, c.GuardSource, c.GuardNonUnicast, c.GuardRateLimited)
	counter("ring_packets_total", "PACKET_STATISTICS: frames that passed the kernel filter.", c.RingPackets)
	counter("ring_drops_total", "PACKET_STATISTICS: frames lost because a receive ring was full.", c.RingDrops)
	counter("ring_freezes_total", "PACKET_STATISTICS: TPACKET_V3 queue freezes.", c.RingFreezes)

	ew.printf("# HELP pktengine_port_datagrams_total Datagrams per port and direction.\n# TYPE pktengine_port_datagrams_total counter\n")
	for _, p := range st.Ports {
		l := portLabels(&p)
		ew.printf("pktengine_port_datagrams_total{%s,direction=\"in\"} %d\n", l, p.InDatagrams)
		ew.printf("pktengine_port_datagrams_total{%s,direction=\"out\"} %d\n", l, p.OutDatagrams)
	}
	ew.printf("# HELP pktengine_port_drops_total Datagrams lost to a full port queue (RcvbufErrors per port).\n# TYPE pktengine_port_drops_total counter\n")
	for _, p := range st.Ports {
		ew.printf("pktengine_port_drops_total{%s} %d\n", portLabels(&p), p.Drops)
	}
	ew.printf("# HELP pktengine_port_queue_length Datagrams waiting in a port's queue.\n# TYPE pktengine_port_queue_length gauge\n")
	for _, p := range st.Ports {
		ew.printf("pktengine_port_queue_length{%s} %d\n", portLabels(&p), p.QueueLen)
	}
	return ew.err
}

func portLabels(p *engine.PortInfo) string {
	var b strings.Builder
	b.WriteString(`local="`)
	b.WriteString(p.Local())
	b.WriteString(`",port="`)
	b.WriteString(strconv.Itoa(int(p.Port)))
	b.WriteString(`",service="`)
	b.WriteString(p.Service)
	b.WriteString(`"`)
	return b.String()
}

// metricsHandler serves writePrometheus for the status fn returns.
func metricsHandler(fn func() engine.Status) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st := fn()
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		writePrometheus(w, &st)
	})
}
