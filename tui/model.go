package tui

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/help"
	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/textinput"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/telenotary/telenotary/cluster/httpapi"
	"github.com/telenotary/telenotary/cluster/notaryapi"
	"github.com/telenotary/telenotary/notary"
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
	numTabs
)

var tabNames = [numTabs]string{"Cluster", "Throughput", "Feed", "Sessions", "Alerts", "Verify"}

func (t tab) String() string { return tabNames[t] }

// model is the console's root model. All its state arrives as messages;
// the views only read it.
type model struct {
	cfg    Config
	src    *source
	now    func() time.Time
	keys   keyMap
	styles styles
	help   help.Model
	// poll is false in tests that feed recorded answers as messages.
	poll bool

	width, height int
	tab           tab
	showHelp      bool

	nodes []*nodeState
	// leaderID and leaderTerm are the last leader seen, for
	// leader-change alerts; a status of an older term cannot undo them.
	leaderID   string
	leaderTerm uint64
	selected   int // the node selected on the Cluster tab

	receipts series // receipts per second, from the event stream
	errs     errorCounts
	byKind   map[string]uint64
	stream   streamMsg

	feed     feedState
	sessions sessionsState
	alerts   []alert
	scroll   [numTabs]int // rows scrolled on the list tabs

	filters   [numTabs]string
	filtering bool
	input     textinput.Model // the filter, or the bundle path on Verify

	confirm *confirmation
	notice  *notice

	verifying bool
	verified  *verifyMsg
}

// errorCounts are the failures the console has seen.
type errorCounts struct {
	polls, sessions, stream, actions uint64
	last                             string
	lastAt                           time.Time
}

func newModel(cfg Config, now func() time.Time) *model {
	m := &model{
		cfg: cfg, src: newSource(cfg), now: now, keys: newKeyMap(), styles: newStyles(defaultTheme),
		help: help.New(), poll: true, byKind: map[string]uint64{},
		sessions: sessionsState{seen: map[string]bool{}},
	}
	for _, u := range cfg.Nodes {
		m.nodes = append(m.nodes, &nodeState{url: u})
	}
	m.input = textinput.New()
	m.input.Prompt = "/"
	m.input.CharLimit = 4096
	return m
}

// Init starts the first round of polls and the ticker.
func (m *model) Init() tea.Cmd {
	if !m.poll {
		return nil
	}
	return tea.Batch(m.pollAll(), tick(m.cfg.PollInterval))
}

// pollAll asks every source that has no request out.
func (m *model) pollAll() tea.Cmd {
	var cmds []tea.Cmd
	for _, n := range m.nodes {
		if !n.inFlight {
			n.inFlight = true
			cmds = append(cmds, m.src.status(n.url))
		}
	}
	if m.cfg.Signal != "" && !m.sessions.inFlight {
		m.sessions.inFlight = true
		cmds = append(cmds, m.src.sessions())
	}
	return tea.Batch(cmds...)
}

// Update dispatches a message to the method that handles it.
func (m *model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
		m.help.Width = msg.Width
		return m, nil
	case tea.KeyMsg:
		return m, m.onKey(msg)
	case tickMsg:
		if !m.poll {
			return m, nil
		}
		return m, tea.Batch(m.pollAll(), tick(m.cfg.PollInterval))
	case statusMsg:
		m.onStatus(msg)
	case sessionsMsg:
		m.onSessions(msg)
	case eventMsg:
		m.onEvent(msg)
	case streamMsg:
		m.onStream(msg)
	case actionMsg:
		m.onAction(msg)
	case verifyMsg:
		m.verifying, m.verified = false, &msg
	}
	return m, nil
}

// addAlert appends an alert, dropping the oldest beyond maxAlerts.
func (m *model) addAlert(at time.Time, lv level, source, format string, args ...any) {
	a := alert{at: at, level: lv, source: source, text: fmt.Sprintf(format, args...)}
	// Keep them in time order: the signalling server's come late.
	i := len(m.alerts)
	for i > 0 && m.alerts[i-1].at.After(at) {
		i--
	}
	m.alerts = slices.Insert(m.alerts, i, a)
	if len(m.alerts) > maxAlerts {
		m.alerts = m.alerts[len(m.alerts)-maxAlerts:]
	}
}

