package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/telenotary/telenotary/cluster"
	"github.com/telenotary/telenotary/cluster/notaryapi"
	"github.com/telenotary/telenotary/notary"
)

// load submits fresh commitments from several goroutines until stopped,
// keeping every receipt and every commitment it submitted.
type load struct {
	client  *notaryapi.Client
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	mu      sync.Mutex // guards the fields below
	got     map[notary.Commitment]*notary.Receipt
	tried   map[notary.Commitment]bool
	errs    int
	lastErr error
	count   atomic.Int64
}

func startLoad(t *testing.T, tag string, workers int, nodes ...*testNode) *load {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	l := &load{client: clientFor(nodes...), cancel: cancel, got: map[notary.Commitment]*notary.Receipt{}, tried: map[notary.Commitment]bool{}}
	for w := range workers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				e := entryOf(fmt.Sprintf("%s-%d", tag, w), i)
				l.mu.Lock()
				l.tried[e.Commitment] = true
				l.mu.Unlock()
				// Each request may retry for a while, as a real client's.
				rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
				resp, err := l.client.Notarize(rctx, e)
				rcancel()
				l.mu.Lock()
				if err != nil {
					if ctx.Err() == nil {
						l.errs++
						l.lastErr = err
					}
				} else {
					l.got[e.Commitment] = resp.Receipt
					l.count.Add(1)
				}
				l.mu.Unlock()
			}
		}()
	}
	t.Cleanup(l.stop)
	return l
}

// waitMore waits until n more receipts arrived than when it was called.
func (l *load) waitMore(t *testing.T, n int64) {
	t.Helper()
	target := l.count.Load() + n
	waitFor(t, fmt.Sprintf("%d more receipts", n), func() bool { return l.count.Load() >= target })
}

func (l *load) stop() {
	l.cancel()
	l.wg.Wait()
}

// checkLog verifies every receipt the load got against the policy, checks
// that a fresh receipt of each has the same index, and that the log holds
// each commitment once, in order of time.
func (c *testCluster) checkLog(l *load, via *testNode) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	policy := c.policy()
	cl := clientFor(via)
	c.waitConverged()
	final, err := cl.Checkpoint(ctx)
	if err != nil {
		c.t.Fatal(err)
	}
	finalCP, err := notary.ParseSignedCheckpoint(final)
	if err != nil {
		c.t.Fatal(err)
	}
	proofs := map[uint64][]notary.Hash{} // consistency proofs by old size
	for commitment, r := range l.got {
		// Against the final checkpoint: the receipt's tree is a prefix of it.
		old, err := notary.ParseSignedCheckpoint(r.Checkpoint)
		if err != nil {
			c.t.Fatal(err)
		}
		if _, ok := proofs[old.Size]; !ok {
			p, err := cl.ConsistencyProof(ctx, old.Size, finalCP.Size)
			if err != nil {
				c.t.Fatal(err)
			}
			proofs[old.Size] = p.Proof
		}
		claim := notary.Claim{Receipt: r, Commitment: commitment, Newer: final, Consistency: proofs[old.Size]}
		if _, err := notary.Verify(claim, policy); err != nil {
			c.t.Fatalf("receipt %d does not verify against the final checkpoint: %v", r.Index, err)
		}
		fresh, err := cl.Receipt(ctx, commitment)
		if err != nil || fresh.Index != r.Index {
			c.t.Fatalf("commitment of receipt %d: now at %v (%v)", r.Index, fresh, err)
		}
	}
	cp := c.waitConverged()
	seen := map[notary.Commitment]uint64{}
	var last int64
	for start := uint64(0); start < cp.Size; start += notaryapi.MaxLeavesPage {
		leaves, err := cl.Leaves(ctx, start, notaryapi.MaxLeavesPage)
		if err != nil {
			c.t.Fatal(err)
		}
		for _, lf := range leaves {
			if prev, dup := seen[lf.Commitment]; dup {
				c.t.Fatalf("commitment logged twice, at %d and %d", prev, lf.Index)
			}
			if !l.tried[lf.Commitment] {
				c.t.Fatalf("leaf %d holds a commitment nobody submitted", lf.Index)
			}
			if lf.Timestamp < last {
				c.t.Fatalf("leaf %d is dated %d, before its predecessor's %d", lf.Index, lf.Timestamp, last)
			}
			seen[lf.Commitment], last = lf.Index, lf.Timestamp
		}
	}
	for commitment, r := range l.got {
		if i, ok := seen[commitment]; !ok || i != r.Index {
			c.t.Fatalf("acknowledged commitment of receipt %d is not in the log at its index", r.Index)
		}
	}
}

