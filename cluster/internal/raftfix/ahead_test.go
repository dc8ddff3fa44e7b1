package raftfix

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// gatedLogStore calls before, when set, at the start of every write.
type gatedLogStore struct {
	raft.LogStore
	before atomic.Pointer[func([]*raft.Log)]
}

func (s *gatedLogStore) StoreLogs(logs []*raft.Log) error {
	if f := s.before.Load(); f != nil {
		(*f)(logs)
	}
	return s.LogStore.StoreLogs(logs)
}

func (s *gatedLogStore) StoreLog(l *raft.Log) error { return s.StoreLogs([]*raft.Log{l}) }

// TestSendAheadWritesWhileTheLeaderDoes: the leader's log store holds its
// write of an entry until both followers hold that entry, which only
// SendAhead can bring about (raft replicates an entry once the leader's
// write returns): without it the wait below gives up and the test fails.
// While the leader's write is held, nothing is committed: not by the
// leader, which counts a follower only by the answers to its own
// requests, nor by a follower, which is sent no commit index ahead. Once
// the write returns, the entry commits as usual.
func TestSendAheadWritesWhileTheLeaderDoes(t *testing.T) {
	gate := &gatedLogStore{LogStore: raft.NewInmemStore()}
	// The followers acknowledge entries of this term first: SendAhead sends
	// only after the entry a follower is known to hold.
	rafts, leaderTrans := startLeading(t, gate)
	leader := rafts[0]
	last := leader.LastIndex()
	waitUntil(t, "both followers to acknowledge the barrier", func() bool { return len(leaderTrans.holding(last)) == 2 })

	if n := leaderTrans.SendAhead([]*raft.Log{{Index: last + 5, Term: 1, Type: raft.LogCommand, Data: []byte("gap")}}); n != 0 {
		t.Fatalf("an entry after a gap was sent ahead to %d followers", n)
	}

	var sentTo, held atomic.Int32
	var committedEarly atomic.Value // a string saying what committed while the leader's write was held
	hold := func(logs []*raft.Log) {
		if len(logs) == 0 || string(logs[len(logs)-1].Data) != "ahead" {
			return
		}
		idx := logs[len(logs)-1].Index
		sentTo.Store(int32(leaderTrans.SendAhead(logs)))
		deadline := time.Now().Add(10 * time.Second)
		for rafts[1].LastIndex() < idx || rafts[2].LastIndex() < idx {
			if time.Now().After(deadline) {
				return // the test fails below: held stays 0
			}
			time.Sleep(time.Millisecond)
		}
		// Both followers hold the entry and have answered the send ahead.
		deadline = time.Now().Add(10 * time.Second)
		for len(leaderTrans.holding(idx)) < 2 && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		for i, r := range rafts {
			if r.CommitIndex() >= idx {
				committedEarly.Store(fmt.Sprintf("node %d (%s)", i, r))
			}
		}
		held.Store(1)
	}
	gate.before.Store(&hold)
	f := leader.Apply([]byte("ahead"), 20*time.Second)
	if err := f.Error(); err != nil {
		t.Fatal(err)
	}
	if n := sentTo.Load(); n != 2 {
		t.Fatalf("sent ahead to %d followers, want 2", n)
	}
	if held.Load() != 1 {
		t.Fatal("the followers did not hold the entry while the leader was writing it")
	}
	if s := committedEarly.Load(); s != nil {
		t.Fatalf("entry committed while the leader's write was held, at %s", s)
	}
	if leader.CommitIndex() < f.Index() {
		t.Fatalf("leader's commit index %d, want at least %d", leader.CommitIndex(), f.Index())
	}
}
