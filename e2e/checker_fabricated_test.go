package e2e

import (
	"crypto/rand"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/telenotary/telenotary/notary"
	"golang.org/x/mod/sumdb/note"
)

// fabrication builds small histories for the checker in-process, with the
// notary core's real signatures and proofs, so that a test can break one
// thing and see the checker name it.
type fabrication struct {
	t      *testing.T
	signer note.Signer
	policy notary.Policy
	base   int64 // the first leaf's timestamp
}

const fabricatedOrigin = "checker.telenotary.test/log"

func newFabrication(t *testing.T) *fabrication {
	t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, "checker-test")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	verifier, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return &fabrication{t: t, signer: signer, policy: notary.Policy{Verifiers: []note.Verifier{verifier}, Origin: fabricatedOrigin}, base: time.Now().UnixMilli()}
}

// sign signs the checkpoint of the first size leaves.
func (f *fabrication) sign(leaves []notary.Leaf, size uint64, ts int64) notary.SignedCheckpoint {
	f.t.Helper()
	m := &merkleLog{}
	for _, l := range leaves[:size] {
		if err := m.add(l); err != nil {
			f.t.Fatal(err)
		}
	}
	root, err := m.root(size)
	if err != nil {
		f.t.Fatal(err)
	}
	sc, err := notary.Checkpoint{Origin: fabricatedOrigin, Size: size, Root: root, Timestamp: ts}.Sign(f.signer)
	if err != nil {
		f.t.Fatal(err)
	}
	return sc
}

// receipt proves leaf index into the checkpoint of the first size leaves.
func (f *fabrication) receipt(leaves []notary.Leaf, index, size uint64) *notary.Receipt {
	f.t.Helper()
	m := &merkleLog{}
	for _, l := range leaves[:size] {
		m.add(l)
	}
	proof, err := m.inclusion(index, size)
	if err != nil {
		f.t.Fatal(err)
	}
	cp := f.sign(leaves, size, leaves[size-1].Timestamp)
	return &notary.Receipt{Origin: fabricatedOrigin, Index: index, Leaf: leaves[index], LeafHash: leaves[index].Hash(), InclusionProof: proof, Checkpoint: cp.Note}
}

// ms is a time in a fabricated history.
func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

// good returns a history the checker must accept: three clients notarize
// twelve commitments one at a time and in a batch of two, one request
// fails and its retry finds it logged, a consultation logs a leaf of its
// own in between, and lookups find receipts or, in time, nothing.
func (f *fabrication) good() checkInput {
	f.t.Helper()
	in := checkInput{submitted: map[notary.Commitment]bool{}, foreign: map[notary.Commitment]bool{}, policy: f.policy,
		start: time.UnixMilli(f.base), clockBound: time.Second}
	var cs []notary.Commitment
	for i := range 13 {
		var c notary.Commitment
		rand.Read(c[:])
		cs = append(cs, c)
		leaf := notary.Leaf{Kind: notary.KindPrescription, Commitment: c, Timestamp: f.base + int64(i/2)*10}
		in.leaves = append(in.leaves, leaf)
		if i == 6 {
			in.foreign[c] = true // a consultation's entry
		} else {
			in.submitted[c] = true
		}
	}
	size := uint64(len(in.leaves))
	ack := func(client int, call, ret time.Duration, idx ...uint64) {
		op := histOp{client: client, kind: opNotarize, call: call, ret: ret, ok: true, indexes: idx}
		if len(idx) == 1 {
			op.existingKnown = true
		}
		for _, i := range idx {
			op.commitments = append(op.commitments, cs[i])
			r := f.receipt(in.leaves, i, i+1)
			in.receipts = append(in.receipts, r)
			in.checkpoints = append(in.checkpoints, r.Checkpoint)
		}
		in.ops = append(in.ops, op)
	}
	// Leaves 0-3 one by one, two clients overlapping.
	ack(0, ms(0), ms(10), 0)
	ack(1, ms(5), ms(15), 1)
	ack(0, ms(12), ms(20), 2)
	ack(2, ms(14), ms(30), 3)
	// A batch of two.
	ack(1, ms(31), ms(40), 4, 5)
	// Leaf 6 is the consultation's; leaf 7 goes in by a request that
	// fails, and its retry is told it exists.
	in.ops = append(in.ops, histOp{client: 0, kind: opNotarize, commitments: cs[7:8], call: ms(41), ret: ms(60)})
	ack(0, ms(55), ms(60), 7)
	in.ops[len(in.ops)-1].existing = true
	// Leaves 8-12, with lookups around them.
	ack(2, ms(61), ms(70), 8)
	in.ops = append(in.ops,
		histOp{client: 3, kind: opLookup, commitments: cs[8:9], call: ms(65), ret: ms(66), ok: true},                                    // before it was in: not found
		histOp{client: 3, kind: opLookup, commitments: cs[3:4], call: ms(67), ret: ms(68), ok: true, found: true, indexes: []uint64{3}}, // found
		histOp{client: 3, kind: opLookup, commitments: cs[8:9], call: ms(66), ret: ms(75), ok: true, found: true, indexes: []uint64{8}}, // found while in flight
		histOp{client: 4, kind: opLookup, commitments: []notary.Commitment{{1, 2, 3}}, call: ms(70), ret: ms(72), ok: true},             // never submitted
	)
	ack(0, ms(80), ms(90), 9)
	ack(1, ms(80), ms(95), 10)
	ack(2, ms(91), ms(99), 11, 12)
	// Nodes' checkpoints polled at sizes 0 and 6, and the final one.
	in.checkpoints = append(in.checkpoints, f.sign(in.leaves, 0, 0).Note, f.sign(in.leaves, 6, in.leaves[5].Timestamp).Note)
	in.final = f.sign(in.leaves, size, in.leaves[size-1].Timestamp).Note
	return in
}

