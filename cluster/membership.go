package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/hashicorp/raft"
	"github.com/telenotary/telenotary/cluster/httpapi"
	"github.com/telenotary/telenotary/cluster/notaryapi"
)

// Join adds a voter, deduplicated by ID and by address: the same ID at the
// same address is already in; the same ID or the same address with the
// other changed replaces the old entry. Only the leader can do it.
func (n *Node) Join(ctx context.Context, req notaryapi.JoinRequest) (*notaryapi.JoinResponse, error) {
	m := req.Member
	if err := m.Validate(); err != nil {
		return nil, err
	}
	if n.raft.State() != raft.Leader {
		return nil, notaryapi.ErrNotLeader
	}
	g, _ := n.fsm.clusterInfo()
	if g == nil {
		return nil, fmt.Errorf("%w: the cluster has no genesis yet", notaryapi.ErrNoLeader)
	}
	if req.ClusterID != g.ClusterID {
		return nil, fmt.Errorf("%w: %s asks to join cluster %q, this is cluster %s", notaryapi.ErrWrongCluster, m.ID, req.ClusterID, g.ClusterID)
	}
	// Check the key before raft hears of the node (the FSM checks again).
	if err := checkKeyProof(g.ClusterID, m, req.KeyProof); err != nil {
		return nil, err
	}
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, raftError(err)
	}
	present := false
	for _, s := range f.Configuration().Servers {
		sameID, sameAddr := s.ID == raft.ServerID(m.ID), s.Address == raft.ServerAddress(m.RaftAddr)
		switch {
		case sameID && sameAddr:
			present = true
		case sameID || sameAddr:
			if s.ID == raft.ServerID(n.cfg.ID) {
				return nil, httpapi.Field("raft_addr", "is this leader's own address or ID")
			}
			if err := n.raft.RemoveServer(s.ID, 0, n.cfg.ApplyTimeout).Error(); err != nil {
				return nil, raftError(err)
			}
			n.forget(string(s.ID))
		}
	}
	if !present {
		if err := n.raft.AddVoter(raft.ServerID(m.ID), raft.ServerAddress(m.RaftAddr), 0, n.cfg.ApplyTimeout).Error(); err != nil {
			return nil, raftError(err)
		}
	}
	if err := n.propose(encodeJSONCommand(cmdMember, memberCommand{Member: m, KeyProof: req.KeyProof})); err != nil {
		return nil, err
	}
	n.events.cluster(notaryapi.ChangeJoined, m.ID)
	g, members := n.fsm.clusterInfo()
	return &notaryapi.JoinResponse{ClusterID: g.ClusterID, Origin: g.Origin, Members: members}, nil
}

// Rekey replaces a member's signing key (an operator action): the
// request's member is the member's record with only the new verifier key
// changed, proven by a signature of the new key (req.KeyProof). The old key
// is retired at the log's size: it still vouches for the checkpoints it
// signed up to there, and for no larger one. Only the leader can do it.
func (n *Node) Rekey(ctx context.Context, req notaryapi.JoinRequest) error {
	m := req.Member
	if err := m.Validate(); err != nil {
		return err
	}
	if n.raft.State() != raft.Leader {
		return notaryapi.ErrNotLeader
	}
	g, members := n.fsm.clusterInfo()
	if g == nil {
		return fmt.Errorf("%w: the cluster has no genesis yet", notaryapi.ErrNoLeader)
	}
	if req.ClusterID != g.ClusterID {
		return fmt.Errorf("%w: the request is for cluster %q, this is cluster %s", notaryapi.ErrWrongCluster, req.ClusterID, g.ClusterID)
	}
	var old *notaryapi.MemberInfo
	for i := range members {
		if members[i].ID == m.ID {
			old = &members[i]
		}
	}
	switch {
	case old == nil:
		return fmt.Errorf("%w: no member %q", notaryapi.ErrNotFound, m.ID)
	case old.RaftAddr != m.RaftAddr || old.HTTPAddr != m.HTTPAddr:
		return httpapi.Field("raft_addr", "a key change keeps the member's addresses (%s, %s); it changes the key only", old.RaftAddr, old.HTTPAddr)
	case old.VerifierKey == m.VerifierKey:
		return httpapi.Field("verifier_key", "is the member's key already")
	}
	if err := checkKeyProof(g.ClusterID, m, req.KeyProof); err != nil {
		return err
	}
	if err := n.propose(encodeJSONCommand(cmdMember, memberCommand{Member: m, KeyProof: req.KeyProof})); err != nil {
		return err
	}
	n.logger.WarnContext(ctx, "a member's signing key was replaced; restart that node with its new key", "member", m.ID)
	n.events.cluster(notaryapi.ChangeJoined, m.ID)
	return nil
}

