package cluster_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/telenotary/telenotary/cluster"
	"github.com/telenotary/telenotary/cluster/notaryapi"
	"golang.org/x/mod/sumdb/tlog"
)

// flipByte flips one bit of the byte at off in the file at path.
func flipByte(t *testing.T, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x10
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// scrubbedNode bootstraps a one-node cluster, notarizes n entries and
// stops it.
func scrubbedNode(t *testing.T, n int) (*testCluster, *testNode) {
	c := newTestCluster(t)
	node := c.bootstrap("node-1")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	entries := make([]notaryapi.Entry, n)
	for i := range entries {
		entries[i] = entryOf("scrub", i)
	}
	if _, err := clientFor(node).NotarizeBatch(ctx, entries); err != nil {
		t.Fatal(err)
	}
	return c, node
}

// TestScrubFindsDamageNobodyAsked: a stored hash deep inside the tree (one
// no proof of the newest leaves touches, and that opening the log does not
// read) is damaged on a stopped node. Without any request, the scrub finds
// it: the node alerts, is not ready and serves nothing from its log. The
// control, an undamaged node, completes passes and stays ready.
func TestScrubFindsDamageNobodyAsked(t *testing.T) {
	c, node := scrubbedNode(t, 100)
	c.waitFor("a first scrub pass of the sound node", func() bool { return node.Status().Scrub.Passes >= 1 })
	if st := node.Status(); !st.Ready || st.Scrub.Rate != cluster.DefaultConfig().ScrubRate || st.Scrub.LastPass.IsZero() {
		t.Fatalf("a sound node after a scrub pass: ready %v (%s), scrub %+v", st.Ready, st.NotReady, st.Scrub)
	}
	c.stop(node)
	flipByte(t, filepath.Join(node.cfg.DataDir, "log-1", "hashes"), tlog.StoredHashIndex(1, 3)*32+9)
	node = c.restart(node)
	c.waitFor("the scrub to find the damage", func() bool { return hasAlert(node, notaryapi.AlertDamaged) })
	if err := node.NotReady(); !errors.Is(err, notaryapi.ErrDamaged) || !strings.Contains(err.Error(), "stored hash") {
		t.Fatalf("the damaged node's readiness: %v; want damaged, naming the stored hash", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if _, err := clientFor(node).Leaves(ctx, 0, 10); !errors.Is(err, notaryapi.ErrDamaged) {
		t.Fatalf("leaves from the damaged node: %v, want 503 damaged", err)
	}
}

// TestScrubReplacesDamagedSnapshot: a snapshot whose data or metadata is
// damaged on a stopped node is found by the scrub, which makes the node
// not ready, takes a sound snapshot in its place and removes the damaged
// one; the node is ready again.
func TestScrubReplacesDamagedSnapshot(t *testing.T) {
	for _, file := range []string{"state.bin", "meta.json"} {
		t.Run(file, func(t *testing.T) {
			c, node := scrubbedNode(t, 50)
			if err := cluster.TakeSnapshot(node.Node); err != nil {
				t.Fatal(err)
			}
			c.stop(node)
			dir := filepath.Join(node.cfg.DataDir, "raft", "snapshots")
			snaps, err := os.ReadDir(dir)
			if err != nil || len(snaps) != 1 {
				t.Fatalf("snapshots: %v, %v; want one", snaps, err)
			}
			damaged := snaps[0].Name()
			path := filepath.Join(dir, damaged, file)
			st, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			flipByte(t, path, st.Size()/2)
			if file == "meta.json" {
				// A flip in the middle of a number can still parse: make
				// it unparseable, as most damage to JSON is.
				os.WriteFile(path, []byte("{\"Version\":1,\"ID\":"), 0o600)
			}
			node = c.restart(node)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			// An entry applied since the start lets raft take a snapshot.
			if _, err := clientFor(node).Notarize(ctx, entryOf("after", 0)); err != nil {
				t.Fatal(err)
			}
			c.waitFor("the damaged snapshot to be replaced", func() bool {
				_, err := os.Stat(filepath.Join(dir, damaged))
				return errors.Is(err, os.ErrNotExist)
			})
			snaps, _ = os.ReadDir(dir)
			if len(snaps) != 1 {
				t.Fatalf("snapshots after the repair: %v; want one new one", snaps)
			}
			c.waitFor("the node to be ready", func() bool { return node.Ready() && !hasAlert(node, notaryapi.AlertSnapshot) })
		})
	}
}
