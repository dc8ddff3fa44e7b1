package filestore

import (
	"bytes"
	"cmp"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/telenotary/telenotary/notary"
	"github.com/transparency-dev/merkle/compact"
	"golang.org/x/mod/sumdb/tlog"
)

// ErrLocked means another process has the store open.
var ErrLocked = errors.New("store is in use")

// DefaultMemtableSize is how many index entries a store keeps in memory
// before writing them as a run of its index: about 40 MiB of memory at most.
const DefaultMemtableSize = 1 << 20

// Options configure a store.
type Options struct {
	// Sync makes every Commit durable before it returns. Without it, a
	// machine crash loses the commits since the last Sync (a process crash
	// loses none), which suits a store whose commits can be replayed, such
	// as a Raft state machine.
	Sync bool
	// MemtableSize is the number of index entries held in memory before a
	// merge to disk starts; 0 means DefaultMemtableSize.
	MemtableSize int
	// Logger receives notes on recovery; nil discards them.
	Logger *slog.Logger
}

const (
	metaName    = "meta"
	metaVersion = "telenotary-filestore 1"
	leavesName  = "leaves"
	hashesName  = "hashes"
	headName    = "head"
	lockName    = "LOCK"
)

// Store is the durable [notary.Store]: fixed-size leaf records and stored
// hashes in append-only files, a commitment index on disk (see index.go) and
// a head file of checksummed slots. Its memory does not grow with the log.
type Store struct {
	dir  string
	opts Options
	log  *slog.Logger
	boot [16]byte

	lock, leaves, hashes, headF *os.File

	mu      sync.RWMutex // guards the fields below; Commit and Sync hold it exclusively
	head    notary.Head
	seq     uint64 // sequence number of the head's slot
	ix      *index
	err     error  // sticky: a failed write or Close ends the store
	leafBuf []byte // reused by Commit
	hashBuf []byte
	// leafBack and hashBack are where the bytes not yet handed to the
	// kernel's writeback begin, in the leaves and hashes files.
	leafBack, hashBack int64

	cache hashCache
	// tail holds the newest stored hashes, from index tailStart on, so the
	// proofs of fresh leaves (every receipt) read no file. It keeps between
	// tailKeep and 2·tailKeep hashes.
	tail      []notary.Hash
	tailStart int64
	// tailLeaves likewise holds the newest leaves, from tailLeafStart on.
	tailLeaves    []notary.Leaf
	tailLeafStart uint64
}

const tailKeep = 1 << 15 // 1 MiB of hashes, about 16,000 leaves

// readSpan is the most ReadHashes reads at once to fetch nearby hashes.
const readSpan = 4096

// hashCache keeps stored hashes of subtrees of at least 2^cacheMinLevel
// leaves, which most proofs share. It is direct-mapped and fixed in size:
// about 2.6 MB whatever the size of the log. Stored hashes never change, so
// an entry is never stale.
type hashCache struct {
	mu    sync.Mutex // guards slots
	slots [1 << 16]struct {
		index int64 // stored hash index + 1; 0 when empty
		hash  notary.Hash
	}
}

const cacheMinLevel = 8

// slot spreads indexes over the cache: stored hash indexes of high nodes
// share their low bits, so a plain modulus would pile them into few slots.
func (c *hashCache) slot(index int64) int { return int(uint64(index) * 0x9e3779b97f4a7c15 >> 48) }

func (c *hashCache) get(index int64) (notary.Hash, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := &c.slots[c.slot(index)]
	return e.hash, e.index == index+1
}

