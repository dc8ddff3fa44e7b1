package e2e

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/telenotary/telenotary/cluster/notaryapi"
)

var joinLeaves = flag.Int("join.leaves", 30000, "leaves TestJoinGrownLog grows the log to before a fourth node joins (make bench-join: 10000000)")

// TestJoinGrownLog: a node that joins a cluster whose raft log was
// compacted by snapshots installs one: it fetches from its peers exactly
// the leaves of the snapshot (its fetch metric), the snapshot on the
// leader's disk is its head only (not the leaves), and the new node ends on
// the cluster's checkpoint, ready. With -join.leaves N (make bench-join) it
// reports how long growing and joining took, the disk and the nodes' RSS.
func TestJoinGrownLog(t *testing.T) {
	c := newProcCluster(t, testOrigin)
	// Snapshots often and few raft entries kept: a new node must install
	// a snapshot rather than replay raft's log.
	snapFlags := []string{"--snapshot-interval", "500ms", "--snapshot-threshold", "8", "--trailing-logs", "8"}
	start := func(id string, extra ...string) *nodeProc {
		n := c.newNode(id)
		n.flags = snapFlags
		n.startNew(extra...)
		return n
	}
	n1 := start("node-1", "--bootstrap", "--origin", c.origin)
	waitReady(t, n1)
	start("node-2", "--join", n1.url, "--join-token-file", c.operatorFile)
	start("node-3", "--join", n1.url, "--join-token-file", c.operatorFile)
	c.waitVoters(3)

	grown := time.Now()
	growLog(t, c, *joinLeaves)
	took := time.Since(grown)
	t.Logf("grew the log to %d leaves in %v (%.0f leaves/s)", *joinLeaves, took.Round(time.Millisecond), float64(*joinLeaves)/took.Seconds())

	// One at a time, each its own raft entry: enough entries after the
	// grown log for raft's next check to snapshot all of it.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for range 10 {
		if _, err := c.client().Notarize(ctx, freshEntry()); err != nil {
			t.Fatal(err)
		}
	}
	leader := c.waitLeader()
	var snap snapshotOnDisk
	waitFor(t, readyTimeout, "a raft snapshot on the leader of the whole grown log", func() error {
		var err error
		if snap, err = snapshotOnDiskOf(leader.dataDir); err != nil {
			return err
		}
		if snap.size < uint64(*joinLeaves) {
			return fmt.Errorf("the newest snapshot holds %d leaves", snap.size)
		}
		return nil
	})
	if snap.bytes > 4096 {
		t.Errorf("the leader's snapshot of %d leaves takes %d bytes on disk; a snapshot records the head, not the leaves", snap.size, snap.bytes)
	}
	t.Logf("leader's newest snapshot: %d leaves, %d bytes on disk (%s)", snap.size, snap.bytes, snap.dir)

	joined := time.Now()
	n4 := start("node-4", "--join", leader.url, "--join-token-file", c.operatorFile)
	// A new node fetches well over 50,000 leaves a second here.
	want := c.waitConvergedWithin(readyTimeout + time.Duration(*joinLeaves/50000)*time.Second) // node-4 among them
	waitReady(t, n4)
	t.Logf("node-4 joined a log of %d leaves and was ready, on the cluster's checkpoint, in %v", want.Size, time.Since(joined).Round(time.Millisecond))

	fetched, err := metricValue(n4, "telenotary_snapshot_leaves_fetched_total")
	if err != nil {
		t.Fatal(err)
	}
	if fetched == 0 || fetched > float64(want.Size) {
		t.Errorf("node-4 fetched %.0f leaves from its peers for a log of %d: it must install a snapshot and fetch no more than the log", fetched, want.Size)
	}
	// It fetched exactly the leaves of the snapshots it installed, each
	// once: a second install (the leader compacted past the first while
	// node-4 caught up) fetches only what the first lacked.
	installs := snapshotInstalls(t, n4)
	if len(installs) == 0 {
		t.Fatalf("node-4 logged no snapshot install")
	}
	var held uint64
	for _, in := range installs {
		if in.fetched != in.leaves-held {
			t.Errorf("node-4 fetched %d leaves to install a snapshot of %d while it held %d", in.fetched, in.leaves, held)
		}
		held = in.leaves
	}
	if uint64(fetched) != held {
		t.Errorf("node-4 fetched %.0f leaves in all to install snapshots up to %d leaves", fetched, held)
	}
	t.Logf("node-4 fetched %.0f leaves for the %d snapshot(s) it installed (%+v)", fetched, len(installs), installs)

	for _, n := range c.running() {
		if count, longest := snapshotTimes(t, n); count > 0 {
			t.Logf("%s: %d raft snapshots, the longest took %v", n.id, count, longest.Round(time.Millisecond))
		}
		rss, peak := rssOf(t, n)
		raftLog := dirSize(filepath.Join(n.dataDir, "raft", "log"))
		t.Logf("%s: RSS %d MiB (peak %d MiB), raft log %d MiB (allocated ahead), data directory %d MiB", n.id, rss>>20, peak>>20, raftLog>>20, dirSize(n.dataDir)>>20)
	}
}

