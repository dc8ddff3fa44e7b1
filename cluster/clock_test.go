package cluster_test

import (
	"context"
	"encoding/binary"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/telenotary/telenotary/cluster"
	"github.com/telenotary/telenotary/cluster/notaryapi"
	"github.com/telenotary/telenotary/notary"
)

const year = 365 * 24 * time.Hour

// hasAlert reports whether the node's status carries an alert of kind.
func hasAlert(n *testNode, kind notaryapi.AlertKind) bool {
	for _, a := range n.Status().Alerts {
		if a.Kind == kind {
			return true
		}
	}
	return false
}

// TestClockOffNeverStamps: a node whose clock is a year ahead (or behind)
// is made leader under load: it stamps no leaf (its submissions are
// refused and it hands leadership on), an alert shows on it and on its
// peers, and once its clock is fixed, timestamps follow the true time.
func TestClockOffNeverStamps(t *testing.T) {
	for _, off := range []time.Duration{year, -year} {
		t.Run(off.String(), func(t *testing.T) { testClockOff(t, off) })
	}
}

func testClockOff(t *testing.T, off time.Duration) {
	c := newTestCluster(t)
	n1 := c.bootstrap("node-1")
	c.join("node-2", n1)
	n3 := c.join("node-3", n1)
	c.waitVoters(3)

	c.stop(n3)
	skewed := func() time.Time { return time.Now().Add(off) }
	n3.cfg.Clock = skewed
	n3 = c.restart(n3)
	c.waitVoters(3)
	c.waitFor("the skewed node to raise a clock alert", func() bool { return hasAlert(n3, notaryapi.AlertClockSkew) })
	c.waitFor("a peer to raise an alert about the skewed node", func() bool { return hasAlert(n1, notaryapi.AlertClockSkew) })

	// Load through every node while node-3 is handed leadership.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := time.Now()
	var mu sync.Mutex
	var receipts []*notary.Receipt
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := range 4 {
		wg.Go(func() {
			cl := clientFor(c.list()[w%3])
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := cl.Notarize(ctx, entryOf("skew", 1000*w+i))
				if err != nil {
					t.Errorf("notarize: %v", err)
					return
				}
				mu.Lock()
				receipts = append(receipts, resp.Receipt)
				mu.Unlock()
			}
		})
	}
	op := notaryapi.NewClient(notaryapi.ClientConfig{Nodes: []string{n1.url}, Token: operatorToken})
	if err := op.Transfer(ctx, "node-3"); err != nil {
		t.Fatalf("hand leadership to the skewed node: %v", err)
	}
	// Whenever it leads, it refuses to stamp.
	if _, _, err := n3.Submit(ctx, []notaryapi.Entry{entryOf("direct", 0)}, 1); !errors.Is(err, notaryapi.ErrClockSkew) && !errors.Is(err, notaryapi.ErrNotLeader) {
		t.Errorf("a submission to the skewed node itself: %v, want clock_skew (or not_leader once it handed on)", err)
	}
	c.waitFor("leadership to move off the skewed node", func() bool {
		l := c.leader()
		return l != nil && l.cfg.ID != "node-3"
	})
	mu.Lock()
	handedOn := len(receipts)
	mu.Unlock()
	c.waitFor("more receipts under the new leader", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(receipts) >= handedOn+20
	})
	close(stop)
	wg.Wait()
	end := time.Now()
	if len(receipts) == 0 {
		t.Fatal("no receipt at all under load")
	}
	for _, r := range receipts {
		if ts := time.UnixMilli(r.Leaf.Timestamp); ts.Before(start.Add(-time.Second)) || ts.After(end.Add(time.Second)) {
			t.Fatalf("leaf %d stamped %s, outside the test's %s to %s", r.Index, ts, start, end)
		}
	}

	// Fixed, node-3 leads and stamps the true time.
	c.stop(n3)
	n3.cfg.Clock = time.Now
	n3 = c.restart(n3)
	c.waitVoters(3)
	c.waitFor("the alert to clear", func() bool { return !hasAlert(n3, notaryapi.AlertClockSkew) && !hasAlert(n1, notaryapi.AlertClockSkew) })
	if err := op.Transfer(ctx, "node-3"); err != nil {
		t.Fatal(err)
	}
	c.waitFor("node-3 to lead", func() bool { l := c.leader(); return l != nil && l.cfg.ID == "node-3" })
	before := time.Now()
	resp, err := clientFor(n3).Notarize(ctx, entryOf("fixed", 0))
	if err != nil {
		t.Fatal(err)
	}
	if ts := time.UnixMilli(resp.Receipt.Leaf.Timestamp); ts.Before(before.Add(-time.Second)) || ts.After(time.Now().Add(time.Second)) {
		t.Fatalf("after the fix, a leaf stamped %s at %s", ts, before)
	}
}

// TestLogAheadRefused: a log whose newest leaf is stamped a year ahead
// (from an earlier fault) makes the leader refuse to stamp, with
// log_time_ahead and an alert, instead of stamping every later receipt a
// year ahead.
func TestLogAheadRefused(t *testing.T) {
	c := newTestCluster(t)
	n := c.bootstrap("node-1")
	future := time.Now().Add(year).UnixMilli()
	cmd := []byte{cluster.CmdNotarize}
	cmd = binary.BigEndian.AppendUint64(cmd, uint64(future))
	cmd = append(cmd, 1, byte(notary.KindDocument), 0)
	e := entryOf("future", 0)
	cmd = append(cmd, e.Commitment[:]...)
	if err := cluster.Propose(n.Node, cmd); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := clientFor(n).Notarize(ctx, entryOf("after", 0)); !errors.Is(err, notaryapi.ErrLogTimeAhead) {
		t.Fatalf("a submission after the future leaf: %v, want log_time_ahead", err)
	}
	if !hasAlert(n, notaryapi.AlertLogTimeAhead) {
		t.Fatalf("no log-time-ahead alert in %+v", n.Status().Alerts)
	}
}