func (c *hashCache) put(index int64, h notary.Hash) {
	if level, _ := tlog.SplitStoredHashIndex(index); level < cacheMinLevel {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e := &c.slots[c.slot(index)]
	e.index, e.hash = index+1, h
}

// OpenLog opens the store in dir, as Open does, and the notary log over it;
// closing the log closes the store.
func OpenLog(dir string, opts Options) (*notary.Log, error) {
	s, err := Open(dir, opts)
	if err != nil {
		return nil, err
	}
	l, err := notary.Open(s)
	if err != nil {
		s.Close()
		return nil, err
	}
	return l, nil
}

// Open opens the store in dir, creating it if dir is empty or missing. It
// takes an exclusive lock on the directory. On open it recovers from any
// crash: it chooses the newest head whose data is certainly intact (see
// docs in doc.go), cuts away uncommitted bytes and rebuilds the in-memory
// part of the index. Damage it cannot repair is reported as
// [notary.ErrCorrupt] before anything is changed.
func Open(dir string, opts Options) (*Store, error) {
	if opts.MemtableSize == 0 {
		opts.MemtableSize = DefaultMemtableSize
	}
	if opts.MemtableSize < 2 {
		return nil, fmt.Errorf("filestore: MemtableSize %d is too small", opts.MemtableSize)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("filestore: %w", err)
	}
	s := &Store{dir: dir, opts: opts, log: opts.Logger, boot: bootID()}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	lock, err := lockDir(filepath.Join(dir, lockName))
	if err != nil {
		return nil, fmt.Errorf("filestore: %s: %w", dir, err)
	}
	s.lock = lock
	if err := s.open(); err != nil {
		if s.ix != nil {
			s.ix.close()
		}
		s.closeFiles()
		return nil, fmt.Errorf("filestore: %s: %w", dir, err)
	}
	return s, nil
}

func (s *Store) path(name string) string { return filepath.Join(s.dir, name) }

func (s *Store) open() error {
	key, fresh, err := s.readMeta()
	if err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		dst  **os.File
	}{{leavesName, &s.leaves}, {hashesName, &s.hashes}, {headName, &s.headF}} {
		flags := os.O_RDWR
		if fresh {
			flags |= os.O_CREATE | os.O_EXCL
		}
		if *f.dst, err = os.OpenFile(s.path(f.name), flags, 0o600); err != nil {
			return fmt.Errorf("%w: %w", notary.ErrCorrupt, err)
		}
	}
	if fresh {
		if err := s.writeSlot(syncedSlot, headSlot{head: notary.Head{Root: notary.EmptyRoot()}, synced: true}); err != nil {
			return err
		}
		if err := s.headF.Sync(); err != nil {
			return err
		}
		if err := s.writeMeta(key); err != nil {
			return err
		}
	}
	chosen, err := s.recoverHead()
	if err != nil {
		return err
	}
	// Everything checked: from here on, recovery writes.
	if err := s.leaves.Truncate(int64(chosen.head.Size) * notary.LeafSize); err != nil {
		return err
	}
	if err := s.hashes.Truncate(tlog.StoredHashCount(int64(chosen.head.Size)) * notary.HashSize); err != nil {
		return err
	}
	if err := s.seal(chosen); err != nil {
		return err
	}
	s.head, s.seq = chosen.head, chosen.seq
	s.tailStart = tlog.StoredHashCount(int64(chosen.head.Size))
	s.tailLeafStart = chosen.head.Size
	s.leafBack, s.hashBack = int64(chosen.head.Size)*notary.LeafSize, s.tailStart*notary.HashSize
	return s.openIndex(key)
}

