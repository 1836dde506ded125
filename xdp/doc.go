// Package xdp is pktengine's AF_XDP layer: sockets with their own UMEM,
// the XDP program that steers the engine's traffic to them, and a sender
// that transmits with BPF_PROG_RUN live frames. It is to the AF_XDP
// backend what package ring is to TPACKET.
//
// # Sockets
//
//	prog, err := xdp.Attach(ifi, &xdp.ProgramConfig{Addrs: addrs})
//	s, err := xdp.Listen(ifi, queue, nil)
//	err = prog.Register(s) // the program now redirects queue's frames to s
//	var b xdp.Batch
//	for {
//		if err := s.ReadInto(ctx, &b); err != nil { ... }
//		for i := range b.Len() {
//			data := b.Data(i) // in UMEM
//			n := answerInPlace(data)
//			b.Transmit(i, data[:n]) // the same frame, onto the TX ring
//		}
//		s.Flush()
//	}
//
// A Socket is bound to one receive queue (one socket and one worker per
// queue) with its own UMEM of equal frames (2048 or 4096 bytes) and four
// rings shared with the kernel: fill (frames to receive into), RX
// (received frames), TX (frames to send) and completion (sent frames
// back). The rings are read and written with atomics on the shared
// indexes, each side caching the other's index, as libxdp does; the
// socket binds with XDP_USE_NEED_WAKEUP and makes the system calls the
// kernel asks for, and raises XDP_MAX_TX_SKB_BUDGET (256 by default) so
// that one send(2) in copy mode moves a whole batch. It binds in
// zero-copy mode where the driver offers it and in copy mode otherwise,
// and says which (Socket.Mode); veth offers copy mode only.
//
// Received frames come in a Batch, as from a ring.RX: they stay in UMEM
// until the batch is released, from any goroutine. Batch.Transmit sends a
// received frame, rewritten in place, without copying it: the descriptor
// moves from the batch to the TX ring. Next, Commit and Flush send built
// frames, as a ring.Transmitter does; on a transmit-only socket
// (Config.TXOnly) frames keep their content between uses, so a generator
// writes its template once (Prefill) and rewrites only what varies.
//
// # Frame accounting
//
// Every UMEM frame is in exactly one place: the free list, with the
// kernel for receiving (fill ring, the kernel's receive path, RX ring),
// held by user space (a batch, Next's buffer), or with the kernel for
// transmitting (TX ring, in flight, completion ring). The socket records
// each frame's place and checks every move, so a descriptor the kernel
// returns for a frame that was not with it is counted (Stats.BadDescs)
// and never enters the free list twice. CheckFrames counts the places
// from the socket's books and from the per-frame record and reports any
// difference or any total other than FrameCount.
//
// # The XDP program
//
// Program is built with cilium/ebpf's asm package: no C compiler. It
// redirects to the XSKMAP, keyed by the receive queue, UDP over IPv4 and
// IPv6 (fragments included) to the engine's addresses, ARP and neighbour
// discovery for them and ICMP to them, optionally behind one VLAN tag,
// and passes everything else to the kernel. An address served with
// ServeUDPPorts (one the kernel shares) steers only unfragmented UDP to
// the ports AddPort lists for it. The addresses and ports are hash maps
// that AddAddr, RemoveAddr, AddPort and RemovePort change while it runs;
// per-class counters
// (ProgramStats) say what it did. Program.Test runs it over a frame with
// BPF_PROG_RUN, which is how its verdicts are tested without a network.
//
// Attach uses a bpf_link, which the kernel removes when its last
// descriptor closes: on Close, and when the process dies, however it
// dies. A program of pktengine's left on the interface another way (a
// pinned link, or attached through netlink, by a process that is gone) is
// recognised by its name and the owner (pid and start time) in its owner
// map, and replaced; a program whose owner still runs is never replaced
// (ErrInUse), and another program's only with
// ProgramConfig.ReplaceForeign (ErrProgramPresent). Where the kernel
// refuses, the error names the cause (ErrNoDriverSupport,
// ErrMTUTooLarge, ErrPermission); there is no silent fallback to generic
// mode.
//
// # Live frames
//
// LiveSender transmits copies of a template with BPF_PROG_RUN and
// BPF_F_TEST_XDP_LIVE_FRAMES: the kernel runs a small program over each
// frame that rewrites the UDP source port and, if asked, a sequence word
// and the send time in the payload (checksum updated incrementally, RFC
// 1624), and redirects it to the interface. A call costs the kernel about
// 0.75 ms however few frames it carries: send many per call.
//
// # Pitfalls on veth
//
//   - Frames redirected into a veth (live frames, XDP_REDIRECT) arrive
//     only if the peer end has an XDP program; otherwise they vanish.
//   - A local socket on the peer sends partial UDP checksums (the
//     pseudo-header sum) over veth, and AF_XDP, unlike a packet ring, has
//     no flag for them: a responder must complete such checksums or the
//     peer must have transmit checksum offload off.
//   - Single-buffer XDP limits the peer's MTU to about 3500 bytes.
//   - The kernel lets go of a closed socket's queue a little after
//     close(2); Listen waits for it.
//
// docs/XDP.md has the design and the measurements.
//
// # Platforms
//
// AF_XDP and XDP need Linux; elsewhere the constructors return
// ErrUnsupported, so that code using the package still builds.
package xdp
