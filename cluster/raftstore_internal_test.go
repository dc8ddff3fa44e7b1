package cluster

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
)

// TestRaftLogMovesOutOfBolt: a data directory whose raft log is in
// raft.db (as nodes before segment logs wrote it) starts with the same
// entries in raft/log and none left in bolt, its term kept; a second start
// changes nothing, and a start after a crash between the copy and bolt's
// removal finishes the move.
func TestRaftLogMovesOutOfBolt(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	raftDir := t.TempDir()
	bolt, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(raftDir, "raft.db")})
	if err != nil {
		t.Fatal(err)
	}
	var logs []*raft.Log
	for i := uint64(11); i <= 700; i++ {
		logs = append(logs, &raft.Log{Index: i, Term: 3, Type: raft.LogCommand, Data: []byte{byte(i), 1, 2}})
	}
	if err := bolt.StoreLogs(logs); err != nil {
		t.Fatal(err)
	}
	if err := bolt.SetUint64([]byte("CurrentTerm"), 3); err != nil {
		t.Fatal(err)
	}
	bolt.Close()

	check := func(what string) {
		t.Helper()
		seg, bolt, err := openRaftStores(raftDir, quiet)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		defer bolt.Close()
		defer seg.Close()
		first, _ := seg.FirstIndex()
		last, _ := seg.LastIndex()
		if first != 11 || last != 700 {
			t.Fatalf("%s: the segment log holds %d-%d, want 11-700", what, first, last)
		}
		var l raft.Log
		for i := first; i <= last; i++ {
			if err := seg.GetLog(i, &l); err != nil || l.Term != 3 || l.Data[0] != byte(i) {
				t.Fatalf("%s: entry %d: %v %+v", what, i, err, l)
			}
		}
		if bl, _ := bolt.LastIndex(); bl != 0 {
			t.Fatalf("%s: bolt still holds entries up to %d", what, bl)
		}
		if term, err := bolt.GetUint64([]byte("CurrentTerm")); err != nil || term != 3 {
			t.Fatalf("%s: term %d, %v", what, term, err)
		}
	}
	check("first start")
	check("second start")

	// A crash after the rename, before bolt's entries went: put them back.
	bolt, err = raftboltdb.New(raftboltdb.Options{Path: filepath.Join(raftDir, "raft.db")})
	if err != nil {
		t.Fatal(err)
	}
	if err := bolt.StoreLogs(logs); err != nil {
		t.Fatal(err)
	}
	bolt.Close()
	check("after a crash in the middle of the move")
	if _, err := os.Stat(filepath.Join(raftDir, "log.importing")); !os.IsNotExist(err) {
		t.Fatalf("the staging directory is left: %v", err)
	}
}
