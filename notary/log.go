package notary

import (
	"crypto/sha256"
	"fmt"
	"sync"

	"github.com/transparency-dev/merkle/compact"
	"golang.org/x/mod/sumdb/tlog"
)

// MaxBatch bounds the leaves of one [Log.Append].
const MaxBatch = 1 << 16

// emptyRoot is the root of the empty tree, SHA-256 of nothing (RFC 6962).
var emptyRoot = Hash(sha256.Sum256(nil))

// EmptyRoot returns the root of the empty tree, SHA-256 of nothing
// (RFC 6962): the root in a new store's head.
func EmptyRoot() Hash { return emptyRoot }

// Log is an append-only Merkle log of [Leaf] values over a [Store], with
// RFC 6962 hashing. One goroutine at a time appends (Append serializes);
// reads and proofs may run concurrently with it and see committed state only.
//
// Every commitment is logged at most once: appending a commitment that is
// already present returns its existing index, which is what makes client
// retries safe.
type Log struct {
	store Store
	rf    compact.RangeFactory

	mu       sync.Mutex     // guards the fields below; held for all of Append
	frontier *compact.Range // the right border of the tree at the committed size
	lastTime int64          // timestamp of the last leaf
	err      error          // set when a commit failed: the log must be reopened
}

// Open opens the log held by store and checks that its stored hashes lead
// to the committed root.
func Open(store Store) (*Log, error) {
	l := &Log{store: store, rf: compact.RangeFactory{Hash: hashChildren}}
	head := store.Head()
	ids := compact.RangeNodes(0, head.Size, nil)
	idx := make([]int64, len(ids))
	for i, id := range ids {
		idx[i] = tlog.StoredHashIndex(int(id.Level), int64(id.Index))
	}
	stored, err := store.ReadHashes(idx)
	if err != nil {
		return nil, fmt.Errorf("notary: read the tree's right border: %w", err)
	}
	hashes := make([][]byte, len(stored))
	for i := range stored {
		hashes[i] = stored[i][:]
	}
	if l.frontier, err = l.rf.NewRange(0, head.Size, hashes); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	root, err := l.root(l.frontier)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	if root != head.Root {
		return nil, fmt.Errorf("%w: stored hashes give root %s at size %d, head says %s", ErrCorrupt, root, head.Size, head.Root)
	}
	if head.Size > 0 {
		last, err := l.Leaf(head.Size - 1)
		if err != nil {
			return nil, err
		}
		lh, err := store.ReadHashes([]int64{tlog.StoredHashIndex(0, int64(head.Size-1))})
		if err != nil {
			return nil, err
		}
		if last.Hash() != lh[0] {
			return nil, fmt.Errorf("%w: leaf %d does not match its stored hash", ErrCorrupt, head.Size-1)
		}
		l.lastTime = last.Timestamp
	}
	return l, nil
}

// hashChildren is the RFC 6962 interior node hash SHA-256(0x01 || l || r).
func hashChildren(left, right []byte) []byte {
	h := tlog.NodeHash(tlog.Hash(left), tlog.Hash(right))
	return h[:]
}

func (l *Log) root(r *compact.Range) (Hash, error) {
	if r.End() == 0 {
		return emptyRoot, nil
	}
	h, err := r.GetRootHash(nil)
	if err != nil {
		return Hash{}, err
	}
	return Hash(h), nil
}

// Head returns the committed head.
func (l *Log) Head() Head { return l.store.Head() }

