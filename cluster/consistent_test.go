package cluster_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/telenotary/telenotary/cluster"
	"github.com/telenotary/telenotary/cluster/httpapi"
	"github.com/telenotary/telenotary/cluster/notaryapi"
	"github.com/telenotary/telenotary/notary"
)

// get fetches a path of a node's API and returns the status and body.
func get(t *testing.T, n *testNode, path string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(n.url + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// TestConsistentReads: with ?consistent=1 a read reflects every write
// acknowledged before it. A leader whose state machine lags its commit
// index waits for it (without it, the leader answers 404 for a committed
// commitment); a lagging follower hands the read to the leader (without
// it, the follower serves an old checkpoint). A bad value is refused,
// naming the parameter.
func TestConsistentReads(t *testing.T) {
	c := newTestCluster(t)
	n1 := c.bootstrap("node-1")
	c.join("node-2", n1)
	c.join("node-3", n1)
	c.waitVoters(3)
	leader := c.leader()
	var follower *testNode
	for _, n := range c.list() {
		if n != leader {
			follower = n
			break
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	// A follower that lags: its checkpoint is old, a consistent one is not.
	release := cluster.HoldApplies(follower.Node)
	t.Cleanup(release)
	resp, err := clientFor(leader).Notarize(ctx, entryOf("consistent", 1))
	if err != nil {
		t.Fatal(err)
	}
	checkpointSize := func(path string) uint64 {
		t.Helper()
		status, body := get(t, follower, path)
		if status != http.StatusOK {
			t.Fatalf("%s: %d %s", path, status, body)
		}
		cp, err := notary.ParseSignedCheckpoint(body)
		if err != nil {
			t.Fatal(err)
		}
		return cp.Size
	}
	if size := checkpointSize("/v1/checkpoint"); size > resp.Receipt.Index {
		t.Fatalf("the held follower's own checkpoint already has %d leaves", size)
	}
	if size := checkpointSize("/v1/checkpoint?consistent=1"); size <= resp.Receipt.Index {
		t.Fatalf("a consistent checkpoint at the lagging follower has %d leaves, not leaf %d", size, resp.Receipt.Index)
	}
	release()
	c.waitConverged()

	// A leader whose state machine lags: a write is committed (the
	// followers apply it) but the leader has not applied it.
	hold := cluster.HoldApplies(leader.Node)
	t.Cleanup(hold)
	e := entryOf("consistent", 2)
	written := make(chan error, 1)
	go func() {
		_, err := clientFor(leader).Notarize(ctx, e)
		written <- err
	}()
	c.waitFor("a follower to apply the write", func() bool {
		status, _ := get(t, follower, "/v1/receipts/"+e.Commitment.String())
		return status == http.StatusOK
	})
	if status, body := get(t, leader, "/v1/receipts/"+e.Commitment.String()); status != http.StatusNotFound {
		t.Fatalf("the held leader's own lookup: %d %s; the test needs it stale", status, body)
	}
	// A consistent read waits for the apply rather than answer 404: it has
	// not answered when its client gives up.
	impatient := &http.Client{Timeout: 300 * time.Millisecond}
	if resp, err := impatient.Get(leader.url + "/v1/receipts/" + e.Commitment.String() + "?consistent=1"); err == nil {
		resp.Body.Close()
		t.Fatalf("a consistent lookup at the lagging leader answered %d before the apply", resp.StatusCode)
	}
	hold()
	status, body := get(t, leader, "/v1/receipts/"+e.Commitment.String()+"?consistent=1")
	var got notaryapi.NotarizeResponse
	if status != http.StatusOK || json.Unmarshal(body, &got) != nil || got.Receipt == nil || got.Receipt.Leaf.Commitment != e.Commitment {
		t.Fatalf("a consistent lookup at the leader once applied: %d %s", status, body)
	}
	if err := <-written; err != nil {
		t.Fatal(err)
	}

	if status, body := get(t, follower, "/v1/checkpoint?consistent=maybe"); status != http.StatusBadRequest {
		t.Fatalf("a bad consistent value: %d %s", status, body)
	} else if p := problemOf(t, body); p.Field != "consistent" {
		t.Fatalf("the refusal names %q", p.Field)
	}
}

// problemOf decodes a problem answer.
func problemOf(t *testing.T, body []byte) httpapi.Problem {
	t.Helper()
	var p httpapi.Problem
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatalf("not a problem: %s", body)
	}
	return p
}
