package monitor_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/telenotary/telenotary/cluster/monitor"
	"github.com/telenotary/telenotary/cluster/monitor/monitorapi"
	"github.com/telenotary/telenotary/cluster/monitor/monitortest"
	"github.com/telenotary/telenotary/notary"
	"github.com/telenotary/telenotary/notary/filestore"
)

// The logs of these tests are the notary package's logs (in directories,
// or in memory where a test must write what the log itself refuses),
// served by the cluster's real API handlers (httpd) without raft: see
// package monitortest.

const origin = "monitor.test/log"

// t0 is when the test logs' leaves are stamped from.
const t0 = int64(1_790_000_000_000)

// fileNode opens a log in a new directory.
func fileNode(t *testing.T, keys monitortest.Keys) *monitortest.Node {
	t.Helper()
	s, err := filestore.Open(t.TempDir(), filestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return monitortest.NewNode(t, origin, keys, s)
}

// leaves are n leaves tagged tag, stamped a millisecond apart from first.
func leaves(tag string, n int, first int64) []notary.Leaf {
	out := make([]notary.Leaf, n)
	for i := range out {
		out[i] = monitortest.Leaf(tag, i, first+int64(i))
	}
	return out
}

// webhook is a receiver of the monitor's alerts.
type webhook struct {
	url  string
	mu   sync.Mutex
	got  []monitor.Alert
	raw  [][]byte
	fail int // answer 503 to this many requests first
}

func newWebhook(t *testing.T) *webhook {
	w := &webhook{}
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.mu.Lock()
		defer w.mu.Unlock()
		if w.fail > 0 {
			w.fail--
			http.Error(rw, "not now", http.StatusServiceUnavailable)
			return
		}
		var a monitor.Alert
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" || json.Unmarshal(body, &a) != nil {
			http.Error(rw, "bad alert", http.StatusBadRequest)
			return
		}
		w.got, w.raw = append(w.got, a), append(w.raw, body)
	}))
	t.Cleanup(srv.Close)
	w.url = srv.URL
	return w
}

func (w *webhook) alerts() []monitor.Alert {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.got)
}

func newMonitor(t *testing.T, cfg monitor.Config) *monitor.Monitor {
	t.Helper()
	m, err := monitor.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func pollOnce(t *testing.T, m *monitor.Monitor) monitor.Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return m.PollOnce(ctx)
}

// metric sums the series of a metric of reg whose label values include
// label (all of them when label is "").
func metric(t *testing.T, reg *prometheus.Registry, name, label string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			match := label == ""
			for _, lp := range m.GetLabel() {
				match = match || lp.GetValue() == label
			}
			if match {
				sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
			}
		}
	}
	return sum
}

func kinds(as []monitor.Alert) []monitor.Kind {
	var out []monitor.Kind
	for _, a := range as {
		out = append(out, a.Kind)
	}
	return out
}

