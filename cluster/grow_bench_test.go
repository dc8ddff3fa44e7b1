package cluster

import (
	crand "crypto/rand"
	"encoding/binary"
	"fmt"
	"io/fs"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/telenotary/telenotary/cluster/notaryapi"
	"github.com/telenotary/telenotary/notary"
)

// The size of the log BenchmarkGrow grows, the entries of each raft
// command, and the leaves between two lines of its table; make bench-100m
// sets them.
const (
	growLeavesEnv  = "TELENOTARY_GROW_LEAVES"
	growBatchEnv   = "TELENOTARY_GROW_BATCH"
	growWindowEnv  = "TELENOTARY_GROW_WINDOW"
	growSamplesEnv = "TELENOTARY_GROW_SAMPLES"
)

// growDiskPerLeaf is what BenchmarkGrow asks of the disk per leaf before
// it starts: the leaves (74 bytes), the stored hashes (about 64), and two
// index tables at once while one is merged into the next (about 43), with
// room to spare.
const growDiskPerLeaf = 250

// growDiskReserve is left free besides, for the machine's other users.
const growDiskReserve = 4 << 30

func growSetting(b *testing.B, env string, def int) int {
	b.Helper()
	v := os.Getenv(env)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(strings.ReplaceAll(v, "_", ""))
	if err != nil || n < 1 {
		b.Fatalf("%s=%q: want a positive number", env, v)
	}
	return n
}

// growCommitments fills cs with batch number i of a run's fresh random
// commitments: the same run key and i give the same commitments, so the
// benchmark can look up a logged one without keeping them all.
func growCommitments(key [32]byte, i uint64, cs []notary.Commitment) {
	binary.BigEndian.PutUint64(key[:8], i)
	rng := rand.NewChaCha8(key)
	for j := range cs {
		rng.Read(cs[j][:])
	}
}

// BenchmarkGrow grows one log through the cluster's state machine, as a
// node's raft applies the batcher's commands: ApplyBatch with one notarize
// command of $TELENOTARY_GROW_BATCH fresh random commitments (8192, the
// batcher's default) at a time, until the log holds
// $TELENOTARY_GROW_LEAVES leaves (100,000 by default, so that go test
// -bench . stays quick; make bench-100m asks for 100 million). Run it with
// -benchtime 1x: each run grows a new log.
//
// It logs a line every $TELENOTARY_GROW_WINDOW leaves (a million, or a
// tenth of the size if smaller) with the rate of that window, marking a
// window slower than half the first; then, at the full size, it times
// inclusion proofs and receipts of random leaves through the ledger the
// HTTP handlers use (proof read, checked against the signed root) and
// lookups of logged and absent commitments, $TELENOTARY_GROW_SAMPLES
// each (a tenth of the size, from 1,000 to 100,000 by default; mean, p50,
// p99 and max), and reports the disk bytes per leaf, the peak RSS
// and the time it all took. It refuses to start when the data directory's
// file system (TMPDIR) has too little room for the log.
func BenchmarkGrow(b *testing.B) {
	size := growSetting(b, growLeavesEnv, 100_000)
	batch := growSetting(b, growBatchEnv, 8192)
	window := growSetting(b, growWindowEnv, min(1_000_000, max(size/10, 1)))
	samples := growSetting(b, growSamplesEnv, min(100_000, max(size/10, 1000)))
	if batch > notary.MaxBatch {
		b.Fatalf("%s=%d: a notarize command of more than %d entries is more than the batcher makes", growBatchEnv, batch, notary.MaxBatch)
	}
	for range b.N {
		growOnce(b, size, batch, window, samples)
	}
}

