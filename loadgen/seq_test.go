package loadgen

import (
	"math/rand/v2"
	"testing"
)

func TestSeqTrackerBasic(t *testing.T) {
	tr := NewSeqTracker(128)
	steps := []struct {
		seq  uint64
		want SeqResult
	}{
		{0, SeqInOrder}, {1, SeqInOrder}, {3, SeqInOrder}, // 2 missing
		{2, SeqReordered}, {2, SeqDuplicate}, {3, SeqDuplicate},
		{1000, SeqInOrder}, // big jump: the window moves on
		{500, SeqLate},     // far behind: out of the window
		{999, SeqReordered}, {999, SeqDuplicate},
		{1000 - 127, SeqReordered}, // the oldest number still in the window
	}
	for i, s := range steps {
		if got := tr.Add(s.seq); got != s.want {
			t.Fatalf("step %d: Add(%d) = %d, want %d", i, s.seq, got, s.want)
		}
	}
	st := tr.Stats()
	want := SeqStats{Received: 8, Duplicates: 3, Reordered: 4, Late: 1, Next: 1001}
	if st != want {
		t.Fatalf("stats %+v, want %+v", st, want)
	}
	if lost := st.Lost(1001); lost != 993 {
		t.Fatalf("lost %d", lost)
	}
	tr.Reset()
	if tr.Stats() != (SeqStats{}) || tr.Add(5) != SeqInOrder {
		t.Fatal("reset")
	}
}

// refTracker is the obvious implementation: a set of everything seen.
type refTracker struct {
	seen   map[uint64]bool
	window uint64
	st     SeqStats
}

func (r *refTracker) add(seq uint64) {
	switch {
	case seq >= r.st.Next:
		r.st.Next = seq + 1
		r.st.Received++
		r.seen[seq] = true
	case r.st.Next-seq > r.window:
		r.st.Late++
		r.st.Reordered++
		r.st.Received++
	case r.seen[seq]:
		r.st.Duplicates++
	default:
		r.seen[seq] = true
		r.st.Reordered++
		r.st.Received++
	}
}

// TestSeqTrackerRandom compares with the reference on sequences with loss,
// local reordering, duplicates and the odd far-late straggler, across many
// laps of the bitmap.
func TestSeqTrackerRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, window := range []int{64, 256, 4096} {
		tr := NewSeqTracker(window)
		ref := &refTracker{seen: map[uint64]bool{}, window: uint64(tr.Window())}
		var seqs []uint64
		for s := uint64(0); s < 200_000; s++ {
			switch r := rng.IntN(100); {
			case r < 5: // lost
			case r < 8:
				seqs = append(seqs, s, s) // duplicated
			case r < 9 && s > 3*uint64(window):
				seqs = append(seqs, s-uint64(rng.IntN(3*window))) // very late copy
			default:
				seqs = append(seqs, s)
			}
			if rng.IntN(50) == 0 && s > 1000 { // a jump
				s += uint64(rng.IntN(5 * window))
			}
		}
		for i := range seqs { // local reordering
			if j := i + rng.IntN(8); j < len(seqs) && rng.IntN(4) == 0 {
				seqs[i], seqs[j] = seqs[j], seqs[i]
			}
		}
		for _, s := range seqs {
			tr.Add(s)
			ref.add(s)
		}
		if tr.Stats() != ref.st {
			t.Fatalf("window %d: %+v, reference %+v", window, tr.Stats(), ref.st)
		}
	}
}

func TestSeqTrackerAllocs(t *testing.T) {
	tr := NewSeqTracker(0)
	var s uint64
	if n := testing.AllocsPerRun(1000, func() { s += 3; tr.Add(s); tr.Add(s - 1) }); n != 0 {
		t.Fatalf("%v allocations", n)
	}
}

func BenchmarkSeqTrackerAdd(b *testing.B) {
	tr := NewSeqTracker(0)
	b.ReportAllocs()
	for i := uint64(0); b.Loop(); i++ {
		tr.Add(i ^ 1) // pairwise swapped: half in order, half reordered
	}
}