// TestSplitView: two logs with the same origin and keys that share ten
// leaves and then diverge, served by two nodes. The monitor raises one
// split-view alert naming both nodes, saves both signed checkpoints as
// evidence files that still open under the policy, and POSTs the alert to
// the webhook (which refuses the first try). A second poll raises nothing
// new.
func TestSplitView(t *testing.T) {
	for _, tc := range []struct {
		name   string
		aTail  int
		bTail  int
		reason string
	}{
		{"different sizes", 5, 3, "does not verify"},
		{"same size", 4, 4, "the same size with different roots"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			keys := monitortest.NewKeys(t, 3)
			a, b := fileNode(t, keys), fileNode(t, keys)
			shared := leaves("shared", 10, t0)
			a.Append(t, shared...)
			b.Append(t, shared...)
			a.Append(t, leaves("fork-a", tc.aTail, t0+100)...)
			b.Append(t, leaves("fork-b", tc.bTail, t0+100)...)
			urlA, urlB := a.Serve(t, nil), b.Serve(t, nil)
			hook := newWebhook(t)
			hook.fail = 1
			dir := t.TempDir()
			policy := keys.Policy(t, 2, origin)
			reg := prometheus.NewRegistry()
			m := newMonitor(t, monitor.Config{Nodes: []string{urlA, urlB}, Policy: policy, EvidenceDir: dir, Webhook: hook.url, Registerer: reg})

			rep := pollOnce(t, m)
			if len(rep.Unchecked) != 0 {
				t.Fatalf("unchecked nodes: %v", rep.Unchecked)
			}
			if got := kinds(rep.Alerts); !slices.Equal(got, []monitor.Kind{monitor.KindSplitView}) {
				t.Fatalf("alerts %v, want one split view: %+v", got, rep.Alerts)
			}
			al := rep.Alerts[0]
			if !slices.Contains(al.Nodes, urlA) || !slices.Contains(al.Nodes, urlB) || !strings.Contains(al.Message, tc.reason) {
				t.Errorf("alert %+v: want both nodes and %q", al, tc.reason)
			}
			// The evidence: both checkpoints, as served, still open under
			// the policy, and they are the two nodes' heads.
			if len(al.Checkpoints) != 2 || al.Dir == "" {
				t.Fatalf("evidence %+v in %q", al.Checkpoints, al.Dir)
			}
			want := map[notary.Checkpoint]bool{a.Checkpoint().Checkpoint: true, b.Checkpoint().Checkpoint: true}
			for _, e := range al.Checkpoints {
				saved, err := os.ReadFile(filepath.Join(dir, e.File))
				if err != nil {
					t.Fatal(err)
				}
				if string(saved) != e.Checkpoint {
					t.Errorf("%s is not the checkpoint served", e.File)
				}
				cp, err := notary.OpenCheckpoint(saved, policy)
				if err != nil {
					t.Errorf("evidence %s does not open under the policy: %v", e.File, err)
				}
				if !want[cp.Checkpoint] {
					t.Errorf("evidence %s is %+v, not a node's head", e.File, cp.Checkpoint)
				}
				delete(want, cp.Checkpoint)
			}
			var saved monitor.Alert
			if js, err := os.ReadFile(filepath.Join(dir, al.Dir, "alert.json")); err != nil || json.Unmarshal(js, &saved) != nil || saved.Kind != monitor.KindSplitView {
				t.Errorf("alert.json: %v, %+v", err, saved)
			}
			// The webhook took it on the second try.
			if got := hook.alerts(); len(got) != 1 || got[0].Kind != monitor.KindSplitView || len(got[0].Checkpoints) != 2 ||
				got[0].Checkpoints[0].Checkpoint == got[0].Checkpoints[1].Checkpoint || len(got[0].Nodes) != 2 {
				t.Errorf("webhook got %+v", got)
			}
			if n := metric(t, reg, "telenotary_monitor_alerts_total", "split-view"); n != 1 {
				t.Errorf("alerts metric %v, want 1", n)
			}
			// Each node's own leaves match its own checkpoint: no other
			// alert, and nothing new the next time.
			if rep := pollOnce(t, m); len(rep.Alerts) != 0 {
				t.Errorf("second poll raised %v", kinds(rep.Alerts))
			}
			for _, st := range m.Nodes() {
				if st.Verified != st.Size {
					t.Errorf("%s: verified %d of %d", st.Node, st.Verified, st.Size)
				}
			}
			// The split view is also seen by a monitor that met the
			// nodes in the other order.
			m2 := newMonitor(t, monitor.Config{Nodes: []string{urlB, urlA}, Policy: policy})
			if got := kinds(pollOnce(t, m2).Alerts); !slices.Equal(got, []monitor.Kind{monitor.KindSplitView}) {
				t.Errorf("other order: %v", got)
			}
		})
	}
}