func (m *model) onStatus(msg statusMsg) {
	var n *nodeState
	for _, c := range m.nodes {
		if c.url == msg.node {
			n = c
		}
	}
	if n == nil {
		return
	}
	n.inFlight = false
	if msg.err != nil {
		n.err = msg.err
		m.errs.polls++
		m.errs.last, m.errs.lastAt = fmt.Sprintf("%s: %s", n.name(), shortErr(msg.err)), msg.at
		if n.failing.IsZero() {
			n.failing = msg.at
		}
		if !n.down {
			n.down = true
			m.addAlert(msg.at, levelBad, "console", "%s unreachable: %s", n.name(), shortErr(msg.err))
		}
		return
	}
	if n.down {
		n.down = false
		m.addAlert(msg.at, levelInfo, "console", "%s reachable again after %s", n.name(), fmtDur(msg.at.Sub(n.failing)))
	}
	n.st, n.err, n.lastOK, n.failing = msg.st, nil, msg.at, time.Time{}
	if msg.st.State == "Leader" {
		m.leaderSeen(msg.st.ID, msg.st.Term, msg.at)
	}
	if l := m.leader(); l != nil && l != n {
		if lag := lagOf(l.st, n.st); lag > m.cfg.LagThreshold && !n.lagging {
			n.lagging = true
			m.addAlert(msg.at, levelWarn, "console", "%s is %d entries behind the leader %s", n.name(), lag, l.name())
		} else if lag <= m.cfg.LagThreshold && n.lagging {
			n.lagging = false
			m.addAlert(msg.at, levelInfo, "console", "%s caught up with the leader", n.name())
		}
	}
}

// leaderSeen records a leader reported by a status or the event stream.
func (m *model) leaderSeen(id string, term uint64, at time.Time) {
	if id == "" || (term > 0 && term < m.leaderTerm) {
		return
	}
	m.leaderTerm = max(m.leaderTerm, term)
	if id == m.leaderID {
		return
	}
	old := m.leaderID
	m.leaderID = id
	suffix := ""
	if term > 0 {
		suffix = fmt.Sprintf(" (term %d)", term)
	}
	if old == "" {
		m.addAlert(at, levelInfo, "cluster", "%s leads%s", id, suffix)
		return
	}
	m.addAlert(at, levelWarn, "cluster", "leader changed: %s -> %s%s", old, id, suffix)
}

// leader returns the reachable node that claims to lead with the highest
// term, or nil.
func (m *model) leader() *nodeState {
	var best *nodeState
	for _, n := range m.nodes {
		if n.reachable() && n.st.State == "Leader" && (best == nil || n.st.Term > best.st.Term) {
			best = n
		}
	}
	return best
}

// lagOf is how many raft entries a node has yet to apply of the leader's
// log.
func lagOf(leader, st *notaryapi.Status) uint64 {
	if leader.LastIndex > st.AppliedIndex {
		return leader.LastIndex - st.AppliedIndex
	}
	return 0
}

func (m *model) onSessions(msg sessionsMsg) {
	s := &m.sessions
	s.inFlight = false
	s.at = msg.at
	if msg.err != nil {
		if s.err == nil {
			m.addAlert(msg.at, levelWarn, "console", "signalling server: %s", shortErr(msg.err))
		}
		s.err = msg.err
		m.errs.sessions++
		m.errs.last, m.errs.lastAt = "signalling server: "+shortErr(msg.err), msg.at
		return
	}
	s.err, s.resp = nil, msg.resp
	for _, a := range msg.resp.Alerts {
		k := sessionAlertKey(a)
		if s.seen[k] {
			continue
		}
		s.seen[k] = true
		text := string(a.Kind) + ": " + a.Message
		if a.Room != "" {
			text = fmt.Sprintf("%s: room %s: %s", a.Kind, a.Room, a.Message)
		}
		m.addAlert(a.Time, levelBad, "signal", "%s", text)
	}
}