func growOnce(b *testing.B, size, batch, window, samples int) {
	began := time.Now()
	dir := b.TempDir()
	need := uint64(size)*growDiskPerLeaf + growDiskReserve
	free, err := freeBytes(dir)
	if err != nil {
		b.Fatalf("cannot tell the free space for %d leaves in %s: %v", size, dir, err)
	}
	if free < need {
		b.Fatalf("%d leaves need about %.1f GB in %s (%d bytes a leaf and %.1f GB to spare), and its file system has %.1f GB free: "+
			"set %s lower (at most about %d here) or TMPDIR to a larger disk",
			size, float64(need)/1e9, dir, growDiskPerLeaf, float64(growDiskReserve)/1e9, float64(free)/1e9,
			growLeavesEnv, (free-min(free, growDiskReserve))/growDiskPerLeaf)
	}
	b.Logf("growing a log to %d leaves, %d entries a command, in %s (%.1f GB free)", size, batch, dir, float64(free)/1e9)

	f := testFSM(b, dir)
	f.ApplyBatch([]*raft.Log{{Index: 1, Type: raft.LogCommand, Data: encodeJSONCommand(cmdGenesis, genesis{ClusterID: "0123456789abcdef0123456789abcdef", Origin: "grow.test/log"})}})
	var key [32]byte
	if _, err := crand.Read(key[:]); err != nil {
		b.Fatal(err)
	}
	cs := make([]notary.Commitment, batch)
	entries := make([]notaryapi.Entry, batch)
	for i := range entries {
		entries[i].Kind = notary.KindDocument
	}
	ts := time.Now().UnixMilli()

	b.ResetTimer()
	var applying, windowApplying time.Duration
	windowStart, windowCPU, startCPU := time.Now(), cpuTime(), cpuTime()
	var first float64
	var slow, windows, reported int
	rates := make([]float64, 0, size/window+1)
	for grown, n := 0, uint64(0); grown < size; n++ {
		// Making the command is the leader's and the batcher's work, not
		// the state machine's: only ApplyBatch is timed.
		k := min(batch, size-grown)
		growCommitments(key, n, cs[:k])
		for j := range k {
			entries[j].Commitment = cs[j]
		}
		cmd := encodeNotarize(ts+int64(n), entries[:k])
		start := time.Now()
		res := f.ApplyBatch([]*raft.Log{{Index: n + 2, Type: raft.LogCommand, Data: cmd}})
		took := time.Since(start)
		applying += took
		windowApplying += took
		r := res[0].(*applyResult)
		if r.err != nil || r.refused != nil {
			b.Fatalf("apply of command %d: %v %v", n, r.err, r.refused)
		}
		if r.size != uint64(grown+k) {
			b.Fatalf("log of %d leaves after command %d, want %d (a random commitment repeated?)", r.size, n, grown+k)
		}
		before := grown
		grown += k
		if grown/window == before/window && grown != size {
			continue
		}
		leaves := grown - reported
		rate := float64(leaves) / windowApplying.Seconds()
		wall := float64(leaves) / time.Since(windowStart).Seconds()
		rates = append(rates, rate)
		mark := ""
		if windows == 0 {
			first = rate
		} else if rate < first/2 {
			mark, slow = "  << below half the first window", slow+1
		}
		windows++
		disk, _ := growDiskUsage(b, dir)
		cpu := cpuTime()
		b.Logf("%12d leaves  %9.0f leaves/s applying (%9.0f wall, %5.2f µs CPU a leaf)  %6.0f since start  RSS %5d MiB (peak %5d)  disk %.1f B/leaf%s",
			grown, rate, wall, float64((cpu-windowCPU).Nanoseconds())/1e3/float64(leaves), float64(grown)/applying.Seconds(),
			procStatusKB("VmRSS")>>10, procStatusKB("VmHWM")>>10, float64(disk)/float64(grown), mark)
		windowApplying, windowStart, windowCPU, reported = 0, time.Now(), cpu, grown
	}
	b.StopTimer()
	grownIn, grownCPU := time.Since(began), cpuTime()-startCPU

	// At the full size, as the HTTP handlers read it.
	l := ledger{fsm: f}
	cp := f.Checkpoint()
	if cp == nil || cp.Size != uint64(size) {
		b.Fatalf("checkpoint %v, want one of size %d", cp, size)
	}
	rng := rand.New(rand.NewPCG(uint64(size), uint64(batch)))
	proofs := growTime(samples, func(int) error {
		_, _, err := l.InclusionProof(rng.Uint64N(cp.Size), cp.Size)
		return err
	})
	bare := growTime(samples, func(int) error {
		return f.ReadLog(func(log *notary.Log) error {
			_, err := log.InclusionProof(rng.Uint64N(cp.Size), cp.Size)
			return err
		})
	})
	// Logged commitments: random leaves, each command's commitments
	// regenerated once for the samples that fall in it, then shuffled.
	picks := make([]uint64, samples)
	for i := range picks {
		picks[i] = rng.Uint64N(cp.Size)
	}
	slices.Sort(picks)
	logged := make([]notary.Commitment, 0, samples)
	for done := -1; len(logged) < samples; {
		i := picks[len(logged)]
		if n := int(i) / batch; n != done {
			growCommitments(key, uint64(n), cs[:min(batch, size-n*batch)])
			done = n
		}
		logged = append(logged, cs[int(i)%batch])
	}
	rng.Shuffle(len(logged), func(i, j int) { logged[i], logged[j] = logged[j], logged[i] })
	receipts := growTime(samples, func(i int) error {
		r, err := l.Receipt(logged[i])
		if err == nil && r == nil {
			err = fmt.Errorf("no receipt for logged commitment %x", logged[i])
		}
		return err
	})
	finds := growTime(samples, func(i int) error {
		return f.ReadLog(func(log *notary.Log) error {
			_, found, err := log.Find(logged[i])
			if err == nil && !found {
				err = fmt.Errorf("logged commitment %x not found", logged[i])
			}
			return err
		})
	})
	absent := make([]notary.Commitment, samples)
	for i := range absent {
		crand.Read(absent[i][:])
	}
	misses := growTime(samples, func(i int) error {
		r, err := l.Receipt(absent[i])
		if err == nil && r != nil {
			err = fmt.Errorf("a receipt for random commitment %x", absent[i])
		}
		return err
	})
	for _, s := range []struct {
		what string
		t    growTimes
	}{
		{"inclusion proof, checked (ledger.InclusionProof, as GET /v1/proof)", proofs},
		{"inclusion proof, bare (notary.Log.InclusionProof)", bare},
		{"receipt of a logged commitment (ledger.Receipt: find, proof, check)", receipts},
		{"find a logged commitment (notary.Log.Find)", finds},
		{"receipt of an absent commitment (ledger.Receipt)", misses},
	} {
		if s.t.err != nil {
			b.Fatalf("%s: %v", s.what, s.t.err)
		}
		b.Logf("at %d leaves, %d samples: %-70s mean %6.2f µs  p50 %6.2f  p99 %6.2f  max %7.1f",
			size, samples, s.what, s.t.mean, s.t.p50, s.t.p99, s.t.max)
	}

	disk, files := growDiskUsage(b, dir)
	var parts []string
	for _, name := range slices.Sorted(maps.Keys(files)) {
		if files[name] >= 1<<20 {
			parts = append(parts, fmt.Sprintf("%s %.1f", name, float64(files[name])/float64(size)))
		}
	}
	b.Logf("disk %.2f GB, %.1f B/leaf (%s); peak RSS %d MiB; grown in %s (%s applying, %s of CPU), all in %s; %d of %d windows below half the first",
		float64(disk)/1e9, float64(disk)/float64(size), strings.Join(parts, ", "), procStatusKB("VmHWM")>>10,
		grownIn.Round(time.Second), applying.Round(time.Second), grownCPU.Round(time.Second), time.Since(began).Round(time.Second), slow, windows)

	b.ReportMetric(float64(size)/applying.Seconds(), "leaves/s")
	b.ReportMetric(first, "first-window-leaves/s")
	b.ReportMetric(rates[len(rates)-1], "last-window-leaves/s")
	b.ReportMetric(slices.Min(rates), "slowest-window-leaves/s")
	b.ReportMetric(float64(slow), "windows-below-half-first")
	b.ReportMetric(float64(grownCPU.Nanoseconds())/1e3/float64(size), "CPU-µs/leaf")
	b.ReportMetric(proofs.mean, "proof-µs")
	b.ReportMetric(proofs.p99, "proof-p99-µs")
	b.ReportMetric(receipts.mean, "receipt-µs")
	b.ReportMetric(finds.mean, "find-µs")
	b.ReportMetric(misses.mean, "absent-µs")
	b.ReportMetric(float64(disk)/float64(size), "disk-B/leaf")
	b.ReportMetric(float64(procStatusKB("VmHWM")>>10), "peak-RSS-MiB")
	b.ReportMetric(time.Since(began).Seconds(), "total-s")
}

