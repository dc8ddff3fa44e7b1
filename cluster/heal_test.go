package cluster_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/telenotary/telenotary/cluster"
	"github.com/telenotary/telenotary/cluster/notaryapi"
	"github.com/telenotary/telenotary/notary"
	"golang.org/x/mod/sumdb/tlog"
)

// TestDamagedNodeHealsFromPeers: a stopped follower of a 3-node cluster has
// a leaf and, elsewhere, a stored hash damaged. Started again, it finds the
// damage (the scrub), rebuilds its log from its peers while the cluster
// goes on taking writes, and serves again: its leaves are the cluster's,
// its receipts verify, the damaged log directory is gone, and it is ready
// with no alert. Throughout, whatever it answered was right or an error.
func TestDamagedNodeHealsFromPeers(t *testing.T) {
	const size = 2500 // over two pages of leaves
	c := newTestCluster(t)
	n1 := c.bootstrap("node-1")
	c.join("node-2", n1)
	c.join("node-3", n1)
	c.waitVoters(3)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	entries := make([]notaryapi.Entry, size)
	for i := range entries {
		entries[i] = entryOf("heal", i)
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
	truth := leavesOf(t, ctx, clientFor(c.leader()), 0, size)
	c.stop(victim)
	flipByte(t, filepath.Join(victim.cfg.DataDir, "log-1", "leaves"), 1000*notary.LeafSize+40)
	flipByte(t, filepath.Join(victim.cfg.DataDir, "log-1", "hashes"), tlog.StoredHashIndex(0, 2000)*32+7)
	victim = c.restart(victim)

	// Writes go on while it heals; a reader checks all it answers.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var written, wrong, answered atomic.Int64
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := clientFor(c.leader()).Notarize(ctx, entryOf("during", i)); err == nil {
				written.Add(1)
			}
		}
	})
	one := notaryapi.NewClient(notaryapi.ClientConfig{Nodes: []string{victim.url}, MaxBackoff: 10 * time.Millisecond})
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			short, scancel := context.WithTimeout(ctx, time.Second)
			got, err := one.Leaves(short, 950, 100)
			scancel()
			// An error (503 damaged, not ready, a timeout on a loaded
			// machine) is fine; a wrong answer never is.
			if err == nil {
				answered.Add(1)
				if !slices.Equal(got, truth[950:1050]) {
					wrong.Add(1)
				}
			}
		}
	})
	c.waitFor("the damage to be found", func() bool {
		return hasAlert(victim, notaryapi.AlertDamaged) || victim.Status().Scrub.Heals > 0
	})
	c.waitFor("the node to heal", func() bool {
		st := victim.Status()
		return st.Scrub.Heals == 1 && st.Ready && !hasAlert(victim, notaryapi.AlertDamaged)
	})
	c.waitFor("a right answer after the heal", func() bool { return answered.Load() > 0 })
	close(stop)
	wg.Wait()
	if wrong.Load() != 0 {
		t.Fatalf("the node served wrong leaves %d times", wrong.Load())
	}
	if written.Load() == 0 {
		t.Fatal("no write went through while the node healed")
	}
	agreed := c.waitConverged()
	if got := leavesOf(t, ctx, clientFor(victim), 0, size); !slices.Equal(got, truth) {
		t.Fatal("the healed node's leaves differ from the cluster's")
	}
	r, err := clientFor(victim).Receipt(ctx, truth[1000].Commitment)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := notary.Verify(notary.Claim{Receipt: r, Commitment: truth[1000].Commitment}, c.policy()); err != nil || r.Index != 1000 {
		t.Fatalf("the healed node's receipt of the leaf that was damaged: index %d, %v", r.Index, err)
	}
	if agreed.Size < size {
		t.Fatalf("converged at %d leaves, fewer than %d", agreed.Size, size)
	}
	cur, err := os.ReadFile(filepath.Join(victim.cfg.DataDir, "current"))
	if err != nil || strings.TrimSpace(string(cur)) != "log-2" {
		t.Fatalf("current names %q (%v), want log-2", cur, err)
	}
	if _, err := os.Stat(filepath.Join(victim.cfg.DataDir, "log-1")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the damaged log directory is still there: %v", err)
	}
	// It stays healed across a restart.
	c.stop(victim)
	victim = c.restart(victim)
	c.waitFor("the healed node ready after a restart", victim.Ready)
	if got := leavesOf(t, ctx, clientFor(victim), 0, size); !slices.Equal(got, truth) {
		t.Fatal("after a restart, the healed node's leaves differ from the cluster's")
	}
}

