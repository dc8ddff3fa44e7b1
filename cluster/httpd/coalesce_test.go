package httpd

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/telenotary/telenotary/cluster/auth"
	"github.com/telenotary/telenotary/cluster/httpapi"
	"github.com/telenotary/telenotary/cluster/notaryapi"
	"github.com/telenotary/telenotary/notary"
)

// forwardingNodes returns an in-memory leader and a follower of it (whose
// leader URL the caller sets once the leader serves), and the tokens
// their APIs take.
func forwardingNodes(tb testing.TB) (leader, follower *memNode, tokens *auth.Tokens) {
	tb.Helper()
	var err error
	if leader, err = newMemNode(testOrigin, 3); err != nil {
		tb.Fatal(err)
	}
	if follower, err = newMemNode(testOrigin, 3); err != nil {
		tb.Fatal(err)
	}
	follower.leader = false
	if tokens, err = auth.ParseTokens([]byte("submitter " + submitterToken + "\n")); err != nil {
		tb.Fatal(err)
	}
	return leader, follower, tokens
}

// TestForwardingCoalesces: while a follower's forwarded batches are on
// their way, the single submissions that arrive wait together and go to
// the leader as one batch; every client gets its own receipt, with
// Existing as the leader says it.
func TestForwardingCoalesces(t *testing.T) {
	leader, follower, tokens := forwardingNodes(t)
	release := make(chan struct{})
	var batches, singles, held atomic.Int32
	var refuse atomic.Bool
	inner := New(Config{Cluster: leader, Ledger: leader, Tokens: tokens, Forward: http.DefaultClient})
	leaderSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/notarize/batch":
			if refuse.Load() {
				httpapi.WriteError(w, r, nil, fmt.Errorf("%w: an election", notaryapi.ErrNotLeader))
				return
			}
			body, _ := io.ReadAll(r.Body)
			var req notaryapi.BatchRequest
			json.Unmarshal(body, &req)
			r.Body = io.NopCloser(bytes.NewReader(body))
			batches.Add(1)
			held.Add(int32(len(req.Entries)))
			<-release
		case "/v1/notarize":
			singles.Add(1)
		}
		inner.ServeHTTP(w, r)
	}))
	defer leaderSrv.Close()
	leader.leaderURL = leaderSrv.URL
	follower.leaderURL = leaderSrv.URL
	var forwarded atomic.Int32
	api := newAPI(Config{Cluster: follower, Ledger: follower, Tokens: tokens, Forward: http.DefaultClient, Forwarded: func(n int) { forwarded.Add(int32(n)) }})
	followerSrv := httptest.NewServer(api.handler())
	defer followerSrv.Close()

	// One commitment the leader has logged already.
	old := randomHex()
	if _, _, err := leader.Submit(t.Context(), []notaryapi.Entry{{Kind: notary.KindConsent, Commitment: mustCommitment(t, old)}}, 1); err != nil {
		t.Fatal(err)
	}
	const clients = 40
	commitments := make([]string, clients)
	for i := range commitments {
		commitments[i] = randomHex()
	}
	commitments[7] = old
	var wg sync.WaitGroup
	answers := make([][]byte, clients)
	statuses := make([]int, clients)
	for i, c := range commitments {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses[i], _, answers[i] = exchange(t, http.DefaultClient, "POST", followerSrv.URL+"/v1/notarize", submitterToken, `{"kind":"consent","commitment":"`+c+`"}`)
		}()
	}
	// Two batches are held at the leader; the other submissions wait in
	// the follower's lane.
	lane := func() int {
		c := &api.coalesce
		c.mu.Lock()
		defer c.mu.Unlock()
		n := 0
		for _, l := range c.lanes {
			n += len(l.waiting)
		}
		return n
	}
	deadline := time.Now().Add(30 * time.Second)
	for batches.Load() < forwardsInFlight || lane()+int(held.Load()) < clients {
		if time.Now().After(deadline) {
			t.Fatalf("%d batches at the leader, %d waiting at the follower", batches.Load(), lane())
		}
		time.Sleep(time.Millisecond)
	}
	close(release)
	wg.Wait()
	for i, c := range commitments {
		var resp notaryapi.NotarizeResponse
		if statuses[i] != http.StatusOK || json.Unmarshal(answers[i], &resp) != nil || resp.Receipt == nil || resp.Receipt.Leaf.Commitment.String() != c {
			t.Fatalf("client %d: HTTP %d %s", i, statuses[i], answers[i])
		}
		if resp.Existing != (c == old) {
			t.Errorf("client %d: existing %v", i, resp.Existing)
		}
	}
	if singles.Load() != 0 || batches.Load() > forwardsInFlight+1 || forwarded.Load() != clients {
		t.Fatalf("the leader got %d single and %d batch requests for %d submissions (%d forwarded); want them in at most %d batches",
			singles.Load(), batches.Load(), clients, forwarded.Load(), forwardsInFlight+1)
	}

	// The leader's refusal reaches the client as the leader gave it: a 503
	// during an election is one the client retries.
	refuse.Store(true)
	st, h, b := exchange(t, http.DefaultClient, "POST", followerSrv.URL+"/v1/notarize", submitterToken, `{"kind":"consent","commitment":"`+randomHex()+`"}`)
	if st != http.StatusServiceUnavailable || h.Get("Retry-After") == "" || !bytes.Contains(b, []byte(`"code":"not_leader"`)) {
		t.Fatalf("the leader's 503 through the follower: HTTP %d %s", st, b)
	}
}

