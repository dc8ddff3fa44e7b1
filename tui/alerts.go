package tui

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/telenotary/telenotary/cluster/notaryapi"
)

// alert is one line of the Alerts tab.
type alert struct {
	at     time.Time
	level  level
	source string // cluster, console, signal
	text   string
}

type level int

const (
	levelInfo level = iota
	levelWarn
	levelBad
)

// String is the level as the Alerts tab shows it.
func (l level) String() string {
	switch l {
	case levelWarn:
		return "WARN"
	case levelBad:
		return "ALERT"
	}
	return "info"
}

const maxAlerts = 500

// alertLog is the console's alerts in time order, at most maxAlerts of
// them. Every component adds to it (through the common context); the
// Alerts tab and the status line read it.
type alertLog struct {
	list []alert
}

// add appends an alert, dropping the oldest beyond maxAlerts.
func (l *alertLog) add(at time.Time, lv level, source, format string, args ...any) {
	a := alert{at: at, level: lv, source: source, text: fmt.Sprintf(format, args...)}
	// Keep them in time order: the signalling server's come late.
	i := len(l.list)
	for i > 0 && l.list[i-1].at.After(at) {
		i--
	}
	l.list = slices.Insert(l.list, i, a)
	if len(l.list) > maxAlerts {
		l.list = l.list[len(l.list)-maxAlerts:]
	}
}

// latest is the newest alert; ok is false when there is none.
func (l *alertLog) latest() (a alert, ok bool) {
	if len(l.list) == 0 {
		return alert{}, false
	}
	return l.list[len(l.list)-1], true
}

// nodeReport is the alerts one node's last answer carried.
type nodeReport struct {
	node   string // the reporting node's id
	alerts []notaryapi.Alert
}

// nodeAlertKey identifies a node alert across polls and reporters: the
// same condition on the same node, whatever its message says this time
// (a clock offset, a count).
type nodeAlertKey struct {
	kind notaryapi.AlertKind
	node string
}

// credibleAlerts are the alerts of the reports that the console shows,
// each key once (the first reporter's message). A node whose own clock
// disagrees with the cluster's reports every other clock as off; only its
// alert about itself is kept.
func credibleAlerts(reports []nodeReport) (keys []nodeAlertKey, byKey map[nodeAlertKey]notaryapi.Alert) {
	byKey = map[nodeAlertKey]notaryapi.Alert{}
	for _, r := range reports {
		selfSkewed := slices.ContainsFunc(r.alerts, func(a notaryapi.Alert) bool {
			return a.Kind == notaryapi.AlertClockSkew && a.Node == r.node
		})
		for _, a := range r.alerts {
			if a.Kind == notaryapi.AlertClockSkew && selfSkewed && a.Node != r.node {
				continue
			}
			k := nodeAlertKey{a.Kind, a.Node}
			if _, seen := byKey[k]; !seen {
				byKey[k] = a
				keys = append(keys, k)
			}
		}
	}
	return keys, byKey
}

var alertCols = []column{
	{title: "UTC", width: 8},
	{title: "LEVEL", width: 5},
	{title: "FROM", width: 7, drop: 1},
	{title: "WHAT", width: 30, flex: true},
}

// alertsTab is the Alerts tab: the alert log, newest first, filtered. It
// also turns the alerts the nodes report in their status into lines of
// the log: each condition once, when first seen, and once more when no
// node reports it any longer.
type alertsTab struct {
	common
	filter filter
	scroll int
	// nodes are the nodes' last answers, whose alerts count: a node that
	// leaves the cluster takes its alerts with it.
	nodes *nodeList
	// active are the node alerts reported now.
	active map[nodeAlertKey]bool
	// monitors are the log monitors' states, by URL.
	monitors map[string]*monitorState
	// fraud watches the refused dispenses and revocations (lifecycle.go).
	fraud fraudWatch
}

// monitorState is what the tab knows of one log monitor.
type monitorState struct {
	inFlight bool
	err      error           // its last failure; nil after an answer
	seen     map[string]bool // its alerts already copied to the alert log
}

func newAlertsTab(c common) *alertsTab {
	a := &alertsTab{common: c, filter: newFilter(), nodes: newNodeList(c.cfg.Nodes), active: map[nodeAlertKey]bool{}, monitors: map[string]*monitorState{}}
	for _, u := range c.cfg.Monitors {
		a.monitors[u] = &monitorState{seen: map[string]bool{}}
	}
	return a
}

// Init asks the log monitors for their alerts; the others come with
// other components' data.
func (a *alertsTab) Init() tea.Cmd { return a.pollMonitors() }

// pollMonitors asks each log monitor that has no request out.
func (a *alertsTab) pollMonitors() tea.Cmd {
	if !a.poll {
		return nil
	}
	var cmds []tea.Cmd
	for _, u := range a.cfg.Monitors {
		if st := a.monitors[u]; !st.inFlight {
			st.inFlight = true
			cmds = append(cmds, a.src.monitorAlerts(u))
		}
	}
	return tea.Batch(cmds...)
}

