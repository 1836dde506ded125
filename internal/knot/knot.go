// Package knot runs Knot DNS (knotd) as a peer in the lab: a generated
// configuration serving one zone from its own directory, started in a lab
// namespace in the foreground and stopped by its caller, never as the
// system's service. examples/dnsd's tests use it as the correctness
// oracle and the benchmark harness (package bench) as the responder to
// beat, on kernel UDP and in XDP mode.
//
// Knot sets its worker threads' CPU affinity itself (its XDP worker lands
// on CPU 0, beside a load generator); PinThreads and CheckPinned re-pin
// every thread of a running server to one CPU and check it.
package knot

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Options say where Knot DNS listens: kernel UDP (and TCP) sockets on
// addresses, and XDP on an interface.
type Options struct {
	Listen []netip.AddrPort
	// XDPIface, if not "", is the interface Knot attaches its XDP
	// program to (native mode where the driver has it, as veth does),
	// answering UDP to XDPPort from AF_XDP sockets, one worker per RX
	// queue.
	XDPIface string
	XDPPort  uint16
}

// Config returns a knot.conf serving one zone from zoneFile: run directory
// and storage under dir, one UDP worker, one TCP worker and one background
// worker, the CHAOS identity, version and NSID off (dnsd has none of them),
// logging to stderr, the zone file read whole and never written back.
func Config(dir, origin, zoneFile string, o Options) string {
	var ls []string
	for _, ap := range o.Listen {
		ls = append(ls, fmt.Sprintf("%s@%d", ap.Addr(), ap.Port()))
	}
	listen, xdp := "", ""
	if len(ls) > 0 {
		listen = fmt.Sprintf("    listen: [ %s ]\n", strings.Join(ls, ", "))
	}
	if o.XDPIface != "" {
		xdp = fmt.Sprintf("xdp:\n    listen: [ %s@%d ]\n", o.XDPIface, o.XDPPort)
	}
	return fmt.Sprintf(`server:
    rundir: "%[1]s/run"
%[2]s    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
    identity: ""
    version: ""
    nsid: ""
log:
  - target: stderr
    any: info
database:
    storage: "%[1]s/db"
zone:
  - domain: %[3]s
    file: "%[4]s"
    storage: "%[1]s/db"
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: none
%[5]s`, dir, listen, origin, zoneFile, xdp)
}

// LookPath returns the path of a program: from $PATH, or from /usr/sbin or
// /sbin, where Debian puts daemons (knotd) and tools (kxdpgun) and which
// a CI job's or sudo's PATH may leave out.
func LookPath(name string) (string, error) {
	path, err := exec.LookPath(name)
	if err == nil {
		return path, nil
	}
	for _, dir := range []string{"/usr/sbin", "/sbin"} {
		p := filepath.Join(dir, name)
		if st, e := os.Stat(p); e == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", err
}

// Answered reports whether resp is an authoritative NOERROR response to
// query: the same ID, QR and AA set, RCODE 0.
func Answered(query, resp []byte) bool {
	if len(query) < 12 || len(resp) < 12 {
		return false
	}
	flags := binary.BigEndian.Uint16(resp[2:])
	const qr, aa = 0x8000, 0x0400
	return bytes.Equal(query[:2], resp[:2]) && flags&qr != 0 && flags&aa != 0 && flags&0xF == 0
}
