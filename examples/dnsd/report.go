package main

import (
	"context"
	"io"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/pktengine/pktengine/engine"
	"github.com/pktengine/pktengine/examples/dnsd/zone"
)

// reporter writes dnsd's counters as one line of JSON on standard output
// each time dnsd receives SIGUSR1 (reportOnUSR1): its answers by kind
// (zone.Kind's names: answer, nodata, nxdomain, ..., dropped), truncated
// answers and send errors, and the Go runtime's allocation counters
// (runtime.MemStats), for a benchmark to take the difference of two
// lines around a run. The allocations of the reports themselves are
// taken out, so that the difference is the serving's own.
//
//	{"dropped":0,"answer":1200,"nodata":0,...,"truncated":0,"send_errors":0,"answered":1200,"mallocs":5821,"total_alloc":1630208,"num_gc":0}
//
// "answered" is every query that got a response (every kind but dropped).
// In conn and inline modes the engine's drops follow (see reporter.engine).
type reporter struct {
	st  *stats
	w   io.Writer
	buf []byte
	ms  runtime.MemStats
	// engine, once set (conn and inline modes), adds the engine's drops:
	// ring_drops (its receive rings were full), queue_drops (a port's
	// queue was full: the Conn's reader fell behind) and tx_drops (no
	// transmit buffer was free).
	engine atomic.Pointer[engine.Engine]
	// ctlMallocs and ctlBytes are what writing the reports allocated.
	ctlMallocs, ctlBytes uint64
}

// report writes one line.
func (r *reporter) report() error {
	runtime.ReadMemStats(&r.ms)
	mallocs, bytes := r.ms.Mallocs, r.ms.TotalAlloc
	r.buf = r.st.appendJSON(r.buf[:0], mallocs-r.ctlMallocs, bytes-r.ctlBytes, r.ms.NumGC)
	if e := r.engine.Load(); e != nil {
		c := e.Counters()
		r.buf = appendFields(r.buf[:len(r.buf)-2], "ring_drops", c.RingDrops, "queue_drops", c.UDP.RcvbufErrors, "tx_drops", c.UDP.SndbufErrors)
	}
	_, err := r.w.Write(r.buf)
	runtime.ReadMemStats(&r.ms)
	r.ctlMallocs += r.ms.Mallocs - mallocs
	r.ctlBytes += r.ms.TotalAlloc - bytes
	return err
}

func field(b []byte, name string, v uint64) []byte {
	b = append(b, '"')
	b = append(b, name...)
	b = append(b, '"', ':')
	b = strconv.AppendUint(b, v, 10)
	return append(b, ',')
}

// appendFields appends name, value pairs to an object whose closing "}\n"
// has been cut off, and closes it again.
func appendFields(b []byte, kv ...any) []byte {
	b = append(b, ',')
	for i := 0; i+1 < len(kv); i += 2 {
		b = field(b, kv[i].(string), kv[i+1].(uint64))
	}
	b[len(b)-1] = '}'
	return append(b, '\n')
}

// appendJSON appends the counters and the given allocation counters as a
// line of JSON.
func (s *stats) appendJSON(b []byte, mallocs, totalAlloc uint64, numGC uint32) []byte {
	b = append(b, '{')
	var answered uint64
	for k := range zone.Kind(zone.NumKinds) {
		n := s.kinds[k].Load()
		if k != zone.Dropped {
			answered += n
		}
		b = field(b, k.String(), n)
	}
	b = field(b, "truncated", s.truncated.Load())
	b = field(b, "send_errors", s.sendErrors.Load())
	b = field(b, "answered", answered)
	b = field(b, "mallocs", mallocs)
	b = field(b, "total_alloc", totalAlloc)
	b = field(b, "num_gc", uint64(numGC))
	b[len(b)-1] = '}'
	return append(b, '\n')
}

// reportOnSignal has r write the counters line on every signal on sigs
// (the caller's SIGUSR1) until ctx ends; the returned function waits for
// that.
func reportOnSignal(ctx context.Context, r *reporter, sigs <-chan os.Signal) (wait func()) {
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-sigs:
				r.report()
			}
		}
	})
	return wg.Wait
}
