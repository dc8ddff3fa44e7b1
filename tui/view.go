package tui

import (
	"fmt"
	"strings"
	"time"

	"github.com/charmbracelet/lipgloss"
)

// chrome is the rows around a tab's body: title, tabs, rule, status line
// and help line.
const chrome = 5

// View draws the whole screen: exactly height lines of at most width
// cells.
func (m *model) View() string {
	if m.width == 0 || m.height == 0 {
		return "starting…"
	}
	w, bodyH := m.width, max(1, m.height-chrome)
	lines := []string{m.titleLine(), m.tabsLine(), m.styles.muted.Render(strings.Repeat("─", w))}
	var body []string
	switch {
	case m.showHelp:
		m.help.ShowAll = true
		body = strings.Split(m.help.View(helpKeys{m.keys, m.tab}), "\n")
		m.help.ShowAll = false
	case m.confirm != nil:
		body = m.confirmView(w, bodyH)
	default:
		body = m.tabView(w, bodyH)
	}
	for i := range bodyH {
		if i < len(body) {
			lines = append(lines, fit(body[i], w))
		} else {
			lines = append(lines, "")
		}
	}
	lines = append(lines, fit(m.statusLine(), w), fit(m.helpLine(), w))
	return strings.Join(lines, "\n")
}

func (m *model) tabView(w, h int) []string {
	switch m.tab {
	case tabCluster:
		return m.clusterView(w, h)
	case tabThroughput:
		return m.throughputView(w, h)
	case tabFeed:
		return m.feedView(w, h)
	case tabSessions:
		return m.sessionsView(w, h)
	case tabAlerts:
		return m.alertsView(w, h)
	case tabVerify:
		return m.verifyView(w, h)
	}
	return nil
}

// titleLine is the console's name and the cluster at a glance.
func (m *model) titleLine() string {
	st := m.styles
	left := st.title.Render("telenotary console")
	var parts []string
	if l := m.leader(); l != nil {
		parts = append(parts, st.leader.Render("leader "+l.name()), fmt.Sprintf("term %d", l.st.Term))
	} else {
		parts = append(parts, st.bad.Render("no leader"))
	}
	up := 0
	for _, n := range m.nodes {
		if n.reachable() {
			up++
		}
	}
	nodes := fmt.Sprintf("%d/%d nodes up", up, len(m.nodes))
	if up < len(m.nodes) {
		nodes = st.bad.Render(nodes)
	}
	parts = append(parts, nodes, fmtInt(m.receipts.sum(m.now(), 5e9)/5)+" receipts/s")
	right := strings.Join(parts, " · ")
	gap := m.width - lipgloss.Width(left) - lipgloss.Width(right)
	if gap < 1 {
		return fit(left+" "+right, m.width)
	}
	return left + strings.Repeat(" ", gap) + right
}

// tabsLine names the tabs, the current one underlined and bracketed (so
// it shows without colour), with the number of alerts.
func (m *model) tabsLine() string {
	var b strings.Builder
	for t := range numTabs {
		name := fmt.Sprintf("%d %s", t+1, t)
		if t == tabAlerts && len(m.alerts) > 0 {
			name += fmt.Sprintf(" (%d)", len(m.alerts))
		}
		if t == m.tab {
			b.WriteString(m.styles.activeTab.Render("[" + name + "]"))
		} else {
			b.WriteString(m.styles.tab.Render(" " + name + " "))
		}
	}
	return fit(b.String(), m.width)
}

// noticeFor is how long the outcome of an action stays on the status
// line before the latest alert shows again.
const noticeFor = 10 * time.Second

// statusLine shows the outcome of the last action, the filter being
// typed, or the latest alert.
func (m *model) statusLine() string {
	st := m.styles
	switch {
	case m.filtering:
		return m.input.View()
	case m.notice != nil && m.now().Sub(m.notice.at) < noticeFor:
		s := st.notice
		if m.notice.bad {
			s = st.bad
		}
		return s.Render(m.notice.at.UTC().Format("15:04:05") + " " + m.notice.text)
	case len(m.alerts) > 0:
		a := m.alerts[len(m.alerts)-1]
		return m.levelStyle(a.level).Render(fmt.Sprintf("%s %s: %s", a.at.UTC().Format("15:04:05"), a.level, a.text))
	}
	return ""
}

func (m *model) helpLine() string {
	if m.showHelp {
		return m.styles.footer.Render("? or esc: close help")
	}
	if m.confirm != nil {
		return m.styles.footer.Render("y: confirm · esc/n: cancel")
	}
	if m.filtering {
		return m.styles.footer.Render("enter: apply · esc: clear")
	}
	return m.help.View(helpKeys{m.keys, m.tab})
}

func (m *model) levelStyle(l level) lipgloss.Style {
	switch l {
	case levelWarn:
		return m.styles.warn
	case levelBad:
		return m.styles.bad
	}
	return m.styles.text
}

// confirmView is the confirmation dialog of an operator action.
func (m *model) confirmView(w, h int) []string {
	c := m.confirm
	var text string
	switch c.act {
	case actionRemove:
		text = fmt.Sprintf("Remove %s from the cluster?\n\nIt stops being a voter and gets no more entries.\nTo bring it back it must join again.", c.target)
	case actionTransfer:
		text = fmt.Sprintf("Transfer leadership to %s?\n\nSubmissions pause for the moment of the election.", c.target)
	}
	text += "\n\n[y] yes    [esc] no"
	box := m.styles.dialog.Width(min(60, w-4)).Render(text)
	return strings.Split(lipgloss.Place(w, h, lipgloss.Center, lipgloss.Center, box), "\n")
}