// growLog notarizes batches of fresh entries through the cluster until its
// log holds at least leaves leaves.
func growLog(t *testing.T, c *procCluster, leaves int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	const batch, workers = 1000, 8
	var left atomic.Int64
	left.Store(int64(leaves))
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Go(func() {
			cl := c.client()
			entries := make([]notaryapi.Entry, 0, batch)
			for {
				n := min(int64(batch), left.Add(-batch)+batch)
				if n <= 0 {
					return
				}
				entries = entries[:0]
				for range n {
					entries = append(entries, freshEntry())
				}
				if _, err := cl.NotarizeBatch(ctx, entries); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("growing the log: %v", err)
	}
}

// snapshotOnDisk is a raft snapshot in a node's data directory.
type snapshotOnDisk struct {
	dir   string
	size  uint64 // leaves, from the snapshot's header
	bytes int64  // on disk, its files together
}

// snapshotOnDiskOf reads the header of the newest raft snapshot a node
// holds ("TNSNAP02" | header length | header JSON {size, ...} | digest).
func snapshotOnDiskOf(dataDir string) (snapshotOnDisk, error) {
	root := filepath.Join(dataDir, "raft", "snapshots")
	entries, err := os.ReadDir(root)
	if err != nil {
		return snapshotOnDisk{}, err
	}
	var chosen string
	var chosenIndex uint64
	for _, e := range entries {
		// raft names them term-index-milliseconds.
		parts := strings.Split(e.Name(), "-")
		if !e.IsDir() || len(parts) != 3 || strings.HasSuffix(e.Name(), ".tmp") {
			continue
		}
		if i, err := strconv.ParseUint(parts[1], 10, 64); err == nil && (chosen == "" || i > chosenIndex) {
			chosen, chosenIndex = e.Name(), i
		}
	}
	if chosen == "" {
		return snapshotOnDisk{}, errors.New("no snapshot yet")
	}
	dir := filepath.Join(root, chosen)
	state, err := os.ReadFile(filepath.Join(dir, "state.bin"))
	if err != nil {
		return snapshotOnDisk{}, err
	}
	const magic = "TNSNAP02"
	if len(state) < len(magic)+4 || !bytes.HasPrefix(state, []byte(magic)) {
		return snapshotOnDisk{}, fmt.Errorf("%s: not a %s snapshot", dir, magic)
	}
	n := binary.BigEndian.Uint32(state[len(magic):])
	if uint64(len(state)) < uint64(len(magic))+4+uint64(n) {
		return snapshotOnDisk{}, fmt.Errorf("%s: header cut short", dir)
	}
	var hdr struct {
		Size uint64 `json:"size"`
	}
	if err := json.Unmarshal(state[len(magic)+4:len(magic)+4+int(n)], &hdr); err != nil {
		return snapshotOnDisk{}, fmt.Errorf("%s: %w", dir, err)
	}
	return snapshotOnDisk{dir: chosen, size: hdr.Size, bytes: dirSize(dir)}, nil
}

// snapshotTimes reads from a node's logs how many snapshots raft took and
// the longest, from "starting snapshot up to" to "snapshot complete up to".
func snapshotTimes(t *testing.T, n *nodeProc) (count int, longest time.Duration) {
	stamp := regexp.MustCompile(`time=(\S+) .*msg="(starting snapshot up to|snapshot complete up to)"`)
	for _, path := range n.logs {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Logf("%s: %v", n.id, err)
			continue
		}
		var started time.Time
		for _, m := range stamp.FindAllSubmatch(b, -1) {
			at, err := time.Parse(time.RFC3339Nano, string(m[1]))
			if err != nil {
				continue
			}
			if string(m[2]) == "starting snapshot up to" {
				started = at
			} else if !started.IsZero() {
				count++
				longest = max(longest, at.Sub(started))
				started = time.Time{}
			}
		}
	}
	return count, longest
}

// metricValue reads one unlabelled metric from a node's /metrics.
func metricValue(n *nodeProc, name string) (float64, error) {
	b, err := httpGetBody(n.url + "/metrics")
	if err != nil {
		return 0, err
	}
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`).FindSubmatch(b)
	if m == nil {
		return 0, fmt.Errorf("%s: no metric %s", n.id, name)
	}
	return strconv.ParseFloat(string(m[1]), 64)
}

// rssOf returns a node process's resident memory and its peak, in bytes,
// from /proc (0, 0 where there is no /proc).
func rssOf(t *testing.T, n *nodeProc) (rss, peak uint64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", n.cmd.Process.Pid))
	if err != nil {
		t.Logf("%s: no memory figures: %v", n.id, err)
		return 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 10, 64)
		if err != nil {
			continue
		}
		switch name {
		case "VmRSS":
			rss = kb << 10
		case "VmHWM":
			peak = kb << 10
		}
	}
	return rss, peak
}

// dirSize is the size of the files under dir.
func dirSize(dir string) int64 {
	var total int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				total += fi.Size()
			}
		}
		return nil
	})
	return total
}

// snapshotInstall is one "installed a snapshot" line of a node's log.
type snapshotInstall struct{ leaves, fetched uint64 }

var installedLine = regexp.MustCompile(`msg="installed a snapshot" .*leaves=(\d+) fetched=(\d+)`)

// snapshotInstalls reads the snapshots the node installed from its logs,
// in order.
func snapshotInstalls(t *testing.T, n *nodeProc) []snapshotInstall {
	t.Helper()
	var out []snapshotInstall
	for _, path := range n.logs {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range installedLine.FindAllSubmatch(b, -1) {
			leaves, _ := strconv.ParseUint(string(m[1]), 10, 64)
			fetched, _ := strconv.ParseUint(string(m[2]), 10, 64)
			out = append(out, snapshotInstall{leaves, fetched})
		}
	}
	return out
}
