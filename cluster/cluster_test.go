package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/telenotary/telenotary/cluster"
	"github.com/telenotary/telenotary/cluster/httpapi"
	"github.com/telenotary/telenotary/cluster/notaryapi"
	"github.com/telenotary/telenotary/notary"
	"golang.org/x/mod/sumdb/note"
)

// TestThreeNodeCluster notarizes through every node of a 3-node cluster on
// loopback TCP (followers forward to the leader) and checks that every
// node reaches the same root at the same size and every receipt verifies.
func TestThreeNodeCluster(t *testing.T) {
	c := newTestCluster(t)
	n1 := c.bootstrap("node-1")
	n2 := c.join("node-2", n1)
	n3 := c.join("node-3", n1)
	c.waitVoters(3)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var receipts []*notary.Receipt
	for i, n := range []*testNode{n1, n2, n3} {
		cl := clientFor(n) // only this node: a follower must forward
		for j := range 10 {
			term := n.Status().Term
			resp, err := cl.Notarize(ctx, entryOf("single", 10*i+j))
			if err != nil {
				t.Fatalf("notarize via %s: %v", n.cfg.ID, err)
			}
			// A request whose leader stepped down after committing it
			// is retried by the client and then found logged: existing
			// is right then, and only then.
			if resp.Existing && n.Status().Term == term {
				t.Fatalf("a new commitment reported as existing, with no leader change")
			}
			receipts = append(receipts, resp.Receipt)
		}
		batch := make([]notaryapi.Entry, 50)
		for j := range batch {
			batch[j] = entryOf("batch", 100*i+j)
		}
		resp, err := cl.NotarizeBatch(ctx, batch)
		if err != nil {
			t.Fatalf("batch via %s: %v", n.cfg.ID, err)
		}
		if len(resp.Receipts) != len(batch) {
			t.Fatalf("%d receipts for %d entries", len(resp.Receipts), len(batch))
		}
		receipts = append(receipts, resp.Receipts...)
	}
	cp := c.waitConverged()
	if cp.Size != uint64(len(receipts)) {
		t.Fatalf("converged at size %d, want %d", cp.Size, len(receipts))
	}
	policy := c.policy()
	if len(policy.Verifiers) != 3 {
		t.Fatalf("/v1/keys lists %d keys, want 3", len(policy.Verifiers))
	}
	seen := map[uint64]bool{}
	for _, r := range receipts {
		if _, err := notary.Verify(notary.Claim{Receipt: r, Commitment: r.Leaf.Commitment}, policy); err != nil {
			t.Fatalf("receipt %d: %v", r.Index, err)
		}
		if seen[r.Index] {
			t.Fatalf("index %d issued twice", r.Index)
		}
		seen[r.Index] = true
	}

	// Resubmitting returns the existing receipt, from any node.
	again, err := clientFor(n3).Notarize(ctx, entryOf("single", 0))
	if err != nil {
		t.Fatal(err)
	}
	if !again.Existing || again.Receipt.Index != receipts[0].Index {
		t.Fatalf("resubmission: existing %v index %d, want the original %d", again.Existing, again.Receipt.Index, receipts[0].Index)
	}
	if got := c.waitConverged(); got.Size != cp.Size {
		t.Fatalf("a resubmission grew the log from %d to %d", cp.Size, got.Size)
	}
	// The receipt by commitment carries a fresh proof into the latest checkpoint.
	r, err := clientFor(n2).Receipt(ctx, receipts[5].Leaf.Commitment)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := notary.Verify(notary.Claim{Receipt: r, Commitment: r.Leaf.Commitment}, policy); err != nil || r.Index != receipts[5].Index {
		t.Fatalf("receipt by commitment: index %d, %v", r.Index, err)
	}
}

// TestLeaderSendsAhead: a leader's writes reach its followers while it
// writes them to its own log (raftfix.Transport.SendAhead; its test there
// shows the overlap and that nothing commits early), which the leader's
// metrics count.
func TestLeaderSendsAhead(t *testing.T) {
	c := threeNodes(t)
	leader := c.waitLeader()
	cl := clientFor(leader)
	for i := range 5 {
		if _, err := cl.Notarize(context.Background(), entryOf("ahead", i)); err != nil {
			t.Fatal(err)
		}
	}
	if n := metric(t, leader, "telenotary_raft_sent_ahead_total"); n == 0 {
		t.Fatal("the leader sent none of 5 writes ahead to its followers")
	}
}

