package cluster_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestShutdownWithSubscribers: a node followed by 50 event streams stops
// within 3 s of being asked and releases its ports: it starts again on
// them at once.
func TestShutdownWithSubscribers(t *testing.T) {
	c := newTestCluster(t)
	cfg := c.config("node-1")
	cfg.Bootstrap, cfg.Origin = true, testOrigin
	cfg.APILimits.AnonymousStreams, cfg.APILimits.AnonymousStreamsPerIP = 64, 64
	n := c.start(cfg)
	c.waitFor("node ready", n.Ready)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	for i := range 50 {
		if code, err := openStream(ctx, client, n.url, ""); err != nil || code != http.StatusOK {
			t.Fatalf("stream %d: HTTP %d, %v", i, code, err)
		}
	}
	start := time.Now()
	closeCtx, closeCancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer closeCancel()
	if err := n.Close(closeCtx); err != nil {
		t.Fatalf("close with 50 subscribers: %v", err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("close with 50 subscribers took %v, want at most 3 s", took)
	}
	restarted := c.restart(n)
	c.waitFor("the restarted node ready", restarted.Ready)
	if !strings.HasSuffix(restarted.url, n.HTTPAddr()) {
		t.Fatalf("restarted on %s, want %s", restarted.url, n.HTTPAddr())
	}
}
