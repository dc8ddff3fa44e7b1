package raftlog

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func open(t testing.TB, dir string) *Store {
	t.Helper()
	s, err := Open(dir, quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// entry is entry i of term, with size bytes of data.
func entry(i, term uint64, size int) *raft.Log {
	data := bytes.Repeat([]byte{byte(i), byte(term)}, size/2)
	return &raft.Log{Index: i, Term: term, Type: raft.LogCommand, Data: data, Extensions: []byte(fmt.Sprint("ext", i)), AppendedAt: time.Unix(1_800_000_000, int64(i))}
}

func store(t testing.TB, s *Store, from, to, term uint64, size int) {
	t.Helper()
	var logs []*raft.Log
	for i := from; i <= to; i++ {
		logs = append(logs, entry(i, term, size))
	}
	if err := s.StoreLogs(logs); err != nil {
		t.Fatal(err)
	}
}

// check says the store holds exactly first..last, entry i of the term
// terms gives it.
func check(t testing.TB, s *Store, first, last uint64, term func(i uint64) uint64, size int) {
	checkSizes(t, s, first, last, term, func(uint64) int { return size })
}

// checkSizes is check with the data size of each entry.
func checkSizes(t testing.TB, s *Store, first, last uint64, term func(i uint64) uint64, size func(i uint64) int) {
	t.Helper()
	if f, _ := s.FirstIndex(); f != first {
		t.Fatalf("first index %d, want %d", f, first)
	}
	if l, _ := s.LastIndex(); l != last {
		t.Fatalf("last index %d, want %d", l, last)
	}
	for i := first; i <= last && last > 0; i++ {
		var got raft.Log
		if err := s.GetLog(i, &got); err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
		want := entry(i, term(i), size(i))
		if got.Index != i || got.Term != want.Term || got.Type != want.Type || !bytes.Equal(got.Data, want.Data) || !bytes.Equal(got.Extensions, want.Extensions) || !got.AppendedAt.Equal(want.AppendedAt) {
			t.Fatalf("entry %d read as %+v", i, got)
		}
	}
	var l raft.Log
	for _, i := range []uint64{first - 1, last + 1} {
		if i == 0 {
			continue
		}
		if err := s.GetLog(i, &l); !errors.Is(err, raft.ErrLogNotFound) {
			t.Fatalf("entry %d outside the log: %v", i, err)
		}
	}
}

func termOne(uint64) uint64 { return 1 }

// TestStoreAndReopen: entries stored are read back, across a reopen and
// across segments; a prefix removed goes with whole segments, a suffix
// removed never comes back, and after everything is removed the log
// starts again anywhere (as after a snapshot install).
func TestStoreAndReopen(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	check(t, s, 0, 0, termOne, 0)
	const size = 1 << 20 // 16 entries fill a segment
	for i := uint64(1); i <= 40; i += 5 {
		store(t, s, i, i+4, 1, size)
	}
	check(t, s, 1, 40, termOne, size)
	segs, _ := filepath.Glob(filepath.Join(dir, "*"+suffix))
	if len(segs) < 3 {
		t.Fatalf("%d segments for 40 MiB of entries", len(segs))
	}
	s.Close()
	s = open(t, dir)
	check(t, s, 1, 40, termOne, size)

	if err := s.DeleteRange(1, 20); err != nil {
		t.Fatal(err)
	}
	check(t, s, 21, 40, termOne, size)
	if after, _ := filepath.Glob(filepath.Join(dir, "*"+suffix)); len(after) >= len(segs) {
		t.Fatalf("removing entries 1-20 left %d segments of %d", len(after), len(segs))
	}
	if err := s.DeleteRange(36, 40); err != nil {
		t.Fatal(err)
	}
	check(t, s, 21, 35, termOne, size)
	term := func(i uint64) uint64 {
		if i > 35 {
			return 2
		}
		return 1
	}
	store(t, s, 36, 37, 2, 100)
	s.Close()
	s = open(t, dir)
	if f, _ := s.FirstIndex(); f > 21 {
		t.Fatalf("first index %d after a reopen, want at most 21", f)
	}
	var l raft.Log
	for i := uint64(21); i <= 35; i++ {
		if err := s.GetLog(i, &l); err != nil || l.Term != 1 {
			t.Fatalf("entry %d: %v %+v", i, err, l)
		}
	}
	for i := uint64(36); i <= 37; i++ {
		if err := s.GetLog(i, &l); err != nil || l.Term != term(i) || len(l.Data) != 100 {
			t.Fatalf("entry %d after the suffix was replaced: %v term %d", i, err, l.Term)
		}
	}
	if last, _ := s.LastIndex(); last != 37 {
		t.Fatalf("last index %d, want 37: removed entries came back", last)
	}

	first, _ := s.FirstIndex()
	if err := s.DeleteRange(first, 37); err != nil {
		t.Fatal(err)
	}
	check(t, s, 0, 0, termOne, 0)
	store(t, s, 500, 502, 3, 10)
	s.Close()
	s = open(t, dir)
	check(t, s, 500, 502, func(uint64) uint64 { return 3 }, 10)
	if err := s.StoreLogs([]*raft.Log{entry(504, 3, 10)}); err == nil {
		t.Fatal("stored entry 504 after 502")
	}
	if err := s.DeleteRange(501, 501); err == nil {
		t.Fatal("removed an entry from the middle")
	}
}

// TestRemovedSuffixStaysRemoved: entries removed from the end and replaced
// by fewer, shorter ones do not come back after a reopen, even where the
// old records' bytes would line up.
func TestRemovedSuffixStaysRemoved(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	store(t, s, 1, 10, 1, 64)
	if err := s.DeleteRange(6, 10); err != nil {
		t.Fatal(err)
	}
	store(t, s, 6, 7, 2, 64) // same sizes: old 8-10 would follow exactly
	s.Close()
	s = open(t, dir)
	check(t, s, 1, 7, func(i uint64) uint64 {
		if i > 5 {
			return 2
		}
		return 1
	}, 64)
}

// lastSegment returns the path of the newest segment in dir.
func lastSegment(t *testing.T, dir string) string {
	segs, _ := filepath.Glob(filepath.Join(dir, "*"+suffix))
	if len(segs) == 0 {
		t.Fatal("no segment")
	}
	return segs[len(segs)-1]
}

// flip flips one bit of the byte at off in the file at path.
func flip(t *testing.T, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x10
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// TestCutShortWrite: a last write a crash cut short (one of its records
// bad, the records of earlier writes sound) ends the log at its first bad
// record; the log takes appends again and keeps them.
func TestCutShortWrite(t *testing.T) {
	for _, bad := range []uint64{5, 7} { // the write's first record, or its last
		t.Run(fmt.Sprint("entry ", bad), func(t *testing.T) {
			dir := t.TempDir()
			s := open(t, dir)
			store(t, s, 1, 4, 1, 64)
			seg := s.segments[0]
			store(t, s, 5, 7, 1, 64) // the write cut short
			off := int64(seg.offsets[bad-1]) + headerSize + 20
			s.Close()
			flip(t, lastSegment(t, dir), off)
			s = open(t, dir)
			check(t, s, 1, bad-1, termOne, 64)
			store(t, s, bad, bad+1, 2, 32)
			s.Close()
			s = open(t, dir)
			checkSizes(t, s, 1, bad+1, func(i uint64) uint64 {
				if i >= bad {
					return 2
				}
				return 1
			}, func(i uint64) int {
				if i >= bad {
					return 32
				}
				return 64
			})
		})
	}
}

// TestDamageRefused: a bad record with a later write after it, or in a
// segment before the last, is damage: Open refuses the directory, naming
// the segment and the entry.
func TestDamageRefused(t *testing.T) {
	t.Run("a later write follows", func(t *testing.T) {
		dir := t.TempDir()
		s := open(t, dir)
		store(t, s, 1, 4, 1, 64)
		store(t, s, 5, 7, 1, 64)
		off := int64(s.segments[0].offsets[2]) + headerSize + 3
		s.Close()
		flip(t, lastSegment(t, dir), off)
		_, err := Open(dir, quiet)
		if !errors.Is(err, ErrCorrupt) || !bytes.Contains([]byte(err.Error()), []byte("entry 3")) {
			t.Fatalf("open: %v", err)
		}
	})
	t.Run("an earlier segment", func(t *testing.T) {
		dir := t.TempDir()
		s := open(t, dir)
		for i := uint64(1); i <= 20; i += 4 {
			store(t, s, i, i+3, 1, 1<<20)
		}
		first := s.segments[0].path
		off := int64(s.segments[0].offsets[len(s.segments[0].offsets)-1]) + 100
		s.Close()
		flip(t, first, off)
		if _, err := Open(dir, quiet); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("open: %v", err)
		}
	})
	t.Run("a gap between segments", func(t *testing.T) {
		dir := t.TempDir()
		s := open(t, dir)
		store(t, s, 1, 2, 1, 10)
		s.Close()
		os.WriteFile(filepath.Join(dir, fmt.Sprintf("%020d%s", 9, suffix)), nil, 0o600)
		if _, err := Open(dir, quiet); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("open: %v", err)
		}
	})
}

// FuzzOpen: whatever a segment file holds, Open either refuses it with
// ErrCorrupt or opens a log whose every entry reads back, and which takes
// the next entry and keeps it.
func FuzzOpen(f *testing.F) {
	var seed []byte
	for i := uint64(1); i <= 3; i++ {
		seed = appendRecord(seed, entry(i, 1, 8), 1)
	}
	f.Add(seed)
	f.Add(append(seed, 0, 0, 0, 9, 1, 2))
	f.Add(seed[:len(seed)-5])
	f.Fuzz(func(t *testing.T, b []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%020d%s", 1, suffix)), b, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := Open(dir, quiet)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("refused without ErrCorrupt: %v", err)
			}
			return
		}
		defer s.Close()
		s.segmentSize = 4096
		first, _ := s.FirstIndex()
		last, _ := s.LastIndex()
		var l raft.Log
		for i := first; i <= last && last > 0; i++ {
			if err := s.GetLog(i, &l); err != nil || l.Index != i {
				t.Fatalf("entry %d of %d-%d: %v", i, first, last, err)
			}
		}
		if err := s.StoreLogs([]*raft.Log{entry(last+1, 9, 4)}); err != nil {
			t.Fatal(err)
		}
		s.Close()
		s, err = Open(dir, quiet)
		if err != nil {
			t.Fatalf("reopen after an append: %v", err)
		}
		defer s.Close()
		if err := s.GetLog(last+1, &l); err != nil || l.Term != 9 {
			t.Fatalf("the appended entry: %v %+v", err, l)
		}
	})
}