// TestBadRequests checks the API's answers to bad input: 400 naming the
// field, 401 and 403, 404, and that nothing is applied.
func TestBadRequests(t *testing.T) {
	c := newTestCluster(t)
	n1 := c.bootstrap("node-1")
	ctx := context.Background()
	before := c.waitConverged()

	submit := notaryapi.NewClient(notaryapi.ClientConfig{Nodes: []string{n1.url}, Token: submitterToken})
	for _, tc := range []struct {
		name  string
		do    func() error
		want  error
		field string
	}{
		{"unknown kind", func() error {
			_, err := rawPost(ctx, n1.url+"/v1/notarize", submitterToken, `{"kind":"pizza","commitment":"`+hex64()+`"}`)
			return err
		}, notaryapi.ErrBadRequest, "kind"},
		{"short commitment", func() error {
			_, err := rawPost(ctx, n1.url+"/v1/notarize", submitterToken, `{"kind":"prescription","commitment":"abcd"}`)
			return err
		}, notaryapi.ErrBadRequest, "commitment"},
		{"commitment not hex", func() error {
			_, err := rawPost(ctx, n1.url+"/v1/notarize", submitterToken, `{"kind":"prescription","commitment":"`+"zz"+hex64()[2:]+`"}`)
			return err
		}, notaryapi.ErrBadRequest, "commitment"},
		{"malformed JSON", func() error {
			_, err := rawPost(ctx, n1.url+"/v1/notarize", submitterToken, `{"kind":`)
			return err
		}, notaryapi.ErrBadRequest, "body"},
		{"unknown field", func() error {
			_, err := rawPost(ctx, n1.url+"/v1/notarize", submitterToken, `{"kind":"prescription","commitment":"`+hex64()+`","colour":"red"}`)
			return err
		}, notaryapi.ErrBadRequest, "colour"},
		{"bad entry in a batch", func() error {
			_, err := rawPost(ctx, n1.url+"/v1/notarize/batch", submitterToken,
				`{"entries":[{"kind":"prescription","commitment":"`+hex64()+`"},{"kind":"prescription","commitment":"xyz"}]}`)
			return err
		}, notaryapi.ErrBadRequest, "entries[1].commitment"},
		{"batch over the limit", func() error {
			big := make([]notaryapi.Entry, notaryapi.MaxBatchRequest+1)
			for i := range big {
				big[i] = entryOf("big", i)
			}
			_, err := submit.NotarizeBatch(ctx, big)
			return err
		}, notaryapi.ErrBadRequest, "entries"},
		{"empty batch", func() error {
			_, err := submit.NotarizeBatch(ctx, nil)
			return err
		}, notaryapi.ErrBadRequest, "entries"},
		{"no token", func() error {
			_, err := rawPost(ctx, n1.url+"/v1/notarize", "", `{"kind":"prescription","commitment":"`+hex64()+`"}`)
			return err
		}, notaryapi.ErrUnauthorized, ""},
		{"wrong token", func() error {
			_, err := rawPost(ctx, n1.url+"/v1/notarize", "not-a-token-of-this-cluster", `{"kind":"prescription","commitment":"`+hex64()+`"}`)
			return err
		}, notaryapi.ErrUnauthorized, ""},
		{"submitter removing a node", func() error { return submit.Remove(ctx, "node-1") }, notaryapi.ErrForbidden, ""},
		{"unknown commitment", func() error {
			_, err := submit.Receipt(ctx, notary.Commitment{1})
			return err
		}, notaryapi.ErrNotFound, ""},
		{"proof beyond the log", func() error {
			_, err := submit.InclusionProof(ctx, 5, 10)
			return err
		}, notaryapi.ErrBadRequest, "index"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.do()
			if !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
			var ae *httpapi.Problem
			if tc.field != "" && (!errors.As(err, &ae) || ae.Field != tc.field) {
				t.Fatalf("error %v does not name field %q", err, tc.field)
			}
		})
	}
	if after := c.waitConverged(); after != before {
		t.Fatalf("bad requests changed the log: %+v -> %+v", before, after)
	}
}

