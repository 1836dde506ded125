//go:build !linux

package lab

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"runtime"
)

var errUnsupported = fmt.Errorf("lab: network namespaces are not supported on %s", runtime.GOOS)

// Create is not supported on this platform.
func Create(cfg *Config) (*Lab, error) {
	if _, err := cfg.withDefaults(); err != nil {
		return nil, err
	}
	return nil, errUnsupported
}

// RemoveStale does nothing on this platform.
func RemoveStale() ([]string, error) { return nil, nil }

// Close is a no-op on this platform.
func (l *Lab) Close() error { return nil }

// CheckPrivileges always reports that labs are unsupported here.
func CheckPrivileges() error { return errUnsupported }

// Do is not supported on this platform.
func (h *Host) Do(fn func() error) error { return errUnsupported }

// Sysctl is not supported on this platform.
func (h *Host) Sysctl(name, value string) (string, error) { return "", errUnsupported }

// Interface is not supported on this platform.
func (h *Host) Interface() (*net.Interface, error) { return nil, errUnsupported }

// InterfaceByName is not supported on this platform.
func (h *Host) InterfaceByName(name string) (*net.Interface, error) { return nil, errUnsupported }

// Command returns a command that fails to start on this platform.
func (h *Host) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Err = errUnsupported
	return cmd
}

// ListenUDP is not supported on this platform.
func (h *Host) ListenUDP(network string, laddr *net.UDPAddr) (*net.UDPConn, error) {
	return nil, errUnsupported
}

// ListenPacket is not supported on this platform.
func (h *Host) ListenPacket(network, address string) (net.PacketConn, error) {
	return nil, errUnsupported
}

// DialUDP is not supported on this platform.
func (h *Host) DialUDP(network string, laddr, raddr *net.UDPAddr) (*net.UDPConn, error) {
	return nil, errUnsupported
}
