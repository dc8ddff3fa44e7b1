package monitor_test

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/telenotary/telenotary/cluster"
	"github.com/telenotary/telenotary/cluster/auth"
	"github.com/telenotary/telenotary/cluster/monitor"
	"github.com/telenotary/telenotary/cluster/notaryapi"
	"github.com/telenotary/telenotary/notary"
	"golang.org/x/mod/sumdb/note"
)

const (
	clusterOrigin = "monitor-cluster.test/log"
	submitToken   = "submitter-token-0123456789"
	joinToken     = "operator-token-0123456789"
	conditionWait = 60 * time.Second
)

// logWriter sends a node's logs to t.Log.
type logWriter struct{ t testing.TB }

func (w logWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// startCluster starts a 3-node cluster on loopback (real raft over TCP,
// real HTTP servers, logs in directories) and returns its nodes' URLs.
func startCluster(t *testing.T) []string {
	t.Helper()
	tokens, err := auth.ParseTokens([]byte("submitter " + submitToken + "\noperator " + joinToken + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var urls []string
	var nodes []*cluster.Node
	t.Cleanup(func() {
		for _, n := range slices.Backward(nodes) { // the leader last
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			n.Close(ctx)
			cancel()
		}
	})
	for i := range 3 {
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
		cfg.ID, cfg.DataDir = id, filepath.Join(dir, id)
		cfg.RaftAddr, cfg.InsecureRaft, cfg.HTTPAddr = "127.0.0.1:0", true, "127.0.0.1:0"
		cfg.Signer, cfg.VerifierKey = signer, vkey
		cfg.Tokens, cfg.JoinToken = tokens, joinToken
		cfg.HeartbeatTimeout, cfg.ElectionTimeout, cfg.LeaderLeaseTimeout = 500*time.Millisecond, 500*time.Millisecond, 250*time.Millisecond
		cfg.Logger = slog.New(slog.NewTextHandler(logWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
		if i == 0 {
			cfg.Bootstrap, cfg.Origin = true, clusterOrigin
		} else {
			cfg.Join = urls[:1]
		}
		n, err := cluster.New(context.Background(), cfg)
		if err != nil {
			t.Fatalf("start %s: %v", id, err)
		}
		nodes = append(nodes, n)
		urls = append(urls, "http://"+n.HTTPAddr())
		waitUntil(t, id+" ready", func() bool { return n.Ready() })
	}
	waitUntil(t, "3 members known to every node", func() bool {
		for _, n := range nodes {
			if _, _, ms := n.Members(); len(ms) != 3 || !n.Ready() {
				return false
			}
		}
		return true
	})
	return urls
}

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

// TestClusterUnderWrites: a monitor of a real 3-node cluster, asking for
// checkpoints signed by 2 nodes, polls it while a writer notarizes: no
// alert over the polls, of which at least six check every node. Once the writes
// stop and the nodes agree, the root the monitor derived from each node's
// leaves is the root every node signed.
func TestClusterUnderWrites(t *testing.T) {
	if testing.Short() {
		t.Skip("a 3-node cluster")
	}
	urls := startCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	client := notaryapi.NewClient(notaryapi.ClientConfig{Nodes: urls, Token: submitToken})
	keys, err := client.Keys(ctx)
	if err != nil {
		t.Fatal(err)
	}

	var written atomic.Int64
	wctx, stopWrites := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; wctx.Err() == nil; i++ {
			batch := make([]notaryapi.Entry, 50)
			for j := range batch {
				var b [8]byte
				binary.BigEndian.PutUint64(b[:], uint64(i*len(batch)+j))
				batch[j] = notaryapi.Entry{Kind: notary.KindPrescription, Commitment: notary.Commitment(sha256.Sum256(b[:]))}
			}
			if _, err := client.NotarizeBatch(wctx, batch); err == nil {
				written.Add(int64(len(batch)))
			}
		}
	})

	m := newMonitor(t, monitor.Config{Nodes: urls, Policy: notary.Policy{Verifiers: keys, MinSignatures: 2, Origin: clusterOrigin}})
	// A poll may leave a node unchecked (a cosignature that did not come
	// in time on a loaded machine): that is not a fault of the log, and
	// the polls go on until six checked every node.
	polls, checked := 0, 0
	for checked < 6 || written.Load() < 1000 {
		rep := m.PollOnce(ctx)
		if len(rep.Alerts) != 0 {
			t.Fatalf("poll %d under writes: alerts %+v", polls, rep.Alerts)
		}
		if len(rep.Unchecked) == 0 {
			checked++
		} else {
			t.Logf("poll %d under writes: unchecked %v", polls, rep.Unchecked)
		}
		polls++
		if ctx.Err() != nil {
			t.Fatalf("after %d polls (%d checked every node), %d entries written", polls, checked, written.Load())
		}
	}
	stopWrites()
	wg.Wait()

	// The nodes converge on one checkpoint and the monitor's trees give its
	// root. A batch whose answer the cancelled writer did not wait for may
	// still land after the nodes first agree: then they agree again, later.
	var head notary.Checkpoint
	waitUntil(t, "the nodes to agree and a poll to check every node at their head", func() bool {
		var cps []notary.Checkpoint
		for _, u := range urls {
			b, err := client.LatestCheckpointOf(ctx, u, 1)
			if err != nil {
				return false
			}
			cp, err := notary.OpenCheckpoint(b, notary.Policy{Verifiers: keys})
			if err != nil {
				t.Fatal(err)
			}
			cps = append(cps, cp.Checkpoint)
		}
		head = cps[0]
		if cps[1] != head || cps[2] != head {
			return false
		}
		rep := m.PollOnce(ctx)
		if len(rep.Alerts) != 0 {
			t.Fatalf("last polls: %+v", rep.Alerts)
		}
		if len(rep.Unchecked) != 0 {
			return false
		}
		for _, st := range m.Nodes() {
			if st.Size != head.Size || st.Derived != head.Size || st.Verified != head.Size || st.VerifiedRoot != head.Root {
				t.Logf("%s: %+v; the nodes signed size %d root %s", st.Node, st, head.Size, head.Root)
				return false
			}
		}
		return true
	})
	t.Logf("%d polls under writes (%d checked every node), %d entries written, log of %d leaves checked on each node", polls, checked, written.Load(), head.Size)
}