// readMeta reads the store's key, or makes one for a new store; fresh says
// the directory holds no store yet.
func (s *Store) readMeta() (key [16]byte, fresh bool, err error) {
	b, err := os.ReadFile(s.path(metaName))
	if errors.Is(err, os.ErrNotExist) {
		for _, n := range []string{leavesName, hashesName, headName} {
			if _, err := os.Stat(s.path(n)); err == nil {
				return key, false, fmt.Errorf("%w: %s exists but %s is missing", notary.ErrCorrupt, n, metaName)
			}
		}
		rand.Read(key[:])
		return key, true, nil
	}
	if err != nil {
		return key, false, err
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 2 || lines[0] != metaVersion {
		return key, false, fmt.Errorf("%w: %s is not a %q file", notary.ErrCorrupt, metaName, metaVersion)
	}
	raw, err := hex.DecodeString(strings.TrimPrefix(lines[1], "index-key "))
	if err != nil || len(raw) != len(key) || !strings.HasPrefix(lines[1], "index-key ") {
		return key, false, fmt.Errorf("%w: %s has no valid index-key line", notary.ErrCorrupt, metaName)
	}
	copy(key[:], raw)
	return key, false, nil
}

// writeMeta writes the meta file last when creating a store, so a store is
// either complete or recognizably unfinished.
func (s *Store) writeMeta(key [16]byte) error {
	body := fmt.Sprintf("%s\nindex-key %s\n", metaVersion, hex.EncodeToString(key[:]))
	return WriteFileDurably(s.path(metaName), []byte(body))
}

// recoverHead chooses the head to open at. The newest slot is trusted when it
// was synced, or when it was written during this boot of the machine (the
// page cache then still holds everything written before it). Otherwise the
// machine crashed with unsynced commits, whose bytes may not have reached
// the disk: they are re-hashed from the leaves, and kept only if they give
// exactly the newest slot's root; else the store goes back to the newest
// synced head.
func (s *Store) recoverHead() (headSlot, error) {
	slots, bad, err := readSlots(s.headF)
	if err != nil {
		return headSlot{}, err
	}
	latest, ok := latestSlot(slots, false)
	if !ok {
		return headSlot{}, fmt.Errorf("%w: no valid slot in %s (slots %v fail their checksums)", notary.ErrCorrupt, headName, bad)
	}
	for _, i := range bad {
		s.log.Warn(fmt.Sprintf("filestore: head slot %d fails its checksum: torn by a crash while it was written, or damaged since; opening at the newest intact slot", i),
			"file", s.path(headName))
	}
	if latest.synced || (s.boot != [16]byte{} && latest.boot == s.boot) {
		_, err := s.frontier(latest.head)
		return latest, err
	}
	durable, ok := latestSlot(slots, true)
	if !ok {
		return headSlot{}, fmt.Errorf("%w: no synced slot in %s", notary.ErrCorrupt, headName)
	}
	intact, err := s.verifyTail(durable.head, latest.head)
	if err != nil {
		return headSlot{}, err
	}
	if intact {
		s.log.Info("filestore: unsynced commits from before a machine restart are intact", "size", latest.head.Size)
		return latest, nil
	}
	s.log.Warn("filestore: rolling back commits not synced before a machine crash",
		"from_size", latest.head.Size, "to_size", durable.head.Size)
	return durable, nil
}

// checkLengths checks that the data files hold what head commits.
func (s *Store) checkLengths(head notary.Head) error {
	for _, f := range []struct {
		file *os.File
		need int64
	}{
		{s.leaves, int64(head.Size) * notary.LeafSize},
		{s.hashes, tlog.StoredHashCount(int64(head.Size)) * notary.HashSize},
	} {
		st, err := f.file.Stat()
		if err != nil {
			return err
		}
		if st.Size() < f.need {
			return fmt.Errorf("%w: %s is %d bytes, the head needs %d", notary.ErrCorrupt, filepath.Base(f.file.Name()), st.Size(), f.need)
		}
	}
	return nil
}

// frontier checks that the files hold what head commits (their lengths,
// the root of the stored hashes on the tree's right border, and the last
// leaf's hash) and returns that border. An error wraps ErrCorrupt.
func (s *Store) frontier(head notary.Head) (*compact.Range, error) {
	if err := s.checkLengths(head); err != nil {
		return nil, err
	}
	rf := compact.RangeFactory{Hash: nodeHash}
	ids := compact.RangeNodes(0, head.Size, nil)
	border := make([][]byte, len(ids))
	for i, id := range ids {
		h, err := s.readHash(tlog.StoredHashIndex(int(id.Level), int64(id.Index)))
		if err != nil {
			return nil, err
		}
		border[i] = h[:]
	}
	tree, err := rf.NewRange(0, head.Size, border)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", notary.ErrCorrupt, err)
	}
	if root(tree) != head.Root {
		return nil, fmt.Errorf("%w: the stored hashes give another root than the head at size %d", notary.ErrCorrupt, head.Size)
	}
	if head.Size > 0 {
		var rec [notary.LeafSize]byte
		var l notary.Leaf
		if _, err := s.leaves.ReadAt(rec[:], int64(head.Size-1)*notary.LeafSize); err != nil {
			return nil, err
		}
		stored, err := s.readHash(tlog.StoredHashIndex(0, int64(head.Size-1)))
		if err != nil {
			return nil, err
		}
		if l.UnmarshalBinary(rec[:]) != nil || l.Hash() != stored {
			return nil, fmt.Errorf("%w: leaf %d does not match its stored hash", notary.ErrCorrupt, head.Size-1)
		}
	}
	return tree, nil
}

