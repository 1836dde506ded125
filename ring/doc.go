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
// RX.Geometry tells the ring's shape: how many slots it has, and so how
// many batches can be outstanding at once. With Fanout, one RX per worker
// shares a PACKET_FANOUT group; Fanout.UniqueID lets the kernel pick a
// group ID no other program uses. RX.Stats accumulates PACKET_STATISTICS,
// which the kernel resets on every read.
//
// # Opening the socket
//
// Sockets come from github.com/mdlayher/packet: packet.Listen opens an
// AF_PACKET socket, attaches RXConfig.Filter and binds it, with protocol
// 0, to the interface. A socket bound to protocol 0 receives nothing, so
// NewRX then sets up the ring and its options (TPACKET version,
// PACKET_RX_RING and the mapping, SO_LOCK_FILTER, PACKET_IGNORE_OUTGOING)
// and only then binds again with the real protocol, from which moment
// frames arrive: filtered, and straight into the ring. Binding to the
// protocol in packet.Listen would be worse: frames arriving before
// PACKET_RX_RING wait on the socket's plain receive queue, are counted in
// PACKET_STATISTICS, and are then thrown away, uncounted as drops, when
// the ring replaces that queue. Fanout and the promiscuous membership
// follow the bind (the kernel wants a bound socket for fanout). Transmit
// sockets stay bound to protocol 0.
//
// # Sending
//
// NewTransmitter opens a Transmitter, a PACKET_TX_RING or a sendmmsg(2)
// sender (TXConfig.Method). It lends out a buffer with Next; the caller
// builds a whole Ethernet frame in it, Commits its length, and Flushes a
// batch with one system call. Every committed frame leaves or is counted
// once in TXStats (see Transmitter.Flush).
//
// # Platforms
//
// The rings need Linux. The API is the same everywhere; elsewhere the
// constructors return ErrUnsupported, so that code using the package
// still builds.
package ring
