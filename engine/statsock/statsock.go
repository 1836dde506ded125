// Package statsock is the unix stat socket between a running engine
// (`pktengine serve --control PATH`) and `pktengine stat`: the client
// connects, sends one JSON request, and reads one JSON response.
//
//	-> {"op":"stat"}
//	<- {"status":{"Interface":"veth0", ..., "Ports":[...], "Counters":{...}}}
//
// Errors come back as {"error":"..."}. One request per connection keeps
// the protocol stateless and easy to use from a shell (socat).
package statsock

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"sync"
	"time"

	"github.com/pktengine/pktengine/engine"
)

// DefaultPath is where serve listens and stat connects unless told
// otherwise.
const DefaultPath = "/run/pktengine.sock"

// OpStat asks for the engine's Status.
const OpStat = "stat"

// Request is a client's request.
type Request struct {
	Op string `json:"op"`
}

// Response is the server's answer: a Status, or an error.
type Response struct {
	Status *engine.Status `json:"status,omitempty"`
	Error  string         `json:"error,omitempty"`
}

// timeout bounds one exchange, so that a stuck client cannot hold a
// server goroutine.
const timeout = 5 * time.Second

// maxRequest bounds what the server reads of one request (a stat request
// is 14 bytes), so that a client cannot make it buffer an endless one.
const maxRequest = 4096

// Listen opens the stat socket at path. A socket file left behind by a
// process that is gone is removed; one that still answers is an error.
func Listen(path string) (net.Listener, error) {
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&fs.ModeSocket == 0 {
			return nil, fmt.Errorf("statsock: %s exists and is not a socket", path)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("statsock: %s is in use by a running engine", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("statsock: removing stale socket: %w", err)
		}
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("statsock: %w", err)
	}
	// The socket file goes when the listener closes.
	l.(*net.UnixListener).SetUnlinkOnClose(true)
	return l, nil
}

// Serve answers requests on l with status until ctx ends or l fails, then
// closes l. status is called for each stat request, from the connection's
// goroutine.
func Serve(ctx context.Context, l net.Listener, status func() engine.Status) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	stop := context.AfterFunc(ctx, func() { l.Close() })
	defer stop()
	for {
		c, err := l.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			l.Close()
			return fmt.Errorf("statsock: %w", err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			c.SetDeadline(time.Now().Add(timeout))
			var req Request
			var resp Response
			if err := json.NewDecoder(io.LimitReader(c, maxRequest)).Decode(&req); err != nil {
				resp.Error = "bad request: " + err.Error()
			} else {
				switch req.Op {
				case OpStat:
					s := status()
					resp.Status = &s
				default:
					resp.Error = fmt.Sprintf("unknown op %q", req.Op)
				}
			}
			json.NewEncoder(c).Encode(&resp)
		}()
	}
}

// Query asks the engine listening at path for its Status.
func Query(ctx context.Context, path string) (*engine.Status, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("statsock: is an engine running with --control %s? %w", path, err)
	}
	defer c.Close()
	deadline := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	c.SetDeadline(deadline)
	if err := json.NewEncoder(c).Encode(Request{Op: OpStat}); err != nil {
		return nil, fmt.Errorf("statsock: %w", err)
	}
	var resp Response
	if err := json.NewDecoder(c).Decode(&resp); err != nil {
		return nil, fmt.Errorf("statsock: reading the answer: %w", err)
	}
	if resp.Error != "" {
		return nil, errors.New("statsock: engine says: " + resp.Error)
	}
	if resp.Status == nil {
		return nil, errors.New("statsock: empty answer")
	}
	return resp.Status, nil
}
