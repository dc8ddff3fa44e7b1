package filestore_test

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/telenotary/telenotary/notary"
	"github.com/telenotary/telenotary/notary/filestore"
	"golang.org/x/mod/sumdb/tlog"
)

// The boots the recovery tests pretend to run in.
var (
	bootA = [16]byte{0: 0xa, 15: 1}
	bootB = [16]byte{0: 0xb, 15: 2}
	bootC = [16]byte{0: 0xc, 15: 3}
)

// setBoot makes the stores opened from now on run in boot id, until the
// test ends.
func setBoot(t *testing.T, id [16]byte) {
	t.Cleanup(filestore.SetBootID(id))
}

// otherLeaf returns leaves distinct from every leafOf, for what is appended
// after a rollback: they land where discarded leaves used to be.
func otherLeaf(i uint64) notary.Leaf { return leafOf(1<<40 + i) }

// copyDir copies the files of a store's directory, open or not, into a new
// directory: what a process killed at that moment leaves on disk, and what
// a machine crash leaves when every write had reached the disk. The LOCK
// file belongs to the process and is not copied.
func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() == "LOCK" {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// tmpFiles lists the index-*.tmp files of dir.
func tmpFiles(t testing.TB, dir string) []string {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "index-*.tmp"))
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// checkLeaves checks that the store holds exactly want, and that Find
// answers each leaf's own index.
func checkLeaves(t testing.TB, s notary.Store, want []notary.Leaf) {
	t.Helper()
	if size := s.Head().Size; size != uint64(len(want)) {
		t.Fatalf("store holds %d leaves, want %d", size, len(want))
	}
	buf := make([]notary.Leaf, 4096)
	for start := 0; start < len(want); start += len(buf) {
		got := buf[:min(len(buf), len(want)-start)]
		if err := s.ReadLeaves(uint64(start), got); err != nil {
			t.Fatal(err)
		}
		for i := range got {
			if got[i] != want[start+i] {
				t.Fatalf("leaf %d is %x, want %x", start+i, got[i].Commitment[:4], want[start+i].Commitment[:4])
			}
		}
	}
	for i, lf := range want {
		j, ok, err := s.Find(lf.Commitment)
		if err != nil {
			t.Fatal(err)
		}
		if !ok || j != uint64(i) {
			t.Fatalf("Find(leaf %d) = %d, %v; want %d, true", i, j, ok, i)
		}
	}
}

// checkAbsent checks that Find knows none of leaves.
func checkAbsent(t testing.TB, s notary.Store, leaves []notary.Leaf) {
	t.Helper()
	for _, lf := range leaves {
		if j, ok, err := s.Find(lf.Commitment); ok || err != nil {
			t.Fatalf("Find(%x) of a leaf not in the log = %d, %v, %v", lf.Commitment[:4], j, ok, err)
		}
	}
}

// appendAll appends leaves through l in batches, with the batch's end as
// app state, and returns the leaves the log now holds (in a new array when
// have shares one with other leaves).
func appendAll(t testing.TB, l *notary.Log, have, leaves []notary.Leaf, batch int) []notary.Leaf {
	t.Helper()
	have = slices.Clip(have)
	for len(leaves) > 0 {
		n := min(batch, len(leaves))
		idx, err := l.Append(leaves[:n], appState(len(have)+n))
		if err != nil {
			t.Fatal(err)
		}
		for i, j := range idx {
			if j != uint64(len(have)+i) {
				t.Fatalf("fresh leaf appended at %d, want %d", j, len(have)+i)
			}
		}
		have = append(have, leaves[:n]...)
		leaves = leaves[n:]
	}
	return have
}

func appState(size int) []byte { return []byte(fmt.Sprintf("applied %d", size)) }

func leafRange(f func(uint64) notary.Leaf, from, to int) []notary.Leaf {
	out := make([]notary.Leaf, 0, to-from)
	for i := from; i < to; i++ {
		out = append(out, f(uint64(i)))
	}
	return out
}

