package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/telenotary/telenotary/cluster/monitor"
	"github.com/telenotary/telenotary/cluster/monitor/monitortest"
	"github.com/telenotary/telenotary/notary"
)

// The nodes of these tests are notary logs in memory served by the
// cluster's own API handlers without raft (package monitortest).

const monitorOrigin = "monitor.test/log"

// monitoredLogs are two nodes of one log, with its keys file.
type monitoredLogs struct {
	keys       monitortest.Keys
	keysFile   string
	a, b       *monitortest.Node
	urlA, urlB string
}

// newMonitoredLogs makes two nodes holding the same n leaves.
func newMonitoredLogs(t *testing.T, n int) *monitoredLogs {
	l := &monitoredLogs{keys: monitortest.NewKeys(t, 3)}
	l.keysFile = filepath.Join(t.TempDir(), "keys.pub")
	if err := os.WriteFile(l.keysFile, []byte(l.keys.File()), 0o644); err != nil {
		t.Fatal(err)
	}
	l.a = monitortest.NewNode(t, monitorOrigin, l.keys, notary.NewMemoryStore())
	l.b = monitortest.NewNode(t, monitorOrigin, l.keys, notary.NewMemoryStore())
	l.a.Append(t, monitorLeaves("shared", n, 0)...)
	l.b.Append(t, monitorLeaves("shared", n, 0)...)
	l.urlA, l.urlB = l.a.Serve(t, nil), l.b.Serve(t, nil)
	return l
}

func monitorLeaves(tag string, n int, from int64) []notary.Leaf {
	out := make([]notary.Leaf, n)
	for i := range out {
		out[i] = monitortest.Leaf(tag, i, 1_790_000_000_000+from+int64(i))
	}
	return out
}

// alertSink is a webhook receiver.
type alertSink struct {
	mu  sync.Mutex
	got []monitor.Alert
	url string
}

