package tui

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/telenotary/telenotary/cluster/monitor"
	"github.com/telenotary/telenotary/cluster/monitor/monitortest"
	"github.com/telenotary/telenotary/notary"
)

// TestMonitorAlerts: the Alerts tab shows the alerts of a real log
// monitor (two nodes of a forked log, served by the cluster's handlers
// without raft; the monitor's own HTTP handler), each once however often
// it is asked, and says when the monitor stops answering and answers
// again.
func TestMonitorAlerts(t *testing.T) {
	keys := monitortest.NewKeys(t, 1)
	var urls []string
	for _, tag := range []string{"a", "b"} {
		n := monitortest.NewNode(t, "console.test/log", keys, notary.NewMemoryStore())
		n.Append(t, monitortest.Leaf("shared", 0, 1), monitortest.Leaf(tag, 1, 2))
		urls = append(urls, n.Serve(t, nil))
	}
	mon, err := monitor.New(monitor.Config{Nodes: urls, Policy: keys.Policy(t, 1, "")})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if rep := mon.PollOnce(ctx); len(rep.Alerts) != 1 {
		t.Fatalf("the monitor raised %+v", rep.Alerts)
	}
	handler := mon.Handler(nil)
	var down atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		handler.ServeHTTP(w, r)
	}))
	defer srv.Close()

	m := testModelOf(t, Config{Nodes: goldenNodes, Monitors: []string{srv.URL + "/"}})
	ask := func() {
		t.Helper()
		m.Update(m.src.monitorAlerts(srv.URL)())
	}
	ask()
	ask()
	got := alertsLike(m, "split-view: split view: ")
	if len(got) != 1 || got[0].level != levelBad || got[0].source != "monitor" || !strings.Contains(got[0].text, "cannot both be true") {
		t.Fatalf("alerts %+v", m.alerts.list)
	}
	down.Store(true)
	ask()
	ask()
	if n := len(alertsLike(m, "log monitor "+srv.URL+" unreachable")); n != 1 {
		t.Errorf("%d unreachable alerts, want 1: %+v", n, m.alerts.list)
	}
	down.Store(false)
	ask()
	if len(alertsLike(m, "log monitor "+srv.URL+" answers again")) != 1 || len(alertsLike(m, "split-view: ")) != 1 {
		t.Errorf("alerts %+v", m.alerts.list)
	}
}
