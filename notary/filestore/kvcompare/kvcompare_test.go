package kvcompare_test

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	bolt "go.etcd.io/bbolt"

	"github.com/telenotary/telenotary/notary"
	"github.com/telenotary/telenotary/notary/filestore"
)

const (
	batchSize = 1000
	// baseTime is the timestamp of the first leaf, as in notary/filestore's tests.
	baseTime int64 = 1795262400000
)

// commitmentOf returns a distinct, random-looking commitment for each i:
// the same commitments notary/filestore's BenchmarkAppend appends.
func commitmentOf(i uint64) notary.Commitment {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], i)
	return notary.Commitment(sha256.Sum256(b[:]))
}

// An engine indexes batches of fresh commitments.
type engine interface {
	// add indexes keys[i] as leaf first+i, after looking each key up to
	// check it is not indexed yet, and commits the batch as one write.
	add(keys []notary.Commitment, first uint64) error
	close() error
}

var engines = []struct {
	name string
	open func(dir string) (engine, error)
}{
	{"filestore", func(dir string) (engine, error) { return openFilestore(dir, false) }},
	{"filestore-sync", func(dir string) (engine, error) { return openFilestore(dir, true) }},
	{"pebble", openPebble},
	{"bbolt", func(dir string) (engine, error) { return openBolt(dir, false) }},
	{"bbolt-sync", func(dir string) (engine, error) { return openBolt(dir, true) }},
}

// BenchmarkAppend appends batches of 1,000 fresh commitments (one op is one
// batch) into each engine, from empty: -benchtime 1000x grows each store to
// 1,000,000 leaves, 10000x to 10,000,000. It logs the rate of every million
// and reports the overall rate, the first and slowest million and the disk
// bytes per leaf. Generating the commitments is excluded from every rate.
func BenchmarkAppend(b *testing.B) {
	for _, e := range engines {
		b.Run(e.name, func(b *testing.B) { runAppend(b, e.open) })
	}
}

func runAppend(b *testing.B, open func(string) (engine, error)) {
	dir := b.TempDir()
	e, err := open(dir)
	if err != nil {
		b.Fatal(err)
	}
	defer e.close()
	keys := make([]notary.Commitment, batchSize)
	var elapsed, window time.Duration
	var rates, disk []string // per million
	var first, slowest float64
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		for j := range keys {
			keys[j] = commitmentOf(uint64(i*batchSize + j))
		}
		start := time.Now()
		b.StartTimer()
		if err := e.add(keys, uint64(i*batchSize)); err != nil {
			b.Fatal(err)
		}
		d := time.Since(start)
		elapsed += d
		window += d
		if n := (i + 1) * batchSize; n%1_000_000 == 0 {
			rate := 1e6 / window.Seconds()
			if first == 0 {
				first = rate
			}
			if slowest == 0 || rate < slowest {
				slowest = rate
			}
			rates = append(rates, fmt.Sprintf("%.0f", rate))
			disk = append(disk, fmt.Sprintf("%.0f", float64(dirBytes(b, dir))/float64(n)))
			window = 0
		}
	}
	b.StopTimer()
	// Few lines: the testing package keeps only the first 10 of a benchmark's log.
	if len(rates) > 0 {
		b.Logf("leaves/s in each million: %s", strings.Join(rates, " "))
		b.Logf("disk bytes/leaf after each million: %s", strings.Join(disk, " "))
	}
	if s, ok := e.(interface{ stats() string }); ok && b.N > 1 {
		b.Logf("%s", s.stats())
	}
	n := float64(b.N * batchSize)
	b.ReportMetric(n/elapsed.Seconds(), "leaves/s")
	if first > 0 {
		b.ReportMetric(first, "first-million-leaves/s")
		b.ReportMetric(slowest, "slowest-million-leaves/s")
	}
	b.ReportMetric(float64(dirBytes(b, dir))/n, "disk-B/leaf")
}

// dirBytes returns the size of the files under dir.
func dirBytes(t testing.TB, dir string) int64 {
	t.Helper()
	var total int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed by a compaction meanwhile
			}
			return err
		}
		if d.Type().IsRegular() {
			info, err := d.Info()
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			if err != nil {
				return err
			}
			total += info.Size()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return total
}

// filestoreEngine appends through notary.Log into a filestore.Store, as
// notary/filestore's BenchmarkAppend does: besides the index it writes the
// leaf records and the Merkle tree's hashes.
type filestoreEngine struct {
	log    *notary.Log
	leaves []notary.Leaf
}

func openFilestore(dir string, sync bool) (engine, error) {
	l, err := filestore.OpenLog(dir, filestore.Options{Sync: sync})
	if err != nil {
		return nil, err
	}
	return &filestoreEngine{log: l, leaves: make([]notary.Leaf, batchSize)}, nil
}

func (e *filestoreEngine) add(keys []notary.Commitment, first uint64) error {
	leaves := e.leaves[:len(keys)]
	for j, k := range keys {
		// The leaf of notary/filestore's leafOf.
		leaves[j] = notary.Leaf{Kind: notary.KindPrescription, Commitment: k, Timestamp: baseTime + int64((first+uint64(j))/100)}
	}
	idx, err := e.log.Append(leaves, nil)
	if err != nil {
		return err
	}
	for j, x := range idx {
		if x != first+uint64(j) {
			return fmt.Errorf("leaf %d got index %d: taken for a duplicate", first+uint64(j), x)
		}
	}
	return nil
}