// resign signs a new final checkpoint over in's (changed) leaves.
func (f *fabrication) resign(in *checkInput) {
	n := uint64(len(in.leaves))
	in.final = f.sign(in.leaves, n, in.leaves[n-1].Timestamp).Note
}

// TestCheckerAcceptsGoodHistory: a correct history passes every check.
func TestCheckerAcceptsGoodHistory(t *testing.T) {
	f := newFabrication(t)
	res := check(f.good())
	if v := res.violations(); len(v) > 0 {
		t.Fatalf("a correct history was rejected:\n%s", strings.Join(v, "\n"))
	}
	if res.acked != 12 || res.lookups != 4 || res.parts < 3 {
		t.Errorf("checked %d acknowledged commitments, %d lookups in %d parts; want 12, 4 and at least 3", res.acked, res.lookups, res.parts)
	}
}

// TestCheckerRejectsBadHistories feeds the checker histories that each
// break one promise, and checks that it names that promise.
func TestCheckerRejectsBadHistories(t *testing.T) {
	tests := []struct {
		name   string
		break_ func(f *fabrication, in *checkInput)
		// which list must hold a violation
		want func(r *checkResult) []string
	}{{
		name: "lost write: an acknowledged entry is missing from the final log",
		break_: func(f *fabrication, in *checkInput) {
			in.leaves = slices.Delete(in.leaves, 9, 10)
			f.resign(in)
		},
		want: func(r *checkResult) []string { return r.lost },
	}, {
		name: "lost write: the linearizability check sees it too",
		break_: func(f *fabrication, in *checkInput) {
			in.leaves = slices.Delete(in.leaves, 9, 10)
			f.resign(in)
		},
		want: func(r *checkResult) []string { return r.linearizability },
	}, {
		name: "forked checkpoint: two roots for one size",
		break_: func(f *fabrication, in *checkInput) {
			fork := slices.Clone(in.leaves)
			rand.Read(fork[3].Commitment[:])
			in.checkpoints = append(in.checkpoints, f.sign(fork, 5, fork[4].Timestamp).Note)
		},
		want: func(r *checkResult) []string { return r.inconsistent },
	}, {
		name: "a checkpoint beyond the final log (its entries rolled back)",
		break_: func(f *fabrication, in *checkInput) {
			longer := append(slices.Clone(in.leaves), notary.Leaf{Kind: notary.KindPrescription, Commitment: notary.Commitment{9}, Timestamp: f.base + 100})
			in.checkpoints = append(in.checkpoints, f.sign(longer, uint64(len(longer)), f.base+100).Note)
		},
		want: func(r *checkResult) []string { return r.inconsistent },
	}, {
		name: "a consistent lookup misses a commitment acknowledged before it",
		break_: func(f *fabrication, in *checkInput) {
			in.ops = append(in.ops, histOp{client: 4, kind: opLookup, commitments: in.ops[3].commitments, consistent: true, call: ms(100), ret: ms(101), ok: true})
		},
		want: func(r *checkResult) []string { return r.staleConsistent },
	}, {
		name: "timestamp going backwards with the index",
		break_: func(f *fabrication, in *checkInput) {
			in.leaves[10].Timestamp = in.leaves[9].Timestamp - 1
			f.resign(in)
		},
		want: func(r *checkResult) []string { return r.timestamps },
	}, {
		name: "a leaf stamped a year after its request was acknowledged (a leader's clock ahead)",
		break_: func(f *fabrication, in *checkInput) {
			in.leaves[12].Timestamp = f.base + (365 * 24 * time.Hour).Milliseconds()
			f.resign(in)
		},
		want: func(r *checkResult) []string { return r.clock },
	}, {
		name: "leaves stamped an hour before their requests were sent (a leader's clock behind)",
		break_: func(f *fabrication, in *checkInput) {
			for i := range in.leaves {
				in.leaves[i].Timestamp -= time.Hour.Milliseconds()
			}
			f.resign(in)
		},
		want: func(r *checkResult) []string { return r.clock },
	}, {
		name: "checkpoint timestamp going backwards with the size",
		break_: func(f *fabrication, in *checkInput) {
			in.checkpoints = append(in.checkpoints, f.sign(in.leaves, 8, f.base-1000).Note)
		},
		want: func(r *checkResult) []string { return r.timestamps },
	}, {
		name: "duplicate: a commitment logged twice",
		break_: func(f *fabrication, in *checkInput) {
			dup := in.leaves[2]
			dup.Timestamp = in.leaves[len(in.leaves)-1].Timestamp
			in.leaves = append(in.leaves, dup)
			f.resign(in)
		},
		want: func(r *checkResult) []string { return r.duplicates },
	}, {
		name: "duplicate: two receipts at two indexes for one commitment",
		break_: func(f *fabrication, in *checkInput) {
			dup := in.leaves[2]
			dup.Timestamp = in.leaves[len(in.leaves)-1].Timestamp
			in.leaves = append(in.leaves, dup)
			f.resign(in)
			// The retry of an acknowledged request got the second copy.
			in.ops = append(in.ops, histOp{client: 5, kind: opNotarize, commitments: []notary.Commitment{dup.Commitment}, call: ms(100), ret: ms(101), ok: true, indexes: []uint64{13}})
		},
		want: func(r *checkResult) []string { return r.linearizability },
	}, {
		name: "real-time order: a later request got an earlier index",
		break_: func(f *fabrication, in *checkInput) {
			// Leaf 9's request now ends before leaf 8's begins.
			for i := range in.ops {
				if in.ops[i].kind == opNotarize && in.ops[i].ok && in.ops[i].indexes[0] == 9 {
					in.ops[i].call, in.ops[i].ret = ms(50), ms(54)
				}
			}
		},
		want: func(r *checkResult) []string { return r.linearizability },
	}, {
		name: "a receipt found before its commitment was submitted",
		break_: func(f *fabrication, in *checkInput) {
			in.ops = append(in.ops, histOp{client: 4, kind: opLookup, commitments: []notary.Commitment{in.leaves[11].Commitment}, call: ms(73), ret: ms(74), ok: true, found: true, indexes: []uint64{11}})
		},
		want: func(r *checkResult) []string { return r.linearizability },
	}, {
		name: "an answer that says new for an entry logged before",
		break_: func(f *fabrication, in *checkInput) {
			// A resubmission of leaf 3, after it was acknowledged.
			in.ops = append(in.ops, histOp{client: 4, kind: opNotarize, commitments: []notary.Commitment{in.leaves[3].Commitment}, call: ms(35), ret: ms(36), ok: true, indexes: []uint64{3}, existingKnown: true})
		},
		want: func(r *checkResult) []string { return r.linearizability },
	}, {
		name: "a receipt whose proof does not lead to its checkpoint",
		break_: func(f *fabrication, in *checkInput) {
			r := *in.receipts[3]
			r.InclusionProof = slices.Clone(r.InclusionProof)
			r.InclusionProof[0][0] ^= 1
			in.receipts[3] = &r
		},
		want: func(r *checkResult) []string { return r.receipts },
	}, {
		name: "a leaf nobody submitted",
		break_: func(f *fabrication, in *checkInput) {
			in.leaves = append(in.leaves, notary.Leaf{Kind: notary.KindDocument, Commitment: notary.Commitment{7}, Timestamp: in.leaves[len(in.leaves)-1].Timestamp})
			f.resign(in)
		},
		want: func(r *checkResult) []string { return r.unexplained },
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFabrication(t)
			in := f.good()
			tt.break_(f, &in)
			res := check(in)
			if len(tt.want(res)) == 0 {
				t.Fatalf("the checker did not name the broken promise; it found:\n%s", strings.Join(res.violations(), "\n"))
			}
			t.Logf("rejected: %s", tt.want(res)[0])
		})
	}
}
