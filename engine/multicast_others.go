//go:build !linux

package engine

// startMulticast is never reached: Open fails on other platforms first.
func (e *Engine) startMulticast() error { return e.mcast.start(e.ctx, nil) }
