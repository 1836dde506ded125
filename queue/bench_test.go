package queue

import (
	"fmt"
	"runtime"
	"sync"
	"testing"
	"unsafe"
)

// The benchmarks move b.N values from producer goroutines to the benchmark
// goroutine, which consumes them, through a queue of 1024 slots: the
// throughput of the handoff itself, with both sides running flat out. A
// side that finds the queue full or empty yields and tries again. The
// metric to read is Mitems/s; MB/s counts the bytes of the values moved.

const benchQueueCap = 1024

// queueBenchDesc is a pointer-free frame descriptor of the kind the engine
// queues: where a datagram sits in a ring block and how long it is.
type queueBenchDesc struct {
	Block, Off uint32
	Len        uint32
	Port       uint16
	Flags      uint16
}

// queueBenchSlice is a value holding a pointer, which makes Dequeue clear
// slots; queueBenchWords is the same size without pointers, so the two
// together show what clearing costs.
type (
	queueBenchSlice = []byte
	queueBenchWords = struct{ A, B, C uint64 }
)

// queueBenchShapes are the batch sizes on each side: values per Enqueue
// call (1 means Enqueue, more EnqueueBatch) and per Dequeue call. 1/64 is
// the engine's usual shape: RX dispatches frame by frame, the port's
// consumer drains in batches.
var queueBenchShapes = []struct{ enq, deq int }{{1, 1}, {1, 64}, {32, 32}, {64, 64}}

func BenchmarkSPSC(b *testing.B) {
	for _, sh := range queueBenchShapes {
		b.Run(fmt.Sprintf("desc/enq=%d/deq=%d", sh.enq, sh.deq), func(b *testing.B) {
			benchQueue(b, queueMust(NewSPSC[queueBenchDesc](benchQueueCap)), 1, sh.enq, sh.deq, queueBenchDesc{Len: 64})
		})
	}
	for _, sh := range []struct{ enq, deq int }{{1, 64}, {64, 64}} {
		b.Run(fmt.Sprintf("words/enq=%d/deq=%d", sh.enq, sh.deq), func(b *testing.B) {
			benchQueue(b, queueMust(NewSPSC[queueBenchWords](benchQueueCap)), 1, sh.enq, sh.deq, queueBenchWords{A: 64})
		})
		b.Run(fmt.Sprintf("slice/enq=%d/deq=%d", sh.enq, sh.deq), func(b *testing.B) {
			benchQueue(b, queueMust(NewSPSC[queueBenchSlice](benchQueueCap)), 1, sh.enq, sh.deq, make(queueBenchSlice, 64))
		})
	}
}

func BenchmarkMPSC(b *testing.B) {
	for _, producers := range []int{1, 2} {
		for _, sh := range queueBenchShapes {
			b.Run(fmt.Sprintf("producers=%d/enq=%d/deq=%d", producers, sh.enq, sh.deq), func(b *testing.B) {
				benchQueue(b, queueMust(NewMPSC[queueBenchDesc](benchQueueCap)), producers, sh.enq, sh.deq, queueBenchDesc{Len: 64})
			})
		}
	}
}

// BenchmarkChan is the baseline: a buffered channel of the same capacity,
// one value per send and receive.
func BenchmarkChan(b *testing.B) {
	for _, producers := range []int{1, 2} {
		b.Run(fmt.Sprintf("producers=%d", producers), func(b *testing.B) {
			ch := make(chan queueBenchDesc, benchQueueCap)
			v := queueBenchDesc{Len: 64}
			b.SetBytes(int64(unsafe.Sizeof(v)))
			b.ReportAllocs()
			b.ResetTimer()
			var wg sync.WaitGroup
			for p := range producers {
				n := queueShare(b.N, producers, p)
				wg.Go(func() {
					for range n {
						ch <- v
					}
				})
			}
			for range b.N {
				<-ch
			}
			wg.Wait()
			queueReportRate(b)
		})
	}
}

