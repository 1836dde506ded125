package loadgen

import (
	"testing"
	"time"
)

// fakeClock is a clock whose time moves only when told to (or when the
// pacer sleeps).
type fakeClock struct {
	now    int64
	sleeps int
}

func (c *fakeClock) Now() int64 { return c.now }
func (c *fakeClock) SleepUntil(t int64) {
	c.sleeps++
	if t > c.now {
		c.now = t
	}
}

func TestBatchFor(t *testing.T) {
	for _, tc := range []struct {
		rate float64
		want int
	}{
		{0, 64}, {1, 1}, {10_000, 1}, {40_000, 2}, {500_000, 25}, {1_280_000, 64}, {10e6, 64},
	} {
		if got := batchFor(tc.rate, 50*time.Microsecond, 64); got != tc.want {
			t.Errorf("batchFor(%v) = %d, want %d", tc.rate, got, tc.want)
		}
	}
}

// TestPacerSchedule: batches leave exactly on schedule when the sender is
// fast, and the count over a window matches the rate.
func TestPacerSchedule(t *testing.T) {
	c := &fakeClock{now: 5e9}
	p := newPacer(1000, 20*time.Millisecond, c) // 1 ms per frame
	p.Start()
	var times []int64
	for range 100 {
		times = append(times, p.Wait(10)-5e9)
		c.now += 1000 // the batch takes 1 µs to write
	}
	for i, at := range times {
		if want := int64(i) * 10e6; at != want {
			t.Fatalf("batch %d at %d ns, want %d", i, at, want)
		}
	}
	if p.Due()-5e9 != 1e9 {
		t.Fatalf("due %d after 1000 frames", p.Due()-5e9)
	}
}

// TestPacerFractional: a rate whose interval is not a whole number of
// nanoseconds does not drift.
func TestPacerFractional(t *testing.T) {
	c := &fakeClock{}
	p := newPacer(3e6, time.Millisecond, c) // 333.33 ns per frame
	p.Start()
	var last int64
	for range 3_000_000 / 64 {
		last = p.Wait(64)
	}
	// 46874 batches = 2999936 frames; the last batch is due at
	// 46873×64/3e6 s = 999978666.67 ns.
	if last != 999978666 {
		t.Fatalf("last batch at %d", last)
	}
}

// TestPacerCatchUp: a sender that stalls may catch up only what the bucket
// holds; the rest of the stall is lost, not sent as a burst.
func TestPacerCatchUp(t *testing.T) {
	c := &fakeClock{}
	p := newPacer(1000, 20*time.Millisecond, c) // bucket: 20 frames of schedule
	p.Start()
	for range 10 { // 10 batches of 10: due at 0..90 ms
		p.Wait(10)
	}
	c.now = 200e6 // stalled: the next batch was due at 100 ms
	sleeps := c.sleeps
	var burst int
	for p.Due() <= c.now {
		p.Wait(10)
		burst++
	}
	if burst != 3 || c.sleeps != sleeps {
		// due slips to 180 ms; batches due at 180, 190, 200 go at once.
		t.Fatalf("%d batches went back to back (sleeps %d), want 3", burst, c.sleeps-sleeps)
	}
	if at := p.Wait(10); at != 210e6 {
		t.Fatalf("next batch at %d, want 210 ms", at)
	}
}