func newAlertSink(t *testing.T) *alertSink {
	s := &alertSink{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var a monitor.Alert
		body, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(body, &a); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		s.got = append(s.got, a)
		s.mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	s.url = srv.URL
	return s
}

// TestMonitorOnceSplitView: telenotary monitor --once on two nodes of a
// forked log exits 3, with the two signed checkpoints saved as evidence
// that opens under the keys, and the alert POSTed to the webhook.
func TestMonitorOnceSplitView(t *testing.T) {
	l := newMonitoredLogs(t, 20)
	l.a.Append(t, monitorLeaves("fork-a", 7, 100)...)
	l.b.Append(t, monitorLeaves("fork-b", 3, 100)...)
	dir := filepath.Join(t.TempDir(), "evidence")
	sink := newAlertSink(t)
	code, stdout, stderr := runCmd(t, nil, "monitor", "--once", "--nodes", l.urlA+","+l.urlB, "--keys", l.keysFile, "--min-signatures", "2",
		"--evidence-dir", dir, "--webhook", sink.url)
	if code != exitSplitView || !strings.Contains(stderr, "split view") {
		t.Fatalf("exit %d, want %d\nstdout %s\nstderr %s", code, exitSplitView, stdout, stderr)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*-split-view-*", "checkpoint-*.txt"))
	if len(files) != 2 {
		t.Fatalf("evidence files %v", files)
	}
	policy := l.keys.Policy(t, 2, monitorOrigin)
	sizes := map[uint64]bool{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		cp, err := notary.OpenCheckpoint(b, policy)
		if err != nil {
			t.Fatalf("%s does not verify with the keys: %v", f, err)
		}
		sizes[cp.Size] = true
	}
	if !sizes[27] || !sizes[23] {
		t.Errorf("evidence of sizes %v, want the heads 27 and 23", sizes)
	}
	sink.mu.Lock()
	defer sink.mu.Unlock()
	if len(sink.got) != 1 || sink.got[0].Kind != monitor.KindSplitView || len(sink.got[0].Nodes) != 2 || len(sink.got[0].Checkpoints) != 2 {
		t.Errorf("webhook got %+v", sink.got)
	}
}

// TestMonitorOnceExitCodes: --once exits 0 on a sound log (and prints
// each node's checked size), 4 on a fault other than a split view, 1 when
// a node cannot be reached; bad command lines exit 2.
func TestMonitorOnceExitCodes(t *testing.T) {
	l := newMonitoredLogs(t, 12)
	l.a.Append(t, monitorLeaves("more", 5, 100)...) // b lags: a prefix
	code, stdout, stderr := runCmd(t, nil, "monitor", "--once", "--nodes", l.urlA+","+l.urlB, "--keys", l.keysFile)
	if code != exitOK || !strings.Contains(stdout, l.urlA+": size 17, leaves checked to 17") || !strings.Contains(stdout, l.urlB+": size 12, leaves checked to 12") {
		t.Fatalf("sound log: exit %d\nstdout %s\nstderr %s", code, stdout, stderr)
	}

	l.b.Tamper(func(i uint64, lf *notary.Leaf) { lf.Commitment[0] ^= 1 })
	if code, _, stderr := runCmd(t, nil, "monitor", "--once", "--nodes", l.urlA+","+l.urlB, "--keys", l.keysFile); code != exitFault || !strings.Contains(stderr, "root-mismatch") {
		t.Fatalf("tampered leaves: exit %d, want %d\n%s", code, exitFault, stderr)
	}

	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	if code, _, stderr := runCmd(t, nil, "monitor", "--once", "--nodes", l.urlA+","+down.URL, "--keys", l.keysFile); code != exitFailure || !strings.Contains(stderr, "1 of 2 nodes were not checked") {
		t.Fatalf("a node down: exit %d, want %d\n%s", code, exitFailure, stderr)
	}

	for _, args := range [][]string{
		{"--nodes", l.urlA},                          // no --keys
		{"--keys", l.keysFile},                       // no --nodes
		{"--nodes", "ftp://x", "--keys", l.keysFile}, // not http
		{"--nodes", l.urlA + "," + l.urlA, "--keys", l.keysFile},
		{"--nodes", l.urlA, "--keys", l.keysFile, "--min-signatures", "4"},
		{"--nodes", l.urlA, "--keys", l.keysFile, "--once", "--exit-on-split-view"},
		{"--nodes", l.urlA, "--keys", l.keysFile, "--interval", "1ms"},
		{"--nodes", l.urlA, "--keys", l.keysFile, "--webhook", "not a url"},
		{"--nodes", l.urlA, "--keys", filepath.Join(t.TempDir(), "missing")},
	} {
		code, stdout, stderr := runCmd(t, nil, append([]string{"monitor"}, args...)...)
		if code != exitUsage || stdout != "" || !strings.HasPrefix(stderr, "telenotary monitor: ") {
			t.Errorf("monitor %s: exit %d\nstdout %q\nstderr %q", strings.Join(args, " "), code, stdout, stderr)
		}
	}
}

// TestMonitorStopsAtSplitView: a monitor that keeps running with
// --exit-on-split-view polls a sound log without stopping, and exits 3
// once one node forks; its metrics and alerts are served on
// --metrics-addr.
func TestMonitorStopsAtSplitView(t *testing.T) {
	l := newMonitoredLogs(t, 10)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	type result struct {
		code           int
		stdout, stderr string
	}
	done := make(chan result, 1)
	addr := freeAddr(t)
	go func() {
		code, stdout, stderr := runCmdContext(t, ctx, nil, "monitor", "--nodes", l.urlA+","+l.urlB, "--keys", l.keysFile,
			"--interval", "100ms", "--exit-on-split-view", "--metrics-addr", addr)
		done <- result{code, stdout, stderr}
	}()
	// Polls go on while the log is sound.
	waitMetric(t, ctx, addr, "telenotary_monitor_polls_total", 3)
	select {
	case r := <-done:
		t.Fatalf("the monitor stopped on a sound log: exit %d\n%s", r.code, r.stderr)
	default:
	}
	l.b.Append(t, monitorLeaves("fork-b", 2, 100)...)
	l.a.Append(t, monitorLeaves("fork-a", 2, 100)...)
	select {
	case r := <-done:
		if r.code != exitSplitView {
			t.Fatalf("exit %d, want %d\n%s", r.code, exitSplitView, r.stderr)
		}
	case <-ctx.Done():
		t.Fatal("the monitor did not stop at the split view")
	}
}

// freeAddr is a loopback address no one listens on now.
func freeAddr(t *testing.T) string {
	srv := httptest.NewServer(http.NotFoundHandler())
	addr := srv.Listener.Addr().String()
	srv.Close()
	return addr
}

// waitMetric polls the monitor's /metrics until the metric without
// labels name is at least min.
func waitMetric(t *testing.T, ctx context.Context, addr, name string, min float64) {
	t.Helper()
	for {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			for _, l := range strings.Split(string(body), "\n") {
				if v, ok := strings.CutPrefix(l, name+" "); ok {
					if f, err := strconv.ParseFloat(v, 64); err == nil && f >= min {
						return
					}
				}
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s did not reach %v in the monitor's metrics", name, min)
		case <-time.After(20 * time.Millisecond):
		}
	}
}
