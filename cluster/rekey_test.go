package cluster_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/telenotary/telenotary/cluster/notaryapi"
	"github.com/telenotary/telenotary/notary"
	"golang.org/x/mod/sumdb/note"
)

// TestKeyRotation: an operator replaces a node's key; the old one is
// retired at the log's size and listed as such by /v1/keys. Under a policy
// that bounds each key to the sizes it signed, receipts signed before and
// after the rotation verify, and the retired key's signature on a newer
// checkpoint does not count.
func TestKeyRotation(t *testing.T) {
	c := newTestCluster(t)
	n1 := c.bootstrap("node-1")
	c.join("node-2", n1)
	n3 := c.join("node-3", n1)
	c.waitVoters(3)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	before, err := clientFor(c.leader()).NotarizeSigned(ctx, entryOf("rotation", 1), 3)
	if err != nil {
		t.Fatal(err)
	}
	oldSigner, oldKey := n3.cfg.Signer, n3.cfg.VerifierKey

	skey, newKey, err := note.GenerateKey(nil, "node-3")
	if err != nil {
		t.Fatal(err)
	}
	newSigner, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	operator := notaryapi.NewClient(notaryapi.ClientConfig{Nodes: []string{n1.url}, Token: operatorToken})
	st, err := operator.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	m := notaryapi.Member{ID: "node-3", RaftAddr: n3.RaftAddr(), HTTPAddr: n3.url, VerifierKey: newKey}
	proof, err := newSigner.Sign(notaryapi.MemberStatement(st.ClusterID, m))
	if err != nil {
		t.Fatal(err)
	}
	if err := operator.Rekey(ctx, notaryapi.JoinRequest{Member: m, ClusterID: st.ClusterID, KeyProof: []byte("forged")}); err == nil {
		t.Fatal("a rekey without a proof of the new key was taken")
	}
	if err := operator.Rekey(ctx, notaryapi.JoinRequest{Member: m, ClusterID: st.ClusterID, KeyProof: proof}); err != nil {
		t.Fatal(err)
	}
	cut := before.Receipt.Index + 1 // the log's size when the key changed
	resp, err := http.Get(n1.url + "/v1/keys")
	if err != nil {
		t.Fatal(err)
	}
	keys, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	retired := fmt.Sprintf("# retired key of node node-3, signed log sizes 0 to %d: %s", cut, oldKey)
	if !strings.Contains(string(keys), retired) || !strings.Contains(string(keys), "\n"+newKey+"\n") ||
		!strings.Contains(string(keys), fmt.Sprintf("# node node-3, signing from log size %d\n", cut+1)) {
		t.Fatalf("/v1/keys after the rotation:\n%s\nwant the retired line %q and the new key from %d", keys, retired, cut+1)
	}

	// node-3 restarts with its new key and signs again.
	c.stop(n3)
	n3.cfg.Signer, n3.cfg.VerifierKey = newSigner, newKey
	n3 = c.restart(n3)
	c.waitVoters(3)
	after, err := clientFor(c.leader()).NotarizeSigned(ctx, entryOf("rotation", 2), 3)
	if err != nil {
		t.Fatal(err)
	}

	pf, err := notary.ParsePolicy(fmt.Appendf(nil, "origin %s\nnode %s\nnode %s\nnode %s from 0 until %d\nnode %s from %d\nnode-signatures 3\n",
		testOrigin, n1.cfg.VerifierKey, c.nodes["node-2"].cfg.VerifierKey, oldKey, cut, newKey, cut+1))
	if err != nil {
		t.Fatal(err)
	}
	for name, r := range map[string]*notary.Receipt{"before": before.Receipt, "after": after.Receipt} {
		if _, err := notary.Verify(notary.Claim{Receipt: r, Commitment: r.Leaf.Commitment}, pf.Policy); err != nil {
			t.Errorf("the receipt signed %s the rotation: %v", name, err)
		}
	}
	// The retired key signs the newer checkpoint: with node-1 and node-2
	// that is three signatures, of which only two count.
	cp, err := notary.ParseSignedCheckpoint(after.Receipt.Checkpoint)
	if err != nil {
		t.Fatal(err)
	}
	forged, err := cp.Checkpoint.Sign(n1.cfg.Signer, c.nodes["node-2"].cfg.Signer, oldSigner)
	if err != nil {
		t.Fatal(err)
	}
	r := *after.Receipt
	r.Checkpoint = forged.Note
	if _, err := notary.Verify(notary.Claim{Receipt: &r, Commitment: r.Leaf.Commitment}, pf.Policy); err == nil {
		t.Fatal("a retired key's signature on a checkpoint past its range counted")
	}
}
