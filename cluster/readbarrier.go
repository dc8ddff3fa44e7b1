package cluster

import (
	"context"
	"fmt"

	"github.com/hashicorp/raft"
	"github.com/telenotary/telenotary/cluster/notaryapi"
)

// A consistent read (?consistent=1) is served by the leader after a
// ReadIndex barrier: it notes raft's commit index, confirms with a
// majority that it still leads (raft's VerifyLeader: one round of
// heartbeats, no log write), and waits until its state machine has applied
// every command up to that index. Whatever was acknowledged before the
// read began is then in what it serves. As Raft's ReadIndex requires, the
// commit index counts only once the leader has committed an entry of its
// own term (a raft barrier, once per term): a new leader's may lag the
// writes its predecessor acknowledged. The fault campaign found that.

// maxBarrierScan bounds how many raft entries ReadBarrier looks at to see
// that those between the applied and the commit index carry no command.
const maxBarrierScan = 64

// ReadBarrier returns once this node, confirmed as the leader, has applied
// every command committed when it was called; an error when it does not
// lead (notaryapi.ErrNotLeader), lost its leadership, or ctx ended.
func (n *Node) ReadBarrier(ctx context.Context) error {
	if n.raft.State() != raft.Leader {
		return notaryapi.ErrNotLeader
	}
	// A new leader's commit index may lag what its predecessor committed
	// (and acknowledged) until it commits an entry of its own term: once
	// per term, a raft barrier makes sure it has.
	if term := n.raft.CurrentTerm(); n.readTerm.Load() != term {
		if err := n.raft.Barrier(n.cfg.ApplyTimeout).Error(); err != nil {
			return fmt.Errorf("%w: no entry of this term committed yet: %v", notaryapi.ErrNotLeader, err)
		}
		n.readTerm.Store(term)
	}
	commit := n.raft.CommitIndex()
	if err := n.raft.VerifyLeader().Error(); err != nil {
		return fmt.Errorf("%w: leadership not confirmed: %v", notaryapi.ErrNotLeader, err)
	}
	for {
		applied := n.fsm.appliedNotice()
		if n.caughtUpTo(commit) {
			return nil
		}
		select {
		case <-applied:
		case <-ctx.Done():
			return fmt.Errorf("waiting for the state machine to apply index %d: %w", commit, ctx.Err())
		}
	}
}

// caughtUpTo reports whether the state machine has applied every command
// up to raft index commit: its applied index reached it, or the entries
// after it are raft's own (a new term's no-op), which it never sees.
func (n *Node) caughtUpTo(commit uint64) bool {
	applied := n.fsm.applied.Load()
	if applied >= commit {
		return true
	}
	if commit-applied > maxBarrierScan {
		return false
	}
	for i := commit; i > applied; i-- {
		var l raft.Log
		if err := n.logStore.GetLog(i, &l); err != nil {
			return false // compacted or unreadable: wait for the applies
		}
		if l.Type == raft.LogCommand || l.Type == raft.LogConfiguration {
			return false
		}
	}
	return true
}
