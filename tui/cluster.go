package tui

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/telenotary/telenotary/cluster/notaryapi"
)

// clusterTab is the Cluster tab: each node's role, term, indexes, lag,
// contact and health, the details of the selected node, and the operator
// actions on it (remove, transfer leadership) behind a confirmation. It
// polls the nodes on every tick (the configured ones and the members the
// leader lists) and raises the alerts of the nodes' reachability, lag,
// leadership and membership.
type clusterTab struct {
	common
	nodes *nodeList
	// leaderID and leaderTerm are the last leader seen, for leader-change
	// alerts; a status of an older term cannot undo them.
	leaderID   string
	leaderTerm uint64
	selected   int
	stream     streamMsg // the event stream the console follows

	confirm *confirmation
	notice  *notice
}

// confirmation is an operator action waiting for y or esc.
type confirmation struct {
	act    action
	target string // node id
	// leader is true when the target leads: removing it takes a second
	// y, once the operator has read that the cluster elects another.
	leader bool
	// again is true while the second y is awaited.
	again bool
}

// notice is the outcome of the last action, shown on the status line.
type notice struct {
	at   time.Time
	text string
	bad  bool
}

func newClusterTab(c common) *clusterTab {
	t := &clusterTab{common: c, nodes: newNodeList(c.cfg.Nodes)}
	t.syncKeys()
	return t
}

// Init starts the first round of polls.
func (c *clusterTab) Init() tea.Cmd { return c.pollAll() }

// pollAll asks every node that has no request out.
func (c *clusterTab) pollAll() tea.Cmd {
	if !c.poll {
		return nil
	}
	var cmds []tea.Cmd
	for _, n := range c.nodes.nodes {
		if !n.inFlight && n.url != "" {
			n.inFlight = true
			cmds = append(cmds, c.src.status(n.url))
		}
	}
	return tea.Batch(cmds...)
}

// Update takes node statuses, cluster events, the outcome of actions and
// the tab's keys.
func (c *clusterTab) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	var cmd tea.Cmd
	switch msg := msg.(type) {
	case tickMsg:
		cmd = c.pollAll()
	case statusMsg:
		c.onStatus(msg)
	case eventMsg:
		c.onEvent(msg)
	case streamMsg:
		c.stream = msg
	case actionMsg:
		c.onAction(msg)
	case tea.KeyMsg:
		cmd = c.onKey(msg)
	}
	c.syncKeys()
	return c, cmd
}

func (c *clusterTab) onStatus(msg statusMsg) {
	var heard time.Time // when the node was last heard of, before this answer
	if n := c.nodes.find(msg.node); n != nil {
		n.inFlight = false
		heard = n.lastHeard()
	}
	sel := c.selectedNode()
	n, ch := c.nodes.record(msg)
	c.reselect(sel)
	c.src.follow(c.nodes.urls())
	if n == nil {
		return
	}
	if msg.err != nil {
		if !n.down {
			n.down = true
			c.alerts.add(msg.at, levelBad, "console", "%s unreachable: %s", n.name(), c.reason(msg.err))
		}
		return
	}
	if n.down {
		n.down = false
		if heard.IsZero() {
			c.alerts.add(msg.at, levelInfo, "console", "%s reachable: its first answer", n.name())
		} else {
			c.alerts.add(msg.at, levelInfo, "console", "%s reachable again after %s", n.name(), fmtDur(msg.at.Sub(heard)))
		}
	}
	c.membershipChanged(ch, msg.at)
	if msg.st.State == notaryapi.StateLeader && !c.nodes.stale(n) {
		c.leaderSeen(msg.st.ID, msg.st.Term, msg.at)
	}
	c.checkLag(n, msg.at)
}

// reason is why a poll failed, in a few words.
func (c *clusterTab) reason(err error) string { return unreachableReason(err, c.cfg.RequestTimeout) }

// membershipChanged alerts on the members a leader's list added or took
// off.
func (c *clusterTab) membershipChanged(ch membership, at time.Time) {
	for _, id := range ch.joined {
		c.alerts.add(at, levelInfo, "cluster", "%s is a member now: the leader lists it", id)
	}
	for _, id := range ch.left {
		c.alerts.add(at, levelWarn, "cluster", "%s is no longer a member: the leader does not list it", id)
	}
}

