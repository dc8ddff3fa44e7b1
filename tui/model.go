package tui

import (
	"fmt"
	"time"

	"github.com/charmbracelet/bubbles/help"
	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
)

// tab is one view of the console.
type tab int

const (
	tabCluster tab = iota
	tabThroughput
	tabFeed
	tabSessions
	tabAlerts
	tabVerify
	tabTryIt // only with Config.TryIt: always the last
	numTabs
)

var tabNames = [numTabs]string{"Cluster", "Throughput", "Feed", "Sessions", "Alerts", "Verify", "Try it"}

// String is the tab's name.
func (t tab) String() string { return tabNames[t] }

// model is the console's root model: it composes one component per tab,
// which share a common context, and draws the chrome around the current
// one (title, tabs, status line, help). It sends keys to the current tab
// and every other message to all tabs, in tab order.
type model struct {
	common
	help     help.Model
	tab      tab
	showHelp bool
	// shown is how many tabs the console has: all, or all but Try it
	// when Config.TryIt is "".
	shown tab

	cluster    *clusterTab
	throughput *throughputTab
	feed       *feedTab
	sessions   *sessionsTab
	alertsTab  *alertsTab
	verify     *verifyTab
	tryIt      *tryItTab
	tabs       [numTabs]component
}

// newModel is the console of cfg, whose defaults the caller has filled
// (withDefaults), at the clock now; poll is false in tests that feed
// recorded answers as messages.
func newModel(cfg Config, now func() time.Time, poll bool) *model {
	c := common{
		cfg: &cfg, src: newSource(cfg), now: now, poll: poll,
		styles: newStyles(defaultTheme), keys: newKeyMap(), alerts: &alertLog{},
	}
	m := &model{
		common: c, help: help.New(),
		cluster: newClusterTab(c), throughput: newThroughputTab(c), feed: newFeedTab(c),
		sessions: newSessionsTab(c), alertsTab: newAlertsTab(c), verify: newVerifyTab(c), tryIt: newTryItTab(c),
		shown: numTabs,
	}
	m.tabs = [numTabs]component{m.cluster, m.throughput, m.feed, m.sessions, m.alertsTab, m.verify, m.tryIt}
	if cfg.TryIt == "" {
		m.shown = tabTryIt
	}
	m.keys.Tab1.SetHelp(fmt.Sprintf("1-%d", m.shown), "go to tab")
	return m
}

// tickMsg asks for a round of polls and redraws the ages on screen.
type tickMsg time.Time

func tick(d time.Duration) tea.Cmd {
	return tea.Tick(d, func(t time.Time) tea.Msg { return tickMsg(t) })
}

// Init starts every component (the first round of polls) and the ticker.
func (m *model) Init() tea.Cmd {
	if !m.poll {
		return nil
	}
	cmds := []tea.Cmd{tick(m.cfg.PollInterval)}
	for _, c := range m.tabs {
		cmds = append(cmds, c.Init())
	}
	return tea.Batch(cmds...)
}

// Update dispatches a message: the size and keys to the root, the rest
// to every component.
func (m *model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.setSize(msg.Width, msg.Height)
		return m, nil
	case tea.KeyMsg:
		return m, m.onKey(msg)
	case tickMsg:
		if !m.poll {
			return m, nil
		}
		return m, tea.Batch(m.broadcast(msg), tick(m.cfg.PollInterval))
	}
	return m, m.broadcast(msg)
}

// chrome is the rows around a tab's body: title, tabs, rule, status line
// and help line.
const chrome = 5

// setSize sizes the screen and every tab's body.
func (m *model) setSize(w, h int) {
	m.width, m.height = w, h
	m.help.Width = w
	for _, c := range m.tabs {
		c.SetSize(w, max(1, h-chrome))
	}
}

// broadcast sends a message to every component, in tab order.
func (m *model) broadcast(msg tea.Msg) tea.Cmd {
	var cmds []tea.Cmd
	for _, c := range m.tabs {
		_, cmd := c.Update(msg)
		cmds = append(cmds, cmd)
	}
	return tea.Batch(cmds...)
}

// onKey handles the global keys and sends the others to the current tab,
// which takes every key while it is modal (typing, confirming).
func (m *model) onKey(msg tea.KeyMsg) tea.Cmd {
	k := m.keys
	cur := m.tabs[m.tab]
	switch {
	case cur.Modal() != nil:
	case key.Matches(msg, k.Quit):
		return tea.Quit
	case key.Matches(msg, k.Help):
		m.showHelp = !m.showHelp
		return nil
	case m.showHelp && key.Matches(msg, k.Cancel):
		m.showHelp = false
		return nil
	case key.Matches(msg, k.NextTab):
		m.tab = (m.tab + 1) % m.shown
		return nil
	case key.Matches(msg, k.PrevTab):
		m.tab = (m.tab + m.shown - 1) % m.shown
		return nil
	case key.Matches(msg, k.Tab1, k.Tab2, k.Tab3, k.Tab4, k.Tab5, k.Tab6, k.Tab7):
		if t := tab(msg.String()[0] - '1'); t < m.shown {
			m.tab = t
		}
		return nil
	case key.Matches(msg, k.Cancel):
		m.cluster.clearNotice()
		return nil
	}
	_, cmd := cur.Update(msg)
	return cmd
}