// TestConcurrentUse: raft reads entries (replication) while it appends
// (its main loop) and compacts (its snapshot goroutine); every entry read
// is whole and the one asked for (run with -race).
func TestConcurrentUse(t *testing.T) {
	s := open(t, t.TempDir())
	s.segmentSize = 64 << 10 // many segments, many removed
	const n = 1500
	done := make(chan struct{})
	errs := make(chan error, 3)
	go func() { // appender
		defer close(done)
		for i := uint64(1); i <= n; i += 3 {
			if err := s.StoreLogs([]*raft.Log{entry(i, 1, 100), entry(i+1, 1, 100), entry(i+2, 1, 100)}); err != nil {
				errs <- err
				return
			}
		}
	}()
	go func() { // compactor
		for {
			select {
			case <-done:
				errs <- nil
				return
			default:
			}
			first, _ := s.FirstIndex()
			last, _ := s.LastIndex()
			if last > first+200 {
				if err := s.DeleteRange(first, last-100); err != nil {
					errs <- err
					return
				}
			}
		}
	}()
	go func() { // reader
		var l raft.Log
		for {
			select {
			case <-done:
				errs <- nil
				return
			default:
			}
			last, _ := s.LastIndex()
			if last < 10 {
				continue
			}
			i := last - 5
			if err := s.GetLog(i, &l); err != nil {
				if errors.Is(err, raft.ErrLogNotFound) {
					continue
				}
				errs <- err
				return
			}
			if l.Index != i || len(l.Data) != 100 || l.Data[0] != byte(i) {
				errs <- fmt.Errorf("entry %d read as %d with %d bytes", i, l.Index, len(l.Data))
				return
			}
		}
	}()
	<-done
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
	last, _ := s.LastIndex()
	if last != n {
		t.Fatalf("last index %d, want %d", last, n)
	}
}

// BenchmarkStoreLogs: one entry of 300 bytes a write, synced, as a
// leader with one client appends; against raft-boltdb, raft's log before.
func BenchmarkStoreLogs(b *testing.B) {
	stores := map[string]func(dir string) (raft.LogStore, func()){
		"segments": func(dir string) (raft.LogStore, func()) {
			s, err := Open(dir, quiet)
			if err != nil {
				b.Fatal(err)
			}
			return s, func() { s.Close() }
		},
		"raft-boltdb": func(dir string) (raft.LogStore, func()) {
			s, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(dir, "raft.db")})
			if err != nil {
				b.Fatal(err)
			}
			return s, func() { s.Close() }
		},
	}
	for _, name := range []string{"segments", "raft-boltdb"} {
		b.Run(name, func(b *testing.B) {
			s, closeStore := stores[name](b.TempDir())
			defer closeStore()
			i := uint64(0)
			for b.Loop() {
				i++
				if err := s.StoreLogs([]*raft.Log{entry(i, 1, 300)}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
