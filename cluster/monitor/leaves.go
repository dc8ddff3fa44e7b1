package monitor

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"

	"github.com/telenotary/telenotary/cluster/notaryapi"
	"github.com/telenotary/telenotary/notary"
	"github.com/transparency-dev/merkle/compact"
	"golang.org/x/mod/sumdb/tlog"
)

// ErrMalformedPage is a page of leaves that is not one: not the JSON of a
// LeavesResponse, empty, or longer than asked. It says nothing of the log,
// only of the answer; a leaf that is malformed is a [*LeafError].
var ErrMalformedPage = errors.New("malformed page of leaves")

// LeafError is a leaf of a page that is not a well-formed leaf of the log
// at its place: JSON that does not decode, a kind that is not defined, a
// negative timestamp, or an index other than its place in the page.
type LeafError struct {
	Index uint64 // the leaf's place in the log
	Err   error
}

func (e *LeafError) Error() string { return fmt.Sprintf("leaf %d: %v", e.Index, e.Err) }

// Unwrap returns the cause.
func (e *LeafError) Unwrap() error { return e.Err }

// ParseLeaves decodes a page of GET /v1/leaves that answered a request for
// at most want leaves from index start. It returns the page's leaves, or a
// [*LeafError] naming the first malformed leaf, or an error wrapping
// [ErrMalformedPage].
func ParseLeaves(body []byte, start, want uint64) ([]notary.Leaf, error) {
	if want > math.MaxUint64-start {
		return nil, fmt.Errorf("%w: leaves [%d, %d+%d) are beyond any log", ErrMalformedPage, start, start, want)
	}
	var page struct {
		Leaves []json.RawMessage `json:"leaves"`
	}
	if err := json.Unmarshal(body, &page); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformedPage, err)
	}
	switch n := uint64(len(page.Leaves)); {
	case n == 0:
		return nil, fmt.Errorf("%w: no leaves from index %d", ErrMalformedPage, start)
	case n > want:
		return nil, fmt.Errorf("%w: %d leaves, %d asked for", ErrMalformedPage, n, want)
	}
	out := make([]notary.Leaf, len(page.Leaves))
	for i, raw := range page.Leaves {
		index := start + uint64(i)
		var li notaryapi.LeafInfo
		if err := json.Unmarshal(raw, &li); err != nil {
			return nil, &LeafError{Index: index, Err: err}
		}
		if li.Index != index {
			return nil, &LeafError{Index: index, Err: fmt.Errorf("field index is %d, want %d", li.Index, index)}
		}
		lf := notary.Leaf{Kind: li.Kind, Commitment: li.Commitment, Link: li.Link, Timestamp: li.Timestamp}
		if err := lf.Validate(); err != nil {
			return nil, &LeafError{Index: index, Err: err}
		}
		out[i] = lf
	}
	return out, nil
}

// tree is the right border of a Merkle tree built leaf by leaf: what it
// takes to know the root at its size, O(log size) hashes.
type tree struct {
	rng      *compact.Range
	lastTime int64 // timestamp of the newest leaf; 0 when empty
}

var rangeFactory = compact.RangeFactory{Hash: func(l, r []byte) []byte {
	h := tlog.NodeHash(tlog.Hash(l), tlog.Hash(r))
	return h[:]
}}

func newTree() *tree { return &tree{rng: rangeFactory.NewEmptyRange(0)} }

// size is the number of leaves appended.
func (t *tree) size() uint64 { return t.rng.End() }

// append adds a valid leaf.
func (t *tree) append(lf notary.Leaf) error {
	h := lf.Hash()
	t.lastTime = lf.Timestamp
	return t.rng.Append(h[:], nil)
}

// root is the RFC 6962 root of the leaves appended.
func (t *tree) root() (notary.Hash, error) {
	if t.rng.End() == 0 {
		return notary.EmptyRoot(), nil
	}
	h, err := t.rng.GetRootHash(nil)
	if err != nil {
		return notary.Hash{}, err
	}
	return notary.Hash(h), nil
}
