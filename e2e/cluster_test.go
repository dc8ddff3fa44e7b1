package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/telenotary/telenotary/cluster/notaryapi"
	"github.com/telenotary/telenotary/notary"
)

const testOrigin = "e2e.telenotary.test/log"

// startCluster bootstraps node-1, joins node-2 and node-3 through it and
// waits until all three are voters and ready.
func startCluster(t *testing.T) *procCluster {
	t.Helper()
	c := newProcCluster(t, testOrigin)
	n1 := c.bootstrap("node-1")
	waitReady(t, n1)
	c.join("node-2", n1)
	c.join("node-3", n1)
	c.waitVoters(3)
	return c
}

// TestProcessCluster notarizes through every node of a 3-node cluster of
// processes (followers forward to the leader), singly and in batches, and
// checks that the nodes converge on one checkpoint and every receipt
// verifies under the keys the cluster publishes.
func TestProcessCluster(t *testing.T) {
	start := time.Now()
	c := startCluster(t)
	t.Logf("3-node cluster up in %v", time.Since(start).Round(time.Millisecond))

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var receipts []*notary.Receipt
	for _, n := range c.nodes {
		cl := n.client() // only this node: a follower must forward
		for range 5 {
			e := freshEntry()
			resp, err := cl.Notarize(ctx, e)
			if err != nil {
				t.Fatalf("notarize via %s: %v", n.id, err)
			}
			if resp.Existing || resp.Receipt.Leaf.Commitment != e.Commitment {
				t.Fatalf("notarize via %s: existing %v, receipt for %s, want a new one for %s", n.id, resp.Existing, resp.Receipt.Leaf.Commitment, e.Commitment)
			}
			receipts = append(receipts, resp.Receipt)
		}
		batch := make([]notaryapi.Entry, 20)
		for i := range batch {
			batch[i] = freshEntry()
		}
		resp, err := cl.NotarizeBatch(ctx, batch)
		if err != nil {
			t.Fatalf("batch via %s: %v", n.id, err)
		}
		if len(resp.Receipts) != len(batch) {
			t.Fatalf("batch via %s: %d receipts for %d entries", n.id, len(resp.Receipts), len(batch))
		}
		for i, r := range resp.Receipts {
			if r.Leaf.Commitment != batch[i].Commitment {
				t.Fatalf("batch via %s: receipt %d is for %s, not %s", n.id, i, r.Leaf.Commitment, batch[i].Commitment)
			}
		}
		receipts = append(receipts, resp.Receipts...)
	}

	cp := c.waitConverged()
	if cp.Size != uint64(len(receipts)) {
		t.Fatalf("the nodes converged at size %d, want %d", cp.Size, len(receipts))
	}
	if cp.Origin != testOrigin {
		t.Fatalf("checkpoint origin %q, want %q", cp.Origin, testOrigin)
	}
	policy := c.policy()
	if len(policy.Verifiers) != 3 {
		t.Fatalf("/v1/keys lists %d keys, want 3", len(policy.Verifiers))
	}
	seen := map[uint64]bool{}
	for _, r := range receipts {
		if _, err := notary.Verify(notary.Claim{Receipt: r, Commitment: r.Leaf.Commitment}, policy); err != nil {
			t.Errorf("receipt %d: %v", r.Index, err)
		}
		if seen[r.Index] {
			t.Errorf("index %d issued twice", r.Index)
		}
		seen[r.Index] = true
	}
	// Every node serves each receipt by commitment, at the same index.
	for _, n := range c.nodes {
		r, err := n.client().Receipt(ctx, receipts[3].Leaf.Commitment)
		if err != nil {
			t.Fatalf("receipt from %s: %v", n.id, err)
		}
		if r.Index != receipts[3].Index {
			t.Fatalf("%s has the commitment at index %d, want %d", n.id, r.Index, receipts[3].Index)
		}
	}
}