// Remove takes a member out of the cluster. Only the leader can do it.
func (n *Node) Remove(ctx context.Context, id string) error {
	if n.raft.State() != raft.Leader {
		return notaryapi.ErrNotLeader
	}
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return raftError(err)
	}
	found := false
	for _, s := range f.Configuration().Servers {
		found = found || s.ID == raft.ServerID(id)
	}
	_, members := n.fsm.clusterInfo()
	for _, m := range members {
		found = found || m.ID == id
	}
	if !found {
		return fmt.Errorf("%w: no member %q", notaryapi.ErrNotFound, id)
	}
	if err := n.raft.RemoveServer(raft.ServerID(id), 0, n.cfg.ApplyTimeout).Error(); err != nil {
		return raftError(err)
	}
	n.forget(id)
	n.events.cluster(notaryapi.ChangeRemoved, id)
	return nil
}

// forget drops a member's record; a failure leaves a stale record, which a
// later join or remove replaces.
func (n *Node) forget(id string) {
	if err := n.propose(encodeJSONCommand(cmdForget, id)); err != nil {
		n.logger.Warn("cannot drop member record", "member", id, "error", err)
	}
}

// Transfer hands leadership to the given voter, or to any when id is
// empty. Only the leader can do it.
func (n *Node) Transfer(ctx context.Context, id string) error {
	if n.raft.State() != raft.Leader {
		return notaryapi.ErrNotLeader
	}
	if n.otherVoters() == 0 {
		return httpapi.Field("id", "there is no other voter to hand leadership to")
	}
	if id == n.cfg.ID {
		return httpapi.Field("id", "is this node, the leader already: name another voter, or none for any")
	}
	if id == "" {
		return transferError(n.raft.LeadershipTransfer().Error())
	}
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return raftError(err)
	}
	for _, s := range f.Configuration().Servers {
		if s.ID == raft.ServerID(id) {
			return transferError(n.raft.LeadershipTransferToServer(s.ID, s.Address).Error())
		}
	}
	return fmt.Errorf("%w: no voter %q", notaryapi.ErrNotFound, id)
}

// transferError maps a failed leadership transfer: raft's own errors as
// raftError does, anything else (the target did not win in time) as a
// 503 worth retrying, since leadership may still move.
func transferError(err error) error {
	if err == nil {
		return nil
	}
	mapped := raftError(err)
	var code *httpapi.Code
	if errors.As(mapped, &code) {
		return mapped
	}
	return fmt.Errorf("%w: the leadership transfer did not complete (%v); leadership may still move: look at /v1/status before you try again", notaryapi.ErrNoLeader, err)
}

// joinBackoff paces the attempts to join and to reach the nodes to join.
func joinBackoff() backoff.BackOff {
	return &backoff.ExponentialBackOff{InitialInterval: 200 * time.Millisecond, RandomizationFactor: 0.5, Multiplier: 2, MaxInterval: 5 * time.Second}
}

// joinLoop asks the nodes in Join to add this one, until one does or the
// cluster refuses for good.
func (n *Node) joinLoop(ctx context.Context, id identity) {
	self := n.self()
	attempt := 0
	join := func() (*notaryapi.JoinResponse, error) {
		attempt++
		var last error
		for _, base := range n.cfg.Join {
			resp, err := n.askToJoin(ctx, base, self, id.ClusterID)
			switch {
			case err == nil && id.ClusterID != "" && resp.ClusterID != id.ClusterID:
				return nil, backoff.Permanent(fmt.Errorf("%w: the data directory belongs to cluster %s, %s is cluster %s", notaryapi.ErrWrongCluster, id.ClusterID, base, resp.ClusterID))
			case err == nil:
				n.logger.InfoContext(ctx, "joined the cluster", "via", base, "cluster", resp.ClusterID, "members", len(resp.Members))
				return resp, nil
			case errors.Is(err, notaryapi.ErrWrongCluster), errors.Is(err, notaryapi.ErrUnauthorized),
				errors.Is(err, notaryapi.ErrForbidden), errors.Is(err, notaryapi.ErrBadRequest):
				return nil, backoff.Permanent(fmt.Errorf("via %s: %w", base, err))
			}
			if attempt == 1 || attempt%10 == 0 {
				n.logger.WarnContext(ctx, "join attempt failed; retrying", "via", base, "attempt", attempt, "error", err)
			}
			last = err
		}
		return nil, last
	}
	resp, err := backoff.Retry(ctx, join, backoff.WithBackOff(joinBackoff()), backoff.WithMaxElapsedTime(0))
	switch {
	case ctx.Err() != nil:
	case errors.Is(err, notaryapi.ErrWrongCluster):
		n.stop(fmt.Errorf("%w: %v", ErrCorruptState, err))
	case err != nil:
		// A node that never joined leaves its directory as it found it.
		n.wipe.Store(id.fresh)
		n.stop(fmt.Errorf("%w (fix the configuration and start it again): %w", ErrJoinRefused, err))
	default:
		if err := recordClusterID(n.cfg.DataDir, n.cfg.ID, resp.ClusterID); err != nil {
			n.logger.ErrorContext(ctx, "cannot record the cluster id", "error", err)
		}
	}
}

