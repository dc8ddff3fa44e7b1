package e2e

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// -console-bench measures the console's CPU and memory while it watches a
// cluster under `telenotary bench notarize` load (docs/BENCHMARKS.md).
var consoleBench = flag.Bool("console-bench", false, "measure the console's CPU and RSS under load (about a minute)")

// tmuxConsole is `telenotary console` running in a detached tmux session
// on a tmux server of its own.
type tmuxConsole struct {
	t      *testing.T
	socket string
}

// startConsole runs the console in tmux at w×h against the cluster's
// nodes, with the operator token, asking each node for its status every
// poll; it skips the test when tmux is missing.
func startConsole(t *testing.T, c *procCluster, w, h int, poll time.Duration) *tmuxConsole {
	t.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Skip("SKIPPED: tmux is not installed, so the console cannot be tested in a terminal; install it (apt-get install -y tmux) and add tmux to .ci/run's apt-get line")
	}
	var urls []string
	for _, n := range c.nodes {
		urls = append(urls, n.url)
	}
	tc := &tmuxConsole{t: t, socket: "telenotary-e2e-" + randomToken("console")[8:20]}
	cmd := fmt.Sprintf("exec %s console --nodes %s --token-file %s --poll %s 2>%s",
		telenotaryBin, strings.Join(urls, ","), c.operatorFile, poll, filepath.Join(c.dir, "console.stderr"))
	tc.tmux("new-session", "-d", "-s", "console", "-x", strconv.Itoa(w), "-y", strconv.Itoa(h), cmd)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("last screen:\n%s", tc.screen())
			if b, err := os.ReadFile(filepath.Join(c.dir, "console.stderr")); err == nil && len(b) > 0 {
				t.Logf("console stderr:\n%s", b)
			}
		}
		exec.Command("tmux", "-L", tc.socket, "kill-server").Run()
	})
	return tc
}