// TestLeaderCrashUnderLoad crashes the leader while clients submit: they
// fail over to the new leader, every receipt ever returned verifies, and
// retries add no duplicate leaves. The crashed node then restarts from its
// data directory and catches up.
func TestLeaderCrashUnderLoad(t *testing.T) {
	c := newTestCluster(t)
	n1 := c.bootstrap("node-1")
	n2 := c.join("node-2", n1)
	n3 := c.join("node-3", n1)
	c.waitVoters(3)
	l := startLoad(t, "crash", 8, n1, n2, n3)
	l.waitMore(t, 200)

	leader := c.leader()
	applied := leader.Status().AppliedIndex
	cluster.Crash(leader.Node)
	c.mu.Lock()
	delete(c.nodes, leader.cfg.ID)
	c.mu.Unlock()
	crashed := time.Now()
	l.waitMore(t, 200) // the survivors elect a leader and go on
	t.Logf("receipts flowing again %v after the leader crashed", time.Since(crashed).Round(time.Millisecond))

	back := c.restart(leader)
	if st := back.Status(); st.AppliedIndex < applied {
		t.Fatalf("restarted node applied index %d, it had %d: it did not resume from its data", st.AppliedIndex, applied)
	}
	l.waitMore(t, 100)
	l.stop()
	c.waitConverged()
	c.checkLog(l, back)
	if l.errs > 0 {
		t.Logf("%d requests failed outright (last: %v); none was acknowledged", l.errs, l.lastErr)
	}
}

// TestLeaderWatchLeavesALiveLeader: the leader watch's look makes a
// follower check its leader's heartbeats at once, and a follower that hears
// its leader keeps it: no election, the same term, raft's timeout as
// configured. (That a look after a silent leader starts an election is raft's
// own rule; the campaign measures how much sooner failover comes.)
func TestLeaderWatchLeavesALiveLeader(t *testing.T) {
	c := newTestCluster(t)
	n1 := c.bootstrap("node-1")
	n2 := c.join("node-2", n1)
	c.join("node-3", n1)
	c.waitVoters(3)
	term := n1.Status().Term
	for range 50 {
		if err := cluster.LookForLeader(n2.Node); err != nil {
			t.Fatal(err)
		}
	}
	cl := clientFor(n2)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := cl.Notarize(ctx, entryOf("watch", 1)); err != nil { // a round trip through the leader after the looks
		t.Fatal(err)
	}
	if st := n2.Status(); st.Term != term || st.Leader.ID != "node-1" || st.State != "Follower" {
		t.Fatalf("after the looks node-2 is %s in term %d following %q; want a follower of node-1 in term %d", st.State, st.Term, st.Leader.ID, term)
	}
	if got := cluster.HeartbeatTimeout(n2.Node); got != n2.cfg.HeartbeatTimeout {
		t.Fatalf("raft's heartbeat timeout is %v after the looks, configured %v", got, n2.cfg.HeartbeatTimeout)
	}
}

// startSnapshotting starts a 3-node cluster that snapshots every 16 raft
// entries and keeps 8: a follower left behind must install a snapshot.
func (c *testCluster) startSnapshotting() (n1, n2, n3 *testNode) {
	c.t.Helper()
	small := func(id string) cluster.Config {
		cfg := c.config(id)
		cfg.SnapshotThreshold, cfg.TrailingLogs, cfg.SnapshotInterval = 16, 8, 100*time.Millisecond
		return cfg
	}
	cfg1 := small("node-1")
	cfg1.Bootstrap, cfg1.Origin = true, testOrigin
	n1 = c.start(cfg1)
	c.waitFor("bootstrap", n1.Ready)
	joiner := func(id string) *testNode {
		cfg := small(id)
		cfg.Join = []string{n1.url}
		return c.start(cfg)
	}
	n2, n3 = joiner("node-2"), joiner("node-3")
	c.waitVoters(3)
	return n1, n2, n3
}

