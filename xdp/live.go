package xdp

import (
	"fmt"
	"net"

	"github.com/cilium/ebpf/asm"
)

// LiveSender transmits copies of one UDP template frame with BPF_PROG_RUN
// in live-frames mode (BPF_F_TEST_XDP_LIVE_FRAMES), xdp-trafficgen's
// method: the kernel runs a small XDP program over a page-pool frame
// holding the template, the program rewrites the fields that vary per
// frame and redirects the frame to the interface, and the driver
// transmits it (ndo_xdp_xmit). One system call sends a whole burst; no
// socket, no skb and no copy from user space per frame.
//
// The program puts a per-frame counter into the UDP source port, cycling
// over Flows ports from the template's, and keeps the UDP checksum valid
// with an incremental update (RFC 1624), so the frames are good to every
// receiver. On veth, frames redirected into an interface arrive only if
// the peer end has an XDP program attached (any program: it turns on the
// peer's NAPI); without one the kernel drops them silently.
type LiveSender struct {
	ifi     *net.Interface
	flows   int
	l4Off   int
	ipv4    bool
	basePrt uint16
	live
}

// LiveConfig configures a LiveSender. A nil *LiveConfig and zero fields
// mean the defaults given with each field.
type LiveConfig struct {
	// Flows is how many UDP source ports the frames cycle through,
	// counting up from the template's. Zero or one keeps the template's
	// port.
	Flows int

	// BatchSize is how many frames the kernel prepares and transmits at a
	// time within one Send (RunOptions.BatchSize). Zero means 64.
	BatchSize int

	// SeqOff, if not zero, is where in the frame (an offset from its
	// first byte, inside the UDP payload) the program writes, per frame,
	// the 64-bit big-endian word SeqHigh | n, n being the frames sent
	// since NewLiveSender or Restart, in the low SeqBits bits (1 to 63;
	// 0 means 48). ClockOff, if not zero, is where it writes the time
	// it sends the frame, 64-bit big-endian ns since the Unix epoch
	// (CLOCK_MONOTONIC plus the offset to CLOCK_REALTIME taken at
	// NewLiveSender or Restart). The UDP checksum is updated for both.
	// A load generator matches replies by them.
	SeqOff, ClockOff int
	SeqHigh          uint64
	SeqBits          int
}

// NewLiveSender loads the sending program for template, a complete
// Ethernet frame holding a UDP datagram with a valid checksum (as
// frame.BuildUDP writes it), to be transmitted on ifi.
func NewLiveSender(ifi *net.Interface, template []byte, cfg *LiveConfig) (*LiveSender, error) {
	return newLiveSender(ifi, template, cfg)
}

// Send transmits n copies of the template in one BPF_PROG_RUN call. It
// must run on a thread in ifi's network namespace: the kernel looks the
// interface up there. Frames the driver cannot take are dropped by the
// kernel, and counted in the interface's statistics, not here.
func (s *LiveSender) Send(n int) error { return s.send(n) }

// Sent returns the number of frames the program has processed, all of
// which it redirected.
func (s *LiveSender) Sent() (uint64, error) { return s.sent() }

// Close releases the program.
func (s *LiveSender) Close() error { return s.close() }

// Restart replaces the template with another of the same layout (the same
// length and offsets: a new run tag in the payload, say), starts the
// frame count from 0 and takes the clock offset again.
func (s *LiveSender) Restart(template []byte) error { return s.restart(template) }

// liveLayout is where the sending program writes.
type liveLayout struct {
	ifindex, l4Off int
	ipv4           bool
	base           uint16
	flows          int
	seqOff         int // 0: none
	seqHigh        uint64
	seqBits        int
	clockOff       int // 0: none
	end            int // bytes the program may touch: the frame length
}

const (
	liveProgName = "pkte_live"
	liveMapName  = "pkte_live_ctr"
)

// liveValue is the value of the live program's map: the frame count and
// the offset from CLOCK_MONOTONIC to CLOCK_REALTIME.
type liveValue struct {
	Count       uint64
	ClockOffset int64
}

// liveInstructions returns the sending program of the port cycling
// alone (the xdp tests' and the benchmark's).
func liveInstructions(ifindex, l4Off int, ipv4 bool, base uint16, flows int) asm.Instructions {
	return liveLayout{ifindex: ifindex, l4Off: l4Off, ipv4: ipv4, base: base, flows: flows}.instructions()
}

