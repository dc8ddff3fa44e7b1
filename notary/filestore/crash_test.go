package filestore_test

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/telenotary/telenotary/notary"
	"github.com/telenotary/telenotary/notary/filestore"
)

// The environment of a TestCrashChild process.
const (
	crashDirEnv  = "FILESTORE_CRASH_DIR"  // the store's directory; its absence skips the test
	crashSyncEnv = "FILESTORE_CRASH_SYNC" // "1": Options.Sync
	crashRunEnv  = "FILESTORE_CRASH_RUN"  // which child this is: picks its leaves and batches
	crashBigEnv  = "FILESTORE_CRASH_BIG"  // the number of the batch to make big
)

// crashOpts has a tiny memtable: an index merge starts every 512 leaves and
// runs over the next 256 or so, so a kill often lands inside one.
func crashOpts(sync bool) filestore.Options {
	return filestore.Options{MemtableSize: 512, Sync: sync}
}

const (
	maxCrashBatch = 1200
	// bigCrashBatch is the big batch: its commit runs about 16 merges.
	bigCrashBatch = 16 * 512
)

// crashLeaf is leaf k of child run: fresh in every run, so leaves appended
// where a killed child's uncommitted ones were are different leaves. The
// parent's leaves of round run are crashLeaf(run, -1-k).
func crashLeaf(run, k int) notary.Leaf {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:], uint64(run))
	binary.BigEndian.PutUint64(b[8:], uint64(k))
	ts := baseTime + int64(run)*10 + 1
	if k < 0 {
		ts += 5
	}
	return notary.Leaf{Kind: notary.KindConsent, Commitment: notary.Commitment(sha256.Sum256(b[:])), Timestamp: ts}
}

// crashBatch returns the size of a child's next batch: mostly small,
// sometimes more than a memtable, so a merge starts and ends inside one
// commit.
func crashBatch(rng *rand.Rand) int {
	if rng.IntN(5) == 0 {
		return 400 + rng.IntN(maxCrashBatch-400+1)
	}
	return 1 + rng.IntN(100)
}

// TestCrashChild is the process TestKillDuringAppend kills: it appends
// batches of fresh leaves to the store in $FILESTORE_CRASH_DIR and prints
// "size N" after each Append returns, until it is killed or its stdin
// closes (the parent is gone). Batch number $FILESTORE_CRASH_BIG, if set,
// is a big one that runs many index merges inside one commit.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("run by TestKillDuringAppend only")
	}
	run, err := strconv.Atoi(os.Getenv(crashRunEnv))
	if err != nil {
		t.Fatal(err)
	}
	big := -1
	if v := os.Getenv(crashBigEnv); v != "" {
		if big, err = strconv.Atoi(v); err != nil {
			t.Fatal(err)
		}
	}
	go func() {
		io.Copy(io.Discard, os.Stdin)
		os.Exit(3) // the parent died without killing us
	}()
	s, err := filestore.Open(dir, crashOpts(os.Getenv(crashSyncEnv) == "1"))
	if err != nil {
		t.Fatal(err)
	}
	l, err := notary.Open(s)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(uint64(run), 7))
	leaves := make([]notary.Leaf, 0, bigCrashBatch)
	for i, k := 0, 0; k < 2_000_000; i++ {
		n := crashBatch(rng)
		if i == big {
			n = bigCrashBatch
		}
		leaves = leaves[:0]
		for range n {
			leaves = append(leaves, crashLeaf(run, k))
			k++
		}
		if _, err := l.Append(leaves, []byte(strconv.Itoa(k))); err != nil {
			t.Fatal(err)
		}
		fmt.Printf("size %d\n", l.Head().Size)
	}
	t.Fatal("not killed in time")
}

