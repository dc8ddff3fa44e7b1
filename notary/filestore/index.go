package filestore

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/dchest/siphash"
	"github.com/telenotary/telenotary/notary"
)

// The commitment index maps a commitment's SipHash key to the leaf index
// (keys are keyed by a per-store secret, so no submitter can aim many
// commitments at one spot). It is a small log-structured merge tree:
//
//   - the active memtable takes every new entry, in memory;
//   - when it holds limit entries it is frozen, and a merge starts that
//     streams the frozen entries and the durable table, both in key order,
//     into a new table, a little more on every commit, so no commit stalls
//     on a whole rewrite;
//   - the finished table replaces the old one.
//
// Lookups check the memtables (maps) and read one window of the table, so a
// lookup costs at most one read, and memory is bounded by the memtables.
// Only whole tables are ever on disk (written, synced, then renamed into
// place); the memtables are rebuilt on open from the leaves the table does
// not cover. Entries are candidates: the store confirms each against the
// leaf it names.

// memtable holds the keys of a run of consecutive leaves in memory: keys[i]
// is the key of leaf from+i, found through an open-addressing table of
// positions. Its arrays are allocated once and reused after every merge.
type memtable struct {
	from  uint64
	keys  []uint64
	slots []uint32 // position+1 in keys, 0 when empty; a power of two, at least twice the limit
}

func newMemtable(limit int) *memtable {
	n := 1
	for n < 2*limit {
		n *= 2
	}
	return &memtable{keys: make([]uint64, 0, limit), slots: make([]uint32, n)}
}

// reset empties the memtable to collect leaves from from on.
func (m *memtable) reset(from uint64) {
	m.from, m.keys = from, m.keys[:0]
	clear(m.slots)
}

func (m *memtable) len() int { return len(m.keys) }

// insert adds the key of the next leaf, from+len().
func (m *memtable) insert(key uint64) {
	m.keys = append(m.keys, key)
	mask := uint64(len(m.slots) - 1)
	i := key & mask
	for m.slots[i] != 0 {
		i = (i + 1) & mask
	}
	m.slots[i] = uint32(len(m.keys))
}

func (m *memtable) lookup(key uint64, fn func(uint64)) {
	mask := uint64(len(m.slots) - 1)
	for i := key & mask; m.slots[i] != 0; i = (i + 1) & mask {
		if p := m.slots[i] - 1; m.keys[p] == key {
			fn(m.from + uint64(p))
		}
	}
}

// sortedRun is a frozen memtable: its entries in key order, with the start
// of each range of keys sharing their top bucketBits bits, so a lookup
// scans a handful of entries.
type sortedRun struct {
	entries []entry
	starts  []uint32 // entries[starts[b]:starts[b+1]] have top bits b
}

const bucketBits = 16

func newSortedRun(limit int) *sortedRun {
	return &sortedRun{entries: make([]entry, 0, limit), starts: make([]uint32, 1<<bucketBits+1)}
}

// fill sorts the memtable's entries into the run: a counting sort on the
// top bits (keys are uniform, so each bucket holds a few entries), then an
// insertion sort within each bucket.
func (r *sortedRun) fill(m *memtable) {
	clear(r.starts)
	for _, k := range m.keys {
		r.starts[k>>(64-bucketBits)+1]++
	}
	for b := 1; b < len(r.starts); b++ {
		r.starts[b] += r.starts[b-1]
	}
	r.entries = r.entries[:len(m.keys)]
	fill := make([]uint32, len(r.starts)-1) // next free position per bucket
	copy(fill, r.starts)
	for p, k := range m.keys {
		b := k >> (64 - bucketBits)
		r.entries[fill[b]] = entry{key: k, index: m.from + uint64(p)}
		fill[b]++
	}
	for b := range len(r.starts) - 1 {
		bucket := r.entries[r.starts[b]:r.starts[b+1]]
		for i := 1; i < len(bucket); i++ {
			for j := i; j > 0 && compareEntries(bucket[j], bucket[j-1]) < 0; j-- {
				bucket[j], bucket[j-1] = bucket[j-1], bucket[j]
			}
		}
	}
}

