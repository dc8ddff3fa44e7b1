package cluster_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/telenotary/telenotary/cluster"
	"github.com/telenotary/telenotary/notary"
)

// TestConn: a direct connection notarizes one entry and a batch on the
// leader over one kept-alive connection, with receipts that verify; an
// error answer is an *APIError naming the cause; it refuses https; and a
// call after its context ended fails rather than hangs.
func TestConn(t *testing.T) {
	c := newTestCluster(t)
	n1 := c.bootstrap("node-1")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := cluster.DialNode(ctx, n1.url, submitterToken)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	v, err := notary.NewVerifier(c.policy())
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 { // one connection, several requests
		e := entryOf("conn", i)
		r, err := conn.Notarize(e)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if _, err := v.Verify(notary.Claim{Receipt: r.Receipt, Commitment: e.Commitment}); err != nil || r.Existing {
			t.Fatalf("request %d: receipt does not verify (%v) or is reported existing (%v)", i, err, r.Existing)
		}
	}
	batch := []cluster.Entry{entryOf("conn-batch", 0), entryOf("conn-batch", 1), entryOf("conn", 0)}
	br, err := conn.NotarizeBatch(batch)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range br.Receipts {
		if _, err := v.Verify(notary.Claim{Receipt: r, Commitment: batch[i].Commitment}); err != nil {
			t.Fatalf("batch receipt %d: %v", i, err)
		}
	}

	bad, err := cluster.DialNode(ctx, n1.url, "not-a-token-of-this-cluster")
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	var ae *cluster.APIError
	if _, err := bad.Notarize(entryOf("conn-bad", 0)); !errors.As(err, &ae) || !errors.Is(err, cluster.ErrUnauthorized) {
		t.Fatalf("wrong token: %v, want an APIError that is ErrUnauthorized", err)
	}
	if _, err := cluster.DialNode(ctx, "https://"+n1.HTTPAddr(), submitterToken); err == nil {
		t.Fatal("DialNode accepted an https URL")
	}

	short, stop := context.WithCancel(ctx)
	ended, err := cluster.DialNode(short, n1.url, submitterToken)
	if err != nil {
		t.Fatal(err)
	}
	defer ended.Close()
	stop()
	if _, err := ended.Notarize(entryOf("conn-ended", 0)); err == nil {
		t.Fatal("a call after the dial context ended succeeded")
	}
}