// TestForwardingKeepsItsConnection: a follower forwards one client's
// submissions after one another on one connection to the leader, not a
// new one each; and when the leader closed it while it was idle, the next
// submission still goes through, on a new one.
func TestForwardingKeepsItsConnection(t *testing.T) {
	leader, follower, tokens := forwardingNodes(t)
	leaderSrv := httptest.NewUnstartedServer(New(Config{Cluster: leader, Ledger: leader, Tokens: tokens, Forward: http.DefaultClient}))
	var conns atomic.Int32
	leaderSrv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	leaderSrv.Start()
	defer leaderSrv.Close()
	leader.leaderURL = leaderSrv.URL
	follower.leaderURL = leaderSrv.URL
	followerSrv := httptest.NewServer(New(Config{Cluster: follower, Ledger: follower, Tokens: tokens, Forward: http.DefaultClient}))
	defer followerSrv.Close()

	submit := func(i int) {
		t.Helper()
		c := randomHex()
		st, _, b := exchange(t, http.DefaultClient, "POST", followerSrv.URL+"/v1/notarize", submitterToken, `{"kind":"consent","commitment":"`+c+`"}`)
		var resp notaryapi.NotarizeResponse
		if st != http.StatusOK || json.Unmarshal(b, &resp) != nil || resp.Receipt == nil || resp.Receipt.Leaf.Commitment.String() != c {
			t.Fatalf("submission %d through the follower: HTTP %d %s", i, st, b)
		}
	}
	for i := range 5 {
		submit(i)
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("5 submissions one after another reached the leader on %d connections, want 1", n)
	}
	leaderSrv.CloseClientConnections()
	submit(5)
	if n := conns.Load(); n != 2 {
		t.Fatalf("after the leader closed the follower's connection: %d connections, want 2", n)
	}
}

// BenchmarkForwardHop: one client's submissions, one at a time, straight
// to the leader, through a bare relay (a handler that sends the request
// on to the leader on a kept connection and copies the answer back,
// nothing else), and through a follower. The leader is in memory (no
// raft), so the differences are what one forwarding hop costs: the
// follower's should be the relay's, the floor of a hop over HTTP.
//
//	go test ./cluster/httpd -run XXX -bench ForwardHop -benchtime 5000x -count 3
func BenchmarkForwardHop(b *testing.B) {
	leader, follower, tokens := forwardingNodes(b)
	leaderSrv := httptest.NewServer(New(Config{Cluster: leader, Ledger: leader, Tokens: tokens, Forward: http.DefaultClient}))
	defer leaderSrv.Close()
	leader.leaderURL = leaderSrv.URL
	follower.leaderURL = leaderSrv.URL
	followerSrv := httptest.NewServer(New(Config{Cluster: follower, Ledger: follower, Tokens: tokens, Forward: http.DefaultClient}))
	defer followerSrv.Close()
	var relayMu sync.Mutex
	var relayConn *httpapi.Conn
	relaySrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		relayMu.Lock()
		defer relayMu.Unlock()
		if relayConn == nil || relayConn.Broken() {
			if relayConn != nil {
				relayConn.Close()
			}
			c, err := httpapi.DialConn(r.Context(), leaderSrv.URL, nil)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadGateway)
				return
			}
			relayConn = c
		}
		body, _ := io.ReadAll(r.Body)
		req, _ := http.NewRequest(r.Method, leaderSrv.URL+r.URL.RequestURI(), bytes.NewReader(body))
		req.Header = r.Header.Clone()
		var answer bytes.Buffer
		resp, _, err := relayConn.Do(req, &answer, 1<<20, 10*time.Second)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
		w.WriteHeader(resp.StatusCode)
		w.Write(answer.Bytes())
	}))
	defer relaySrv.Close()

	for _, target := range []struct{ name, url string }{{"leader", leaderSrv.URL}, {"relay", relaySrv.URL}, {"follower", followerSrv.URL}} {
		b.Run(target.name, func(b *testing.B) {
			conn, err := httpapi.DialConn(b.Context(), target.url, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer conn.Close()
			var answer bytes.Buffer
			for b.Loop() {
				req, _ := http.NewRequest(http.MethodPost, target.url+"/v1/notarize", strings.NewReader(`{"kind":"consent","commitment":"`+randomHex()+`"}`))
				req.Header.Set("Authorization", "Bearer "+submitterToken)
				req.Header.Set("Content-Type", "application/json")
				resp, _, err := conn.Do(req, &answer, 1<<20, 10*time.Second)
				if err != nil || resp.StatusCode != http.StatusOK {
					b.Fatalf("%v: %v %s", err, resp, answer.Bytes())
				}
			}
		})
	}
}
