package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

var (
	rqlited      = flag.String("rqlite", "", "the rqlited binary TestSequentialAgainstRqlite compares with (make bench-rqlite builds one); empty skips it")
	rqliteRounds = flag.Int("rqlite.rounds", 3, "interleaved rounds of TestSequentialAgainstRqlite")
	rqliteRound  = flag.Duration("rqlite.round", 10*time.Second, "how long one client writes to each system in a round")
)

// TestSequentialAgainstRqlite is a benchmark, not a check: one client
// writing one commitment at a time, waiting for each answer, to a 3-node
// telenotary cluster and to a 3-node rqlite cluster (one INSERT a request,
// which rqlite commits through Raft like a receipt), both of processes on
// loopback with their default durability, in interleaved rounds, by the
// same code (sequentialWrites). It logs each round's latencies and the
// ratio of the medians. Run it with make bench-rqlite.
func TestSequentialAgainstRqlite(t *testing.T) {
	if *rqlited == "" {
		t.Skip("no -rqlite binary given (make bench-rqlite)")
	}
	c := startCluster(t)
	n1 := c.waitLeader()
	rq := startRqlite(t, *rqlited, 3)

	ctx := context.Background()
	tnWrite := func(h string) *http.Request {
		req, _ := http.NewRequestWithContext(ctx, "POST", n1.url+"/v1/notarize", strings.NewReader(`{"kind":"consent","commitment":"`+h+`"}`))
		req.Header.Set("Authorization", "Bearer "+c.submitter)
		return req
	}
	rqWrite := func(h string) *http.Request {
		req, _ := http.NewRequestWithContext(ctx, "POST", rq+"/db/execute", strings.NewReader(`[["INSERT INTO commitments(h) VALUES(?)", "`+h+`"]]`))
		return req
	}
	resp, err := http.Post(rq+"/db/execute", "application/json", strings.NewReader(`[["CREATE TABLE commitments (h TEXT PRIMARY KEY)"]]`))
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(resp.Body); resp.StatusCode != http.StatusOK || bytes.Contains(b, []byte(`"error"`)) {
		t.Fatalf("rqlite's CREATE TABLE: %s: %s", resp.Status, b)
	}
	resp.Body.Close()
	var tnAll, rqAll []time.Duration
	for r := 1; r <= *rqliteRounds; r++ {
		tn, err := sequentialWrites(tnWrite, *rqliteRound)
		if err != nil {
			t.Fatal(err)
		}
		rqs, err := sequentialWrites(rqWrite, *rqliteRound)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("round %d: telenotary %s; rqlite %s; p50 ratio %.2f", r, latencies(tn), latencies(rqs), quantile(tn, 0.5).Seconds()/quantile(rqs, 0.5).Seconds())
		tnAll, rqAll = append(tnAll, tn...), append(rqAll, rqs...)
	}
	t.Logf("all rounds: telenotary %s; rqlite %s; p50 ratio %.2f", latencies(tnAll), latencies(rqAll), quantile(tnAll, 0.5).Seconds()/quantile(rqAll, 0.5).Seconds())
}

// sequentialWrites sends the requests of write, one at a time on one
// connection, for d (after a second of warm-up that is not counted), and
// returns each one's time. Every answer must be 200 and, for rqlite, say
// one row was written. The requests go on a connection of its own,
// written and read in this goroutine (net/http's Request.Write and
// ReadResponse), not through an http.Client, whose connection goroutines
// add their hand-offs to every request of both systems alike.
func sequentialWrites(write func(commitment string) *http.Request, d time.Duration) ([]time.Duration, error) {
	var conn net.Conn
	var br *bufio.Reader
	defer func() {
		if conn != nil {
			conn.Close()
		}
	}()
	var took []time.Duration
	warm := time.Now().Add(time.Second)
	end := warm.Add(d)
	for time.Now().Before(end) {
		var c [32]byte
		rand.Read(c[:])
		req := write(hex.EncodeToString(c[:]))
		req.Header.Set("Content-Type", "application/json")
		if conn == nil {
			var err error
			if conn, err = net.DialTimeout("tcp", req.URL.Host, 10*time.Second); err != nil {
				return nil, err
			}
			br = bufio.NewReader(conn)
		}
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		start := time.Now()
		if err := req.Write(conn); err != nil {
			return nil, err
		}
		resp, err := http.ReadResponse(br, req)
		if err != nil {
			return nil, err
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		elapsed := time.Since(start)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode != http.StatusOK || bytes.Contains(body, []byte(`"error"`)) {
			return nil, fmt.Errorf("%s %s: %s: %s", req.Method, req.URL, resp.Status, body)
		}
		if resp.Close {
			conn.Close()
			conn = nil
		}
		if start.After(warm) {
			took = append(took, elapsed)
		}
	}
	return took, nil
}

// latencies summarizes request times.
func latencies(took []time.Duration) string {
	return fmt.Sprintf("%d requests, p50 %.2f ms, p90 %.2f ms, p99 %.2f ms", len(took),
		ms64(quantile(took, 0.5)), ms64(quantile(took, 0.9)), ms64(quantile(took, 0.99)))
}

func ms64(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// quantile returns the q quantile of took (sorted in place).
func quantile(took []time.Duration, q float64) time.Duration {
	if len(took) == 0 {
		return 0
	}
	slices.Sort(took)
	return took[int(float64(len(took)-1)*q)]
}

// startRqlite starts an n-node rqlite cluster of processes on loopback,
// each with its own data directory, and returns the leader's HTTP URL once
// every node is a voter.
func startRqlite(t *testing.T, bin string, n int) string {
	t.Helper()
	dir := t.TempDir()
	var first string
	var urls []string
	for i := 1; i <= n; i++ {
		httpAddr, raftAddr := freeAddr(t), freeAddr(t)
		args := []string{"-node-id", fmt.Sprint(i), "-http-addr", httpAddr, "-raft-addr", raftAddr}
		if first != "" {
			args = append(args, "-join", first)
		} else {
			first = raftAddr
		}
		args = append(args, filepath.Join(dir, fmt.Sprintf("rqlite-%d", i)))
		logFile, err := os.Create(filepath.Join(dir, fmt.Sprintf("rqlite-%d.log", i)))
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, args...)
		cmd.Stdout, cmd.Stderr = logFile, logFile
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			cmd.Process.Kill()
			cmd.Wait()
			logFile.Close()
		})
		urls = append(urls, "http://"+httpAddr)
		if i == 1 {
			waitFor(t, 30*time.Second, "rqlite's first node to lead", func() error { return rqliteVoters(urls[0], 1) })
		}
	}
	waitFor(t, 60*time.Second, "rqlite's nodes to join", func() error { return rqliteVoters(urls[0], n) })
	return urls[0]
}

// rqliteVoters checks that rqlite's /nodes at url lists want reachable
// nodes.
func rqliteVoters(url string, want int) error {
	resp, err := http.Get(url + "/nodes")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if got := bytes.Count(b, []byte(`"reachable":true`)); got != want {
		return fmt.Errorf("%d of %d nodes reachable: %s", got, want, b)
	}
	return nil
}
