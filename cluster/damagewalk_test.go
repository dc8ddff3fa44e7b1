package cluster_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/telenotary/telenotary/cluster"
	"github.com/telenotary/telenotary/cluster/notaryapi"
	"github.com/telenotary/telenotary/notary"
)

// TestEveryFileOfADataDirDamaged walks the files of a stopped follower's
// data directory (the notary log's leaves, hashes, head and meta,
// members.json, node.json, raft.db, and a raft snapshot's files) and flips
// one bit at sampled positions of each, one at a time, on a fresh copy.
// For each, the node either refuses to start with one line, or starts and
// never serves a wrong leaf, proof or receipt (each answer is compared
// with the leader's), and then, after a scrub pass, serves the cluster's
// log again, ready (it healed, or the damage was harmless), or reports
// the damage with an alert and heals once the cluster has written again
// (a damaged snapshot is replaced by a new one). A node writes its first
// index table at a million leaves: the index tables are walked at the
// store's level (filestore's TestEveryFlipRefusedFoundOrHarmless).
func TestEveryFileOfADataDirDamaged(t *testing.T) {
	const size, perFile = 300, 6
	c := newTestCluster(t)
	n1 := c.bootstrap("node-1")
	c.join("node-2", n1)
	c.join("node-3", n1)
	c.waitVoters(3)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	entries := make([]notaryapi.Entry, size)
	for i := range entries {
		entries[i] = entryOf("walk", i)
	}
	if _, err := clientFor(n1).NotarizeBatch(ctx, entries); err != nil {
		t.Fatal(err)
	}
	c.waitConverged()
	var victim *testNode
	for _, n := range c.list() {
		if n != c.leader() {
			victim = n
		}
	}
	if err := cluster.TakeSnapshot(victim.Node); err != nil {
		t.Fatal(err)
	}
	truth := leavesOf(t, ctx, clientFor(c.leader()), 0, size)
	policy := c.policy()
	c.stop(victim)
	dir := victim.cfg.DataDir
	pristine := filepath.Join(t.TempDir(), "pristine")
	if err := os.CopyFS(pristine, os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	var files []string
	filepath.WalkDir(pristine, func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() && d.Name() != "LOCK" {
			rel, _ := filepath.Rel(pristine, path)
			files = append(files, rel)
		}
		return err
	})
	for _, want := range []string{"log-1/leaves", "log-1/hashes", "log-1/head", "log-1/meta", "members.json", "node.json", "raft/raft.db", "state.bin"} {
		if !slices.ContainsFunc(files, func(f string) bool { return strings.HasSuffix(f, want) }) {
			t.Fatalf("the data directory has no %s to damage: %v", want, files)
		}
	}
	t.Logf("damaging %d files at %d positions each", len(files), perFile)

	rng := rand.New(rand.NewPCG(1, 2))
	outcomes := map[string]int{}
	for _, file := range files {
		b, err := os.ReadFile(filepath.Join(pristine, file))
		if err != nil {
			t.Fatal(err)
		}
		// Where the data is: a file grown ahead of its writes (raft.db)
		// is zeros after it.
		used := int64(bytes.LastIndexFunc(b, func(r rune) bool { return r != 0 }) + 1)
		if used == 0 {
			continue
		}
		for k := range perFile {
			off := rng.Int64N(used)
			if k == 0 {
				off = used - 1 - rng.Int64N(min(used, 64)) // the newest data, where it ends
			}
			what := fmt.Sprintf("%s at %d of %d (data up to %d)", file, off, len(b), used)
			if err := os.RemoveAll(dir); err != nil {
				t.Fatal(err)
			}
			if err := os.CopyFS(dir, os.DirFS(pristine)); err != nil {
				t.Fatal(err)
			}
			flipByte(t, filepath.Join(dir, file), off)
			n, err := c.tryRestart(victim)
			if err != nil {
				if strings.Contains(err.Error(), "\n") {
					t.Errorf("%s: refused to start with more than one line: %q", what, err)
				}
				outcomes["refused to start"]++
				t.Logf("%s: refused to start: %v", what, err)
				continue
			}
			outcome := checkDamagedNode(t, c, n, truth, policy, what, false)
			if outcome == "reported" {
				// Raft takes a snapshot in place of a damaged one only
				// after an entry applied since the start.
				if _, err := clientFor(c.leader()).Notarize(ctx, entryOf(what, 0)); err != nil {
					t.Fatal(err)
				}
				checkDamagedNode(t, c, n, truth, policy, what+", after a write: the node healthy again", true)
			}
			if n.Status().Scrub.Heals > 0 {
				outcome += ", healed from the peers"
			}
			if _, err := os.Stat(filepath.Join(dir, file)); errors.Is(err, os.ErrNotExist) && strings.Contains(file, "snapshots") {
				outcome += ", snapshot replaced"
			}
			t.Logf("%s: %s", what, outcome)
			outcomes[outcome]++
			c.stop(n)
			victim = n
		}
	}
	t.Logf("outcomes: %v", outcomes)
}

