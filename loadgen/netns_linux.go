//go:build linux

package loadgen

import (
	"fmt"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// netns is the network namespace a Generator was opened in: the live
// backend's workers send from threads that join it.
type netns struct{ fd int }

const threadNetns = "/proc/thread-self/ns/net"

func currentNetns() (*netns, error) {
	fd, err := unix.Open(threadNetns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("loadgen: %w", os.NewSyscallError("open "+threadNetns, err))
	}
	return &netns{fd: fd}, nil
}

// enter locks the calling goroutine to its thread and moves the thread
// into the namespace. The caller must not unlock: the thread stays there,
// and the runtime discards it when the goroutine ends.
func (n *netns) enter() error {
	runtime.LockOSThread()
	return os.NewSyscallError("setns", unix.Setns(n.fd, unix.CLONE_NEWNET))
}

func (n *netns) close() error { return os.NewSyscallError("close", unix.Close(n.fd)) }
