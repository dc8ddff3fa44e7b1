package cluster

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/hashicorp/raft"
)

// failingSink fails like raft's file sink on a full disk: its Close and
// Cancel fail and leave the half-written directory behind.
type failingSink struct {
	raft.SnapshotSink
	dir string
}

func (s *failingSink) Write(p []byte) (int, error) { return 0, errors.New("no space left on device") }
func (s *failingSink) Close() error                { return errors.New("no space left on device") }
func (s *failingSink) Cancel() error               { return errors.New("no space left on device") }
func (s *failingSink) ID() string                  { return "1-2-3" }

type failingStore struct {
	raft.SnapshotStore
	dir string
}

func (s *failingStore) Create(raft.SnapshotVersion, uint64, uint64, raft.Configuration, uint64, raft.Transport) (raft.SnapshotSink, error) {
	tmp := filepath.Join(s.dir, "1-2-3.tmp")
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return nil, err
	}
	os.WriteFile(filepath.Join(tmp, "state.bin"), make([]byte, 1<<16), 0o600)
	return &failingSink{dir: tmp}, nil
}

// TestFailedSnapshotCleansUp: a snapshot that fails, by Close or by
// Cancel, leaves no half-written directory behind and is reported until
// one succeeds; leftovers of an earlier run are removed at start.
func TestFailedSnapshotCleansUp(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "0-1-2.tmp"), 0o700) // from a run that crashed
	s := newWatchedSnapshots(&failingStore{dir: dir}, dir)
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("a leftover of an earlier run is still there: %v", entries)
	}
	for _, end := range []func(raft.SnapshotSink) error{raft.SnapshotSink.Close, raft.SnapshotSink.Cancel} {
		sink, err := s.Create(1, 3, 2, raft.Configuration{}, 1, nil)
		if err != nil {
			t.Fatal(err)
		}
		end(sink)
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Fatalf("a failed snapshot left %v", entries)
		}
		if s.problem() == nil {
			t.Fatal("a failed snapshot is not reported")
		}
	}
}

// failingLogStore refuses writes while full is set.
type failingLogStore struct {
	raft.LogStore
	full bool
}

func (s *failingLogStore) StoreLogs(logs []*raft.Log) error {
	if s.full {
		return errors.New("no space left on device")
	}
	return s.LogStore.StoreLogs(logs)
}

// TestLogStoreFailureReported: a raft log that refuses a write is
// reported until a write succeeds again.
func TestLogStoreFailureReported(t *testing.T) {
	inner := &failingLogStore{LogStore: raft.NewInmemStore(), full: true}
	s := &watchedLogStore{LogStore: inner}
	if err := s.StoreLogs([]*raft.Log{{Index: 1}}); err == nil || s.problem() == nil {
		t.Fatalf("a refused write: %v, reported %v", err, s.problem())
	}
	inner.full = false
	if err := s.StoreLogs([]*raft.Log{{Index: 1}}); err != nil || s.problem() != nil {
		t.Fatalf("a write after space returned: %v, still reported %v", err, s.problem())
	}
}
