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
	acks      acks           // what each follower acknowledged (PushCommit)
	pushes    sync.WaitGroup // pushes and sends ahead in flight
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
	c.pushes.Wait()
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
	d := &drainedPipeline{AppendPipeline: p, answers: make(chan raft.AppendFuture), closed: make(chan struct{}),
		acked: func(f raft.AppendFuture) {
			if f.Error() == nil {
				c.record(id, target, f.Request(), f.Response())
			}
		}}
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
	acked     func(raft.AppendFuture) // told of each answer
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
			d.acked(f)
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

// Pushing the commit index. A follower learns that the leader committed
// an entry with the next AppendEntries the leader sends: the next entry,
// or, when none comes, raft's CommitTimeout later. A follower that must
// apply an entry before it can act on it (sign a checkpoint that holds
// it) waits that long on a quiet cluster. PushCommit sends, at once, the
// request raft would send at its next CommitTimeout: no entry, the
// commit index, and as previous entry the last one the follower has
// acknowledged in this term. It is safe for the reason raft's own is: the
// follower checks the term and that it holds that entry, and commits only
// up to it (clampCommit); a follower of a newer term refuses it.

// acked is the last entry a follower acknowledged, and the header and term
// of the request that carried it (guarded by acks.mu), with the state of
// the pushes to it.
type acked struct {
	header   raft.RPCHeader
	term     uint64
	last     uint64 // index of the last entry the follower holds
	lastTerm uint64
	// carried is the index of the last entry the follower acknowledged
	// in a request that carried it, in term: an entry in its log, where
	// last may be one it holds only in a snapshot (SendAhead).
	carried   uint64
	target    raft.ServerAddress
	pushing   atomic.Bool   // a push to it is in flight
	pushAgain atomic.Uint64 // commit index to push once it returns
	told      atomic.Uint64 // the highest commit index a push delivered
}

// acks records the followers' acknowledgements, by server ID.
type acks struct {
	mu sync.Mutex
	by map[raft.ServerID]*acked
}

// record notes an acknowledged request to follower id.
func (c *Transport) record(id raft.ServerID, target raft.ServerAddress, req *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) {
	if resp == nil || !resp.Success || req == nil {
		return
	}
	last, lastTerm, carried := req.PrevLogEntry, req.PrevLogTerm, uint64(0)
	if n := len(req.Entries); n > 0 {
		last, lastTerm = req.Entries[n-1].Index, req.Entries[n-1].Term
		carried = last
	}
	c.acks.mu.Lock()
	defer c.acks.mu.Unlock()
	if c.acks.by == nil {
		c.acks.by = map[raft.ServerID]*acked{}
	}
	a := c.acks.by[id]
	if a == nil {
		a = &acked{}
		c.acks.by[id] = a
	} else if a.term > req.Term || a.term == req.Term && a.last >= last {
		return
	}
	if a.term != req.Term {
		a.carried = 0
	}
	a.header, a.term, a.last, a.lastTerm, a.target = req.RPCHeader, req.Term, last, lastTerm, target
	a.carried = max(a.carried, carried)
}

// AppendEntries implements raft.Transport, noting what the follower
// acknowledged.
func (c *Transport) AppendEntries(id raft.ServerID, target raft.ServerAddress, args *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) error {
	err := c.Transport.AppendEntries(id, target, args, resp)
	if err == nil {
		c.record(id, target, args, resp)
	}
	return err
}