// TestCosignedReceipts asks for receipts and checkpoints signed by every
// node: the nodes sign identical checkpoint bodies, so their signatures
// combine, and a verifier needing all three keys accepts the receipt.
func TestCosignedReceipts(t *testing.T) {
	c := newTestCluster(t)
	n1 := c.bootstrap("node-1")
	n2 := c.join("node-2", n1)
	n3 := c.join("node-3", n1)
	c.waitVoters(3)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cl := clientFor(n1, n2, n3)
	var commitments []notary.Commitment
	for i := range 30 {
		resp, err := cl.Notarize(ctx, entryOf("cosign", i))
		if err != nil {
			t.Fatal(err)
		}
		commitments = append(commitments, resp.Receipt.Leaf.Commitment)
	}
	policy := c.policy()
	policy.MinSignatures = 3
	for _, n := range []*testNode{n1, n2, n3} {
		r, err := clientFor(n).ReceiptSigned(ctx, commitments[7], 3)
		if err != nil {
			t.Fatalf("from %s: %v", n.cfg.ID, err)
		}
		res, err := notary.Verify(notary.Claim{Receipt: r, Commitment: commitments[7]}, policy)
		if err != nil {
			t.Fatalf("receipt from %s with 3 signatures: %v", n.cfg.ID, err)
		}
		if len(res.Signers) != 3 {
			t.Fatalf("signers %v", res.Signers)
		}
	}
	// A checkpoint of an earlier size, from any node, is the same body.
	var bodies []notary.Checkpoint
	for _, n := range []*testNode{n1, n2, n3} {
		b, err := httpGet(n.url + "/v1/checkpoint?size=12")
		if err != nil {
			t.Fatal(err)
		}
		cp, err := notary.ParseSignedCheckpoint([]byte(b))
		if err != nil {
			t.Fatal(err)
		}
		bodies = append(bodies, cp.Checkpoint)
	}
	if bodies[0] != bodies[1] || bodies[1] != bodies[2] || bodies[0].Size != 12 {
		t.Fatalf("checkpoints of size 12 differ between nodes: %+v", bodies)
	}
	// More signatures than nodes cannot be had.
	short, cancelShort := context.WithTimeout(ctx, 10*time.Second)
	defer cancelShort()
	if _, err := notaryapi.NewClient(notaryapi.ClientConfig{Nodes: []string{n1.url}}).ReceiptSigned(short, commitments[0], 4); err == nil {
		t.Fatal("a receipt with 4 signatures from a 3-node cluster")
	}
}

