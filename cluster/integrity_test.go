package cluster_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/telenotary/telenotary/cluster"
	"github.com/telenotary/telenotary/cluster/httpapi"
	"github.com/telenotary/telenotary/cluster/notaryapi"
	"github.com/telenotary/telenotary/notary"
)

// damagedFollower runs a 3-node cluster, notarizes 20 entries, flips a
// byte of leaf 5 in a stopped follower's log (its timestamp: the
// commitment still finds it) and restarts it. It returns the cluster, the
// damaged follower and the receipt of the damaged leaf.
func damagedFollower(t *testing.T) (*testCluster, *testNode, *notary.Receipt) {
	c := newTestCluster(t)
	n1 := c.bootstrap("node-1")
	c.join("node-2", n1)
	c.join("node-3", n1)
	c.waitVoters(3)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var receipts []*notary.Receipt
	for i := range 20 {
		resp, err := clientFor(n1).Notarize(ctx, entryOf("damage", i))
		if err != nil {
			t.Fatal(err)
		}
		receipts = append(receipts, resp.Receipt)
	}
	c.waitConverged()
	var victim *testNode
	for _, n := range c.list() {
		if n != c.leader() {
			victim = n
		}
	}
	target := receipts[5]
	c.stop(victim)
	path := filepath.Join(victim.cfg.DataDir, "log-1", "leaves")
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	off := int64(target.Index)*notary.LeafSize + notary.LeafSize - 1
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x40
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
	f.Close()
	// The checks on what is served, not the scrub or the heal, are under
	// test here.
	victim.cfg.ScrubRate, victim.cfg.NoHeal = 0, true
	victim = c.restart(victim)
	c.waitFor("the damaged node to know a leader", func() bool { return victim.Status().Leader.ID != "" })
	return c, victim, target
}

// TestDamagedLeafNeverServed: whatever a client first asks a node with a
// damaged leaf for (the leaf's receipt, a page of leaves, an inclusion
// proof), the node never serves what the damage changed: it answers 503
// damaged, raises an alert and is not ready, while the others go on
// serving the right receipt.
func TestDamagedLeafNeverServed(t *testing.T) {
	for _, first := range []string{"receipt", "leaves", "inclusion proof"} {
		t.Run(first, func(t *testing.T) {
			c, victim, target := damagedFollower(t)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			one := notaryapi.NewClient(notaryapi.ClientConfig{Nodes: []string{victim.url}})
			short, scancel := context.WithTimeout(ctx, 3*time.Second)
			defer scancel()
			var err error
			switch first {
			case "receipt":
				var r *notary.Receipt
				if r, err = one.Receipt(short, target.Leaf.Commitment); err == nil {
					_, verr := notary.Verify(notary.Claim{Receipt: r, Commitment: target.Leaf.Commitment}, c.policy())
					t.Fatalf("the damaged node served the damaged leaf's receipt (it verifies: %v)", verr)
				}
			case "leaves":
				var leaves []notaryapi.LeafInfo
				if leaves, err = one.Leaves(short, 0, 20); err == nil {
					t.Fatalf("the damaged node served the leaves, leaf 5 stamped %d (the true one %d)", leaves[5].Timestamp, target.Leaf.Timestamp)
				}
			case "inclusion proof":
				if _, err = one.InclusionProof(short, target.Index, 20); err == nil {
					t.Fatal("the damaged node served an inclusion proof of the damaged leaf")
				}
			}
			if !errors.Is(err, notaryapi.ErrDamaged) {
				t.Fatalf("the damaged node answered %v, want 503 damaged", err)
			}
			if victim.Ready() || !hasAlert(victim, notaryapi.AlertDamaged) {
				t.Fatalf("the damaged node is ready (%v) or raises no alert (%+v)", victim.Ready(), victim.Status().Alerts)
			}
			r, err := clientFor(c.leader()).Receipt(ctx, target.Leaf.Commitment)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := notary.Verify(notary.Claim{Receipt: r, Commitment: target.Leaf.Commitment}, c.policy()); err != nil || r.Leaf != target.Leaf {
				t.Fatalf("a sound node's receipt: %v, leaf %+v want %+v", err, r.Leaf, target.Leaf)
			}
		})
	}
}