// PushCommit tells each follower that has acknowledged entry commit, in
// the newest term seen, that the leader committed up to it, unless a push
// told it so already, and returns how many it tells now; it does not wait
// for their answers. The caller must have seen commit committed (a
// leader's FSM applied it).
func (c *Transport) PushCommit(commit uint64) int {
	told := 0
	for _, id := range c.holding(commit) {
		c.acks.mu.Lock()
		a := c.acks.by[id]
		c.acks.mu.Unlock()
		if a.told.Load() >= commit {
			continue // a push told it already (the leader pushes at apply and when it gathers signatures)
		}
		told++
		if !a.pushing.CompareAndSwap(false, true) {
			a.pushAgain.Store(max(a.pushAgain.Load(), commit)) // the push in flight sends it next
			continue
		}
		c.pushes.Add(1)
		go func() {
			defer c.pushes.Done()
			defer a.pushing.Store(false)
			for n := commit; n != 0; n = a.pushAgain.Swap(0) {
				select {
				case <-c.done:
					return
				default:
				}
				c.acks.mu.Lock()
				req := &raft.AppendEntriesRequest{RPCHeader: a.header, Term: a.term, PrevLogEntry: a.last, PrevLogTerm: a.lastTerm, LeaderCommitIndex: min(n, a.last)}
				target := a.target
				c.acks.mu.Unlock()
				resp := new(raft.AppendEntriesResponse)
				if err := c.Transport.AppendEntries(id, target, req, resp); err != nil {
					return
				}
				if resp.Success {
					a.told.Store(max(a.told.Load(), req.LeaderCommitIndex))
				}
			}
		}()
	}
	return told
}

// holding returns the followers that acknowledged entry index in the
// newest term seen.
func (c *Transport) holding(index uint64) []raft.ServerID {
	c.acks.mu.Lock()
	defer c.acks.mu.Unlock()
	var term uint64
	for _, a := range c.acks.by {
		term = max(term, a.term)
	}
	var ids []raft.ServerID
	for id, a := range c.acks.by {
		if a.term == term && a.last >= index {
			ids = append(ids, id)
		}
	}
	return ids
}

// Sending entries ahead. hashicorp/raft's leader writes new entries to its
// own log (an fsync) and only then hands them to replication, so a lone
// write waits for two fsyncs one after the other: the leader's, then a
// follower's. The Raft thesis (section 10.2.1) lets the leader write its
// log in parallel with replicating, as long as it counts itself towards a
// majority only once its write is done. SendAhead does that from outside:
// called as the leader starts writing, it sends the new entries to each
// follower that holds the entry before them in this term, and does not
// wait. The follower writes them while the leader does; when raft's own
// replication sends them after the leader's write, the follower finds them
// there and answers at once. raft still counts a follower only by the
// answers to its own requests, sent after the leader's write returned, so
// an entry is committed only when a majority, the leader among them or
// not, holds it durably. The request is one raft could send itself: this
// term's header, the previous entry the follower acknowledged in it, and
// no commit index; a follower of a newer term refuses it, and one that
// already holds the entries (of this term, so the same) skips them.

// SendAhead sends logs, which the leader is about to write to its own log,
// to each follower that has acknowledged the entry before them in their
// term, and returns how many it sends to; it does not wait for the
// answers. Only a leader may call it, with entries it appends.
//
// That entry must have come to the follower in a request, not in a
// snapshot: hashicorp/raft's follower checks the previous entry of a
// request against its log, or against its last index, so a follower that
// had just installed a snapshot and took entries sent ahead would refuse
// raft's own request for them (its previous entry is the snapshot's, no
// longer its last and not in its log), and raft would walk back and send
// the snapshot again. The entries past a snapshot come from raft.
func (c *Transport) SendAhead(logs []*raft.Log) int {
	if len(logs) == 0 {
		return 0
	}
	prev, term := logs[0].Index-1, logs[0].Term
	type send struct {
		id     raft.ServerID
		target raft.ServerAddress
		req    *raft.AppendEntriesRequest
	}
	var sends []send
	c.acks.mu.Lock()
	for id, a := range c.acks.by {
		if a.term == term && a.last == prev && a.carried == prev {
			sends = append(sends, send{id, a.target, &raft.AppendEntriesRequest{RPCHeader: a.header, Term: term, PrevLogEntry: prev, PrevLogTerm: a.lastTerm, Entries: logs}})
		}
	}
	c.acks.mu.Unlock()
	for _, s := range sends {
		select {
		case <-c.done:
			return 0
		default:
		}
		c.pushes.Add(1)
		go func() {
			defer c.pushes.Done()
			resp := new(raft.AppendEntriesResponse)
			if c.Transport.AppendEntries(s.id, s.target, s.req, resp) == nil {
				c.record(s.id, s.target, s.req, resp)
			}
		}()
	}
	return len(sends)
}
