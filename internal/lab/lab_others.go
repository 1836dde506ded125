//go:build !linux

package lab

import (
	"fmt"
	"runtime"
)

var errUnsupported = fmt.Errorf("lab: network namespaces are not supported on %s", runtime.GOOS)

func create(*Config) (*Lab, error)                 { return nil, errUnsupported }
func removeStale() ([]string, error)               { return nil, nil }
func deleteNetns(string) error                     { return errUnsupported }
func checkPrivileges() error                       { return errUnsupported }
func doInNetns(name string, fn func() error) error { return errUnsupported }