// TestNotReadyWhenDiskLow: a node whose disk has less free than it keeps
// is not ready and says why, and as leader refuses writes with 503
// disk_low before one fails halfway.
func TestNotReadyWhenDiskLow(t *testing.T) {
	c := newTestCluster(t)
	n := c.bootstrap("node-1")
	c.stop(n)
	n.cfg.MinFreeDisk = 1 << 62 // more than any disk has
	n = c.restart(n)
	c.waitFor("a leader", func() bool { l, _ := n.Leader(); return l })
	if err := n.NotReady(); !errors.Is(err, notaryapi.ErrDiskLow) {
		t.Fatalf("not ready because %v, want disk_low", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, _, err := n.Submit(ctx, []notaryapi.Entry{entryOf("disk", 0)}, 1); !errors.Is(err, notaryapi.ErrDiskLow) {
		t.Fatalf("a write with the disk low: %v, want disk_low", err)
	}
	resp, err := http.Get(n.url + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	p := httpapi.ReadProblem(resp)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !errors.Is(p, notaryapi.ErrDiskLow) || !strings.Contains(p.Detail, "MiB free") {
		t.Fatalf("/readyz: HTTP %d %+v", resp.StatusCode, p)
	}
}

// TestNotReadyWhenFarBehind: a follower whose state machine falls more
// than MaxLag entries behind the leader is not ready, and is again once it
// catches up.
func TestNotReadyWhenFarBehind(t *testing.T) {
	c := newTestCluster(t)
	n1 := c.bootstrap("node-1")
	cfg := c.config("node-2")
	cfg.Join, cfg.MaxLag = []string{n1.url}, 5
	n2 := c.start(cfg)
	c.waitVoters(2)
	c.waitFor("the follower ready", n2.Ready)
	release := cluster.HoldApplies(n2.Node)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for i := range 10 {
		if _, err := clientFor(n1).Notarize(ctx, entryOf("behind", i)); err != nil {
			t.Fatal(err)
		}
	}
	c.waitFor("the held follower to say it is behind", func() bool {
		err := n2.NotReady()
		return err != nil && strings.Contains(err.Error(), "entries behind")
	})
	release()
	c.waitFor("the follower ready again", n2.Ready)
}

// TestNoQuorumAnswered503: when the followers' raft logs refuse writes (full
// disks) the leader cannot commit; submissions are answered 503 no_quorum
// within CommitTimeout instead of a silent stall, the leader raises the
// no-quorum alert and the followers say why they are not ready; once the
// disks take writes again, the writes go through.
func TestNoQuorumAnswered503(t *testing.T) {
	c := newTestCluster(t)
	cfg := c.config("node-1")
	cfg.Bootstrap, cfg.Origin, cfg.CommitTimeout = true, testOrigin, time.Second
	n1 := c.start(cfg)
	c.waitFor("bootstrap ready", n1.Ready)
	n2 := c.join("node-2", n1)
	n3 := c.join("node-3", n1)
	c.waitVoters(3)
	leader := c.leader()
	var restores []func()
	for _, n := range []*testNode{n1, n2, n3} {
		if n != leader {
			restores = append(restores, cluster.RefuseRaftWrites(n.Node))
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, _, err := leader.Submit(ctx, []notaryapi.Entry{entryOf("stalled", 0)}, 1); !errors.Is(err, notaryapi.ErrNoQuorum) {
		t.Fatalf("a write without a quorum that takes writes: %v, want no_quorum", err)
	}
	c.waitFor("the leader's no-quorum alert", func() bool { return hasAlert(leader, notaryapi.AlertNoQuorum) })
	for _, n := range []*testNode{n1, n2, n3} {
		if n != leader {
			if err := n.NotReady(); err == nil || !strings.Contains(err.Error(), "cannot append to the raft log") {
				t.Errorf("%s, whose raft log refuses writes, says %v", n.cfg.ID, err)
			}
		}
	}
	for _, restore := range restores {
		restore()
	}
	if _, err := clientFor(leader).Notarize(ctx, entryOf("stalled", 0)); err != nil {
		t.Fatalf("the write once the disks take writes again: %v", err)
	}
}