// selectedNode is the node the selection is on, or nil.
func (c *clusterTab) selectedNode() *nodeState {
	if c.selected < len(c.nodes.nodes) {
		return c.nodes.nodes[c.selected]
	}
	return nil
}

// reselect keeps the selection on node n while the list changes, or
// within the list when n has left it.
func (c *clusterTab) reselect(n *nodeState) {
	if i := slices.Index(c.nodes.nodes, n); i >= 0 {
		c.selected = i
		return
	}
	c.move(0)
}

// leads reports whether a node is the one that leads (the one that
// answers as leader of the highest term, or the one the others name).
func (c *clusterTab) leads(n *nodeState) bool {
	return n != nil && n.id != "" && n.id == c.nodes.leaderID() && !c.nodes.stale(n)
}

// canTransfer reports whether leadership can move to a node: not the
// leader, and not a node the leader lists as something else than a voter.
func (c *clusterTab) canTransfer(n *nodeState) bool {
	return n != nil && !c.leads(n) && (n.peer == nil || n.peer.Suffrage == "" || n.peer.Suffrage == "Voter")
}

// syncKeys offers the transfer of leadership only where it can be done:
// a disabled key does nothing, and the help does not show it.
func (c *clusterTab) syncKeys() { c.keys.Transfer.SetEnabled(c.canTransfer(c.selectedNode())) }

// checkLag alerts when a node falls more than the threshold behind the
// leader, and when it catches up.
func (c *clusterTab) checkLag(n *nodeState, at time.Time) {
	l := c.nodes.leader()
	if l == nil || l == n {
		return
	}
	lag := lagOf(l.st, n.st)
	switch {
	case lag > c.cfg.LagThreshold && !n.lagging:
		n.lagging = true
		c.alerts.add(at, levelWarn, "console", "%s is %d entries behind the leader %s", n.name(), lag, l.name())
	case lag <= c.cfg.LagThreshold && n.lagging:
		n.lagging = false
		c.alerts.add(at, levelInfo, "console", "%s caught up with the leader", n.name())
	}
}

// leaderSeen records a leader reported by a status (with its term) or the
// event stream (term 0: the stream does not say).
func (c *clusterTab) leaderSeen(id string, term uint64, at time.Time) {
	if id == "" || (term > 0 && term < c.leaderTerm) {
		return
	}
	if id == c.leaderID {
		c.leaderTerm = max(c.leaderTerm, term)
		return
	}
	old := c.leaderID
	c.leaderID = id
	if old == "" {
		c.leaderTerm = term
	} else {
		// A new leader leads a later term than the old one, even when the
		// stream does not say which: a status of the old leader's term,
		// answered before the change and read after it, must not undo it.
		c.leaderTerm = max(c.leaderTerm+1, term)
	}
	suffix := ""
	if term > 0 {
		suffix = fmt.Sprintf(" (term %d)", term)
	}
	if old == "" {
		c.alerts.add(at, levelInfo, "cluster", "%s leads%s", id, suffix)
		return
	}
	c.alerts.add(at, levelWarn, "cluster", "leader changed: %s -> %s%s", old, id, suffix)
}

// onEvent alerts on the cluster changes of the event stream.
func (c *clusterTab) onEvent(msg eventMsg) {
	e := msg.ev
	if e.Type != "cluster" {
		return
	}
	switch e.Change {
	case "leader":
		c.leaderSeen(e.Node, 0, msg.at)
	case "peer-unreachable":
		c.alerts.add(msg.at, levelBad, "cluster", "the leader lost contact with %s", e.Node)
	case "peer-reachable":
		c.alerts.add(msg.at, levelInfo, "cluster", "the leader is in contact with %s again", e.Node)
	case "joined", "removed", "peer-added", "peer-removed":
		c.alerts.add(msg.at, levelInfo, "cluster", "%s %s", e.Node, e.Change)
	}
}

