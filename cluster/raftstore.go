package cluster

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"github.com/telenotary/telenotary/cluster/internal/raftlog"
)

// openRaftStores opens raft's stores in raftDir: its log on segment files
// (raft/log, see package raftlog: one write and one fdatasync an append)
// and its stable state (term, vote) in bbolt (raft/raft.db). A data
// directory whose log is still in raft.db, as nodes before wrote it, has
// it moved to raft/log first.
func openRaftStores(raftDir string, logger *slog.Logger) (*raftlog.Store, *raftboltdb.BoltStore, error) {
	bolt, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(raftDir, "raft.db")})
	if err != nil {
		return nil, nil, fmt.Errorf("%w: raft's stable store: %v", ErrCorruptState, err)
	}
	logDir := filepath.Join(raftDir, "log")
	if err := moveBoltLog(bolt, logDir, logger); err != nil {
		bolt.Close()
		return nil, nil, err
	}
	logs, err := raftlog.Open(logDir, logger)
	if err != nil {
		bolt.Close()
		if errors.Is(err, raftlog.ErrCorrupt) {
			return nil, nil, fmt.Errorf("%w: %v", ErrCorruptState, err)
		}
		return nil, nil, fmt.Errorf("cluster: raft log: %w", err)
	}
	return logs, bolt, nil
}

// moveBoltLog copies the entries of raft's log in bolt to a new segment
// log at logDir, then removes them from bolt. A crash at any point leaves
// the bolt log whole or the segment log whole (raftlog.Import): the next
// start finishes the move.
func moveBoltLog(bolt *raftboltdb.BoltStore, logDir string, logger *slog.Logger) error {
	first, err := bolt.FirstIndex()
	if err != nil {
		return fmt.Errorf("%w: raft's bolt log: %v", ErrCorruptState, err)
	}
	last, err := bolt.LastIndex()
	if err != nil {
		return fmt.Errorf("%w: raft's bolt log: %v", ErrCorruptState, err)
	}
	if last == 0 {
		return nil
	}
	if _, err := os.Stat(logDir); err == nil {
		// Moved before a crash that came before bolt's copy went.
		return bolt.DeleteRange(first, last)
	}
	if err := raftlog.Import(logDir, bolt, first, last, logger); err != nil {
		return fmt.Errorf("cluster: moving raft's log out of raft.db: %w", err)
	}
	logger.Info("moved raft's log out of raft.db into segment files", "entries", last-first+1, "first", first, "last", last)
	return bolt.DeleteRange(first, last)
}
