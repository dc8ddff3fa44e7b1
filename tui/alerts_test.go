package tui

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/telenotary/telenotary/cluster/notaryapi"
)

// clockOff is the alert a node (from) raises about another's clock.
func clockOff(node, from, off string) notaryapi.Alert {
	return notaryapi.Alert{Kind: notaryapi.AlertClockSkew, Node: node, Message: node + "'s clock is " + off + " from " + from + "'s"}
}

// selfSkew is the alert a node raises when its clock disagrees with the
// cluster's.
func selfSkew(node string) notaryapi.Alert {
	return notaryapi.Alert{Kind: notaryapi.AlertClockSkew, Node: node,
		Message: node + "'s clock does not agree with a majority of the cluster's within 1s: as leader it would stamp nothing"}
}

// statusWith is a status that an operator sees: with the voters and the
// node's alerts.
func statusWith(id, state string, alerts ...notaryapi.Alert) *notaryapi.Status {
	st := status(id, state, 2, 100, 100)
	for _, p := range []string{"node-1", "node-2", "node-3"} {
		st.Peers = append(st.Peers, notaryapi.PeerStatus{ID: p, Reachable: true})
	}
	st.Alerts = alerts
	return st
}

// pollSkewed feeds one round of answers in which node-3's clock is off
// by off: every node says so, and node-3 says the others are off.
func pollSkewed(m *model, at time.Time, off string) {
	m.Update(statusMsg{node: goldenNodes[0], st: statusWith("node-1", "Leader", clockOff("node-3", "node-1", off)), at: at})
	m.Update(statusMsg{node: goldenNodes[1], st: statusWith("node-2", "Follower", clockOff("node-3", "node-2", off)), at: at})
	m.Update(statusMsg{node: goldenNodes[2], st: statusWith("node-3", "Follower",
		selfSkew("node-3"), clockOff("node-1", "node-3", "-"+off), clockOff("node-2", "node-3", "-"+off)), at: at})
}

// pollHealthy feeds one round of answers without alerts.
func pollHealthy(m *model, at time.Time) {
	for i, id := range []string{"node-1", "node-2", "node-3"} {
		state := "Follower"
		if i == 0 {
			state = "Leader"
		}
		m.Update(statusMsg{node: goldenNodes[i], st: statusWith(id, state), at: at})
	}
}

// alertsLike are the alerts whose text starts with prefix.
func alertsLike(m *model, prefix string) []alert {
	var out []alert
	for _, a := range m.alerts.list {
		if strings.HasPrefix(a.text, prefix) {
			out = append(out, a)
		}
	}
	return out
}

// rowOf is the line of the Cluster tab's table about a node.
func rowOf(t *testing.T, view, id string) string {
	t.Helper()
	for _, l := range strings.Split(view, "\n") {
		if strings.Contains(l, " "+id+" ") && strings.Contains(l, "127.0.0.1:") {
			return l
		}
	}
	t.Fatalf("no row of %s in:\n%s", id, view)
	return ""
}

// TestNodeAlerts: every node reports node-3's clock as off at every poll
// (with a new offset each time), and node-3 reports the others: the
// Alerts tab shows one alert, first seen at the first poll, nothing about
// node-1 or node-2, and the Cluster tab marks node-3 alone. A node that
// stops answering does not clear it; answers without it do, once; when it
// comes back it is a new alert.
func TestNodeAlerts(t *testing.T) {
	m := testModel(t, operatorToken)
	pollSkewed(m, t0, "8760h0m0.012s")
	pollSkewed(m, t0.Add(time.Second), "8760h0m0.015s")
	pollSkewed(m, t0.Add(2*time.Second), "8760h0m0.009s")

	got := alertsLike(m, "clock-skew on ")
	if len(got) != 1 {
		t.Fatalf("clock alerts %+v, want one", got)
	}
	if a := got[0]; a.text != "clock-skew on node-3: node-3's clock is 8760h0m0.012s from node-1's" || !a.at.Equal(t0) || a.level != levelBad {
		t.Errorf("the clock alert is %+v, want node-1's message at the first poll (%v), level ALERT", a, t0)
	}
	view := m.View()
	if !strings.Contains(rowOf(t, view, "node-3"), "CLOCK SKEW") {
		t.Errorf("node-3 is not marked:\n%s", view)
	}
	for _, id := range []string{"node-1", "node-2"} {
		if strings.Contains(rowOf(t, view, id), "CLOCK SKEW") {
			t.Errorf("%s is marked from node-3's word alone:\n%s", id, view)
		}
	}
	// The details say what the nodes say now.
	press(m, "j", "j")
	if view := m.View(); !strings.Contains(view, "clock-skew: node-3's clock is 8760h0m0.009s from node-1's") {
		t.Errorf("node-3's details lack the latest alert:\n%s", view)
	}

	m.Update(statusMsg{node: goldenNodes[2], err: context.DeadlineExceeded, at: t0.Add(3 * time.Second)})
	if got := alertsLike(m, "clock-skew on node-3 cleared"); len(got) != 0 {
		t.Errorf("an unreachable node cleared the alert: %+v", got)
	}
	pollHealthy(m, t0.Add(4*time.Second))
	pollHealthy(m, t0.Add(5*time.Second))
	if got := alertsLike(m, "clock-skew on node-3 cleared"); len(got) != 1 || !got[0].at.Equal(t0.Add(4*time.Second)) {
		t.Errorf("cleared alerts %+v, want one at the first healthy round", got)
	}
	if strings.Contains(m.View(), "CLOCK SKEW") {
		t.Errorf("node-3 still marked once healthy:\n%s", m.View())
	}
	pollSkewed(m, t0.Add(6*time.Second), "8760h0m0.011s")
	if got := alertsLike(m, "clock-skew on node-3:"); len(got) != 2 || !got[1].at.Equal(t0.Add(6*time.Second)) {
		t.Errorf("clock alerts %+v, want a second one when it came back", got)
	}
}