func sameHead(a, b notary.Head) bool {
	return a.Size == b.Size && a.Root == b.Root && bytes.Equal(a.AppState, b.AppState)
}

// recoveryOpts has a tiny memtable, so the unsynced tail holds several
// index merges and the index table covers leaves past the synced head.
var recoveryOpts = filestore.Options{MemtableSize: 64}

const (
	syncedLeaves = 1000 // leaves committed before the Sync
	crashLeaves  = 3000 // leaves committed when the machine crashes
)

// machineCrash is a store's directory as a machine crash in boot A left
// it: leaves [0, syncedLeaves) synced, the rest committed without Sync.
type machineCrash struct {
	dir    string
	synced notary.Head // Head() right after the Sync
	final  notary.Head // Head() at the crash
	leaves []notary.Leaf
}

func newMachineCrash(t *testing.T) machineCrash {
	t.Helper()
	setBoot(t, bootA)
	dir := t.TempDir()
	s := openStore(t, dir, recoveryOpts)
	l := openLog(t, s)
	defer l.Close()
	var mc machineCrash
	mc.leaves = appendAll(t, l, nil, leafRange(leafOf, 0, syncedLeaves), 50)
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	mc.synced = l.Head()
	mc.leaves = appendAll(t, l, mc.leaves, leafRange(leafOf, syncedLeaves, crashLeaves), 50)
	mc.final = l.Head()
	mc.dir = copyDir(t, dir)
	return mc
}

// copy returns the same crash in a directory of its own.
func (mc machineCrash) copy(t *testing.T) machineCrash {
	t.Helper()
	mc.dir = copyDir(t, mc.dir)
	return mc
}

// reopen closes l and opens its store again with recoveryOpts.
func reopen(t *testing.T, l *notary.Log, dir string) (*filestore.Store, *notary.Log) {
	t.Helper()
	return reopenWith(t, l, dir, recoveryOpts)
}

// TestRebootKeepsIntactUnsyncedCommits: after a machine restart, commits
// made without Sync whose bytes all reached the disk are kept, because the
// tail re-hashes to the newest slot's root.
func TestRebootKeepsIntactUnsyncedCommits(t *testing.T) {
	mc := newMachineCrash(t)
	setBoot(t, bootB)
	s := openStore(t, mc.dir, recoveryOpts)
	l := openLog(t, s)
	if h := s.Head(); !sameHead(h, mc.final) {
		t.Fatalf("head after a reboot with the data intact: size %d, want size %d with the crash's root and app state", h.Size, mc.final.Size)
	}
	checkLeaves(t, s, mc.leaves)
	leaves := appendAll(t, l, mc.leaves, leafRange(otherLeaf, 0, 200), 30)
	s, l = reopen(t, l, mc.dir)
	defer l.Close()
	checkLeaves(t, s, leaves)
}

