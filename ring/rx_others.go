//go:build !linux

package ring

import (
	"context"
	"net"
	"syscall"

	"golang.org/x/net/bpf"
)

// RX is a receive ring. On this platform every constructor fails with
// ErrUnsupported.
type RX struct{}

// NewRX returns ErrUnsupported on this platform.
func NewRX(ifi *net.Interface, cfg *RXConfig) (*RX, error) { return nil, ErrUnsupported }

// Version returns V3.
func (r *RX) Version() Version { return V3 }

// Addr returns nil.
func (r *RX) Addr() net.Addr { return nil }

// ReadInto returns ErrUnsupported.
func (r *RX) ReadInto(ctx context.Context, b *Batch) error { return ErrUnsupported }

// Read returns ErrUnsupported.
func (r *RX) Read(ctx context.Context, p []byte) (int, Meta, error) {
	return 0, Meta{}, ErrUnsupported
}

// SetFilter returns ErrUnsupported.
func (r *RX) SetFilter(filter []bpf.RawInstruction) error { return ErrUnsupported }

// SyscallConn returns ErrUnsupported.
func (r *RX) SyscallConn() (syscall.RawConn, error) { return nil, ErrUnsupported }

// Stats returns ErrUnsupported.
func (r *RX) Stats() (Stats, error) { return Stats{}, ErrUnsupported }

// Close does nothing.
func (r *RX) Close() error { return nil }

func (r *RX) release(first uint64, n int) {}
