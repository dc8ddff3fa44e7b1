package cluster

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
	"github.com/telenotary/telenotary/cluster/notaryapi"
	"github.com/telenotary/telenotary/notary"
)

// What the API (package httpd) asks of a node, besides Status, Ready,
// Join, Remove, Transfer and Subscribe.

// Leader reports whether this node leads and the leader's API base URL
// ("" when no leader is known).
func (n *Node) Leader() (isLeader bool, leaderURL string) {
	return n.raft.State() == raft.Leader, n.leaderURL()
}

// leaderURL returns the leader's API base URL, or "" when unknown.
func (n *Node) leaderURL() string {
	_, id := n.raft.LeaderWithID()
	if id == "" {
		return ""
	}
	if id == raft.ServerID(n.cfg.ID) {
		return n.cfg.HTTPAdvertise
	}
	return n.fsm.memberHTTPAddr(string(id))
}

// Submit logs entries through the group commit (this node must lead) and
// returns their receipts in order, proven into the checkpoint the FSM
// signed after applying them, with the signatures of that many members
// on it (this node's included; 0 or 1: this node's alone); receipts with
// an index below firstNew are of commitments logged before.
func (n *Node) Submit(ctx context.Context, entries []notaryapi.Entry, signatures int) (receipts []*notary.Receipt, firstNew uint64, err error) {
	start := time.Now()
	res, err := n.batcher.submit(ctx, entries, signatures)
	if err != nil {
		return nil, 0, err
	}
	proving := time.Now()
	cp := res.cosigned
	if cp == nil {
		n.metrics.stage("answer", proving.Sub(res.applied))
		if cp = n.fsm.checkpointOf(res.size); cp == nil {
			return nil, 0, fmt.Errorf("%w: no checkpoint yet", notaryapi.ErrNoLeader)
		}
	} else {
		n.metrics.stage("answer", proving.Sub(res.ready))
	}
	if receipts, err = n.receipts(res.indexes, *cp); err != nil {
		return nil, 0, err
	}
	n.metrics.stage("proof", time.Since(proving))
	n.metrics.notarized(res.fresh(), time.Since(start))
	return receipts, res.firstNew, nil
}

// receipts proves each index into cp, the checkpoint the FSM signed
// after the batch that held them (or its latest), and checks each proof
// before it is served. All the receipts of a batch share that checkpoint,
// so the followers sign it once for them all when they are asked to
// cosign.
func (n *Node) receipts(indexes []uint64, cp notary.SignedCheckpoint) ([]*notary.Receipt, error) {
	out := make([]*notary.Receipt, len(indexes))
	err := n.fsm.ReadLog(func(l *notary.Log) error {
		for i, idx := range indexes {
			r, err := l.Receipt(idx, cp)
			if err != nil {
				return err
			}
			out[i] = r
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, r := range out {
		if err := n.fsm.checkServed(r, cp); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// ObserveStage records that a stage of the write path took d (see
// notaryapi.WriteStages); the API times the stages it owns with it.
func (n *Node) ObserveStage(stage string, d time.Duration) { n.metrics.stage(stage, d) }

// Members returns the cluster's identity and members, sorted by ID.
func (n *Node) Members() (clusterID, origin string, members []notaryapi.MemberInfo) {
	g, members := n.fsm.clusterInfo()
	if g != nil {
		clusterID, origin = g.ClusterID, g.Origin
	}
	return clusterID, origin, members
}

// Majority is more than half of the cluster's members.
func (n *Node) Majority() int { return n.fsm.memberCount()/2 + 1 }

// RetiredKeys are the keys members signed with before theirs was
// replaced or they were removed, each with the sizes it signed.
func (n *Node) RetiredKeys() []notaryapi.RetiredKey { return n.fsm.retiredKeys() }

// Time is this node's clock, for the other nodes to compare theirs with.
func (n *Node) Time() time.Time { return n.cfg.Clock() }
