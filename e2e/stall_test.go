//go:build linux

package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestLeaderPausedUnderLoad stops the leader with SIGSTOP for 30 s while
// clients submit through the Go client, which must leave the hung node:
// receipts sequenced by a new leader arrive within 3 s of its election
// (the client forgets a node whose attempt timed out, and tries the
// others). Then the paused node resumes, rejoins as a follower, and the
// audit finds nothing lost or moved.
func TestLeaderPausedUnderLoad(t *testing.T) {
	c := startCluster(t)
	l := startLoad(c.client(), 6, 5, 15*time.Second)
	defer l.stop()
	l.waitReceipts(t, "receipts before the pause", time.Time{}, 300)

	leader := c.waitLeader()
	st, err := leader.status()
	if err != nil {
		t.Fatal(err)
	}
	pausedAt := time.Now()
	leader.cmd.Process.Signal(syscall.SIGSTOP)
	resumed := false
	resume := func() {
		if !resumed {
			resumed = true
			leader.cmd.Process.Signal(syscall.SIGCONT)
		}
	}
	defer resume()

	// The election, as the other nodes report it.
	var elected time.Time
	var newLeader string
	waitFor(t, readyTimeout, "a new leader among the others", func() error {
		for _, n := range c.nodes {
			if n == leader {
				continue
			}
			s, err := n.status()
			if err == nil && s.State == "Leader" && s.Term > st.Term {
				elected, newLeader = time.Now(), n.id
				return nil
			}
		}
		return fmt.Errorf("no new leader yet")
	})
	first := l.waitNewLeader(t, "a receipt from the new leader", pausedAt, c.policy(), leader.id, 1)
	t.Logf("leader %s paused; %s elected %v later; first receipt it sequenced %v after the election",
		leader.id, newLeader, elected.Sub(pausedAt).Round(time.Millisecond), first.Sub(elected).Round(time.Millisecond))
	if lag := first.Sub(elected); lag > 3*time.Second {
		t.Errorf("writes resumed %v after the new leader's election; want within 3 s", lag.Round(time.Millisecond))
	}
	l.waitNewLeader(t, "receipts flowing from the new leader", pausedAt, c.policy(), leader.id, 300)
	if d := time.Until(pausedAt.Add(30 * time.Second)); d > 0 {
		time.Sleep(d) // the pause lasts 30 s: the load goes on meanwhile
	}
	resume()
	l.stop()
	want := c.waitConverged()
	c.waitVoters(3)
	audit(t, c, l, want)
}

// TestStopWithSubscribers: SIGTERM on a node that 50 clients follow on
// /v1/events ends their streams, exits 0 within 3 s and releases its
// ports, so a restart at once succeeds.
func TestStopWithSubscribers(t *testing.T) {
	c := startCluster(t)
	n := c.nodes[1]
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		started int
	)
	opened := make(chan struct{}, 50)
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Each from an address of its own: a node takes only a few
			// streams from one address.
			from := &net.TCPAddr{IP: net.IPv4(127, 0, 1, byte(1+i))}
			client := &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{LocalAddr: from}).DialContext}}
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, n.url+"/v1/events", nil)
			resp, err := client.Do(req)
			if err != nil {
				t.Errorf("event stream from %s: %v", from.IP, err)
				opened <- struct{}{}
				return
			}
			defer resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				mu.Lock()
				started++
				mu.Unlock()
			} else {
				t.Errorf("event stream from %s: %s", from.IP, resp.Status)
			}
			opened <- struct{}{}
			buf := make([]byte, 4096)
			for {
				if _, err := resp.Body.Read(buf); err != nil {
					return
				}
			}
		}()
	}
	for range 50 {
		select {
		case <-opened:
		case <-time.After(readyTimeout):
			t.Fatal("the event streams did not open")
		}
	}
	if started != 50 {
		t.Fatalf("%d of 50 event streams opened", started)
	}
	sent := time.Now()
	n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.done:
	case <-time.After(stopTimeout):
		t.Fatalf("%s did not stop within %v of SIGTERM with 50 subscribers", n.id, stopTimeout)
	}
	took := time.Since(sent)
	t.Logf("%s stopped %v after SIGTERM with 50 event streams open", n.id, took.Round(time.Millisecond))
	if n.waitErr != nil {
		t.Errorf("%s exited with %v", n.id, n.waitErr)
	}
	if took > 3*time.Second {
		t.Errorf("%s took %v to stop; want at most 3 s", n.id, took.Round(time.Millisecond))
	}
	wg.Wait() // every stream ended with the node
	n.restart()
	waitReady(t, n)
}

// TestFollowerDiskFull fills the small file system (a 64 MiB tmpfs) under
// a follower's data directory with a ballast while clients submit: the
// follower says it is not ready and why (/readyz 503), leaves no
// half-written snapshot behind, and the other two go on taking writes.
// When the ballast goes, it is ready again and catches up.
func TestFollowerDiskFull(t *testing.T) {
	c := newProcCluster(t, testOrigin)
	n1 := c.bootstrap("node-1")
	waitReady(t, n1)
	c.join("node-2", n1)
	small := c.newNode("node-3")
	if err := os.MkdirAll(small.dataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", small.dataDir, "tmpfs", 0, "size=64m,mode=0700"); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v): run as root (CI does)", err)
	}
	t.Cleanup(func() { syscall.Unmount(small.dataDir, syscall.MNT_DETACH) })
	small.flags = []string{"--min-free-disk", "4"} // of 64 MiB
	small.startNew("--join", n1.url, "--join-token-file", c.operatorFile)
	c.waitVoters(3)

	l := startLoad(c.client(), 4, 5, 15*time.Second)
	defer l.stop()
	l.waitReceipts(t, "receipts before the disk fills", time.Time{}, 200)
	ballast := filepath.Join(small.dataDir, "ballast")
	if _, err := fillFS(ballast); err != nil {
		t.Fatal(err)
	}
	filledAt := time.Now()
	var reason string
	waitFor(t, readyTimeout, "the full follower to say it is not ready", func() error {
		err := small.ready()
		if err == nil {
			return fmt.Errorf("%s is still ready", small.id)
		}
		reason = err.Error()
		return nil
	})
	t.Logf("full disk: %s", reason)
	if !strings.Contains(reason, "503") || !(strings.Contains(reason, "free") || strings.Contains(reason, "no space")) {
		t.Errorf("not ready for another reason than its disk: %s", reason)
	}
	l.waitReceipts(t, "writes going on with a follower's disk full", filledAt, 500)
	if tmps, _ := filepath.Glob(filepath.Join(small.dataDir, "raft", "snapshots", "*.tmp")); len(tmps) > 0 {
		t.Errorf("half-written snapshots left behind: %v", tmps)
	}

	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	waitReady(t, small)
	l.stop()
	want := c.waitConverged()
	t.Logf("%s ready again after the ballast went; all at size %d", small.id, want.Size)
	audit(t, c, l, want)
}