// TestFollowerCatchesUpThroughSnapshot keeps a follower down while the log
// moves far past what the leader retains, so it can only catch up from a
// snapshot: it restores one, checks its root, and serves the same state.
func TestFollowerCatchesUpThroughSnapshot(t *testing.T) {
	c := newTestCluster(t)
	n1, n2, n3 := c.startSnapshotting()
	ctx := context.Background()
	cl := clientFor(n1, n2, n3)
	for i := range 20 {
		if _, err := cl.Notarize(ctx, entryOf("before", i)); err != nil {
			t.Fatal(err)
		}
	}
	c.waitConverged()
	c.stop(n3)
	// Many raft entries: one per request, sequentially.
	for i := range 300 {
		if _, err := cl.Notarize(ctx, entryOf("while-down", i)); err != nil {
			t.Fatal(err)
		}
	}
	snaps := filepath.Join(n1.cfg.DataDir, "raft", "snapshots")
	waitFor(t, "a snapshot on node-1", func() bool {
		entries, _ := os.ReadDir(snaps)
		return len(entries) > 0
	})
	back := c.restart(n3)
	cp := c.waitConverged()
	if cp.Size != 320 {
		t.Fatalf("converged at %d leaves, want 320", cp.Size)
	}
	// It fetched the leaves it lacked, not the 20 it had, and extended
	// its log in place.
	if got := cluster.SnapshotLeavesFetched(back.Node); got == 0 || got > 300 {
		t.Fatalf("node-3 fetched %d leaves to install a snapshot; it lacked 300", got)
	}
	if g := cluster.LogGeneration(back.Node); g != 1 {
		t.Fatalf("node-3 is on log generation %d: it rebuilt its log instead of extending it", g)
	}
	// The restored node serves verifiable receipts and goes on applying.
	if _, err := clientFor(back).Notarize(ctx, entryOf("after", 0)); err != nil {
		t.Fatal(err)
	}
	c.waitConverged()
	r, err := clientFor(back).Receipt(ctx, entryOf("before", 3).Commitment)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := notary.Verify(notary.Claim{Receipt: r, Commitment: r.Leaf.Commitment}, c.policy()); err != nil {
		t.Fatal(err)
	}
}

// TestInstallCutOffByACrash crashes a follower after raft stored the
// snapshot it received but before its state machine installed it (its
// fetches of leaves fail): started again, it must install the snapshot,
// fetching only what it lacks, and go on with the others.
// TestRestoreInterrupted checks the start-up install itself, which a
// leader that resends the snapshot would otherwise hide.
func TestInstallCutOffByACrash(t *testing.T) {
	c := newTestCluster(t)
	n1, n2, n3 := c.startSnapshotting()
	ctx := context.Background()
	cl := clientFor(n1, n2)
	for i := range 20 {
		if _, err := cl.Notarize(ctx, entryOf("before", i)); err != nil {
			t.Fatal(err)
		}
	}
	c.waitConverged()
	c.stop(n3)
	for i := range 300 {
		if _, err := cl.Notarize(ctx, entryOf("while-down", i)); err != nil {
			t.Fatal(err)
		}
	}
	snaps := filepath.Join(n1.cfg.DataDir, "raft", "snapshots")
	waitFor(t, "a snapshot on node-1", func() bool {
		entries, _ := os.ReadDir(snaps)
		return len(entries) > 0
	})
	heal := cluster.FailSnapshotFetches(n3.cfg.DataDir)
	defer heal()
	applied := cluster.Applied(n3.Node)
	n3 = c.restart(n3)
	// Raft writes a snapshot it receives to its store before the state
	// machine installs it: wait for one newer than what node-3 applied.
	c.waitFor("node-3 to store the snapshot it cannot install", func() bool {
		entries, _ := os.ReadDir(filepath.Join(n3.cfg.DataDir, "raft", "snapshots"))
		for _, e := range entries {
			var term, index uint64
			var ms int64
			if _, err := fmt.Sscanf(e.Name(), "%d-%d-%d", &term, &index, &ms); err == nil && index > applied && !strings.HasSuffix(e.Name(), ".tmp") {
				return true
			}
		}
		return false
	})
	if cluster.Applied(n3.Node) != applied || cluster.SnapshotLeavesFetched(n3.Node) != 0 {
		t.Fatalf("node-3 installed the snapshot: applied %d (was %d)", cluster.Applied(n3.Node), applied)
	}
	cluster.Crash(n3.Node)
	c.mu.Lock()
	delete(c.nodes, "node-3")
	c.mu.Unlock()
	heal()
	back := c.restart(n3)
	if got := cluster.SnapshotLeavesFetched(back.Node); got == 0 || got > 300 {
		t.Fatalf("node-3 fetched %d leaves as it started; it lacked 300", got)
	}
	if _, err := cl.Notarize(ctx, entryOf("after", 0)); err != nil {
		t.Fatal(err)
	}
	if cp := c.waitConverged(); cp.Size != 321 {
		t.Fatalf("converged at %d leaves, want 321", cp.Size)
	}
}

