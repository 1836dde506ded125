//go:build !linux

package xdp

import (
	"net"
	"net/netip"
)

type prog struct{ info AttachInfo }

func newProgram(cfg *ProgramConfig) (*Program, error)                  { return nil, ErrUnsupported }
func (p *Program) attach(ifi *net.Interface) error                     { return ErrUnsupported }
func (p *Program) register(s *Socket) error                            { return ErrUnsupported }
func (p *Program) addAddr(a netip.Addr, f ServeFlags) error            { return ErrUnsupported }
func (p *Program) removeAddr(a netip.Addr) error                       { return ErrUnsupported }
func (p *Program) addPort(ap netip.AddrPort) error                     { return ErrUnsupported }
func (p *Program) removePort(ap netip.AddrPort) error                  { return ErrUnsupported }
func (p *Program) stats() (ProgramStats, error)                        { return ProgramStats{}, ErrUnsupported }
func (p *Program) test(frame []byte, queue int) (Action, Class, error) { return 0, 0, ErrUnsupported }
func (p *Program) close() error                                        { return nil }
