// Package ring moves frames between the kernel and pktengine through
// AF_PACKET memory-mapped rings: for receiving (RX, TPACKET_V3 or
// TPACKET_V2) and for sending (a Transmitter: PACKET_TX_RING, or
// sendmmsg). The in-memory queues that carry datagrams on to their
// consumers are package queue.
//
// # Receiving
//
//	rx, err := ring.NewRX(ifi, &ring.RXConfig{Filter: prog, IgnoreOutgoing: true})
//	var b ring.Batch
//	for {
//		if err := rx.ReadInto(ctx, &b); err != nil { ... }
//		for i := range b.Len() {
//			data, meta := b.Frame(i) // data points into the ring
//			...
//		}
//	}
//
// A Batch is one TPACKET_V3 block, or up to RXConfig.BatchSize TPACKET_V2
// frames. Its frames stay valid, in place, until the batch is released;
// ReadInto releases the batch it is given before refilling it, and
// Batch.Release may be called from other goroutines, in any order. The
// ring hands slots back to the kernel in ring order as soon as every
// earlier batch has been released. Close wakes a waiting reader and defers
// unmapping the ring until the last batch is released, so no goroutine can
// be left reading unmapped memory.
//
// V3 hands over a block when it is full or when RetireTimeout expires, so
// it wakes the reader once per block: the most frames per CPU second, at
// the cost of up to RetireTimeout latency on a quiet link. V2 hands over
// every frame at once: the least latency. docs/bench/ring.md has the
// measurements behind the defaults.
//
// Filters are attached before the socket is bound, so no frame the filter
// rejects ever reaches the ring; with Fanout, one RX per worker shares a
// PACKET_FANOUT group. RX.Stats accumulates PACKET_STATISTICS, which the
// kernel resets on every read.
//
// # Sending
//
// A Transmitter (TX or MmsgTX) lends out a buffer with Next; the caller
// builds a whole Ethernet frame in it, Commits its length, and Flushes a
// batch with one system call.
//
// # Platforms
//
// The rings need Linux; elsewhere the constructors return ErrUnsupported,
// so that code using the package still builds.
package ring
