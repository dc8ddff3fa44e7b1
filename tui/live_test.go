package tui

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/exp/teatest"
	"github.com/telenotary/telenotary/cluster/notaryapi"
	"github.com/telenotary/telenotary/notary"
)

// switchProxy stands in front of a node: it forwards, or, when down,
// drops every connection, so a test can take the node off the network
// and bring it back without restarting it.
type switchProxy struct {
	*httptest.Server
	down atomic.Bool
}

func newSwitchProxy(t *testing.T, target string) *switchProxy {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &switchProxy{}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.FlushInterval = -1 // the event stream flows as it comes
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p.down.Load() {
			if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
				conn.Close()
			}
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		p.CloseClientConnections()
		p.Close()
	})
	return p
}

// runLoad notarizes batches through c until ctx ends.
func runLoad(ctx context.Context, t *testing.T, urls []string) *sync.WaitGroup {
	cl := notaryapi.NewClient(notaryapi.ClientConfig{Nodes: urls, Token: "submitter-token-0123456789", MaxBackoff: 100 * time.Millisecond})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ctx.Err() == nil; i++ {
			batch := make([]notaryapi.Entry, 20)
			for j := range batch {
				batch[j].Kind = notary.Kind(1 + (i+j)%4)
				rand.Read(batch[j].Commitment[:])
			}
			cl.NotarizeBatch(ctx, batch) // errors during elections are expected
			select {
			case <-ctx.Done():
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	return &wg
}

// startConsole runs the console's model in a test program at w×h, with
// the event stream goroutine as Run starts it; both stop at cleanup.
func startConsole(t *testing.T, cfg Config, w, h int) *teatest.TestModel {
	t.Helper()
	m := newModel(cfg.withDefaults(), time.Now)
	tm := teatest.NewTestModel(t, m, teatest.WithInitialTermSize(w, h))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		followEvents(ctx, m.src, tm.Send)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return tm
}

// waitScreen waits until the console's output contains every string.
func waitScreen(t *testing.T, tm *teatest.TestModel, what string, want ...string) {
	t.Helper()
	teatest.WaitFor(t, tm.Output(), func(b []byte) bool {
		for _, w := range want {
			if !bytes.Contains(b, []byte(w)) {
				return false
			}
		}
		return true
	}, teatest.WithDuration(conditionWait), teatest.WithCheckInterval(20*time.Millisecond))
	t.Logf("on screen: %s", what)
}

// TestLiveCluster watches a real 3-node cluster under load: the console
// finds the leader, follows the event stream, sees a node drop off the
// network and come back, and moves leadership with t and y, seeing the
// new leader on screen and in its alerts.
func TestLiveCluster(t *testing.T) {
	c := startLiveCluster(t, 3)
	ctx, stop := context.WithCancel(context.Background())
	load := runLoad(ctx, t, c.urls)
	defer func() { stop(); load.Wait() }()

	if *record {
		recordAnswers(t, c)
	}
	// node-3 is watched through a proxy the test can switch off.
	proxy := newSwitchProxy(t, c.urls[2])
	cfg := Config{Nodes: []string{c.urls[0], c.urls[1], proxy.URL}, Token: operatorToken, PollInterval: 100 * time.Millisecond, RequestTimeout: time.Second}
	tm := startConsole(t, cfg, 120, 40)

	waitScreen(t, tm, "the leader and all nodes up", "leader node-1", "3/3 nodes up")
	tm.Send(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("3")})
	waitScreen(t, tm, "notarizations in the feed", "LIVE", "prescription")

	proxy.down.Store(true)
	proxy.CloseClientConnections()
	waitScreen(t, tm, "node-3 unreachable", "node-3 unreachable", "2/3 nodes up")
	proxy.down.Store(false)
	waitScreen(t, tm, "node-3 back", "node-3 reachable again", "3/3 nodes up")

	// Select node-2 and make it the leader.
	tm.Type("1jt")
	waitScreen(t, tm, "the confirmation", "Transfer leadership to node-2?")
	tm.Type("y")
	waitScreen(t, tm, "the new leader", "leadership moved to node-2", "leader node-2")
	tm.Type("5")
	waitScreen(t, tm, "the leader change in the alerts", "leader changed: node-1 -> node-2")

	tm.Quit()
	fm := tm.FinalModel(t, teatest.WithFinalTimeout(10*time.Second)).(*model)
	if l := fm.leader(); l == nil || l.name() != "node-2" {
		t.Fatalf("the console's leader is %v, want node-2", l)
	}
	if fm.receipts.total == 0 || len(fm.feed.items) == 0 {
		t.Fatalf("the console saw %d receipts and %d feed items from the stream, want some", fm.receipts.total, len(fm.feed.items))
	}
	var sawDown, sawBack, sawOperator bool
	for _, a := range fm.alerts {
		switch a.text {
		case "node-3 unreachable: EOF":
			sawDown = true
		case "operator: leadership moved to node-2":
			sawOperator = true
		}
		if bytes.HasPrefix([]byte(a.text), []byte("node-3 reachable again")) {
			sawBack = true
		}
	}
	if !sawDown || !sawBack || !sawOperator {
		t.Errorf("alerts: down %v, back %v, operator %v; all: %+v", sawDown, sawBack, sawOperator, fm.alerts)
	}
}

// recordAnswers writes what the nodes answer under load, for the golden
// tests: each node's /v1/status and two seconds of the event stream.
func recordAnswers(t *testing.T, c *liveCluster) {
	t.Helper()
	dir := filepath.Join("testdata", "recorded")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second) // recording only: let the load run
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	start := time.Now()
	var events []recordedEvent
	cl := notaryapi.NewClient(notaryapi.ClientConfig{Nodes: c.urls})
	cl.Events(ctx, c.urls[0], func(e notaryapi.Event) {
		events = append(events, recordedEvent{OffsetMillis: time.Since(start).Milliseconds(), Event: e})
	})
	rec := recording{CapturedAt: time.Now().UTC()}
	for _, u := range c.urls {
		resp, err := http.Get(u + "/v1/status")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		rec.Statuses = append(rec.Statuses, json.RawMessage(b))
	}
	rec.Events = events
	b, _ := json.MarshalIndent(rec, "", "  ")
	if err := os.WriteFile(filepath.Join(dir, "cluster.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("recorded %d statuses and %d events", len(rec.Statuses), len(events))
}

// recording is the API answers of a live cluster at one moment.
type recording struct {
	CapturedAt time.Time         `json:"captured_at"`
	Statuses   []json.RawMessage `json:"statuses"`
	Events     []recordedEvent   `json:"events"`
}

type recordedEvent struct {
	OffsetMillis int64           `json:"offset_ms"`
	Event        notaryapi.Event `json:"event"`
}
