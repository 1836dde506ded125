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
	spec := &ebpf.CollectionSpec{
		Maps: map[string]*ebpf.MapSpec{
			liveMapName: {Name: liveMapName, Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: 1},
		},
		Programs: map[string]*ebpf.ProgramSpec{
			liveProgName: {
				Name: liveProgName, Type: ebpf.XDP, License: "GPL",
				Instructions: liveInstructions(ifi.Index, s.l4Off, s.ipv4, s.basePrt, c.Flows),
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
	return s, nil
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
	var n uint64
	err := s.counter.Lookup(uint32(0), &n)
	return n, err
}

func (s *LiveSender) close() error {
	if s.coll != nil {
		s.coll.Close()
		s.coll = nil
	}
	return nil
}
