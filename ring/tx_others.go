//go:build !linux

package ring

import (
	"context"
	"net"
)

// TX is a PACKET_TX_RING transmitter. On this platform every constructor
// fails with ErrUnsupported.
type TX struct{}

// NewTX returns ErrUnsupported on this platform.
func NewTX(ifi *net.Interface, cfg *TXConfig) (*TX, error) { return nil, ErrUnsupported }

func (t *TX) MaxFrameLen() int                         { return 0 }
func (t *TX) Addr() net.Addr                           { return nil }
func (t *TX) Next(ctx context.Context) ([]byte, error) { return nil, ErrUnsupported }
func (t *TX) Commit(n int) error                       { return ErrUnsupported }
func (t *TX) Flush() error                             { return ErrUnsupported }
func (t *TX) Stats() TXStats                           { return TXStats{} }
func (t *TX) Close() error                             { return nil }

// MmsgTX is a sendmmsg transmitter. On this platform every constructor
// fails with ErrUnsupported.
type MmsgTX struct{}

// NewMmsgTX returns ErrUnsupported on this platform.
func NewMmsgTX(ifi *net.Interface, cfg *TXConfig) (*MmsgTX, error) { return nil, ErrUnsupported }

func (t *MmsgTX) MaxFrameLen() int                         { return 0 }
func (t *MmsgTX) Addr() net.Addr                           { return nil }
func (t *MmsgTX) Next(ctx context.Context) ([]byte, error) { return nil, ErrUnsupported }
func (t *MmsgTX) Commit(n int) error                       { return ErrUnsupported }
func (t *MmsgTX) Flush() error                             { return ErrUnsupported }
func (t *MmsgTX) Stats() TXStats                           { return TXStats{} }
func (t *MmsgTX) Close() error                             { return nil }