// benchQueue runs producers goroutines that enqueue b.N values in all, enq
// values per call, while the benchmark goroutine dequeues them, deq values
// per call.
func benchQueue[T any](b *testing.B, q queueAPI[T], producers, enq, deq int, v T) {
	b.SetBytes(int64(unsafe.Sizeof(v)))
	b.ReportAllocs()
	vs := make([]T, enq)
	for i := range vs {
		vs[i] = v
	}
	out := make([]T, deq)
	b.ResetTimer()
	var wg sync.WaitGroup
	for p := range producers {
		n := queueShare(b.N, producers, p)
		wg.Go(func() {
			for n > 0 {
				var k int
				if enq == 1 {
					if q.Enqueue(v) {
						k = 1
					}
				} else {
					k = q.EnqueueBatch(vs[:min(enq, n)])
				}
				if k == 0 {
					runtime.Gosched()
				}
				n -= k
			}
		})
	}
	for got := 0; got < b.N; {
		var k int
		if deq == 1 {
			if _, ok := q.Dequeue(); ok {
				k = 1
			}
		} else {
			k = q.DequeueBatch(out)
		}
		if k == 0 {
			runtime.Gosched()
		}
		got += k
	}
	wg.Wait()
	queueReportRate(b)
}

// queueShare returns producer p's part of n items split among producers.
func queueShare(n, producers, p int) int {
	s := n / producers
	if p < n%producers {
		s++
	}
	return s
}

func queueReportRate(b *testing.B) {
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(b.N)/s/1e6, "Mitems/s")
	}
}

// BenchmarkQueueOneGoroutine enqueues and dequeues on the same goroutine:
// the instruction cost of the operations with no cache line moving between
// cores, and so much less sensitive to other load on the machine than the
// two-goroutine benchmarks. ns/op is per value.
func BenchmarkQueueOneGoroutine(b *testing.B) {
	v := queueBenchDesc{Len: 64}
	for _, batch := range []int{1, 64} {
		b.Run(fmt.Sprintf("SPSC/batch=%d", batch), func(b *testing.B) {
			benchQueueOneGoroutine(b, queueMust(NewSPSC[queueBenchDesc](benchQueueCap)), batch, v)
		})
		b.Run(fmt.Sprintf("MPSC/batch=%d", batch), func(b *testing.B) {
			benchQueueOneGoroutine(b, queueMust(NewMPSC[queueBenchDesc](benchQueueCap)), batch, v)
		})
	}
	for _, batch := range []int{1, 64} {
		b.Run(fmt.Sprintf("SPSC-words/batch=%d", batch), func(b *testing.B) {
			benchQueueOneGoroutine(b, queueMust(NewSPSC[queueBenchWords](benchQueueCap)), batch, queueBenchWords{A: 64})
		})
		b.Run(fmt.Sprintf("SPSC-slice/batch=%d", batch), func(b *testing.B) {
			benchQueueOneGoroutine(b, queueMust(NewSPSC[queueBenchSlice](benchQueueCap)), batch, make(queueBenchSlice, 64))
		})
	}
	b.Run("chan", func(b *testing.B) {
		ch := make(chan queueBenchDesc, benchQueueCap)
		b.SetBytes(int64(unsafe.Sizeof(v)))
		b.ReportAllocs()
		for b.Loop() {
			ch <- v
			<-ch
		}
	})
}

func benchQueueOneGoroutine[T any](b *testing.B, q queueAPI[T], batch int, v T) {
	b.SetBytes(int64(unsafe.Sizeof(v)))
	b.ReportAllocs()
	if batch == 1 {
		for b.Loop() {
			q.Enqueue(v)
			q.Dequeue()
		}
		return
	}
	vs := make([]T, batch)
	for i := range vs {
		vs[i] = v
	}
	out := make([]T, batch)
	for i := 0; i < b.N; i += batch {
		q.EnqueueBatch(vs)
		q.DequeueBatch(out)
	}
}