// TestNoHealKeepsDamage: with NoHeal, a damaged node stays as it is for
// an operator to inspect: damaged, not ready, its damaged log in place.
func TestNoHealKeepsDamage(t *testing.T) {
	c, victim, target := damagedFollower(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if _, err := clientFor(victim).Receipt(ctx, target.Leaf.Commitment); !errors.Is(err, notaryapi.ErrDamaged) {
		t.Fatalf("the damaged node's receipt: %v, want 503 damaged", err)
	}
	// A write applied everywhere: the node still applies entries, and a
	// heal, were it on, would have had the time to run.
	wctx, wcancel := context.WithTimeout(context.Background(), time.Minute)
	defer wcancel()
	if _, err := clientFor(c.leader()).Notarize(wctx, entryOf("after", 0)); err != nil {
		t.Fatal(err)
	}
	c.waitFor("the damaged node to apply it", func() bool {
		l := c.leader()
		return l != nil && victim.Status().AppliedIndex >= l.Status().AppliedIndex
	})
	if victim.Ready() || victim.Status().Scrub.Heals != 0 {
		t.Fatalf("a node with NoHeal healed: ready %v, heals %d", victim.Ready(), victim.Status().Scrub.Heals)
	}
	if _, err := os.Stat(filepath.Join(victim.cfg.DataDir, "log-1")); err != nil {
		t.Fatalf("the damaged log directory: %v", err)
	}
}

// leavesOf reads leaves [start, end) through client.
func leavesOf(t *testing.T, ctx context.Context, client *notaryapi.Client, start, end uint64) []notaryapi.LeafInfo {
	t.Helper()
	var out []notaryapi.LeafInfo
	for start < end {
		page, err := client.Leaves(ctx, start, min(notaryapi.MaxLeavesPage, end-start))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, page...)
		start += uint64(len(page))
	}
	return out
}

// BenchmarkHeal measures how fast a follower rebuilds a damaged log of
// 100,000 leaves from its two peers, all three in this process on
// loopback: each iteration marks it damaged and waits until it serves
// again.
func BenchmarkHeal(b *testing.B) {
	const size = 100_000
	c := newTestCluster(b)
	n1 := c.bootstrap("node-1")
	c.join("node-2", n1)
	c.join("node-3", n1)
	c.waitVoters(3)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for start := 0; start < size; start += notaryapi.MaxBatchRequest {
		entries := make([]notaryapi.Entry, notaryapi.MaxBatchRequest)
		for i := range entries {
			entries[i] = entryOf("bench-heal", start+i)
		}
		if _, err := clientFor(n1).NotarizeBatch(ctx, entries); err != nil {
			b.Fatal(err)
		}
	}
	c.waitConverged()
	var victim *testNode
	for _, n := range c.list() {
		if n != c.leader() {
			victim = n
		}
	}
	b.ResetTimer()
	for i := range b.N {
		cluster.MarkDamaged(victim.Node, "benchmark")
		c.waitFor("the heal", func() bool { return victim.Status().Scrub.Heals == uint64(i+1) && victim.Ready() })
	}
	b.ReportMetric(float64(size)*float64(b.N)/b.Elapsed().Seconds(), "leaves/s")
}
