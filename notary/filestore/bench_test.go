package filestore_test

import (
	"flag"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/telenotary/telenotary/notary"
	"github.com/telenotary/telenotary/notary/filestore"
)

var (
	benchSync   = flag.Bool("bench.sync", false, "BenchmarkAppend: sync every batch")
	benchLeaves = flag.Int("bench.leaves", 1_000_000, "size of the log the proof benchmarks build")
)

const batchSize = 1000

// BenchmarkAppend appends batches of 1,000 fresh leaves (one op is one
// batch) through the dedup index into one durable store: -benchtime=10000x
// grows it to 10,000,000 leaves. It reports the overall rate, the slowest
// million, disk bytes per leaf and the process's peak RSS.
func BenchmarkAppend(b *testing.B) {
	dir := b.TempDir()
	l := openLog(b, openStore(b, dir, filestore.Options{Sync: *benchSync}))
	defer l.Close()
	leaves := make([]notary.Leaf, batchSize)
	windowStart, slowest := time.Now(), 0.0
	var elapsed time.Duration
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		for j := range leaves {
			leaves[j] = leafOf(uint64(i*batchSize + j))
		}
		start := time.Now()
		b.StartTimer()
		if _, err := l.Append(leaves, nil); err != nil {
			b.Fatal(err)
		}
		elapsed += time.Since(start)
		if n := (i + 1) * batchSize; n%1_000_000 == 0 {
			rate := 1e6 / time.Since(windowStart).Seconds()
			if slowest == 0 || rate < slowest {
				slowest = rate
			}
			b.Logf("%d leaves: %.0f leaves/s over the last million (generation included), peak RSS %d MiB", n, rate, peakRSS()>>20)
			windowStart = time.Now()
		}
	}
	b.StopTimer()
	n := float64(b.N * batchSize)
	b.ReportMetric(n/elapsed.Seconds(), "leaves/s")
	if slowest > 0 {
		b.ReportMetric(slowest, "slowest-million-leaves/s")
	}
	b.ReportMetric(float64(dirBytes(b, dir))/n, "disk-B/leaf")
	b.ReportMetric(float64(peakRSS())/(1<<20), "peak-RSS-MiB")
}

// peakRSS returns the process's peak resident set size in bytes.
func peakRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

func dirBytes(t testing.TB, dir string) int64 {
	t.Helper()
	var total int64
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		info, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		total += info.Size()
	}
	return total
}

// A log of -bench.leaves leaves, built once per process for the read benchmarks.
var (
	bigOnce sync.Once
	bigLog  *notary.Log
	bigDir  string
)

func bigStore(b *testing.B) *notary.Log {
	bigOnce.Do(func() {
		var err error
		if bigDir, err = os.MkdirTemp("", "filestore-bench"); err != nil {
			b.Fatal(err)
		}
		s, err := filestore.Open(filepath.Join(bigDir, "log"), filestore.Options{})
		if err != nil {
			b.Fatal(err)
		}
		if bigLog, err = notary.Open(s); err != nil {
			b.Fatal(err)
		}
		leaves := make([]notary.Leaf, batchSize)
		for i := 0; i < *benchLeaves; i += batchSize {
			for j := range leaves {
				leaves[j] = leafOf(uint64(i + j))
			}
			if _, err := bigLog.Append(leaves[:min(batchSize, *benchLeaves-i)], nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	return bigLog
}

func TestMain(m *testing.M) {
	code := m.Run()
	if bigLog != nil {
		bigLog.Close()
		os.RemoveAll(bigDir)
	}
	os.Exit(code)
}

// BenchmarkInclusionProof proves a random leaf at the full size of a
// -bench.leaves log. Peak RSS covers building the log and proving.
func BenchmarkInclusionProof(b *testing.B) {
	l := bigStore(b)
	size := l.Head().Size
	rng := rand.New(rand.NewPCG(1, 1))
	b.ResetTimer()
	for range b.N {
		if _, err := l.InclusionProof(rng.Uint64N(size), size); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(peakRSS())/(1<<20), "peak-RSS-MiB")
}

// BenchmarkFind looks up commitments in a -bench.leaves log: half present,
// half absent.
func BenchmarkFind(b *testing.B) {
	l := bigStore(b)
	size := l.Head().Size
	rng := rand.New(rand.NewPCG(1, 1))
	b.ResetTimer()
	for i := range b.N {
		x := rng.Uint64N(size)
		if i%2 == 1 {
			x += size // never appended
		}
		if _, found, err := l.Find(commitmentOf(x)); err != nil || found != (i%2 == 0) {
			b.Fatalf("Find(leaf %d) = %v, %v", x, found, err)
		}
	}
}

// BenchmarkScrub scrubs a -bench.leaves log in steps of 500 leaves (one
// tick of the cluster's scrubber at its default 5,000 leaves a second);
// one op is one leaf checked.
func BenchmarkScrub(b *testing.B) {
	l := bigStore(b)
	s := l.NewScrub()
	b.ResetTimer()
	for done := 0; done < b.N; {
		n, err := s.Step(min(500, b.N-done))
		if err != nil {
			b.Fatal(err)
		}
		if n == 0 {
			s = l.NewScrub()
		}
		done += n
	}
}
