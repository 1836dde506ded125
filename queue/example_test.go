package queue_test

import (
	"context"
	"fmt"

	"github.com/pktengine/pktengine/queue"
)

// A port's queue behaves like a UDP socket buffer: when it is full, the
// datagram is dropped and counted, and nothing waits.
func ExampleSPSC() {
	type datagram struct{ off, len uint32 }
	q, err := queue.NewSPSC[datagram](3) // rounded up to 4
	if err != nil {
		panic(err)
	}
	var overflows int
	for i := range 6 {
		if !q.Enqueue(datagram{off: uint32(i) * 2048, len: 64}) {
			overflows++
		}
	}
	out := make([]datagram, 8)
	n := q.DequeueBatch(out)
	fmt.Println("capacity", q.Cap(), "delivered", n, "overflows", overflows)
	fmt.Println(out[:n])
	// Output:
	// capacity 4 delivered 4 overflows 2
	// [{0 64} {2048 64} {4096 64} {6144 64}]
}

// Several fanout workers feed one port; each hands over what it has for the
// port in one call.
func ExampleMPSC() {
	q, err := queue.NewMPSC[int](8)
	if err != nil {
		panic(err)
	}
	fromWorker1 := []int{10, 11, 12}
	fromWorker2 := []int{20, 21, 22, 23, 24, 25, 26}
	n1 := q.EnqueueBatch(fromWorker1)
	n2 := q.EnqueueBatch(fromWorker2) // only 5 fit
	fmt.Println("accepted", n1, n2, "dropped", len(fromWorker1)-n1+len(fromWorker2)-n2)
	out := make([]int, q.Cap())
	fmt.Println(out[:q.DequeueBatch(out)])
	// Output:
	// accepted 3 5 dropped 2
	// [10 11 12 20 21 22 23 24]
}

// A consumer sleeps on a Doorbell while its queue is empty; the producer
// rings after publishing.
func ExampleDoorbell() {
	q, err := queue.NewSPSC[string](16)
	if err != nil {
		panic(err)
	}
	bell := queue.NewDoorbell()
	go func() {
		for _, s := range []string{"one", "two", "three"} {
			for !q.Enqueue(s) {
			}
			bell.Ring()
		}
	}()
	ctx := context.Background()
	buf := make([]string, 4)
	for got := 0; got < 3; {
		n := q.DequeueBatch(buf)
		if n == 0 {
			if err := bell.Wait(ctx, func() bool { return q.Len() == 0 }); err != nil {
				panic(err)
			}
			continue
		}
		for _, s := range buf[:n] {
			fmt.Println(s)
		}
		got += n
	}
	// Output:
	// one
	// two
	// three
}
