//go:build !linux

package loadgen

import "time"

// preciseSleep reports that there is no sleep finer than the runtime's
// timers here: SleepUntil spins instead.
func preciseSleep(time.Duration) bool { return false }
