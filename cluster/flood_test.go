package cluster_test

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/telenotary/telenotary/cluster/notaryapi"
)

// openStream opens /v1/events with token and reports the status; an open
// stream stays open until ctx ends.
func openStream(ctx context.Context, client *http.Client, url, token string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/v1/events", nil)
	if err != nil {
		return 0, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	// Read the stream's first line, then hold it open.
	if _, err := bufio.NewReader(resp.Body).ReadString('\n'); err != nil {
		resp.Body.Close()
		return 0, err
	}
	context.AfterFunc(ctx, func() { resp.Body.Close() })
	return resp.StatusCode, nil
}

// TestFloodLeavesOperatorIn: 300 idle connections and 300 anonymous event
// streams do not lock the operator out: it still gets the full status and
// an event stream, and /readyz stays 200.
func TestFloodLeavesOperatorIn(t *testing.T) {
	c := newTestCluster(t)
	n := c.bootstrap("node-1")
	addr := n.HTTPAddr()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	for range 300 {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("idle connection: %v", err)
		}
		defer conn.Close()
	}
	flood := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 0, MaxIdleConnsPerHost: 400}}
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[int]int{}
	for range 300 {
		wg.Go(func() {
			code, err := openStream(ctx, flood, n.url, "")
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				code = -1
			}
			codes[code]++
		})
	}
	wg.Wait()
	if codes[http.StatusOK] == 0 || codes[http.StatusServiceUnavailable] == 0 {
		t.Fatalf("anonymous streams answered %v: want some open and the rest refused with 503", codes)
	}

	operator := &http.Client{Timeout: 10 * time.Second}
	op := notaryapi.NewClient(notaryapi.ClientConfig{Token: operatorToken, HTTPClient: operator})
	sctx, scancel := context.WithTimeout(ctx, 10*time.Second)
	defer scancel()
	st, err := op.StatusOf(sctx, n.url)
	if err != nil || len(st.Peers) != 1 {
		t.Fatalf("the operator's status during the flood: %v, %+v", err, st)
	}
	if code, err := openStream(ctx, &http.Client{}, n.url, operatorToken); err != nil || code != http.StatusOK {
		t.Fatalf("the operator's event stream during the flood: HTTP %d, %v", code, err)
	}
	resp, err := operator.Get(n.url + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/readyz during the flood: HTTP %d", resp.StatusCode)
	}
}

// TestConnectionCapPerAddress: connections from one address past the cap
// are closed as soon as they are accepted; below it they are served.
func TestConnectionCapPerAddress(t *testing.T) {
	c := newTestCluster(t)
	cfg := c.config("node-1")
	cfg.Bootstrap, cfg.Origin = true, testOrigin
	cfg.APIMaxConnsPerIP = 20
	n := c.start(cfg)
	c.waitFor("node ready", n.Ready)
	var held []net.Conn
	for range 20 {
		conn, err := net.Dial("tcp", n.HTTPAddr())
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, conn)
	}
	extra, err := net.Dial("tcp", n.HTTPAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	extra.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := extra.Write([]byte("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")); err == nil {
		if line, err := bufio.NewReader(extra).ReadString('\n'); err == nil {
			t.Fatalf("the 21st connection from one address was served: %q", line)
		}
	}
	// Closing one makes room.
	held[0].Close()
	for _, h := range held[1:] {
		defer h.Close()
	}
	waitFor(t, "a connection to be served again", func() bool {
		resp, err := http.Get(n.url + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}
