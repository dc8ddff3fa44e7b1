package filestore

import (
	"math/rand/v2"
	"testing"
)

// TestFilter checks the filter never forgets a key and, at 10 million
// keys, lets through few that it never saw.
func TestFilter(t *testing.T) {
	if testing.Short() {
		t.Skip("fills a filter with 10 million keys")
	}
	f := newFilter()
	rng := rand.New(rand.NewPCG(3, 4))
	const n = 10_000_000
	keys := make([]uint64, 1000)
	for i := range n {
		k := rng.Uint64()
		f.add(k)
		if i < len(keys) {
			keys[i] = k
		}
	}
	for _, k := range keys {
		if !f.mayContain(k) {
			t.Fatalf("key %x added but not found", k)
		}
	}
	falsePositives := 0
	const probes = 100_000
	for range probes {
		if f.mayContain(rng.Uint64()) {
			falsePositives++
		}
	}
	if rate := float64(falsePositives) / probes; rate > 0.02 {
		t.Fatalf("false positive rate %.4f at %d keys, want under 2%%", rate, n)
	}
	t.Logf("false positive rate at %d keys: %.4f", n, float64(falsePositives)/probes)
}
