package filestore

import (
	"log/slog"
	"sync"
)

// SetBootID makes the stores opened from now on believe the machine runs in
// the boot id, as if it had restarted since other stores were opened; the
// returned function restores the real boot id. Tests that use it must not
// run in parallel.
func SetBootID(id [16]byte) (restore func()) {
	old := bootIDFunc
	bootIDFunc = func() [16]byte { return id }
	return func() { bootIDFunc = old }
}

// IndexCovered returns how many leaves the index runs in dir that an open
// would keep say they cover, 0 when there are none. It changes nothing in
// dir.
func IndexCovered(dir string) (uint64, error) {
	key, _, err := (&Store{dir: dir}).readMeta()
	if err != nil {
		return 0, err
	}
	ix := &index{}
	ix.keyTag = keyTagOf(key)
	found, _, err := findTables(dir, ix.keyTag, slog.New(slog.DiscardHandler), false)
	if err != nil {
		return 0, err
	}
	defer closeAll(found)
	keep, _, _ := chooseRuns(found)
	return covered(keep), nil
}

// IndexStats describes the commitment index of an open store.
type IndexStats struct {
	Written     uint64   // entries written into runs since the store was opened
	Reads       uint64   // lookups that read a run since the store was opened
	Runs        []uint64 // the level of each run, oldest leaves first
	Merges      int      // merges of runs under way
	FilterBytes uint64   // the runs' filters in memory
}

// Index returns the statistics of s's index.
func Index(s *Store) IndexStats {
	s.mu.RLock()
	defer s.mu.RUnlock()
	st := IndexStats{Written: s.ix.written, Reads: s.ix.reads.Load(), Merges: len(s.ix.merges)}
	for _, t := range s.ix.runs {
		st.Runs = append(st.Runs, t.level)
		st.FilterBytes += t.filter.bytes()
	}
	return st
}

// HoldSorts makes the sorts of frozen memtables wait until release is
// called; started reports each sort as it begins. Tests that use it must
// not run in parallel.
func HoldSorts() (started <-chan struct{}, release func()) {
	old := sortFrozen
	begun, gate := make(chan struct{}, 16), make(chan struct{})
	sortFrozen = func(r *sortedRun, m *memtable) {
		begun <- struct{}{}
		<-gate
		old(r, m)
	}
	var once sync.Once
	return begun, func() {
		once.Do(func() {
			close(gate)
			sortFrozen = old
		})
	}
}