func (m *model) onEvent(msg eventMsg) {
	e := msg.ev
	switch e.Type {
	case "notarized":
		if e.Notarized == nil {
			return
		}
		m.receipts.add(msg.at, e.Notarized.Count)
		for k, c := range e.Notarized.ByKind {
			m.byKind[k] += uint64(c)
		}
		m.feed.add(e.Notarized.Recent)
	case "cluster":
		switch e.Change {
		case "leader":
			m.leaderSeen(e.Node, 0, msg.at)
		case "peer-unreachable":
			m.addAlert(msg.at, levelBad, "cluster", "the leader lost contact with %s", e.Node)
		case "peer-reachable":
			m.addAlert(msg.at, levelInfo, "cluster", "the leader is in contact with %s again", e.Node)
		case "joined", "removed", "peer-added", "peer-removed":
			m.addAlert(msg.at, levelInfo, "cluster", "%s %s", e.Node, e.Change)
		}
	}
}

func (m *model) onStream(msg streamMsg) {
	if msg.err != nil {
		m.errs.stream++
		m.errs.last, m.errs.lastAt = "event stream: "+shortErr(msg.err), msg.at
	}
	m.stream = msg
}

func (m *model) onAction(msg actionMsg) {
	if msg.err != nil {
		m.errs.actions++
		m.notice = &notice{at: msg.at, bad: true, text: fmt.Sprintf("could not %s %s: %s", msg.act, msg.target, shortErr(msg.err))}
		m.addAlert(msg.at, levelWarn, "console", "%s", m.notice.text)
		return
	}
	done := "removed " + msg.target
	if msg.act == actionTransfer {
		done = "leadership moved to " + msg.target
	}
	m.notice = &notice{at: msg.at, text: done}
	m.addAlert(msg.at, levelInfo, "console", "operator: %s", done)
}

// shortErr is an error's message on one line, without the noise of the
// URL that the console shows elsewhere.
func shortErr(err error) string {
	var p *httpapi.Problem
	if errors.As(err, &p) {
		return p.Detail
	}
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 && strings.Contains(s, "://") {
		s = s[i+2:]
	}
	return strings.ReplaceAll(s, "\n", " ")
}

func (m *model) onKey(msg tea.KeyMsg) tea.Cmd {
	k := m.keys
	switch {
	case m.confirm != nil:
		return m.onConfirmKey(msg)
	case m.filtering:
		return m.onInputKey(msg)
	case key.Matches(msg, k.Quit):
		return tea.Quit
	case key.Matches(msg, k.Help):
		m.showHelp = !m.showHelp
		return nil
	case m.showHelp && key.Matches(msg, k.Cancel):
		m.showHelp = false
		return nil
	case key.Matches(msg, k.NextTab):
		m.tab = (m.tab + 1) % numTabs
	case key.Matches(msg, k.PrevTab):
		m.tab = (m.tab + numTabs - 1) % numTabs
	case key.Matches(msg, k.Tab1, k.Tab2, k.Tab3, k.Tab4, k.Tab5, k.Tab6):
		m.tab = tab(msg.String()[0] - '1')
	case key.Matches(msg, k.Up):
		m.move(-1)
	case key.Matches(msg, k.Down):
		m.move(1)
	case key.Matches(msg, k.Top):
		m.move(-1 << 30)
	case key.Matches(msg, k.Bottom):
		m.move(1 << 30)
	case key.Matches(msg, k.Pause) && m.tab == tabFeed:
		m.feed.togglePause()
	case key.Matches(msg, k.Filter) && m.tab != tabVerify && m.tab != tabThroughput:
		return m.startInput("/", m.filters[m.tab])
	case key.Matches(msg, k.Open) && m.tab == tabVerify:
		return m.startInput("bundle file: ", "")
	case key.Matches(msg, k.Remove, k.Transfer) && m.tab == tabCluster:
		m.askConfirm(key.Matches(msg, k.Remove))
	case key.Matches(msg, k.Cancel):
		m.notice = nil
	}
	return nil
}

