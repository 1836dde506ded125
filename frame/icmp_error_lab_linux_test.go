package frame_test

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pktengine/pktengine/frame"
	"github.com/pktengine/pktengine/internal/lab"
	"github.com/pktengine/pktengine/internal/labtest"
	"github.com/pktengine/pktengine/ring"
)

// TestICMPErrnoAgainstKernel makes the kernel the oracle for the errno
// table: for every ICMP and ICMPv6 error type and code, a crafted error
// quoting a datagram of a connected kernel UDP socket goes from the peer
// namespace to that socket's host. A socket with IP_RECVERR reads the
// error the kernel queues (errno, type, code, info) and must agree with
// ParseICMPv4Error / ParseICMPv6Error; a socket without it must see the
// errno (SO_ERROR) exactly when the parser calls the error fatal.
func TestICMPErrnoAgainstKernel(t *testing.T) {
	l := labtest.New(t, nil)
	a, b := l.A(), l.B()
	tx := labtest.Open(t, b, func(ifi *net.Interface) (ring.Transmitter, error) { return ring.NewTransmitter(ifi, nil) })

	type tc struct{ typ, code uint8 }
	var v4, v6 []tc
	for code := range uint8(17) {
		v4 = append(v4, tc{frame.ICMPv4DestUnreachable, code})
	}
	v4 = append(v4, tc{frame.ICMPv4TimeExceeded, 0}, tc{frame.ICMPv4TimeExceeded, 1}, tc{frame.ICMPv4TimeExceeded, 2}, tc{frame.ICMPv4ParameterProblem, 0},
		tc{frame.ICMPv4SourceQuench, 0})
	for code := range uint8(9) {
		v6 = append(v6, tc{frame.ICMPv6DestUnreachable, code})
	}
	v6 = append(v6, tc{frame.ICMPv6PacketTooBig, 0}, tc{frame.ICMPv6TimeExceeded, 0}, tc{frame.ICMPv6TimeExceeded, 1})
	for code := range uint8(4) {
		v6 = append(v6, tc{frame.ICMPv6ParameterProblem, code})
	}
	v6 = append(v6, tc{100, 0})

	for _, fam := range []struct {
		network  string
		src, dst netip.Addr
		cases    []tc
	}{
		{"udp4", a.IPv4.Addr(), b.IPv4.Addr(), v4},
		{"udp6", a.IPv6.Addr(), b.IPv6.Addr(), v6},
	} {
		recverr := dialFrom(t, a, fam.network, fam.src, 41001, fam.dst, true)
		plain := dialFrom(t, a, fam.network, fam.src, 41002, fam.dst, false)
		for i, c := range fam.cases {
			word := uint32(0)
			switch {
			case fam.src.Is4() && c.typ == frame.ICMPv4DestUnreachable && c.code == frame.ICMPv4CodeFragNeeded:
				word = 1400
			case fam.src.Is4() && c.typ == frame.ICMPv4ParameterProblem:
				word = 9 << 24
			case fam.src.Is6() && c.typ == frame.ICMPv6PacketTooBig:
				word = 1400
			case fam.src.Is6() && c.typ == frame.ICMPv6ParameterProblem:
				word = 6
			}
			// The error as the parser reads it.
			msg := errorFrame(t, a, b, fam.src, 41001, fam.dst, c.typ, c.code, word, uint16(i))
			var p frame.Packet
			p.Decode(msg)
			var e frame.UDPError
			var perr error
			if fam.src.Is4() {
				e, perr = frame.ParseICMPv4Error(p.ICMPv4(msg))
			} else {
				e, perr = frame.ParseICMPv6Error(p.ICMPv6(msg))
			}

			// To the kernel: first about the plain socket's datagram,
			// then about the RECVERR socket's, whose arrival says the
			// first has been handled too.
			labtest.Send(t, tx, errorFrame(t, a, b, fam.src, 41002, fam.dst, c.typ, c.code, word, uint16(i)), msg)
			ee, got := readErrQueue(t, recverr, perr == nil)
			if (perr == nil) != got {
				t.Errorf("%s type %d code %d: parser %v, kernel queued an error: %v", fam.network, c.typ, c.code, perr, got)
				continue
			}
			soErr := soError(t, plain)
			if !got {
				if soErr != 0 {
					t.Errorf("%s type %d code %d: SO_ERROR %v for a message the kernel did not queue", fam.network, c.typ, c.code, soErr)
				}
				continue
			}
			if syscall.Errno(ee.Errno) != syscall.Errno(e.Errno) || !errors.Is(e.Errno, syscall.Errno(ee.Errno)) ||
				ee.Type != e.Type || ee.Code != e.Code || ee.Info != e.Info {
				t.Errorf("%s type %d code %d: kernel errno %v type %d code %d info %d; parser %v (%d) %+v",
					fam.network, c.typ, c.code, syscall.Errno(ee.Errno), ee.Type, ee.Code, ee.Info, e.Errno, int(e.Errno), e)
			}
			if e.Errno.Error() != syscall.Errno(ee.Errno).Error() {
				t.Errorf("%s: %q, kernel's %q", fam.network, e.Errno.Error(), syscall.Errno(ee.Errno).Error())
			}
			want := syscall.Errno(0)
			if e.Fatal {
				want = syscall.Errno(e.Errno)
			}
			if soErr != want {
				t.Errorf("%s type %d code %d: connected socket without RECVERR sees %v, parser says fatal %v (%v)",
					fam.network, c.typ, c.code, soErr, e.Fatal, e.Errno)
			}
		}
	}
}

