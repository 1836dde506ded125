package queue

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"unsafe"
)

// queue is the API SPSC and MPSC share, so one set of tests covers both.
type queueAPI[T any] interface {
	Enqueue(v T) bool
	EnqueueBatch(vs []T) int
	Dequeue() (T, bool)
	DequeueBatch(out []T) int
	Len() int
	Cap() int
}

var (
	_ queueAPI[int] = (*SPSC[int])(nil)
	_ queueAPI[int] = (*MPSC[int])(nil)
)

type queueKind struct {
	name string
	// multi reports whether several producers may enqueue at once.
	multi  bool
	newInt func(capacity int) (queueAPI[int], error)
}

var queueKinds = []queueKind{
	{"SPSC", false, func(c int) (queueAPI[int], error) { return NewSPSC[int](c) }},
	{"MPSC", true, func(c int) (queueAPI[int], error) { return NewMPSC[int](c) }},
}

func mustQueue(t testing.TB, k queueKind, capacity int) queueAPI[int] {
	t.Helper()
	q, err := k.newInt(capacity)
	if err != nil {
		t.Fatalf("New%s(%d): %v", k.name, capacity, err)
	}
	return q
}

func TestQueueSize(t *testing.T) {
	for _, tt := range []struct {
		in   int
		want uint64 // 0: error
	}{
		{-1, 0}, {0, 0},
		{1, 1}, {2, 2}, {3, 4}, {4, 4}, {5, 8},
		{1000, 1024}, {1024, 1024}, {1025, 2048},
		{MaxCapacity/2 + 1, MaxCapacity},
		{MaxCapacity, MaxCapacity},
		{MaxCapacity + 1, 0},
	} {
		got, err := roundCapacity(tt.in)
		if tt.want == 0 {
			if err == nil {
				t.Errorf("roundCapacity(%d) = %d, want an error", tt.in, got)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("roundCapacity(%d) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
	for _, k := range queueKinds {
		if _, err := k.newInt(0); err == nil {
			t.Errorf("New%s(0) succeeded", k.name)
		}
		if q := mustQueue(t, k, 100); q.Cap() != 128 || q.Len() != 0 {
			t.Errorf("New%s(100): Cap %d Len %d, want 128 0", k.name, q.Cap(), q.Len())
		}
	}
}

func TestQueueFullEmpty(t *testing.T) {
	for _, k := range queueKinds {
		t.Run(k.name, func(t *testing.T) {
			q := mustQueue(t, k, 8)
			if v, ok := q.Dequeue(); ok || v != 0 {
				t.Fatalf("Dequeue on empty = %d, %v", v, ok)
			}
			if n := q.DequeueBatch(make([]int, 4)); n != 0 {
				t.Fatalf("DequeueBatch on empty = %d", n)
			}
			for i := range 8 {
				if !q.Enqueue(i + 1) {
					t.Fatalf("Enqueue #%d failed below capacity", i)
				}
				if q.Len() != i+1 {
					t.Fatalf("Len = %d after %d enqueues", q.Len(), i+1)
				}
			}
			if q.Enqueue(99) {
				t.Fatal("Enqueue succeeded on a full queue")
			}
			if n := q.EnqueueBatch([]int{99, 99}); n != 0 {
				t.Fatalf("EnqueueBatch on full = %d", n)
			}
			if q.Len() != 8 {
				t.Fatalf("Len = %d on full queue of 8", q.Len())
			}
			for i := range 8 {
				v, ok := q.Dequeue()
				if !ok || v != i+1 {
					t.Fatalf("Dequeue #%d = %d, %v; want %d", i, v, ok, i+1)
				}
			}
			if v, ok := q.Dequeue(); ok {
				t.Fatalf("Dequeue after draining = %d", v)
			}
			if !q.Enqueue(42) {
				t.Fatal("Enqueue failed after draining")
			}
		})
	}
}

// TestQueueWraparound moves batches and single values across the end of the
// buffer many times, with every alignment of the start position.
func TestQueueWraparound(t *testing.T) {
	for _, k := range queueKinds {
		t.Run(k.name, func(t *testing.T) {
			q := mustQueue(t, k, 8)
			next, want := 0, 0
			out := make([]int, 8)
			for round := range 200 {
				batch := 1 + round%8
				vs := make([]int, batch)
				for i := range vs {
					vs[i] = next + i
				}
				if n := q.EnqueueBatch(vs); n != batch {
					t.Fatalf("round %d: EnqueueBatch(%d) = %d on empty queue", round, batch, n)
				}
				next += batch
				// Take the values out one at a time on odd rounds.
				if round%2 == 1 {
					for range batch {
						v, ok := q.Dequeue()
						if !ok || v != want {
							t.Fatalf("round %d: Dequeue = %d, %v; want %d", round, v, ok, want)
						}
						want++
					}
					continue
				}
				n := q.DequeueBatch(out)
				if n != batch {
					t.Fatalf("round %d: DequeueBatch = %d, want %d", round, n, batch)
				}
				for _, v := range out[:n] {
					if v != want {
						t.Fatalf("round %d: got %d, want %d", round, v, want)
					}
					want++
				}
			}
		})
	}
}

func TestQueueBatchPartial(t *testing.T) {
	for _, k := range queueKinds {
		t.Run(k.name, func(t *testing.T) {
			q := mustQueue(t, k, 8)
			if n := q.EnqueueBatch(nil); n != 0 {
				t.Fatalf("EnqueueBatch(nil) = %d", n)
			}
			if n := q.EnqueueBatch([]int{1, 2, 3}); n != 3 {
				t.Fatalf("EnqueueBatch(3) = %d", n)
			}
			// Free two slots at the start so the next batch wraps.
			out := make([]int, 2)
			if n := q.DequeueBatch(out); n != 2 || out[0] != 1 || out[1] != 2 {
				t.Fatalf("DequeueBatch(2) = %d %v", n, out)
			}
			in := []int{4, 5, 6, 7, 8, 9, 10, 11, 12, 13}
			if n := q.EnqueueBatch(in); n != 7 {
				t.Fatalf("EnqueueBatch(10) with 7 free = %d", n)
			}
			if q.Len() != 8 {
				t.Fatalf("Len = %d, want 8", q.Len())
			}
			if n := q.DequeueBatch(nil); n != 0 {
				t.Fatalf("DequeueBatch(nil) = %d", n)
			}
			big := make([]int, 20)
			n := q.DequeueBatch(big)
			if n != 8 {
				t.Fatalf("DequeueBatch(20) = %d, want 8", n)
			}
			for i, v := range big[:n] {
				if v != i+3 {
					t.Fatalf("big[%d] = %d, want %d (got %v)", i, v, i+3, big[:n])
				}
			}
			if big[n] != 0 {
				t.Fatalf("DequeueBatch wrote past n: %v", big)
			}
			// A batch larger than the whole queue fills it and stops.
			if n := q.EnqueueBatch(make([]int, 20)); n != 8 {
				t.Fatalf("EnqueueBatch(20) on empty = %d, want 8", n)
			}
		})
	}
}

// TestMPSCBatchPartial leaves every number of free slots, at every slot
// alignment, and checks that a batch enqueue fills exactly those.
func TestMPSCBatchPartial(t *testing.T) {
	const size = 16
	for start := range size {
		for free := 0; free <= size; free++ {
			for want := 1; want <= size+2; want++ {
				q, _ := NewMPSC[int](size)
				for i := range start {
					q.Enqueue(i)
					q.Dequeue()
				}
				for i := range size {
					q.Enqueue(i)
				}
				for range free {
					q.Dequeue()
				}
				in := make([]int, want)
				for i := range in {
					in[i] = 100 + i
				}
				got := q.EnqueueBatch(in)
				if got != min(want, free) {
					t.Fatalf("start %d free %d: EnqueueBatch(%d) = %d", start, free, want, got)
				}
				out := make([]int, 2*size)
				n := q.DequeueBatch(out)
				if n != size-free+got {
					t.Fatalf("start %d free %d want %d: drained %d, want %d", start, free, want, n, size-free+got)
				}
				for i, v := range out[:n] {
					exp := free + i
					if i >= size-free {
						exp = 100 + i - (size - free)
					}
					if v != exp {
						t.Fatalf("start %d free %d want %d: out = %v", start, free, want, out[:n])
					}
				}
			}
		}
	}
}

// TestMPSCUnpublishedClaim shows what a producer stalled between claim and
// publish does: the consumer sees nothing past it until it publishes, then
// everything in position order.
func TestMPSCUnpublishedClaim(t *testing.T) {
	q, _ := NewMPSC[int](4)
	// Producer A claims position 0 and stalls.
	p := q.tail.Load()
	if !q.tail.CompareAndSwap(p, p+1) {
		t.Fatal("claim failed")
	}
	// Producer B enqueues after it.
	if !q.Enqueue(2) {
		t.Fatal("Enqueue behind a claimed slot failed")
	}
	if q.Len() != 2 {
		t.Fatalf("Len = %d, want 2 (claimed positions count)", q.Len())
	}
	if v, ok := q.Dequeue(); ok {
		t.Fatalf("Dequeue passed an unpublished position: %d", v)
	}
	if n := q.DequeueBatch(make([]int, 4)); n != 0 {
		t.Fatalf("DequeueBatch passed an unpublished position: %d", n)
	}
	// A publishes.
	s := &q.slots[p&q.mask]
	s.val = 1
	s.run = 1
	s.seq.Store(p + 1)
	out := make([]int, 4)
	if n := q.DequeueBatch(out); n != 2 || out[0] != 1 || out[1] != 2 {
		t.Fatalf("after publish: DequeueBatch = %d %v, want 2 [1 2]", n, out[:n])
	}
}

func TestTypeHoldsPointers(t *testing.T) {
	type desc struct {
		Off, Len uint32
		Flags    [2]uint16
	}
	type withString struct {
		N    int
		Name string
	}
	for _, tt := range []struct {
		typ  reflect.Type
		want bool
	}{
		{reflect.TypeFor[int](), false},
		{reflect.TypeFor[uintptr](), false},
		{reflect.TypeFor[complex128](), false},
		{reflect.TypeFor[[16]byte](), false},
		{reflect.TypeFor[desc](), false},
		{reflect.TypeFor[[0]*int](), false},
		{reflect.TypeFor[struct{}](), false},
		{reflect.TypeFor[*int](), true},
		{reflect.TypeFor[[]byte](), true},
		{reflect.TypeFor[string](), true},
		{reflect.TypeFor[any](), true},
		{reflect.TypeFor[error](), true},
		{reflect.TypeFor[map[int]int](), true},
		{reflect.TypeFor[chan int](), true},
		{reflect.TypeFor[func()](), true},
		{reflect.TypeFor[unsafe.Pointer](), true},
		{reflect.TypeFor[withString](), true},
		{reflect.TypeFor[[2]withString](), true},
	} {
		if got := typeHoldsPointers(tt.typ); got != tt.want {
			t.Errorf("typeHoldsPointers(%v) = %v, want %v", tt.typ, got, tt.want)
		}
	}
}

// TestQueueReleasesReferences checks that a dequeued slot no longer refers to
// the value, so a quiet queue does not keep buffers alive.
func TestQueueReleasesReferences(t *testing.T) {
	bufs := [][]byte{make([]byte, 1), make([]byte, 2), make([]byte, 3)}
	spsc, _ := NewSPSC[[]byte](4)
	mpsc, _ := NewMPSC[[]byte](4)
	// Three values per round in four slots: the batches start at every
	// slot and wrap around the end of the buffer.
	for round := range 4 {
		for _, q := range []queueAPI[[]byte]{spsc, mpsc} {
			q.Enqueue(bufs[0])
			q.EnqueueBatch(bufs[1:])
			if v, ok := q.Dequeue(); !ok || len(v) != 1 {
				t.Fatalf("%T: Dequeue = %v, %v", q, v, ok)
			}
			out := make([][]byte, 4)
			if n := q.DequeueBatch(out); n != 2 || len(out[0]) != 2 || len(out[1]) != 3 {
				t.Fatalf("%T: DequeueBatch = %d %v", q, n, out)
			}
		}
		for i, v := range spsc.buf {
			if v != nil {
				t.Errorf("round %d: SPSC slot %d still holds %v", round, i, v)
			}
		}
		for i := range mpsc.slots {
			if v := mpsc.slots[i].val; v != nil {
				t.Errorf("round %d: MPSC slot %d still holds %v", round, i, v)
			}
		}
	}
	// Pointer-free values are left in place: nothing to release.
	if q, _ := NewSPSC[uint64](4); q.zeroSlots {
		t.Error("SPSC[uint64] zeroes its slots")
	}
	if q, _ := NewMPSC[uint64](4); q.zeroSlots {
		t.Error("MPSC[uint64] zeroes its slots")
	}
}

// TestQueueAllocs: no operation allocates, whether or not T holds pointers.
func TestQueueAllocs(t *testing.T) {
	type desc struct{ Off, Len uint32 }
	payload := []byte("datagram")
	testQueueAllocs(t, "SPSC[[]byte]", queueMust(NewSPSC[[]byte](64)), payload)
	testQueueAllocs(t, "MPSC[[]byte]", queueMust(NewMPSC[[]byte](64)), payload)
	testQueueAllocs(t, "SPSC[desc]", queueMust(NewSPSC[desc](64)), desc{1, 2})
	testQueueAllocs(t, "MPSC[desc]", queueMust(NewMPSC[desc](64)), desc{1, 2})
}

func queueMust[Q any](q Q, err error) Q {
	if err != nil {
		panic(err)
	}
	return q
}

func testQueueAllocs[T any](t *testing.T, name string, q queueAPI[T], v T) {
	t.Helper()
	batch := make([]T, 32)
	for i := range batch {
		batch[i] = v
	}
	out := make([]T, 32)
	for _, op := range []struct {
		name string
		f    func()
	}{
		{"Enqueue+Dequeue", func() {
			if !q.Enqueue(v) {
				panic("Enqueue failed")
			}
			if _, ok := q.Dequeue(); !ok {
				panic("Dequeue failed")
			}
		}},
		{"EnqueueBatch+DequeueBatch", func() {
			if q.EnqueueBatch(batch) != len(batch) || q.DequeueBatch(out) != len(batch) {
				panic("batch failed")
			}
		}},
		{"full and empty", func() {
			// Bounded loops, so that a queue that never fills fails
			// the test instead of hanging it.
			i := 0
			for i <= q.Cap() && q.Enqueue(v) {
				i++
			}
			if i != q.Cap() {
				panic("queue did not fill at its capacity")
			}
			q.EnqueueBatch(batch)
			for i := 0; i <= q.Cap() && q.DequeueBatch(out) > 0; i++ {
			}
			q.Dequeue()
			_ = q.Len()
		}},
	} {
		if a := testing.AllocsPerRun(100, op.f); a != 0 {
			t.Errorf("%s %s: %v allocations per run, want 0", name, op.name, a)
		}
	}
}

// queueStressItem carries its producer and sequence number, and a pointer so that
// the slot-zeroing path runs under the race detector too.
type queueStressItem struct {
	producer, seq int32
	origin        *int32 // points at the producer's id
}

// stressQueue runs producers goroutines that each offer perProducer items to
// q in random batch sizes, and one consumer that takes them out in random
// batch sizes, and checks the delivery contract: every item is either
// delivered exactly once or was refused to its producer (an overflow),
// never both, never neither; and each producer's items arrive in the order
// it offered them. With retry set, producers offer a refused item again
// until it is accepted, so every item must be delivered.
func stressQueue(t *testing.T, q queueAPI[queueStressItem], producers, perProducer int, retry bool) {
	ids := make([]int32, producers)
	overflow := make([][]bool, producers)
	delivered := make([][]bool, producers)
	for p := range producers {
		ids[p] = int32(p)
		overflow[p] = make([]bool, perProducer)
		delivered[p] = make([]bool, perProducer)
	}
	var done atomic.Int32
	var wg sync.WaitGroup
	for p := range producers {
		wg.Go(func() {
			defer done.Add(1)
			rng := rand.New(rand.NewPCG(uint64(p), 1))
			batch := make([]queueStressItem, 0, 16)
			for next := 0; next < perProducer; {
				k := min(1+rng.IntN(16), perProducer-next)
				batch = batch[:0]
				for i := range k {
					batch = append(batch, queueStressItem{int32(p), int32(next + i), &ids[p]})
				}
				var n int
				if k == 1 {
					if q.Enqueue(batch[0]) {
						n = 1
					}
				} else {
					n = q.EnqueueBatch(batch)
				}
				if n == 0 && retry {
					runtime.Gosched()
					continue
				}
				if !retry && n < k {
					for i := n; i < k; i++ {
						overflow[p][next+i] = true
					}
					n = k
					// Let the consumer run, or on two cores a producer
					// may finish before the consumer starts.
					runtime.Gosched()
				}
				next += n
			}
		})
	}

	last := make([]int32, producers)
	for p := range last {
		last[p] = -1
	}
	var errs []string
	take := func(it queueStressItem) {
		if len(errs) > 10 {
			return
		}
		p := it.producer
		switch {
		case p < 0 || int(p) >= producers || it.origin != &ids[p]:
			errs = append(errs, fmt.Sprintf("corrupt item %+v", it))
		case it.seq <= last[p]:
			errs = append(errs, fmt.Sprintf("producer %d: item %d after %d (duplicate or reordered)", p, it.seq, last[p]))
		default:
			last[p] = it.seq
			delivered[p][it.seq] = true
		}
	}
	rng := rand.New(rand.NewPCG(99, 99))
	out := make([]queueStressItem, 16)
	for {
		// Read done before trying, so that an empty result after all
		// producers finished means everything has been taken.
		finished := done.Load() == int32(producers)
		var n int
		if rng.IntN(2) == 0 {
			if it, ok := q.Dequeue(); ok {
				take(it)
				n = 1
			}
		} else {
			n = q.DequeueBatch(out[:1+rng.IntN(len(out))])
			for _, it := range out[:n] {
				take(it)
			}
		}
		if n == 0 {
			if finished {
				break
			}
			runtime.Gosched()
		}
	}
	wg.Wait()
	if q.Len() != 0 {
		errs = append(errs, fmt.Sprintf("Len = %d after draining", q.Len()))
	}
	var nDelivered, nOverflow int
	for p := range producers {
		for i := range perProducer {
			d, o := delivered[p][i], overflow[p][i]
			switch {
			case d && o:
				errs = append(errs, fmt.Sprintf("producer %d item %d delivered but counted as overflow", p, i))
			case !d && !o:
				errs = append(errs, fmt.Sprintf("producer %d item %d lost", p, i))
			case d:
				nDelivered++
			default:
				nOverflow++
			}
			if len(errs) > 10 {
				break
			}
		}
	}
	for _, e := range errs {
		t.Error(e)
	}
	if nDelivered+nOverflow != producers*perProducer && len(errs) == 0 {
		t.Errorf("delivered %d + overflow %d != produced %d", nDelivered, nOverflow, producers*perProducer)
	}
	t.Logf("%d producers x %d items: %d delivered, %d overflowed", producers, perProducer, nDelivered, nOverflow)
}

func queueStressSize() int {
	switch {
	case testing.Short():
		return 5_000
	case raceEnabled:
		return 200_000
	default:
		return 1_000_000
	}
}

func TestSPSCStress(t *testing.T) {
	n := queueStressSize()
	for _, retry := range []bool{false, true} {
		t.Run(fmt.Sprintf("retry=%v", retry), func(t *testing.T) {
			stressQueue(t, queueMust(NewSPSC[queueStressItem](64)), 1, n, retry)
		})
	}
}

func TestMPSCStress(t *testing.T) {
	n := queueStressSize()
	for _, producers := range []int{2, 4} {
		for _, retry := range []bool{false, true} {
			t.Run(fmt.Sprintf("producers=%d/retry=%v", producers, retry), func(t *testing.T) {
				stressQueue(t, queueMust(NewMPSC[queueStressItem](64)), producers, n/producers, retry)
			})
		}
	}
}

// refQueue is the slow reference the fuzzers compare against: a slice with a
// capacity limit.
type refQueue struct {
	items []int
	cap   int
}

func (r *refQueue) enqueue(vs []int) int {
	n := min(len(vs), r.cap-len(r.items))
	r.items = append(r.items, vs[:n]...)
	return n
}

func (r *refQueue) dequeue(out []int) int {
	n := copy(out, r.items)
	r.items = r.items[n:]
	return n
}

// fuzzQueueOps interprets data as a capacity and a sequence of operations,
// applies them to q and to a refQueue, and fails at the first difference.
func fuzzQueueOps(t *testing.T, newQ func(int) (queueAPI[int], error), data []byte) {
	if len(data) == 0 {
		return
	}
	q, err := newQ(1 + int(data[0]%64))
	if err != nil {
		t.Fatal(err)
	}
	ref := &refQueue{cap: q.Cap()}
	next := 1
	in := make([]int, 0, 160)
	out := make([]int, 160)
	for i := 1; i < len(data); i++ {
		op := data[i] & 3
		k := int(data[i] >> 2) // 0..63: a batch size up to twice the largest capacity
		switch op {
		case 0:
			ok := q.Enqueue(next)
			if want := ref.enqueue([]int{next}) == 1; ok != want {
				t.Fatalf("op %d: Enqueue = %v, want %v (len %d cap %d)", i, ok, want, len(ref.items), ref.cap)
			}
			next++
		case 1:
			in = in[:0]
			for j := range k {
				in = append(in, next+j)
			}
			n := q.EnqueueBatch(in)
			if want := ref.enqueue(in); n != want {
				t.Fatalf("op %d: EnqueueBatch(%d) = %d, want %d", i, k, n, want)
			}
			next += k
		case 2:
			v, ok := q.Dequeue()
			var w [1]int
			want := ref.dequeue(w[:]) == 1
			if ok != want || v != w[0] {
				t.Fatalf("op %d: Dequeue = %d, %v; want %d, %v", i, v, ok, w[0], want)
			}
		case 3:
			n := q.DequeueBatch(out[:k])
			want := make([]int, k)
			wn := ref.dequeue(want)
			if n != wn || !slices.Equal(out[:n], want[:wn]) {
				t.Fatalf("op %d: DequeueBatch(%d) = %v, want %v", i, k, out[:n], want[:wn])
			}
		}
		if q.Len() != len(ref.items) {
			t.Fatalf("op %d: Len = %d, want %d", i, q.Len(), len(ref.items))
		}
	}
}

func addQueueSeeds(f *testing.F) {
	f.Add([]byte{0})
	f.Add([]byte{0, 0, 0, 2, 2, 0, 1 | 3<<2, 3 | 3<<2, 2, 3 | 1<<2})
	f.Add([]byte{7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2})
	f.Add([]byte{3, 1 | 3<<2, 3 | 1<<2, 1 | 5<<2, 3 | 8<<2, 0, 1 | 63<<2, 3 | 63<<2})
	f.Add([]byte{15, 1 | 12<<2, 3 | 10<<2, 1 | 12<<2, 2, 3 | 20<<2, 1 | 16<<2, 0, 3 | 1<<2})
	f.Add([]byte{63, 1 | 63<<2, 1 | 63<<2, 0, 3 | 40<<2, 1 | 50<<2, 3 | 63<<2, 3 | 63<<2})
}

func FuzzSPSCOps(f *testing.F) {
	addQueueSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) { fuzzQueueOps(t, queueKinds[0].newInt, data) })
}

func FuzzMPSCOps(f *testing.F) {
	addQueueSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) { fuzzQueueOps(t, queueKinds[1].newInt, data) })
}
