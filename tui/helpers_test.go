package tui

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/charmbracelet/lipgloss"
	"github.com/muesli/termenv"
	"github.com/telenotary/telenotary/cluster"
	"github.com/telenotary/telenotary/cluster/auth"
	"golang.org/x/mod/sumdb/note"
)

// -record rewrites testdata/recorded from a live in-process cluster (see
// TestLiveCluster); -update rewrites the golden files.
var record = flag.Bool("record", false, "record API answers of a live cluster into testdata/recorded")

func TestMain(m *testing.M) {
	// Golden files hold plain text: no colour, no attributes.
	lipgloss.SetColorProfile(termenv.Ascii)
	os.Exit(m.Run())
}

const (
	operatorToken = "operator-token-0123456789"
	pharmacyToken = "pharmacy-token-0123456789"
	testTokens    = "submitter submitter-token-0123456789\noperator " + operatorToken + "\npharmacy " + pharmacyToken + "\n"
	conditionWait = 30 * time.Second
)

// liveCluster is a cluster of in-process nodes on loopback TCP.
type liveCluster struct {
	t     *testing.T
	dir   string
	nodes []*cluster.Node
	urls  []string
}

// startLiveCluster starts n nodes (the first bootstraps, the others join
// it) and waits until all are voters and ready. configure, when given,
// changes the config of the i-th node (from 0) before it starts.
func startLiveCluster(t *testing.T, n int, configure ...func(i int, cfg *cluster.Config)) *liveCluster {
	t.Helper()
	c := &liveCluster{t: t, dir: t.TempDir()}
	// Registered before the nodes' Close, so it runs after it: the logs of
	// a node that is still shutting down go nowhere once the test ends.
	logs := newTestWriter(t)
	t.Cleanup(func() {
		for _, n := range c.nodes {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			n.Close(ctx)
			cancel()
		}
	})
	tokens, err := auth.ParseTokens([]byte(testTokens))
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		id := fmt.Sprintf("node-%d", i+1)
		skey, vkey, err := note.GenerateKey(nil, id)
		if err != nil {
			t.Fatal(err)
		}
		signer, err := note.NewSigner(skey)
		if err != nil {
			t.Fatal(err)
		}
		cfg := cluster.DefaultConfig()
		cfg.ID, cfg.DataDir = id, filepath.Join(c.dir, id)
		cfg.RaftAddr, cfg.HTTPAddr, cfg.InsecureRaft = "127.0.0.1:0", "127.0.0.1:0", true
		cfg.Signer, cfg.VerifierKey, cfg.Tokens, cfg.JoinToken = signer, vkey, tokens, operatorToken
		cfg.HeartbeatTimeout, cfg.ElectionTimeout, cfg.LeaderLeaseTimeout = 500*time.Millisecond, 500*time.Millisecond, 250*time.Millisecond
		cfg.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
		if i == 0 {
			cfg.Bootstrap, cfg.Origin = true, "console.test/log"
		} else {
			cfg.Join = c.urls[:1]
		}
		for _, f := range configure {
			f(i, &cfg)
		}
		node, err := cluster.New(context.Background(), cfg)
		if err != nil {
			t.Fatalf("start %s: %v", id, err)
		}
		c.nodes = append(c.nodes, node)
		c.urls = append(c.urls, "http://"+node.HTTPAddr())
		if i == 0 {
			waitUntil(t, "the first node to lead", func() bool { return node.Ready() })
		}
	}
	waitUntil(t, "all voters ready", func() bool {
		l := c.leader()
		if l == nil || len(l.Status().Peers) != n {
			return false
		}
		for _, node := range c.nodes {
			if !node.Ready() {
				return false
			}
		}
		return true
	})
	return c
}

func (c *liveCluster) leader() *cluster.Node {
	for _, n := range c.nodes {
		if st := n.Status(); st.State == "Leader" && st.Ready {
			return n
		}
	}
	return nil
}

// leaderID is the id of the node that leads now, or "" during an
// election.
func (c *liveCluster) leaderID() string {
	if l := c.leader(); l != nil {
		return l.Status().ID
	}
	return ""
}

// waitUntil polls cond until it holds, failing the test after
// conditionWait.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(conditionWait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// testWriter sends logs to t.Log until the test ends. A node whose Close
// gave up (a loaded machine) still logs from raft's goroutines, and t.Log
// after the end of a test panics and ends the whole test binary.
type testWriter struct {
	t    *testing.T
	mu   sync.Mutex
	done bool
}

func newTestWriter(t *testing.T) *testWriter {
	w := &testWriter{t: t}
	t.Cleanup(func() {
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
	})
	return w
}

// Write logs p as one line of the test's log, or drops it once the test
// has ended.
func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimSpace(string(p)))
	}
	return len(p), nil
}
