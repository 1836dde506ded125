package ring

// SetTestHookListened runs f in NewRX between packet.Listen and the ring's
// setup, until the returned function is called.
func SetTestHookListened(f func()) (restore func()) {
	testHookListened = f
	return func() { testHookListened = nil }
}
