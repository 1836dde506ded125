package bench

import (
	"cmp"
	"fmt"
	"slices"
	"time"
)

// DNSConfig configures the DNS benchmark (RunDNS). Zero fields mean the
// defaults of DefaultDNSConfig, except LossTolerance, whose zero is zero.
type DNSConfig struct {
	// Responders are the DNS servers to measure, by name (see
	// DNSResponders); empty means all of them.
	Responders []string `json:"responders"`

	// Names is the size of the benchmark zone: hosts with an A and an
	// AAAA record each. The queries ask for every record and, one in
	// eleven, for a name that does not exist. Default 10,000.
	Names int `json:"names"`

	// Trials, TrialDuration, Drain, Precision, MaxSteps, LatencyLoads,
	// GenCPU and ResponderCPU are as in Config.
	Trials        int           `json:"trials"`
	TrialDuration time.Duration `json:"trial_duration_ns"`
	Drain         time.Duration `json:"drain_ns"`
	Precision     float64       `json:"precision"`
	MaxSteps      int           `json:"max_steps"`
	LatencyLoads  []float64     `json:"latency_loads"`
	GenCPU        int           `json:"gen_cpu"`
	ResponderCPU  int           `json:"responder_cpu"`

	// LossTolerance is the fraction of queries a trial may leave
	// unanswered and still pass: 0.001 in DefaultDNSConfig.
	LossTolerance float64 `json:"loss_tolerance"`

	// Dnsperf, unless SkipDnsperf, also loads each responder with
	// dnsperf at the lowest latency load (if dnsperf, one core, can
	// offer it) once per round: an independent check of the
	// generator's loss and latency. DnsperfMax is the highest rate it
	// is asked for (default 100,000 queries/s).
	SkipDnsperf bool    `json:"skip_dnsperf,omitempty"`
	DnsperfMax  float64 `json:"dnsperf_max"`

	// Dnsd, Knotd and Dnsperf are the programs' paths. Empty means
	// "dnsd" beside the running executable (make builds bin/dnsd beside
	// bin/pktengine) or else on $PATH, and knotd and dnsperf on $PATH or
	// in /usr/sbin.
	Dnsd string `json:"dnsd,omitempty"`
	// DnsdEngine are dnsd flags for the engine of its conn and inline
	// modes, such as "--rx-ring v3" or "--backend xdp"; empty means
	// dnsd's defaults (TPACKET_V2).
	DnsdEngine []string `json:"dnsd_engine,omitempty"`
	Knotd      string   `json:"knotd,omitempty"`
	Dnsperf    string   `json:"dnsperf,omitempty"`

	// Executable is the binary to run the generator child from (it must
	// call ChildMain for ChildCommand). Empty means os.Executable().
	Executable string `json:"-"`
}

// DefaultDNSConfig returns the configuration of `make bench-dns`: three
// rounds of one-second trials, latency at 10, 50 and 90 % of each
// responder's rate, dnsperf alongside; about eight minutes for the five
// responders.
func DefaultDNSConfig() DNSConfig {
	c := DNSConfig{Names: 10000, LossTolerance: 0.001, DnsperfMax: 100e3}
	c.setMethod(DefaultConfig())
	return c
}

// DemoDNSConfig returns the configuration of the short run at the end of
// `make demo`: one round of 200 ms trials, a coarser search (5 %, at most
// 5 halvings), latency at half of each rate, no dnsperf; under a minute.
func DemoDNSConfig() DNSConfig {
	c := DefaultDNSConfig()
	c.Trials = 1
	c.TrialDuration = 200 * time.Millisecond
	c.Drain = 50 * time.Millisecond
	c.Precision = 0.05
	c.MaxSteps = 5
	c.LatencyLoads = []float64{0.5}
	c.SkipDnsperf = true
	return c
}

// withDefaults fills the zero fields and checks the rest.
func (c DNSConfig) withDefaults() (DNSConfig, error) {
	d := DefaultDNSConfig()
	c.Names = cmp.Or(c.Names, d.Names)
	c.DnsperfMax = cmp.Or(c.DnsperfMax, d.DnsperfMax)
	if len(c.Responders) == 0 {
		for _, r := range DNSResponders() {
			c.Responders = append(c.Responders, r.Name)
		}
	}
	if c.Names < 1 || c.Names > 1<<15 {
		return c, fmt.Errorf("bench: %d names: want 1 to %d", c.Names, 1<<15)
	}
	m := c.method()
	err := m.withMethodDefaults(d.method())
	c.setMethod(m)
	if err != nil {
		return c, err
	}
	for i, name := range c.Responders {
		if !slices.ContainsFunc(DNSResponders(), func(r ResponderInfo) bool { return r.Name == name }) {
			return c, fmt.Errorf("%w %q (have %v)", errUnknownResponder, name, DNSResponders())
		}
		if slices.Contains(c.Responders[:i], name) {
			return c, fmt.Errorf("bench: responder %q twice", name)
		}
	}
	return c, nil
}

// method returns the fields that DNSConfig shares with Config, and
// LossTolerance, as a Config, for Config's withMethodDefaults.
func (c DNSConfig) method() Config {
	return Config{Trials: c.Trials, TrialDuration: c.TrialDuration, Drain: c.Drain, Precision: c.Precision, MaxSteps: c.MaxSteps,
		LatencyLoads: c.LatencyLoads, GenCPU: c.GenCPU, ResponderCPU: c.ResponderCPU, LossTolerance: c.LossTolerance}
}

// setMethod sets the fields that DNSConfig shares with Config from m
// (LossTolerance, whose defaults differ, is left alone).
func (c *DNSConfig) setMethod(m Config) {
	c.Trials, c.TrialDuration, c.Drain, c.Precision, c.MaxSteps = m.Trials, m.TrialDuration, m.Drain, m.Precision, m.MaxSteps
	c.LatencyLoads, c.GenCPU, c.ResponderCPU = m.LatencyLoads, m.GenCPU, m.ResponderCPU
}

// DNS responders, in the order the benchmark runs them.
var dnsResponderInfos = []ResponderInfo{
	{"knot-udp", "Knot DNS on kernel UDP, one UDP worker", false},
	{"knot-xdp", "Knot DNS in XDP mode: native XDP on the veth, AF_XDP (copy mode), one XDP worker", false},
	{"dnsd-kernel", "dnsd --mode kernel: miekg/dns's dns.Server on a kernel UDP socket", false},
	{"dnsd-conn", "dnsd --mode conn: the same dns.Server on the engine's net.PacketConn", true},
	{"dnsd-inline", "dnsd --mode inline: an engine handler answering from the receive ring, prepared answers", true},
}

// DNSResponders lists the DNS servers the benchmark measures. Engine
// marks dnsd's modes on pktengine's engine.
func DNSResponders() []ResponderInfo { return slices.Clone(dnsResponderInfos) }
