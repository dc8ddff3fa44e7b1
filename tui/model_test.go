package tui

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/exp/teatest"
	"github.com/telenotary/telenotary/cluster/notaryapi"
)

var t0 = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

// testModel is a console of three nodes that does not poll, at t0, sized
// 80×24.
func testModel(t *testing.T, token string) *model {
	t.Helper()
	return testModelOf(t, Config{Nodes: goldenNodes, Token: token})
}

// testModelOf is a console of cfg that does not poll, at t0, sized 80×24.
func testModelOf(t *testing.T, cfg Config) *model {
	t.Helper()
	m := newModel(cfg.withDefaults(), func() time.Time { return t0 }, false)
	m.Update(tea.WindowSizeMsg{Width: 80, Height: 24})
	return m
}

func status(id, state string, term, last, applied uint64) *notaryapi.Status {
	st := &notaryapi.Status{ID: id, State: state, Ready: true, Term: term, LastIndex: last, CommitIndex: last, AppliedIndex: applied}
	return st
}

func keyMsg(s string) tea.KeyMsg {
	switch s {
	case "tab":
		return tea.KeyMsg{Type: tea.KeyTab}
	case "shift+tab":
		return tea.KeyMsg{Type: tea.KeyShiftTab}
	case "esc":
		return tea.KeyMsg{Type: tea.KeyEsc}
	case "enter":
		return tea.KeyMsg{Type: tea.KeyEnter}
	case "down":
		return tea.KeyMsg{Type: tea.KeyDown}
	case "up":
		return tea.KeyMsg{Type: tea.KeyUp}
	}
	return tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(s)}
}

func press(m *model, keys ...string) tea.Cmd {
	var last tea.Cmd
	for _, k := range keys {
		_, last = m.Update(keyMsg(k))
	}
	return last
}

// keyTest is a row of TestKeys: keys pressed on a console with token, and
// what they must have done.
type keyTest struct {
	name  string
	token string
	keys  []string
	check func(t *testing.T, m *model, cmd tea.Cmd)
}

var keyTests = []keyTest{
	{"tab cycles forward", "", []string{"tab", "tab"}, func(t *testing.T, m *model, _ tea.Cmd) { wantTab(t, m, tabFeed) }},
	{"shift+tab wraps backwards", "", []string{"shift+tab"}, func(t *testing.T, m *model, _ tea.Cmd) { wantTab(t, m, tabVerify) }},
	{"digits pick a tab", "", []string{"4"}, func(t *testing.T, m *model, _ tea.Cmd) { wantTab(t, m, tabSessions) }},
	{"j and down move the node selection", "", []string{"j", "down"}, func(t *testing.T, m *model, _ tea.Cmd) {
		if m.cluster.selected != 2 {
			t.Errorf("selected %d, want 2", m.cluster.selected)
		}
	}},
	{"selection stops at the ends", "", []string{"k", "up"}, func(t *testing.T, m *model, _ tea.Cmd) {
		if m.cluster.selected != 0 {
			t.Errorf("selected %d, want 0", m.cluster.selected)
		}
	}},
	{"p pauses the feed", "", []string{"3", "p"}, func(t *testing.T, m *model, _ tea.Cmd) {
		if !m.feed.feed.paused {
			t.Error("the feed is not paused")
		}
	}},
	{"p does nothing off the feed", "", []string{"p"}, func(t *testing.T, m *model, _ tea.Cmd) {
		if m.feed.feed.paused {
			t.Error("the feed paused from the Cluster tab")
		}
	}},
	{"/ filters as you type, enter keeps it", "", []string{"3", "/", "c", "o", "n", "enter"}, func(t *testing.T, m *model, _ tea.Cmd) {
		if m.feed.filter.in.active || m.feed.filter.value != "con" {
			t.Errorf("filtering %v, filter %q; want a kept filter con", m.feed.filter.in.active, m.feed.filter.value)
		}
	}},
	{"esc clears a filter", "", []string{"5", "/", "x", "esc"}, func(t *testing.T, m *model, _ tea.Cmd) {
		if m.alertsTab.filter.in.active || m.alertsTab.filter.value != "" {
			t.Errorf("filtering %v, filter %q", m.alertsTab.filter.in.active, m.alertsTab.filter.value)
		}
	}},
	{"q while filtering is text", "", []string{"3", "/", "q"}, func(t *testing.T, m *model, cmd tea.Cmd) {
		if isQuit(cmd) || m.feed.filter.value != "q" {
			t.Errorf("q quit or was lost while typing a filter (filter %q)", m.feed.filter.value)
		}
	}},
	{"? toggles help", "", []string{"?"}, func(t *testing.T, m *model, _ tea.Cmd) {
		if !m.showHelp || !strings.Contains(m.View(), "previous tab") {
			t.Error("no full help after ?")
		}
	}},
	{"q quits", "", []string{"q"}, func(t *testing.T, m *model, cmd tea.Cmd) {
		if !isQuit(cmd) {
			t.Error("q did not quit")
		}
	}},
	{"x without a token explains", "", []string{"x"}, func(t *testing.T, m *model, _ tea.Cmd) {
		if m.cluster.confirm != nil || m.cluster.notice == nil || !strings.Contains(m.cluster.notice.text, "operator token") {
			t.Errorf("confirm %v, notice %+v", m.cluster.confirm, m.cluster.notice)
		}
	}},
	{"x asks to confirm", operatorToken, []string{"j", "x"}, func(t *testing.T, m *model, _ tea.Cmd) {
		if m.cluster.confirm == nil || m.cluster.confirm.act != actionRemove || m.cluster.confirm.target != "node-2" {
			t.Fatalf("confirm %+v, want remove node-2", m.cluster.confirm)
		}
		if !strings.Contains(m.View(), "Remove node-2 from the cluster?") {
			t.Error("no confirmation on screen")
		}
	}},
	{"esc cancels a confirmation, sending nothing", operatorToken, []string{"t", "esc"}, func(t *testing.T, m *model, cmd tea.Cmd) {
		if m.cluster.confirm != nil || cmd != nil {
			t.Errorf("confirm %+v, cmd %v after esc", m.cluster.confirm, cmd)
		}
	}},
	{"y confirms with a command", operatorToken, []string{"jj", "t", "y"}, func(t *testing.T, m *model, cmd tea.Cmd) {
		if m.cluster.confirm != nil || cmd == nil {
			t.Errorf("confirm %+v, cmd %v after y", m.cluster.confirm, cmd)
		}
	}},
	{"/ does nothing on the Cluster tab, which has no filter", "", []string{"/"}, func(t *testing.T, m *model, _ tea.Cmd) {
		if m.cluster.Modal() != nil || strings.Contains(m.View(), "enter: apply") {
			t.Error("/ opened an input on the Cluster tab")
		}
	}},
	{"o opens the path input on Verify", "", []string{"6", "o"}, func(t *testing.T, m *model, _ tea.Cmd) {
		if !m.verify.path.active || m.verify.path.ti.Prompt != "bundle file: " {
			t.Errorf("filtering %v, prompt %q", m.verify.path.active, m.verify.path.ti.Prompt)
		}
	}},
}

