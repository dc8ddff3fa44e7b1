package filestore_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/telenotary/telenotary/notary"
	"github.com/telenotary/telenotary/notary/filestore"
)

const baseTime int64 = 1795262400000

// commitmentOf returns a distinct commitment for each i.
func commitmentOf(i uint64) notary.Commitment {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], i)
	return notary.Commitment(sha256.Sum256(b[:]))
}

func leafOf(i uint64) notary.Leaf {
	return notary.Leaf{Kind: notary.KindPrescription, Commitment: commitmentOf(i), Timestamp: baseTime + int64(i/100)}
}

func openStore(t testing.TB, dir string, opts filestore.Options) *filestore.Store {
	t.Helper()
	s, err := filestore.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func openLog(t testing.TB, s notary.Store) *notary.Log {
	t.Helper()
	l, err := notary.Open(s)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// twin runs the same log on the file store and on the memory store.
type twin struct {
	t         *testing.T
	dir       string
	opts      filestore.Options
	file, mem *notary.Log
	fs        *filestore.Store
	next      uint64 // next fresh leaf number
}

func newTwin(t *testing.T, opts filestore.Options) *twin {
	tw := &twin{t: t, dir: t.TempDir(), opts: opts, mem: openLog(t, notary.NewMemoryStore())}
	tw.fs = openStore(t, tw.dir, opts)
	tw.file = openLog(t, tw.fs)
	t.Cleanup(func() { tw.file.Close() })
	return tw
}

// appendRandom appends a batch of fresh leaves mixed with retries of old
// ones and checks both logs agree on every index.
func (tw *twin) appendRandom(rng *rand.Rand, n int) {
	tw.t.Helper()
	leaves := make([]notary.Leaf, n)
	for i := range leaves {
		if tw.next > 0 && rng.IntN(10) == 0 {
			leaves[i] = leafOf(rng.Uint64N(tw.next)) // a retry
		} else {
			leaves[i] = leafOf(tw.next)
			tw.next++
		}
	}
	fi, err := tw.file.Append(leaves, []byte{byte(tw.next)})
	if err != nil {
		tw.t.Fatal(err)
	}
	mi, err := tw.mem.Append(leaves, []byte{byte(tw.next)})
	if err != nil {
		tw.t.Fatal(err)
	}
	for i := range fi {
		if fi[i] != mi[i] {
			tw.t.Fatalf("leaf %d of batch: file store says index %d, memory store %d", i, fi[i], mi[i])
		}
	}
	tw.compareHeads()
}

func (tw *twin) compareHeads() {
	tw.t.Helper()
	fh, mh := tw.file.Head(), tw.mem.Head()
	if fh.Size != mh.Size || fh.Root != mh.Root || !bytes.Equal(fh.AppState, mh.AppState) {
		tw.t.Fatalf("heads differ: file %+v, memory %+v", fh, mh)
	}
}

// compareAll checks every commitment ever made, some never made, and proofs.
func (tw *twin) compareAll(rng *rand.Rand) {
	tw.t.Helper()
	tw.compareHeads()
	for i := range tw.next + 50 {
		c := commitmentOf(i)
		fi, fok, err := tw.file.Find(c)
		if err != nil {
			tw.t.Fatal(err)
		}
		mi, mok, _ := tw.mem.Find(c)
		if fi != mi || fok != mok {
			tw.t.Fatalf("Find(leaf %d): file store %d %v, memory store %d %v", i, fi, fok, mi, mok)
		}
	}
	size := tw.mem.Head().Size
	for range 200 {
		n := 1 + rng.Uint64N(size)
		idx := rng.Uint64N(n)
		fp, err := tw.file.InclusionProof(idx, n)
		if err != nil {
			tw.t.Fatal(err)
		}
		mp, _ := tw.mem.InclusionProof(idx, n)
		if len(fp) != len(mp) {
			tw.t.Fatalf("InclusionProof(%d, %d) lengths differ", idx, n)
		}
		for i := range fp {
			if fp[i] != mp[i] {
				tw.t.Fatalf("InclusionProof(%d, %d) differs", idx, n)
			}
		}
		fl, _ := tw.file.Leaf(idx)
		ml, _ := tw.mem.Leaf(idx)
		if fl != ml {
			tw.t.Fatalf("Leaf(%d): %+v vs %+v", idx, fl, ml)
		}
	}
}

func (tw *twin) reopen() {
	tw.t.Helper()
	if err := tw.file.Close(); err != nil {
		tw.t.Fatal(err)
	}
	tw.fs = openStore(tw.t, tw.dir, tw.opts)
	tw.file = openLog(tw.t, tw.fs)
}

// TestMatchesMemoryStore drives the file store through many index merges
// (a tiny memtable) and reopenings, and checks it answers exactly like the
// memory store.
func TestMatchesMemoryStore(t *testing.T) {
	for _, sync := range []bool{false, true} {
		t.Run(map[bool]string{false: "nosync", true: "sync"}[sync], func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, 2))
			tw := newTwin(t, filestore.Options{MemtableSize: 64, Sync: sync})
			for round := range 6 {
				for range 20 {
					tw.appendRandom(rng, 1+rng.IntN(90))
				}
				tw.compareAll(rng)
				if round%2 == 1 {
					tw.reopen()
					tw.compareAll(rng)
				}
			}
		})
	}
}