func (tc *tmuxConsole) tmux(args ...string) string {
	tc.t.Helper()
	out, err := exec.Command("tmux", append([]string{"-L", tc.socket}, args...)...).CombinedOutput()
	if err != nil {
		tc.t.Fatalf("tmux %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// screen is what the terminal shows now.
func (tc *tmuxConsole) screen() string {
	out, err := exec.Command("tmux", "-L", tc.socket, "capture-pane", "-p", "-t", "console").CombinedOutput()
	if err != nil {
		return fmt.Sprintf("(capture-pane: %v: %s)", err, out)
	}
	return string(out)
}

// waitScreen waits until the screen shows every string at once.
func (tc *tmuxConsole) waitScreen(what string, want ...string) string {
	tc.t.Helper()
	var s string
	waitFor(tc.t, readyTimeout, what, func() error {
		s = tc.screen()
		for _, w := range want {
			if !strings.Contains(s, w) {
				return fmt.Errorf("the screen lacks %q", w)
			}
		}
		return nil
	})
	tc.t.Logf("on screen: %s", what)
	return s
}

func (tc *tmuxConsole) keys(keys ...string) {
	tc.t.Helper()
	tc.tmux(append([]string{"send-keys", "-t", "console"}, keys...)...)
}

// pid is the console's process id (tmux runs it with exec).
func (tc *tmuxConsole) pid() int {
	tc.t.Helper()
	pid, err := strconv.Atoi(strings.TrimSpace(tc.tmux("display-message", "-p", "-t", "console", "#{pane_pid}")))
	if err != nil {
		tc.t.Fatal(err)
	}
	return pid
}

// TestConsoleLeaderKilled runs the console in a terminal against a 3-node
// cluster of processes under load, kills the leader with SIGKILL and reads
// the screen until it shows the new leader, the dead node and the alert.
func TestConsoleLeaderKilled(t *testing.T) {
	c := startCluster(t)
	l := startLoad(c.client(), 4, 20, 15*time.Second)
	defer l.stop()
	tc := startConsole(t, c, 100, 30, 250*time.Millisecond)
	leader := c.waitLeader()
	// With the operator token, a node shows the console its peers.
	tc.waitScreen("the leader, all nodes up, the voters", "leader "+leader.id, "3/3 nodes up", "voters (as the leader sees them): ")
	l.waitReceipts(t, "receipts before the kill", time.Time{}, 200)
	waitFor(t, readyTimeout, "receipts/s on screen", func() error {
		if s := tc.screen(); strings.Contains(s, " 0 receipts/s") {
			return fmt.Errorf("the title says 0 receipts/s")
		}
		return nil
	})

	leader.kill()
	t.Logf("killed the leader %s", leader.id)
	newLeader := c.waitLeader()
	tc.waitScreen("the new leader and the dead node",
		"leader "+newLeader.id, "2/3 nodes up", "UNREACHABLE")
	tc.keys("5")
	tc.waitScreen("the alerts", "leader changed: "+leader.id+" -> "+newLeader.id, leader.id+" unreachable")

	// q quits and gives the terminal back.
	tc.keys("q")
	waitFor(t, stopTimeout, "the console to exit on q", func() error {
		if err := exec.Command("tmux", "-L", tc.socket, "has-session", "-t", "console").Run(); err == nil {
			return fmt.Errorf("the console still runs")
		}
		return nil
	})
}

// TestConsoleResources (with -console-bench) loads a 3-node cluster with
// `telenotary bench notarize --batch 100 --rate 200` (20,000 receipts/s
// offered) and measures the console's CPU time and resident memory from
// /proc while it shows the live feed.
func TestConsoleResources(t *testing.T) {
	if !*consoleBench {
		t.Skip("a measurement: run with -console-bench")
	}
	c := startCluster(t)
	tokenFile := filepath.Join(c.dir, "submitter-token")
	writeFile(t, tokenFile, c.submitter+"\n", 0o600)
	var urls []string
	for _, n := range c.nodes {
		urls = append(urls, n.url)
	}
	const warmup, window = 10 * time.Second, 30 * time.Second
	bench := exec.Command(telenotaryBin, "bench", "notarize", "--nodes", strings.Join(urls, ","), "--token-file", tokenFile,
		"--batch", "100", "--rate", "200", "--clients", "16", "--duration", (warmup + window + 5*time.Second).String())
	var benchOut bytes.Buffer
	bench.Stdout, bench.Stderr = &benchOut, &benchOut
	killWithParent(bench)
	if err := bench.Start(); err != nil {
		t.Fatal(err)
	}
	defer bench.Process.Kill()
	tc := startConsole(t, c, 160, 48, time.Second) // the default poll
	tc.waitScreen("the console up", "3/3 nodes up")
	// The Feed tab redraws at every event: the busiest view to watch.
	tc.keys("3")
	tc.waitScreen("the live feed", "LIVE", "prescription")
	pid := tc.pid()
	time.Sleep(warmup) // a measurement: let the load and the console settle
	cpu0, at0 := cpuTicks(t, pid), time.Now()
	time.Sleep(window)
	cpu1, at1 := cpuTicks(t, pid), time.Now()
	rss, hwm := rssKiB(t, pid)
	screen := tc.screen()
	if err := bench.Wait(); err != nil {
		t.Logf("bench: %v", err)
	}
	const ticksPerSec = 100 // USER_HZ on Linux
	share := float64(cpu1-cpu0) / ticksPerSec / at1.Sub(at0).Seconds()
	t.Logf("console over %v: %.2f%% of one core, RSS %d KiB (peak %d KiB)", at1.Sub(at0).Round(time.Second), 100*share, rss, hwm)
	t.Logf("bench:\n%s", benchOut.String())
	t.Logf("screen:\n%s", screen)
	if share > 0.05 || hwm > 50<<10 {
		t.Errorf("the console used %.2f%% of a core and %d KiB peak RSS; the budget is 5%% and 50 MiB", 100*share, hwm)
	}
}

// cpuTicks is the user and system CPU time of a process, in clock ticks.
func cpuTicks(t *testing.T, pid int) uint64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// Fields after the command name, which is in parentheses.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	utime, _ := strconv.ParseUint(f[11], 10, 64)
	stime, _ := strconv.ParseUint(f[12], 10, 64)
	return utime + stime
}

// rssKiB is a process's resident memory now and at its peak.
func rssKiB(t *testing.T, pid int) (rss, hwm int) {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(line, ":")
		n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
		switch k {
		case "VmRSS":
			rss = n
		case "VmHWM":
			hwm = n
		}
	}
	return rss, hwm
}
