package main

import (
	"sync/atomic"

	"github.com/pktengine/pktengine/examples/dnsd/zone"
)

// stats counts what dnsd did with the queries it received. Workers count
// concurrently.
type stats struct {
	kinds      [zone.NumKinds]atomic.Uint64
	truncated  atomic.Uint64
	sendErrors atomic.Uint64
}

func (s *stats) count(o zone.Outcome) {
	s.kinds[o.Kind].Add(1)
	if o.Truncated {
		s.truncated.Add(1)
	}
}

// attrs returns the counters as slog attributes, for the last log line.
func (s *stats) attrs() []any {
	var a []any
	for k := range zone.Kind(zone.NumKinds) {
		a = append(a, k.String(), s.kinds[k].Load())
	}
	return append(a, "truncated", s.truncated.Load(), "send_errors", s.sendErrors.Load())
}