// verifyTail reports whether the leaves after from re-hash to exactly the
// stored hashes and root of to. An error means from itself is damaged.
func (s *Store) verifyTail(from, to notary.Head) (bool, error) {
	tree, err := s.frontier(from)
	if err != nil {
		return false, err
	}
	if to.Size < from.Size || s.checkLengths(to) != nil {
		return false, nil
	}
	const chunk = 4096
	raw := make([]byte, chunk*notary.LeafSize)
	next := tlog.StoredHashCount(int64(from.Size))
	intact := true
	var visitErr error
	visit := func(id compact.NodeID, h []byte) {
		if !intact {
			return
		}
		stored, err := s.readHash(next)
		if err != nil {
			visitErr = err
		}
		intact = err == nil && bytes.Equal(stored[:], h)
		next++
	}
	for start := from.Size; start < to.Size && intact; start += chunk {
		n := min(chunk, to.Size-start)
		if _, err := s.leaves.ReadAt(raw[:n*notary.LeafSize], int64(start)*notary.LeafSize); err != nil {
			return false, err
		}
		for i := range n {
			var l notary.Leaf
			if l.UnmarshalBinary(raw[i*notary.LeafSize:(i+1)*notary.LeafSize]) != nil {
				return false, nil
			}
			h := l.Hash()
			if err := tree.Append(h[:], visit); err != nil {
				return false, err
			}
		}
	}
	if visitErr != nil {
		return false, visitErr
	}
	return intact && root(tree) == to.Root, nil
}

func nodeHash(l, r []byte) []byte {
	h := tlog.NodeHash(tlog.Hash(l), tlog.Hash(r))
	return h[:]
}

func root(r *compact.Range) notary.Hash {
	if r.End() == 0 {
		return notary.EmptyRoot()
	}
	h, _ := r.GetRootHash(nil)
	return notary.Hash(h)
}

// seal records the chosen head as the synced one and clears the other slots,
// so a slot passed over in recovery can never be chosen later.
func (s *Store) seal(h headSlot) error {
	if err := datasync(s.leaves); err != nil {
		return err
	}
	if err := datasync(s.hashes); err != nil {
		return err
	}
	h.synced, h.boot = true, s.boot
	if err := s.writeSlot(syncedSlot, h); err != nil {
		return err
	}
	if _, err := s.headF.WriteAt(make([]byte, 2*slotBytes), slotBytes); err != nil {
		return err
	}
	return datasync(s.headF)
}

func (s *Store) writeSlot(i int, h headSlot) error {
	_, err := s.headF.WriteAt(h.encode(), int64(i)*slotBytes)
	return err
}

// openIndex opens the index and replays the leaves its runs do not cover.
func (s *Store) openIndex(key [16]byte) error {
	ix, err := openIndex(s.dir, key, s.opts.MemtableSize, s.log)
	if err != nil {
		return err
	}
	s.ix = ix
	if err := ix.trim(s.head.Size); err != nil {
		return err
	}
	from := ix.covered()
	if s.head.Size-from > uint64(s.opts.MemtableSize) {
		s.log.Info("filestore: rebuilding the commitment index", "leaves", s.head.Size-from)
	}
	ix.active.reset(from)
	const chunk = 4096
	raw := make([]byte, chunk*notary.LeafSize)
	for start := from; start < s.head.Size; start += chunk {
		n := min(chunk, s.head.Size-start)
		if _, err := s.leaves.ReadAt(raw[:n*notary.LeafSize], int64(start)*notary.LeafSize); err != nil {
			return err
		}
		for i := range n {
			var c notary.Commitment
			copy(c[:], raw[i*notary.LeafSize+2:])
			if err := ix.insert(c, start+i, s.head.Size); err != nil {
				return err
			}
		}
		if err := ix.advance(int(n)); err != nil {
			return err
		}
	}
	return nil
}

// Head implements [notary.Store].
func (s *Store) Head() notary.Head {
	s.mu.RLock()
	defer s.mu.RUnlock()
	h := s.head
	h.AppState = bytes.Clone(h.AppState)
	return h
}

// Find implements [notary.Store]: every index candidate is confirmed against
// the leaf it names.
func (s *Store) Find(c notary.Commitment) (uint64, bool, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.err != nil {
		return 0, false, s.err
	}
	var rec [notary.LeafSize]byte
	var at uint64
	found, err := s.ix.find(c, func(i uint64) (bool, error) {
		if i >= s.head.Size {
			return false, nil
		}
		if _, err := s.leaves.ReadAt(rec[:], int64(i)*notary.LeafSize); err != nil {
			return false, err
		}
		at = i
		return bytes.Equal(rec[2:2+notary.HashSize], c[:]), nil
	})
	if err != nil || !found {
		return 0, false, err
	}
	return at, true, nil
}

