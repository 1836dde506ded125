package metrics

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/pktengine/pktengine/engine"
)

// Source is what a Collector reads at each scrape; *engine.Engine is one.
type Source interface {
	Counters() engine.Counters
	Ports() []engine.PortInfo
}

// BackendSource is a Source that says which backend it runs on, for the
// pktengine_backend_info series; *engine.Engine is one.
type BackendSource interface {
	Backend() (b engine.Backend, xdpMode string)
}

// Collector is a prometheus.Collector that exports an engine's counters
// and ports. Each scrape takes one snapshot of each (Source.Counters,
// Source.Ports), so the outcome samples always add up to
// pktengine_frames_total.
type Collector struct {
	src Source
}

// NewCollector returns a Collector that reads src.
func NewCollector(src Source) *Collector { return &Collector{src: src} }

// Descriptions of the metrics. The names are those of the hand-written
// exposition this package replaced; keep them stable, dashboards use them.
var (
	// engineCounters are the engine-wide counters, one sample each.
	engineCounters = [...]struct {
		desc  *prometheus.Desc
		value func(*engine.Counters) uint64
	}{
		{newDesc("udp_in_datagrams_total", "UDP datagrams delivered to ports (Udp InDatagrams)."), func(c *engine.Counters) uint64 { return c.UDP.InDatagrams }},
		{newDesc("udp_no_ports_total", "Unicast datagrams to unbound ports of owned addresses (Udp NoPorts)."), func(c *engine.Counters) uint64 { return c.UDP.NoPorts }},
		{newDesc("udp_in_errors_total", "Datagrams dropped for a bad length, a bad checksum or a full queue (Udp InErrors)."), func(c *engine.Counters) uint64 { return c.UDP.InErrors }},
		{newDesc("udp_out_datagrams_total", "UDP datagrams sent (Udp OutDatagrams)."), func(c *engine.Counters) uint64 { return c.UDP.OutDatagrams }},
		{newDesc("udp_rcvbuf_errors_total", "Deliveries dropped because a port's queue was full (Udp RcvbufErrors)."), func(c *engine.Counters) uint64 { return c.UDP.RcvbufErrors }},
		{newDesc("udp_sndbuf_errors_total", "Datagrams not sent for want of a TX buffer (Udp SndbufErrors)."), func(c *engine.Counters) uint64 { return c.UDP.SndbufErrors }},
		{newDesc("udp_in_csum_errors_total", "Datagrams with a bad UDP checksum (Udp InCsumErrors)."), func(c *engine.Counters) uint64 { return c.UDP.InCsumErrors }},
		{newDesc("udp_ignored_multi_total", "Broadcast and multicast datagrams no port wanted (Udp IgnoredMulti)."), func(c *engine.Counters) uint64 { return c.UDP.IgnoredMulti }},
		{newDesc("frames_total", "Frames the receive rings handed over."), func(c *engine.Counters) uint64 { return c.FramesIn }},
		{newDesc("frame_bytes_total", "Bytes of the frames the receive rings handed over."), func(c *engine.Counters) uint64 { return c.BytesIn }},
		{newDesc("arp_answered_total", "ARP replies sent for owned addresses."), func(c *engine.Counters) uint64 { return c.ARPAnswered }},
		{newDesc("ndp_answered_total", "Neighbor Advertisements sent for owned addresses."), func(c *engine.Counters) uint64 { return c.NDPAnswered }},
		{newDesc("ping_answered_total", "ICMP and ICMPv6 echo replies sent for owned addresses."), func(c *engine.Counters) uint64 { return c.PingAnswered }},
		{newDesc("neighbors_learned_total", "Neighbour entries created or changed from ARP and NDP."), func(c *engine.Counters) uint64 { return c.NeighborsLearned }},
		{newDesc("icmp_sent_total", "ICMP and ICMPv6 port unreachable messages sent."), func(c *engine.Counters) uint64 { return c.ICMPSent }},
		{newDesc("icmp_rate_limited_total", "ICMP errors (port unreachable, time exceeded, parameter problem) the token bucket held back."), func(c *engine.Counters) uint64 { return c.ICMPRateLimited }},
		{newDesc("icmp_suppressed_total", "ICMP errors RFC 1122 and RFC 4443 forbid."), func(c *engine.Counters) uint64 { return c.ICMPSuppressed }},
		{newDesc("tx_frames_total", "Frames committed to the TX rings."), func(c *engine.Counters) uint64 { return c.TXFrames }},
		{newDesc("tx_errors_total", "Frames that could not be built or that the kernel rejected."), func(c *engine.Counters) uint64 { return c.TXErrors }},
		{newDesc("tx_dropped_total", "Frames committed that the kernel refused to send (no buffer, link down)."), func(c *engine.Counters) uint64 { return c.TXDropped }},
		{newDesc("ring_packets_total", "Frames that passed the kernel filter (PACKET_STATISTICS tp_packets)."), func(c *engine.Counters) uint64 { return c.RingPackets }},
		{newDesc("ring_drops_total", "Frames lost because a receive ring was full (PACKET_STATISTICS tp_drops)."), func(c *engine.Counters) uint64 { return c.RingDrops }},
		{newDesc("ring_freezes_total", "TPACKET_V3 queue freezes (PACKET_STATISTICS tp_freeze_q_cnt)."), func(c *engine.Counters) uint64 { return c.RingFreezes }},
		{newDesc("link_downs_total", "Times the interface's link went down while the engine ran."), func(c *engine.Counters) uint64 { return c.LinkDowns }},
		{newDesc("link_ups_total", "Times the interface's link came back up."), func(c *engine.Counters) uint64 { return c.LinkUps }},

		// Multicast: the host side of IGMP and MLD.
		{newDesc("igmp_queries_total", "IGMP membership queries the engine acted on."), func(c *engine.Counters) uint64 { return c.Multicast.IGMPQueries }},
		{newDesc("mld_queries_total", "MLD listener queries the engine acted on."), func(c *engine.Counters) uint64 { return c.Multicast.MLDQueries }},
		{newDesc("multicast_invalid_queries_total", "IGMP and MLD queries ignored as invalid."), func(c *engine.Counters) uint64 { return c.Multicast.InvalidQueries }},
		{newDesc("multicast_reports_heard_total", "Other hosts' IGMPv1/v2 and MLDv1 reports for groups the engine joined."), func(c *engine.Counters) uint64 { return c.Multicast.ReportsHeard }},
		{newDesc("igmp_reports_total", "IGMP report frames sent (reports, leaves)."), func(c *engine.Counters) uint64 { return c.Multicast.IGMPReports }},
		{newDesc("mld_reports_total", "MLD report frames sent (reports, dones)."), func(c *engine.Counters) uint64 { return c.Multicast.MLDReports }},
		{newDesc("multicast_answers_limited_total", "Answers to queries the rate limit held back."), func(c *engine.Counters) uint64 { return c.Multicast.AnswersLimited }},
		// Fragments and ICMP errors (udp-frag).
		{newDesc("reasm_evictions_total", "Datagrams under reassembly discarded to make room for others."), func(c *engine.Counters) uint64 { return c.ReasmEvictions }},
		{newDesc("reasm_source_evictions_total", "Datagrams under reassembly discarded because their source was over its share."), func(c *engine.Counters) uint64 { return c.ReasmSourceEvictions }},
		{newDesc("icmp_errors_in_total", "ICMP and ICMPv6 errors received for the engine's addresses."), func(c *engine.Counters) uint64 { return c.ICMPErrorsIn }},
		{newDesc("icmp_errors_delivered_total", "ICMP errors handed to the port that sent the datagram they quote."), func(c *engine.Counters) uint64 { return c.ICMPErrorsDelivered }},
		{newDesc("icmp_errors_unmatched_total", "Well-formed ICMP errors about a datagram no port of the engine sent."), func(c *engine.Counters) uint64 { return c.ICMPErrorsUnmatched }},
		{newDesc("icmp_errors_invalid_total", "ICMP errors dropped: bad checksum, quote cut short, not about UDP."), func(c *engine.Counters) uint64 { return c.ICMPErrorsInvalid }},
		{newDesc("pmtu_updates_total", "Path MTUs lowered by Fragmentation Needed or Packet Too Big."), func(c *engine.Counters) uint64 { return c.PMTUUpdates }},
		{newDesc("icmp_time_exceeded_sent_total", "ICMP Time Exceeded (fragment reassembly) messages sent."), func(c *engine.Counters) uint64 { return c.ICMPTimeExceededSent }},
		{newDesc("icmp_param_problem_sent_total", "ICMPv6 Parameter Problems sent about refused fragments."), func(c *engine.Counters) uint64 { return c.ICMPParamProblemSent }},
		// The AF_XDP backend (zero on TPACKET).
		{newDesc("xdp_rx_dropped_total", "Frames an AF_XDP socket dropped for another reason than a full RX ring, an empty fill ring included (XDP_STATISTICS rx_dropped)."), func(c *engine.Counters) uint64 { return c.XDP.RxDropped }},
		{newDesc("xdp_rx_ring_full_total", "Frames dropped because an AF_XDP RX ring was full (XDP_STATISTICS rx_ring_full)."), func(c *engine.Counters) uint64 { return c.XDP.RxRingFull }},
		{newDesc("xdp_rx_fill_ring_empty_total", "Times the kernel found an AF_XDP fill ring empty (XDP_STATISTICS rx_fill_ring_empty_descs)."), func(c *engine.Counters) uint64 { return c.XDP.RxFillRingEmpty }},
		{newDesc("xdp_rx_invalid_descs_total", "RX descriptors the kernel rejected (XDP_STATISTICS rx_invalid_descs)."), func(c *engine.Counters) uint64 { return c.XDP.RxInvalidDescs }},
		{newDesc("xdp_tx_invalid_descs_total", "TX descriptors the kernel rejected (XDP_STATISTICS tx_invalid_descs)."), func(c *engine.Counters) uint64 { return c.XDP.TxInvalidDescs }},
		{newDesc("xdp_tx_ring_empty_total", "Times the kernel found an AF_XDP TX ring empty (XDP_STATISTICS tx_ring_empty_descs)."), func(c *engine.Counters) uint64 { return c.XDP.TxRingEmpty }},
		{newDesc("xdp_received_total", "Frames taken from the AF_XDP RX rings."), func(c *engine.Counters) uint64 { return c.XDP.Received }},
		{newDesc("xdp_filtered_total", "Frames the --filter expression rejected in the workers (AF_XDP)."), func(c *engine.Counters) uint64 { return c.XDP.Filtered }},
		{newDesc("xdp_transmitted_total", "Frames put on the AF_XDP TX rings."), func(c *engine.Counters) uint64 { return c.XDP.Transmitted }},
		{newDesc("xdp_completed_total", "Frames the kernel gave back on the AF_XDP completion rings."), func(c *engine.Counters) uint64 { return c.XDP.Completed }},
		{newDesc("xdp_tx_dropped_total", "AF_XDP frames not sent: dropped by the driver, kept off the TX ring while the link was down, or left on it at close."), func(c *engine.Counters) uint64 { return c.XDP.TXDropped }},
		{newDesc("xdp_steered_total", "Frames the XDP program redirected to the engine's sockets."), func(c *engine.Counters) uint64 { return c.XDP.Steered }},
		{newDesc("xdp_passed_total", "Frames the XDP program left to the kernel."), func(c *engine.Counters) uint64 { return c.XDP.Passed }},
		{newDesc("xdp_no_socket_total", "The engine's frames the XDP program passed for want of a socket on their queue."), func(c *engine.Counters) uint64 { return c.XDP.NoSocket }},
		{newDesc("xdp_frame_checks_total", "Checks of the AF_XDP sockets' UMEM frame accounting."), func(c *engine.Counters) uint64 { return c.XDP.FrameChecks }},
		{newDesc("xdp_frame_check_failures_total", "UMEM frame accounting checks that found a frame lost or in two places (a bug)."), func(c *engine.Counters) uint64 { return c.XDP.FrameCheckFailures }},
	}

	// multicastGroupsDesc is a gauge: the groups joined on the interface.
	multicastGroupsDesc = newDesc("multicast_groups", "Multicast groups joined on the interface, the engine's own included.")

	// ipCounters are the Ip and Ip6 fragment counters, one sample per
	// family (label family="ipv4" or "ipv6").
	ipCounters = [...]struct {
		desc  *prometheus.Desc
		value func(*engine.IPFragCounters) uint64
	}{
		{newDesc("ip_reasm_reqds_total", "Fragments received for reassembly (Ip ReasmReqds).", "family"), func(c *engine.IPFragCounters) uint64 { return c.ReasmReqds }},
		{newDesc("ip_reasm_oks_total", "Datagrams reassembled (Ip ReasmOKs).", "family"), func(c *engine.IPFragCounters) uint64 { return c.ReasmOKs }},
		{newDesc("ip_reasm_fails_total", "Reassembly failures: datagrams discarded, timed out or evicted, fragments refused (Ip ReasmFails).", "family"), func(c *engine.IPFragCounters) uint64 { return c.ReasmFails }},
		{newDesc("ip_reasm_timeout_total", "Datagrams that did not complete in time (Ip ReasmTimeout).", "family"), func(c *engine.IPFragCounters) uint64 { return c.ReasmTimeout }},
		{newDesc("ip_reasm_overlaps_total", "Datagrams discarded for overlapping fragments (IpExt ReasmOverlaps).", "family"), func(c *engine.IPFragCounters) uint64 { return c.ReasmOverlaps }},
		{newDesc("ip_in_hdr_errors_total", "IPv6 fragments refused with a Parameter Problem (Ip6InHdrErrors).", "family"), func(c *engine.IPFragCounters) uint64 { return c.InHdrErrors }},
		{newDesc("ip_frag_oks_total", "Datagrams sent as fragments (Ip FragOKs).", "family"), func(c *engine.IPFragCounters) uint64 { return c.FragOKs }},
		{newDesc("ip_frag_fails_total", "Datagrams whose fragments could not all be sent (Ip FragFails).", "family"), func(c *engine.IPFragCounters) uint64 { return c.FragFails }},
		{newDesc("ip_frag_creates_total", "Fragments made (Ip FragCreates).", "family"), func(c *engine.IPFragCounters) uint64 { return c.FragCreates }},
	}

	// engineGauges are values that go down as well as up.
	engineGauges = [...]struct {
		desc  *prometheus.Desc
		value func(*engine.Counters) uint64
	}{
		{newDesc("reasm_queues", "Datagrams under reassembly."), func(c *engine.Counters) uint64 { return c.ReasmQueues }},
		{newDesc("reasm_fragments", "Fragments held by the datagrams under reassembly."), func(c *engine.Counters) uint64 { return c.ReasmFragments }},
		{newDesc("reasm_memory_bytes", "Reassembly memory in use."), func(c *engine.Counters) uint64 { return c.ReasmMemoryInUse }},
		{newDesc("reasm_memory_limit_bytes", "Reassembly memory allocated (the limit), over all workers."), func(c *engine.Counters) uint64 { return c.ReasmMemoryLimit }},
	}

	reassembledDesc = newDesc("reassembled_outcomes_total", "Datagrams reassembled from fragments, by what became of them; they add up to the fragment-reassembled frames.", "outcome")

	backendDesc = newDesc("backend_info", "The engine's backend (tpacket or xdp) and, on xdp, how its AF_XDP sockets are bound (copy or zerocopy); always 1.", "backend", "xdp_mode")

	outcomesDesc = newDesc("frame_outcomes_total", "Frames by what became of them; the outcomes add up to pktengine_frames_total.", "outcome")

	guardDropsDesc = newDesc("service_guard_drops_total", "Requests the built-in services' guards left unanswered, by guard.", "guard")
	// guards are the label values of guardDropsDesc.
	guards = [...]struct {
		name  string
		value func(*engine.Counters) uint64
	}{
		{"loop", func(c *engine.Counters) uint64 { return c.GuardLoop }},
		{"source", func(c *engine.Counters) uint64 { return c.GuardSource }},
		{"group", func(c *engine.Counters) uint64 { return c.GuardNonUnicast }},
		{"rate", func(c *engine.Counters) uint64 { return c.GuardRateLimited }},
		{"total", func(c *engine.Counters) uint64 { return c.GuardTotalLimited }},
	}

	// portMetrics have one sample per bound port, labelled with its local
	// address ("*:7") and service ("echo", or "" when it has none).
	portMetrics = [...]struct {
		desc  *prometheus.Desc
		typ   prometheus.ValueType
		value func(*engine.PortInfo) float64
	}{
		{newPortDesc("port_in_datagrams_total", "Datagrams delivered to the port."), prometheus.CounterValue, func(p *engine.PortInfo) float64 { return float64(p.InDatagrams) }},
		{newPortDesc("port_out_datagrams_total", "Datagrams sent from the port."), prometheus.CounterValue, func(p *engine.PortInfo) float64 { return float64(p.OutDatagrams) }},
		{newPortDesc("port_drops_total", "Datagrams lost to the port's full queue."), prometheus.CounterValue, func(p *engine.PortInfo) float64 { return float64(p.Drops) }},
		{newPortDesc("port_suppressed_total", "Requests the port's service guards left unanswered."), prometheus.CounterValue, func(p *engine.PortInfo) float64 { return float64(p.Suppressed) }},
		{newPortDesc("port_queue_length", "Datagrams waiting in the port's queue."), prometheus.GaugeValue, func(p *engine.PortInfo) float64 { return float64(p.QueueLen) }},
		{newPortDesc("port_queue_capacity", "Capacity of the port's queue (0 for an inline handler)."), prometheus.GaugeValue, func(p *engine.PortInfo) float64 { return float64(p.QueueCap) }},
	}
)

