package notary

import (
	"fmt"
	"sync"
)

// MaxAppState bounds the application state a store keeps with its head.
const MaxAppState = 256

// Head is the committed state of a log: how many leaves it holds, the Merkle
// root over them, and the state the application committed with the last
// batch (for a replicated log, the consensus index it applied).
type Head struct {
	Size     uint64
	Root     Hash
	AppState []byte
}

// A Store keeps a log's leaves, its stored Merkle hashes in the layout of
// golang.org/x/mod/sumdb/tlog (tlog.StoredHashIndex), and an index from
// commitment to leaf. A [Log] is its only writer; reads may come from any
// goroutine at any time. The package ships [MemoryStore]; the durable store
// is in the filestore sub-package.
type Store interface {
	// Head returns the committed head.
	Head() Head
	// Find returns the index of the leaf whose commitment is c, if any.
	Find(c Commitment) (index uint64, found bool, err error)
	// ReadLeaves fills dst with the leaves from index start on. All of them
	// must be below Head().Size.
	ReadLeaves(start uint64, dst []Leaf) error
	// ReadHashes returns the stored hashes with the given tlog stored-hash
	// indexes, all below tlog.StoredHashCount(Head().Size).
	ReadHashes(indexes []int64) ([]Hash, error)
	// Commit appends leaves and the stored hashes they add and makes head
	// the committed head, all or nothing. head.Size must equal the old size
	// plus len(leaves).
	Commit(leaves []Leaf, hashes []Hash, head Head) error
	// Sync makes everything committed so far durable.
	Sync() error
	// Close releases the store. Reads after Close fail.
	Close() error
}

// MemoryStore is a [Store] in memory, for tests and tools. Its memory grows
// with the log; use the filestore package for anything durable.
type MemoryStore struct {
	mu     sync.RWMutex // guards all below
	head   Head
	leaves []Leaf
	hashes []Hash
	index  map[Commitment]uint64
	closed bool
}

// NewMemoryStore returns an empty in-memory store.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{head: Head{Root: emptyRoot}, index: make(map[Commitment]uint64)}
}

// Head implements [Store].
func (m *MemoryStore) Head() Head {
	m.mu.RLock()
	defer m.mu.RUnlock()
	h := m.head
	h.AppState = append([]byte(nil), h.AppState...)
	return h
}

// Find implements [Store].
func (m *MemoryStore) Find(c Commitment) (uint64, bool, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return 0, false, ErrClosed
	}
	i, ok := m.index[c]
	return i, ok, nil
}

// ReadLeaves implements [Store].
func (m *MemoryStore) ReadLeaves(start uint64, dst []Leaf) error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return ErrClosed
	}
	if start > uint64(len(m.leaves)) || uint64(len(dst)) > uint64(len(m.leaves))-start {
		return fmt.Errorf("%w: leaves [%d, %d) of %d", ErrOutOfRange, start, start+uint64(len(dst)), len(m.leaves))
	}
	copy(dst, m.leaves[start:])
	return nil
}

// ReadHashes implements [Store].
func (m *MemoryStore) ReadHashes(indexes []int64) ([]Hash, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return nil, ErrClosed
	}
	out := make([]Hash, len(indexes))
	for i, x := range indexes {
		if x < 0 || x >= int64(len(m.hashes)) {
			return nil, fmt.Errorf("%w: stored hash %d of %d", ErrOutOfRange, x, len(m.hashes))
		}
		out[i] = m.hashes[x]
	}
	return out, nil
}

// Commit implements [Store].
func (m *MemoryStore) Commit(leaves []Leaf, hashes []Hash, head Head) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	if head.Size != m.head.Size+uint64(len(leaves)) {
		return fmt.Errorf("notary: commit of %d leaves moves size %d to %d", len(leaves), m.head.Size, head.Size)
	}
	for i, l := range leaves {
		m.index[l.Commitment] = m.head.Size + uint64(i)
	}
	m.leaves = append(m.leaves, leaves...)
	m.hashes = append(m.hashes, hashes...)
	m.head = Head{Size: head.Size, Root: head.Root, AppState: append([]byte(nil), head.AppState...)}
	return nil
}

// Sync implements [Store]; memory has nothing to sync.
func (m *MemoryStore) Sync() error { return nil }

// Close implements [Store].
func (m *MemoryStore) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	return nil
}