// ReadLeaves implements [notary.Store].
func (s *Store) ReadLeaves(start uint64, dst []notary.Leaf) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.err != nil {
		return s.err
	}
	if start > s.head.Size || uint64(len(dst)) > s.head.Size-start {
		return fmt.Errorf("%w: leaves [%d, %d) of %d", notary.ErrOutOfRange, start, start+uint64(len(dst)), s.head.Size)
	}
	if start >= s.tailLeafStart {
		copy(dst, s.tailLeaves[start-s.tailLeafStart:])
		return nil
	}
	raw := make([]byte, len(dst)*notary.LeafSize)
	if _, err := s.leaves.ReadAt(raw, int64(start)*notary.LeafSize); err != nil {
		return err
	}
	for i := range dst {
		if err := dst[i].UnmarshalBinary(raw[i*notary.LeafSize : (i+1)*notary.LeafSize]); err != nil {
			return fmt.Errorf("%w: leaf %d: %w", notary.ErrDamaged, start+uint64(i), err)
		}
	}
	return nil
}

// ReadHashes implements [notary.Store]. Hashes that lie close together in
// the file are read together, and hashes high in the tree, which most proofs
// share, come from a small cache.
func (s *Store) ReadHashes(indexes []int64) ([]notary.Hash, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.err != nil {
		return nil, s.err
	}
	count := tlog.StoredHashCount(int64(s.head.Size))
	out := make([]notary.Hash, len(indexes))
	misses := make([]int, 0, len(indexes))
	for i, x := range indexes {
		if x < 0 || x >= count {
			return nil, fmt.Errorf("%w: stored hash %d of %d", notary.ErrOutOfRange, x, count)
		}
		if x >= s.tailStart {
			out[i] = s.tail[x-s.tailStart]
		} else if h, ok := s.cache.get(x); ok {
			out[i] = h
		} else {
			misses = append(misses, i)
		}
	}
	slices.SortFunc(misses, func(a, b int) int { return cmp.Compare(indexes[a], indexes[b]) })
	var buf [readSpan]byte
	for len(misses) > 0 {
		// One read covers every missing hash within readSpan bytes of the first.
		first := indexes[misses[0]]
		n := 1
		for n < len(misses) && (indexes[misses[n]]-first+1)*notary.HashSize <= readSpan {
			n++
		}
		span := buf[:(indexes[misses[n-1]]-first+1)*notary.HashSize]
		if _, err := s.hashes.ReadAt(span, first*notary.HashSize); err != nil {
			return nil, err
		}
		for _, i := range misses[:n] {
			off := (indexes[i] - first) * notary.HashSize
			out[i] = notary.Hash(span[off : off+notary.HashSize])
			s.cache.put(indexes[i], out[i])
		}
		misses = misses[n:]
	}
	return out, nil
}

func (s *Store) readHash(x int64) (notary.Hash, error) {
	var h notary.Hash
	_, err := s.hashes.ReadAt(h[:], x*notary.HashSize)
	return h, err
}

// Commit implements [notary.Store]. An I/O error ends the store: reopen it.
func (s *Store) Commit(leaves []notary.Leaf, hashes []notary.Hash, head notary.Head) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	old := s.head.Size
	switch {
	case head.Size != old+uint64(len(leaves)):
		return fmt.Errorf("filestore: commit of %d leaves moves size %d to %d", len(leaves), old, head.Size)
	case int64(len(hashes)) != tlog.StoredHashCount(int64(head.Size))-tlog.StoredHashCount(int64(old)):
		return fmt.Errorf("filestore: commit of %d leaves brings %d stored hashes, want %d", len(leaves), len(hashes),
			tlog.StoredHashCount(int64(head.Size))-tlog.StoredHashCount(int64(old)))
	case len(head.AppState) > notary.MaxAppState:
		return fmt.Errorf("filestore: app state of %d bytes, more than %d", len(head.AppState), notary.MaxAppState)
	}
	if err := s.commit(leaves, hashes, head); err != nil {
		s.err = fmt.Errorf("%w: filestore failed: %w", notary.ErrClosed, err)
		return err
	}
	return nil
}

