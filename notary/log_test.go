package notary_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/telenotary/telenotary/notary"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"
	"golang.org/x/mod/sumdb/tlog"
)

// TestLogMatchesReference builds a log in uneven batches and checks every
// root, every inclusion proof at every size and every consistency proof
// against transparency-dev/merkle's reference tree, and verifies them with
// both that library and golang.org/x/mod/sumdb/tlog.
func TestLogMatchesReference(t *testing.T) {
	checkAgainstReference(t, newMemLog(t), 70)
}

// checkAgainstReference appends n leaves to l and compares it in full with
// the reference implementation.
func checkAgainstReference(t *testing.T, l *notary.Log, n int) {
	t.Helper()
	ref := testonly.New(rfc6962.DefaultHasher)
	for i := 0; i < n; {
		batch := min(1+i%7, n-i)
		leaves := make([]notary.Leaf, batch)
		for j := range leaves {
			leaves[j] = leafFor(i+j, baseTime+int64(i))
			h := leaves[j].Hash()
			ref.Append(h[:])
		}
		if _, err := l.Append(leaves, nil); err != nil {
			t.Fatal(err)
		}
		i += batch
		if got := l.Head(); got.Size != uint64(i) || !bytes.Equal(got.Root[:], ref.Hash()) {
			t.Fatalf("after %d leaves: head size %d root %s, reference root %x", i, got.Size, got.Root, ref.Hash())
		}
	}
	hasher := rfc6962.DefaultHasher
	for size := uint64(0); size <= uint64(n); size++ {
		root, err := l.RootAt(size)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(root[:], ref.HashAt(size)) {
			t.Fatalf("RootAt(%d) = %s, reference %x", size, root, ref.HashAt(size))
		}
		for index := uint64(0); index < size; index++ {
			p, err := l.InclusionProof(index, size)
			if err != nil {
				t.Fatal(err)
			}
			want, _ := ref.InclusionProof(index, size)
			if !equalProofs(p, want) {
				t.Fatalf("InclusionProof(%d, %d) differs from the reference", index, size)
			}
			leafHash := ref.LeafHash(index)
			if err := proof.VerifyInclusion(hasher, index, size, leafHash, byteSlices(p), root[:]); err != nil {
				t.Fatalf("merkle/proof rejects InclusionProof(%d, %d): %v", index, size, err)
			}
			if err := tlog.CheckRecord(toTlog(p), int64(size), tlog.Hash(root), int64(index), tlog.Hash(leafHash)); err != nil {
				t.Fatalf("tlog rejects InclusionProof(%d, %d): %v", index, size, err)
			}
		}
		for from := uint64(0); from <= size; from++ {
			p, err := l.ConsistencyProof(from, size)
			if err != nil {
				t.Fatal(err)
			}
			want, _ := ref.ConsistencyProof(from, size)
			if !equalProofs(p, want) {
				t.Fatalf("ConsistencyProof(%d, %d) differs from the reference", from, size)
			}
			fromRoot, _ := l.RootAt(from)
			if err := proof.VerifyConsistency(hasher, from, size, byteSlices(p), fromRoot[:], root[:]); err != nil {
				t.Fatalf("merkle/proof rejects ConsistencyProof(%d, %d): %v", from, size, err)
			}
			if from > 0 {
				if err := tlog.CheckTree(toTlog(p), int64(size), tlog.Hash(root), int64(from), tlog.Hash(fromRoot)); err != nil {
					t.Fatalf("tlog rejects ConsistencyProof(%d, %d): %v", from, size, err)
				}
			}
		}
	}
}

func equalProofs(got []notary.Hash, want [][]byte) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if !bytes.Equal(got[i][:], want[i]) {
			return false
		}
	}
	return true
}

func byteSlices(hs []notary.Hash) [][]byte {
	out := make([][]byte, len(hs))
	for i := range hs {
		out[i] = hs[i][:]
	}
	return out
}

func toTlog(hs []notary.Hash) []tlog.Hash {
	out := make([]tlog.Hash, len(hs))
	for i := range hs {
		out[i] = tlog.Hash(hs[i])
	}
	return out
}