// Append adds leaves to the log in one store commit and returns the index of
// each. A leaf whose commitment is already logged, earlier or in the same
// batch, is not added again: its index is the existing one, so an index below
// the size before the call means "already there". appState is committed
// with the batch (see [Head]); it is committed even when no leaf is new.
//
// Leaves must be valid and their timestamps must not go back in time. An
// error from the store leaves the log closed: reopen it to continue.
func (l *Log) Append(leaves []Leaf, appState []byte) ([]uint64, error) {
	if len(leaves) > MaxBatch {
		return nil, fmt.Errorf("notary: batch of %d leaves, more than %d", len(leaves), MaxBatch)
	}
	if len(appState) > MaxAppState {
		return nil, fmt.Errorf("notary: app state of %d bytes, more than %d", len(appState), MaxAppState)
	}
	for i, lf := range leaves {
		if err := lf.Validate(); err != nil {
			return nil, fmt.Errorf("notary: leaf %d: %w", i, err)
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return nil, l.err
	}
	size := l.frontier.End()
	indexes := make([]uint64, len(leaves))
	var fresh []Leaf
	var inBatch map[Commitment]uint64
	if len(leaves) > 1 {
		inBatch = make(map[Commitment]uint64, len(leaves))
	}
	lastTime := l.lastTime
	for i, lf := range leaves {
		if j, ok := inBatch[lf.Commitment]; ok {
			indexes[i] = j
			continue
		}
		j, found, err := l.store.Find(lf.Commitment)
		if err != nil {
			return nil, fmt.Errorf("notary: look up commitment: %w", err)
		}
		if !found {
			if lf.Timestamp < lastTime {
				return nil, fmt.Errorf("notary: leaf %d has timestamp %d, before the log's last %d", i, lf.Timestamp, lastTime)
			}
			lastTime = lf.Timestamp
			j = size + uint64(len(fresh))
			fresh = append(fresh, lf)
		}
		indexes[i] = j
		if inBatch != nil {
			inBatch[lf.Commitment] = j
		}
	}
	if len(fresh) == 0 && string(appState) == string(l.store.Head().AppState) {
		return indexes, nil
	}

	// The frontier is updated in place; if the commit fails it no longer
	// matches the store, so the log closes itself.
	hashes := make([]Hash, 0, 2*len(fresh))
	next := tlog.StoredHashCount(int64(size))
	var layoutErr error
	visit := func(id compact.NodeID, h []byte) {
		if want := next + int64(len(hashes)); tlog.StoredHashIndex(int(id.Level), int64(id.Index)) != want && layoutErr == nil {
			layoutErr = fmt.Errorf("notary: node %d/%d would be stored hash %d, want %d", id.Level, id.Index, tlog.StoredHashIndex(int(id.Level), int64(id.Index)), want)
		}
		hashes = append(hashes, Hash(h))
	}
	for _, lf := range fresh {
		h := lf.Hash()
		if err := l.frontier.Append(h[:], visit); err != nil {
			return nil, l.fail(err)
		}
	}
	if layoutErr != nil {
		return nil, l.fail(layoutErr)
	}
	root, err := l.root(l.frontier)
	if err != nil {
		return nil, l.fail(err)
	}
	if err := l.store.Commit(fresh, hashes, Head{Size: l.frontier.End(), Root: root, AppState: appState}); err != nil {
		return nil, l.fail(err)
	}
	l.lastTime = lastTime
	return indexes, nil
}

func (l *Log) fail(err error) error {
	l.err = fmt.Errorf("%w after a failed append: %w", ErrClosed, err)
	return err
}

// Find returns the index of the leaf committing to c, if it is logged.
func (l *Log) Find(c Commitment) (uint64, bool, error) { return l.store.Find(c) }

// Leaf returns the leaf at index.
func (l *Log) Leaf(index uint64) (Leaf, error) {
	var dst [1]Leaf
	err := l.Leaves(index, dst[:])
	return dst[0], err
}

// Leaves fills dst with the leaves from index start on.
func (l *Log) Leaves(start uint64, dst []Leaf) error {
	size := l.store.Head().Size
	if start > size || uint64(len(dst)) > size-start {
		return fmt.Errorf("%w: leaves [%d, %d) of a log of %d", ErrOutOfRange, start, start+uint64(len(dst)), size)
	}
	return l.store.ReadLeaves(start, dst)
}

// CheckLeaves compares leaves, read from index start on, with the leaf
// hashes the log stored when it appended them: a leaf damaged on disk since
// no longer matches. The error wraps ErrDamaged and names the first leaf
// that differs.
func (l *Log) CheckLeaves(start uint64, leaves []Leaf) error {
	indexes := make([]int64, len(leaves))
	for i := range leaves {
		indexes[i] = tlog.StoredHashIndex(0, int64(start)+int64(i))
	}
	stored, err := l.store.ReadHashes(indexes)
	if err != nil {
		return err
	}
	for i, lf := range leaves {
		if h := lf.Hash(); h != stored[i] {
			return fmt.Errorf("%w: leaf %d hashes to %s, the log stored %s when it appended it", ErrDamaged, start+uint64(i), h, stored[i])
		}
	}
	return nil
}

// hashReader adapts the store to tlog's proof functions.
func (l *Log) hashReader() tlog.HashReader {
	return tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
		hs, err := l.store.ReadHashes(indexes)
		if err != nil {
			return nil, err
		}
		out := make([]tlog.Hash, len(hs))
		for i := range hs {
			out[i] = tlog.Hash(hs[i])
		}
		return out, nil
	})
}

