package filestore_test

import (
	"math"
	"runtime"
	"testing"

	"github.com/telenotary/telenotary/notary"
	"github.com/telenotary/telenotary/notary/filestore"
)

// heapInUse returns the bytes of heap spans in use after a full collection.
func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// appendFresh appends leaves [from, to) in batches of 2,000.
func appendFresh(t testing.TB, l *notary.Log, from, to int) {
	t.Helper()
	leaves := make([]notary.Leaf, 2000)
	for i := from; i < to; i += len(leaves) {
		batch := leaves[:min(len(leaves), to-i)]
		for j := range batch {
			batch[j] = leafOf(uint64(i + j))
		}
		if _, err := l.Append(batch, nil); err != nil {
			t.Fatal(err)
		}
	}
}

// heapAt appends leaves [from, to) and returns the least and the most heap
// in use seen after each of its last eight batches (16,000 leaves). An
// index merge starts every 4,096 leaves and, with batches of 2,000, ends
// one or two batches later; while it runs it holds a write buffer of up to
// about 1.2 MiB. So some of the eight readings fall inside merges and some
// outside every merge: the least is what the store keeps for good, the
// most is its peak.
func heapAt(t *testing.T, l *notary.Log, from, to int) (least, most uint64) {
	t.Helper()
	appendFresh(t, l, from, to-16_000)
	least = math.MaxUint64
	for i := to - 16_000; i < to; i += 2000 {
		appendFresh(t, l, i, i+2000)
		h := heapInUse()
		least, most = min(least, h), max(most, h)
	}
	return least, most
}

// TestMemoryDoesNotGrowWithTheLog appends 200,000 leaves to a store of
// 50,000 and checks that the heap in use stays where it was.
//
// What the store keeps is fixed in size: the hash cache (2.6 MB), the
// memtable and the frozen run (about 100 KiB at MemtableSize 4096, plus
// 256 KiB of bucket starts) and the log's frontier (a few dozen hashes);
// but for the Bloom filters of the index runs, 10 bits (1.25 bytes) a
// leaf up to 16 MiB a run, outside the Go heap once a filter reaches
// 1 MiB (here they are all smaller: about 250 KiB more at 250,000 leaves).
// What a merge holds while it runs is bounded too (see heapAt).
//
// Measured, with or without -race: the lasting heap grows by about 260
// KiB (the filters), and the peak by about 1.1 MiB, when the readings at
// 50,000 leaves happen to miss a merge's full buffer and those at 250,000
// catch it. The bounds are 1 MiB for the lasting heap, crossed by anything
// that keeps 5 bytes or more per leaf (a map entry per leaf takes over 30), and 2 MiB for the
// peak, crossed by a merge buffer that grows with the table (as it did
// when a merge step buffered all the entries it consumed: 5 MiB more at
// 250,000 leaves).
func TestMemoryDoesNotGrowWithTheLog(t *testing.T) {
	l := openLog(t, openStore(t, t.TempDir(), filestore.Options{MemtableSize: 4096}))
	defer l.Close()
	least0, most0 := heapAt(t, l, 0, 50_000)
	least1, most1 := heapAt(t, l, 50_000, 250_000)
	lasting, peak := int64(least1)-int64(least0), int64(most1)-int64(most0)
	t.Logf("heap in use at 50,000 leaves: %d to %d KiB; at 250,000: %d to %d KiB", least0>>10, most0>>10, least1>>10, most1>>10)
	if lasting >= 1<<20 {
		t.Errorf("lasting heap in use grew by %d KiB over 200,000 leaves, want under 1 MiB", lasting>>10)
	}
	if peak >= 2<<20 {
		t.Errorf("peak heap in use grew by %d KiB over 200,000 leaves, want under 2 MiB", peak>>10)
	}
}

// maxBytesPerLeaf is the product's disk bound: 2 GiB for 10,000,000 leaves.
const maxBytesPerLeaf = (2 << 30) / 10_000_000

// TestDiskBytesPerLeaf checks that a store of 200,000 leaves takes at most
// maxBytesPerLeaf bytes per leaf on disk, counting every file.
func TestDiskBytesPerLeaf(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, openStore(t, dir, filestore.Options{}))
	defer l.Close()
	appendFresh(t, l, 0, 200_000)
	if n := dirBytes(t, dir); n > maxBytesPerLeaf*200_000 {
		t.Fatalf("%d bytes for 200,000 leaves: %.1f bytes per leaf, want at most %d", n, float64(n)/200_000, maxBytesPerLeaf)
	} else {
		t.Logf("%.1f bytes per leaf", float64(n)/200_000)
	}
}

// TestDiskBytesPerLeafWithIndexTables checks the same bound where the
// default options have no index table yet: with a small memtable, at every
// batch, also while a merge writes a new table next to the old one.
func TestDiskBytesPerLeafWithIndexTables(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, openStore(t, dir, filestore.Options{MemtableSize: 4096}))
	defer l.Close()
	worst, merging := 0.0, 0
	const batch = 500
	for size := batch; size <= 100_000; size += batch {
		appendFresh(t, l, size-batch, size)
		if len(tmpFiles(t, dir)) > 0 {
			merging++
		}
		// Once the fixed-size files (meta, head, table headers) are
		// small next to the rest.
		if size < 20_000 {
			continue
		}
		perLeaf := float64(dirBytes(t, dir)) / float64(size)
		worst = max(worst, perLeaf)
		if perLeaf > maxBytesPerLeaf {
			t.Fatalf("%.1f bytes per leaf at %d leaves, want at most %d", perLeaf, size, maxBytesPerLeaf)
		}
	}
	if merging == 0 {
		t.Fatal("no batch ended during an index merge")
	}
	t.Logf("at most %.1f bytes per leaf; %d of 200 batches ended during a merge", worst, merging)
}
