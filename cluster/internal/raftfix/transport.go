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

// AppendEntriesPipeline implements raft.Transport. The pipeline it returns
// always takes the answers of the one underneath, whether raft still reads
// them or not. hashicorp/raft stops reading a pipeline's answers at the
// first refusal (a follower that could not append), while its sending loop
// may send once more before it notices; the network transport's answer
// queue is unbuffered, so that send and the answer it waits behind block
// each other for good, and the follower gets heartbeats but never another
// entry (https://github.com/hashicorp/raft/issues/612).
func (c *Transport) AppendEntriesPipeline(id raft.ServerID, target raft.ServerAddress) (raft.AppendPipeline, error) {
	p, err := c.Transport.AppendEntriesPipeline(id, target)
	if err != nil {
		return nil, err
	}
	d := &drainedPipeline{AppendPipeline: p, answers: make(chan raft.AppendFuture), closed: make(chan struct{})}
	d.drained.Add(1)
	go d.drain()
	return d, nil
}

// drainedPipeline queues the answers of the pipeline it wraps until raft
// reads them or closes the pipeline. The queue holds at most the requests
// raft sent after it stopped reading, which is few: its loop ends at the
// next turn.
type drainedPipeline struct {
	raft.AppendPipeline
	answers   chan raft.AppendFuture
	closed    chan struct{}
	closeOnce sync.Once
	drained   sync.WaitGroup
}

func (d *drainedPipeline) drain() {
	defer d.drained.Done()
	in := d.AppendPipeline.Consumer()
	var queue []raft.AppendFuture
	for {
		var (
			out  chan raft.AppendFuture
			next raft.AppendFuture
		)
		if len(queue) > 0 {
			out, next = d.answers, queue[0]
		}
		select {
		case f := <-in:
			queue = append(queue, f)
		case out <- next:
			queue[0] = nil
			queue = queue[1:]
		case <-d.closed:
			return
		}
	}
}

// Consumer implements raft.AppendPipeline.
func (d *drainedPipeline) Consumer() <-chan raft.AppendFuture { return d.answers }

// Close implements raft.AppendPipeline.
func (d *drainedPipeline) Close() error {
	err := d.AppendPipeline.Close()
	d.closeOnce.Do(func() { close(d.closed) })
	d.drained.Wait()
	return err
}
