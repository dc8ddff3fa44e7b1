package tui

import (
	"slices"
	"strings"
	"time"

	"github.com/telenotary/telenotary/cluster/notaryapi"
)

// nodeState is what a component knows of one node from its answers to
// GET /v1/status and from the leader's list of members.
type nodeState struct {
	// url is the node's API base URL: a configured one, or the address
	// the leader lists for a member; "" when the leader lists none.
	url        string
	configured bool
	// id is the node's id, from its answers or the leader's list; "" until
	// either says.
	id string
	// peer is the leader's word on the node (its suffrage, and since when
	// it misses heartbeats); nil until a leader lists it.
	peer *notaryapi.PeerStatus

	// st is the last status the node answered; err is why the last poll
	// failed (nil when it answered).
	st     *notaryapi.Status
	err    error
	lastOK time.Time

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
		return
	}
	n.st, n.err, n.lastOK = msg.st, nil, msg.at
	if msg.st.ID != "" {
		n.id = msg.st.ID
	}
}

// name is the node's id once known, else its address.
func (n *nodeState) name() string {
	if n.id != "" {
		return n.id
	}
	if n.url == "" {
		return "?"
	}
	return hostOf(n.url)
}

func (n *nodeState) reachable() bool { return n.err == nil && n.st != nil }

// lastHeard is the last time anyone heard from the node: the console (its
// last answer) or the leader (the last heartbeat it answered, which the
// leader reports once the node misses them); zero when neither did. An
// outage lasts from then, not from when the console noticed it.
func (n *nodeState) lastHeard() time.Time {
	t := n.lastOK
	if p := n.peer; p != nil && !p.Reachable && p.LastContact.After(t) {
		t = p.LastContact
	}
	return t
}

// nodeList is the nodes the console watches: the configured ones, in the
// order given, then the members the leader lists that none of them is. It
// follows the cluster's membership as the leader's status tells it (which
// it does to an operator token only): a member that joins is added, a
// node that leaves is taken off. Every component keeps its own list and
// feeds it the same status messages, so the lists agree.
type nodeList struct {
	nodes []*nodeState
	// urlOf is the configured URL at which each id answered, so that a
	// node that leaves and joins again is asked there again.
	urlOf map[string]string
	// members are the ids the leader listed last; nil until one did.
	members map[string]bool
}

func newNodeList(urls []string) *nodeList {
	l := &nodeList{urlOf: map[string]string{}}
	for _, u := range urls {
		l.nodes = append(l.nodes, &nodeState{url: u, configured: true})
	}
	return l
}

// membership is what a leader's status changed in the list.
type membership struct {
	// joined are the members new since the leader's previous list; left,
	// the nodes taken off the list because the leader no longer lists them.
	joined, left []string
}

// find returns the node of a URL, or nil.
func (l *nodeList) find(url string) *nodeState {
	if url == "" {
		return nil
	}
	for _, n := range l.nodes {
		if n.url == url {
			return n
		}
	}
	return nil
}

// byID returns the first node of an id, or nil.
func (l *nodeList) byID(id string) *nodeState {
	for _, n := range l.nodes {
		if n.id == id {
			return n
		}
	}
	return nil
}

// record takes a node's answer and, when it is the leader's, the
// membership it lists. It returns the node, or nil when the answer is of
// no node on the list (one taken off it) or of a member found at another
// address than a configured one, which stands for it.
func (l *nodeList) record(msg statusMsg) (*nodeState, membership) {
	n := l.find(msg.node)
	if n == nil {
		return nil, membership{}
	}
	n.record(msg)
	if msg.err != nil || n.id == "" {
		return n, membership{}
	}
	if n.configured {
		l.urlOf[n.id] = n.url
		// The member was listed at its own address before its configured
		// one answered: the configured one stands for it.
		l.nodes = slices.DeleteFunc(l.nodes, func(o *nodeState) bool { return o != n && o.id == n.id && !o.configured })
	} else if slices.ContainsFunc(l.nodes, func(o *nodeState) bool { return o.configured && o.id == n.id }) {
		l.nodes = slices.DeleteFunc(l.nodes, func(o *nodeState) bool { return o == n })
		return nil, membership{}
	}
	return n, l.follow(msg.st)
}