// TestMembershipUnderLoad joins a fourth node and removes one while
// clients submit.
func TestMembershipUnderLoad(t *testing.T) {
	c := newTestCluster(t)
	n1 := c.bootstrap("node-1")
	n2 := c.join("node-2", n1)
	n3 := c.join("node-3", n1)
	c.waitVoters(3)
	l := startLoad(t, "members", 4, n1, n2, n3)
	l.waitMore(t, 100)
	n4 := c.join("node-4", n2) // through a follower: forwarded to the leader
	c.waitVoters(4)
	l.waitMore(t, 100)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	op := notaryapi.NewClient(notaryapi.ClientConfig{Nodes: []string{n1.url, n2.url, n4.url}, Token: operatorToken})
	victim := n3
	if c.leader() == n3 {
		victim = n2
	}
	if err := op.Remove(ctx, victim.cfg.ID); err != nil {
		t.Fatal(err)
	}
	c.stop(victim)
	c.waitVoters(3)
	l.waitMore(t, 100)
	// Joining again with the same id and address changes nothing.
	if _, err := op.Join(ctx, joinRequest(t, n4, n4.Status().ClusterID)); err != nil {
		t.Fatal(err)
	}
	c.waitVoters(3)
	l.stop()
	var via *testNode
	for _, n := range c.list() {
		via = n
	}
	c.checkLog(l, via)
	if err := op.Remove(ctx, "no-such-node"); !errors.Is(err, notaryapi.ErrNotFound) {
		t.Fatalf("removing an unknown node: %v", err)
	}
}

// TestTimestampsSurviveASlowClock hands leadership to a node whose clock
// is behind, by less than the time guard allows: it stamps, and the log's
// timestamps still never go back. (A clock further off never stamps: see
// TestClockOffNeverStamps.)
func TestTimestampsSurviveASlowClock(t *testing.T) {
	c := newTestCluster(t)
	n1 := c.bootstrap("node-1")
	slow := c.config("node-2")
	slow.Join = []string{n1.url}
	slow.Clock = func() time.Time { return time.Now().Add(-slow.MaxClockSkew * 9 / 10) }
	n2 := c.start(slow)
	n3 := c.join("node-3", n1)
	c.waitVoters(3)
	ctx := context.Background()
	cl := clientFor(n1, n2, n3)
	var last *notary.Receipt
	for i := range 5 {
		r, err := cl.Notarize(ctx, entryOf("fast", i))
		if err != nil {
			t.Fatal(err)
		}
		last = r.Receipt
	}
	op := notaryapi.NewClient(notaryapi.ClientConfig{Nodes: []string{n1.url, n2.url, n3.url}, Token: operatorToken})
	if err := op.Transfer(ctx, "node-2"); err != nil {
		t.Fatal(err)
	}
	c.waitFor("node-2 to lead", func() bool { return c.leader() == n2 })
	for i := range 5 {
		r, err := cl.Notarize(ctx, entryOf("slow", i))
		if err != nil {
			t.Fatal(err)
		}
		if r.Receipt.Leaf.Timestamp < last.Leaf.Timestamp {
			t.Fatalf("leaf %d dated %d, before leaf %d's %d", r.Receipt.Index, r.Receipt.Leaf.Timestamp, last.Index, last.Leaf.Timestamp)
		}
		last = r.Receipt
	}
}

