package filestore

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"hash/crc32"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/telenotary/telenotary/notary"
)

// writeLegacyTable writes a table of format 1, as versions before the
// leveled index wrote it: the header (magic, gen, covered, count, base,
// slots, key tag, checksum) and the slots right after it.
func writeLegacyTable(t *testing.T, path string, gen, covered, keyTag uint64, entries []entry) {
	t.Helper()
	slices.SortFunc(entries, compareEntries)
	base := baseFor(uint64(len(entries)))
	var slots []byte
	var next uint64
	for _, e := range entries {
		for pos := max(idealSlot(e.key, base), next); next < pos; next++ {
			slots = append(slots, emptySlot[:]...)
		}
		slots = binary.LittleEndian.AppendUint64(slots, e.key)
		slots = binary.LittleEndian.AppendUint64(slots, e.index+1)
		next++
	}
	hdr := make([]byte, tableHeaderSize)
	copy(hdr, legacyTableMagic)
	for i, v := range []uint64{gen, covered, uint64(len(entries)), base, next, keyTag} {
		binary.LittleEndian.PutUint64(hdr[8+8*i:], v)
	}
	binary.LittleEndian.PutUint32(hdr[56:], crc32.Checksum(hdr[:56], castagnoli))
	if err := os.WriteFile(path, append(hdr, slots...), 0o600); err != nil {
		t.Fatal(err)
	}
}

func legacyLeaf(i uint64) notary.Leaf {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], i)
	return notary.Leaf{Kind: notary.KindConsent, Commitment: notary.Commitment(sha256.Sum256(b[:])), Timestamp: 1795262400000}
}

// TestOpenOldFormatStore opens a store whose index is one table of format
// 1, covering most of its leaves: the open rewrites it as a run of the
// leveled format, says so in the log, and every lookup answers as before,
// also after more leaves and another open.
func TestOpenOldFormatStore(t *testing.T) {
	const size, tableCovers = 5000, 4500
	dir := t.TempDir()
	opts := Options{MemtableSize: 1 << 14} // no run written while the leaves are appended
	s, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	l, err := notary.Open(s)
	if err != nil {
		t.Fatal(err)
	}
	leaves := make([]notary.Leaf, size)
	for i := range leaves {
		leaves[i] = legacyLeaf(uint64(i))
	}
	if _, err := l.Append(leaves, nil); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if names, _ := filepath.Glob(filepath.Join(dir, "index-*")); len(names) != 0 {
		t.Fatalf("index files %v before the old table is put in", names)
	}
	key, _, err := (&Store{dir: dir}).readMeta()
	if err != nil {
		t.Fatal(err)
	}
	ix := &index{k0: binary.LittleEndian.Uint64(key[:8]), k1: binary.LittleEndian.Uint64(key[8:])}
	var entries []entry
	for i, lf := range leaves[:tableCovers] {
		entries = append(entries, entry{key: ix.key(lf.Commitment), index: uint64(i)})
	}
	writeLegacyTable(t, tablePath(dir, 7), 7, tableCovers, keyTagOf(key), entries)

	check := func(s *Store, n int) {
		t.Helper()
		for i, lf := range leaves[:n] {
			if at, ok, err := s.Find(lf.Commitment); err != nil || !ok || at != uint64(i) {
				t.Fatalf("Find(leaf %d) = %d, %v, %v", i, at, ok, err)
			}
		}
		for i := range 200 {
			if _, ok, err := s.Find(legacyLeaf(uint64(1_000_000 + i)).Commitment); ok || err != nil {
				t.Fatalf("found an absent commitment: %v, %v", ok, err)
			}
		}
	}
	var logs bytes.Buffer
	opts.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	s, err = Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "leveled format") {
		t.Errorf("no log line on rewriting the old table; the log says:\n%s", logs.String())
	}
	if len(s.ix.runs) != 1 || s.ix.runs[0].legacy || s.ix.runs[0].covered != tableCovers || s.ix.runs[0].count != tableCovers {
		t.Fatalf("after the open, runs %+v; want one of format 2 covering %d leaves", s.ix.runs, tableCovers)
	}
	names, _ := filepath.Glob(filepath.Join(dir, "index-*"))
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.HasPrefix(b, []byte(legacyTableMagic)) {
			t.Errorf("%s is still of format 1", n)
		}
	}
	check(s, size)
	l, err = notary.Open(s)
	if err != nil {
		t.Fatal(err)
	}
	more := make([]notary.Leaf, 3000)
	for i := range more {
		more[i] = legacyLeaf(uint64(size + i))
	}
	if _, err := l.Append(more, nil); err != nil {
		t.Fatal(err)
	}
	leaves = append(leaves, more...)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	logs.Reset()
	s, err = Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if strings.Contains(logs.String(), "leveled format") {
		t.Errorf("the second open rewrote the index again:\n%s", logs.String())
	}
	check(s, len(leaves))
}
