package loadgen

import (
	"runtime"
	"time"
)

// batchFor returns the batch size for a paced rate in frames per second:
// rate×quantum frames, at least 1 and at most most. A rate of 0 (unpaced)
// gets most.
func batchFor(rate float64, quantum time.Duration, most int) int {
	if rate <= 0 {
		return most
	}
	return min(most, max(int(rate*quantum.Seconds()), 1))
}

// clock is the time source of a pacer. Tests substitute a fake one.
type clock interface {
	// Now returns a monotonic time in nanoseconds.
	Now() int64
	// SleepUntil returns at t or later.
	SleepUntil(t int64)
}

// pacer spaces batches of frames so that they leave at a constant average
// rate: a token bucket with batch granularity. Each batch is due when the
// frames before it have used up their share of time; a sender that falls
// behind may catch up by sending batches back to back, but only for as
// much time as the bucket depth (its burst) allows, after which the
// schedule slips and the missed frames are gone for good (the achieved
// rate falls short, and reports show it).
//
// The schedule is kept as a float64 count of nanoseconds from the start,
// exact to the nanosecond for 100 days, so rounding never accumulates.
type pacer struct {
	clock    clock
	interval float64 // ns per frame
	depth    float64 // ns of schedule a late sender may catch up
	origin   int64
	due      float64 // ns after origin when the next batch is due
}

// newPacer returns a pacer for rate frames per second (rate > 0) whose
// bucket holds depth of schedule. A nil clock means the system clock,
// which sleeps while the next batch is more than 2 ms away and spins for
// the rest: the Go runtime's timers are only good to about a millisecond.
func newPacer(rate float64, depth time.Duration, c clock) *pacer {
	if c == nil {
		c = systemClock{}
	}
	return &pacer{clock: c, interval: 1e9 / rate, depth: float64(depth)}
}

// Start makes now the beginning of the schedule.
func (p *pacer) Start() {
	p.origin = p.clock.Now()
	p.due = 0
}

// Wait waits until a batch of n frames is due, books the batch's share of
// time, and returns the current time.
func (p *pacer) Wait(n int) int64 {
	now := p.clock.Now()
	late := float64(now-p.origin) - p.due
	if late > p.depth {
		p.due += late - p.depth // forfeit what the bucket cannot hold
	}
	if due := p.origin + int64(p.due); now < due {
		p.clock.SleepUntil(due)
		now = p.clock.Now()
	}
	p.due += float64(n) * p.interval
	return now
}

// Due returns the time the next batch is due.
func (p *pacer) Due() int64 { return p.origin + int64(p.due) }

// systemClock is the clock of the running system: time.Now's monotonic
// reading, and a sleep that uses the runtime's timers while the deadline
// is more than 2 ms away, then (on Linux) nanosleep(2) to within 100 µs,
// then spins. Sleeping rather than spinning matters on a shared CPU: the
// kernel's scheduler lets a thread that slept run as soon as it wakes,
// while one that spun has used up its share.
type systemClock struct{}

var clockBase = time.Now()

// Now implements clock.
func (systemClock) Now() int64 { return int64(time.Since(clockBase)) }

// Below timerBelow the runtime's timers are too coarse (they fire up to
// about a millisecond late); below spinBelow so is nanosleep, with the
// kernel's default timer slack of 50 µs.
const (
	timerBelow = 2 * time.Millisecond
	spinBelow  = 100 * time.Microsecond
)

// SleepUntil implements clock.
func (c systemClock) SleepUntil(t int64) {
	for {
		d := time.Duration(t - c.Now())
		switch {
		case d <= 0:
			return
		case d > timerBelow:
			time.Sleep(d - timerBelow + time.Millisecond/2)
		case d > spinBelow && preciseSleep(d-spinBelow+spinBelow/5):
		default:
			runtime.Gosched()
		}
	}
}