func (e *filestoreEngine) close() error { return e.log.Close() }

// inBatch is the notary's check for a commitment repeated within a batch,
// made before the store is asked.
type inBatch map[notary.Commitment]struct{}

func (m inBatch) seen(k notary.Commitment) bool {
	if _, ok := m[k]; ok {
		return true
	}
	m[k] = struct{}{}
	return false
}

// pebbleEngine keeps only the commitment index, key → 8-byte big-endian
// leaf index, in pebble: a Get then a Set per leaf, one batch committed
// without sync per 1,000 leaves, Bloom filters on every level, a 32 MiB
// block cache and otherwise pebble's defaults.
type pebbleEngine struct {
	db *pebble.DB

	mu         sync.Mutex
	stalls     int
	stallStart time.Time
	stalled    time.Duration
}

func openPebble(dir string) (engine, error) {
	e := &pebbleEngine{}
	opts := &pebble.Options{
		CacheSize: 32 << 20,
		Logger:    quietLogger{},
		EventListener: &pebble.EventListener{
			WriteStallBegin: func(pebble.WriteStallBeginInfo) {
				e.mu.Lock()
				e.stalls++
				e.stallStart = time.Now()
				e.mu.Unlock()
			},
			WriteStallEnd: func() {
				e.mu.Lock()
				e.stalled += time.Since(e.stallStart)
				e.mu.Unlock()
			},
		},
	}
	for i := range opts.Levels {
		opts.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	db, err := pebble.Open(filepath.Join(dir, "pebble"), opts)
	if err != nil {
		return nil, err
	}
	e.db = db
	return e, nil
}

// stats tells how long writes waited for compactions and how many tables a
// Get may have to search.
func (e *pebbleEngine) stats() string {
	m := e.db.Metrics()
	e.mu.Lock()
	defer e.mu.Unlock()
	return fmt.Sprintf("pebble: %d write stalls, %.1f s stalled in all; %d flushes, %d compactions; read amplification %d at the end",
		e.stalls, e.stalled.Seconds(), m.Flush.Count, m.Compact.Count, m.ReadAmp())
}

func (e *pebbleEngine) add(keys []notary.Commitment, first uint64) error {
	b := e.db.NewBatch()
	defer b.Close()
	seen := make(inBatch, len(keys))
	var v [8]byte
	for j := range keys {
		k := keys[j][:]
		if seen.seen(keys[j]) {
			return fmt.Errorf("leaf %d: repeated in its batch", first+uint64(j))
		}
		_, closer, err := e.db.Get(k)
		if err == nil {
			closer.Close()
			return fmt.Errorf("leaf %d: already indexed", first+uint64(j))
		}
		if !errors.Is(err, pebble.ErrNotFound) {
			return err
		}
		binary.BigEndian.PutUint64(v[:], first+uint64(j))
		if err := b.Set(k, v[:], nil); err != nil { // Set copies k and v
			return err
		}
	}
	return b.Commit(pebble.NoSync)
}

func (e *pebbleEngine) close() error { return e.db.Close() }

// quietLogger drops pebble's notes ("Found 0 WALs") and keeps its errors.
type quietLogger struct{}

func (quietLogger) Infof(string, ...any)              {}
func (quietLogger) Errorf(format string, args ...any) { pebble.DefaultLogger.Errorf(format, args...) }
func (quietLogger) Fatalf(format string, args ...any) { pebble.DefaultLogger.Fatalf(format, args...) }

// boltEngine keeps only the commitment index in one bbolt bucket: a Get
// then a Put per leaf, one read-write transaction per 1,000 leaves, with or
// without bbolt's fdatasync at each commit, and otherwise bbolt's defaults.
type boltEngine struct {
	db *bolt.DB
}

var bucket = []byte("index")

func openBolt(dir string, sync bool) (engine, error) {
	db, err := bolt.Open(filepath.Join(dir, "bolt.db"), 0o600, &bolt.Options{Timeout: time.Second, NoSync: !sync})
	if err != nil {
		return nil, err
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucket)
		return err
	}); err != nil {
		db.Close()
		return nil, err
	}
	return &boltEngine{db: db}, nil
}

func (e *boltEngine) add(keys []notary.Commitment, first uint64) error {
	// bbolt keeps the key and value slices until the transaction ends.
	vals := make([]byte, 8*len(keys))
	return e.db.Update(func(tx *bolt.Tx) error {
		bk := tx.Bucket(bucket)
		seen := make(inBatch, len(keys))
		for j := range keys {
			if seen.seen(keys[j]) {
				return fmt.Errorf("leaf %d: repeated in its batch", first+uint64(j))
			}
			if bk.Get(keys[j][:]) != nil {
				return fmt.Errorf("leaf %d: already indexed", first+uint64(j))
			}
			v := vals[8*j : 8*j+8]
			binary.BigEndian.PutUint64(v, first+uint64(j))
			if err := bk.Put(keys[j][:], v); err != nil {
				return err
			}
		}
		return nil
	})
}

func (e *boltEngine) close() error { return e.db.Close() }
