package filestore

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/dchest/siphash"
	"github.com/telenotary/telenotary/notary"
)

// The commitment index maps a commitment's SipHash key to the leaf index
// (keys are keyed by a per-store secret, so no submitter can aim many
// commitments at one spot). It is a small log-structured merge tree:
//
//   - the active memtable takes every new entry, in memory;
//   - when it holds limit entries it is frozen, and a flush writes it as a
//     level-0 run: a table (table.go) holding the entries of its leaves;
//   - when fanout runs of one level lie side by side, a merge streams them,
//     in key order, into one run of the next level, which replaces them.
//
// So the runs tile the leaves: each holds the entries of a range of leaves,
// the oldest leaves in the largest runs, and the runs together cover the
// leaves [0, covered). Each entry is rewritten once per level, and there
// are about log_fanout(N/limit) levels: O(log N) writes an entry, where
// rewriting one table whole at every flush made it O(N/limit).
//
// Flushes and merges are incremental: each does a little more on every
// commit, at a rate that ends it well before its level next fills (a
// flush within half a memtable of inserts, a merge of level i within half
// of the limit·fanout^(i+1) inserts that fill level i again), so no commit
// stalls on a whole rewrite. Several may be under way at once, one a level
// in the common case; a run being merged still answers lookups until the
// merge's run replaces it.
//
// Lookups check the memtables, then every run whose Bloom filter (one per
// run, filter.go) may hold the key, reading one window of each such run: a
// present key costs about one read, an absent one a read only on a false
// positive. Memory is bounded by the memtables, the filters (capped per
// run) and the merges' buffers.
//
// Only whole tables are ever on disk (written, synced, then renamed into
// place); a merge removes its inputs only once its run is in place, so a
// crash leaves either the inputs or the output (or both: open keeps the
// largest run of a range and removes what it covers). The memtables are
// rebuilt on open from the leaves the runs do not cover; a run that cannot
// be used is dropped with every run after it, and its leaves are indexed
// again from the leaves. Entries are candidates: the store confirms each
// against the leaf it names.

// memtable holds the keys of a run of consecutive leaves in memory: keys[i]
// is the key of leaf from+i, found through an open-addressing table of
// positions. Its arrays are allocated once, outside the Go heap (see
// allocArray), and reused after every flush.
type memtable struct {
	from  uint64
	keys  []uint64
	slots []uint32 // position+1 in keys, 0 when empty; a power of two, at least twice the limit
	free  func()
}

func newMemtable(limit int) *memtable {
	n := 1
	for n < 2*limit {
		n *= 2
	}
	keys, freeKeys := allocArray[uint64](limit)
	slots, freeSlots := allocArray[uint32](n)
	return &memtable{keys: keys[:0], slots: slots, free: func() { freeKeys(); freeSlots() }}
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
	free    func()
}

const bucketBits = 16