// TestRebootRollsBackDamagedUnsyncedTail: after a machine restart, an
// unsynced tail that does not re-hash to the newest slot's root is
// discarded and the store returns to exactly the synced head; the discarded
// slot never comes back.
func TestRebootRollsBackDamagedUnsyncedTail(t *testing.T) {
	base := newMachineCrash(t)
	// The index table covers leaves of the tail that goes away: the
	// leaves appended after the rollback must still be found.
	if covered, err := filestore.IndexCovered(base.dir); err != nil || covered <= base.synced.Size {
		t.Fatalf("index table covers %d leaves (%v), want more than the %d synced", covered, err, base.synced.Size)
	}
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, dir string, synced notary.Head)
	}{
		{"leaf flipped", func(t *testing.T, dir string, synced notary.Head) {
			flipBytes(t, filepath.Join(dir, "leaves"), int64(synced.Size+7)*notary.LeafSize+10)
		}},
		{"last leaf flipped", func(t *testing.T, dir string, synced notary.Head) {
			flipBytes(t, filepath.Join(dir, "leaves"), crashLeaves*notary.LeafSize-1)
		}},
		{"hashes page zeroed", func(t *testing.T, dir string, synced notary.Head) {
			const page = 4096
			off := (tlog.StoredHashCount(int64(synced.Size))*notary.HashSize + page - 1) / page * page
			zeroRange(t, filepath.Join(dir, "hashes"), off, page)
		}},
		{"leaves truncated", func(t *testing.T, dir string, synced notary.Head) {
			truncate(t, filepath.Join(dir, "leaves"), int64(synced.Size+crashLeaves)/2*notary.LeafSize+30)
		}},
		{"hashes truncated", func(t *testing.T, dir string, synced notary.Head) {
			truncate(t, filepath.Join(dir, "hashes"), tlog.StoredHashCount(int64(synced.Size))*notary.HashSize+100)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mc := base.copy(t)
			tc.damage(t, mc.dir, mc.synced)

			setBoot(t, bootB)
			s := openStore(t, mc.dir, recoveryOpts)
			if h := s.Head(); !sameHead(h, mc.synced) {
				t.Fatalf("head after a reboot with a damaged tail: size %d app state %q, want the synced head: size %d app state %q",
					h.Size, h.AppState, mc.synced.Size, mc.synced.AppState)
			}
			l := openLog(t, s)
			leaves := mc.leaves[:mc.synced.Size]
			checkLeaves(t, s, leaves)
			checkAbsent(t, s, mc.leaves[mc.synced.Size:])

			// A few new leaves, fewer than a memtable: no merge rewrites
			// the index table before the store is opened again.
			leaves = appendAll(t, l, leaves, leafRange(otherLeaf, 0, 5), 5)
			afterRollback := l.Head()
			processCrash := copyDir(t, mc.dir)
			rebootCrash := copyDir(t, mc.dir)
			s, l = reopen(t, l, mc.dir)
			checkLeaves(t, s, leaves)
			checkAbsent(t, s, mc.leaves[mc.synced.Size:])

			// Commits after the rollback are the newest, whatever became
			// of the discarded slots: after a process crash (this boot)...
			ps := openStore(t, processCrash, recoveryOpts)
			if h := ps.Head(); !sameHead(h, afterRollback) {
				t.Fatalf("after a process crash following the rollback: size %d, want %d", h.Size, afterRollback.Size)
			}
			checkLeaves(t, ps, leaves)
			ps.Close()
			// ...and after another reboot with the data intact.
			setBoot(t, bootC)
			rs := openStore(t, rebootCrash, recoveryOpts)
			if h := rs.Head(); !sameHead(h, afterRollback) {
				t.Fatalf("after a reboot following the rollback: size %d, want %d", h.Size, afterRollback.Size)
			}
			checkLeaves(t, rs, leaves)
			rs.Close()

			// The store goes on through many merges.
			leaves = appendAll(t, l, leaves, leafRange(otherLeaf, 5, 1500), 40)
			s, l = reopen(t, l, mc.dir)
			defer l.Close()
			checkLeaves(t, s, leaves)
			checkAbsent(t, s, mc.leaves[mc.synced.Size:])
		})
	}
}

