package robust_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/pktengine/pktengine/engine"
	"github.com/pktengine/pktengine/engine/statsock"
)

// TestStatSocketRequestBounded: the stat socket reads one small JSON
// request per connection, so a client that streams an endless request
// must be cut off after a few kilobytes, not buffered: 64 MiB sent as one
// JSON string may cost the engine process a small fraction of that, and
// the answer must be an error. (Only the socket's owner can connect, but
// `serve --user` leaves root's socket to a process that serves traffic.)
func TestStatSocketRequestBounded(t *testing.T) {
	path := filepath.Join(t.TempDir(), "statsock.sock")
	l, err := statsock.Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() {
		served <- statsock.Serve(ctx, l, func() engine.Status { return engine.Status{Interface: "test0"} })
	}()
	defer func() {
		cancel()
		if err := <-served; err != nil {
			t.Error(err)
		}
	}()

	// A well-formed request still works.
	if st, err := statsock.Query(context.Background(), path); err != nil || st.Interface != "test0" {
		t.Fatalf("Query: %+v, %v", st, err)
	}

	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	const total = 64 << 20
	sendDone := make(chan int64, 1)
	go func() {
		chunk := bytes.Repeat([]byte("a"), 64<<10)
		var n int64
		w := func(b []byte) bool {
			k, err := c.Write(b)
			n += int64(k)
			return err == nil
		}
		if w([]byte(`{"op":"`)) {
			for n < total && w(chunk) {
			}
			w([]byte(`"}`))
		}
		c.(*net.UnixConn).CloseWrite()
		sendDone <- n
	}()
	answer, _ := io.ReadAll(c)
	sent := <-sendDone
	runtime.ReadMemStats(&after)
	var resp statsock.Response
	if err := json.Unmarshal(answer, &resp); err != nil || resp.Error == "" || len(answer) > 4096 {
		t.Errorf("answer to a %d-byte request: %d bytes, want a short error", sent, len(answer))
	}
	alloc := after.TotalAlloc - before.TotalAlloc
	short := strings.TrimSpace(string(answer))
	if len(short) > 80 {
		short = fmt.Sprintf("%s... (%d bytes)", short[:80], len(answer))
	}
	t.Logf("the server read %d MiB of one request, allocating %d MiB meanwhile; answered %s", sent>>20, alloc>>20, short)
	if alloc > total/8 {
		t.Errorf("a %d MiB request made the server allocate %d MiB: requests are not bounded", sent>>20, alloc>>20)
	}
}
