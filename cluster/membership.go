package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"time"

	"github.com/hashicorp/raft"
	"golang.org/x/mod/sumdb/note"
)

// JoinRequest asks the cluster to add a node.
type JoinRequest struct {
	Member
	// ClusterID, when the joining node already belongs to a cluster, is
	// that cluster's id: a cluster refuses a node of another one.
	ClusterID string `json:"cluster_id,omitempty"`
}

// JoinResponse is what a node learns when it joins.
type JoinResponse struct {
	ClusterID string   `json:"cluster_id"`
	Origin    string   `json:"origin"`
	Members   []Member `json:"members"`
}

// validateMember checks a member's fields as a join request gives them.
func validateMember(m Member) error {
	if m.ID == "" || len(m.ID) > 128 {
		return fieldError("id", "must be 1 to 128 characters")
	}
	if _, _, err := net.SplitHostPort(m.RaftAddr); err != nil {
		return fieldError("raft_addr", "must be host:port: %v", err)
	}
	if u, err := url.Parse(m.HTTPAddr); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fieldError("http_addr", "must be an http or https base URL")
	}
	if _, err := note.NewVerifier(m.VerifierKey); err != nil {
		return fieldError("verifier_key", "is not a note verifier key: %v", err)
	}
	return nil
}

// join adds a voter, deduplicated by ID and by address: the same ID at the
// same address is already in; the same ID or the same address with the
// other changed replaces the old entry. Only the leader can do it.
func (n *Node) join(req JoinRequest) (*JoinResponse, error) {
	m := req.Member
	if err := validateMember(m); err != nil {
		return nil, err
	}
	if n.raft.State() != raft.Leader {
		return nil, ErrNotLeader
	}
	if g, _ := n.fsm.clusterInfo(); req.ClusterID != "" && (g == nil || g.ClusterID != req.ClusterID) {
		mine := "none yet"
		if g != nil {
			mine = g.ClusterID
		}
		return nil, fmt.Errorf("%w: %s belongs to cluster %s, this is cluster %s", ErrWrongCluster, m.ID, req.ClusterID, mine)
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
				return nil, fieldError("raft_addr", "is this leader's own address or ID")
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
	if err := n.raft.Apply(encodeJSONCommand(cmdMember, m), n.cfg.ApplyTimeout).Error(); err != nil {
		return nil, raftError(err)
	}
	n.events.cluster("joined", m.ID)
	g, members := n.fsm.clusterInfo()
	if g == nil {
		return nil, ErrNoLeader
	}
	return &JoinResponse{ClusterID: g.ClusterID, Origin: g.Origin, Members: members}, nil
}

// remove takes a member out of the cluster. Only the leader can do it.
func (n *Node) remove(id string) error {
	if n.raft.State() != raft.Leader {
		return ErrNotLeader
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
		return fmt.Errorf("%w: no member %q", ErrNotFound, id)
	}
	if err := n.raft.RemoveServer(raft.ServerID(id), 0, n.cfg.ApplyTimeout).Error(); err != nil {
		return raftError(err)
	}
	n.forget(id)
	n.events.cluster("removed", id)
	return nil
}

// forget drops a member's record; a failure leaves a stale record, which a
// later join or remove replaces.
func (n *Node) forget(id string) {
	if err := n.raft.Apply(encodeJSONCommand(cmdForget, id), n.cfg.ApplyTimeout).Error(); err != nil {
		n.logger.Warn("cannot drop member record", "member", id, "error", err)
	}
}

// transfer hands leadership to the given voter, or to any when id is empty.
func (n *Node) transfer(id string) error {
	if n.raft.State() != raft.Leader {
		return ErrNotLeader
	}
	if n.otherVoters() == 0 {
		return fieldError("id", "there is no other voter to hand leadership to")
	}
	if id == "" {
		return raftError(n.raft.LeadershipTransfer().Error())
	}
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return raftError(err)
	}
	for _, s := range f.Configuration().Servers {
		if s.ID == raft.ServerID(id) {
			return raftError(n.raft.LeadershipTransferToServer(s.ID, s.Address).Error())
		}
	}
	return fmt.Errorf("%w: no voter %q", ErrNotFound, id)
}

