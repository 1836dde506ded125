//go:build race

package ring

const queueRaceEnabled = true
