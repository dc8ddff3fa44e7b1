package raftfix

import (
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// TestPushCommitTellsFollowers: with raft's CommitTimeout at a minute, a
// follower learns that an entry is committed only with the next entry.
// PushCommit tells them at once: after one write on a quiet cluster, both
// followers apply it. An entry no follower has acknowledged is not pushed.
func TestPushCommitTellsFollowers(t *testing.T) {
	rafts, leaderTrans := startLeading(t, raft.NewInmemStore(), func(cfg *raft.Config) { cfg.CommitTimeout = time.Minute })
	leader := rafts[0]
	f := leader.Apply([]byte("quiet"), 10*time.Second)
	if err := f.Error(); err != nil {
		t.Fatal(err)
	}
	idx := f.Index()
	if n := leaderTrans.PushCommit(idx + 1); n != 0 {
		t.Fatalf("an entry no follower holds was pushed to %d followers", n)
	}
	// The follower whose acknowledgement committed the entry cannot know
	// it yet (the other, if it lagged, may have been sent the entry with
	// the commit index already).
	if rafts[1].AppliedIndex() >= idx && rafts[2].AppliedIndex() >= idx {
		t.Fatalf("both followers applied entry %d before anything told them it was committed", idx)
	}
	waitUntil(t, "both followers to acknowledge the entry", func() bool { return len(leaderTrans.holding(idx)) == 2 })
	if n := leaderTrans.PushCommit(idx); n != 2 {
		t.Fatalf("pushed to %d followers, want 2", n)
	}
	waitUntil(t, "both followers to apply the pushed entry", func() bool {
		return rafts[1].AppliedIndex() >= idx && rafts[2].AppliedIndex() >= idx
	})
	// Told once, a follower is not told the same again (the leader pushes
	// when it applies a batch and again when it gathers signatures).
	waitUntil(t, "both pushes to be answered", func() bool {
		leaderTrans.acks.mu.Lock()
		defer leaderTrans.acks.mu.Unlock()
		for _, a := range leaderTrans.acks.by {
			if a.told.Load() < idx {
				return false
			}
		}
		return true
	})
	if n := leaderTrans.PushCommit(idx); n != 0 {
		t.Fatalf("the same commit index pushed again to %d followers told it already", n)
	}
}

// startLeading starts three raft nodes on Transports (startRaftsWith),
// node 0 leading on leaderLogs, and returns them with node 0's Transport
// once node 0 has made a first write and a barrier: each follower has then
// acknowledged entries of this term (the write's commit rode on the
// barrier), which PushCommit and SendAhead both go by.
func startLeading(t *testing.T, leaderLogs raft.LogStore, tune ...func(*raft.Config)) ([]*raft.Raft, *Transport) {
	t.Helper()
	var leaderTrans *Transport
	rafts, _ := startRaftsWith(t, func(tr raft.Transport) raft.Transport {
		w := NewTransport(tr)
		if leaderTrans == nil {
			leaderTrans = w // node 0's, which leads
		}
		return w
	}, leaderLogs, tune...)
	leader := rafts[0]
	waitUntil(t, "node 0 to lead", func() bool { return leader.State() == raft.Leader })
	if err := leader.Apply([]byte("first"), 10*time.Second).Error(); err != nil {
		t.Fatal(err)
	}
	if err := leader.Barrier(10 * time.Second).Error(); err != nil {
		t.Fatal(err)
	}
	return rafts, leaderTrans
}

// waitUntil polls cond until it holds, failing after 10 s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
