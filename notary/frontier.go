package notary

import (
	"bytes"
	"fmt"

	"github.com/transparency-dev/merkle/compact"
)

// A Frontier is the right border of a log's Merkle tree at some size: the
// O(log size) hashes it takes to compute the root as more leaves follow.
// It lets a caller check leaves it got from elsewhere against a root before
// it appends any of them to a log. It is not safe for concurrent use.
type Frontier struct {
	log *Log
	rng *compact.Range
}

// Frontier returns the right border of the committed tree: a copy, which
// the log's own appends do not move.
func (l *Log) Frontier() (*Frontier, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return nil, l.err
	}
	hashes := make([][]byte, len(l.frontier.Hashes()))
	for i, h := range l.frontier.Hashes() {
		hashes[i] = bytes.Clone(h)
	}
	r, err := l.rf.NewRange(0, l.frontier.End(), hashes)
	if err != nil {
		return nil, fmt.Errorf("notary: copy the tree's right border: %w", err)
	}
	return &Frontier{log: l, rng: r}, nil
}

// Size is the number of leaves in the tree.
func (f *Frontier) Size() uint64 { return f.rng.End() }

// Add extends the tree with leaves.
func (f *Frontier) Add(leaves ...Leaf) error {
	for _, lf := range leaves {
		h := lf.Hash()
		if err := f.rng.Append(h[:], nil); err != nil {
			return fmt.Errorf("notary: extend the tree: %w", err)
		}
	}
	return nil
}

// Root returns the RFC 6962 root of the tree.
func (f *Frontier) Root() (Hash, error) { return f.log.root(f.rng) }