// move scrolls the current tab's list or moves the node selection.
func (m *model) move(d int) {
	if m.tab == tabCluster {
		m.selected = clamp(m.selected+d, 0, len(m.nodes)-1)
		return
	}
	m.scroll[m.tab] = max(0, m.scroll[m.tab]+d)
}

func clamp(v, lo, hi int) int { return max(lo, min(v, hi)) }

func (m *model) startInput(prompt, value string) tea.Cmd {
	m.filtering = true
	m.input.Prompt = prompt
	m.input.SetValue(value)
	m.input.CursorEnd()
	return m.input.Focus()
}

func (m *model) onInputKey(msg tea.KeyMsg) tea.Cmd {
	switch msg.Type {
	case tea.KeyEsc:
		m.filtering = false
		m.input.Blur()
		if m.tab != tabVerify {
			m.filters[m.tab] = ""
		}
		return nil
	case tea.KeyEnter:
		m.filtering = false
		m.input.Blur()
		v := strings.TrimSpace(m.input.Value())
		if m.tab == tabVerify {
			if v == "" {
				return nil
			}
			m.verifying, m.verified = true, nil
			return m.src.verify(v)
		}
		m.filters[m.tab] = v
		m.scroll[m.tab] = 0
		return nil
	}
	var cmd tea.Cmd
	m.input, cmd = m.input.Update(msg)
	if m.tab != tabVerify {
		// Filter as the operator types.
		m.filters[m.tab] = m.input.Value()
		m.scroll[m.tab] = 0
	}
	return cmd
}

// askConfirm opens the confirmation of an action on the selected node.
func (m *model) askConfirm(remove bool) {
	if len(m.nodes) == 0 {
		return
	}
	n := m.nodes[m.selected]
	now := m.now()
	switch {
	case m.cfg.Token == "":
		m.notice = &notice{at: now, bad: true, text: "operator actions need the cluster's operator token (--token-file)"}
		return
	case n.st == nil:
		m.notice = &notice{at: now, bad: true, text: "the node's id is not known yet: it has never answered"}
		return
	}
	a := actionTransfer
	if remove {
		a = actionRemove
	}
	m.confirm = &confirmation{act: a, target: n.st.ID}
}

func (m *model) onConfirmKey(msg tea.KeyMsg) tea.Cmd {
	switch {
	case key.Matches(msg, m.keys.Confirm):
		c := m.confirm
		m.confirm = nil
		m.notice = &notice{at: m.now(), text: fmt.Sprintf("%s %s…", strings.ToUpper(c.act.String()[:1])+c.act.String()[1:], c.target)}
		return m.src.act(c.act, c.target)
	case key.Matches(msg, m.keys.Cancel), key.Matches(msg, m.keys.Quit):
		m.confirm = nil
		m.notice = &notice{at: m.now(), text: "cancelled"}
	}
	return nil
}

// verifyResult is the text of a verification outcome.
func verifyResult(v *verifyMsg) (valid bool, lines []string) {
	switch {
	case v.problem != nil:
		return false, []string{"CANNOT VERIFY: " + v.problem.Error()}
	case v.err != nil:
		return false, []string{"INVALID: " + notary.Reason(v.err), "  detail: " + v.err.Error()}
	}
	r := v.res
	lines = []string{
		fmt.Sprintf("VALID: %s notarized %s", r.Leaf.Kind, r.Leaf.Time().Format("2006-01-02 15:04:05.000 UTC")),
		"  log:        " + r.Origin,
		fmt.Sprintf("  index:      %d, in a checkpoint of %d entries", r.Index, r.Checkpoint.Size),
		"  signed by:  " + strings.Join(r.Signers, ", "),
		"  commitment: " + r.Leaf.Commitment.String(),
	}
	if !r.Leaf.Link.IsZero() {
		lines = append(lines, "  linked to:  "+r.Leaf.Link.String())
	}
	return true, lines
}
