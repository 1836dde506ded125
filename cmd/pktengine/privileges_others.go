//go:build !linux

package main

import "errors"

func dropPrivileges(string) error { return errors.New("--user is supported on Linux only") }
