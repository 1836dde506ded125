//go:build !linux

package ring

import "net"

func newRingTX(ifi *net.Interface, cfg *TXConfig) (Transmitter, error) {
	return nil, &net.OpError{Op: "dial", Net: "packet", Addr: addrOf(ifi), Err: ErrUnsupported}
}

func newMmsgTX(ifi *net.Interface, cfg *TXConfig) (Transmitter, error) {
	return nil, &net.OpError{Op: "dial", Net: "packet", Addr: addrOf(ifi), Err: ErrUnsupported}
}