// TestLeaderKilledUnderLoad kills the leader (SIGKILL) while several
// clients submit, measures how long until a new leader's receipts arrive,
// restarts the killed node from its data directory and audits everything:
// no receipt lost, moved or issued twice, no commitment logged twice.
func TestLeaderKilledUnderLoad(t *testing.T) {
	c := startCluster(t)
	l := startLoad(c.client(), 6, 5, 15*time.Second)
	defer l.stop()
	l.waitReceipts(t, "receipts before the kill", time.Time{}, 300)

	leader := c.waitLeader()
	before := l.count()
	killedAt := time.Now()
	leader.kill()
	t.Logf("killed the leader %s after %d receipts", leader.id, before)

	policy := c.policy()
	first := l.waitNewLeader(t, "a receipt from a new leader", killedAt, policy, leader.id, 1)
	t.Logf("unavailability after killing the leader: %v (until the first receipt for a commitment a new leader sequenced)", first.Sub(killedAt).Round(time.Millisecond))
	newLeader := c.waitLeader()
	t.Logf("new leader: %s", newLeader.id)
	l.waitNewLeader(t, "receipts flowing from the new leader", killedAt, policy, leader.id, 300)
	l.stop()

	leader.restart()
	want := c.waitConverged()
	c.waitVoters(3)
	t.Logf("%s restarted from its data directory and caught up at size %d", leader.id, want.Size)
	audit(t, c, l, want)
}

// TestRestartAfterKill kills a follower, and then the leader, with SIGKILL
// in the middle of load, restarts each from its data directory and checks
// that it resumes from its own state (a non-zero applied index as soon as
// it answers) and catches up with the leader.
func TestRestartAfterKill(t *testing.T) {
	c := startCluster(t)
	l := startLoad(c.client(), 4, 5, 15*time.Second)
	defer l.stop()
	l.waitReceipts(t, "receipts before the first kill", time.Time{}, 200)

	leader := c.waitLeader()
	var follower *nodeProc
	for _, n := range c.nodes {
		if n != leader {
			follower = n
			break
		}
	}
	killAndRestart(t, c, l, follower, "follower")

	leader = c.waitLeader()
	killAndRestart(t, c, l, leader, "leader")

	l.stop()
	cp := c.waitConverged()
	c.waitVoters(3)
	audit(t, c, l, cp)
}

// killAndRestart kills n in the middle of load, lets the load go on
// without it, restarts it and waits until it has caught up.
func killAndRestart(t *testing.T, c *procCluster, l *load, n *nodeProc, role string) {
	t.Helper()
	st, err := n.status()
	if err != nil {
		t.Fatal(err)
	}
	killedAt := time.Now()
	n.kill()
	t.Logf("killed the %s %s at applied index %d, log size %d", role, n.id, st.AppliedIndex, st.LogSize)
	first := l.waitNewLeader(t, "receipts sequenced without the "+role, killedAt, c.policy(), n.id, 200)
	t.Logf("first receipt without the %s %v after the kill", role, first.Sub(killedAt).Round(time.Millisecond))

	n.restart()
	resumed, err := n.status()
	if err != nil {
		t.Fatalf("%s right after the restart: %v", n.id, err)
	}
	t.Logf("%s restarted at applied index %d, log size %d", n.id, resumed.AppliedIndex, resumed.LogSize)
	// A process crash loses nothing the node had applied: it resumes from
	// its own log, at least where it was when it was last asked.
	if resumed.AppliedIndex == 0 || resumed.AppliedIndex < st.AppliedIndex || resumed.LogSize < st.LogSize {
		t.Fatalf("%s restarted at applied index %d, log size %d, having been at %d, %d before the kill: it did not resume from its data directory",
			n.id, resumed.AppliedIndex, resumed.LogSize, st.AppliedIndex, st.LogSize)
	}

	l.waitReceipts(t, "receipts after the restart", time.Now(), 50)
	leader := c.waitLeader()
	target, err := leader.status()
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, readyTimeout, n.id+" to catch up", func() error {
		st, err := n.status()
		if err != nil {
			return err
		}
		if st.LogSize < target.LogSize || !st.Ready {
			return fmt.Errorf("%s is at log size %d (ready %v), the leader was at %d", n.id, st.LogSize, st.Ready, target.LogSize)
		}
		return nil
	})
	t.Logf("%s caught up past log size %d", n.id, target.LogSize)
}
