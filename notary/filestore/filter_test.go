package filestore

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// TestFilter checks that a run's filter, written from sorted keys as a merge
// writes it, never forgets a key and lets through few that it never saw:
// under 2% at the sizes that get 10 bits a key, and a share that the cap on
// a filter's size allows at larger ones.
func TestFilter(t *testing.T) {
	for _, tc := range []struct {
		n       int
		maxRate float64
	}{
		{1_000, 0.02},
		{1 << 20, 0.02},
		{6 << 20, 0.02},
		{16 << 20, 0.05}, // 8 bits a key
	} {
		if testing.Short() && tc.n > 1<<20 {
			continue
		}
		rng := rand.New(rand.NewPCG(3, uint64(tc.n)))
		keys := make([]uint64, tc.n)
		for i := range keys {
			keys[i] = rng.Uint64()
		}
		slices.Sort(keys)
		blocks, hashes := filterShape(uint64(tc.n))
		w := newFilterWriter(blocks, hashes)
		var stored []byte
		for _, k := range keys {
			w.add(k)
			stored, w.buf = append(stored, w.buf...), w.buf[:0]
		}
		w.finish()
		stored = append(stored, w.buf...)
		if uint64(len(stored)) != blocks*filterBlockSize {
			t.Fatalf("%d keys: filter of %d bytes, want %d", tc.n, len(stored), blocks*filterBlockSize)
		}
		f := decodeFilter(stored, hashes)
		defer f.release()
		// The filter built in memory from the same keys is the same.
		g := newFilter(blocks, hashes)
		defer g.release()
		for _, k := range keys {
			g.add(k)
			if !f.mayContain(k) {
				t.Fatalf("%d keys: key %x added but not found", tc.n, k)
			}
		}
		if !slices.Equal(f.words, g.words) {
			t.Fatalf("%d keys: the streamed filter differs from the one built in memory", tc.n)
		}
		falsePositives := 0
		const probes = 100_000
		for range probes {
			if f.mayContain(rng.Uint64()) {
				falsePositives++
			}
		}
		rate := float64(falsePositives) / probes
		t.Logf("%d keys: %d bytes (%.1f bits a key), %d hashes, false positive rate %.4f", tc.n, f.bytes(), float64(f.bytes()*8)/float64(tc.n), hashes, rate)
		if rate > tc.maxRate {
			t.Errorf("%d keys: false positive rate %.4f, want under %.2f", tc.n, rate, tc.maxRate)
		}
		if f.bytes() > filterRunCap {
			t.Errorf("%d keys: filter of %d bytes, more than the cap", tc.n, f.bytes())
		}
	}
}