func TestKeys(t *testing.T) {
	for _, tt := range keyTests {
		t.Run(tt.name, func(t *testing.T) {
			m := testModel(t, tt.token)
			for i, u := range goldenNodes {
				id := []string{"node-1", "node-2", "node-3"}[i]
				m.Update(statusMsg{node: u, st: status(id, "Follower", 2, 10, 10), at: t0})
			}
			var keys []string
			for _, k := range tt.keys {
				if k == "jj" {
					keys = append(keys, "j", "j")
					continue
				}
				keys = append(keys, k)
			}
			cmd := press(m, keys...)
			tt.check(t, m, cmd)
		})
	}
}

func wantTab(t *testing.T, m *model, want tab) {
	t.Helper()
	if m.tab != want {
		t.Errorf("tab %v, want %v", m.tab, want)
	}
}

func isQuit(cmd tea.Cmd) bool {
	if cmd == nil {
		return false
	}
	_, ok := cmd().(tea.QuitMsg)
	return ok
}

func alertTexts(m *model) []string {
	var out []string
	for _, a := range m.alerts.list {
		out = append(out, a.text)
	}
	return out
}

func hasAlert(m *model, want string) bool {
	for _, a := range alertTexts(m) {
		if strings.Contains(a, want) {
			return true
		}
	}
	return false
}

// TestLeaderChange: while watching, the leader dies and another node
// takes over in a later term; a late answer of the old leader from the
// older term does not bring it back.
func TestLeaderChange(t *testing.T) {
	m := testModel(t, "")
	m.Update(statusMsg{node: goldenNodes[0], st: status("node-1", "Leader", 2, 100, 100), at: t0})
	m.Update(statusMsg{node: goldenNodes[1], st: status("node-2", "Follower", 2, 100, 99), at: t0})
	m.Update(statusMsg{node: goldenNodes[2], st: status("node-3", "Follower", 2, 100, 98), at: t0})
	if !strings.Contains(m.View(), "leader node-1") {
		t.Fatalf("no leader on screen:\n%s", m.View())
	}
	t1 := t0.Add(3 * time.Second)
	m.Update(statusMsg{node: goldenNodes[0], err: errors.New("connection refused"), at: t1})
	m.Update(statusMsg{node: goldenNodes[1], st: status("node-2", "Leader", 3, 105, 105), at: t1})
	// A status node-1 sent in term 2 arrives late.
	m.Update(statusMsg{node: goldenNodes[2], st: status("node-3", "Follower", 3, 105, 104), at: t1})
	m.cluster.leaderSeen("node-1", 2, t1)
	view := m.View()
	for _, want := range []string{"leader node-2 · term 3", "2/3 nodes up", "UNREACHABLE"} {
		if !strings.Contains(view, want) {
			t.Errorf("screen lacks %q:\n%s", want, view)
		}
	}
	if !hasAlert(m, "leader changed: node-1 -> node-2 (term 3)") || !hasAlert(m, "node-1 unreachable") {
		t.Errorf("alerts %q", alertTexts(m))
	}
	if hasAlert(m, "node-2 -> node-1") {
		t.Errorf("a stale status undid the leader change: %q", alertTexts(m))
	}
	// The event stream names the same leader: no second alert.
	n := len(m.alerts.list)
	m.Update(eventMsg{ev: notaryapi.Event{Type: "cluster", Change: "leader", Node: "node-2"}, at: t1})
	if len(m.alerts.list) != n {
		t.Errorf("the stream's leader event added an alert: %q", alertTexts(m))
	}
}