// follow takes the members a leader's status lists, if it is the leader
// of the highest term seen: a stale leader's list may be out of date.
// While a configured node has yet to answer, no member is added: it may
// be that node at another address.
func (l *nodeList) follow(st *notaryapi.Status) (ch membership) {
	if st.State != notaryapi.StateLeader || len(st.Peers) == 0 || st.Term < l.maxTerm() {
		return ch
	}
	prev := l.members
	l.members = map[string]bool{}
	asking := slices.ContainsFunc(l.nodes, func(n *nodeState) bool { return n.configured && n.st == nil && n.err == nil })
	for _, p := range st.Peers {
		l.members[p.ID] = true
		addr := strings.TrimRight(p.HTTPAddr, "/")
		n := l.byID(p.ID)
		if n == nil && addr != "" {
			if n = l.find(addr); n != nil && n.id != "" {
				continue // another node answered there: the next list will tell
			} else if n != nil {
				n.id = p.ID
				if n.configured {
					l.urlOf[p.ID] = n.url
				}
			}
		}
		if n == nil {
			if asking {
				continue // added by a later list
			}
			url, configured := l.urlOf[p.ID]
			if !configured {
				url = addr
			}
			n = &nodeState{url: url, configured: configured, id: p.ID}
			l.nodes = append(l.nodes, n)
		}
		peer := p
		n.peer = &peer
		if prev != nil && !prev[p.ID] {
			ch.joined = append(ch.joined, p.ID)
		}
	}
	l.nodes = slices.DeleteFunc(l.nodes, func(n *nodeState) bool {
		gone := n.id != "" && !l.members[n.id]
		if gone {
			ch.left = append(ch.left, n.id)
		}
		return gone
	})
	return ch
}

// member reports whether the node counts as one of the cluster's: it is
// on the leader's list, or no leader has listed the members. A configured
// address that never answered and that the leader does not list is shown,
// but not counted.
func (l *nodeList) member(n *nodeState) bool { return l.members == nil || l.members[n.id] }

// maxTerm is the highest term of the nodes' last answers.
func (l *nodeList) maxTerm() uint64 {
	var top uint64
	for _, n := range l.nodes {
		if n.st != nil {
			top = max(top, n.st.Term)
		}
	}
	return top
}

// leader returns the reachable node that claims to lead in the highest
// term any node has answered with, or nil.
func (l *nodeList) leader() *nodeState {
	top := l.maxTerm()
	for _, n := range l.nodes {
		if n.reachable() && n.st.State == notaryapi.StateLeader && n.st.Term == top {
			return n
		}
	}
	return nil
}

// stale reports whether a node claims to lead in a term older than the
// highest any node has answered with: a leader that was paused or cut off
// and has not heard yet that another was elected.
func (l *nodeList) stale(n *nodeState) bool {
	return n.st != nil && n.st.State == notaryapi.StateLeader && n.st.Term < l.maxTerm()
}

// named is the leader that a reachable node of the highest term names,
// and that node, when none that answers leads: the console may not reach
// the leader while the cluster has one. id is "" when none names one.
func (l *nodeList) named() (id string, by *nodeState) {
	top := l.maxTerm()
	for _, n := range l.nodes {
		if n.reachable() && n.st.Term == top && n.st.Leader.ID != "" {
			return n.st.Leader.ID, n
		}
	}
	return "", nil
}

// leaderID is the id of the node that leads, as the nodes that answer
// tell: the leader's own, or the one they name; "" when none does.
func (l *nodeList) leaderID() string {
	if n := l.leader(); n != nil {
		return n.st.ID
	}
	id, _ := l.named()
	return id
}

// up counts the members that answer; total, the members.
func (l *nodeList) up() (up, total int) {
	for _, n := range l.nodes {
		if l.member(n) {
			total++
			if n.reachable() {
				up++
			}
		}
	}
	return up, total
}

// urls are the addresses of the nodes on the list.
func (l *nodeList) urls() []string {
	var out []string
	for _, n := range l.nodes {
		if n.url != "" {
			out = append(out, n.url)
		}
	}
	return out
}

// reports are the alerts of each node's last answer, in the list's order.
func (l *nodeList) reports() []nodeReport {
	var out []nodeReport
	for _, n := range l.nodes {
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
