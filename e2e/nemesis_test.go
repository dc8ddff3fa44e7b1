//go:build linux

package e2e

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// The kinds of fault the nemesis injects.
const (
	faultKillLeader     = "kill -9 leader"
	faultKillFollower   = "kill -9 follower"
	faultPauseLeader    = "SIGSTOP leader"
	faultPauseFollower  = "SIGSTOP follower"
	faultIsolateLeader  = "partition: leader alone"
	faultSplitMinority  = "partition: random minority"
	faultDiskFull       = "disk full"
	faultClockSkew      = "clock skew on the leader"
	faultLeaderFailover = "kill -9 leader during consultations"
)

// faultKinds are the kinds the nemesis draws from, with their weights.
var faultKinds = []struct {
	kind   string
	weight int
}{
	{faultKillLeader, 4}, {faultKillFollower, 2}, {faultPauseLeader, 2}, {faultPauseFollower, 1},
	{faultIsolateLeader, 2}, {faultSplitMinority, 2}, {faultDiskFull, 2}, {faultClockSkew, 1},
}

// fault is one fault injected, in history time.
type fault struct {
	kind    string
	targets []string
	at      time.Duration // when it began
	healed  time.Duration // when it was healed
	note    string
}

// nemesis injects faults into a campaign cluster, one at a time, each
// drawn from the seeded generator: the same seed gives the same sequence of
// kinds, targets (by role) and durations.
type nemesis struct {
	c      *campCluster
	h      *history
	rng    *rand.Rand
	faults []fault
}

func newNemesis(c *campCluster, h *history, seed uint64) *nemesis {
	return &nemesis{c: c, h: h, rng: rand.New(rand.NewPCG(seed, 0x6e656d65736973))}
}

// between returns a duration drawn uniformly from [lo, hi].
func (nm *nemesis) between(lo, hi time.Duration) time.Duration {
	return lo + time.Duration(nm.rng.Int64N(int64(hi-lo)+1))
}

// draw picks the next fault's kind.
func (nm *nemesis) draw() string {
	total := 0
	for _, k := range faultKinds {
		total += k.weight
	}
	x := nm.rng.IntN(total)
	for _, k := range faultKinds {
		if x < k.weight {
			return k.kind
		}
		x -= k.weight
	}
	panic("unreachable")
}

// run injects faults until the deadline, healing each and waiting for the
// cluster to be whole again before the next.
func (nm *nemesis) run(deadline time.Time) {
	t := nm.c.t
	t.Helper()
	for time.Now().Before(deadline) {
		kind := nm.draw()
		// The schedule's pauses: time for the load to run between faults.
		quiet := nm.between(500*time.Millisecond, 1500*time.Millisecond)
		f := nm.inject(kind)
		nm.faults = append(nm.faults, f)
		t.Logf("%v fault: %s on %v (%s), healed after %v", f.at.Round(time.Millisecond), f.kind, f.targets, f.note, (f.healed - f.at).Round(time.Millisecond))
		nm.c.waitWhole()
		time.Sleep(quiet)
	}
}

// inject runs one fault from start to heal.
func (nm *nemesis) inject(kind string) fault {
	c := nm.c
	leader := c.waitLeaderNode()
	follower := c.followers(leader)[nm.rng.IntN(len(c.nodes)-1)]
	f := fault{kind: kind}
	switch kind {
	case faultKillLeader, faultKillFollower:
		n := follower
		if kind == faultKillLeader {
			n = leader
		}
		hold := nm.between(500*time.Millisecond, 3*time.Second)
		f.targets, f.at = []string{n.id}, nm.h.now()
		n.kill()
		time.Sleep(hold) // the fault's duration
		f.healed = nm.h.now()
		c.restart(n)
		f.note = fmt.Sprintf("restarted after %v", hold.Round(time.Millisecond))
	case faultPauseLeader, faultPauseFollower:
		n := follower
		if kind == faultPauseLeader {
			n = leader
		}
		hold := nm.between(time.Second, 4*time.Second)
		f.targets, f.at = []string{n.id}, nm.h.now()
		n.cmd.Process.Signal(syscall.SIGSTOP)
		time.Sleep(hold)
		n.cmd.Process.Signal(syscall.SIGCONT)
		f.healed = nm.h.now()
		f.note = fmt.Sprintf("stopped for %v", hold.Round(time.Millisecond))
	case faultIsolateLeader, faultSplitMinority:
		ids := c.ids()
		minority := []string{leader.id}
		if kind == faultSplitMinority {
			nm.rng.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
			minority = slices.Clone(ids[:(len(ids)-1)/2])
		}
		majority := slices.DeleteFunc(c.ids(), func(id string) bool { return slices.Contains(minority, id) })
		hold := nm.between(2*time.Second, 5*time.Second)
		f.targets, f.at = minority, nm.h.now()
		c.net.partition(minority, majority)
		time.Sleep(hold)
		c.net.heal()
		f.healed = nm.h.now()
		f.note = fmt.Sprintf("%v cut off from %v for %v", minority, majority, hold.Round(time.Millisecond))
	case faultDiskFull:
		n := follower
		if nm.rng.IntN(2) == 0 {
			n = leader
		}
		hold := nm.between(2*time.Second, 5*time.Second)
		f.targets, f.at = []string{n.id}, nm.h.now()
		f.note = nm.fillDisk(n, hold)
		f.healed = nm.h.now()
	case faultClockSkew:
		f.targets = []string{follower.id}
		skew := nm.between(5*time.Second, 60*time.Second)
		if nm.rng.IntN(2) == 0 {
			skew = -skew
		}
		hold := nm.between(2*time.Second, 5*time.Second)
		f.at = nm.h.now()
		f.note = nm.skewLeader(follower, skew, hold)
		f.healed = nm.h.now()
	default:
		c.t.Fatalf("unknown fault %q", kind)
	}
	return f
}

