package cluster

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	"github.com/telenotary/telenotary/cluster/notaryapi"
)

// Readiness means able to do the job: a node that cannot append to its
// raft log, whose last snapshot failed, whose disk is nearly full, that is
// far behind or has lost its leader says so (/readyz 503 with the reason,
// an alert on /v1/status) instead of answering ready while it cannot
// serve. These are the parts that watch for it.

// watchedLogStore is raft's log store, remembering whether its last write
// failed (a full disk, an I/O error): raft then cannot append, and goes on
// as if nothing were wrong.
type watchedLogStore struct {
	raft.LogStore
	failed atomic.Pointer[error]
	// refuse, when set, fails every write with it: tests use it to make a
	// node's disk refuse raft's appends.
	refuse atomic.Pointer[error]
	// took, when set, is told how long each write took.
	took func(time.Duration)
	// ahead, when set, is handed each write's entries before it starts
	// (a leader sends them to its followers while it writes them).
	ahead atomic.Pointer[func([]*raft.Log)]
}

func (s *watchedLogStore) record(err error) error {
	if err != nil {
		err = fmt.Errorf("cannot append to the raft log: %w", err)
		s.failed.Store(&err)
	} else {
		s.failed.Store(nil)
	}
	return err
}

// IsMonotonic implements raft.MonotonicLogStore for the store it watches.
func (s *watchedLogStore) IsMonotonic() bool {
	m, ok := s.LogStore.(raft.MonotonicLogStore)
	return ok && m.IsMonotonic()
}

// StoreLog implements raft.LogStore.
func (s *watchedLogStore) StoreLog(l *raft.Log) error { return s.StoreLogs([]*raft.Log{l}) }

// StoreLogs implements raft.LogStore.
func (s *watchedLogStore) StoreLogs(logs []*raft.Log) error {
	if p := s.refuse.Load(); p != nil {
		return s.record(*p)
	}
	if f := s.ahead.Load(); f != nil {
		(*f)(logs)
	}
	start := time.Now()
	err := s.LogStore.StoreLogs(logs)
	if s.took != nil {
		s.took(time.Since(start))
	}
	return s.record(err)
}

// problem returns why writes fail, or nil.
func (s *watchedLogStore) problem() error {
	if p := s.failed.Load(); p != nil {
		return *p
	}
	return nil
}

// snapshotTemp is the suffix of a snapshot raft is writing.
const snapshotTemp = ".tmp"

// watchedSnapshots is raft's snapshot store, remembering whether the last
// snapshot failed, and removing what a failed one leaves behind: raft's
// file store keeps a half-written directory when it cannot flush it (a
// full disk), and every retry would leave another.
type watchedSnapshots struct {
	raft.SnapshotStore
	dir    string // where the store keeps its snapshots
	failed atomic.Pointer[error]
}

// newWatchedSnapshots wraps store, whose snapshots live in dir, and removes
// what failed snapshots of an earlier run left there.
func newWatchedSnapshots(store raft.SnapshotStore, dir string) *watchedSnapshots {
	s := &watchedSnapshots{SnapshotStore: store, dir: dir}
	s.removeTemps()
	return s
}

// removeTemps removes half-written snapshots.
func (s *watchedSnapshots) removeTemps() {
	entries, _ := os.ReadDir(s.dir)
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), snapshotTemp) {
			os.RemoveAll(filepath.Join(s.dir, e.Name()))
		}
	}
}

// Create implements raft.SnapshotStore.
func (s *watchedSnapshots) Create(version raft.SnapshotVersion, index, term uint64, configuration raft.Configuration,
	configurationIndex uint64, trans raft.Transport) (raft.SnapshotSink, error) {
	sink, err := s.SnapshotStore.Create(version, index, term, configuration, configurationIndex, trans)
	if err != nil {
		s.removeTemps()
		return nil, s.fail(err)
	}
	return &watchedSink{SnapshotSink: sink, store: s}, nil
}

func (s *watchedSnapshots) fail(err error) error {
	err = fmt.Errorf("the last snapshot failed: %w", err)
	s.failed.Store(&err)
	return err
}