func newDesc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc("pktengine_"+name, help, labels, nil)
}

func newPortDesc(name, help string) *prometheus.Desc { return newDesc(name, help, "local", "service") }

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for i := range engineCounters {
		ch <- engineCounters[i].desc
	}
	ch <- outcomesDesc
	ch <- guardDropsDesc
	ch <- multicastGroupsDesc
	for i := range ipCounters {
		ch <- ipCounters[i].desc
	}
	for i := range engineGauges {
		ch <- engineGauges[i].desc
	}
	ch <- reassembledDesc
	ch <- backendDesc
	for i := range portMetrics {
		ch <- portMetrics[i].desc
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	counters, ports := c.src.Counters(), c.src.Ports()
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	for i := range engineCounters {
		counter(engineCounters[i].desc, engineCounters[i].value(&counters))
	}
	for o := range engine.NumOutcomes {
		counter(outcomesDesc, counters.Outcomes[o], o.String())
	}
	for _, g := range guards {
		counter(guardDropsDesc, g.value(&counters), g.name)
	}
	ch <- prometheus.MustNewConstMetric(multicastGroupsDesc, prometheus.GaugeValue, float64(counters.Multicast.Groups))
	for i := range ipCounters {
		counter(ipCounters[i].desc, ipCounters[i].value(&counters.IP), "ipv4")
		counter(ipCounters[i].desc, ipCounters[i].value(&counters.IP6), "ipv6")
	}
	for i := range engineGauges {
		ch <- prometheus.MustNewConstMetric(engineGauges[i].desc, prometheus.GaugeValue, float64(engineGauges[i].value(&counters)))
	}
	for o := range engine.NumOutcomes {
		counter(reassembledDesc, counters.Reassembled[o], o.String())
	}
	if bs, ok := c.src.(BackendSource); ok {
		b, mode := bs.Backend()
		ch <- prometheus.MustNewConstMetric(backendDesc, prometheus.GaugeValue, 1, b.String(), mode)
	}
	for i := range ports {
		p := &ports[i]
		for _, m := range portMetrics {
			ch <- prometheus.MustNewConstMetric(m.desc, m.typ, m.value(p), p.Local(), p.Service)
		}
	}
}

// Handler serves, for Prometheus to scrape, a Collector for src and the
// standard Go runtime (go_) and process (process_) collectors, in the
// exposition format the scraper asks for (the text format by default).
// They are on a registry of the handler's own, not
// prometheus.DefaultRegisterer, so that nothing else the process links can
// register into it, and two engines in one process can each have one.
func Handler(src Source) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		NewCollector(src),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}