func TestEmptyStore(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, filestore.Options{})
	l := openLog(t, s)
	if h := l.Head(); h.Size != 0 || h.Root != notary.EmptyRoot() {
		t.Fatalf("new store head %+v", h)
	}
	if _, ok, err := l.Find(commitmentOf(1)); ok || err != nil {
		t.Fatalf("Find in an empty store: %v %v", ok, err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openLog(t, openStore(t, dir, filestore.Options{}))
	defer l.Close()
	if h := l.Head(); h.Size != 0 || h.Root != notary.EmptyRoot() {
		t.Fatalf("reopened empty store head %+v", h)
	}
}

func TestSecondOpenIsRefused(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, filestore.Options{})
	defer s.Close()
	if _, err := filestore.Open(dir, filestore.Options{}); !errors.Is(err, filestore.ErrLocked) {
		t.Fatalf("second Open: %v, want ErrLocked", err)
	}
}

// dirDigest hashes every file in dir, to show that nothing was touched.
func dirDigest(t *testing.T, dir string) map[string][32]byte {
	t.Helper()
	out := make(map[string][32]byte)
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = sha256.Sum256(b)
	}
	return out
}

// TestCorruptionIsRefusedUntouched damages a closed store in several ways:
// Open must fail with ErrCorrupt and leave every file as it was.
func TestCorruptionIsRefusedUntouched(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, dir string)
	}{
		{"every head slot torn", func(t *testing.T, dir string) {
			flipBytes(t, filepath.Join(dir, "head"), 100, 612, 1124)
		}},
		{"leaves file truncated", func(t *testing.T, dir string) {
			if err := os.Truncate(filepath.Join(dir, "leaves"), 74*10); err != nil {
				t.Fatal(err)
			}
		}},
		{"hashes file truncated", func(t *testing.T, dir string) {
			if err := os.Truncate(filepath.Join(dir, "hashes"), 32*10); err != nil {
				t.Fatal(err)
			}
		}},
		{"stored hash flipped", func(t *testing.T, dir string) {
			// The last stored hash is on the tree's right border.
			st, _ := os.Stat(filepath.Join(dir, "hashes"))
			flipBytes(t, filepath.Join(dir, "hashes"), st.Size()-1)
		}},
		{"meta missing", func(t *testing.T, dir string) {
			if err := os.Remove(filepath.Join(dir, "meta")); err != nil {
				t.Fatal(err)
			}
		}},
		{"meta garbled", func(t *testing.T, dir string) {
			flipBytes(t, filepath.Join(dir, "meta"), 3)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			l := openLog(t, openStore(t, dir, filestore.Options{MemtableSize: 16}))
			for i := range uint64(40) {
				if _, err := l.Append([]notary.Leaf{leafOf(i)}, nil); err != nil {
					t.Fatal(err)
				}
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			tc.damage(t, dir)
			before := dirDigest(t, dir)
			s, err := filestore.Open(dir, filestore.Options{MemtableSize: 16})
			if err == nil {
				_, err = notary.Open(s)
				s.Close()
			}
			if !errors.Is(err, notary.ErrCorrupt) {
				t.Fatalf("open of a damaged store: %v, want ErrCorrupt", err)
			}
			after := dirDigest(t, dir)
			delete(after, "LOCK")
			delete(before, "LOCK")
			for name, d := range before {
				if after[name] != d {
					t.Errorf("%s changed by a refused open", name)
				}
			}
		})
	}
}

func flipBytes(t *testing.T, path string, offsets ...int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, off := range offsets {
		var b [1]byte
		if _, err := f.ReadAt(b[:], off); err != nil {
			t.Fatal(err)
		}
		b[0] ^= 0x55
		if _, err := f.WriteAt(b[:], off); err != nil {
			t.Fatal(err)
		}
	}
}

// TestCheckLeavesFindsDamage: a byte flipped in an old leaf on disk after
// it was appended is found when the leaf is read and checked against the
// leaf hash the log stored, naming the leaf; sound leaves pass.
func TestCheckLeavesFindsDamage(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, openStore(t, dir, filestore.Options{Sync: true}))
	leaves := make([]notary.Leaf, 100)
	for i := range leaves {
		leaves[i] = leafOf(uint64(i))
	}
	if _, err := l.Append(leaves, nil); err != nil {
		t.Fatal(err)
	}
	l.Close()
	flipBytes(t, filepath.Join(dir, "leaves"), 37*notary.LeafSize+notary.LeafSize-1) // leaf 37's timestamp
	l = openLog(t, openStore(t, dir, filestore.Options{Sync: true}))
	defer l.Close()
	got := make([]notary.Leaf, 100)
	if err := l.Leaves(0, got); err != nil {
		t.Fatal(err)
	}
	if err := l.CheckLeaves(0, got[:37]); err != nil {
		t.Fatalf("sound leaves: %v", err)
	}
	err := l.CheckLeaves(30, got[30:])
	if !errors.Is(err, notary.ErrDamaged) || !strings.Contains(err.Error(), "leaf 37 ") {
		t.Fatalf("the damaged leaf: %v, want ErrDamaged naming leaf 37", err)
	}
}