func newSortedRun(limit int) *sortedRun {
	entries, free := allocArray[entry](limit)
	return &sortedRun{entries: entries[:0], starts: make([]uint32, 1<<bucketBits+1), free: free}
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

// fanout is how many runs of one level are merged into one of the next.
const fanout = 4

// merger streams sorted inputs (a frozen memtable, or runs) into a new run.
type merger struct {
	inputs []*table // the runs merged, side by side in index.runs; none for a flush
	frozen []entry  // entries of the frozen memtable not yet merged
	// sorting, for a flush, is closed once the frozen memtable is sorted
	// into sorted (a goroutine does it: see startFlush); nil once the
	// merger took its entries.
	sorting   <-chan struct{}
	sorted    *sortedRun
	srcs      []mergeSource
	out       *tableWriter
	remaining uint64 // input entries not yet consumed
	perInsert uint64 // entries to merge per entry inserted meanwhile
	from, to  uint64 // the output holds the entries of these leaves; others are dropped
}

type mergeSource struct {
	r    *tableReader
	head entry
	ok   bool
}

type index struct {
	dir    string
	k0, k1 uint64
	keyTag uint64
	limit  int // memtable entries that start a flush
	log    *slog.Logger

	active *memtable
	// spare is the memtable that filled last: while a flush's sort runs,
	// its entries are looked up there; then it waits to be the next active
	// one. Both are allocated (and their pages faulted in) at open, not in
	// the commit that freezes.
	spare  *memtable
	frozen *sortedRun // being flushed while flush is not nil, once sorted
	flush  *merger
	runs   []*table  // the durable runs, in the order of their leaves, tiling [0, covered())
	merges []*merger // merges of runs under way
	gen    uint64    // the generation of the newest table made or found

	// written counts the entries written into runs; reads, the lookups
	// that read a run (its filter let the key through).
	written uint64
	reads   atomic.Uint64
}

func tablePath(dir string, gen uint64) string {
	return filepath.Join(dir, fmt.Sprintf("index-%016x", gen))
}

// findTables opens the header of every table in dir, removes leftover
// temporary files and damaged or foreign tables, and returns the tables in
// the order chooseRuns wants, with the largest generation seen.
func findTables(dir string, keyTag uint64, log *slog.Logger, remove bool) ([]*table, uint64, error) {
	names, err := filepath.Glob(filepath.Join(dir, "index-*"))
	if err != nil {
		return nil, 0, err
	}
	var found []*table
	var newest uint64
	for _, n := range names {
		name := strings.TrimPrefix(filepath.Base(n), "index-")
		gen, err := strconv.ParseUint(name, 16, 64)
		if err != nil { // a .tmp of an unfinished merge, or junk
			if g, err := strconv.ParseUint(strings.TrimSuffix(name, ".tmp"), 16, 64); err == nil {
				newest = max(newest, g) // never reused, so never mistaken for it
			}
			if remove {
				if err := os.Remove(n); err != nil {
					return nil, 0, err
				}
			}
			continue
		}
		newest = max(newest, gen)
		t, err := openTable(n)
		if err == nil && t.keyTag != keyTag {
			t.close()
			err = fmt.Errorf("%s: made with another store's key", n)
		}
		if err == nil && t.covered == t.from {
			t.close()
			err = fmt.Errorf("%s: covers no leaf", n)
		}
		if err != nil {
			if remove {
				log.Warn("filestore: dropped index table", "err", err)
				if err := os.Remove(n); err != nil {
					return nil, 0, err
				}
			}
			continue
		}
		found = append(found, t)
	}
	// By first leaf, then the largest range, then the newest.
	slices.SortFunc(found, func(a, b *table) int {
		if c := cmp.Compare(a.from, b.from); c != 0 {
			return c
		}
		if c := cmp.Compare(b.covered, a.covered); c != 0 {
			return c
		}
		return cmp.Compare(b.gen, a.gen)
	})
	return found, newest, nil
}

// chooseRuns picks, from tables sorted by findTables, the runs that tile
// the leaves from 0: at each point the one reaching furthest, which is the
// output of the latest merge there (its inputs, left by a crash before the
// merge removed them, are dropped). A gap ends the tiling; the tables past
// it are dropped and their leaves indexed again.
func chooseRuns(tables []*table) (keep, drop []*table, gap bool) {
	var pos uint64
	for _, t := range tables {
		switch {
		case t.from == pos && !gap:
			keep = append(keep, t)
			pos = t.covered
		case t.from > pos:
			gap = true
			drop = append(drop, t)
		default:
			drop = append(drop, t)
		}
	}
	return keep, drop, gap
}

// openIndex opens the runs in dir that tile the leaves from 0, removing
// every other table file (and rewriting a table of format 1 in format 2);
// the leaves the runs do not cover are indexed by the caller's replay.
// It reads the runs' headers and filters, not their entries.
func openIndex(dir string, key [16]byte, limit int, log *slog.Logger) (*index, error) {
	ix := &index{dir: dir, limit: limit, log: log}
	ix.k0, ix.k1 = binary.LittleEndian.Uint64(key[:8]), binary.LittleEndian.Uint64(key[8:])
	ix.keyTag = keyTagOf(key)
	found, newest, err := findTables(dir, ix.keyTag, log, true)
	if err != nil {
		return nil, err
	}
	ix.gen = newest
	keep, drop, gap := chooseRuns(found)
	for _, t := range drop {
		if gap && t.from >= covered(keep) {
			log.Warn("filestore: dropped index table after a missing one; its leaves are indexed again",
				"table", filepath.Base(t.path), "from", t.from, "to", t.covered, "covered", covered(keep))
		}
		t.close()
		if err := os.Remove(t.path); err != nil {
			closeAll(keep)
			return nil, err
		}
	}
	ix.runs = keep
	ix.active, ix.spare, ix.frozen = newMemtable(limit), newMemtable(limit), newSortedRun(limit)
	ix.active.reset(ix.covered())
	for _, t := range ix.runs {
		var err error
		if t.legacy {
			// The rewritten run comes with its filter.
			err = ix.migrate(t)
		} else if err = t.loadFilter(); errors.Is(err, errFilterDamaged) {
			log.Warn("filestore: " + err.Error())
			err = nil
		}
		if err != nil {
			ix.close()
			return nil, err
		}
	}
	return ix, nil
}

// migrate rewrites a table of format 1 as a run of format 2, with its
// filter stored, in one go.
func (ix *index) migrate(t *table) error {
	level := uint64(0)
	for n := uint64(ix.limit) * fanout; n <= t.count; n *= fanout {
		level++
	}
	ix.log.Info("filestore: rewriting the commitment index table in the leveled format", "entries", t.count, "level", level)
	m, err := ix.startMerge([]*table{t}, 0, t.from, t.covered, level)
	if err != nil {
		return err
	}
	return ix.complete(m)
}

// keyTagOf identifies the index key in every table, so a table of
// another store is never used.
func keyTagOf(key [16]byte) uint64 {
	return siphash.Hash(binary.LittleEndian.Uint64(key[:8]), binary.LittleEndian.Uint64(key[8:]), []byte("telenotary index key check"))
}

func covered(runs []*table) uint64 {
	if len(runs) == 0 {
		return 0
	}
	return runs[len(runs)-1].covered
}

func closeAll(runs []*table) {
	for _, t := range runs {
		t.close()
	}
}

// covered returns the number of leaves whose entries the runs hold.
func (ix *index) covered() uint64 { return covered(ix.runs) }

func (ix *index) key(c notary.Commitment) uint64 { return siphash.Hash(ix.k0, ix.k1, c[:]) }

// find calls confirm with the leaf indexes the index holds for c, in
// increasing order, until confirm reports the leaf holds c; it returns
// whether one did. The sources are taken in the order of their leaves (the
// runs, the oldest first, then the frozen memtable, then the active one),
// so a key held by a run stops the search there: most logged keys are in
// the large, old runs, and the newer runs are not probed for them. An
// absent key probes the filter of every run and reads a run only where its
// filter errs.
func (ix *index) find(c notary.Commitment, confirm func(uint64) (bool, error)) (bool, error) {
	k := ix.key(c)
	var buf [8]uint64
	cands := buf[:0]
	add := func(i uint64) { cands = append(cands, i) }
	for src := 0; src <= len(ix.runs)+1; src++ {
		cands = cands[:0]
		switch {
		case src < len(ix.runs):
			t := ix.runs[src]
			if !t.mayContain(k) {
				continue
			}
			ix.reads.Add(1)
			if err := t.lookup(k, add); err != nil {
				return false, err
			}
		case src == len(ix.runs):
			switch {
			case ix.flush == nil:
			case ix.flush.sorting != nil:
				ix.spare.lookup(k, add) // still being sorted
			default:
				ix.frozen.lookup(k, add)
			}
		default:
			ix.active.lookup(k, add)
		}
		slices.Sort(cands)
		for _, i := range cands {
			if ok, err := confirm(i); ok || err != nil {
				return ok, err
			}
		}
	}
	return false, nil
}

// insert adds the entry for leaf index; size is the log size once the
// current commit lands. It may start a flush, or finish one that is late.
func (ix *index) insert(c notary.Commitment, index uint64, size uint64) error {
	if want := ix.active.from + uint64(ix.active.len()); index != want {
		return fmt.Errorf("filestore: index entry for leaf %d, expected leaf %d", index, want)
	}
	ix.active.insert(ix.key(c))
	if ix.active.len() < ix.limit {
		return nil
	}
	if ix.flush != nil {
		if err := ix.complete(ix.flush); err != nil {
			return err
		}
	}
	if err := ix.startFlush(index + 1); err != nil {
		return err
	}
	return ix.compact()
}

// startFlush freezes the active memtable, which covers leaves below next,
// and starts writing it as a level-0 run. The spare memtable becomes the
// active one. Sorting the frozen one takes tens of milliseconds at the
// default size, which every node of a cluster would spend in the same
// commit: a goroutine does it, lookups meanwhile use the frozen memtable
// itself, and the flush's work starts once it is sorted.
func (ix *index) startFlush(next uint64) error {
	full := ix.active
	m, err := ix.startMerge(nil, uint64(full.len()), full.from, next, 0)
	if err != nil {
		return fmt.Errorf("start index flush: %w", err)
	}
	// Finish within half a memtable of inserts, before the next freeze.
	m.perInsert = m.remaining/uint64(max(ix.limit/2, 1)) + 1
	sorting := make(chan struct{})
	m.sorting, m.sorted = sorting, ix.frozen
	go func(run *sortedRun) {
		sortFrozen(run, full)
		close(sorting)
	}(ix.frozen)
	ix.flush = m
	ix.active, ix.spare = ix.spare, full
	ix.active.reset(next)
	return nil
}

// sortFrozen sorts a frozen memtable into a run (tests hold it back).
var sortFrozen = (*sortedRun).fill

// takeSorted gives a flush the sorted entries of its frozen memtable, once
// they are: at once when wait is false (reporting whether they were), or
// after waiting for the sort.
func (m *merger) takeSorted(wait bool) bool {
	if m.sorting == nil {
		return true
	}
	if wait {
		<-m.sorting
	} else {
		select {
		case <-m.sorting:
		default:
			return false
		}
	}
	m.frozen, m.sorting = m.sorted.entries, nil
	return true
}

// startMerge starts a merge of the runs inputs and frozen entries of a
// memtable into a run of level that holds the entries of the leaves
// [from, to).
func (ix *index) startMerge(inputs []*table, frozen uint64, from, to, level uint64) (*merger, error) {
	total := frozen
	for _, t := range inputs {
		total += t.count
	}
	ix.gen++
	out, err := createTable(ix.dir, ix.gen, from, to, level, total, ix.keyTag)
	if err != nil {
		return nil, err
	}
	m := &merger{inputs: inputs, out: out, remaining: total, from: from, to: to}
	for _, t := range inputs {
		s := mergeSource{r: t.reader()}
		if s.head, s.ok, err = s.r.next(); err != nil {
			out.abort()
			return nil, err
		}
		m.srcs = append(m.srcs, s)
	}
	for _, t := range inputs {
		t.merging = true
	}
	return m, nil
}

// compact starts a merge wherever fanout runs of one level, none of them
// being merged, lie side by side (the oldest such first).
func (ix *index) compact() error {
	for i := 0; i+fanout <= len(ix.runs); i++ {
		level := ix.runs[i].level
		group := ix.runs[i : i+fanout]
		if slices.ContainsFunc(group, func(t *table) bool { return t.merging || t.level != level }) {
			continue
		}
		m, err := ix.startMerge(slices.Clone(group), 0, group[0].from, group[fanout-1].covered, level+1)
		if err != nil {
			return fmt.Errorf("start index merge: %w", err)
		}
		// Level i fills again after limit·fanout^(i+1) inserts: finish
		// within half of them. Its inputs, which lookups still check,
		// linger that long; a faster merge would end sooner but make the
		// commits meanwhile slower.
		window := uint64(ix.limit)
		for range level + 1 {
			window *= fanout
		}
		m.perInsert = 2*m.remaining/window + 1
		ix.merges = append(ix.merges, m)
		i += fanout - 1
	}
	return nil
}

// advance does the flush and merge work owed for inserted new entries. A
// flush whose memtable is still being sorted starts its work at a later
// commit; what it owes until then is done by the end of it (complete, at
// the next freeze at the latest).
func (ix *index) advance(inserted int) error {
	if m := ix.flush; m != nil && m.takeSorted(false) {
		if err := ix.step(m, uint64(inserted)*m.perInsert); err != nil {
			return err
		}
	}
	for _, m := range slices.Clone(ix.merges) {
		if err := ix.step(m, uint64(inserted)*m.perInsert); err != nil {
			return err
		}
	}
	return ix.compact()
}

// complete does all the work left of m.
func (ix *index) complete(m *merger) error {
	m.takeSorted(true)
	return ix.step(m, m.remaining)
}

// step consumes up to n input entries of m and finishes it when none are
// left.
func (ix *index) step(m *merger, n uint64) error {
	for ; n > 0 && m.remaining > 0; n-- {
		var e entry
		from := -1 // the source of e; len(m.srcs) for the frozen entries
		if len(m.frozen) > 0 {
			e, from = m.frozen[0], len(m.srcs)
		}
		for i := range m.srcs {
			if s := &m.srcs[i]; s.ok && (from < 0 || compareEntries(s.head, e) < 0) {
				e, from = s.head, i
			}
		}
		switch {
		case from < 0:
			return fmt.Errorf("%w: index table holds fewer entries than its header says", notary.ErrCorrupt)
		case from == len(m.srcs):
			m.frozen = m.frozen[1:]
		default:
			s := &m.srcs[from]
			var err error
			if s.head, s.ok, err = s.r.next(); err != nil {
				return err
			}
		}
		m.remaining--
		// Entries outside the output's leaves were rolled back (see
		// trim); a leaf may appear in two inputs after a replay.
		if e.index < m.from || e.index >= m.to || (m.out.any && e == m.out.last) {
			continue
		}
		m.out.add(e)
		ix.written++
		// One step can take many entries: write them as they come, so
		// the buffer stays bounded.
		if err := m.out.flushIfFull(); err != nil {
			return err
		}
	}
	if m.remaining > 0 {
		return nil
	}
	return ix.finish(m)
}

// finish puts the run m wrote in place of its inputs and removes them.
// The merges that the new run makes due start at the next compact.
func (ix *index) finish(m *merger) error {
	t, err := m.out.finish()
	if err != nil {
		return fmt.Errorf("finish index merge: %w", err)
	}
	if len(m.inputs) == 0 {
		ix.runs = append(ix.runs, t)
		ix.flush = nil
	} else {
		at := slices.Index(ix.runs, m.inputs[0])
		if at < 0 || at+len(m.inputs) > len(ix.runs) || !slices.Equal(ix.runs[at:at+len(m.inputs)], m.inputs) {
			return errors.New("filestore: merged index runs are no longer side by side")
		}
		ix.runs = slices.Replace(ix.runs, at, at+len(m.inputs), t)
		ix.merges = slices.DeleteFunc(ix.merges, func(o *merger) bool { return o == m })
		for _, in := range m.inputs {
			in.close()
			if err := os.Remove(in.path); err != nil {
				return err
			}
		}
	}
	return nil
}

// trim makes the runs cover no leaf at or above size, which a recovery
// discarded: the leaves appended from size on are indexed by the memtable,
// and a run claiming them would hide them from the replay of every later
// open. Runs wholly past size are removed (the newest first, so a crash
// leaves runs that still tile from 0), and the one across it is rewritten
// without the leaves past size.
func (ix *index) trim(size uint64) error {
	for len(ix.runs) > 0 && ix.runs[len(ix.runs)-1].from >= size {
		t := ix.runs[len(ix.runs)-1]
		t.close()
		if err := os.Remove(t.path); err != nil {
			return err
		}
		ix.runs = ix.runs[:len(ix.runs)-1]
	}
	if ix.covered() > size {
		t := ix.runs[len(ix.runs)-1]
		m, err := ix.startMerge([]*table{t}, 0, t.from, size, t.level)
		if err != nil {
			return err
		}
		if err := ix.complete(m); err != nil {
			return err
		}
	}
	ix.active.reset(ix.covered())
	return nil
}

// close stops the unfinished flush and merges (their work is redone after
// reopening) and closes the runs.
func (ix *index) close() {
	for _, m := range append(ix.merges, ix.flush) {
		if m != nil {
			m.takeSorted(true) // the sort writes into ix.frozen, freed below
			m.out.abort()
		}
	}
	ix.flush, ix.merges = nil, nil
	closeAll(ix.runs)
	ix.runs = nil
	if ix.active != nil {
		ix.active.free()
		ix.frozen.free()
		ix.active, ix.frozen = nil, nil
	}
	if ix.spare != nil {
		ix.spare.free()
		ix.spare = nil
	}
}