// dialFrom opens a kernel UDP socket in h bound to src:port and connected
// to dst:9, with IP_RECVERR / IPV6_RECVERR if recverr.
func dialFrom(t *testing.T, h *lab.Host, network string, src netip.Addr, port int, dst netip.Addr, recverr bool) *net.UDPConn {
	t.Helper()
	c, err := h.DialUDP(network, &net.UDPAddr{IP: src.AsSlice(), Port: port}, &net.UDPAddr{IP: dst.AsSlice(), Port: 9})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if recverr {
		rc, _ := c.SyscallConn()
		var serr error
		rc.Control(func(fd uintptr) {
			if src.Is4() {
				serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_RECVERR, 1)
			} else {
				serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_RECVERR, 1)
			}
		})
		if serr != nil {
			t.Fatal(serr)
		}
	}
	return c
}

// errorFrame builds, from b to a, an ICMP error of type and code about a
// UDP datagram from src:port in a to dst:9 in b.
func errorFrame(t *testing.T, a, b *lab.Host, src netip.Addr, port uint16, dst netip.Addr, typ, code uint8, word uint32, id uint16) []byte {
	t.Helper()
	dg := &frame.UDPSpec{SrcMAC: frame.MAC(a.MAC), DstMAC: frame.MAC(b.MAC), Src: netip.AddrPortFrom(src, port),
		Dst: netip.AddrPortFrom(dst, 9), Payload: []byte("the quoted datagram"), ID: id}
	raw := make([]byte, frame.UDPFrameLen(dg))
	if _, err := frame.BuildUDP(raw, dg); err != nil {
		t.Fatal(err)
	}
	spec := &frame.IPSpec{SrcMAC: frame.MAC(b.MAC), DstMAC: frame.MAC(a.MAC), Src: dst, Dst: src, ID: id}
	out := make([]byte, 2048)
	var n int
	var err error
	if src.Is4() {
		n, err = frame.BuildICMPv4Error(out, spec, typ, code, word, raw[14:])
	} else {
		n, err = frame.BuildICMPv6Error(out, spec, typ, code, word, raw[14:])
	}
	if err != nil {
		t.Fatal(err)
	}
	return out[:n]
}

// readErrQueue waits for an error on c's error queue (up to 2 s if one is
// expected, 300 ms if not) and returns it.
func readErrQueue(t *testing.T, c *net.UDPConn, expect bool) (unix.SockExtendedErr, bool) {
	t.Helper()
	rc, _ := c.SyscallConn()
	wait := 300 * time.Millisecond
	if expect {
		wait = 2 * time.Second
	}
	for deadline := time.Now().Add(wait); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		var ee *unix.SockExtendedErr
		var rerr error
		rc.Control(func(fd uintptr) {
			buf, oob := make([]byte, 512), make([]byte, 512)
			_, oobn, _, _, err := unix.Recvmsg(int(fd), buf, oob, unix.MSG_ERRQUEUE|unix.MSG_DONTWAIT)
			if err != nil {
				if err != unix.EAGAIN {
					rerr = err
				}
				return
			}
			msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
			if err != nil {
				rerr = err
				return
			}
			for _, m := range msgs {
				if m.Header.Level == unix.SOL_IP && m.Header.Type == unix.IP_RECVERR ||
					m.Header.Level == unix.SOL_IPV6 && m.Header.Type == unix.IPV6_RECVERR {
					if len(m.Data) >= 16 { // struct sock_extended_err, in host order
						ee = &unix.SockExtendedErr{
							Errno: binary.NativeEndian.Uint32(m.Data[0:]), Origin: m.Data[4], Type: m.Data[5], Code: m.Data[6],
							Info: binary.NativeEndian.Uint32(m.Data[8:]), Data: binary.NativeEndian.Uint32(m.Data[12:]),
						}
					}
				}
			}
		})
		if rerr != nil {
			t.Fatal(rerr)
		}
		if ee != nil {
			return *ee, true
		}
	}
	return unix.SockExtendedErr{}, false
}

// soError reads and clears the socket's pending error.
func soError(t *testing.T, c *net.UDPConn) syscall.Errno {
	t.Helper()
	rc, _ := c.SyscallConn()
	var v int
	var err error
	rc.Control(func(fd uintptr) { v, err = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_ERROR) })
	if err != nil {
		t.Fatal(err)
	}
	return syscall.Errno(v)
}