// instructions returns the sending program: count the frame, rewrite its
// UDP source port to base + count % flows, write the sequence word and the
// clock if asked, with the UDP checksum updated incrementally, and
// redirect the frame to ifindex. Registers: R6 the context, R7 the data,
// R8 the data end, R9 the map value.
func (l liveLayout) instructions() asm.Instructions {
	var b builder
	const r0, r1, r2, r3, r4, r5, r6, r7, r8, r9, r10 = asm.R0, asm.R1, asm.R2, asm.R3, asm.R4, asm.R5, asm.R6, asm.R7, asm.R8, asm.R9, asm.R10
	ifindex, l4Off, ipv4, base, flows := l.ifindex, l.l4Off, l.ipv4, l.base, l.flows
	b.emit(
		asm.Mov.Reg(r6, r1),
		asm.StoreImm(r10, -4, 0, asm.Word),
	)
	b.lookup(liveMapName, -4, "redirect")
	b.emit(
		asm.Mov.Reg(r9, r0),
		asm.LoadMem(r3, r0, 0, asm.DWord),
		asm.Mov.Reg(r4, r3),
		asm.Add.Imm(r4, 1),
		asm.StoreMem(r0, 0, r4, asm.DWord),
	)
	if l.seqOff != 0 || l.clockOff != 0 {
		l.emitStamp(&b)
	}
	if flows > 1 {
		b.emit(
			asm.LoadMem(r7, r6, xdpMDData, asm.Word),
			asm.LoadMem(r8, r6, xdpMDDataEnd, asm.Word),
		)
		b.checkBounds(r2, r7, int32(l4Off+8), "redirect")
		b.emit(
			// R3: the new port, in network order as a native load sees it.
			asm.Mod.Imm(r3, int32(flows)),
			asm.Add.Imm(r3, int32(base)),
			asm.HostTo(asm.BE, r3, asm.Half),
			asm.LoadMem(r4, r7, int16(l4Off), asm.Half), // old port
			asm.StoreMem(r7, int16(l4Off), r3, asm.Half),
			asm.LoadMem(r5, r7, int16(l4Off+6), asm.Half), // checksum
		)
		if ipv4 {
			b.emit(asm.JEq.Imm(r5, 0, "redirect")) // no checksum: nothing to update
		}
		// HC' = ~(~HC + ~m + m'), in ones' complement 16-bit words;
		// the sum does not depend on byte order, so native loads do.
		b.emit(
			asm.Xor.Imm(r5, 0xffff),
			asm.Xor.Imm(r4, 0xffff),
			asm.Add.Reg(r5, r4),
			asm.Add.Reg(r5, r3),
		)
		l.emitChecksumStore(&b, r4, 2, "store")
	}
	b.label("redirect")
	b.emit(
		asm.Mov.Imm(r1, int32(ifindex)),
		asm.Mov.Imm(r2, 0),
		asm.FnRedirect.Call(),
		asm.Return(),
	)
	return b.insns
}

func (s *LiveSender) String() string {
	return fmt.Sprintf("live sender on %s, %d flows", s.ifi.Name, max(s.flows, 1))
}