// TestNodeAlertKinds: the time and refused-command alerts show once per
// node however often they are polled and however their counts change.
func TestNodeAlertKinds(t *testing.T) {
	m := testModel(t, operatorToken)
	ahead := notaryapi.Alert{Kind: notaryapi.AlertLogTimeAhead, Node: "node-1", Message: "the log's newest leaf is stamped 8760h0m0s ahead of node-1's clock"}
	for i := range 3 {
		refused := notaryapi.Alert{Kind: notaryapi.AlertRefusedCommands, Node: "node-1",
			Message: "node-1's state machine refused " + string(rune('3'+i)) + " raft commands"}
		m.Update(statusMsg{node: goldenNodes[0], st: statusWith("node-1", "Leader", ahead, refused), at: t0.Add(time.Duration(i) * time.Second)})
		m.Update(statusMsg{node: goldenNodes[1], st: statusWith("node-2", "Follower"), at: t0.Add(time.Duration(i) * time.Second)})
	}
	for prefix, want := range map[string]string{
		"log-time-ahead on node-1":   "log-time-ahead on node-1: the log's newest leaf is stamped 8760h0m0s ahead of node-1's clock",
		"refused-commands on node-1": "refused-commands on node-1: node-1's state machine refused 3 raft commands",
	} {
		if got := alertsLike(m, prefix); len(got) != 1 || got[0].text != want || !got[0].at.Equal(t0) {
			t.Errorf("%s: %+v, want one: %q at %v", prefix, got, want, t0)
		}
	}
	press(m, "5")
	if view := m.View(); !strings.Contains(view, "refused-commands on node-1") || !strings.Contains(view, "log-time-ahead on node-1") {
		t.Errorf("the Alerts tab lacks the nodes' alerts:\n%s", view)
	}
}

// TestPeersNeedToken: a node shows its peers and alerts only to an
// operator token; the Cluster tab says why they are missing.
func TestPeersNeedToken(t *testing.T) {
	anonymous := status("node-1", "Leader", 2, 100, 100)
	tests := []struct {
		name, token string
		st          *notaryapi.Status
		want        string
	}{
		{"no token", "", anonymous, "peers and alerts need an operator token (--token-file)"},
		{"a token that is not the operator's", "submitter-token-0123456789", anonymous, "the nodes show no peers or alerts to this token: is it an operator token?"},
		{"the operator token", operatorToken, statusWith("node-1", "Leader"), "voters (as the leader sees them): node-1 ok, node-2 ok, node-3 ok"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := testModel(t, tt.token)
			m.Update(statusMsg{node: goldenNodes[0], st: tt.st, at: t0})
			if view := m.View(); !strings.Contains(view, tt.want) {
				t.Errorf("the Cluster tab lacks %q:\n%s", tt.want, view)
			}
			press(m, "5")
			if note := "the nodes' own alerts need an operator token"; strings.Contains(m.View(), note) != (tt.token == "") {
				t.Errorf("with token %q, the Alerts tab's note is wrong:\n%s", tt.token, m.View())
			}
		})
	}
}

// TestStatusPollsCarryToken: the console asks for a node's status with
// the operator token when it has one (so the node shows its peers and
// alerts), and without any otherwise.
func TestStatusPollsCarryToken(t *testing.T) {
	for _, token := range []string{operatorToken, ""} {
		var mu sync.Mutex
		var auth []string
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			auth = append(auth, r.Header.Get("Authorization"))
			mu.Unlock()
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"id":"node-1","state":"Leader","ready":true,"term":2}`))
		}))
		m := testModelOf(t, Config{Nodes: []string{srv.URL}, Token: token})
		msg := m.src.status(srv.URL)().(statusMsg)
		srv.Close()
		want := ""
		if token != "" {
			want = "Bearer " + token
		}
		if msg.err != nil || len(auth) != 1 || auth[0] != want {
			t.Errorf("token %q: err %v, Authorization %q, want %q", token, msg.err, auth, want)
		}
	}
}

// TestStaleStatusAfterStreamLeaderChange: the event stream says node-2
// leads (without a term); a status node-1 sent as leader before the
// change, read after it, does not bring node-1 back.
func TestStaleStatusAfterStreamLeaderChange(t *testing.T) {
	m := testModel(t, "")
	m.Update(statusMsg{node: goldenNodes[0], st: status("node-1", "Leader", 2, 100, 100), at: t0})
	t1 := t0.Add(time.Second)
	m.Update(eventMsg{ev: notaryapi.Event{Type: "cluster", Change: "leader", Node: "node-2"}, at: t1})
	m.Update(statusMsg{node: goldenNodes[0], st: status("node-1", "Leader", 2, 101, 101), at: t1})
	m.Update(statusMsg{node: goldenNodes[1], st: status("node-2", "Leader", 3, 102, 102), at: t1})
	want := []string{"node-1 leads (term 2)", "leader changed: node-1 -> node-2"}
	if got := alertTexts(m); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("alerts %q, want %q", got, want)
	}
}
