package cluster

import (
	"testing"

	"github.com/hashicorp/raft"
)

// TestCommitClamp: a follower never learns a commit index past the last
// entry of the request that carries it (the raft bug the fault campaign
// found), and requests within that bound pass unchanged.
func TestCommitClamp(t *testing.T) {
	_, leader := raft.NewInmemTransport("leader")
	addr, inner := raft.NewInmemTransport("follower")
	leader.Connect(addr, inner)
	follower := newCommitClamp(inner)
	defer follower.Close()
	if _, ok := raft.Transport(follower).(raft.WithPreVote); !ok {
		t.Fatal("the wrapped transport hides pre-vote")
	}
	for _, c := range []struct {
		prev, entries, commit, want uint64
	}{
		{prev: 5, entries: 0, commit: 9, want: 5}, // the bug's request: nothing new, commit past it
		{prev: 5, entries: 2, commit: 9, want: 7},
		{prev: 5, entries: 2, commit: 6, want: 6},
		{prev: 5, entries: 0, commit: 5, want: 5},
		{prev: 0, entries: 0, commit: 0, want: 0},
	} {
		req := &raft.AppendEntriesRequest{Term: 2, PrevLogEntry: c.prev, PrevLogTerm: 1, LeaderCommitIndex: c.commit}
		for i := range c.entries {
			req.Entries = append(req.Entries, &raft.Log{Index: c.prev + 1 + i, Term: 2})
		}
		errc := make(chan error, 1)
		go func() {
			var resp raft.AppendEntriesResponse
			errc <- leader.AppendEntries("follower", addr, req, &resp)
		}()
		rpc := <-follower.Consumer()
		got := rpc.Command.(*raft.AppendEntriesRequest).LeaderCommitIndex
		rpc.Respond(&raft.AppendEntriesResponse{Success: true}, nil)
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		if got != c.want {
			t.Errorf("prev %d + %d entries, leader commit %d: follower sees commit %d, want %d", c.prev, c.entries, c.commit, got, c.want)
		}
	}
	// The heartbeat handler applies the same clamp.
	clampHeartbeat := raft.RPC{Command: &raft.AppendEntriesRequest{PrevLogEntry: 3, LeaderCommitIndex: 8}}
	clampCommit(clampHeartbeat)
	if got := clampHeartbeat.Command.(*raft.AppendEntriesRequest).LeaderCommitIndex; got != 3 {
		t.Errorf("heartbeat-path clamp: %d, want 3", got)
	}
}
