//go:build !linux

package bench

import (
	"context"
	"io"

	"github.com/pktengine/pktengine/ring"
)

// Run runs the benchmark; it needs Linux network namespaces and AF_PACKET
// rings.
func Run(ctx context.Context, cfg *Config, log io.Writer) (*Report, error) {
	return nil, ring.ErrUnsupported
}
