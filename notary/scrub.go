package notary

import (
	"bytes"
	"fmt"

	"github.com/transparency-dev/merkle/compact"
	"golang.org/x/mod/sumdb/tlog"
)

// A Scrub re-reads a log from its first leaf, a step at a time, and checks
// everything its store holds against everything else: every leaf against
// the stored hash made from it, every stored hash against the hashes below
// it, the commitment index against the leaves, and, once it reaches the
// committed size, the tree it rebuilt against the committed root. Random
// damage to any byte of a leaf, a stored hash or an index entry is found by
// the step that reads it. A Scrub reads only committed data, so it runs
// beside appends; it is not safe for concurrent use itself.
type Scrub struct {
	log  *Log
	tree *compact.Range // the tree of the leaves checked so far
	buf  []Leaf
}

// NewScrub returns a scrub of l that starts at its first leaf.
func (l *Log) NewScrub() *Scrub {
	return &Scrub{log: l, tree: l.rf.NewEmptyRange(0)}
}

// Checked returns how many leaves, from the first, the scrub has checked.
func (s *Scrub) Checked() uint64 { return s.tree.End() }

// Step checks up to n more leaves, never past the committed size, and
// returns how many it checked: 0 once it has caught up with the log. When it
// reaches the committed size it also checks the tree's root against the
// head's. Damage gives an error wrapping [ErrDamaged] that names the leaf,
// stored hash or index entry; a store that cannot be read gives its error.
// After an error the scrub stays where it stopped.
func (s *Scrub) Step(n int) (int, error) {
	head := s.log.store.Head()
	start := s.tree.End()
	if start > head.Size {
		return 0, fmt.Errorf("%w: the scrub checked %d leaves of a log of %d", ErrDamaged, start, head.Size)
	}
	n = int(min(uint64(n), head.Size-start))
	if cap(s.buf) < n {
		s.buf = make([]Leaf, n)
	}
	leaves := s.buf[:n]
	if err := s.log.store.ReadLeaves(start, leaves); err != nil {
		return 0, err
	}
	// The stored hashes the n leaves add, in the order tlog stores them,
	// which is the order the compact range makes them.
	first := tlog.StoredHashCount(int64(start))
	count := tlog.StoredHashCount(int64(start)+int64(n)) - first
	indexes := make([]int64, count)
	for i := range indexes {
		indexes[i] = first + int64(i)
	}
	stored, err := s.log.store.ReadHashes(indexes)
	if err != nil {
		return 0, err
	}
	// Work on a copy, so a failed step leaves the scrub where it was.
	hashes := make([][]byte, len(s.tree.Hashes()))
	for i, h := range s.tree.Hashes() {
		hashes[i] = bytes.Clone(h)
	}
	tree, err := s.log.rf.NewRange(0, start, hashes)
	if err != nil {
		return 0, err
	}
	next := first
	var damage error
	visit := func(id compact.NodeID, h []byte) {
		if damage == nil && !bytes.Equal(stored[next-first][:], h) {
			damage = fmt.Errorf("%w: stored hash %d (level %d, node %d) is not the hash of what lies below it", ErrDamaged, next, id.Level, id.Index)
		}
		next++
	}
	for i, lf := range leaves {
		index := start + uint64(i)
		got, found, err := s.log.store.Find(lf.Commitment)
		switch {
		case err != nil:
			return 0, err
		case !found || got != index:
			return 0, fmt.Errorf("%w: the commitment index does not lead to leaf %d", ErrDamaged, index)
		}
		h := lf.Hash()
		if h != stored[tlog.StoredHashIndex(0, int64(index))-first] {
			return 0, fmt.Errorf("%w: leaf %d does not match the hash stored when it was appended", ErrDamaged, index)
		}
		if err := tree.Append(h[:], visit); err != nil {
			return 0, err
		}
		if damage != nil {
			return 0, damage
		}
	}
	if tree.End() == head.Size {
		if r, err := s.log.root(tree); err != nil || r != head.Root {
			return 0, fmt.Errorf("%w: the %d leaves give root %s, the head says %s", ErrDamaged, head.Size, r, head.Root)
		}
	}
	s.tree = tree
	return n, nil
}
