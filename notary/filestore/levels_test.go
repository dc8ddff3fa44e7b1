package filestore_test

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/telenotary/telenotary/notary"
	"github.com/telenotary/telenotary/notary/filestore"
)

// TestMergesRewriteEachEntryLogTimes appends 256 memtables of leaves and
// counts the entries the flushes and merges write: with levels, each entry
// is written once per level, about log4(256)+1 = 5 times; rewriting one
// table at every flush, as the index did before, writes 128 times the
// leaves (the sum of 1..256 memtables).
func TestMergesRewriteEachEntryLogTimes(t *testing.T) {
	const memtable, flushes = 256, 256
	const n = memtable * flushes
	s := openStore(t, t.TempDir(), filestore.Options{MemtableSize: memtable})
	l := openLog(t, s)
	defer l.Close()
	appendFresh(t, l, 0, n)
	st := filestore.Index(s)
	levels := math.Log(flushes) / math.Log(4)
	perLeaf := float64(st.Written) / n
	t.Logf("%d leaves: %d entries written (%.2f a leaf), runs at levels %v, %d merges under way, filters %d bytes",
		n, st.Written, perLeaf, st.Runs, st.Merges, st.FilterBytes)
	if perLeaf > levels+2 {
		t.Errorf("%.2f entries written a leaf over %d flushes, want at most log4(flushes)+2 = %.1f", perLeaf, flushes, levels+2)
	}
	if perLeaf < 1 {
		t.Errorf("%.2f entries written a leaf: not every leaf reached a run", perLeaf)
	}
	if len(st.Runs) > 4*(int(levels)+2) {
		t.Errorf("%d runs, want at most %d (fewer than 4 a level)", len(st.Runs), 4*(int(levels)+2))
	}
}

// TestLookupsReadFewRuns: with many runs on disk, a lookup of an absent
// commitment reads a run only on a false positive of that run's filter
// (about 1% each), and one of a logged commitment reads about one run.
// The filters grow with the runs, about 10 bits a key, where one filter of
// a fixed size thins out as the log grows.
func TestLookupsReadFewRuns(t *testing.T) {
	const n = 200_000
	s := openStore(t, t.TempDir(), filestore.Options{MemtableSize: 2048})
	l := openLog(t, s)
	defer l.Close()
	appendFresh(t, l, 0, n)
	st := filestore.Index(s)
	if len(st.Runs) < 4 {
		t.Fatalf("runs at levels %v, want several", st.Runs)
	}
	if perKey := float64(st.FilterBytes*8) / n; perKey < 9 {
		t.Errorf("filters of %d bytes for %d keys: %.1f bits a key, want about 10", st.FilterBytes, n, perKey)
	}
	const probes = 20_000
	reads := st.Reads
	for i := range probes {
		if _, ok, err := s.Find(commitmentOf(n + 1_000_000 + uint64(i))); ok || err != nil {
			t.Fatalf("found an absent commitment: %v %v", ok, err)
		}
	}
	absent := float64(filestore.Index(s).Reads-reads) / probes
	reads = filestore.Index(s).Reads
	for i := range probes {
		k := uint64(i) * (n / probes)
		if at, ok, err := s.Find(commitmentOf(k)); !ok || err != nil || at != k {
			t.Fatalf("Find(leaf %d) = %d, %v, %v", k, at, ok, err)
		}
	}
	present := float64(filestore.Index(s).Reads-reads) / probes
	t.Logf("%d runs (levels %v), filters %.1f bits a key: %.4f run reads per absent lookup, %.4f per present one",
		len(st.Runs), st.Runs, float64(st.FilterBytes*8)/n, absent, present)
	if absent > 0.02*float64(len(st.Runs)) {
		t.Errorf("%.4f run reads per absent lookup over %d runs, want under 2%% a run", absent, len(st.Runs))
	}
	if present > 1.1 {
		t.Errorf("%.4f run reads per present lookup, want about one", present)
	}
}