func (l *Log) checkSize(size uint64) error {
	if head := l.store.Head().Size; size > head {
		return fmt.Errorf("%w: tree size %d, log has %d", ErrOutOfRange, size, head)
	}
	return nil
}

// RootAt returns the root of the tree of the first size leaves.
func (l *Log) RootAt(size uint64) (Hash, error) {
	if err := l.checkSize(size); err != nil {
		return Hash{}, err
	}
	h, err := tlog.TreeHash(int64(size), l.hashReader())
	return Hash(h), err
}

// InclusionProof returns the RFC 6962 proof that the leaf at index is in
// the tree of the first size leaves.
func (l *Log) InclusionProof(index, size uint64) ([]Hash, error) {
	if err := l.checkSize(size); err != nil {
		return nil, err
	}
	if index >= size {
		return nil, fmt.Errorf("%w: leaf %d is not in a tree of size %d", ErrOutOfRange, index, size)
	}
	p, err := tlog.ProveRecord(int64(size), int64(index), l.hashReader())
	return toHashes(p), err
}

// ConsistencyProof returns the RFC 6962 proof that the tree of the first
// from leaves is a prefix of the tree of the first to leaves.
func (l *Log) ConsistencyProof(from, to uint64) ([]Hash, error) {
	if err := l.checkSize(to); err != nil {
		return nil, err
	}
	if from > to {
		return nil, fmt.Errorf("%w: consistency from size %d to smaller size %d", ErrOutOfRange, from, to)
	}
	if from == 0 || from == to {
		return []Hash{}, nil
	}
	p, err := tlog.ProveTree(int64(to), int64(from), l.hashReader())
	return toHashes(p), err
}

func toHashes[T ~[]tlog.Hash](p T) []Hash {
	out := make([]Hash, len(p))
	for i := range p {
		out[i] = Hash(p[i])
	}
	return out
}

// Receipt returns the receipt for the leaf at index, with an inclusion proof
// into cp, a checkpoint this log signed at a size above index.
func (l *Log) Receipt(index uint64, cp SignedCheckpoint) (*Receipt, error) {
	if index >= cp.Size {
		return nil, fmt.Errorf("%w: leaf %d is not in the checkpoint of size %d", ErrOutOfRange, index, cp.Size)
	}
	leaf, err := l.Leaf(index)
	if err != nil {
		return nil, err
	}
	proof, err := l.InclusionProof(index, cp.Size)
	if err != nil {
		return nil, err
	}
	return &Receipt{
		Origin:         cp.Origin,
		Index:          index,
		Leaf:           leaf,
		LeafHash:       leaf.Hash(),
		InclusionProof: proof,
		Checkpoint:     cp.Note,
	}, nil
}

// Sync makes everything appended so far durable (see [Store.Sync]).
func (l *Log) Sync() error { return l.store.Sync() }

// Close closes the log and its store.
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err == nil {
		l.err = ErrClosed
	}
	return l.store.Close()
}
