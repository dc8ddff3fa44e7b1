package cluster

import (
	"net/http"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// Status is a node's view of itself and the cluster (GET /v1/status).
type Status struct {
	ID        string `json:"id"`
	ClusterID string `json:"cluster_id,omitempty"`
	Origin    string `json:"origin,omitempty"`
	// State is Leader, Follower, Candidate or Shutdown.
	State  string `json:"state"`
	Ready  bool   `json:"ready"`
	Term   uint64 `json:"term"`
	Leader struct {
		ID       string `json:"id,omitempty"`
		HTTPAddr string `json:"http_addr,omitempty"`
	} `json:"leader"`
	// Raft log indexes; AppliedIndex is what the notary log has applied.
	LastIndex    uint64 `json:"last_index"`
	CommitIndex  uint64 `json:"commit_index"`
	AppliedIndex uint64 `json:"applied_index"`
	// LastContact is when a follower last heard from the leader (zero on
	// the leader).
	LastContact time.Time `json:"last_contact,omitzero"`
	// LogSize and CheckpointTime describe the node's latest checkpoint.
	LogSize        uint64       `json:"log_size"`
	CheckpointTime int64        `json:"checkpoint_time"`
	Peers          []PeerStatus `json:"peers"`
	Batches        BatchStats   `json:"batches"`
}

// PeerStatus is a voter as this node sees it.
type PeerStatus struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	HTTPAddr string `json:"http_addr,omitempty"`
	Suffrage string `json:"suffrage"`
	// Reachable and LastContact are the leader's view of its followers'
	// heartbeats; a follower reports them unknown (Reachable true).
	Reachable   bool      `json:"reachable"`
	LastContact time.Time `json:"last_contact,omitzero"`
}

// BatchStats sums up recent group commits on this node (when leader).
type BatchStats struct {
	Receipts         uint64  `json:"receipts"`
	MeanBatchEntries float64 `json:"mean_batch_entries"`
	P50Millis        float64 `json:"p50_ms"`
	P99Millis        float64 `json:"p99_ms"`
}

// heartbeats tracks, on the leader, followers whose heartbeats fail.
type heartbeats struct {
	mu     sync.Mutex           // guards failed
	failed map[string]time.Time // peer → last contact before failing
}

// Status returns the node's status.
func (n *Node) Status() Status {
	var st Status
	st.ID = n.cfg.ID
	if g, _ := n.fsm.clusterInfo(); g != nil {
		st.ClusterID, st.Origin = g.ClusterID, g.Origin
	}
	st.State = n.raft.State().String()
	st.Ready = n.Ready()
	st.Term = n.raft.CurrentTerm()
	_, leader := n.raft.LeaderWithID()
	st.Leader.ID, st.Leader.HTTPAddr = string(leader), n.leaderURL()
	st.LastIndex, st.CommitIndex, st.AppliedIndex = n.raft.LastIndex(), n.raft.CommitIndex(), n.fsm.applied.Load()
	if n.raft.State() != raft.Leader {
		st.LastContact = n.raft.LastContact()
	}
	if cp := n.fsm.checkpoint.Load(); cp != nil {
		st.LogSize, st.CheckpointTime = cp.Size, cp.Timestamp
	}
	_, members := n.fsm.clusterInfo()
	httpOf := map[string]string{}
	for _, m := range members {
		httpOf[m.ID] = m.HTTPAddr
	}
	if f := n.raft.GetConfiguration(); f.Error() == nil {
		n.beats.mu.Lock()
		for _, s := range f.Configuration().Servers {
			p := PeerStatus{ID: string(s.ID), RaftAddr: string(s.Address), HTTPAddr: httpOf[string(s.ID)], Suffrage: s.Suffrage.String(), Reachable: true}
			if last, failing := n.beats.failed[p.ID]; failing {
				p.Reachable, p.LastContact = false, last
			}
			st.Peers = append(st.Peers, p)
		}
		n.beats.mu.Unlock()
	}
	st.Batches = n.metrics.snapshot()
	return st
}

func (n *Node) handleStatus(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, n.Status())
}
