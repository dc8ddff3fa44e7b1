package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/hashicorp/raft"
	"github.com/telenotary/telenotary/cluster/notaryapi"
	"github.com/telenotary/telenotary/notary"
)

// The node's side of a snapshot install (see snapshot.go): where the FSM
// fetches the leaves it lacks, and the install a crash cut off.

// fetchFaults holds, for tests, the data directories of the nodes whose
// fetches for a snapshot install fail, with the error they fail with.
var fetchFaults sync.Map

// snapshotLeaves is the FSM's leafSource: it pages the leaves [from, to)
// from the members' APIs, this node's aside.
func (n *Node) snapshotLeaves(ctx context.Context, members map[string]notaryapi.MemberInfo, from, to uint64, page func([]notary.Leaf) error) error {
	if err, ok := fetchFaults.Load(n.cfg.DataDir); ok {
		return err.(error)
	}
	var peers []string
	for id, m := range members {
		if id != n.cfg.ID && m.HTTPAddr != "" {
			peers = append(peers, m.HTTPAddr)
		}
	}
	if len(peers) == 0 {
		return errors.New("the snapshot names no other member to fetch its leaves from")
	}
	slices.Sort(peers)
	client := notaryapi.NewClient(notaryapi.ClientConfig{Nodes: peers, HTTPClient: n.forward})
	return n.pageLeaves(ctx, client, "installing a snapshot: fetching the leaves this node lacks", from, to, page)
}

// restoreWait bounds how long a starting node tries to finish a snapshot
// install that a crash cut off.
const restoreWait = time.Minute

// restoreInterrupted installs, before raft starts, the newest snapshot
// raft stored if the FSM is behind it: raft stores a snapshot it receives
// before the FSM installs it, so a crash in between leaves the FSM behind.
// Raft, which does not restore a snapshot when it starts
// (NoSnapshotRestoreOnStart), takes the snapshot's index as applied and
// would apply the entries after it to a log that lacks those before. A
// snapshot that cannot be read is left to the scrub (checkSnapshots).
func (n *Node) restoreInterrupted(ctx context.Context, store raft.SnapshotStore) error {
	metas, err := store.List()
	if err != nil || len(metas) == 0 {
		return err
	}
	id := metas[0].ID
	_, rc, err := store.Open(id)
	if err != nil {
		n.logger.WarnContext(ctx, "cannot read the newest raft snapshot", "snapshot", id, "error", err)
		return nil
	}
	hdr, _, err := readSnapshotHeader(rc)
	rc.Close()
	if err != nil {
		n.logger.WarnContext(ctx, "cannot read the newest raft snapshot", "snapshot", id, "error", err)
		return nil
	}
	index, _, _ := decodeAppState(hdr.AppState)
	if applied := n.fsm.applied.Load(); index <= applied {
		return nil
	}
	n.logger.WarnContext(ctx, "the state machine is behind the snapshot raft stored (an install was cut off): installing it again before raft starts",
		"snapshot", id, "snapshot_applied_index", index, "applied_index", n.fsm.applied.Load())
	ctx, cancel := context.WithTimeout(ctx, restoreWait)
	defer cancel()
	wait := &backoff.ExponentialBackOff{InitialInterval: 100 * time.Millisecond, RandomizationFactor: 0.5, Multiplier: 2, MaxInterval: 5 * time.Second}
	_, err = backoff.Retry(ctx, func() (struct{}, error) {
		_, rc, err := store.Open(id)
		if err != nil {
			return struct{}{}, backoff.Permanent(err)
		}
		err = n.fsm.restore(ctx, rc)
		if err != nil {
			n.logger.WarnContext(ctx, "cannot install the stored snapshot yet", "snapshot", id, "error", err)
		}
		return struct{}{}, err
	}, backoff.WithBackOff(wait), backoff.WithMaxElapsedTime(0))
	if err != nil {
		return fmt.Errorf("the state machine is behind raft's snapshot %s, and installing it failed (start the node again once its peers answer): %w", id, err)
	}
	return nil
}
