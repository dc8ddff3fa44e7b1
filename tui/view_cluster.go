package tui

import (
	"fmt"
	"strings"

	"github.com/charmbracelet/lipgloss"
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

// clusterView is the table of nodes and the details of the selected one.
func (m *model) clusterView(w, h int) []string {
	st := m.styles
	leader := m.leader()
	var rows [][]cell
	for i, n := range m.nodes {
		mark := " "
		if i == m.selected {
			mark = ">"
		}
		isLeader := n == leader
		if isLeader {
			mark += "*"
		} else {
			mark += " "
		}
		row := []cell{plain(mark), plain(n.name()), plain(hostOf(n.url))}
		health, hs := m.health(n, leader)
		if !n.reachable() && n.st == nil {
			row = append(row, plain("-"), plain("-"), plain("-"), plain("-"), plain("-"), plain("-"), plain(m.ago(n)))
		} else {
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
				contact = m.ago(n)
			case s.State == "Leader":
				contact = "self"
			case !s.LastContact.IsZero():
				contact = fmtDur(n.lastOK.Sub(s.LastContact))
			}
			row = append(row, plain(role), plain(fmt.Sprint(s.Term)), plain(fmt.Sprint(s.LastIndex)),
				plain(fmt.Sprint(s.CommitIndex)), plain(fmt.Sprint(s.AppliedIndex)), plain(lag), plain(contact))
		}
		row = append(row, cell{text: health, style: hs})
		if isLeader {
			for j := range row[:len(row)-1] {
				row[j].style = st.leader
			}
		}
		if i == m.selected {
			for j := range row {
				row[j].style = row[j].style.Inherit(st.selected)
			}
		}
		rows = append(rows, row)
	}
	header, lines := renderTable(st, clusterCols, rows, w)
	out := append([]string{header}, lines...)
	out = append(out, "")
	if len(m.nodes) > 0 {
		out = append(out, m.nodeDetails(m.nodes[m.selected], leader)...)
	}
	if m.stream.node != "" {
		out = append(out, "", st.muted.Render("events from "+hostOf(m.stream.node)))
	} else if m.stream.err != nil {
		out = append(out, "", st.warn.Render("event stream: "+shortErr(m.stream.err)))
	}
	return out[:min(len(out), h)]
}

// health is a node's health in a word, and its style.
func (m *model) health(n, leader *nodeState) (string, lipgloss.Style) {
	st := m.styles
	switch {
	case n.st == nil && n.err == nil:
		return "asking…", st.muted
	case !n.reachable():
		return "UNREACHABLE", st.bad
	case !n.st.Ready:
		return "not ready", st.warn
	case leader == nil:
		return "no leader", st.warn
	case n != leader && lagOf(leader.st, n.st) > m.cfg.LagThreshold:
		return "LAGGING", st.warn
	}
	return "ok", st.ok
}

// ago is how long a node has not answered.
func (m *model) ago(n *nodeState) string {
	if n.failing.IsZero() {
		return "-"
	}
	return fmtDur(m.now().Sub(n.failing)) + " down"
}

// nodeDetails are the lines under the table about the selected node.
func (m *model) nodeDetails(n, leader *nodeState) []string {
	st := m.styles
	out := []string{st.header.Render(n.name()) + "  " + n.url}
	if n.err != nil {
		out = append(out, st.bad.Render("  unreachable: "+shortErr(n.err)))
		if !n.lastOK.IsZero() {
			out = append(out, st.muted.Render("  last answered "+fmtDur(m.now().Sub(n.lastOK))+" ago; showing that answer"))
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
	// Only the leader knows whether its followers answer heartbeats.
	peersOf, label := s, "  voters: "
	if leader != nil {
		peersOf, label = leader.st, "  voters (as the leader sees them): "
	}
	var peers []string
	for _, p := range peersOf.Peers {
		state := "ok"
		if !p.Reachable {
			state = "UNREACHABLE"
		}
		peers = append(peers, fmt.Sprintf("%s %s", p.ID, state))
	}
	if len(peers) > 0 {
		out = append(out, label+strings.Join(peers, ", "))
	}
	if b := s.Batches; s.State == "Leader" && b.Receipts > 0 {
		out = append(out, fmt.Sprintf("  recent batches: %.1f entries each · p50 %.1f ms · p99 %.1f ms", b.MeanBatchEntries, b.P50Millis, b.P99Millis))
	}
	return out
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