// TestKillDuringAppend kills a process appending to a store (SIGKILL) and
// checks, each time, that the reopened store holds every commit the child
// reported and is whole: its root matches, every leaf is found at its own
// index, and it takes more leaves, also after another reopen. The same
// store goes through every kill, and every child appends leaves of its
// own, so what a kill cut off is replaced by different leaves.
//
// Even rounds kill after a random number of batches. Odd rounds kill
// inside a big commit once two index merges have finished in it, so the
// newest index table covers leaves the head does not commit: as soon as
// the second merge has renamed its table (before the merge removes the old
// one), or once the merge after it is under way.
func TestKillDuringAppend(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	for _, sync := range []bool{false, true} {
		t.Run(map[bool]string{false: "nosync", true: "sync"}[sync], func(t *testing.T) {
			opts := crashOpts(sync)
			dir := t.TempDir()
			rng := rand.New(rand.NewPCG(20251121, map[bool]uint64{false: 1, true: 2}[sync]))
			var want []notary.Leaf // every leaf the store must hold
			const minRounds, minInMerge, minAhead, maxRounds = 8, 3, 2, 40
			inMerge, ahead := 0, 0
			for run := 0; run < minRounds || inMerge < minInMerge || ahead < minAhead; run++ {
				if run == maxRounds {
					t.Fatalf("after %d kills: %d inside an index merge, %d with the index ahead of the head", run, inMerge, ahead)
				}
				printed := killChild(t, dir, sync, run, 1+rng.IntN(20), [...]killMode{killAtOnce, killAfterRename, killAtOnce, killInNextMerge}[run%4])
				// A merge was under way if its new table is unfinished, or
				// finished with the old one still there.
				merging := len(tmpFiles(t, dir)) > 0 || len(tables(t, dir)) > 1
				covered, err := filestore.IndexCovered(dir)
				if err != nil {
					t.Fatal(err)
				}

				s := openStore(t, dir, opts)
				h := s.Head()
				if h.Size < printed || h.Size > printed+bigCrashBatch {
					s.Close()
					t.Fatalf("run %d: head size %d after the kill; the child had reported %d", run, h.Size, printed)
				}
				if merging {
					inMerge++
				}
				if covered > h.Size {
					ahead++
				}
				before := len(want)
				for k := 0; uint64(len(want)) < h.Size; k++ {
					want = append(want, crashLeaf(run, k))
				}
				// The child commits, as app state, how many leaves it has
				// appended.
				if got := string(h.AppState); got != strconv.Itoa(len(want)-before) {
					t.Fatalf("run %d: app state %q at size %d, want %d", run, got, h.Size, len(want)-before)
				}
				l := openLog(t, s) // checks the root
				checkLeaves(t, s, want)
				parent := make([]notary.Leaf, 3)
				for k := range parent {
					parent[k] = crashLeaf(run, -1-k)
				}
				want = appendAll(t, l, want, parent, len(parent))
				s, l = reopenWith(t, l, dir, opts)
				checkLeaves(t, s, want)
				if err := l.Close(); err != nil {
					t.Fatal(err)
				}
				t.Logf("run %d: killed at size %d (child reported %d); inside a merge: %v; index covered %d",
					run, h.Size, printed, merging, covered)
			}
		})
	}
}

// killMode says when killChild kills.
type killMode int

const (
	killAtOnce      killMode = iota // as soon as it has read its lines
	killAfterRename                 // in the big batch, once a second table has been renamed into place
	killInNextMerge                 // in the big batch, once a second table is in place and the next merge has started
)

// killChild starts TestCrashChild on dir, reads lines lines of its output
// and kills it with SIGKILL, when mode says. It returns the last size the
// child reported.
func killChild(t *testing.T, dir string, sync bool, run, lines int, mode killMode) uint64 {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashDirEnv+"="+dir, crashRunEnv+"="+strconv.Itoa(run), crashSyncEnv+"="+map[bool]string{false: "0", true: "1"}[sync])
	inBig := mode == killAfterRename || mode == killInNextMerge
	if inBig {
		cmd.Env = append(cmd.Env, crashBigEnv+"="+strconv.Itoa(lines))
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe() // held open: the child exits if it closes
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sizes := make(chan uint64, 64)
	var other bytes.Buffer // the rest of its output; read once sizes is closed
	go func() {
		defer close(sizes)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if rest, ok := strings.CutPrefix(sc.Text(), "size "); ok {
				if n, err := strconv.ParseUint(rest, 10, 64); err == nil {
					sizes <- n
					continue
				}
			}
			fmt.Fprintln(&other, sc.Text())
		}
	}()
	// ended waits for the child once its output is read, and returns that
	// output but for the sizes.
	ended := func() (string, error) {
		for range sizes {
		}
		err := cmd.Wait()
		return other.String() + stderr.String(), err
	}
	var last uint64
	for read := 0; read < lines; read++ {
		n, ok := <-sizes
		if !ok {
			out, err := ended()
			t.Fatalf("child ended (%v) after %d lines:\n%s", err, read, out)
		}
		last = n
	}
	if inBig {
		// Wait until two merges have finished within the big batch (and
		// the next has started), or until it is committed.
		gen := newestTableGen(t, dir)
	poll:
		for newestTableGen(t, dir) < gen+2 || (mode == killInNextMerge && len(tmpFiles(t, dir)) == 0) {
			select {
			case n, ok := <-sizes:
				if ok {
					last = n
				}
				break poll
			default:
			}
		}
	}
	killErr := cmd.Process.Kill()
	for n := range sizes { // what it printed before it died
		last = n
	}
	out, err := ended()
	if ee, ok := err.(*exec.ExitError); killErr != nil || !ok || ee.ExitCode() != -1 {
		t.Fatalf("child was not killed (kill: %v): %v\n%s", killErr, err, out)
	}
	return last
}

// tables lists the index tables of dir, finished or not.
func tables(t *testing.T, dir string) []string {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "index-*"))
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// newestTableGen returns the generation of the newest index table in dir.
func newestTableGen(t *testing.T, dir string) uint64 {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var newest uint64
	for _, e := range entries {
		if rest, ok := strings.CutPrefix(e.Name(), "index-"); ok {
			if gen, err := strconv.ParseUint(rest, 16, 64); err == nil {
				newest = max(newest, gen)
			}
		}
	}
	return newest
}

func reopenWith(t *testing.T, l *notary.Log, dir string, opts filestore.Options) (*filestore.Store, *notary.Log) {
	t.Helper()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	s := openStore(t, dir, opts)
	return s, openLog(t, s)
}