// TestRebootRefusesDamagedSyncedData: damage to what the synced head
// commits is not repaired by a rollback: Open fails with ErrCorrupt and
// changes no file.
func TestRebootRefusesDamagedSyncedData(t *testing.T) {
	base := newMachineCrash(t)
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, dir string, synced notary.Head)
	}{
		{"last synced leaf flipped", func(t *testing.T, dir string, synced notary.Head) {
			flipBytes(t, filepath.Join(dir, "leaves"), int64(synced.Size-1)*notary.LeafSize+20)
		}},
		{"synced border hash flipped", func(t *testing.T, dir string, synced notary.Head) {
			// The last stored hash of a tree is on its right border.
			flipBytes(t, filepath.Join(dir, "hashes"), (tlog.StoredHashCount(int64(synced.Size))-1)*notary.HashSize+3)
		}},
		{"leaves truncated below the synced head", func(t *testing.T, dir string, synced notary.Head) {
			truncate(t, filepath.Join(dir, "leaves"), int64(synced.Size-3)*notary.LeafSize)
		}},
		{"hashes truncated below the synced head", func(t *testing.T, dir string, synced notary.Head) {
			truncate(t, filepath.Join(dir, "hashes"), (tlog.StoredHashCount(int64(synced.Size))-5)*notary.HashSize)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mc := base.copy(t)
			tc.damage(t, mc.dir, mc.synced)
			before := dirDigest(t, mc.dir)
			setBoot(t, bootB)
			s, err := filestore.Open(mc.dir, recoveryOpts)
			if err == nil {
				s.Close()
				t.Fatalf("Open of a store whose synced data is damaged succeeded at size %d", s.Head().Size)
			}
			if !errors.Is(err, notary.ErrCorrupt) {
				t.Fatalf("Open: %v, want ErrCorrupt", err)
			}
			after := dirDigest(t, mc.dir)
			delete(before, "LOCK")
			delete(after, "LOCK")
			if len(after) != len(before) {
				t.Errorf("refused open left files %v, had %v", keys(after), keys(before))
			}
			for name, d := range before {
				if after[name] != d {
					t.Errorf("%s changed by a refused open", name)
				}
			}
		})
	}
}

// TestUnusableIndexTableIsRebuilt: a damaged index run, or one from another
// store, is dropped on open and the leaves it held indexed again from the
// leaves (with those of every run after it): the oldest run, which holds
// most of the entries, and the newest.
func TestUnusableIndexTableIsRebuilt(t *testing.T) {
	// A store whose runs hold other commitments under another key.
	foreignDir := t.TempDir()
	fl := openLog(t, openStore(t, foreignDir, recoveryOpts))
	foreignLeaves := appendAll(t, fl, nil, leafRange(otherLeaf, 0, 2500), 100)
	if err := fl.Close(); err != nil {
		t.Fatal(err)
	}
	foreignTable := indexTables(t, foreignDir)[0]

	// The store to damage, closed.
	baseDir := t.TempDir()
	bl := openLog(t, openStore(t, baseDir, recoveryOpts))
	baseLeaves := appendAll(t, bl, nil, leafRange(leafOf, 0, 2000), 100)
	if err := bl.Close(); err != nil {
		t.Fatal(err)
	}
	if n := len(indexTables(t, baseDir)); n < 3 {
		t.Fatalf("%d index runs, want several", n)
	}

	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, dir, table string)
	}{
		{"header flipped", func(t *testing.T, dir, table string) {
			flipBytes(t, table, 17) // in the count of covered leaves
		}},
		{"magic flipped", func(t *testing.T, dir, table string) {
			flipBytes(t, table, 0)
		}},
		{"filter flipped", func(t *testing.T, dir, table string) {
			flipBytes(t, table, 4096+5)
		}},
		{"truncated", func(t *testing.T, dir, table string) {
			st, err := os.Stat(table)
			if err != nil {
				t.Fatal(err)
			}
			truncate(t, table, st.Size()-16)
		}},
		{"removed", func(t *testing.T, dir, table string) {
			if err := os.Remove(table); err != nil {
				t.Fatal(err)
			}
		}},
		{"foreign table in its place", func(t *testing.T, dir, table string) {
			copyFile(t, foreignTable, table)
		}},
		{"foreign table of a newer generation", func(t *testing.T, dir, table string) {
			copyFile(t, foreignTable, filepath.Join(dir, "index-7fffffffffffffff"))
		}},
	} {
		for _, which := range []string{"oldest", "newest"} {
			t.Run(tc.name+"/"+which, func(t *testing.T) {
				dir := copyDir(t, baseDir)
				leaves := baseLeaves
				tables := indexTables(t, dir)
				table := tables[0]
				if which == "newest" {
					table = tables[len(tables)-1]
				}
				tc.damage(t, dir, table)

				s := openStore(t, dir, recoveryOpts)
				l := openLog(t, s)
				checkLeaves(t, s, leaves)
				checkAbsent(t, s, foreignLeaves)
				leaves = appendAll(t, l, leaves, leafRange(leafOf, 2000, 2600), 100)
				s, l = reopen(t, l, dir)
				defer l.Close()
				checkLeaves(t, s, leaves)
				checkAbsent(t, s, foreignLeaves)
			})
		}
	}
}

