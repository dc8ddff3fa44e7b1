package tui

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/exp/teatest"
	"github.com/telenotary/telenotary/cluster/notaryapi"
	"github.com/telenotary/telenotary/session/signalapi"
)

// The URLs the golden scenario's nodes are configured with. Nothing is
// sent to them: the answers come from testdata.
var goldenNodes = []string{"http://127.0.0.1:18081", "http://127.0.0.1:18082", "http://127.0.0.1:18083"}

// loadRecording reads the answers a live cluster gave (see -record).
func loadRecording(t *testing.T) recording {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "recorded", "cluster.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rec recording
	if err := json.Unmarshal(b, &rec); err != nil {
		t.Fatal(err)
	}
	return rec
}

func loadSessions(t *testing.T) *signalapi.SessionsResponse {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "sessions.json"))
	if err != nil {
		t.Fatal(err)
	}
	var resp signalapi.SessionsResponse
	if err := json.Unmarshal(b, &resp); err != nil {
		t.Fatal(err)
	}
	return &resp
}

// goldenModel is a console that does not poll, at the recording's time,
// with a Try it tab showing tryIt unless it is "".
func goldenModel(t *testing.T, rec recording, tryIt string) *model {
	t.Helper()
	keys, err := os.ReadFile(filepath.Join("..", "notary", "testdata", "vectors", "keys.pub"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Nodes: goldenNodes, Signal: "http://127.0.0.1:18090", Token: operatorToken, Keys: keys, TryIt: tryIt}.withDefaults()
	m := newModel(cfg, func() time.Time { return rec.CapturedAt }, false)
	return m
}

// goldenMessages is the scenario every golden file shows: three nodes
// answered (node-3 then stopped answering), the event stream delivered two
// seconds of notarizations, the signalling server listed four
// consultations, and a bundle was verified. The leader's first answer,
// five seconds before its last, shows its log smaller by what the event
// stream counted.
func goldenMessages(t *testing.T, m *model, rec recording) []tea.Msg {
	t.Helper()
	var msgs []tea.Msg
	at := rec.CapturedAt
	start := at.Add(-2100 * time.Millisecond)
	var streamed uint64
	for _, e := range rec.Events {
		msgs = append(msgs, eventMsg{ev: e.Event, at: start.Add(time.Duration(e.OffsetMillis) * time.Millisecond)})
		if n := e.Event.Notarized; n != nil {
			streamed += n.Count
		}
	}
	msgs = append(msgs, streamMsg{node: goldenNodes[0], at: start})
	for i, raw := range rec.Statuses {
		var st notaryapi.Status
		if err := json.Unmarshal(raw, &st); err != nil {
			t.Fatal(err)
		}
		if st.State == notaryapi.StateLeader {
			st.LogSize -= streamed
		}
		msgs = append(msgs, statusMsg{node: goldenNodes[i], st: &st, at: at.Add(-5 * time.Second)})
	}
	refused := fmt.Errorf("Get %q: dial tcp 127.0.0.1:18083: connect: %w", goldenNodes[2]+"/v1/status", syscall.ECONNREFUSED)
	msgs = append(msgs, statusMsg{node: goldenNodes[2], err: refused, at: at.Add(-4 * time.Second)})
	for i, raw := range rec.Statuses[:2] {
		var st notaryapi.Status
		json.Unmarshal(raw, &st)
		msgs = append(msgs, statusMsg{node: goldenNodes[i], st: &st, at: at})
	}
	msgs = append(msgs, sessionsMsg{resp: loadSessions(t), at: at})
	msgs = append(msgs, m.src.verify(filepath.Join("..", "notary", "testdata", "vectors", "valid.json"))())
	return msgs
}

// nodeAlertMessages add to the scenario a round of answers in which
// node-2's clock runs 1.5 s ahead (node-1 says so, node-2 says its clock
// disagrees and that node-1's is off) and node-1 refused raft commands.
func nodeAlertMessages(t *testing.T, rec recording) []tea.Msg {
	t.Helper()
	var msgs []tea.Msg
	alerts := [][]notaryapi.Alert{
		{clockOff("node-2", "node-1", "1.502s"), {Kind: notaryapi.AlertRefusedCommands, Node: "node-1",
			Message: "node-1's state machine refused 2 raft commands (see its log): someone with raft access sent invalid ones"}},
		{selfSkew("node-2"), clockOff("node-1", "node-2", "-1.502s")},
	}
	for i, raw := range rec.Statuses[:2] {
		var st notaryapi.Status
		if err := json.Unmarshal(raw, &st); err != nil {
			t.Fatal(err)
		}
		st.Alerts = alerts[i]
		msgs = append(msgs, statusMsg{node: goldenNodes[i], st: &st, at: rec.CapturedAt})
	}
	return msgs
}

// lifecycleMessages add to the scenario a prescription's life after the
// recording (allowance, two dispenses, revocation), its status with both
// dispenses, and tills refused for signs of fraud and for races lost.
func lifecycleMessages(rec recording) []tea.Msg {
	x := newRxLife()
	size := uint64(0)
	for _, e := range rec.Events {
		if n := e.Event.Notarized; n != nil {
			size = max(size, n.Size)
		}
	}
	base := rec.CapturedAt.Add(-time.Second).UnixMilli()
	for i := range x.leaves {
		x.leaves[i].Index = size + uint64(i)
		x.leaves[i].Timestamp = base + x.leaves[i].Timestamp - t0.UnixMilli()
	}
	ev := x.event()
	ev.at = rec.CapturedAt.Add(-time.Second)
	return []tea.Msg{
		ev,
		rxStatusMsg{link: x.c, st: x.status(2)},
		refusedEvent(rec.CapturedAt, map[string]int{"fill_taken": 12, "bad_proof": 4, "revoked": 2}),
	}
}

// TestGolden draws every tab, the help and a confirmation at 80×24 and
// 160×48 with the ASCII colour profile, through a real Bubble Tea program;
// the Cluster and Alerts tabs once the nodes report alerts; and the Try it
// tab and the help of a console given a Try it text, as the demo's is.
func TestGolden(t *testing.T) {
	rec := loadRecording(t)
	views := []struct {
		name       string
		keys       string
		nodeAlerts bool // with nodeAlertMessages
		tryIt      bool // with tryItText
		lifecycle  bool // with lifecycleMessages
	}{
		{"cluster", "1", false, false, false},
		{"throughput", "2", false, false, false},
		{"feed", "3", false, false, false},
		{"feed-paused-filtered", "3p/presc\r", false, false, false},
		{"sessions", "4", false, false, false},
		{"alerts", "5", false, false, false},
		{"verify", "6", false, false, false},
		{"help", "?", false, false, false},
		{"confirm-remove", "1jx", false, false, false},
		{"cluster-node-alerts", "1j", true, false, false},
		{"alerts-node-alerts", "5", true, false, false},
		{"try-it", "7", false, true, false},
		{"try-it-help", "7?", false, true, false},
		{"feed-lifecycle", "3", false, false, true},
		{"throughput-lifecycle", "2", false, false, true},
		{"alerts-fraud", "5", false, false, true},
	}
	for _, size := range [][2]int{{80, 24}, {160, 48}} {
		for _, v := range views {
			t.Run(fmt.Sprintf("%s_%dx%d", v.name, size[0], size[1]), func(t *testing.T) {
				text := ""
				if v.tryIt {
					text = tryItText
				}
				m := goldenModel(t, rec, text)
				tm := teatest.NewTestModel(t, m, teatest.WithInitialTermSize(size[0], size[1]))
				msgs := goldenMessages(t, m, rec)
				if v.nodeAlerts {
					msgs = append(msgs, nodeAlertMessages(t, rec)...)
				}
				if v.lifecycle {
					msgs = append(msgs, lifecycleMessages(rec)...)
				}
				for _, msg := range msgs {
					tm.Send(msg)
				}
				typeKeys(tm, v.keys)
				tm.Quit()
				final := tm.FinalModel(t, teatest.WithFinalTimeout(5*time.Second)).(*model)
				view := final.View()
				checkFits(t, view, size[0], size[1])
				teatest.RequireEqualOutput(t, []byte(view))
			})
		}
	}
}

// typeKeys sends keys, with \r as enter.
func typeKeys(tm *teatest.TestModel, keys string) {
	for _, r := range keys {
		if r == '\r' {
			tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
			continue
		}
		tm.Send(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune{r}})
	}
}

// checkFits fails unless the view is exactly h lines of at most w cells.
func checkFits(t *testing.T, view string, w, h int) {
	t.Helper()
	lines := splitLines(view)
	if len(lines) != h {
		t.Errorf("the view has %d lines, want %d", len(lines), h)
	}
	for i, l := range lines {
		if n := cellWidth(l); n > w {
			t.Errorf("line %d is %d cells wide, more than %d: %q", i+1, n, w, l)
		}
	}
}