func (r *sortedRun) lookup(key uint64, fn func(uint64)) {
	b := key >> (64 - bucketBits)
	for _, e := range r.entries[r.starts[b]:r.starts[b+1]] {
		if e.key == key {
			fn(e.index)
		}
	}
}

// merger streams a frozen memtable and the old table into a new table.
type merger struct {
	frozen    []entry // entries of the frozen run not yet merged
	src       *tableReader
	srcHead   entry
	srcOK     bool
	out       *tableWriter
	remaining uint64 // input entries not yet consumed
	perInsert uint64 // entries to merge per entry inserted meanwhile
	dropFrom  uint64 // entries of leaves at or above this are dropped
}

type index struct {
	dir    string
	k0, k1 uint64
	keyTag uint64
	limit  int // memtable entries that start a merge

	active *memtable
	frozen *sortedRun // being merged while merge is not nil
	table  *table     // the durable table; nil when there is none
	merge  *merger
	// filter holds the keys of the table and of every entry inserted
	// since it was opened, so a key it has never seen needs no table read.
	filter *filter
}

func tablePath(dir string, gen uint64) string {
	return filepath.Join(dir, fmt.Sprintf("index-%016x", gen))
}

// openIndex opens the newest complete table in dir, removing every other
// table file; a table that cannot be used is dropped, and the index is
// rebuilt from the leaves by the caller's replay.
func openIndex(dir string, key [16]byte, limit int) (*index, []string, error) {
	ix := &index{dir: dir, limit: limit}
	ix.k0, ix.k1 = binary.LittleEndian.Uint64(key[:8]), binary.LittleEndian.Uint64(key[8:])
	ix.keyTag = siphash.Hash(ix.k0, ix.k1, []byte("telenotary index key check"))
	names, err := filepath.Glob(filepath.Join(dir, "index-*"))
	if err != nil {
		return nil, nil, err
	}
	var notes []string
	var gens []uint64
	for _, n := range names {
		gen, err := strconv.ParseUint(strings.TrimPrefix(filepath.Base(n), "index-"), 16, 64)
		if err != nil { // a .tmp of an unfinished merge, or junk
			if err := os.Remove(n); err != nil {
				return nil, nil, err
			}
			continue
		}
		gens = append(gens, gen)
	}
	slices.Sort(gens)
	for i := len(gens) - 1; i >= 0; i-- {
		path := tablePath(dir, gens[i])
		if ix.table == nil {
			t, err := openTable(path)
			if err == nil && t.keyTag != ix.keyTag {
				t.close()
				err = fmt.Errorf("%s: made with another store's key", path)
			}
			if err == nil {
				ix.table = t
				continue
			}
			notes = append(notes, fmt.Sprintf("dropped index table: %v", err))
		}
		if err := os.Remove(path); err != nil {
			return nil, nil, err
		}
	}
	ix.active, ix.frozen = newMemtable(limit), newSortedRun(limit)
	ix.active.reset(ix.covered())
	ix.filter = newFilter()
	if ix.table != nil {
		r := ix.table.reader()
		for {
			e, ok, err := r.next()
			if err != nil {
				return nil, nil, err
			}
			if !ok {
				break
			}
			ix.filter.add(e.key)
		}
	}
	return ix, notes, nil
}

// covered returns the number of leaves whose entries the table holds.
func (ix *index) covered() uint64 {
	if ix.table == nil {
		return 0
	}
	return ix.table.covered
}

func (ix *index) key(c notary.Commitment) uint64 { return siphash.Hash(ix.k0, ix.k1, c[:]) }

// candidates calls fn with every leaf index the index holds for c.
func (ix *index) candidates(c notary.Commitment, fn func(uint64)) error {
	k := ix.key(c)
	ix.active.lookup(k, fn)
	if ix.merge != nil {
		ix.frozen.lookup(k, fn)
	}
	if ix.table != nil && ix.filter.mayContain(k) {
		return ix.table.lookup(k, fn)
	}
	return nil
}