// fillDisk fills the file system under n's data directory, holds it full,
// and frees it; a node that stopped meanwhile is restarted.
func (nm *nemesis) fillDisk(n *campNode, hold time.Duration) string {
	c := nm.c
	if n.mount == "" {
		time.Sleep(hold)
		return "skipped: " + c.diskNote
	}
	ballast := filepath.Join(n.mount, "ballast")
	filled, err := fillFS(ballast)
	if err != nil {
		c.t.Fatalf("fill %s: %v", n.mount, err)
	}
	time.Sleep(hold)
	if err := os.Remove(ballast); err != nil {
		c.t.Fatalf("free %s: %v", n.mount, err)
	}
	note := fmt.Sprintf("%d MiB ballast for %v", filled>>20, hold.Round(time.Millisecond))
	if !n.running() {
		note += fmt.Sprintf("; the node stopped (%v), restarted", n.waitErr)
		c.restart(n)
	}
	return note
}

// fillFS writes path until the file system is full and returns its size.
func fillFS(path string) (int64, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var st syscall.Statfs_t
	if err := syscall.Statfs(filepath.Dir(path), &st); err != nil {
		return 0, err
	}
	size := int64(st.Bavail) * st.Bsize
	if err := syscall.Fallocate(int(f.Fd()), 0, 0, size); err != nil && !errors.Is(err, syscall.ENOSPC) {
		return 0, err
	}
	// Top up whatever fallocate left, a page at a time.
	buf := make([]byte, 4096)
	off, _ := f.Seek(0, 2)
	for {
		if _, err := f.WriteAt(buf, off); err != nil {
			if errors.Is(err, syscall.ENOSPC) {
				return off, nil
			}
			return off, err
		}
		off += int64(len(buf))
	}
}

// skewLeader restarts the follower n with its clock off by skew, hands it
// leadership, holds, and restarts it with the true clock. A skew past the
// time guard's bound (1 s) must not stamp: the node refuses writes and
// hands leadership on; the checker finds any leaf stamped off the true
// time.
func (nm *nemesis) skewLeader(n *campNode, skew, hold time.Duration) string {
	c := nm.c
	n.stop()
	n.offset = skew
	c.restart(n)
	c.waitWhole()
	note := fmt.Sprintf("clock %+v", skew.Round(time.Second))
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	if err := c.operatorClient().Transfer(ctx, n.id); err != nil {
		note += fmt.Sprintf("; transfer: %v", err)
	}
	waitFor(c.t, readyTimeout, "a node with a true clock to lead", func() error {
		l, err := c.leader()
		if err != nil {
			return err
		}
		if l == n.nodeProc {
			return fmt.Errorf("%s, whose clock is off, leads and is ready", l.id)
		}
		return nil
	})
	note += ", handed on"
	time.Sleep(hold)
	n.stop()
	n.offset = 0
	c.restart(n)
	return note + fmt.Sprintf(" for %v", hold.Round(time.Millisecond))
}

// unavailability returns, for each fault of the kinds given, how long after
// it began the first request sent after it was acknowledged.
func unavailability(h *history, faults []fault, kinds ...string) []time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []time.Duration
	for _, f := range faults {
		if !slices.Contains(kinds, f.kind) {
			continue
		}
		first := time.Duration(-1)
		for _, op := range h.ops {
			if op.kind == opNotarize && op.ok && !op.retry && op.call >= f.at && (first < 0 || op.ret < first) {
				first = op.ret
			}
		}
		if first >= 0 {
			out = append(out, first-f.at)
		}
	}
	return out
}

// longestGap returns the longest time without an acknowledgement between
// the first and the last.
func longestGap(h *history) (gap, at time.Duration) {
	h.mu.Lock()
	var rets []time.Duration
	for _, op := range h.ops {
		if op.kind == opNotarize && op.ok {
			rets = append(rets, op.ret)
		}
	}
	h.mu.Unlock()
	slices.Sort(rets)
	for i := 1; i < len(rets); i++ {
		if d := rets[i] - rets[i-1]; d > gap {
			gap, at = d, rets[i-1]
		}
	}
	return gap, at
}

// faultCounts counts faults by kind, in a stable order.
func faultCounts(faults []fault) string {
	counts := map[string]int{}
	for _, f := range faults {
		counts[f.kind]++
	}
	var parts []string
	for _, k := range append([]string{faultLeaderFailover}, kindsOf()...) {
		if counts[k] > 0 {
			parts = append(parts, fmt.Sprintf("%s: %d", k, counts[k]))
		}
	}
	return strings.Join(parts, ", ")
}

func kindsOf() []string {
	var out []string
	for _, k := range faultKinds {
		out = append(out, k.kind)
	}
	return out
}

// leaderOf returns the node among nodes that leads, or nil.
func leaderOf(nodes []*campNode, l *nodeProc) *campNode {
	for _, n := range nodes {
		if n.nodeProc == l {
			return n
		}
	}
	return nil
}
