package bench

import (
	"errors"
	"testing"
)

// model is a fake responder and generator: the generator tops out at
// genMax; the responder answers everything up to capacity and, above it,
// loses frames and delivers at most overload (less than capacity if it
// livelocks).
type model struct {
	genMax, capacity, overload float64
	trials                     []float64
}

func (m *model) trial(rate float64) (Point, error) {
	m.trials = append(m.trials, rate)
	sent := rate
	if rate == 0 || rate > m.genMax {
		sent = m.genMax
	}
	p := Point{Offered: rate, Sent: sent, Delivered: sent}
	if sent > m.capacity {
		// Overloaded: some loss however much it could still deliver.
		p.Delivered = min(m.overload, 0.999*sent)
		p.Loss = 1 - p.Delivered/sent
	}
	return p, nil
}

func TestSearch(t *testing.T) {
	sp := searchParams{precision: 0.01, maxSteps: 20}
	for _, tc := range []struct {
		name string
		m    model
		// The result must be within the precision below capacity.
		want    float64
		limited bool
	}{
		{"kernel-like", model{genMax: 900e3, capacity: 15e3, overload: 120e3}, 15e3, false},
		{"engine-like", model{genMax: 900e3, capacity: 480e3, overload: 500e3}, 480e3, false},
		// A livelocked responder delivers less when overloaded than its
		// zero-loss rate: the capped first guess passes, and the search
		// goes on above it.
		{"livelock", model{genMax: 900e3, capacity: 300e3, overload: 100e3}, 300e3, false},
		{"generator-limited", model{genMax: 900e3, capacity: 2e6, overload: 2e6}, 900e3, true},
	} {
		m := tc.m
		r, err := search(m.trial, sp)
		if err != nil {
			t.Fatal(err)
		}
		if r.GeneratorLimited != tc.limited {
			t.Errorf("%s: generator limited %v", tc.name, r.GeneratorLimited)
		}
		if r.Rate > tc.want || r.Rate < tc.want*(1-2*sp.precision) {
			t.Errorf("%s: rate %v, want just below %v (trials %v)", tc.name, r.Rate, tc.want, m.trials)
		}
		if len(r.Points) != len(m.trials) || r.Max.Offered != 0 || m.trials[0] != 0 {
			t.Errorf("%s: points %d trials %d", tc.name, len(r.Points), len(m.trials))
		}
		for _, p := range r.Points {
			if p.Pass != (p.Sent <= m.capacity) {
				t.Errorf("%s: point %+v pass %v", tc.name, p, p.Pass)
			}
		}
	}
}

func TestSearchSteps(t *testing.T) {
	m := model{genMax: 1e6, capacity: 12345, overload: 1e5}
	r, err := search(m.trial, searchParams{precision: 1e-9, maxSteps: 5})
	if err != nil {
		t.Fatal(err)
	}
	// unpaced, the 1.1×overload guess, then five halvings.
	if len(m.trials) != 7 || r.Rate > 12345 {
		t.Fatalf("%d trials, rate %v", len(m.trials), r.Rate)
	}
}

func TestSearchPassRules(t *testing.T) {
	sp := searchParams{tolerance: 0.001}
	for _, tc := range []struct {
		p    Point
		pass bool
	}{
		{Point{Offered: 1000, Sent: 1000, Loss: 0}, true},
		{Point{Offered: 1000, Sent: 1000, Loss: 0.001}, true},
		{Point{Offered: 1000, Sent: 1000, Loss: 0.0011}, false},
		{Point{Offered: 1000, Sent: 970, Loss: 0}, false},       // the generator fell short
		{Point{Offered: 0, Sent: 5e5, Loss: 0}, true},           // unpaced: whatever it sent
		{Point{Offered: 1000, Sent: 1000, RingDrops: 1}, false}, // our own ring dropped
	} {
		if got := sp.passes(&tc.p); got != tc.pass {
			t.Errorf("%+v: pass %v", tc.p, got)
		}
	}
}

func TestSearchError(t *testing.T) {
	boom := errors.New("boom")
	n := 0
	_, err := search(func(float64) (Point, error) {
		if n++; n == 3 {
			return Point{}, boom
		}
		return Point{Sent: 1e6, Delivered: 1e3, Loss: 0.5}, nil
	}, searchParams{precision: 0.01, maxSteps: 10})
	if !errors.Is(err, boom) {
		t.Fatal(err)
	}
}

func TestStat(t *testing.T) {
	for _, tc := range []struct {
		in       []float64
		med, min float64
		max      float64
	}{
		{[]float64{3, 1, 2}, 2, 1, 3},
		{[]float64{4, 1, 3, 2}, 2.5, 1, 4},
		{[]float64{7}, 7, 7, 7},
	} {
		s := newStat(tc.in)
		if s.Median != tc.med || s.Min != tc.min || s.Max != tc.max || len(s.Values) != len(tc.in) {
			t.Errorf("%v: %+v", tc.in, s)
		}
	}
	if s := newStat(nil); s.Median != 0 || s.Values != nil {
		t.Fatal(s)
	}
}
