//go:build linux

package engine

import (
	"encoding/binary"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// nlmsg builds one netlink message with body, padded to 4 bytes.
func nlmsg(typ uint16, seq, pid uint32, body []byte) []byte {
	ne := binary.NativeEndian
	b := make([]byte, unix.SizeofNlMsghdr+len(body), unix.SizeofNlMsghdr+len(body)+3)
	ne.PutUint32(b[0:], uint32(len(b)))
	ne.PutUint16(b[4:], typ)
	ne.PutUint32(b[8:], seq)
	ne.PutUint32(b[12:], pid)
	copy(b[unix.SizeofNlMsghdr:], body)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

func ifinfo(index int32, flags uint32, attrs int) []byte {
	b := make([]byte, unix.SizeofIfInfomsg+attrs)
	binary.NativeEndian.PutUint32(b[4:], uint32(index))
	binary.NativeEndian.PutUint32(b[8:], flags)
	return b
}

func TestParseLinkMessages(t *testing.T) {
	nlerr := func(code int32, seq uint32) []byte {
		b := make([]byte, 4+unix.SizeofNlMsghdr)
		binary.NativeEndian.PutUint32(b, uint32(code))
		binary.NativeEndian.PutUint32(b[4+8:], seq)
		return b
	}
	var b []byte
	b = append(b, nlmsg(unix.RTM_NEWLINK, 0, 0, ifinfo(7, unix.IFF_UP|unix.IFF_RUNNING|unix.IFF_BROADCAST, 5))...) // odd attributes: padding
	b = append(b, nlmsg(unix.RTM_NEWLINK, 0, 0, ifinfo(8, 0, 0))...)                                               // another interface
	b = append(b, nlmsg(unix.RTM_NEWLINK, 0, 0, ifinfo(7, unix.IFF_UP, 0))...)
	b = append(b, nlmsg(unix.RTM_NEWADDR, 0, 0, ifinfo(7, 0, 0))...)
	b = append(b, nlmsg(unix.NLMSG_ERROR, 0, 99, nlerr(-int32(syscall.ENODEV), 5))...)
	b = append(b, nlmsg(unix.RTM_DELLINK, 0, 0, ifinfo(7, unix.IFF_UP, 0))...)
	b = append(b, nlmsg(unix.RTM_NEWLINK, 0, 0, ifinfo(7, 0, 0)[:8])...) // too short a body: skipped
	last := nlmsg(unix.RTM_NEWLINK, 0, 0, ifinfo(7, 0, 0))
	binary.NativeEndian.PutUint32(last, 1000) // claims more than there is: ends the walk
	b = append(b, last...)

	got := parseLinkMessages(b, 7)
	want := []linkMsg{
		{state: linkState{exists: true, adminUp: true, running: true}},
		{state: linkState{exists: true, adminUp: true}},
		{seq: 5, pid: 99, isErr: true, errno: syscall.ENODEV},
		{state: linkState{}},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d messages, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("message %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	for n := range len(b) { // every truncation parses without a panic
		parseLinkMessages(b[:n], 7)
	}
}