func (s *Store) commit(leaves []notary.Leaf, hashes []notary.Hash, head notary.Head) error {
	old := s.head.Size
	if len(leaves) > 0 {
		s.leafBuf = s.leafBuf[:0]
		for _, l := range leaves {
			var err error
			if s.leafBuf, err = l.AppendBinary(s.leafBuf); err != nil {
				return err
			}
		}
		s.hashBuf = s.hashBuf[:0]
		for _, h := range hashes {
			s.hashBuf = append(s.hashBuf, h[:]...)
		}
		leafOff, hashOff := int64(old)*notary.LeafSize, tlog.StoredHashCount(int64(old))*notary.HashSize
		if _, err := s.leaves.WriteAt(s.leafBuf, leafOff); err != nil {
			return err
		}
		if _, err := s.hashes.WriteAt(s.hashBuf, hashOff); err != nil {
			return err
		}
		if !s.opts.Sync {
			// Without a sync per commit, still start writing back, so the
			// next Sync finds little to wait for; a chunk at a time, not a
			// commit at a time: each call queues disk writes, which would
			// put a small I/O (and a wait for the queue) on every commit.
			s.leafBack = writeBack(s.leaves, s.leafBack, leafOff+int64(len(s.leafBuf)))
			s.hashBack = writeBack(s.hashes, s.hashBack, hashOff+int64(len(s.hashBuf)))
		}
		s.tail = append(s.tail, hashes...)
		if over := len(s.tail) - tailKeep; over > tailKeep {
			s.tail = append(s.tail[:0], s.tail[over:]...)
			s.tailStart += int64(over)
		}
		s.tailLeaves = append(s.tailLeaves, leaves...)
		if over := len(s.tailLeaves) - tailKeep/2; over > tailKeep/2 {
			s.tailLeaves = append(s.tailLeaves[:0], s.tailLeaves[over:]...)
			s.tailLeafStart += uint64(over)
		}
		for i, l := range leaves {
			if err := s.ix.insert(l.Commitment, old+uint64(i), head.Size); err != nil {
				return err
			}
		}
		if s.opts.Sync {
			if err := datasync(s.leaves); err != nil {
				return err
			}
			if err := datasync(s.hashes); err != nil {
				return err
			}
		}
	}
	slot := headSlot{seq: s.seq + 1, head: head, synced: s.opts.Sync, boot: s.boot}
	slot.head.AppState = bytes.Clone(head.AppState)
	if err := s.writeSlot(1+int(slot.seq%2), slot); err != nil {
		return err
	}
	if s.opts.Sync {
		if err := datasync(s.headF); err != nil {
			return err
		}
	}
	s.head, s.seq = slot.head, slot.seq
	return s.ix.advance(len(leaves))
}

// Sync implements [notary.Store]: it makes every commit so far durable.
// It waits for the disk without holding up commits and reads: the data
// files are synced first, and only the small head write excludes them.
func (s *Store) Sync() error {
	s.mu.RLock()
	head, seq, err := s.head, s.seq, s.err
	s.mu.RUnlock()
	if err != nil {
		return err
	}
	if err := datasync(s.leaves); err != nil {
		return err
	}
	if err := datasync(s.hashes); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	// Everything up to head is on disk now; later commits may be too,
	// but slot 0 claims only head.
	if err := s.writeSlot(syncedSlot, headSlot{seq: seq, head: head, synced: true, boot: s.boot}); err != nil {
		return err
	}
	return datasync(s.headF)
}

// writebackChunk is how many written bytes of a file Commit gathers
// before it starts their writeback.
const writebackChunk = 256 << 10

// writeBack starts the writeback of f from from to end once that is at
// least writebackChunk bytes, and returns where the bytes not yet started
// begin.
func writeBack(f *os.File, from, end int64) int64 {
	if end < from {
		from = end // the file was cut back (a heal)
	}
	if end-from < writebackChunk {
		return from
	}
	startWriteback(f, from, end-from)
	return end
}

func (s *Store) sync() error {
	if err := datasync(s.leaves); err != nil {
		return err
	}
	if err := datasync(s.hashes); err != nil {
		return err
	}
	if err := s.writeSlot(syncedSlot, headSlot{seq: s.seq, head: s.head, synced: true, boot: s.boot}); err != nil {
		return err
	}
	return datasync(s.headF)
}

// Close syncs and closes the store and releases its directory lock.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if errors.Is(s.err, errClosed) {
		return nil
	}
	var err error
	if s.err == nil {
		err = s.sync()
	}
	s.ix.close()
	s.closeFiles()
	s.err = errClosed
	return err
}

var errClosed = fmt.Errorf("%w: filestore closed", notary.ErrClosed)

func (s *Store) closeFiles() {
	for _, f := range []*os.File{s.leaves, s.hashes, s.headF, s.lock} {
		if f != nil {
			f.Close()
		}
	}
}

// WriteFileDurably replaces the file at path with b so that a crash leaves
// either the old file or the new one, never a torn one: it writes a
// temporary file beside it, syncs it, renames it into place and syncs the
// directory.
func WriteFileDurably(path string, b []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(path)
}

// syncDir makes a new or renamed entry in path's directory durable.
func syncDir(path string) error {
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