// problem returns why the last snapshot failed, or nil.
func (s *watchedSnapshots) problem() error {
	if p := s.failed.Load(); p != nil {
		return *p
	}
	return nil
}

// watchedSink cleans up after a snapshot that fails however it fails.
type watchedSink struct {
	raft.SnapshotSink
	store *watchedSnapshots
}

// Close implements raft.SnapshotSink.
func (k *watchedSink) Close() error {
	if err := k.SnapshotSink.Close(); err != nil {
		k.store.removeTemps()
		return k.store.fail(err)
	}
	k.store.failed.Store(nil)
	return nil
}

// Cancel implements raft.SnapshotSink.
func (k *watchedSink) Cancel() error {
	err := k.SnapshotSink.Cancel()
	k.store.removeTemps()
	k.store.fail(errors.New("canceled (see the node's log)"))
	return err
}

// notReady says why the node cannot do its job now, or nil. A leader must
// have passed its barrier, may stamp (the time guard), and have room on
// its disk; a follower must know a leader and the cluster, have heard from
// the leader lately and not be far behind; every node must be able to
// append to its raft log, have no failed snapshot and no damaged data.
func (n *Node) notReady() error {
	if errp := n.fsm.damaged.Load(); errp != nil {
		return *errp
	}
	if errp := n.fsm.stalled.Load(); errp != nil {
		return *errp
	}
	if err := n.logStore.problem(); err != nil {
		return fmt.Errorf("%w: %w", notaryapi.ErrNoLeader, err)
	}
	if err := n.snapshots.problem(); err != nil {
		return fmt.Errorf("%w: %w", notaryapi.ErrNoLeader, err)
	}
	if err := n.diskRoom(); err != nil {
		return err
	}
	if n.raft.State() == raft.Leader {
		if !n.ready.Load() {
			return fmt.Errorf("%w: a new leader, not yet caught up", notaryapi.ErrNoLeader)
		}
		return n.clock.check(n.fsm.lastTime.Load())
	}
	_, leader := n.raft.LeaderWithID()
	g, _ := n.fsm.clusterInfo()
	switch {
	case leader == "":
		return fmt.Errorf("%w: this node knows no leader", notaryapi.ErrNoLeader)
	case g == nil:
		return fmt.Errorf("%w: this node does not know the cluster's identity yet", notaryapi.ErrNoLeader)
	}
	if silent := time.Since(n.raft.LastContact()); silent > 3*n.cfg.HeartbeatTimeout {
		return fmt.Errorf("%w: no word from the leader for %v", notaryapi.ErrNoLeader, silent.Round(time.Millisecond))
	}
	if applied, commit := n.fsm.applied.Load(), n.raft.CommitIndex(); commit > applied+n.cfg.MaxLag {
		return fmt.Errorf("%w: %d raft entries behind the leader (at most %d)", notaryapi.ErrNoLeader, commit-applied, n.cfg.MaxLag)
	}
	return nil
}

// diskRoom says whether the data directory's file system has the room a
// node needs (MinFreeDisk); with less, a leader refuses writes before a
// write fails halfway.
func (n *Node) diskRoom() error {
	free, err := freeBytes(n.cfg.DataDir)
	if err != nil {
		return nil // cannot tell: the writes will say
	}
	if free < n.cfg.MinFreeDisk {
		return fmt.Errorf("%w: %d MiB free on the data directory's disk, below the %d MiB a node keeps free", notaryapi.ErrDiskLow, free>>20, n.cfg.MinFreeDisk>>20)
	}
	return nil
}

// admit says whether the leader may stamp a batch now, the log's newest
// leaf stamped lastMillis: its clock agrees with the cluster's, its disk
// has room and its raft log takes writes.
func (n *Node) admit(lastMillis int64) error {
	if err := n.clock.check(lastMillis); err != nil {
		return err
	}
	if err := n.diskRoom(); err != nil {
		return err
	}
	if err := n.logStore.problem(); err != nil {
		return fmt.Errorf("%w: %w", notaryapi.ErrNoLeader, err)
	}
	return nil
}
