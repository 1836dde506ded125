package lab

import (
	"bytes"
	"sync"
)

// Buffer collects the output of a child process, such as one started
// with Host.Command, for error messages: a bytes.Buffer that the
// goroutines copying the child's output may write while another reads.
// The zero Buffer is empty and ready to use.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns what has been written so far.
func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
