//go:build !linux

package xdp

import (
	"context"
	"net"
)

type xsk struct{}

func listen(ifi *net.Interface, queue int, cfg *Config) (*Socket, error) { return nil, ErrUnsupported }

func rxQueues(ifi *net.Interface) (int, error) { return 0, ErrUnsupported }

func (s *Socket) readInto(ctx context.Context, b *Batch) error { return ErrUnsupported }
func (s *Socket) next(ctx context.Context) ([]byte, error)     { return nil, ErrUnsupported }
func (s *Socket) commit(n int) error                           { return ErrUnsupported }
func (s *Socket) flush() error                                 { return ErrUnsupported }
func (s *Socket) prefill(template []byte) (int, error)         { return 0, ErrUnsupported }
func (s *Socket) stats() (Stats, error)                        { return Stats{}, ErrUnsupported }
func (s *Socket) localStats() Stats                            { return Stats{} }
func (s *Socket) checkFrames() (FrameCounts, error)            { return FrameCounts{}, ErrUnsupported }
func (s *Socket) close() error                                 { return nil }
func (s *Socket) release(b *Batch)                             {}
func (s *Socket) transmit(b *Batch, i int, frame []byte) error { return ErrUnsupported }