// TestMajorityCosignedNotarization: a notarization asked with
// signatures=majority comes back with a receipt whose checkpoint a
// majority of the nodes signed, through the leader or a follower, one at
// a time or many at once (which share one gathering per checkpoint), and
// still with one node of three down; a verifier needing two signatures
// accepts each, and one needing three refuses them.
func TestMajorityCosignedNotarization(t *testing.T) {
	c := newTestCluster(t)
	n1 := c.bootstrap("node-1")
	n2 := c.join("node-2", n1)
	n3 := c.join("node-3", n1)
	c.waitVoters(3)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	policy := c.policy()
	policy.MinSignatures = 2
	check := func(what string, c notary.Commitment, r *notary.Receipt) {
		t.Helper()
		res, err := notary.Verify(notary.Claim{Receipt: r, Commitment: c}, policy)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if len(res.Signers) < 2 {
			t.Fatalf("%s: signers %v", what, res.Signers)
		}
	}
	for i, n := range []*testNode{n1, n2, n3} {
		e := entryOf("majority", i)
		resp, err := clientFor(n).NotarizeSigned(ctx, e, notaryapi.Majority)
		if err != nil {
			t.Fatalf("through %s: %v", n.cfg.ID, err)
		}
		check("through "+n.cfg.ID, e.Commitment, resp.Receipt)
	}
	var wg sync.WaitGroup
	receipts := make([]*notary.Receipt, 40)
	for i := range receipts {
		wg.Go(func() {
			resp, err := clientFor(n1, n2, n3).NotarizeSigned(ctx, entryOf("majority-many", i), notaryapi.Majority)
			if err != nil {
				t.Errorf("notarization %d: %v", i, err)
				return
			}
			receipts[i] = resp.Receipt
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	for i, r := range receipts {
		check(fmt.Sprintf("notarization %d of 40 at once", i), entryOf("majority-many", i).Commitment, r)
	}
	all := policy
	all.MinSignatures = 3
	if _, err := notary.Verify(notary.Claim{Receipt: receipts[0], Commitment: entryOf("majority-many", 0).Commitment}, all); !errors.Is(err, notary.ErrTooFewSignatures) {
		t.Fatalf("a majority-signed receipt under a policy needing 3: %v", err)
	}
	// One follower down: the leader and the other still make a majority.
	for _, n := range c.list() {
		if n != c.leader() {
			c.stop(n)
			break
		}
	}
	e := entryOf("majority-down", 0)
	resp, err := clientFor(c.leader()).NotarizeSigned(ctx, e, notaryapi.Majority)
	if err != nil {
		t.Fatalf("with a node down: %v", err)
	}
	check("with a node down", e.Commitment, resp.Receipt)
}

// TestMixedSignatureCounts: requests that share raft batches but ask for
// one, two or three signatures (single notarizations and batch requests,
// at once) each get a checkpoint with the signatures they asked for: a
// verifier needing that many accepts the receipt, and the single-signature
// ones carry the leader's signature alone.
func TestMixedSignatureCounts(t *testing.T) {
	c := threeNodes(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	type result struct {
		want int
		e    notaryapi.Entry
		r    *notary.Receipt
	}
	var (
		mu      sync.Mutex
		results []result
		wg      sync.WaitGroup
	)
	cl := clientFor(c.leader())
	for i := range 60 {
		want := 1 + i%3
		wg.Go(func() {
			if i%4 == 0 { // a batch request of three
				entries := []notaryapi.Entry{entryOf("mixed-batch", 3*i), entryOf("mixed-batch", 3*i+1), entryOf("mixed-batch", 3*i+2)}
				resp, err := cl.NotarizeBatchSigned(ctx, entries, want)
				if err != nil {
					t.Errorf("batch %d, %d signatures: %v", i, want, err)
					return
				}
				mu.Lock()
				for j, r := range resp.Receipts {
					results = append(results, result{want, entries[j], r})
				}
				mu.Unlock()
				return
			}
			e := entryOf("mixed", i)
			resp, err := cl.NotarizeSigned(ctx, e, want)
			if err != nil {
				t.Errorf("notarization %d, %d signatures: %v", i, want, err)
				return
			}
			mu.Lock()
			results = append(results, result{want, e, resp.Receipt})
			mu.Unlock()
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	for _, res := range results {
		policy := c.policy()
		policy.MinSignatures = res.want
		v, err := notary.Verify(notary.Claim{Receipt: res.r, Commitment: res.e.Commitment}, policy)
		if err != nil {
			t.Fatalf("receipt %d asked with %d signatures: %v", res.r.Index, res.want, err)
		}
		if len(v.Signers) < res.want || (res.want == 1 && len(v.Signers) != 1) {
			t.Fatalf("receipt %d asked with %d signatures is signed by %v", res.r.Index, res.want, v.Signers)
		}
	}
}

// TestCosignaturesFromStreams: one notarization after another, each asking
// for every node's signature, on a cluster of three: after the first
// gathering opens the followers' checkpoint streams, the leader takes
// their signatures from the streams rather than asking for each batch
// (telenotary_cosignatures_total by way), and every receipt verifies
// under a policy needing all three.
func TestCosignaturesFromStreams(t *testing.T) {
	c := threeNodes(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	leader := c.leader()
	policy := c.policy()
	policy.MinSignatures = 3
	const n = 40
	for i := range n {
		e := entryOf("streamed", i)
		resp, err := clientFor(leader).NotarizeSigned(ctx, e, 3)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := notary.Verify(notary.Claim{Receipt: resp.Receipt, Commitment: e.Commitment}, policy); err != nil {
			t.Fatalf("notarization %d: %v", i, err)
		}
	}
	streamed := metric(t, leader, `telenotary_cosignatures_total{via="stream"}`)
	asked := metric(t, leader, `telenotary_cosignatures_total{via="request"}`)
	// Two signatures a notarization; the first ones are asked for while
	// the streams open.
	if streamed+asked < 2*n || streamed < n {
		t.Fatalf("of %d followers' signatures, %v came by stream and %v were asked for; want most by stream", 2*n, streamed, asked)
	}
}

// TestReceiptAtALaggingFollower looks a commitment up at a follower that
// has logged but not yet applied it: the follower relays the leader's
// receipt instead of answering 404, and answers from its own log again
// once it has caught up.
func TestReceiptAtALaggingFollower(t *testing.T) {
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
	release := cluster.HoldApplies(follower.Node)
	t.Cleanup(release)
	resp, err := clientFor(leader).Notarize(ctx, entryOf("lagging", 1))
	if err != nil {
		t.Fatal(err)
	}
	if cp, err := checkpointOf(follower); err != nil || cp.Size > resp.Receipt.Index {
		t.Fatalf("the held follower's checkpoint (%v, %v) already holds leaf %d", cp, err, resp.Receipt.Index)
	}

	leaderKey, err := note.NewVerifier(leader.cfg.VerifierKey)
	if err != nil {
		t.Fatal(err)
	}
	lookup := clientFor(follower)
	r, err := lookup.Receipt(ctx, resp.Receipt.Leaf.Commitment)
	if err != nil {
		t.Fatalf("lookup at the lagging follower: %v", err)
	}
	if r.Index != resp.Receipt.Index {
		t.Fatalf("lookup at the lagging follower: index %d, want %d", r.Index, resp.Receipt.Index)
	}
	if _, err := note.Open(r.Checkpoint, note.VerifierList(leaderKey)); err != nil {
		t.Fatalf("the relayed receipt's checkpoint is not the leader's: %v", err)
	}
	if _, err := notary.Verify(notary.Claim{Receipt: r, Commitment: r.Leaf.Commitment}, c.policy()); err != nil {
		t.Fatalf("relayed receipt: %v", err)
	}
	if _, err := lookup.Receipt(ctx, notary.Commitment{7}); !errors.Is(err, notaryapi.ErrNotFound) {
		t.Fatalf("a commitment nobody logged, at the follower: %v, want not found", err)
	}

	release()
	c.waitConverged()
	followerKey, err := note.NewVerifier(follower.cfg.VerifierKey)
	if err != nil {
		t.Fatal(err)
	}
	r, err = lookup.Receipt(ctx, resp.Receipt.Leaf.Commitment)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := note.Open(r.Checkpoint, note.VerifierList(followerKey)); err != nil || r.Index != resp.Receipt.Index {
		t.Fatalf("after catching up, the follower's own receipt: index %d, %v", r.Index, err)
	}

	// With the leader gone, a miss is the follower's own 404, not an
	// error about the leader.
	// (A raw GET: the Go client would retry a 503 until a new leader.)
	cluster.Crash(leader.Node)
	resp2, err := http.Get(follower.url + "/v1/receipts/" + notary.Commitment{8}.String())
	if err != nil {
		t.Fatal(err)
	}
	resp2.Body.Close()
	if resp2.StatusCode != http.StatusNotFound {
		t.Fatalf("a miss at the follower with the leader down: HTTP %d, want 404", resp2.StatusCode)
	}
}

// TestTransferToTheLeader: moving leadership to the node that leads is a
// request that makes no sense, answered 400 naming the field, not 500.
func TestTransferToTheLeader(t *testing.T) {
	c := newTestCluster(t)
	n1 := c.bootstrap("node-1")
	c.join("node-2", n1)
	c.waitVoters(2)
	l := c.leader()
	op := notaryapi.NewClient(notaryapi.ClientConfig{Nodes: []string{n1.url}, Token: operatorToken})
	err := op.Transfer(context.Background(), l.cfg.ID)
	var p *httpapi.Problem
	if !errors.Is(err, notaryapi.ErrBadRequest) || !errors.As(err, &p) || p.Field != "id" {
		t.Fatalf("transfer to the leader itself: %v, want 400 naming id", err)
	}
}

// TestRefusedJoinStops: a new node whose join the cluster refuses (a
// wrong token) stops with one line that says so, and leaves its data
// directory as it found it: empty.
func TestRefusedJoinStops(t *testing.T) {
	c := newTestCluster(t)
	n1 := c.bootstrap("node-1")
	cfg := c.config("node-2")
	cfg.Join, cfg.JoinToken = []string{n1.url}, "not-a-token-of-this-cluster"
	n := c.start(cfg)
	select {
	case <-n.Done():
	case <-time.After(conditionWait):
		t.Fatal("the node whose join was refused is still running")
	}
	if err := n.Err(); !errors.Is(err, cluster.ErrJoinRefused) || !errors.Is(err, notaryapi.ErrUnauthorized) || strings.Contains(err.Error(), "\n") {
		t.Fatalf("the node stopped with %v, want one line saying the join was refused for the token", err)
	}
	entries, err := os.ReadDir(cfg.DataDir)
	if err != nil || len(entries) != 0 {
		t.Fatalf("the data directory holds %v (%v), want it empty", entries, err)
	}
}
