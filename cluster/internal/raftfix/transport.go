package raftfix

import (
	"sync"
	"sync/atomic"

	"github.com/hashicorp/raft"
)

// Transport wraps a raft transport to close two holes in hashicorp/raft
// (v1.7.3, and v1.8.0 still) that the fault campaign found as forks: it
// clamps the commit index of every AppendEntries request to the request's
// last entry (clampCommit), and installs no heartbeat fast path, so
// heartbeats reach raft's main loop through Consumer with every other RPC.
// The package doc and cluster/DESIGN.md say why.
type Transport struct {
	raft.Transport
	consumer  chan raft.RPC
	watch     atomic.Pointer[LeaderWatch] // sees pre-votes first, once raft runs; nil if off
	done      chan struct{}               // closed by Close
	forwarded sync.WaitGroup              // the forwarding goroutine
	closeOnce sync.Once
}

// NewTransport wraps t, which must also support pre-vote and Close (the
// network transports do). It starts the goroutine that passes requests on
// to raft; Close stops it and waits for it.
func NewTransport(t raft.Transport) *Transport {
	c := &Transport{Transport: t, consumer: make(chan raft.RPC), done: make(chan struct{})}
	c.forwarded.Add(1)
	go c.forward()
	return c
}

// SetWatch has w see pre-vote requests before raft does (see
// LeaderWatch.preVoteArriving); nil stops it.
func (c *Transport) SetWatch(w *LeaderWatch) { c.watch.Store(w) }

func (c *Transport) forward() {
	defer c.forwarded.Done()
	in := c.Transport.Consumer()
	for {
		select {
		case rpc := <-in:
			clampCommit(rpc)
			if req, ok := rpc.Command.(*raft.RequestPreVoteRequest); ok {
				if w := c.watch.Load(); w != nil {
					w.preVoteArriving(req)
				}
			}
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
func (c *Transport) Consumer() <-chan raft.RPC { return c.consumer }

// SetHeartbeatHandler implements raft.Transport: it installs no fast path
// (see Transport), so heartbeats reach raft through Consumer.
func (c *Transport) SetHeartbeatHandler(func(rpc raft.RPC)) {
	c.Transport.SetHeartbeatHandler(nil)
}

// RequestPreVote implements raft.WithPreVote.
func (c *Transport) RequestPreVote(id raft.ServerID, target raft.ServerAddress, args *raft.RequestPreVoteRequest, resp *raft.RequestPreVoteResponse) error {
	if w := c.watch.Load(); w != nil {
		w.preVoteSending()
	}
	return c.Transport.(raft.WithPreVote).RequestPreVote(id, target, args, resp)
}

// Close implements raft.WithClose.
func (c *Transport) Close() error {
	c.closeOnce.Do(func() { close(c.done) })
	c.forwarded.Wait()
	if wc, ok := c.Transport.(raft.WithClose); ok {
		return wc.Close()
	}
	return nil
}
