package cluster

import (
	"context"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/telenotary/telenotary/cluster/notaryapi"
)

// TestClockGuardSlowPeer: a peer that does not answer a question about its
// clock (a loaded machine) is no vote against this node's clock while its
// last answer is fresh; a peer whose answer disagrees is, and a majority of
// them outvotes the node.
func TestClockGuardSlowPeer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String() // nothing answers there
	ln.Close()
	g := &clockGuard{now: time.Now, bound: time.Second, client: http.DefaultClient}
	voters := []notaryapi.MemberInfo{
		{Member: notaryapi.Member{ID: "self"}},
		{Member: notaryapi.Member{ID: "slow", HTTPAddr: dead}},
		{Member: notaryapi.Member{ID: "other", HTTPAddr: dead}},
	}
	g.peers = map[string]peerClock{
		"slow":  {offset: 10 * time.Millisecond, at: time.Now()},
		"other": {offset: time.Hour, at: time.Now()},
	}
	g.compare(context.Background(), "self", voters, 3)
	if err := g.check(0); err != nil || g.isOutvoted() {
		t.Fatalf("with a slow peer that agreed lately: %v, outvoted %v", err, g.isOutvoted())
	}
	// Both peers, heard from lately, disagree: the node is the odd one out.
	g.peers["slow"] = peerClock{offset: time.Hour, at: time.Now()}
	g.compare(context.Background(), "self", voters, 3)
	if err := g.check(0); err == nil || !g.isOutvoted() {
		t.Fatalf("with both peers an hour off: %v, outvoted %v", err, g.isOutvoted())
	}
	// Answers older than peerFresh no longer count.
	g.peers = map[string]peerClock{"slow": {offset: 0, at: time.Now().Add(-2 * peerFresh)}}
	g.compare(context.Background(), "self", voters, 3)
	if err := g.check(0); err == nil || g.isOutvoted() {
		t.Fatalf("with no peer heard from lately: %v (want no majority), outvoted %v (want not)", err, g.isOutvoted())
	}
}
