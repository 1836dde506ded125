package main

import (
	"fmt"
	"os/user"
	"strconv"
	"syscall"
)

// dropPrivileges switches the whole process to the named user and its
// primary group once the engine's sockets are open: the rings and sockets
// stay usable, but nothing new can be opened with root's rights. The
// supplementary groups become the primary group alone, so none of root's
// remain (the user's other groups are not taken on: the engine needs
// none). syscall.Setgroups/Setgid/Setuid apply to every thread of a Go
// program (since Go 1.16), so no goroutine keeps running as root.
func dropPrivileges(name string) error {
	u, err := user.Lookup(name)
	if err != nil {
		return fmt.Errorf("--user: %w", err)
	}
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return fmt.Errorf("--user %s: uid %q: %w", name, u.Uid, err)
	}
	gid, err := strconv.Atoi(u.Gid)
	if err != nil {
		return fmt.Errorf("--user %s: gid %q: %w", name, u.Gid, err)
	}
	if err := syscall.Setgroups([]int{gid}); err != nil {
		return fmt.Errorf("--user %s: setgroups: %w", name, err)
	}
	if err := syscall.Setgid(gid); err != nil {
		return fmt.Errorf("--user %s: setgid: %w", name, err)
	}
	if err := syscall.Setuid(uid); err != nil {
		return fmt.Errorf("--user %s: setuid: %w", name, err)
	}
	return nil
}
