package cluster

import (
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	"github.com/telenotary/telenotary/cluster/notaryapi"
)

// heartbeats tracks, on the leader, followers whose heartbeats fail.
type heartbeats struct {
	mu     sync.Mutex           // guards failed
	failed map[string]time.Time // peer → last contact before failing
}

// Status returns the node's view of itself and the cluster.
func (n *Node) Status() notaryapi.Status {
	var st notaryapi.Status
	st.ID = n.cfg.ID
	if g, _ := n.fsm.clusterInfo(); g != nil {
		st.ClusterID, st.Origin = g.ClusterID, g.Origin
	}
	st.State = n.raft.State().String()
	if err := n.notReady(); err != nil {
		st.NotReady = err.Error()
	} else {
		st.Ready = true
	}
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
			p := notaryapi.PeerStatus{ID: string(s.ID), RaftAddr: string(s.Address), HTTPAddr: httpOf[string(s.ID)], Suffrage: s.Suffrage.String(), Reachable: true}
			if last, failing := n.beats.failed[p.ID]; failing {
				p.Reachable, p.LastContact = false, last
			}
			st.Peers = append(st.Peers, p)
		}
		n.beats.mu.Unlock()
	}
	st.Batches = n.metrics.snapshot()
	st.Alerts = n.clock.alerts(n.cfg.ID, n.fsm.lastTime.Load())
	if waited := n.batcher.waiting(); waited > n.cfg.CommitTimeout {
		st.Alerts = append(st.Alerts, notaryapi.Alert{Kind: notaryapi.AlertNoQuorum, Node: n.cfg.ID,
			Message: fmt.Sprintf("writes have waited %v to commit: no majority of the cluster takes writes (disks full, nodes cut off); clients get 503 no_quorum", waited.Round(time.Second))})
	}
	if errp := n.fsm.damaged.Load(); errp != nil {
		st.Alerts = append(st.Alerts, notaryapi.Alert{Kind: notaryapi.AlertDamaged, Node: n.cfg.ID, Message: (*errp).Error()})
	}
	if err := n.snapshots.problem(); err != nil {
		st.Alerts = append(st.Alerts, notaryapi.Alert{Kind: notaryapi.AlertSnapshot, Node: n.cfg.ID, Message: err.Error()})
	}
	st.Scrub = n.scrub.status(n.cfg.ScrubRate)
	if refused := n.fsm.refused.Load(); refused > 0 {
		st.Alerts = append(st.Alerts, notaryapi.Alert{Kind: notaryapi.AlertRefusedCommands, Node: n.cfg.ID,
			Message: fmt.Sprintf("%s's state machine refused %d raft commands (see its log): someone with raft access sent invalid ones", n.cfg.ID, refused)})
	}
	return st
}
