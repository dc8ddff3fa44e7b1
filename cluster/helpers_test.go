package cluster_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/telenotary/telenotary/cluster"
	"github.com/telenotary/telenotary/cluster/auth"
	"github.com/telenotary/telenotary/cluster/httpapi"
	"github.com/telenotary/telenotary/cluster/notaryapi"
	"github.com/telenotary/telenotary/notary"
	"golang.org/x/mod/sumdb/note"
)

const (
	testOrigin      = "cluster.test/log"
	submitterToken  = "submitter-token-0123456789"
	operatorToken   = "operator-token-0123456789"
	pharmacyToken   = "pharmacy-token-0123456789"
	testTokensFile  = "submitter " + submitterToken + "\noperator " + operatorToken + "\npharmacy " + pharmacyToken + "\n"
	conditionWait   = 30 * time.Second
	conditionPoll   = 20 * time.Millisecond
	shutdownTimeout = 10 * time.Second
)

// testNode is a node of an in-process test cluster and what restarting it
// needs.
type testNode struct {
	*cluster.Node
	cfg cluster.Config
	url string
}

// testCluster is a set of in-process nodes on loopback TCP.
type testCluster struct {
	t     testing.TB
	dir   string
	mu    sync.Mutex // guards nodes
	nodes map[string]*testNode
}

func newTestCluster(t testing.TB) *testCluster {
	c := &testCluster{t: t, dir: t.TempDir(), nodes: map[string]*testNode{}}
	t.Cleanup(func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, n := range c.nodes {
			ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
			n.Close(ctx)
			cancel()
		}
	})
	return c
}

