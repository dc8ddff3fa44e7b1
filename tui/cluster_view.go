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
	{title: "CONTACT", width: 8, right: true, drop: 2},
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
	rows := make([][]cell, 0, len(c.nodes))
	for i, n := range c.nodes {
		rows = append(rows, c.nodeRow(n, i == c.selected, n == leader, leader))
	}
	header, lines := renderTable(*st, clusterCols, rows, c.width)
	out := append([]string{header}, lines...)
	out = append(out, "")
	if len(c.nodes) > 0 {
		out = append(out, c.nodeDetails(c.nodes[c.selected], leader)...)
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
	row := []cell{plain(mark), plain(n.name()), plain(hostOf(n.url))}
	if n.st == nil {
		row = append(row, plain("-"), plain("-"), plain("-"), plain("-"), plain("-"), plain("-"), plain(c.ago(n)))
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
		contact = c.ago(n)
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
	case n.st == nil && n.err == nil:
		return "asking…", st.muted
	case !n.reachable():
		return "UNREACHABLE", st.bad
	case c.clockSkewed(n):
		return "CLOCK SKEW", st.bad
	case !n.st.Ready:
		return "not ready", st.warn
	case leader == nil:
		return "no leader", st.warn
	case n != leader && lagOf(leader.st, n.st) > c.cfg.LagThreshold:
		return "LAGGING", st.warn
	}
	return "ok", st.ok
}

// ago is how long a node has not answered.
func (c *clusterTab) ago(n *nodeState) string {
	if n.failing.IsZero() {
		return "-"
	}
	return fmtDur(c.now().Sub(n.failing)) + " down"
}

// nodeDetails are the lines under the table about the selected node.
func (c *clusterTab) nodeDetails(n, leader *nodeState) []string {
	st := c.styles
	out := []string{st.header.Render(n.name()) + "  " + n.url}
	if n.err != nil {
		out = append(out, st.bad.Render("  unreachable: "+shortErr(n.err)))
		if !n.lastOK.IsZero() {
			out = append(out, st.muted.Render("  last answered "+fmtDur(c.now().Sub(n.lastOK))+" ago; showing that answer"))
		}
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
		if !p.Reachable {
			state = "UNREACHABLE"
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
	switch c.confirm.act {
	case actionRemove:
		text = fmt.Sprintf("Remove %s from the cluster?\n\nIt stops being a voter and gets no more entries.\nTo bring it back it must join again.", c.confirm.target)
	case actionTransfer:
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