func TestAppendDeduplicates(t *testing.T) {
	l := newMemLog(t)
	a, b, c := leafFor(1, baseTime), leafFor(2, baseTime), leafFor(3, baseTime+5)
	idx, err := l.Append([]notary.Leaf{a, b, a}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := []uint64{0, 1, 0}; !equalIndexes(idx, want) {
		t.Fatalf("indexes %v, want %v", idx, want)
	}
	// A retry of b with another kind and time keeps the original leaf.
	retry := b
	retry.Kind, retry.Timestamp = notary.KindConsent, baseTime+9
	idx, err = l.Append([]notary.Leaf{c, retry}, []byte("applied 2"))
	if err != nil {
		t.Fatal(err)
	}
	if want := []uint64{2, 1}; !equalIndexes(idx, want) {
		t.Fatalf("indexes %v, want %v", idx, want)
	}
	if got := l.Head(); got.Size != 3 || string(got.AppState) != "applied 2" {
		t.Fatalf("head %+v, want size 3 and the app state", got)
	}
	got, err := l.Leaf(1)
	if err != nil || got != b {
		t.Fatalf("Leaf(1) = %+v, %v; want the first submission %+v", got, err, b)
	}
	// Only duplicates: nothing appended, app state still committed.
	if _, err := l.Append([]notary.Leaf{a}, []byte("applied 3")); err != nil {
		t.Fatal(err)
	}
	if got := l.Head(); got.Size != 3 || string(got.AppState) != "applied 3" {
		t.Fatalf("head %+v, want size 3 with the new app state", got)
	}
	if i, ok, err := l.Find(c.Commitment); err != nil || !ok || i != 2 {
		t.Fatalf("Find = %d, %v, %v; want 2", i, ok, err)
	}
	if _, ok, _ := l.Find(leafFor(99, 0).Commitment); ok {
		t.Fatal("Find found a commitment never appended")
	}
}

func equalIndexes(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestAppendRejects(t *testing.T) {
	l := newMemLog(t)
	if _, err := l.Append([]notary.Leaf{leafFor(1, baseTime)}, nil); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		leaves []notary.Leaf
		state  []byte
	}{
		{"time going back", []notary.Leaf{leafFor(2, baseTime-1)}, nil},
		{"undefined kind", []notary.Leaf{{Kind: 9, Timestamp: baseTime}}, nil},
		{"negative time", []notary.Leaf{{Kind: notary.KindConsent, Timestamp: -1}}, nil},
		{"app state too big", nil, make([]byte, notary.MaxAppState+1)},
		{"batch too big", make([]notary.Leaf, notary.MaxBatch+1), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := l.Append(tc.leaves, tc.state); err == nil {
				t.Fatal("Append accepted it")
			}
			if got := l.Head().Size; got != 1 {
				t.Fatalf("size %d after a rejected append, want 1", got)
			}
		})
	}
	// The log still works after rejections.
	if _, err := l.Append([]notary.Leaf{leafFor(2, baseTime)}, nil); err != nil {
		t.Fatal(err)
	}
}

func TestProofBounds(t *testing.T) {
	l := newMemLog(t)
	if _, err := l.Append([]notary.Leaf{leafFor(1, baseTime), leafFor(2, baseTime)}, nil); err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"inclusion beyond size": second(l.InclusionProof(2, 2)),
		"size beyond log":       second(l.InclusionProof(0, 3)),
		"consistency backwards": second(l.ConsistencyProof(2, 1)),
		"consistency beyond":    second(l.ConsistencyProof(1, 3)),
		"root beyond":           second(l.RootAt(3)),
		"leaf beyond":           second(l.Leaf(2)),
	} {
		if !errors.Is(err, notary.ErrOutOfRange) {
			t.Errorf("%s: error %v, want ErrOutOfRange", name, err)
		}
	}
}

func second[T any](_ T, err error) error { return err }

func TestOpenDetectsWrongRoot(t *testing.T) {
	s := notary.NewMemoryStore()
	l, err := notary.Open(s)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append([]notary.Leaf{leafFor(1, baseTime)}, nil); err != nil {
		t.Fatal(err)
	}
	// A store whose head disagrees with its hashes.
	head := s.Head()
	head.Root[0] ^= 1
	bad := notary.NewMemoryStore()
	leaf, _ := l.Leaf(0)
	hashes, _ := s.ReadHashes([]int64{0})
	if err := bad.Commit([]notary.Leaf{leaf}, hashes, notary.Head{Size: 1, Root: head.Root}); err != nil {
		t.Fatal(err)
	}
	if _, err := notary.Open(bad); !errors.Is(err, notary.ErrCorrupt) {
		t.Fatalf("Open = %v, want ErrCorrupt", err)
	}
}

// TestFrontier extends a log's frontier with the leaves another log
// appended after the same prefix: it must give that log's root, and leave
// the log it came from as it was.
func TestFrontier(t *testing.T) {
	a, b := notary.NewMemoryStore(), notary.NewMemoryStore()
	la, err := notary.Open(a)
	if err != nil {
		t.Fatal(err)
	}
	lb, err := notary.Open(b)
	if err != nil {
		t.Fatal(err)
	}
	leaves := make([]notary.Leaf, 37)
	for i := range leaves {
		leaves[i] = notary.Leaf{Kind: notary.KindDocument, Commitment: notary.Commitment{byte(i), 7}, Timestamp: int64(1000 + i)}
	}
	if _, err := la.Append(leaves[:11], nil); err != nil {
		t.Fatal(err)
	}
	if _, err := lb.Append(leaves, nil); err != nil {
		t.Fatal(err)
	}
	fr, err := la.Frontier()
	if err != nil {
		t.Fatal(err)
	}
	if err := fr.Add(leaves[11:]...); err != nil {
		t.Fatal(err)
	}
	got, err := fr.Root()
	if err != nil {
		t.Fatal(err)
	}
	if fr.Size() != 37 || got != lb.Head().Root {
		t.Fatalf("frontier: %d leaves, root %s; want 37, %s", fr.Size(), got, lb.Head().Root)
	}
	if h := la.Head(); h.Size != 11 {
		t.Fatalf("extending the frontier moved the log to %d leaves", h.Size)
	}
	// A different leaf gives another root.
	fr, _ = la.Frontier()
	other := append([]notary.Leaf{}, leaves[11:]...)
	other[5].Timestamp++
	fr.Add(other...)
	if got, _ := fr.Root(); got == lb.Head().Root {
		t.Fatal("a changed leaf gave the same root")
	}
}