// joinLoop asks the nodes in Join to add this one, until one does.
func (n *Node) joinLoop(ctx context.Context, id identity) {
	self := n.self()
	backoff := 200 * time.Millisecond
	for attempt := 1; ; attempt++ {
		for _, base := range n.cfg.Join {
			c := NewClient(ClientConfig{Nodes: []string{base}, Token: n.cfg.JoinToken, HTTPClient: n.forward})
			resp, err := c.Join(ctx, JoinRequest{Member: self, ClusterID: id.ClusterID})
			if errors.Is(err, ErrWrongCluster) {
				n.stop(fmt.Errorf("%w: %v", ErrCorruptState, err))
				return
			}
			if err == nil {
				if id.ClusterID != "" && resp.ClusterID != id.ClusterID {
					n.stop(fmt.Errorf("%w: the data directory belongs to cluster %s, %s is cluster %s", ErrCorruptState, id.ClusterID, base, resp.ClusterID))
					return
				}
				if err := n.recordClusterID(resp.ClusterID); err != nil {
					n.logger.Error("cannot record the cluster id", "error", err)
				}
				n.logger.Info("joined the cluster", "via", base, "cluster", resp.ClusterID, "members", len(resp.Members))
				return
			}
			if errors.Is(err, ErrUnauthorized) || errors.Is(err, ErrForbidden) || errors.Is(err, ErrBadRequest) {
				n.logger.Error("join refused; fix the configuration and restart", "via", base, "error", err)
				return
			}
			if attempt == 1 || attempt%10 == 0 {
				n.logger.Warn("join attempt failed; retrying", "via", base, "attempt", attempt, "error", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// verifyJoinTargets waits until the nodes in Join answer and stops this
// node if they are not of its cluster.
func (n *Node) verifyJoinTargets(ctx context.Context, id identity) {
	for backoff := 200 * time.Millisecond; ; backoff = min(2*backoff, 5*time.Second) {
		theirs, err := n.remoteClusterID(ctx)
		if err == nil && theirs != "" {
			if mine := n.clusterID(id); mine != "" && theirs != mine {
				n.stop(fmt.Errorf("%w: this node belongs to cluster %s, but --join names cluster %s", ErrCorruptState, mine, theirs))
			}
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
	}
}

// clusterID returns the node's cluster: from its log, else from node.json.
func (n *Node) clusterID(id identity) string {
	if g, _ := n.fsm.clusterInfo(); g != nil {
		return g.ClusterID
	}
	return id.ClusterID
}

// remoteClusterID asks the nodes to join which cluster they are.
func (n *Node) remoteClusterID(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c := NewClient(ClientConfig{Nodes: n.cfg.Join, HTTPClient: n.forward})
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
				n.events.cluster("leader", string(d.LeaderID))
				n.metrics.leaderChanges.Inc()
				n.beats.mu.Lock()
				clear(n.beats.failed)
				n.beats.mu.Unlock()
			case raft.PeerObservation:
				if d.Removed {
					n.events.cluster("peer-removed", string(d.Peer.ID))
				} else {
					n.events.cluster("peer-added", string(d.Peer.ID))
				}
			case raft.FailedHeartbeatObservation:
				n.beats.mu.Lock()
				_, known := n.beats.failed[string(d.PeerID)]
				n.beats.failed[string(d.PeerID)] = d.LastContact
				n.beats.mu.Unlock()
				if !known {
					n.events.cluster("peer-unreachable", string(d.PeerID))
				}
			case raft.ResumedHeartbeatObservation:
				n.beats.mu.Lock()
				delete(n.beats.failed, string(d.PeerID))
				n.beats.mu.Unlock()
				n.events.cluster("peer-reachable", string(d.PeerID))
			}
		}
	}
}
