package filestore

import (
	"math/rand/v2"
	"testing"
)

// BenchmarkFreeze sorts a full default memtable into a run: the work a
// goroutine does beside the commits when a memtable fills (the commit
// that fills it took this pause before the sort moved off its path).
func BenchmarkFreeze(b *testing.B) {
	m := newMemtable(DefaultMemtableSize)
	r := newSortedRun(DefaultMemtableSize)
	rng := rand.New(rand.NewPCG(1, 2))
	for range DefaultMemtableSize {
		m.insert(rng.Uint64())
	}
	b.ResetTimer()
	for range b.N {
		r.fill(m)
	}
}