// TestConsistentNodes: a node that lags behind another of the same log (a
// prefix of it), and both growing between polls, raise no alert; the
// monitor's tree of each node's leaves gives the node's signed root, and
// it reads only the new leaves at each poll.
func TestConsistentNodes(t *testing.T) {
	keys := monitortest.NewKeys(t, 3)
	a, b := fileNode(t, keys), fileNode(t, keys)
	all := leaves("log", 2500, t0)
	a.Append(t, all[:1200]...)
	b.Append(t, all[:700]...)
	reg := prometheus.NewRegistry()
	m := newMonitor(t, monitor.Config{Nodes: []string{a.Serve(t, nil), b.Serve(t, nil)}, Policy: keys.Policy(t, 1, ""), Registerer: reg})
	check := func() {
		t.Helper()
		rep := pollOnce(t, m)
		if len(rep.Alerts) != 0 || len(rep.Unchecked) != 0 {
			t.Fatalf("alerts %+v, unchecked %v", rep.Alerts, rep.Unchecked)
		}
		for i, n := range []*monitortest.Node{a, b} {
			st, cp := m.Nodes()[i], n.Checkpoint()
			if st.Size != cp.Size || st.Verified != cp.Size || st.VerifiedRoot != cp.Root || st.Derived != cp.Size {
				t.Fatalf("node %d: %+v, checkpoint size %d root %s", i, st, cp.Size, cp.Root)
			}
		}
	}
	check()
	a.Append(t, all[1200:2500]...)
	b.Append(t, all[700:1300]...)
	check()
	if read := metric(t, reg, "telenotary_monitor_leaves_read_total", ""); read != 2500+1300 {
		t.Errorf("read %v leaves for logs of 2500 and 1300: not only the new ones", read)
	}
}

// TestTimestampBackwards: a log whose tree and checkpoints are sound but
// whose leaf 5 is stamped before leaf 4 (and leaf 7 before leaf 6) raises
// timestamp-backwards once, for leaf 5, and nothing else.
func TestTimestampBackwards(t *testing.T) {
	keys := monitortest.NewKeys(t, 1)
	store := notary.NewMemoryStore()
	ls := leaves("log", 8, t0)
	ls[5].Timestamp = t0 - 1
	ls[7].Timestamp = t0 - 2
	monitortest.CommitUnchecked(t, store, ls...)
	n := monitortest.NewNode(t, origin, keys, store)
	m := newMonitor(t, monitor.Config{Nodes: []string{n.Serve(t, nil)}, Policy: keys.Policy(t, 1, origin)})
	rep := pollOnce(t, m)
	if got := kinds(rep.Alerts); !slices.Equal(got, []monitor.Kind{monitor.KindTimeBackwards}) || *rep.Alerts[0].Index != 5 {
		t.Fatalf("alerts %+v, want timestamp-backwards at leaf 5", rep.Alerts)
	}
	if st := m.Nodes()[0]; st.Verified != 8 {
		t.Errorf("the root was not checked: %+v", st)
	}
}

// TestRootMismatch: a node that serves leaves other than those it signed
// the root of (one commitment changed) raises root-mismatch, with its
// checkpoint as evidence.
func TestRootMismatch(t *testing.T) {
	keys := monitortest.NewKeys(t, 1)
	n := fileNode(t, keys)
	n.Append(t, leaves("log", 30, t0)...)
	n.Tamper(func(i uint64, l *notary.Leaf) {
		if i == 17 {
			l.Commitment[0] ^= 1
		}
	})
	dir := t.TempDir()
	m := newMonitor(t, monitor.Config{Nodes: []string{n.Serve(t, nil)}, Policy: keys.Policy(t, 1, origin), EvidenceDir: dir})
	rep := pollOnce(t, m)
	if got := kinds(rep.Alerts); !slices.Equal(got, []monitor.Kind{monitor.KindRootMismatch}) {
		t.Fatalf("alerts %+v, want root-mismatch", rep.Alerts)
	}
	saved, err := os.ReadFile(filepath.Join(dir, rep.Alerts[0].Checkpoints[0].File))
	if err != nil || !bytes.Equal(saved, n.Checkpoint().Note) {
		t.Errorf("evidence %q, %v", saved, err)
	}
	if st := m.Nodes()[0]; st.Verified != 0 {
		t.Errorf("a mismatched root counted as verified: %+v", st)
	}
}

