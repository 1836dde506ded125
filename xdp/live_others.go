//go:build !linux

package xdp

import "net"

type live struct{}

func newLiveSender(ifi *net.Interface, template []byte, cfg *LiveConfig) (*LiveSender, error) {
	return nil, ErrUnsupported
}
func (s *LiveSender) send(n int) error      { return ErrUnsupported }
func (s *LiveSender) sent() (uint64, error) { return 0, ErrUnsupported }
func (s *LiveSender) close() error          { return nil }
func (s *LiveSender) restart([]byte) error  { return ErrUnsupported }
