package cluster

import (
	"sync"

	"github.com/hashicorp/raft"
)

// commitClamp wraps the raft transport to enforce, on every AppendEntries
// a follower receives, Raft's rule that a follower's commit index is at
// most the index of the last entry the request carries (PrevLogEntry plus
// its entries), not its own last index.
//
// hashicorp/raft (v1.7.3, and v1.8.0 still) takes min(leaderCommit, own
// last index). A leader may send a request with no entries and a commit
// index past PrevLogEntry (it reads its commit index after choosing what
// to send); a deposed leader that still holds an uncommitted entry of its
// old term at that index then commits and applies it, and its log forks
// from the cluster's. The fault campaign (docs/RELIABILITY.md) saw this
// after a paused leader resumed. Clamping the request is always safe: the
// follower learns the rest of the commit index from the next request.
type commitClamp struct {
	raft.Transport
	consumer  chan raft.RPC
	done      chan struct{}
	closeOnce sync.Once
}

// newCommitClamp wraps t, which must also support pre-vote and Close (the
// network transports do).
func newCommitClamp(t raft.Transport) *commitClamp {
	c := &commitClamp{Transport: t, consumer: make(chan raft.RPC), done: make(chan struct{})}
	go c.forward()
	return c
}

func (c *commitClamp) forward() {
	in := c.Transport.Consumer()
	for {
		select {
		case rpc := <-in:
			clampCommit(rpc)
			select {
			case c.consumer <- rpc:
			case <-c.done:
				return
			}
		case <-c.done:
			return
		}
	}
}

// clampCommit applies the rule to an AppendEntries request.
func clampCommit(rpc raft.RPC) {
	if a, ok := rpc.Command.(*raft.AppendEntriesRequest); ok {
		if last := a.PrevLogEntry + uint64(len(a.Entries)); a.LeaderCommitIndex > last {
			a.LeaderCommitIndex = last
		}
	}
}

// Consumer implements raft.Transport.
func (c *commitClamp) Consumer() <-chan raft.RPC { return c.consumer }

// SetHeartbeatHandler implements raft.Transport.
func (c *commitClamp) SetHeartbeatHandler(cb func(rpc raft.RPC)) {
	if cb == nil {
		c.Transport.SetHeartbeatHandler(nil)
		return
	}
	c.Transport.SetHeartbeatHandler(func(rpc raft.RPC) {
		clampCommit(rpc)
		cb(rpc)
	})
}

// RequestPreVote implements raft.WithPreVote.
func (c *commitClamp) RequestPreVote(id raft.ServerID, target raft.ServerAddress, args *raft.RequestPreVoteRequest, resp *raft.RequestPreVoteResponse) error {
	return c.Transport.(raft.WithPreVote).RequestPreVote(id, target, args, resp)
}

// Close implements raft.WithClose.
func (c *commitClamp) Close() error {
	c.closeOnce.Do(func() { close(c.done) })
	if wc, ok := c.Transport.(raft.WithClose); ok {
		return wc.Close()
	}
	return nil
}
