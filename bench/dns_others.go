//go:build !linux

package bench

import (
	"context"
	"io"

	"github.com/pktengine/pktengine/ring"
)

// RunDNS runs the DNS benchmark; it needs Linux network namespaces and
// AF_PACKET rings.
func RunDNS(ctx context.Context, cfg *DNSConfig, log io.Writer) (*DNSReport, error) {
	return nil, ring.ErrUnsupported
}