// insert adds the entry for leaf index; size is the log size once the
// current commit lands. It may start a merge, or finish one that is late.
func (ix *index) insert(c notary.Commitment, index uint64, size uint64) error {
	if want := ix.active.from + uint64(ix.active.len()); index != want {
		return fmt.Errorf("filestore: index entry for leaf %d, expected leaf %d", index, want)
	}
	k := ix.key(c)
	ix.active.insert(k)
	ix.filter.add(k)
	if ix.active.len() < ix.limit {
		return nil
	}
	if ix.merge != nil {
		if err := ix.step(ix.merge.remaining); err != nil {
			return err
		}
	}
	return ix.startMerge(index+1, size)
}

// startMerge freezes the active memtable, which covers leaves below next.
func (ix *index) startMerge(next, size uint64) error {
	var gen uint64 = 1
	var srcCount uint64
	if ix.table != nil {
		gen, srcCount = ix.table.gen+1, ix.table.count
	}
	ix.frozen.fill(ix.active)
	frozen := ix.frozen.entries
	total := srcCount + uint64(len(frozen))
	out, err := createTable(ix.dir, gen, next, total, ix.keyTag)
	if err != nil {
		return fmt.Errorf("start index merge: %w", err)
	}
	m := &merger{
		frozen:    frozen,
		out:       out,
		remaining: total,
		// Finish within half a memtable of inserts, before the next freeze.
		perInsert: total/uint64(max(ix.limit/2, 1)) + 1,
		dropFrom:  size,
	}
	if ix.table != nil {
		m.src = ix.table.reader()
		if m.srcHead, m.srcOK, err = m.src.next(); err != nil {
			out.abort()
			return err
		}
	}
	ix.merge = m
	ix.active.reset(next)
	return nil
}

// advance does the merge work owed for inserted new entries.
func (ix *index) advance(inserted int) error {
	if ix.merge == nil {
		return nil
	}
	return ix.step(uint64(inserted) * ix.merge.perInsert)
}

// step consumes up to n input entries of the merge and finishes it when
// none are left.
func (ix *index) step(n uint64) error {
	m := ix.merge
	for ; n > 0 && m.remaining > 0; n-- {
		var e entry
		if m.srcOK && (len(m.frozen) == 0 || compareEntries(m.srcHead, m.frozen[0]) <= 0) {
			e = m.srcHead
			var err error
			if m.srcHead, m.srcOK, err = m.src.next(); err != nil {
				return err
			}
		} else if len(m.frozen) > 0 {
			e, m.frozen = m.frozen[0], m.frozen[1:]
		} else {
			return fmt.Errorf("%w: index table holds fewer entries than its header says", notary.ErrCorrupt)
		}
		m.remaining--
		// Leaves at or above dropFrom were rolled back with an unsynced
		// tail; a replayed leaf may appear in both inputs.
		if e.index >= m.dropFrom || (m.out.any && e == m.out.last) {
			continue
		}
		m.out.add(e)
		// One step can take many entries (perInsert grows with the
		// table): write them as they come, so the buffer stays bounded.
		if err := m.out.flushIfFull(); err != nil {
			return err
		}
	}
	if m.remaining > 0 {
		return nil
	}
	t, err := m.out.finish()
	if err != nil {
		return fmt.Errorf("finish index merge: %w", err)
	}
	if ix.table != nil {
		ix.table.close()
		if err := os.Remove(ix.table.path); err != nil {
			return err
		}
	}
	ix.table, ix.merge = t, nil
	return nil
}

// trim rewrites a table that covers leaves at or above size, which a
// recovery discarded, into one that covers exactly the leaves below size:
// the leaves appended from size on are indexed by the memtable, and a
// table claiming them would hide them from the replay of every later open.
func (ix *index) trim(size uint64) error {
	if ix.covered() <= size {
		return nil
	}
	ix.active.reset(size)
	if err := ix.startMerge(size, size); err != nil {
		return err
	}
	return ix.step(ix.merge.remaining)
}

// close stops an unfinished merge (its work is redone after reopening) and
// closes the table.
func (ix *index) close() {
	if ix.merge != nil {
		ix.merge.out.abort()
		ix.merge = nil
	}
	if ix.table != nil {
		ix.table.close()
	}
}