func (c *clusterTab) onAction(msg actionMsg) {
	if msg.err != nil {
		c.notice = &notice{at: msg.at, bad: true, text: fmt.Sprintf("could not %s %s: %s", msg.act, msg.target, shortErr(msg.err))}
		c.alerts.add(msg.at, levelWarn, "console", "%s", c.notice.text)
		return
	}
	done := "removed " + msg.target
	if msg.act == actionTransfer {
		done = "leadership moved to " + msg.target
	}
	c.notice = &notice{at: msg.at, text: done}
	c.alerts.add(msg.at, levelInfo, "console", "operator: %s", done)
}

// clockSkewed reports whether a node has a clock-skew alert, as the
// nodes' last answers tell.
func (c *clusterTab) clockSkewed(n *nodeState) bool {
	if n.st == nil {
		return false
	}
	keys, _ := credibleAlerts(c.nodes.reports())
	for _, k := range keys {
		if k.kind == notaryapi.AlertClockSkew && k.node == n.st.ID {
			return true
		}
	}
	return false
}

func (c *clusterTab) onKey(msg tea.KeyMsg) tea.Cmd {
	k := c.keys
	switch {
	case c.confirm != nil:
		return c.onConfirmKey(msg)
	case key.Matches(msg, k.Up):
		c.move(-1)
	case key.Matches(msg, k.Down):
		c.move(1)
	case key.Matches(msg, k.Top):
		c.move(-1 << 30)
	case key.Matches(msg, k.Bottom):
		c.move(1 << 30)
	case key.Matches(msg, k.Remove, k.Transfer):
		c.askConfirm(key.Matches(msg, k.Remove))
	}
	return nil
}

// move moves the node selection.
func (c *clusterTab) move(d int) {
	c.selected = max(0, clamp(c.selected+d, 0, len(c.nodes.nodes)-1))
}

// askConfirm opens the confirmation of an action on the selected node.
func (c *clusterTab) askConfirm(remove bool) {
	n := c.selectedNode()
	if n == nil {
		return
	}
	now := c.now()
	switch {
	case c.cfg.Token == "":
		c.notice = &notice{at: now, bad: true, text: "operator actions need the cluster's operator token (--token-file)"}
		return
	case n.id == "":
		c.notice = &notice{at: now, bad: true, text: "the node's id is not known yet: it has never answered"}
		return
	}
	a := actionTransfer
	if remove {
		a = actionRemove
	}
	c.confirm = &confirmation{act: a, target: n.id, leader: remove && c.leads(n)}
}

func (c *clusterTab) onConfirmKey(msg tea.KeyMsg) tea.Cmd {
	switch {
	case key.Matches(msg, c.keys.Confirm) && c.confirm.leader && !c.confirm.again:
		c.confirm.again = true
	case key.Matches(msg, c.keys.Confirm):
		x := c.confirm
		c.confirm = nil
		verb := x.act.String()
		c.notice = &notice{at: c.now(), text: fmt.Sprintf("%s %s…", strings.ToUpper(verb[:1])+verb[1:], x.target)}
		return c.src.act(x.act, x.target)
	case key.Matches(msg, c.keys.Cancel), key.Matches(msg, c.keys.Quit):
		c.confirm = nil
		c.notice = &notice{at: c.now(), text: "cancelled"}
	}
	return nil
}

// clearNotice takes the outcome of the last action off the status line.
func (c *clusterTab) clearNotice() { c.notice = nil }

// ShortHelp is the tab's keys.
func (c *clusterTab) ShortHelp() []key.Binding {
	return []key.Binding{c.keys.Up, c.keys.Down, c.keys.Transfer, c.keys.Remove}
}

// FullHelp is the tab's keys, in two columns.
func (c *clusterTab) FullHelp() [][]key.Binding {
	return [][]key.Binding{{c.keys.Up, c.keys.Down, c.keys.Top, c.keys.Bottom}, {c.keys.Transfer, c.keys.Remove, c.keys.Cancel}}
}

// Modal is the confirmation while it waits for y or esc.
func (c *clusterTab) Modal() *modal {
	if c.confirm == nil {
		return nil
	}
	return &modal{footer: footerConfirm}
}