// TestLeftoverMergeFileIsRemoved: the temporary table of a merge cut short
// by a crash, and any other index-*.tmp, is removed on open and changes no
// answer.
func TestLeftoverMergeFileIsRemoved(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, recoveryOpts)
	l := openLog(t, s)
	defer l.Close()
	var leaves []notary.Leaf
	for len(leaves) < 500 || len(tmpFiles(t, dir)) == 0 {
		if len(leaves) > 5000 {
			t.Fatal("no index merge under way after 5000 leaves")
		}
		leaves = appendAll(t, l, leaves, leafRange(leafOf, len(leaves), len(leaves)+10), 10)
	}
	crashed := copyDir(t, dir) // killed during a merge
	junk := filepath.Join(crashed, "index-00000000000000ff.tmp")
	if err := os.WriteFile(junk, bytes.Repeat([]byte("junk"), 5000), 0o600); err != nil {
		t.Fatal(err)
	}
	before := tmpFiles(t, crashed)
	if len(before) < 2 {
		t.Fatalf("%d index-*.tmp files before the open, want at least 2", len(before))
	}

	// The open removes them all; the merges it may start (the replay of
	// the leaves past the runs fills memtables) write files of other names.
	cs := openStore(t, crashed, recoveryOpts)
	cl := openLog(t, cs)
	for _, n := range before {
		if _, err := os.Stat(n); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("open left %s (%v)", n, err)
		}
	}
	checkLeaves(t, cs, leaves)
	leaves = appendAll(t, cl, leaves, leafRange(leafOf, len(leaves), len(leaves)+700), 10)
	cs, cl = reopen(t, cl, crashed)
	defer cl.Close()
	checkLeaves(t, cs, leaves)
	checkAbsent(t, cs, leafRange(leafOf, len(leaves), len(leaves)+100))
}

// indexTables returns the paths of the index runs of a closed store, in
// the order of their leaves (the oldest leaves first).
func indexTables(t *testing.T, dir string) []string {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "index-*"))
	if err != nil {
		t.Fatal(err)
	}
	type run struct {
		path string
		from uint64
	}
	var runs []run
	for _, n := range names {
		if strings.HasSuffix(n, ".tmp") {
			continue
		}
		b, err := os.ReadFile(n)
		if err != nil {
			t.Fatal(err)
		}
		runs = append(runs, run{n, binary.LittleEndian.Uint64(b[8+8*6:])}) // the header's from
	}
	if len(runs) == 0 {
		t.Fatalf("no index run in %s", dir)
	}
	slices.SortFunc(runs, func(a, b run) int { return cmp.Compare(a.from, b.from) })
	var out []string
	for _, r := range runs {
		out = append(out, r.path)
	}
	return out
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func truncate(t *testing.T, path string, size int64) {
	t.Helper()
	if err := os.Truncate(path, size); err != nil {
		t.Fatal(err)
	}
}

func zeroRange(t *testing.T, path string, off, n int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil || st.Size() < off+n {
		t.Fatalf("%s is too short to zero [%d, %d): %v", path, off, off+n, err)
	}
	if _, err := f.WriteAt(make([]byte, n), off); err != nil {
		t.Fatal(err)
	}
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
