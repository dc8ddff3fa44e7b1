package tui

import (
	"fmt"
	"strings"

	"github.com/charmbracelet/lipgloss"
	"github.com/telenotary/telenotary/cluster/notaryapi"
)

var clusterCols = []column{
	{title: "  ", width: 2},
	{title: "ID", width: 8},
	{title: "ADDRESS", width: 21, drop: 1},
	{title: "ROLE", width: 9},
	{title: "TERM", width: 4, right: true},
	{title: "LAST", width: 8, right: true, drop: 3},
	{title: "COMMIT", width: 8, right: true, drop: 4},
	{title: "APPLIED", width: 8, right: true},
	{title: "LAG", width: 6, right: true},
	{title: "CONTACT", width: 10, right: true, drop: 2},
	{title: "HEALTH", width: 11},
}

// View is the table of nodes and the details of the selected one, or the
// confirmation of an action.
func (c *clusterTab) View() string {
	if c.confirm != nil {
		return c.confirmView()
	}
	st := c.styles
	leader := c.nodes.leader()
	sel := c.selectedNode()
	rows := make([][]cell, 0, len(c.nodes.nodes))
	for _, n := range c.nodes.nodes {
		rows = append(rows, c.nodeRow(n, n == sel, c.leads(n), leader))
	}
	header, lines := renderTable(*st, clusterCols, rows, c.width)
	out := append([]string{header}, lines...)
	// Why each node is unreachable (the selected one's details say it).
	for _, n := range c.nodes.nodes {
		if n != sel && n.err != nil {
			out = append(out, st.bad.Render(fmt.Sprintf("%s unreachable: %s", n.name(), c.reason(n.err))))
		}
	}
	out = append(out, "")
	if sel != nil {
		out = append(out, c.nodeDetails(sel, leader)...)
	}
	if c.stream.node != "" {
		out = append(out, "", st.muted.Render("events from "+hostOf(c.stream.node)))
	} else if c.stream.err != nil {
		out = append(out, "", st.warn.Render("event stream: "+shortErr(c.stream.err)))
	}
	return joinLines(out, c.height)
}

// nodeRow is a node's line of the table.
func (c *clusterTab) nodeRow(n *nodeState, selected, isLeader bool, leader *nodeState) []cell {
	st := c.styles
	mark := " "
	if selected {
		mark = ">"
	}
	if isLeader {
		mark += "*"
	} else {
		mark += " "
	}
	row := []cell{plain(mark), plain(n.name()), plain(orDash(hostOf(n.url)))}
	if n.st == nil {
		row = append(row, plain("-"), plain("-"), plain("-"), plain("-"), plain("-"), plain("-"), plain(c.down(n)))
	} else {
		row = append(row, c.statusCells(n, leader)...)
	}
	health, hs := c.health(n, leader)
	row = append(row, cell{text: health, style: hs})
	if isLeader {
		for j := range row[:len(row)-1] {
			row[j].style = st.leader
		}
	}
	if selected {
		for j := range row {
			row[j].style = row[j].style.Inherit(st.selected)
		}
	}
	return row
}

// statusCells are the columns from ROLE to CONTACT of a node that has
// answered at least once.
func (c *clusterTab) statusCells(n *nodeState, leader *nodeState) []cell {
	s := n.st
	role := strings.ToLower(s.State)
	if !n.reachable() {
		role += "?" // its last answer
	}
	lag := "-"
	if leader != nil {
		lag = fmtInt(lagOf(leader.st, s))
	}
	contact := "-"
	switch {
	case !n.reachable():
		contact = c.down(n)
	case s.State == notaryapi.StateLeader:
		contact = "self"
	case !s.LastContact.IsZero():
		contact = fmtDur(n.lastOK.Sub(s.LastContact))
	}
	return []cell{plain(role), plain(fmt.Sprint(s.Term)), plain(fmt.Sprint(s.LastIndex)),
		plain(fmt.Sprint(s.CommitIndex)), plain(fmt.Sprint(s.AppliedIndex)), plain(lag), plain(contact)}
}

// health is a node's health in a word, and its style.
func (c *clusterTab) health(n, leader *nodeState) (string, lipgloss.Style) {
	st := c.styles
	switch {
	case n.url == "" && n.st == nil:
		return "NO ADDRESS", st.warn
	case n.st == nil && n.err == nil:
		return "asking…", st.muted
	case !n.reachable():
		return "UNREACHABLE", st.bad
	case c.clockSkewed(n):
		return "CLOCK SKEW", st.bad
	case c.nodes.stale(n):
		return "STALE", st.bad
	case !n.st.Ready:
		return "not ready", st.warn
	case c.nodes.leaderID() == "":
		return "no leader", st.warn
	case leader != nil && n != leader && lagOf(leader.st, n.st) > c.cfg.LagThreshold:
		return "LAGGING", st.warn
	}
	return "ok", st.ok
}

// down is how long a node has been out of reach: since anyone last heard
// from it (the console, or the leader), not since the console noticed.
func (c *clusterTab) down(n *nodeState) string {
	if n.err == nil {
		return "-"
	}
	t := n.lastHeard()
	if t.IsZero() {
		return "never seen"
	}
	return fmtDur(c.now().Sub(t)) + " down"
}