// rewriteLeaves has a node's pages of leaves changed by fn, as decoded
// JSON objects.
func rewriteLeaves(fn func(leaves []map[string]any)) func(http.Handler) http.Handler {
	return func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/v1/leaves" {
				h.ServeHTTP(w, r)
				return
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			var page struct {
				Leaves []map[string]any `json:"leaves"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &page); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			fn(page.Leaves)
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(page)
		})
	}
}

// TestMalformedLeaf: a node that serves a leaf with an undefined kind, or
// a negative timestamp, raises malformed-leaf naming the leaf, and the
// monitor stops reading that node's leaves.
func TestMalformedLeaf(t *testing.T) {
	for field, value := range map[string]any{"kind": "sorcery", "timestamp": -5, "index": 99} {
		t.Run(field, func(t *testing.T) {
			keys := monitortest.NewKeys(t, 1)
			n := fileNode(t, keys)
			n.Append(t, leaves("log", 10, t0)...)
			url := n.Serve(t, rewriteLeaves(func(ls []map[string]any) {
				for _, l := range ls {
					if l["index"] == 6.0 {
						l[field] = value
					}
				}
			}))
			m := newMonitor(t, monitor.Config{Nodes: []string{url}, Policy: keys.Policy(t, 1, origin)})
			rep := pollOnce(t, m)
			if got := kinds(rep.Alerts); !slices.Equal(got, []monitor.Kind{monitor.KindMalformedLeaf}) || *rep.Alerts[0].Index != 6 {
				t.Fatalf("alerts %+v, want malformed-leaf at 6", rep.Alerts)
			}
			if st := m.Nodes()[0]; st.Stuck == "" || st.Derived != 0 {
				t.Errorf("state %+v", st)
			}
		})
	}
}

// TestBadSignature: a checkpoint whose signature was altered raises
// bad-signature; one signed by no key the policy trusts raises
// bad-checkpoint.
func TestBadSignature(t *testing.T) {
	keys := monitortest.NewKeys(t, 1)
	n := fileNode(t, keys)
	n.Append(t, leaves("log", 3, t0)...)
	altered := n.Serve(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/v1/checkpoint" {
				h.ServeHTTP(w, r)
				return
			}
			note := bytes.Clone(n.Checkpoint().Note)
			note[len(note)-5] ^= 1 // in the signature's base64
			w.Write(note)
		})
	})
	m := newMonitor(t, monitor.Config{Nodes: []string{altered}, Policy: keys.Policy(t, 1, origin)})
	if got := kinds(pollOnce(t, m).Alerts); !slices.Equal(got, []monitor.Kind{monitor.KindBadSignature}) {
		t.Errorf("altered signature: %v", got)
	}
	_, vkey, err := notary.GenerateKey("stranger")
	if err != nil {
		t.Fatal(err)
	}
	other := monitortest.Keys{Verifiers: []string{vkey}}
	m = newMonitor(t, monitor.Config{Nodes: []string{n.Serve(t, nil)}, Policy: other.Policy(t, 1, origin)})
	if got := kinds(pollOnce(t, m).Alerts); !slices.Equal(got, []monitor.Kind{monitor.KindBadCheckpoint}) {
		t.Errorf("untrusted key: %v", got)
	}
}

// TestUnreachableIsNotAnAlert: a node that does not answer is reported
// unchecked, not as a fault.
func TestUnreachableIsNotAnAlert(t *testing.T) {
	keys := monitortest.NewKeys(t, 1)
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close()
	m := newMonitor(t, monitor.Config{Nodes: []string{srv.URL}, Policy: keys.Policy(t, 1, origin)})
	rep := pollOnce(t, m)
	if len(rep.Alerts) != 0 || rep.Unchecked[srv.URL] == nil {
		t.Fatalf("report %+v", rep)
	}
}

// TestHandler: the monitor's HTTP handler serves its metrics, and its
// alerts with their checkpoints (left out with ?brief=1, which
// FetchAlerts asks for) and the state of each node.
func TestHandler(t *testing.T) {
	keys := monitortest.NewKeys(t, 1)
	a, b := fileNode(t, keys), fileNode(t, keys)
	a.Append(t, leaves("a", 3, t0)...)
	b.Append(t, leaves("b", 3, t0)...)
	reg := prometheus.NewRegistry()
	m := newMonitor(t, monitor.Config{Nodes: []string{a.Serve(t, nil), b.Serve(t, nil)}, Policy: keys.Policy(t, 1, origin), Registerer: reg})
	pollOnce(t, m)
	srv := httptest.NewServer(m.Handler(reg))
	defer srv.Close()

	resp, err := http.Get(srv.URL + "/v1/alerts")
	if err != nil {
		t.Fatal(err)
	}
	var full monitor.AlertsResponse
	err = json.NewDecoder(resp.Body).Decode(&full)
	resp.Body.Close()
	if err != nil || len(full.Alerts) != 1 || len(full.Alerts[0].Checkpoints) != 2 || full.Alerts[0].Checkpoints[0].Checkpoint == "" || len(full.Nodes) != 2 || full.Nodes[0].Size != 3 {
		t.Fatalf("GET /v1/alerts: %v, %+v", err, full)
	}
	brief, err := monitorapi.FetchAlerts(context.Background(), http.DefaultClient, srv.URL)
	if err != nil || len(brief.Alerts) != 1 || brief.Alerts[0].Kind != monitor.KindSplitView || len(brief.Alerts[0].Checkpoints) != 2 || brief.Alerts[0].Checkpoints[0].Checkpoint != "" {
		t.Fatalf("FetchAlerts: %v, %+v", err, brief)
	}
	resp, err = http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `telenotary_monitor_alerts_total{kind="split-view"} 1`) {
		t.Errorf("metrics:\n%s", body)
	}
}

// switching serves a's API until switched, then b's: one URL that shows
// one history, then another.
type switching struct {
	a, b http.Handler
	toB  atomic.Bool
}

func (s *switching) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.toB.Load() {
		s.b.ServeHTTP(w, r)
		return
	}
	s.a.ServeHTTP(w, r)
}

// TestSplitViewAcrossTime: one node that shows a history and, at a later
// poll, a larger one that does not extend it raises a split view naming
// that node alone, with both its checkpoints as evidence.
func TestSplitViewAcrossTime(t *testing.T) {
	keys := monitortest.NewKeys(t, 1)
	a, b := fileNode(t, keys), fileNode(t, keys)
	a.Append(t, leaves("a", 5, t0)...)
	b.Append(t, leaves("b", 9, t0)...)
	sw := &switching{a: a.Handler(), b: b.Handler()}
	srv := httptest.NewServer(sw)
	defer srv.Close()
	m := newMonitor(t, monitor.Config{Nodes: []string{srv.URL}, Policy: keys.Policy(t, 1, origin)})
	if rep := pollOnce(t, m); len(rep.Alerts) != 0 {
		t.Fatalf("first history: %+v", rep.Alerts)
	}
	sw.toB.Store(true)
	rep := pollOnce(t, m)
	if got := kinds(rep.Alerts); !slices.Contains(got, monitor.KindSplitView) {
		t.Fatalf("alerts %v, want a split view", got)
	}
	for _, al := range rep.Alerts {
		if al.Kind == monitor.KindSplitView && (len(al.Nodes) != 1 || al.Nodes[0] != srv.URL || len(al.Checkpoints) != 2 ||
			al.Checkpoints[0].Checkpoint != string(a.Checkpoint().Note) || al.Checkpoints[1].Checkpoint != string(b.Checkpoint().Note)) {
			t.Errorf("split view %+v", al)
		}
	}
}

// TestRunBoundsLeavesPerPoll: a running monitor reads at most
// LeavesPerPoll leaves of a node a poll, and catches up over the polls.
func TestRunBoundsLeavesPerPoll(t *testing.T) {
	keys := monitortest.NewKeys(t, 1)
	n := fileNode(t, keys)
	n.Append(t, leaves("log", 1000, t0)...)
	reg := prometheus.NewRegistry()
	m := newMonitor(t, monitor.Config{Nodes: []string{n.Serve(t, nil)}, Policy: keys.Policy(t, 1, origin), Interval: 10 * time.Millisecond, LeavesPerPoll: 150, Registerer: reg})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx, nil) }()
	deadline := time.Now().Add(time.Minute)
	for m.Nodes()[0].Verified != 1000 {
		if time.Now().After(deadline) {
			t.Fatalf("not caught up: %+v", m.Nodes()[0])
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != context.Canceled {
		t.Errorf("Run returned %v", err)
	}
	polls := metric(t, reg, "telenotary_monitor_polls_total", "")
	if read := metric(t, reg, "telenotary_monitor_leaves_read_total", ""); read != 1000 || polls < 7 {
		t.Errorf("read %v leaves in %v polls of at most 150", read, polls)
	}
	if len(m.Alerts()) != 0 {
		t.Errorf("alerts %+v", m.Alerts())
	}
}
