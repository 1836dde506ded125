//go:build !linux

package bench

import "github.com/pktengine/pktengine/ring"

func openDNSGen(ifname string, spec *dnsGenSpec) (dnsGenRunner, error) {
	return nil, ring.ErrUnsupported
}
