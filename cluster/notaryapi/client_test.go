package notaryapi

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestClientLeavesAHungNode: a node that takes the request and never
// answers (a paused leader) costs one try of AttemptTimeout, not the whole
// call: the client forgets it as leader and the next node answers.
func TestClientLeavesAHungNode(t *testing.T) {
	release := make(chan struct{})
	hung := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer hung.Close()
	defer close(release)
	good := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(HeaderLeader, "http://"+r.Host)
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"cluster_id":"c0ffee","origin":"o.test/log","members":[]}`))
	}))
	defer good.Close()

	c := NewClient(ClientConfig{Nodes: []string{hung.URL, good.URL}, AttemptTimeout: 200 * time.Millisecond})
	hungURL := hung.URL
	c.leader.Store(&hungURL) // it was the leader when it stopped answering
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// A call for the leader (a join; a notarization goes the same way).
	resp, err := c.Join(ctx, JoinRequest{Member: Member{ID: "node-3"}})
	if err != nil || resp.ClusterID != "c0ffee" {
		t.Fatalf("a call to the leader with the leader hung: %+v, %v", resp, err)
	}
	if ctx.Err() != nil {
		t.Fatal("the call took the caller's whole deadline")
	}
	// The hung leader is forgotten: the good node is now the leader.
	if l := c.leader.Load(); l == nil || *l != good.URL {
		t.Fatalf("the leader is %v after the hung node timed out, want %s", l, good.URL)
	}
}