func testTokens(t testing.TB) *auth.Tokens {
	t.Helper()
	tok, err := auth.ParseTokens([]byte(testTokensFile))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// config returns a node config with fast raft timing for tests.
func (c *testCluster) config(id string) cluster.Config {
	c.t.Helper()
	skey, vkey, err := note.GenerateKey(nil, id)
	if err != nil {
		c.t.Fatal(err)
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		c.t.Fatal(err)
	}
	cfg := cluster.DefaultConfig()
	cfg.ID = id
	cfg.DataDir = filepath.Join(c.dir, id)
	cfg.RaftAddr, cfg.InsecureRaft = "127.0.0.1:0", true // loopback, without TLS (tls_test.go runs raft over mutual TLS)
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.Signer, cfg.VerifierKey = signer, vkey
	cfg.Tokens = testTokens(c.t)
	cfg.JoinToken = operatorToken
	cfg.HeartbeatTimeout, cfg.ElectionTimeout, cfg.LeaderLeaseTimeout = 500*time.Millisecond, 500*time.Millisecond, 250*time.Millisecond
	cfg.Logger = slog.New(slog.NewTextHandler(testWriter{c.t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	return cfg
}

// testWriter sends logs to t.Log.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// start starts a node with cfg and registers it.
func (c *testCluster) start(cfg cluster.Config) *testNode {
	c.t.Helper()
	n, err := cluster.New(context.Background(), cfg)
	if err != nil {
		c.t.Fatalf("start %s: %v", cfg.ID, err)
	}
	tn := &testNode{Node: n, cfg: cfg, url: "http://" + n.HTTPAddr()}
	c.mu.Lock()
	c.nodes[cfg.ID] = tn
	c.mu.Unlock()
	return tn
}

// bootstrap starts the first node and waits until it leads.
func (c *testCluster) bootstrap(id string) *testNode {
	c.t.Helper()
	cfg := c.config(id)
	cfg.Bootstrap, cfg.Origin = true, testOrigin
	n := c.start(cfg)
	c.waitFor("bootstrap node ready", func() bool { return n.Ready() })
	return n
}

// threeNodes starts a cluster of three voters: node-1, which bootstraps
// it, node-2 and node-3.
func threeNodes(t *testing.T) *testCluster {
	t.Helper()
	c := newTestCluster(t)
	n1 := c.bootstrap("node-1")
	c.join("node-2", n1)
	c.join("node-3", n1)
	c.waitVoters(3)
	return c
}

// join starts a node that joins through the given nodes.
func (c *testCluster) join(id string, via ...*testNode) *testNode {
	c.t.Helper()
	cfg := c.config(id)
	for _, v := range via {
		cfg.Join = append(cfg.Join, v.url)
	}
	return c.start(cfg)
}

// stop closes a node gracefully and forgets it.
func (c *testCluster) stop(n *testNode) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := n.Close(ctx); err != nil {
		c.t.Logf("close %s: %v", n.cfg.ID, err)
	}
	c.mu.Lock()
	delete(c.nodes, n.cfg.ID)
	c.mu.Unlock()
}

// restart starts a stopped node again on its old addresses and data.
func (c *testCluster) restart(n *testNode) *testNode {
	c.t.Helper()
	cfg := n.cfg
	cfg.RaftAddr = n.RaftAddr()
	cfg.HTTPAddr = strings.TrimPrefix(n.url, "http://")
	cfg.Bootstrap, cfg.Join = false, nil
	return c.start(cfg)
}

// waitFor polls cond until it holds, failing the test after conditionWait.
func (c *testCluster) waitFor(what string, cond func() bool) {
	c.t.Helper()
	waitFor(c.t, what, cond)
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(conditionWait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(conditionPoll)
	}
}

// list returns the running nodes.
func (c *testCluster) list() []*testNode {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*testNode
	for _, n := range c.nodes {
		out = append(out, n)
	}
	return out
}

// leader returns the running node that leads, or nil.
func (c *testCluster) leader() *testNode {
	for _, n := range c.list() {
		if st := n.Status(); st.State == "Leader" && st.Ready {
			return n
		}
	}
	return nil
}

// waitLeader waits for a running node that leads, and returns it.
func (c *testCluster) waitLeader() *testNode {
	c.t.Helper()
	var l *testNode
	c.waitFor("a leader", func() bool { l = c.leader(); return l != nil })
	return l
}

// waitVoters waits until the leader counts n voters and every running node
// is ready.
func (c *testCluster) waitVoters(n int) {
	c.t.Helper()
	c.waitFor(fmt.Sprintf("%d voters, all ready and knowing all members", n), func() bool {
		l := c.leader()
		if l == nil || len(l.Status().Peers) != n {
			return false
		}
		for _, node := range c.list() {
			// Ready, and every member's record (with its key) applied.
			if _, _, members := node.Members(); !node.Ready() || len(members) != n {
				return false
			}
		}
		return true
	})
}

// waitConverged waits until every running node has the same log size and
// root at its latest checkpoint, and returns that checkpoint.
func (c *testCluster) waitConverged() notary.Checkpoint {
	c.t.Helper()
	var agreed notary.Checkpoint
	c.waitFor("nodes to converge", func() bool {
		var first *notary.Checkpoint
		for _, n := range c.list() {
			cp, err := checkpointOf(n)
			if err != nil {
				return false
			}
			if first == nil {
				first = &cp
			} else if cp != *first {
				return false
			}
		}
		if first != nil {
			agreed = *first
		}
		return first != nil
	})
	return agreed
}

func checkpointOf(n *testNode) (notary.Checkpoint, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	b, err := clientFor(n).Checkpoint(ctx)
	if err != nil {
		return notary.Checkpoint{}, err
	}
	cp, err := notary.ParseSignedCheckpoint(b)
	return cp.Checkpoint, err
}

// clientFor returns a client that talks to the given nodes only.
func clientFor(nodes ...*testNode) *notaryapi.Client {
	var urls []string
	for _, n := range nodes {
		urls = append(urls, n.url)
	}
	return notaryapi.NewClient(notaryapi.ClientConfig{Nodes: urls, Token: submitterToken})
}

// entryOf returns a distinct prescription entry for i.
func entryOf(tag string, i int) notaryapi.Entry {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(i))
	return notaryapi.Entry{Kind: notary.KindPrescription, Commitment: notary.Commitment(sha256.Sum256(append([]byte(tag), b[:]...)))}
}

// policyOf trusts every running node's key, needing one signature.
func (c *testCluster) policy() notary.Policy {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var nodes []*testNode
	nodes = append(nodes, c.list()...)
	keys, err := clientFor(nodes...).Keys(ctx)
	if err != nil {
		c.t.Fatal(err)
	}
	return notary.Policy{Verifiers: keys, Origin: testOrigin}
}

// rawPost posts a raw body, as a client that does not use the Go client
// would, and returns the body or the error the API answered.
func rawPost(ctx context.Context, url, token, body string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		if ct := resp.Header.Get("Content-Type"); ct != httpapi.ContentTypeProblem {
			return nil, fmt.Errorf("HTTP %d with a body of type %q, not a problem: %q", resp.StatusCode, ct, b)
		}
		var p httpapi.Problem
		if err := json.Unmarshal(b, &p); err != nil {
			return nil, fmt.Errorf("HTTP %d with a body that is not a JSON problem: %q", resp.StatusCode, b)
		}
		return nil, &p
	}
	return b, nil
}

// hex64 returns a fresh random commitment in hex.
func hex64() string {
	var b [32]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func httpGet(url string) (string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: HTTP %d: %s", url, resp.StatusCode, b)
	}
	return string(b), err
}

// containsLine reports whether a line of text starts with prefix.
func containsLine(text, prefix string) bool {
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, prefix) {
			return true
		}
	}
	return false
}

// joinRequest is the request node n sends to join cluster clusterID, with
// its proof of holding its key.
func joinRequest(t *testing.T, n *testNode, clusterID string) notaryapi.JoinRequest {
	t.Helper()
	m := notaryapi.Member{ID: n.cfg.ID, RaftAddr: n.RaftAddr(), HTTPAddr: n.url, VerifierKey: n.cfg.VerifierKey}
	proof, err := n.cfg.Signer.Sign(notaryapi.MemberStatement(clusterID, m))
	if err != nil {
		t.Fatal(err)
	}
	return notaryapi.JoinRequest{Member: m, ClusterID: clusterID, KeyProof: proof}
}
