package notary_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/telenotary/telenotary/notary"
	"golang.org/x/mod/sumdb/tlog"
)

// damagingStore answers like the store it wraps except for one thing it
// alters: a leaf, a stored hash or what the index says of one commitment.
// It stands in for a disk with one flipped byte (the filestore tests flip
// real bytes of real files; this one walks every position of a small log).
type damagingStore struct {
	notary.Store
	leaf  int64 // the leaf read wrong, or -1
	hash  int64 // the stored hash read wrong, or -1
	index int64 // the leaf the commitment index loses, or -1
}

func (d *damagingStore) ReadLeaves(start uint64, dst []notary.Leaf) error {
	if err := d.Store.ReadLeaves(start, dst); err != nil {
		return err
	}
	if i := d.leaf - int64(start); d.leaf >= 0 && i >= 0 && i < int64(len(dst)) {
		dst[i].Timestamp ^= 1
	}
	return nil
}

func (d *damagingStore) ReadHashes(indexes []int64) ([]notary.Hash, error) {
	hs, err := d.Store.ReadHashes(indexes)
	for i, x := range indexes {
		if err == nil && x == d.hash {
			hs[i][7] ^= 0x20
		}
	}
	return hs, err
}

func (d *damagingStore) Find(c notary.Commitment) (uint64, bool, error) {
	i, found, err := d.Store.Find(c)
	if found && int64(i) == d.index {
		return 0, false, err
	}
	return i, found, err
}

func scrubAll(s *notary.Scrub, step int) error {
	for {
		n, err := s.Step(step)
		if err != nil || n == 0 {
			return err
		}
	}
}

// TestScrubFindsEveryDamage walks every leaf, every stored hash and every
// index entry of a log of 45 leaves (an uneven size, so the tree has a
// ragged right edge), damages each in turn and checks that a scrub, in
// steps of several sizes, reports it as damage naming the right thing.
func TestScrubFindsEveryDamage(t *testing.T) {
	mem := notary.NewMemoryStore()
	l, err := notary.Open(mem)
	if err != nil {
		t.Fatal(err)
	}
	const size = 45
	for i := 0; i < size; i += 5 {
		leaves := make([]notary.Leaf, 5)
		for j := range leaves {
			leaves[j] = leafFor(i+j, baseTime+int64(i))
		}
		if _, err := l.Append(leaves, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := scrubAll(l.NewScrub(), 7); err != nil {
		t.Fatalf("scrub of a sound log: %v", err)
	}

	type damage struct {
		name string
		d    damagingStore
		want string
	}
	var cases []damage
	for i := range int64(size) {
		cases = append(cases,
			damage{fmt.Sprintf("leaf %d", i), damagingStore{leaf: i, hash: -1, index: -1}, fmt.Sprintf("leaf %d ", i)},
			damage{fmt.Sprintf("index of leaf %d", i), damagingStore{leaf: -1, hash: -1, index: i}, fmt.Sprintf("leaf %d", i)})
	}
	for x := range tlog.StoredHashCount(size) {
		cases = append(cases, damage{fmt.Sprintf("stored hash %d", x), damagingStore{leaf: -1, hash: x, index: -1}, ""})
	}
	opened := 0
	for _, c := range cases {
		for _, step := range []int{1, 4, 64} {
			d := c.d
			d.Store = mem
			dl, err := notary.Open(&d)
			if err != nil {
				continue // found on open: the right border and the last leaf are checked there
			}
			opened++
			err = scrubAll(dl.NewScrub(), step)
			if !errors.Is(err, notary.ErrDamaged) {
				t.Fatalf("%s, steps of %d: scrub says %v; want damage found", c.name, step, err)
			}
			if c.want != "" && !strings.Contains(err.Error(), c.want) {
				t.Errorf("%s: %q does not name %q", c.name, err, c.want)
			}
		}
	}
	if opened < 2*len(cases) {
		t.Errorf("only %d of %d damaged logs opened: the walk mostly tested Open", opened, 3*len(cases))
	}
}

// TestScrubFollowsTheLog checks that a scrub stops at the committed size,
// picks up the leaves appended since, and stays where it failed.
func TestScrubFollowsTheLog(t *testing.T) {
	l := newMemLog(t)
	s := l.NewScrub()
	if n, err := s.Step(10); n != 0 || err != nil {
		t.Fatalf("scrub of an empty log: %d, %v", n, err)
	}
	if _, err := l.Append([]notary.Leaf{leafFor(0, baseTime), leafFor(1, baseTime), leafFor(2, baseTime)}, nil); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Step(2); n != 2 || err != nil || s.Checked() != 2 {
		t.Fatalf("first step: %d, %v, checked %d; want 2, nil, 2", n, err, s.Checked())
	}
	if n, err := s.Step(10); n != 1 || err != nil || s.Checked() != 3 {
		t.Fatalf("second step: %d, %v, checked %d; want 1, nil, 3", n, err, s.Checked())
	}
	if n, err := s.Step(10); n != 0 || err != nil {
		t.Fatalf("caught up: %d, %v; want 0, nil", n, err)
	}
	if _, err := l.Append([]notary.Leaf{leafFor(3, baseTime+1)}, nil); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Step(10); n != 1 || err != nil || s.Checked() != 4 {
		t.Fatalf("after an append: %d, %v, checked %d; want 1, nil, 4", n, err, s.Checked())
	}
}