// growTimes summarizes the times of one kind of read, in µs.
type growTimes struct {
	mean, p50, p99, max float64
	err                 error
}

// growTime times n calls of fn, one at a time.
func growTime(n int, fn func(i int) error) growTimes {
	ts := make([]float64, n)
	var sum float64
	for i := range ts {
		start := time.Now()
		if err := fn(i); err != nil {
			return growTimes{err: fmt.Errorf("sample %d: %w", i, err)}
		}
		ts[i] = float64(time.Since(start).Nanoseconds()) / 1e3
		sum += ts[i]
	}
	slices.Sort(ts)
	return growTimes{mean: sum / float64(n), p50: ts[n/2], p99: ts[n*99/100], max: ts[n-1]}
}

// growDiskUsage returns the bytes of the files under dir, in all and by
// file name (the index tables counted under "index").
func growDiskUsage(b *testing.B, dir string) (int64, map[string]int64) {
	b.Helper()
	var total int64
	files := map[string]int64{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		name := d.Name()
		if strings.HasPrefix(name, "index-") {
			name = "index"
		}
		total += info.Size()
		files[name] += info.Size()
		return nil
	})
	if err != nil {
		b.Fatalf("disk usage of %s: %v", dir, err)
	}
	return total, files
}

// procStatusKB returns a field of /proc/self/status in kB (VmHWM: the
// peak resident set), or 0 where there is none.
func procStatusKB(field string) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb
		}
	}
	return 0
}
