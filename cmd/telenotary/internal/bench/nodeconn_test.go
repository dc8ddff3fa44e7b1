package bench

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/telenotary/telenotary/cluster"
	"github.com/telenotary/telenotary/cluster/auth"
	"github.com/telenotary/telenotary/cluster/httpapi"
	"github.com/telenotary/telenotary/cluster/notaryapi"
	"github.com/telenotary/telenotary/cmd/telenotary/internal/poll"
	"github.com/telenotary/telenotary/notary"
)

const testSubmitterToken = "submitter-token-0123456789"

// startTestNode starts a one-node cluster in-process on loopback and waits
// until it leads; it returns the node's API URL and the keys verifying its
// receipts.
func startTestNode(t *testing.T) (url string, policy notary.Policy) {
	t.Helper()
	skey, vkey, err := notary.GenerateKey("node-1")
	if err != nil {
		t.Fatal(err)
	}
	signer, _, err := notary.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := auth.ParseTokens([]byte("submitter " + testSubmitterToken + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := cluster.DefaultConfig()
	cfg.ID, cfg.DataDir = "node-1", filepath.Join(t.TempDir(), "node-1")
	cfg.RaftAddr, cfg.HTTPAddr, cfg.InsecureRaft = "127.0.0.1:0", "127.0.0.1:0", true
	cfg.Signer, cfg.VerifierKey, cfg.Tokens = signer, vkey, tokens
	cfg.Bootstrap, cfg.Origin = true, "cmd.test/log"
	cfg.HeartbeatTimeout, cfg.ElectionTimeout, cfg.LeaderLeaseTimeout = 500*time.Millisecond, 500*time.Millisecond, 250*time.Millisecond
	n, err := cluster.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		n.Close(ctx)
	})
	if err := poll.Until(context.Background(), 30*time.Second, n.Ready); err != nil {
		t.Fatalf("the node did not lead: %v", err)
	}
	verifiers, err := notary.ParseVerifierKeys([]byte(vkey))
	if err != nil {
		t.Fatal(err)
	}
	return "http://" + n.HTTPAddr(), notary.Policy{Verifiers: verifiers}
}

func testEntry(i int) notaryapi.Entry {
	return notaryapi.Entry{Kind: notary.KindDocument, Commitment: notary.Commitment{byte(i), byte(i >> 8), 0xc0}}
}

// TestNodeConn: the load generator's direct connection notarizes one entry
// and a batch on the leader over one kept-alive connection, with receipts
// that verify; an error answer is an *httpapi.Problem naming the cause; it
// refuses https; and a call after its context ended fails rather than
// hangs.
func TestNodeConn(t *testing.T) {
	url, policy := startTestNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := dialNode(ctx, url, testSubmitterToken)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	v, err := notary.NewVerifier(policy)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 { // one connection, several requests
		e := testEntry(i)
		r, err := conn.Notarize(e)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if _, err := v.Verify(notary.Claim{Receipt: r.Receipt, Commitment: e.Commitment}); err != nil || r.Existing {
			t.Fatalf("request %d: receipt does not verify (%v) or is reported existing (%v)", i, err, r.Existing)
		}
	}
	batch := []notaryapi.Entry{testEntry(10), testEntry(11), testEntry(0)}
	br, err := conn.NotarizeBatch(batch)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range br.Receipts {
		if _, err := v.Verify(notary.Claim{Receipt: r, Commitment: batch[i].Commitment}); err != nil {
			t.Fatalf("batch receipt %d: %v", i, err)
		}
	}

	// The signatures asked reach the node as the query: a majority of one
	// node is its own signature; two signatures of a one-node cluster is
	// refused, naming the parameter.
	conn.query = signaturesQuery(notaryapi.Majority)
	if _, err := conn.Notarize(testEntry(40)); err != nil {
		t.Fatalf("a majority of one node's signatures: %v", err)
	}
	conn.query = signaturesQuery(2)
	if _, err := conn.Notarize(testEntry(41)); err == nil || !strings.Contains(err.Error(), "signatures") {
		t.Fatalf("two signatures of a one-node cluster: %v, want a refusal naming signatures", err)
	}
	conn.query = ""

	bad, err := dialNode(ctx, url, "not-a-token-of-this-cluster")
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	var p *httpapi.Problem
	if _, err := bad.Notarize(testEntry(20)); !errors.As(err, &p) || !errors.Is(err, notaryapi.ErrUnauthorized) {
		t.Fatalf("wrong token: %v, want a problem that is ErrUnauthorized", err)
	}
	if _, err := dialNode(ctx, "https"+url[len("http"):], testSubmitterToken); err == nil {
		t.Fatal("dialNode accepted an https URL")
	}

	short, stop := context.WithCancel(ctx)
	ended, err := dialNode(short, url, testSubmitterToken)
	if err != nil {
		t.Fatal(err)
	}
	defer ended.Close()
	stop()
	if _, err := ended.Notarize(testEntry(30)); err == nil {
		t.Fatal("a call after the dial context ended succeeded")
	}
}

// TestNodeConnTimesOut: a node that takes a request and never answers (a
// paused leader) fails the request at the connection's deadline, as a
// timeout the run counts, instead of holding the client.
func TestNodeConnTimesOut(t *testing.T) {
	release := make(chan struct{})
	hung := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer hung.Close()
	defer close(release) // before Close, which waits for the handler
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := dialNode(ctx, hung.URL, "token-0123456789abcdef")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.timeout = 200 * time.Millisecond
	_, err = conn.Notarize(notaryapi.Entry{Kind: notary.KindDocument})
	if !timedOut(err) || ctx.Err() != nil {
		t.Fatalf("a request to a node that never answers: %v, want a timeout well before the test's deadline", err)
	}
}