// checkDamagedNode checks that n never serves a wrong answer while it
// settles, and that it settles: healthy (ready, serving the cluster's
// leaves, a scrub pass done) or, unless onlyHealthy, reporting damage (an
// alert).
func checkDamagedNode(t *testing.T, c *testCluster, n *testNode, truth []notaryapi.LeafInfo, policy notary.Policy, what string, onlyHealthy bool) string {
	t.Helper()
	one := notaryapi.NewClient(notaryapi.ClientConfig{Nodes: []string{n.url}, MaxBackoff: 10 * time.Millisecond})
	leader := clientFor(c.leader())
	size := uint64(len(truth))
	probe := func() (allRight bool) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		allRight = true
		for start := uint64(0); start < size; start += notaryapi.MaxLeavesPage {
			got, err := one.Leaves(ctx, start, min(notaryapi.MaxLeavesPage, size-start))
			if err != nil {
				allRight = false
				continue
			}
			if !slices.Equal(got, truth[start:start+uint64(len(got))]) {
				t.Errorf("%s: the node served wrong leaves from %d", what, start)
			}
		}
		for _, i := range []uint64{0, size / 3, size - 1} {
			r, err := one.Receipt(ctx, truth[i].Commitment)
			if err != nil {
				allRight = false
			} else if r == nil {
				t.Errorf("%s: the node answered a receipt request for leaf %d without a receipt", what, i)
			} else if r.Index != i || notaryapi.LeafInfoOf(r.Index, r.Leaf) != truth[i] {
				t.Errorf("%s: the node served a wrong receipt for leaf %d: index %d, %+v", what, i, r.Index, r.Leaf)
			} else if _, err := notary.Verify(notary.Claim{Receipt: r, Commitment: truth[i].Commitment}, policy); err != nil {
				t.Errorf("%s: the node served a receipt that does not verify: %v", what, err)
			}
			p, err := one.InclusionProof(ctx, i, size)
			if err != nil {
				allRight = false
				continue
			}
			want, err := leader.InclusionProof(ctx, i, size)
			if err == nil && (p == nil || !reflect.DeepEqual(p, want)) {
				t.Errorf("%s: the node served a wrong inclusion proof of leaf %d", what, i)
			}
		}
		return allRight
	}
	outcome := ""
	c.waitFor(what+": the node to serve the log or report the damage", func() bool {
		right := probe()
		switch {
		case right && n.Ready() && n.Status().Scrub.Passes > 0:
			outcome = "healthy"
		case !onlyHealthy && len(n.Status().Alerts) > 0:
			outcome = "reported"
		}
		return outcome != ""
	})
	if t.Failed() {
		t.FailNow()
	}
	return outcome
}

// tryRestart starts a stopped node again on its old addresses and data,
// returning the error if it refuses to start.
func (c *testCluster) tryRestart(n *testNode) (*testNode, error) {
	cfg := n.cfg
	cfg.RaftAddr = n.RaftAddr()
	cfg.HTTPAddr = strings.TrimPrefix(n.url, "http://")
	cfg.Bootstrap, cfg.Join = false, nil
	node, err := cluster.New(context.Background(), cfg)
	if err != nil {
		if errors.Is(err, context.Canceled) {
			c.t.Fatal(err)
		}
		return nil, err
	}
	tn := &testNode{Node: node, cfg: cfg, url: "http://" + node.HTTPAddr()}
	c.mu.Lock()
	c.nodes[cfg.ID] = tn
	c.mu.Unlock()
	return tn, nil
}
