//go:build linux

package bench

import (
	"runtime"
	"time"

	"golang.org/x/sys/unix"
)

// dnsPacer is the echo generator's pacer (loadgen's, unexported there): a
// token bucket with batch granularity. Each batch is due when the queries
// before it have used up their share of time; a sender that fell behind
// may send back to back for as much schedule as the bucket holds, after
// which the schedule slips and the achieved rate shows it. It sleeps with
// the runtime's timers while the next batch is more than 2 ms away, with
// nanosleep(2) to within 100 µs, and spins for the rest.
type dnsPacer struct {
	interval float64 // ns per query
	depth    float64 // ns of schedule a late sender may catch up
	origin   int64
	due      float64 // ns after origin when the next batch is due
}

func newDNSPacer(rate float64, depth time.Duration) *dnsPacer {
	return &dnsPacer{interval: 1e9 / rate, depth: float64(depth), origin: monoNow()}
}

// wait waits until a batch of n queries is due and books its time.
func (p *dnsPacer) wait(n int) {
	now := monoNow()
	if late := float64(now-p.origin) - p.due; late > p.depth {
		p.due += late - p.depth // forfeit what the bucket cannot hold
	}
	due := p.origin + int64(p.due)
	for {
		d := time.Duration(due - monoNow())
		switch {
		case d <= 0:
			p.due += float64(n) * p.interval
			return
		case d > 2*time.Millisecond:
			time.Sleep(d - 3*time.Millisecond/2)
		case d > 100*time.Microsecond:
			ts := unix.NsecToTimespec(int64(d - 80*time.Microsecond))
			unix.Nanosleep(&ts, nil)
		default:
			runtime.Gosched()
		}
	}
}
