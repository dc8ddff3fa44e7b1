package tui

import (
	"strings"
	"time"

	"github.com/telenotary/telenotary/cluster/notaryapi"
)

// nodeState is what a component knows of one configured node from its
// answers to GET /v1/status.
type nodeState struct {
	url string
	// st is the last status the node answered; err is why the last poll
	// failed (nil when it answered).
	st      *notaryapi.Status
	err     error
	lastOK  time.Time
	failing time.Time // when polls started failing (zero when answering)

	// The Cluster tab's own: inFlight is true while a poll is out (a slow
	// node gets no second); down and lagging are what its alerts last said
	// of the node.
	inFlight      bool
	down, lagging bool
}

// record takes the node's answer, or why there is none.
func (n *nodeState) record(msg statusMsg) {
	if msg.err != nil {
		n.err = msg.err
		if n.failing.IsZero() {
			n.failing = msg.at
		}
		return
	}
	n.st, n.err, n.lastOK, n.failing = msg.st, nil, msg.at, time.Time{}
}

// name is the node's id once known, else its address.
func (n *nodeState) name() string {
	if n.st != nil && n.st.ID != "" {
		return n.st.ID
	}
	return hostOf(n.url)
}

func (n *nodeState) reachable() bool { return n.err == nil && n.st != nil }

// nodeList is the configured nodes, in the order given.
type nodeList []*nodeState

func newNodeList(urls []string) nodeList {
	l := make(nodeList, len(urls))
	for i, u := range urls {
		l[i] = &nodeState{url: u}
	}
	return l
}

// find returns the node of a configured URL, or nil.
func (l nodeList) find(url string) *nodeState {
	for _, n := range l {
		if n.url == url {
			return n
		}
	}
	return nil
}

// leader returns the reachable node that claims to lead with the highest
// term, or nil.
func (l nodeList) leader() *nodeState {
	var best *nodeState
	for _, n := range l {
		if n.reachable() && n.st.State == notaryapi.StateLeader && (best == nil || n.st.Term > best.st.Term) {
			best = n
		}
	}
	return best
}

// up counts the nodes that answer.
func (l nodeList) up() int {
	up := 0
	for _, n := range l {
		if n.reachable() {
			up++
		}
	}
	return up
}

// reports are the alerts of each node's last answer, in the configured
// order.
func (l nodeList) reports() []nodeReport {
	var out []nodeReport
	for _, n := range l {
		if n.st != nil {
			out = append(out, nodeReport{node: n.st.ID, alerts: n.st.Alerts})
		}
	}
	return out
}

// lagOf is how many raft entries a node has yet to apply of the leader's
// log.
func lagOf(leader, st *notaryapi.Status) uint64 {
	if leader.LastIndex > st.AppliedIndex {
		return leader.LastIndex - st.AppliedIndex
	}
	return 0
}

// hostOf strips the scheme of a URL for display.
func hostOf(u string) string {
	if _, rest, ok := strings.Cut(u, "://"); ok {
		return rest
	}
	return u
}