// emitStamp writes the sequence word and the clock, with R3 the frame
// count, and updates the UDP checksum: ~HC plus, for each 64-bit field,
// the complement of the old value and the new one, folded (RFC 1624; a
// 64-bit value adds its four 16-bit words, and the sum does not depend on
// byte order, so native loads do). It keeps R3.
func (l liveLayout) emitStamp(b *builder) {
	const r0, r1, r2, r3, r4, r5, r6, r7, r8, r9, r10 = asm.R0, asm.R1, asm.R2, asm.R3, asm.R4, asm.R5, asm.R6, asm.R7, asm.R8, asm.R9, asm.R10
	const stackCount = -16 // the frame count, kept over the helper call
	const stackSum = -24   // the checksum accumulator
	b.emit(
		asm.StoreMem(r10, stackCount, r3, asm.DWord),
		asm.LoadMem(r7, r6, xdpMDData, asm.Word),
		asm.LoadMem(r8, r6, xdpMDDataEnd, asm.Word),
	)
	b.checkBounds(r2, r7, int32(l.end), "redirect")
	b.emit(
		// The accumulator starts with ~HC.
		asm.LoadMem(r5, r7, int16(l.l4Off+6), asm.Half),
	)
	if l.ipv4 {
		b.emit(asm.JEq.Imm(r5, 0, "nocsum")) // no checksum: nothing to update
	}
	b.emit(
		asm.Xor.Imm(r5, 0xffff),
		asm.StoreMem(r10, stackSum, r5, asm.DWord),
	)
	// addHalves adds the two 32-bit halves of reg to R5, through R2.
	addHalves := func(reg asm.Register) {
		b.emit(
			asm.Mov.Reg(r2, reg),
			asm.RSh.Imm(r2, 32),
			asm.Add.Reg(r5, r2),
			asm.Mov.Reg(r2, reg),
			asm.LSh.Imm(r2, 32),
			asm.RSh.Imm(r2, 32),
			asm.Add.Reg(r5, r2),
		)
	}
	// addField adds ~old + new for the 64-bit field at off, new in R4.
	addField := func(off int) {
		b.emit(
			asm.LoadMem(r1, r7, int16(off), asm.DWord),
			asm.StoreMem(r7, int16(off), r4, asm.DWord),
			asm.Xor.Imm(r1, -1), // ~old, 64 bits
			asm.LoadMem(r5, r10, stackSum, asm.DWord),
		)
		addHalves(r1)
		addHalves(r4)
		b.emit(asm.StoreMem(r10, stackSum, r5, asm.DWord))
	}
	// seqWord puts the sequence word, big-endian, in R4.
	seqWord := func() {
		bits := l.seqBits
		if bits == 0 {
			bits = 48
		}
		b.emit(
			asm.LoadMem(r4, r10, stackCount, asm.DWord),
			asm.LSh.Imm(r4, int32(64-bits)),
			asm.RSh.Imm(r4, int32(64-bits)),
			asm.LoadImm(r1, int64(l.seqHigh), asm.DWord),
			asm.Or.Reg(r4, r1),
			asm.HostTo(asm.BE, r4, asm.DWord),
		)
	}
	if l.seqOff != 0 {
		seqWord()
		addField(l.seqOff)
	}
	if l.clockOff != 0 {
		b.emit(
			asm.FnKtimeGetNs.Call(),
			asm.LoadMem(r1, r9, 8, asm.DWord), // the clock offset
			asm.Add.Reg(r0, r1),
			asm.Mov.Reg(r4, r0),
			asm.HostTo(asm.BE, r4, asm.DWord),
		)
		addField(l.clockOff)
	}
	b.emit(asm.LoadMem(r5, r10, stackSum, asm.DWord))
	l.emitChecksumStore(b, r2, 3, "stampsum")
	if l.ipv4 {
		// IPv4 without a checksum: write the fields alone.
		b.emit(asm.Ja.Label("stamped"))
		b.label("nocsum")
		if l.seqOff != 0 {
			seqWord()
			b.emit(asm.StoreMem(r7, int16(l.seqOff), r4, asm.DWord))
		}
		if l.clockOff != 0 {
			b.emit(
				asm.FnKtimeGetNs.Call(),
				asm.LoadMem(r1, r9, 8, asm.DWord),
				asm.Add.Reg(r0, r1),
				asm.HostTo(asm.BE, r0, asm.DWord),
				asm.StoreMem(r7, int16(l.clockOff), r0, asm.DWord),
			)
		}
	}
	b.label("stamped")
	b.emit(asm.LoadMem(r3, r10, stackCount, asm.DWord))
}

// emitChecksumStore ends an incremental update of the UDP checksum: it
// folds the sum in R5 to 16 bits (folds times, through tmp), complements
// it, and stores it in the UDP header of the frame at R7, a computed 0 as
// all ones as UDP sends it. label names the store.
func (l liveLayout) emitChecksumStore(b *builder, tmp asm.Register, folds int, label string) {
	const r5, r7 = asm.R5, asm.R7
	for range folds {
		b.emit(
			asm.Mov.Reg(tmp, r5),
			asm.RSh.Imm(tmp, 16),
			asm.And.Imm(r5, 0xffff),
			asm.Add.Reg(r5, tmp),
		)
	}
	b.emit(
		asm.Xor.Imm(r5, 0xffff),
		asm.JNE.Imm(r5, 0, label),
		asm.Mov.Imm(r5, 0xffff),
	)
	b.label(label)
	b.emit(asm.StoreMem(r7, int16(l.l4Off+6), r5, asm.Half))
}
