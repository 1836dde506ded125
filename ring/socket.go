package ring

import (
	"errors"
	"fmt"
	"net"
)

// Addr is the link-layer address of a ring's socket: an interface.
type Addr struct {
	Index int
	Name  string
}

func (a *Addr) Network() string { return "packet" }
func (a *Addr) String() string  { return fmt.Sprintf("%s(%d)", a.Name, a.Index) }

// ErrClosed is returned by operations on a closed RX or TX. It is
// net.ErrClosed, so errors.Is(err, net.ErrClosed) works too.
var ErrClosed = net.ErrClosed

// ErrUnsupported is returned on platforms without AF_PACKET rings.
var ErrUnsupported = errors.New("ring: AF_PACKET rings are only available on Linux")

func addrOf(ifi *net.Interface) net.Addr {
	if ifi == nil {
		return nil
	}
	return &Addr{Index: ifi.Index, Name: ifi.Name}
}

// opError wraps err as a *net.OpError naming the ring's interface.
func opError(op string, addr *Addr, err error) error {
	return &net.OpError{Op: op, Net: "packet", Addr: addr, Err: unwrapOp(err)}
}

// unwrapOp returns what an error from package packet, a *net.OpError
// naming the hardware address, wraps: this package's errors name the
// interface instead, and are not nested.
func unwrapOp(err error) error {
	if oe, ok := err.(*net.OpError); ok {
		return oe.Err
	}
	return err
}
