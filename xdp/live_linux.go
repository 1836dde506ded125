//go:build linux

package xdp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/pktengine/pktengine/frame"
)

// live is the Linux part of a LiveSender.
type live struct {
	coll     *ebpf.Collection
	prog     *ebpf.Program
	counter  *ebpf.Map
	template []byte
	opts     ebpf.RunOptions
}

func newLiveSender(ifi *net.Interface, template []byte, cfg *LiveConfig) (*LiveSender, error) {
	if ifi == nil {
		return nil, errors.New("xdp: live sender: nil interface")
	}
	var c LiveConfig
	if cfg != nil {
		c = *cfg
	}
	var p frame.Packet
	if r := p.Decode(template); r != frame.ReasonOK || p.IsFragment() {
		return nil, fmt.Errorf("xdp: live sender: the template is not a whole UDP datagram (%v)", r)
	}
	// The kernel puts the frame behind XDP_PACKET_HEADROOM in one page,
	// with room for struct skb_shared_info at the end.
	if len(template) > os.Getpagesize()-xdpPacketHeadroom-320 {
		return nil, fmt.Errorf("xdp: live sender: a %d-byte template does not fit one page", len(template))
	}
	if c.Flows < 0 || c.Flows > 1<<16 {
		return nil, fmt.Errorf("xdp: live sender: LiveConfig.Flows = %d, want 0 to 65536", c.Flows)
	}
	c.BatchSize = orDefault(c.BatchSize, 64)
	s := &LiveSender{ifi: ifi, flows: c.Flows, l4Off: int(p.L4Off), ipv4: p.IPVersion == frame.IPv4Version}
	s.basePrt = binary.BigEndian.Uint16(template[p.L4Off:])
	lay := liveLayout{ifindex: ifi.Index, l4Off: s.l4Off, ipv4: s.ipv4, base: s.basePrt, flows: c.Flows,
		seqOff: c.SeqOff, seqHigh: c.SeqHigh, seqBits: c.SeqBits, clockOff: c.ClockOff, end: len(template)}
	for _, f := range []struct {
		name string
		off  int
	}{{"SeqOff", c.SeqOff}, {"ClockOff", c.ClockOff}} {
		if f.off != 0 && (f.off < int(p.PayloadOff) || f.off+8 > int(p.L4End)) {
			return nil, fmt.Errorf("xdp: live sender: LiveConfig.%s = %d is not 8 bytes inside the UDP payload (%d to %d)", f.name, f.off, p.PayloadOff, p.L4End)
		}
	}
	if c.SeqBits < 0 || c.SeqBits > 63 {
		return nil, fmt.Errorf("xdp: live sender: LiveConfig.SeqBits = %d, want 1 to 63", c.SeqBits)
	}
	spec := &ebpf.CollectionSpec{
		Maps: map[string]*ebpf.MapSpec{
			liveMapName: {Name: liveMapName, Type: ebpf.Array, KeySize: 4, ValueSize: 16, MaxEntries: 1},
		},
		Programs: map[string]*ebpf.ProgramSpec{
			liveProgName: {
				Name: liveProgName, Type: ebpf.XDP, License: "GPL",
				Instructions: lay.instructions(),
			},
		},
	}
	coll, err := ebpf.NewCollection(spec)
	if err != nil {
		return nil, loadError(err)
	}
	s.coll = coll
	s.prog = coll.Programs[liveProgName]
	s.counter = coll.Maps[liveMapName]
	s.template = append([]byte(nil), template...)
	s.opts = ebpf.RunOptions{Data: s.template, Flags: unix.BPF_F_TEST_XDP_LIVE_FRAMES, BatchSize: uint32(c.BatchSize)}
	if err := s.resetCount(); err != nil {
		coll.Close()
		return nil, err
	}
	return s, nil
}

// resetCount zeroes the frame count and takes the clock offset.
func (s *LiveSender) resetCount() error {
	off, err := clockOffset()
	if err != nil {
		return err
	}
	v := liveValue{ClockOffset: off}
	if err := s.counter.Put(uint32(0), v); err != nil {
		return fmt.Errorf("xdp: live sender: %w", err)
	}
	return nil
}

func (s *LiveSender) restart(template []byte) error {
	if s.coll == nil {
		return ErrClosed
	}
	if len(template) != len(s.template) {
		return fmt.Errorf("xdp: live sender: Restart with a %d-byte template, want %d bytes", len(template), len(s.template))
	}
	copy(s.template, template)
	return s.resetCount()
}

func (s *LiveSender) send(n int) error {
	if s.coll == nil {
		return ErrClosed
	}
	if n <= 0 {
		return nil
	}
	s.opts.Repeat = uint32(n)
	if _, err := s.prog.Run(&s.opts); err != nil {
		if errors.Is(err, unix.EPERM) {
			err = fmt.Errorf("%w: %w", ErrPermission, err)
		}
		return &net.OpError{Op: "write", Net: "xdp", Addr: &Addr{Index: s.ifi.Index, Name: s.ifi.Name, Queue: -1}, Err: err}
	}
	return nil
}

func (s *LiveSender) sent() (uint64, error) {
	if s.coll == nil {
		return 0, ErrClosed
	}
	var v liveValue
	err := s.counter.Lookup(uint32(0), &v)
	return v.Count, err
}

func (s *LiveSender) close() error {
	if s.coll != nil {
		s.coll.Close()
		s.coll = nil
	}
	return nil
}

// clockOffset returns CLOCK_REALTIME minus CLOCK_MONOTONIC: the realtime
// reading bracketed by two monotonic ones, the tightest bracket of a few
// tries. A thread preempted between two readings would otherwise put its
// time off the run into every send time (tens of microseconds on a busy
// machine, more than a round trip on veth).
func clockOffset() (int64, error) {
	best, bestWidth := int64(0), int64(-1)
	for range 16 {
		var m1, r, m2 unix.Timespec
		if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &m1); err != nil {
			return 0, err
		}
		if err := unix.ClockGettime(unix.CLOCK_REALTIME, &r); err != nil {
			return 0, err
		}
		if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &m2); err != nil {
			return 0, err
		}
		if w := m2.Nano() - m1.Nano(); bestWidth < 0 || w < bestWidth {
			best, bestWidth = r.Nano()-(m1.Nano()+w/2), w
		}
	}
	return best, nil
}