// onMonitor copies a monitor's new alerts to the log, at the time the
// monitor raised them, and says when it stops or starts answering.
func (a *alertsTab) onMonitor(msg monitorMsg) {
	st := a.monitors[msg.url]
	if st == nil {
		return
	}
	st.inFlight = false
	if msg.err != nil {
		if st.err == nil {
			a.alerts.add(msg.at, levelWarn, "console", "log monitor %s unreachable: %s", msg.url, shortErr(msg.err))
		}
		st.err = msg.err
		return
	}
	if st.err != nil {
		a.alerts.add(msg.at, levelInfo, "console", "log monitor %s answers again", msg.url)
	}
	st.err = nil
	// Only the alerts the monitor still lists are remembered: as many as
	// it keeps.
	seen := make(map[string]bool, len(msg.resp.Alerts))
	for _, al := range msg.resp.Alerts {
		k := fmt.Sprintf("%d|%s|%s|%s", al.Time.UnixNano(), al.Kind, strings.Join(al.Nodes, ","), al.Message)
		seen[k] = true
		if !st.seen[k] {
			a.alerts.add(al.Time, levelBad, "monitor", "%s: %s", al.Kind, al.Message)
		}
	}
	st.seen = seen
}

// Update takes node statuses, the log monitors' alerts, the refusals the
// event stream reports and the keys of the tab.
func (a *alertsTab) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tickMsg:
		a.checkFraud(a.now())
		return a, a.pollMonitors()
	case eventMsg:
		a.fraud.window.add(msg.at, eventRefusals(msg.ev))
		a.checkFraud(msg.at)
	case monitorMsg:
		a.onMonitor(msg)
	case statusMsg:
		a.onNodeAlerts(msg)
	case tea.KeyMsg:
		return a, a.onKey(msg)
	}
	return a, nil
}

// onNodeAlerts logs the node alerts that appear or clear with a status.
// An unreachable node's last answer still counts: its alerts stand until
// it says otherwise.
func (a *alertsTab) onNodeAlerts(msg statusMsg) {
	n, _ := a.nodes.record(msg)
	if n == nil || msg.err != nil {
		return
	}
	keys, byKey := credibleAlerts(a.nodes.reports())
	for _, k := range keys {
		if !a.active[k] {
			a.active[k] = true
			a.alerts.add(msg.at, levelBad, "cluster", "%s on %s: %s", k.kind, k.node, byKey[k].Message)
		}
	}
	for _, k := range sortedKeys(a.active) {
		if _, still := byKey[k]; !still {
			delete(a.active, k)
			a.alerts.add(msg.at, levelInfo, "cluster", "%s on %s cleared", k.kind, k.node)
		}
	}
}

// checkFraud raises or clears the fraud alert as of now (the rule is in
// lifecycle.go).
func (a *alertsTab) checkFraud(now time.Time) {
	if lv, text, ok := a.fraud.check(now, a.cfg.FraudThreshold); ok {
		a.alerts.add(now, lv, "cluster", "%s", text)
	}
}

// sortedKeys are the keys of m in a stable order.
func sortedKeys(m map[nodeAlertKey]bool) []nodeAlertKey {
	keys := make([]nodeAlertKey, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(x, y nodeAlertKey) int {
		if x.kind != y.kind {
			return cmp.Compare(x.kind, y.kind)
		}
		return cmp.Compare(x.node, y.node)
	})
	return keys
}

func (a *alertsTab) onKey(msg tea.KeyMsg) tea.Cmd {
	k := a.keys
	switch {
	case a.filter.in.active:
		a.scroll = 0
		return a.filter.onKey(msg)
	case key.Matches(msg, k.Filter):
		return a.filter.start()
	case key.Matches(msg, k.Up):
		a.move(-1)
	case key.Matches(msg, k.Down):
		a.move(1)
	case key.Matches(msg, k.Top):
		a.move(-1 << 30)
	case key.Matches(msg, k.Bottom):
		a.move(1 << 30)
	}
	return nil
}

func (a *alertsTab) move(d int) { a.scroll = scrollBy(a.scroll, d, len(a.visible()), a.rows()) }

// rows is how many alerts fit under the tab's top line and header.
func (a *alertsTab) rows() int { return a.height - 2 }

// visible are the alerts that match the filter, newest first.
func (a *alertsTab) visible() []alert {
	var list []alert
	for i := len(a.alerts.list) - 1; i >= 0; i-- {
		x := a.alerts.list[i]
		if f := a.filter.value; f == "" || matches(f, x.text, x.source, x.level.String()) {
			list = append(list, x)
		}
	}
	return list
}

// View is the alerts, newest first.
func (a *alertsTab) View() string {
	st := a.styles
	list := a.visible()
	top := fmt.Sprintf("%d alerts", len(a.alerts.list))
	if f := a.filter.value; f != "" {
		top += fmt.Sprintf(" · %d match %q", len(list), f)
	}
	if a.cfg.Token == "" {
		top += st.muted.Render(" · the nodes' own alerts need an operator token (--token-file)")
	}
	out := []string{top}
	lo, hi := window(len(list), a.rows(), a.scroll)
	var rows [][]cell
	for _, x := range list[lo:hi] {
		ls := st.level(x.level)
		rows = append(rows, []cell{plain(x.at.UTC().Format("15:04:05")), {text: x.level.String(), style: ls}, plain(x.source), {text: x.text, style: ls}})
	}
	header, lines := renderTable(*st, alertCols, rows, a.width)
	out = append(out, header)
	if len(list) == 0 {
		out = append(out, st.muted.Render("nothing to report"))
	}
	return joinLines(append(out, lines...), a.height)
}

// ShortHelp is the tab's keys.
func (a *alertsTab) ShortHelp() []key.Binding {
	return []key.Binding{a.keys.Up, a.keys.Down, a.keys.Filter}
}

// FullHelp is the tab's keys, in one column.
func (a *alertsTab) FullHelp() [][]key.Binding {
	return [][]key.Binding{{a.keys.Up, a.keys.Down, a.keys.Top, a.keys.Bottom, a.keys.Filter}}
}

// Modal is the filter while it is typed.
func (a *alertsTab) Modal() *modal { return a.filter.in.modal() }