// askToJoin asks the node at base to add this one to clusterID, or to the
// cluster it says it is of when clusterID is "", proving that this node
// holds its key.
func (n *Node) askToJoin(ctx context.Context, base string, self notaryapi.Member, clusterID string) (*notaryapi.JoinResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c := notaryapi.NewClient(notaryapi.ClientConfig{Nodes: []string{base}, Token: n.cfg.JoinToken, HTTPClient: n.forward})
	if clusterID == "" {
		st, err := c.StatusOf(ctx, base)
		if err != nil {
			return nil, err
		}
		if clusterID = st.ClusterID; clusterID == "" {
			return nil, fmt.Errorf("%w: %s has no cluster id yet", notaryapi.ErrNoLeader, base)
		}
	}
	proof, err := proveMember(n.cfg.Signer, clusterID, self)
	if err != nil {
		return nil, err
	}
	return c.Join(ctx, notaryapi.JoinRequest{Member: self, ClusterID: clusterID, KeyProof: proof})
}

// verifyJoinTargets waits until the nodes in Join answer and stops this
// node if they are not of its cluster.
func (n *Node) verifyJoinTargets(ctx context.Context, id identity) {
	theirs, err := backoff.Retry(ctx, func() (string, error) {
		theirs, err := n.remoteClusterID(ctx)
		if err == nil && theirs == "" {
			err = errors.New("the nodes to join have no cluster id yet")
		}
		return theirs, err
	}, backoff.WithBackOff(joinBackoff()), backoff.WithMaxElapsedTime(0))
	if err != nil {
		return // ctx ended
	}
	if mine := n.clusterID(id); mine != "" && theirs != mine {
		n.stop(fmt.Errorf("%w: this node belongs to cluster %s, but --join names cluster %s", ErrCorruptState, mine, theirs))
	}
}

// clusterID returns the node's cluster: from its log, else from node.json.
func (n *Node) clusterID(id identity) string {
	if g, _ := n.fsm.clusterInfo(); g != nil {
		return g.ClusterID
	}
	return id.ClusterID
}

// remoteClusterIDIfJoining names the cluster of the nodes to join, or ""
// when there are none or they do not answer.
func (n *Node) remoteClusterIDIfJoining(ctx context.Context) string {
	if len(n.cfg.Join) == 0 {
		return ""
	}
	theirs, _ := n.remoteClusterID(ctx)
	return theirs
}

// remoteClusterID asks the nodes to join which cluster they are.
func (n *Node) remoteClusterID(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c := notaryapi.NewClient(notaryapi.ClientConfig{Nodes: n.cfg.Join, HTTPClient: n.forward})
	st, err := c.Status(ctx)
	if err != nil {
		return "", err
	}
	return st.ClusterID, nil
}

// watchCluster turns raft's observations into events.
func (n *Node) watchCluster(ctx context.Context) {
	ch := make(chan raft.Observation, 64)
	obs := raft.NewObserver(ch, false, func(o *raft.Observation) bool {
		switch o.Data.(type) {
		case raft.LeaderObservation, raft.PeerObservation, raft.FailedHeartbeatObservation, raft.ResumedHeartbeatObservation:
			return true
		}
		return false
	})
	n.raft.RegisterObserver(obs)
	defer n.raft.DeregisterObserver(obs)
	for {
		select {
		case <-ctx.Done():
			return
		case o := <-ch:
			switch d := o.Data.(type) {
			case raft.LeaderObservation:
				n.events.cluster(notaryapi.ChangeLeader, string(d.LeaderID))
				n.metrics.leaderChanges.Inc()
				n.beats.mu.Lock()
				clear(n.beats.failed)
				n.beats.mu.Unlock()
			case raft.PeerObservation:
				if d.Removed {
					n.events.cluster(notaryapi.ChangePeerRemoved, string(d.Peer.ID))
				} else {
					n.events.cluster(notaryapi.ChangePeerAdded, string(d.Peer.ID))
				}
			case raft.FailedHeartbeatObservation:
				n.beats.mu.Lock()
				_, known := n.beats.failed[string(d.PeerID)]
				n.beats.failed[string(d.PeerID)] = d.LastContact
				n.beats.mu.Unlock()
				if !known {
					n.events.cluster(notaryapi.ChangePeerUnreachable, string(d.PeerID))
				}
			case raft.ResumedHeartbeatObservation:
				n.beats.mu.Lock()
				delete(n.beats.failed, string(d.PeerID))
				n.beats.mu.Unlock()
				n.events.cluster(notaryapi.ChangePeerReachable, string(d.PeerID))
			}
		}
	}
}