// TestCrashInsideLevelMerge copies the store's directory (what a killed
// process leaves) while merges of runs into the next level are under way,
// and once such a merge has put its run in place with its inputs added
// back (a kill between the rename and the removal of the inputs), and
// checks each copy opens whole, takes more leaves and opens again whole.
func TestCrashInsideLevelMerge(t *testing.T) {
	opts := filestore.Options{MemtableSize: 64}
	dir := t.TempDir()
	s := openStore(t, dir, opts)
	l := openLog(t, s)
	defer l.Close()
	type snapshot struct {
		name   string
		dir    string
		leaves []notary.Leaf
	}
	var snaps []snapshot
	var leaves []notary.Leaf
	var during string // a copy taken during a level merge
	var duringRuns []string
	gone := func() []string { // the runs of during no longer in dir
		var out []string
		for _, n := range duringRuns {
			if _, err := os.Stat(filepath.Join(dir, n)); os.IsNotExist(err) {
				out = append(out, n)
			}
		}
		return out
	}
	for len(leaves) < 20_000 && len(snaps) < 12 {
		leaves = appendAll(t, l, leaves, leafRange(leafOf, len(leaves), len(leaves)+10), 10)
		if during == "" {
			if filestore.Index(s).Merges > 0 {
				during = copyDir(t, dir)
				duringRuns = runNames(t, during)
				snaps = append(snaps, snapshot{"inside a merge", during, leaves})
			}
		} else if removed := gone(); len(removed) > 0 {
			// A merge has finished and removed its inputs: put them back.
			both := copyDir(t, dir)
			for _, n := range removed {
				copyFile(t, filepath.Join(during, n), filepath.Join(both, n))
			}
			snaps = append(snaps, snapshot{"merged run and its inputs", both, leaves})
			during = ""
		}
	}
	if len(snaps) < 6 {
		t.Fatalf("%d snapshots around level merges after %d leaves", len(snaps), len(leaves))
	}
	for i, sn := range snaps {
		cs := openStore(t, sn.dir, opts)
		cl := openLog(t, cs)
		checkLeaves(t, cs, sn.leaves)
		more := appendAll(t, cl, sn.leaves, leafRange(otherLeaf, 1000*i, 1000*i+700), 50)
		cs, cl = reopenWith(t, cl, sn.dir, opts)
		checkLeaves(t, cs, more)
		checkAbsent(t, cs, leafRange(leafOf, len(sn.leaves), len(sn.leaves)+50))
		if err := cl.Close(); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s at %d leaves: whole", sn.name, len(sn.leaves))
	}
}

// runNames returns the names of the finished index runs in dir.
func runNames(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	for _, n := range tables(t, dir) {
		if !strings.HasSuffix(n, ".tmp") {
			out = append(out, filepath.Base(n))
		}
	}
	return out
}

// TestFreezeDoesNotWaitForTheSort: the commit that fills the memtable
// returns before the frozen memtable is sorted (tens of milliseconds at
// the default size, which every node of a cluster would otherwise spend
// in the same commit); meanwhile every leaf is still found, the frozen
// ones too, and the flush completes once the sort is done.
func TestFreezeDoesNotWaitForTheSort(t *testing.T) {
	const memtable = 1024
	started, release := filestore.HoldSorts()
	defer release()
	s := openStore(t, t.TempDir(), filestore.Options{MemtableSize: memtable})
	l := openLog(t, s)
	defer l.Close()

	// The commits fill the memtable and go on while the sort is held: if
	// a commit waited for the sort, they would not end.
	appended := make(chan error, 1)
	go func() {
		leaves := make([]notary.Leaf, memtable+500)
		for i := range leaves {
			leaves[i] = leafOf(uint64(i))
		}
		var err error
		for len(leaves) > 0 && err == nil {
			n := min(100, len(leaves))
			_, err = l.Append(leaves[:n], nil)
			leaves = leaves[n:]
		}
		appended <- err
	}()
	<-started
	select {
	case err := <-appended:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(time.Minute):
		release()
		t.Fatal("the commits waited for the frozen memtable's sort")
	}
	found := func(from, to int) {
		t.Helper()
		for i := from; i < to; i++ {
			at, ok, err := l.Find(commitmentOf(uint64(i)))
			if err != nil || !ok || at != uint64(i) {
				t.Fatalf("leaf %d: found at %d, %v, %v", i, at, ok, err)
			}
		}
	}
	found(0, memtable+500)
	if st := filestore.Index(s); len(st.Runs) != 0 || st.Written != 0 {
		t.Fatalf("runs %v, %d entries written before the sort ended", st.Runs, st.Written)
	}

	release()
	appendFresh(t, l, memtable+500, 3*memtable) // finishes the first flush, freezes the second
	found(0, 3*memtable)
	if st := filestore.Index(s); len(st.Runs) < 1 {
		t.Fatalf("runs %v after two freezes", st.Runs)
	}
}
