package bench

import (
	"cmp"
	"errors"
	"fmt"
	"time"
)

// Config configures a benchmark run. The zero value of each field means
// the default given with it (DefaultConfig has them all).
type Config struct {
	// Responders are the responders to measure, by name (see
	// Responders); empty means all of them.
	Responders []string `json:"responders"`

	// Size is the Ethernet frame size with FCS (RFC 2544); IPv6 sends
	// IPv6 instead of IPv4 (and needs Size >= 84). Default 64, IPv4.
	Size int  `json:"size"`
	IPv6 bool `json:"ipv6,omitempty"`

	// Flows is the number of flows (source ports) the generator cycles
	// through. Default 16.
	Flows int `json:"flows"`

	// Trials is how often each measurement is repeated: each RFC 2544
	// search, each latency load and each generator comparison. Responders
	// take turns: each round measures every one of them once. The report
	// gives medians with min and max. Default 3; at least 1.
	Trials int `json:"trials"`

	// TrialDuration is how long the generator sends in one trial, and
	// Drain how long it then waits for the last replies. Defaults 1 s
	// and 100 ms.
	TrialDuration time.Duration `json:"trial_duration_ns"`
	Drain         time.Duration `json:"drain_ns"`

	// LossTolerance is the fraction of frames a trial may lose and still
	// pass (RFC 2544 says 0, the default).
	LossTolerance float64 `json:"loss_tolerance"`

	// Precision ends a search once the bracket around the zero-loss rate
	// is narrower than this fraction of its upper end (default 0.01);
	// MaxSteps caps the halvings (default 12).
	Precision float64 `json:"precision"`
	MaxSteps  int     `json:"max_steps"`

	// LatencyLoads are the fractions of each responder's zero-loss rate
	// at which latency is measured. Default 0.1, 0.5, 0.9.
	LatencyLoads []float64 `json:"latency_loads"`

	// GenCPU and ResponderCPU are the CPUs the generator and the
	// responder are pinned to. Defaults 0 and 1; they must differ.
	GenCPU       int `json:"gen_cpu"`
	ResponderCPU int `json:"responder_cpu"`

	// Trafgen is the trafgen binary for the generator comparison; empty
	// means "trafgen" on $PATH. SkipGenerators leaves the comparison out.
	Trafgen        string `json:"trafgen,omitempty"`
	SkipGenerators bool   `json:"skip_generators,omitempty"`

	// RPS steers each side's receive processing to its own CPU instead
	// of leaving it on the sending CPU, as veth does (see Run).
	RPS bool `json:"rps,omitempty"`

	// Generator is the backend of pktengine's generator in the responder
	// runs: "tpacket", "xdp" or "live"; empty means the faster of tpacket
	// and xdp in the generator comparison (tpacket if it was skipped),
	// so that no responder is capped by the generator. (Live is faster
	// still, but paces in bursts: see fastestGenerator.) With live, the
	// responder's interface runs an XDP program that passes everything
	// (redirected frames reach a veth only through one), except while
	// engine-xdp, which has its own, runs.
	Generator string `json:"generator,omitempty"`

	// Executable is the binary to run children from (it must call
	// ChildMain for ChildCommand). Empty means os.Executable().
	Executable string `json:"-"`
}

// DefaultConfig returns the configuration of `make bench-lab`: three
// rounds, one-second trials, about five minutes for four responders.
func DefaultConfig() Config {
	return Config{
		Size:          64,
		Flows:         16,
		Trials:        3,
		TrialDuration: time.Second,
		Drain:         100 * time.Millisecond,
		Precision:     0.01,
		MaxSteps:      12,
		LatencyLoads:  []float64{0.1, 0.5, 0.9},
		GenCPU:        0,
		ResponderCPU:  1,
	}
}

// DemoConfig returns the configuration of the short side-by-side run of
// `make demo`: the same method with 200 ms trials and a coarser search
// (5 %, at most 5 halvings), under a minute for four responders.
func DemoConfig() Config {
	c := DefaultConfig()
	c.TrialDuration = 200 * time.Millisecond
	c.Drain = 50 * time.Millisecond
	c.Precision = 0.05
	c.MaxSteps = 5
	return c
}

// withDefaults fills the zero fields and checks the rest.
func (c Config) withDefaults() (Config, error) {
	d := DefaultConfig()
	c.Size = cmp.Or(c.Size, d.Size)
	c.Flows = cmp.Or(c.Flows, d.Flows)
	if len(c.Responders) == 0 {
		for _, r := range Responders() {
			c.Responders = append(c.Responders, r.Name)
		}
	}
	if err := c.withMethodDefaults(d); err != nil {
		return c, err
	}
	switch c.Generator {
	case "", "tpacket", "xdp", "live":
	default:
		return c, fmt.Errorf("bench: generator %q: want tpacket, xdp, live or empty (the fastest)", c.Generator)
	}
	for _, name := range c.Responders {
		if _, ok := lookupResponder(name); !ok {
			return c, fmt.Errorf("%w %q (have %v)", errUnknownResponder, name, Responders())
		}
	}
	return c, nil
}

// withMethodDefaults fills the zero fields of the method, the fields that
// DNSConfig shares with Config (Trials, TrialDuration, Drain, Precision,
// MaxSteps, LatencyLoads, GenCPU and ResponderCPU), from d, and checks
// them and LossTolerance: the echo and the DNS benchmark's withDefaults.
func (c *Config) withMethodDefaults(d Config) error {
	c.Trials = cmp.Or(c.Trials, d.Trials)
	c.TrialDuration = cmp.Or(c.TrialDuration, d.TrialDuration)
	c.Drain = cmp.Or(c.Drain, d.Drain)
	c.Precision = cmp.Or(c.Precision, d.Precision)
	c.MaxSteps = cmp.Or(c.MaxSteps, d.MaxSteps)
	if c.LatencyLoads == nil {
		c.LatencyLoads = d.LatencyLoads
	}
	if c.GenCPU == 0 && c.ResponderCPU == 0 {
		c.GenCPU, c.ResponderCPU = d.GenCPU, d.ResponderCPU
	}
	switch {
	case c.Trials < 1 || c.TrialDuration < 10*time.Millisecond || c.Drain < 0:
		return errors.New("bench: need at least one trial of at least 10 ms")
	case c.LossTolerance < 0 || c.LossTolerance >= 1:
		return fmt.Errorf("bench: loss tolerance %v out of [0, 1)", c.LossTolerance)
	case c.Precision <= 0 || c.Precision >= 1 || c.MaxSteps < 1:
		return errors.New("bench: precision must be in (0, 1) and MaxSteps at least 1")
	case c.GenCPU == c.ResponderCPU || c.GenCPU < 0 || c.ResponderCPU < 0:
		return fmt.Errorf("bench: generator and responder need two different CPUs, not %d and %d", c.GenCPU, c.ResponderCPU)
	}
	for _, f := range c.LatencyLoads {
		if f <= 0 || f > 1 {
			return fmt.Errorf("bench: latency load %v out of (0, 1]", f)
		}
	}
	return nil
}