// TestEventsAndMetrics follows a follower's event stream while the cluster
// notarizes and changes leader, and reads the metrics.
func TestEventsAndMetrics(t *testing.T) {
	c := newTestCluster(t)
	n1 := c.bootstrap("node-1")
	n2 := c.join("node-2", n1)
	n3 := c.join("node-3", n1)
	c.waitVoters(3)
	follower := n2
	if c.leader() == n2 {
		follower = n3
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	var notarized uint64
	leaderEvents := 0
	streamDone := make(chan error, 1)
	go func() {
		streamDone <- clientFor(follower).Events(ctx, follower.url, func(e notaryapi.Event) {
			mu.Lock()
			defer mu.Unlock()
			switch e.Type {
			case "notarized":
				notarized += e.Notarized.Count
			case "cluster":
				if e.Change == "leader" {
					leaderEvents++
				}
			}
		})
	}()
	// Notarize until events arrive: the stream may not be subscribed yet.
	cl := clientFor(n1, n2, n3)
	batch := make([]notaryapi.Entry, 50)
	for i := range batch {
		batch[i] = entryOf("events", i)
	}
	waitFor(t, "notarization events on a follower", func() bool {
		if _, err := cl.NotarizeBatch(ctx, batch[:1+len(batch)/2]); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		defer mu.Unlock()
		return notarized > 0
	})
	op := notaryapi.NewClient(notaryapi.ClientConfig{Nodes: []string{n1.url, n2.url, n3.url}, Token: operatorToken})
	if err := op.Transfer(ctx, ""); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a leader event", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return leaderEvents > 0
	})
	cancel()
	<-streamDone

	c.waitFor("the new leader", func() bool { return c.leader() != nil })
	body, err := httpGet(c.waitLeader().url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"telenotary_receipts_total", "telenotary_raft_commit_index", "telenotary_batch_entries_bucket", "telenotary_leader_changes_total"} {
		if !containsLine(body, m) {
			t.Errorf("/metrics lacks %s", m)
		}
	}
}

func TestRefusesAnotherNodesDataDir(t *testing.T) {
	c := newTestCluster(t)
	n1 := c.bootstrap("node-1")
	c.stop(n1)
	cfg := c.config("node-9")
	cfg.DataDir = n1.cfg.DataDir
	if _, err := cluster.New(context.Background(), cfg); !errors.Is(err, cluster.ErrCorruptState) {
		t.Fatalf("starting node-9 on node-1's data: %v, want ErrCorruptState", err)
	}
}

// TestNoLeaderIs503 leaves one node of three: without a quorum it has no
// leader, and answers submissions 503 with Retry-After.
func TestNoLeaderIs503(t *testing.T) {
	c := newTestCluster(t)
	n1 := c.bootstrap("node-1")
	n2 := c.join("node-2", n1)
	n3 := c.join("node-3", n1)
	c.waitVoters(3)
	survivor := n3
	for _, n := range []*testNode{n1, n2} {
		cluster.Crash(n.Node)
		c.mu.Lock()
		delete(c.nodes, n.cfg.ID)
		c.mu.Unlock()
	}
	c.waitFor("the survivor to lose its leader", func() bool { return survivor.Status().Leader.ID == "" })
	body := `{"kind":"prescription","commitment":"` + hex64() + `"}`
	req, _ := http.NewRequest(http.MethodPost, survivor.url+"/v1/notarize", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+submitterToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("HTTP %d, Retry-After %q; want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if survivor.Ready() {
		t.Fatal("a node without a leader reports ready")
	}
}
