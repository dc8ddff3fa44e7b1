package tui

import (
	"fmt"
	"strings"
	"time"

	"github.com/charmbracelet/lipgloss"
)

// View draws the whole screen: exactly height lines of at most width
// cells.
func (m *model) View() string {
	if m.width == 0 || m.height == 0 {
		return "starting…"
	}
	w, bodyH := m.width, max(1, m.height-chrome)
	lines := []string{m.titleLine(), m.tabsLine(), m.styles.muted.Render(strings.Repeat("─", w))}
	var body []string
	if m.showHelp {
		m.help.ShowAll = true
		body = strings.Split(m.help.View(m.helpKeys()), "\n")
		m.help.ShowAll = false
	} else {
		body = strings.Split(m.tabs[m.tab].View(), "\n")
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

// helpKeys is the help.KeyMap of the screen: the current tab's and the
// global keys.
func (m *model) helpKeys() rootHelp { return rootHelp{k: m.keys, tab: m.tabs[m.tab]} }

// titleLine is the console's name and the cluster at a glance.
func (m *model) titleLine() string {
	st := m.styles
	left := st.title.Render("telenotary console")
	var parts []string
	nodes := m.cluster.nodes
	if l := nodes.leader(); l != nil {
		parts = append(parts, st.leader.Render("leader "+l.name()), fmt.Sprintf("term %d", l.st.Term))
	} else if id, by := nodes.named(); id != "" {
		// The console does not reach the leader, but the cluster has one.
		parts = append(parts, st.leader.Render("leader "+id)+" (as "+by.name()+" says)", fmt.Sprintf("term %d", by.st.Term))
	} else {
		parts = append(parts, st.bad.Render("no leader"))
	}
	up, total := nodes.up()
	count := fmt.Sprintf("%d/%d nodes up", up, total)
	if up < total {
		count = st.bad.Render(count)
	}
	parts = append(parts, count, m.throughput.rateText(m.now(), 5*time.Second)+" receipts/s")
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
	for t := range m.shown {
		name := fmt.Sprintf("%d %s", t+1, t)
		if n := len(m.alerts.list); t == tabAlerts && n > 0 {
			name += fmt.Sprintf(" (%d)", n)
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

// statusLine shows the line being typed, the outcome of the last action,
// or the latest alert.
func (m *model) statusLine() string {
	st := m.styles
	if md := m.tabs[m.tab].Modal(); md != nil && md.status != "" {
		return md.status
	}
	if n := m.cluster.notice; n != nil && m.now().Sub(n.at) < noticeFor {
		s := st.notice
		if n.bad {
			s = st.bad
		}
		return s.Render(n.at.UTC().Format("15:04:05") + " " + n.text)
	}
	if a, ok := m.alerts.latest(); ok {
		return st.level(a.level).Render(fmt.Sprintf("%s %s: %s", a.at.UTC().Format("15:04:05"), a.level, a.text))
	}
	return ""
}

// helpLine is the keys of the current tab, or of the mode the console is
// in.
func (m *model) helpLine() string {
	if m.showHelp {
		return m.styles.footer.Render(footerHelp)
	}
	if md := m.tabs[m.tab].Modal(); md != nil {
		return m.styles.footer.Render(md.footer)
	}
	return m.help.View(m.helpKeys())
}
