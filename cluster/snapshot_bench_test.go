package cluster

import (
	"bytes"
	"io"
	"os"
	"strconv"
	"testing"
)

// snapshotLeavesEnv sets the size of the log the snapshot benchmarks take
// and install snapshots of (default benchSnapshotLeaves).
const (
	snapshotLeavesEnv   = "TELENOTARY_SNAPSHOT_LEAVES"
	benchSnapshotLeaves = 1 << 20
)

func benchSnapshotSize(b *testing.B) int {
	b.Helper()
	v := os.Getenv(snapshotLeavesEnv)
	if v == "" {
		return benchSnapshotLeaves
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		b.Fatalf("%s=%q: want a number of leaves", snapshotLeavesEnv, v)
	}
	return n
}

// countingSink is a raft.SnapshotSink that counts what it is given.
type countingSink struct{ n int64 }

func (*countingSink) ID() string                    { return "bench" }
func (*countingSink) Cancel() error                 { return nil }
func (*countingSink) Close() error                  { return nil }
func (s *countingSink) Write(p []byte) (int, error) { s.n += int64(len(p)); return len(p), nil }

// BenchmarkSnapshot takes and persists a snapshot of a log of
// $TELENOTARY_SNAPSHOT_LEAVES leaves (2^20 by default): the time raft's
// snapshot costs the node, and the bytes it writes.
func BenchmarkSnapshot(b *testing.B) {
	size := benchSnapshotSize(b)
	f := testFSM(b, b.TempDir())
	grow(b, f, 1, size)
	var sink countingSink
	b.ResetTimer()
	for b.Loop() {
		snap, err := f.Snapshot()
		if err != nil {
			b.Fatal(err)
		}
		if err := snap.Persist(&sink); err != nil {
			b.Fatal(err)
		}
		snap.Release()
	}
	b.ReportMetric(float64(sink.n)/float64(b.N), "bytes/snapshot")
	b.ReportMetric(float64(size), "leaves")
}

// BenchmarkInstall installs a snapshot of $TELENOTARY_SNAPSHOT_LEAVES
// leaves into a new node, which fetches them all from an in-process peer
// (no HTTP): the install's own cost, in leaves a second.
func BenchmarkInstall(b *testing.B) {
	size := benchSnapshotSize(b)
	src := testFSM(b, b.TempDir())
	grow(b, src, 1, size)
	snap := snapshotOf(b, src)
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		f := testFSM(b, b.TempDir())
		p := &peer{src: src}
		f.peerLeaves = p.leaves
		b.StartTimer()
		if err := f.Restore(io.NopCloser(bytes.NewReader(snap))); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if h := f.log.Head(); h.Root != src.log.Head().Root || p.served.Load() != uint64(size) {
			b.Fatalf("installed %d leaves fetching %d", h.Size, p.served.Load())
		}
		f.close()
		b.StartTimer()
	}
	b.ReportMetric(float64(size)*float64(b.N)/b.Elapsed().Seconds(), "leaves/s")
}