// TestNodeDownAndBack: a node stops answering and comes back; one alert
// each way, and its last answer stays on screen meanwhile. The outage
// lasts from its last answer, not from the first poll it missed.
func TestNodeDownAndBack(t *testing.T) {
	m := testModel(t, "")
	m.Update(statusMsg{node: goldenNodes[0], st: status("node-1", "Leader", 2, 100, 100), at: t0})
	m.Update(statusMsg{node: goldenNodes[2], st: status("node-3", "Follower", 2, 100, 97), at: t0})
	for i := range 3 {
		m.Update(statusMsg{node: goldenNodes[2], err: context.DeadlineExceeded, at: t0.Add(time.Duration(i+1) * time.Second)})
	}
	view := m.View()
	if !strings.Contains(view, "UNREACHABLE") || !strings.Contains(view, "node-3 unreachable: timeout after 2s") {
		t.Errorf("node-3 not shown unreachable:\n%s", view)
	}
	if got := strings.Count(strings.Join(alertTexts(m), "\n"), "node-3 unreachable"); got != 1 {
		t.Errorf("%d unreachable alerts for one outage: %q", got, alertTexts(m))
	}
	m.Update(statusMsg{node: goldenNodes[2], st: status("node-3", "Follower", 2, 110, 110), at: t0.Add(5 * time.Second)})
	if !hasAlert(m, "node-3 reachable again after 5s") {
		t.Errorf("alerts %q", alertTexts(m))
	}
	if strings.Contains(m.View(), "UNREACHABLE") {
		t.Errorf("node-3 still shown unreachable:\n%s", m.View())
	}
}

// TestLagAlert: a follower far behind the leader is flagged once, and
// cleared when it catches up.
func TestLagAlert(t *testing.T) {
	m := testModel(t, "")
	m.Update(statusMsg{node: goldenNodes[0], st: status("node-1", "Leader", 2, 5000, 5000), at: t0})
	m.Update(statusMsg{node: goldenNodes[1], st: status("node-2", "Follower", 2, 5000, 3000), at: t0})
	if !hasAlert(m, "node-2 is 2000 entries behind the leader node-1") || !strings.Contains(m.View(), "LAGGING") {
		t.Errorf("no lag alert: %q\n%s", alertTexts(m), m.View())
	}
	m.Update(statusMsg{node: goldenNodes[1], st: status("node-2", "Follower", 2, 5000, 4999), at: t0})
	if !hasAlert(m, "node-2 caught up") {
		t.Errorf("alerts %q", alertTexts(m))
	}
}

// TestVerifyInvalid shows INVALID and the reason for a tampered bundle.
func TestVerifyInvalid(t *testing.T) {
	m := testModelOf(t, Config{Nodes: goldenNodes, Keys: mustRead(t, filepath.Join("..", "notary", "testdata", "vectors", "keys.pub"))})
	press(m, "6", "o")
	m.verify.path.ti.SetValue(filepath.Join("..", "notary", "testdata", "vectors", "document-changed.json"))
	_, cmd := m.Update(keyMsg("enter"))
	if cmd == nil {
		t.Fatal("enter did not start a verification")
	}
	m.Update(cmd())
	view := m.View()
	if !strings.Contains(view, "INVALID: ") || !strings.Contains(view, "document") {
		t.Errorf("no INVALID with a reason:\n%s", view)
	}
}

// TestSlowNodeDoesNotFreeze: a node that never answers is shown
// unreachable after the request timeout, while the console keeps
// answering keys and drawing the other nodes.
func TestSlowNodeDoesNotFreeze(t *testing.T) {
	c := startLiveCluster(t, 1)
	hang := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(hang); slow.Close() })
	cfg := Config{Nodes: []string{c.urls[0], slow.URL}, PollInterval: 50 * time.Millisecond, RequestTimeout: 300 * time.Millisecond}
	lc := startConsole(t, cfg, 100, 30)
	lc.waitScreen("the healthy node, and without a token, why no peers show", "leader node-1", "peers and alerts need an operator token (--token-file)")
	lc.Type("j")
	lc.waitScreen("the hung node", "unreachable: timeout after 300ms")
	lc.Type("5")
	lc.waitScreen("the alerts tab while a node hangs", "[5 Alerts", "unreachable: timeout after 300ms")
	lc.Quit()
	lc.WaitFinished(t, teatest.WithFinalTimeout(5*time.Second))
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := readLimited(path, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