// nodeDetails are the lines under the table about the selected node.
func (c *clusterTab) nodeDetails(n, leader *nodeState) []string {
	st := c.styles
	out := []string{st.header.Render(n.name()) + "  " + n.url}
	if n.url == "" {
		out = append(out, st.warn.Render("  the leader lists no API address for it: the console cannot ask it"))
	}
	if n.err != nil {
		out = append(out, st.bad.Render("  unreachable: "+c.reason(n.err)))
		if !n.lastOK.IsZero() {
			out = append(out, st.muted.Render("  last answered "+fmtDur(c.now().Sub(n.lastOK))+" ago; showing that answer"))
		}
		switch p := n.peer; {
		case p == nil:
		case !p.Reachable && !p.LastContact.IsZero():
			out = append(out, st.muted.Render("  the leader last heard from it "+fmtDur(c.now().Sub(p.LastContact))+" ago"))
		case p.Reachable && n.id != c.nodes.leaderID():
			out = append(out, st.muted.Render("  the leader is in contact with it: only the console cannot reach it"))
		}
	}
	if c.nodes.members != nil && !c.nodes.member(n) {
		out = append(out, st.warn.Render("  not among the members the leader lists: a node that left, or another address of a member"))
	}
	s := n.st
	if s == nil {
		return out
	}
	ready := "ready"
	if !s.Ready {
		ready = "not ready"
	}
	out = append(out,
		fmt.Sprintf("  %s, %s · leader %s · log size %s", s.State, ready, orDash(s.Leader.ID), fmtInt(s.LogSize)),
		fmt.Sprintf("  raft last/commit/applied %d/%d/%d", s.LastIndex, s.CommitIndex, s.AppliedIndex))
	if c.nodes.stale(n) {
		out = append(out, st.bad.Render(fmt.Sprintf("  STALE: it leads term %d, but term %d has begun: it was paused or cut off, and steps down once it hears from the cluster",
			s.Term, c.nodes.maxTerm())))
	}
	out = append(out, c.peersLine(s, leader)...)
	out = append(out, c.alertLines(s.ID)...)
	if b := s.Batches; s.State == notaryapi.StateLeader && b.Receipts > 0 {
		out = append(out, fmt.Sprintf("  recent batches: %.1f entries each · p50 %.1f ms · p99 %.1f ms", b.MeanBatchEntries, b.P50Millis, b.P99Millis))
	}
	return out
}

// peersLine is the voters as the leader sees them (only the leader knows
// whether its followers answer heartbeats), or why they are not known:
// a node shows its peers and alerts only to an operator token.
func (c *clusterTab) peersLine(s *notaryapi.Status, leader *nodeState) []string {
	peersOf, label := s, "  voters: "
	if leader != nil {
		peersOf, label = leader.st, "  voters (as the leader sees them): "
	}
	if len(peersOf.Peers) == 0 {
		if c.cfg.Token == "" {
			return []string{c.styles.warn.Render("  peers and alerts need an operator token (--token-file)")}
		}
		return []string{c.styles.warn.Render("  the nodes show no peers or alerts to this token: is it an operator token?")}
	}
	peers := make([]string, 0, len(peersOf.Peers))
	for _, p := range peersOf.Peers {
		state := "ok"
		switch {
		case p.Reachable:
		case p.LastContact.IsZero():
			state = "UNREACHABLE (misses heartbeats)"
		default:
			state = fmt.Sprintf("UNREACHABLE (no heartbeat answered for %s)", fmtDur(c.now().Sub(p.LastContact)))
		}
		if p.Suffrage != "" && p.Suffrage != "Voter" {
			state += " " + strings.ToLower(p.Suffrage)
		}
		peers = append(peers, fmt.Sprintf("%s %s", p.ID, state))
	}
	return []string{label + strings.Join(peers, ", ")}
}

// alertLines are the nodes' alerts about the node with this id.
func (c *clusterTab) alertLines(id string) []string {
	keys, byKey := credibleAlerts(c.nodes.reports())
	var out []string
	for _, k := range keys {
		if k.node == id {
			out = append(out, c.styles.bad.Render(fmt.Sprintf("  %s: %s", k.kind, byKey[k].Message)))
		}
	}
	return out
}

// confirmView is the confirmation dialog of an operator action.
func (c *clusterTab) confirmView() string {
	w, h := c.width, c.height
	var text string
	switch x := c.confirm; {
	case x.act == actionRemove && x.again:
		text = fmt.Sprintf("%s is the leader. Remove it anyway?\n\nThe cluster will elect another leader: submissions pause until it does, and fail if the others cannot form a majority.", x.target)
	case x.act == actionRemove && x.leader:
		text = fmt.Sprintf("Remove %s from the cluster?\n\nIt is the leader: the cluster will elect another leader.\nIt stops being a voter and gets no more entries.\nTo bring it back it must join again.", x.target)
	case x.act == actionRemove:
		text = fmt.Sprintf("Remove %s from the cluster?\n\nIt stops being a voter and gets no more entries.\nTo bring it back it must join again.", x.target)
	case x.act == actionTransfer:
		text = fmt.Sprintf("Transfer leadership to %s?\n\nSubmissions pause for the moment of the election.", c.confirm.target)
	}
	text += "\n\n[y] yes    [esc] no"
	box := c.styles.dialog.Width(min(60, w-4)).Render(text)
	return lipgloss.Place(w, h, lipgloss.Center, lipgloss.Center, box)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
