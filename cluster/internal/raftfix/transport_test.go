package raftfix

import (
	"io"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// TestCommitClamp: a follower never learns a commit index past the last
// entry of the request that carries it (the raft bug the fault campaign
// found), and requests within that bound pass unchanged.
func TestCommitClamp(t *testing.T) {
	_, leader := raft.NewInmemTransport("leader")
	addr, inner := raft.NewInmemTransport("follower")
	leader.Connect(addr, inner)
	follower := NewTransport(inner)
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
}

// TestHeartbeatsOnTheMainLoop: over real TCP, a heartbeat reaches raft
// through the consumer channel, which raft's main loop reads, and never
// through a fast-path handler on the transport's own goroutine (the race
// that let a leader stamp a batch with a newer leader's term).
func TestHeartbeatsOnTheMainLoop(t *testing.T) {
	inner, err := raft.NewTCPTransport("127.0.0.1:0", nil, 2, time.Second, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	follower := NewTransport(inner)
	defer follower.Close()
	fastPath := make(chan raft.RPC, 1)
	follower.SetHeartbeatHandler(func(rpc raft.RPC) {
		fastPath <- rpc
		rpc.Respond(&raft.AppendEntriesResponse{Success: true}, nil)
	})
	leader, err := raft.NewTCPTransport("127.0.0.1:0", nil, 2, time.Second, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer leader.Close()

	// The shape the network transport takes for a heartbeat.
	hb := &raft.AppendEntriesRequest{
		RPCHeader: raft.RPCHeader{ID: []byte("leader"), Addr: []byte(leader.LocalAddr())},
		Term:      7,
	}
	errc := make(chan error, 1)
	go func() {
		var resp raft.AppendEntriesResponse
		errc <- leader.AppendEntries("follower", follower.LocalAddr(), hb, &resp)
	}()
	select {
	case rpc := <-follower.Consumer():
		if a, ok := rpc.Command.(*raft.AppendEntriesRequest); !ok || a.Term != 7 || len(a.Entries) != 0 {
			t.Fatalf("consumer got %#v, want the heartbeat", rpc.Command)
		}
		rpc.Respond(&raft.AppendEntriesResponse{Term: 7, Success: true}, nil)
	case rpc := <-fastPath:
		t.Fatalf("the heartbeat went to the fast path: %#v", rpc.Command)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}
