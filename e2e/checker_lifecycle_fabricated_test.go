package e2e

import (
	"crypto/rand"
	"strings"
	"testing"

	"github.com/telenotary/telenotary/cluster/notaryapi"
	"github.com/telenotary/telenotary/notary"
)

// rxFabricated names the entries of goodLifecycle's history.
type rxFabricated struct {
	c1, c2                         notary.Commitment // prescriptions of 2 and 3 fills
	d1, d2, d3, d4, d5, d6, wrong  notary.Commitment // dispenses
	revocation                     notary.Commitment // of c2
	leafD1, leafD4, leafRevocation uint64
}

// goodLifecycle is good's history and then a prescription's life that the
// checker must accept: two prescriptions issued with allowances; three
// tills race for the first's two fills (one loses fill 1, then wins fill
// 2; one loses fill 2 and is told the prescription is fully dispensed);
// the second is dispensed once, then revoked, and a till is refused for
// it; a till without the bundle is refused for a wrong proof; a dispense
// under a fault never gets an answer and is not logged.
func (f *fabrication) goodLifecycle() (checkInput, rxFabricated) {
	f.t.Helper()
	in := f.good()
	var x rxFabricated
	for _, c := range []*notary.Commitment{&x.c1, &x.c2, &x.d1, &x.d2, &x.d3, &x.d4, &x.d5, &x.d6, &x.wrong} {
		rand.Read(c[:])
		in.submitted[*c] = true
	}
	x.revocation = notary.RevocationCommitment(x.c2)
	in.submitted[x.revocation] = true
	allowance := func(c notary.Commitment, fills int) notary.Commitment {
		var salt notary.Salt
		rand.Read(salt[:])
		a, err := notary.NewAllowance(salt, c, fills)
		if err != nil {
			f.t.Fatal(err)
		}
		return a.Commitment()
	}
	ts := f.base + 100
	first := uint64(len(in.leaves))
	in.leaves = append(in.leaves,
		notary.Leaf{Kind: notary.KindPrescription, Commitment: x.c1, Timestamp: ts},
		notary.Leaf{Kind: notary.KindAllowance, Commitment: allowance(x.c1, 2), Link: x.c1, Timestamp: ts},
		notary.Leaf{Kind: notary.KindPrescription, Commitment: x.c2, Timestamp: ts},
		notary.Leaf{Kind: notary.KindAllowance, Commitment: allowance(x.c2, 3), Link: x.c2, Timestamp: ts},
		notary.Leaf{Kind: notary.KindDispense, Commitment: x.d1, Link: x.c1, Timestamp: ts},
		notary.Leaf{Kind: notary.KindDispense, Commitment: x.d2, Link: x.c1, Timestamp: ts},
		notary.Leaf{Kind: notary.KindDispense, Commitment: x.d4, Link: x.c2, Timestamp: ts},
		notary.Leaf{Kind: notary.KindRevocation, Commitment: x.revocation, Link: x.c2, Timestamp: ts},
	)
	x.leafD1, x.leafD4, x.leafRevocation = first+4, first+6, first+7
	f.resign(&in)
	acked := func(op histOp, index uint64) histOp {
		op.ok, op.indexes = true, []uint64{index}
		if op.kind != opNotarize || len(op.commitments) == 1 {
			op.existingKnown = true
		}
		r := f.receipt(in.leaves, index, index+1)
		in.receipts = append(in.receipts, r)
		in.checkpoints = append(in.checkpoints, r.Checkpoint)
		return op
	}
	dispense := func(client int, d, link notary.Commitment, claim, call, ret int) histOp {
		return histOp{client: client, kind: opDispense, commitments: []notary.Commitment{d}, call: ms(call), ret: ms(ret), life: lifecycleOp{link: link, claim: claim}}
	}
	refused := func(op histOp, code string) histOp { op.life.refused = code; return op }
	won := func(op histOp, fill int, index uint64) histOp { op.life.fill = fill; return acked(op, index) }
	unknown := dispense(9, x.d6, x.c2, 2, 127, 0)
	unknown.ret = noReturn
	wrong := refused(dispense(8, x.wrong, x.c1, 2, 133, 134), notaryapi.ErrBadProof.Name)
	wrong.life.wrongProof = true
	in.ops = append(in.ops,
		acked(histOp{client: 0, kind: opNotarize, commitments: []notary.Commitment{x.c1}, call: ms(100), ret: ms(105)}, first),
		acked(histOp{client: 1, kind: opNotarize, commitments: []notary.Commitment{x.c2}, call: ms(101), ret: ms(106)}, first+2),
		won(dispense(6, x.d1, x.c1, 1, 110, 115), 1, first+4),
		refused(dispense(7, x.d2, x.c1, 1, 111, 114), notaryapi.ErrFillTaken.Name),
		won(dispense(7, x.d2, x.c1, 2, 116, 118), 2, first+5),
		refused(dispense(8, x.d3, x.c1, 2, 112, 119), notaryapi.ErrFillTaken.Name),
		refused(dispense(8, x.d3, x.c1, 2, 120, 121), notaryapi.ErrFullyDispensed.Name),
		won(dispense(6, x.d4, x.c2, 1, 122, 125), 1, first+6),
		unknown,
		acked(histOp{client: 0, kind: opRevoke, commitments: []notary.Commitment{x.revocation}, call: ms(126), ret: ms(130), life: lifecycleOp{link: x.c2}}, first+7),
		refused(dispense(7, x.d5, x.c2, 2, 131, 132), notaryapi.ErrRevoked.Name),
		wrong,
	)
	return in, x
}

// saying are the violations that contain s.
func saying(list []string, s string) []string {
	var out []string
	for _, v := range list {
		if strings.Contains(v, s) {
			out = append(out, v)
		}
	}
	return out
}

// TestCheckerAcceptsGoodLifecycle: a correct prescription's life passes
// every check, and the checker counts what it saw.
func TestCheckerAcceptsGoodLifecycle(t *testing.T) {
	f := newFabrication(t)
	in, _ := f.goodLifecycle()
	res := check(in)
	if v := res.violations(); len(v) > 0 {
		t.Fatalf("a correct history was rejected:\n%s", strings.Join(v, "\n"))
	}
	if res.prescriptionsTracked != 2 || res.dispenseLeaves != 3 || res.revocations != 1 || res.dispensesAcked != 3 || res.revocationsAcked != 1 {
		t.Errorf("the checker saw %d prescriptions with allowances, %d dispense leaves, %d revocations, %d and %d acknowledged; want 2, 3, 1, 3 and 1",
			res.prescriptionsTracked, res.dispenseLeaves, res.revocations, res.dispensesAcked, res.revocationsAcked)
	}
	if r := res.refused; r["fill_taken"] != 2 || r["fully_dispensed"] != 1 || r["revoked"] != 1 || r["bad_proof"] != 1 {
		t.Errorf("refusals %v", r)
	}
}

// TestCheckerRejectsBadLifecycles breaks goodLifecycle's history one way
// at a time; the checker must name each.
func TestCheckerRejectsBadLifecycles(t *testing.T) {
	tests := []struct {
		name   string
		break_ func(f *fabrication, in *checkInput, x rxFabricated)
		want   func(r *checkResult) []string
	}{{
		name: "over-dispense: a third dispense leaf of a prescription that allows two",
		break_: func(f *fabrication, in *checkInput, x rxFabricated) {
			var d notary.Commitment
			rand.Read(d[:])
			in.submitted[d] = true
			in.leaves = append(in.leaves, notary.Leaf{Kind: notary.KindDispense, Commitment: d, Link: x.c1, Timestamp: f.base + 140})
			f.resign(in)
		},
		want: func(r *checkResult) []string { return r.overDispensed },
	}, {
		name: "over-dispense: a till was told it won a third fill",
		break_: func(f *fabrication, in *checkInput, x rxFabricated) {
			in.leaves = append(in.leaves, notary.Leaf{Kind: notary.KindDispense, Commitment: x.d3, Link: x.c1, Timestamp: f.base + 140})
			f.resign(in)
			in.ops = append(in.ops, histOp{client: 8, kind: opDispense, commitments: []notary.Commitment{x.d3}, call: ms(135), ret: ms(140), ok: true,
				indexes: []uint64{uint64(len(in.leaves) - 1)}, existingKnown: true, life: lifecycleOp{link: x.c1, claim: 2, fill: 3}})
		},
		want: func(r *checkResult) []string { return r.overDispensed },
	}, {
		name: "a dispense leaf after the prescription's revocation",
		break_: func(f *fabrication, in *checkInput, x rxFabricated) {
			var d notary.Commitment
			rand.Read(d[:])
			in.submitted[d] = true
			in.leaves = append(in.leaves, notary.Leaf{Kind: notary.KindDispense, Commitment: d, Link: x.c2, Timestamp: f.base + 140})
			f.resign(in)
		},
		want: func(r *checkResult) []string { return r.afterRevocation },
	}, {
		name: "a dispense refused as revoked is in the log after the revocation",
		break_: func(f *fabrication, in *checkInput, x rxFabricated) {
			in.leaves = append(in.leaves, notary.Leaf{Kind: notary.KindDispense, Commitment: x.d5, Link: x.c2, Timestamp: f.base + 140})
			f.resign(in)
		},
		want: func(r *checkResult) []string { return saying(r.lifecycle, "refused every time it was sent") },
	}, {
		name: "two tills told they won the same fill",
		break_: func(f *fabrication, in *checkInput, x rxFabricated) {
			for i := range in.ops {
				if op := &in.ops[i]; op.kind == opDispense && op.ok && op.commitments[0] == x.d2 {
					op.life.fill = 1
				}
			}
		},
		want: func(r *checkResult) []string { return saying(r.lifecycle, "acknowledged to two dispenses") },
	}, {
		name: "an acknowledged dispense is not in the final log",
		break_: func(f *fabrication, in *checkInput, x rxFabricated) {
			in.leaves[x.leafD4].Commitment[0] ^= 1 // another dispense took its place
			in.submitted[in.leaves[x.leafD4].Commitment] = true
			f.resign(in)
			in.receipts = nil // they are for the leaves as they were
		},
		want: func(r *checkResult) []string { return saying(r.lifecycle, "the final log does not hold it") },
	}, {
		name: "a refusal as revoked of a prescription never revoked",
		break_: func(f *fabrication, in *checkInput, x rxFabricated) {
			for i := range in.ops {
				if op := &in.ops[i]; op.kind == opDispense && op.commitments[0] == x.d3 && op.life.refused == notaryapi.ErrFullyDispensed.Name {
					op.life.refused = notaryapi.ErrRevoked.Name
				}
			}
		},
		want: func(r *checkResult) []string { return saying(r.lifecycle, "holds no revocation") },
	}, {
		name: "a right proof refused as bad_proof",
		break_: func(f *fabrication, in *checkInput, x rxFabricated) {
			for i := range in.ops {
				if op := &in.ops[i]; op.kind == opDispense && op.commitments[0] == x.d5 {
					op.life.refused = notaryapi.ErrBadProof.Name
				}
			}
		},
		want: func(r *checkResult) []string { return saying(r.lifecycle, "but its proof opens the fill") },
	}, {
		name: "a dispense with a wrong proof is logged",
		break_: func(f *fabrication, in *checkInput, x rxFabricated) {
			for i := range in.ops {
				if op := &in.ops[i]; op.kind == opDispense && op.commitments[0] == x.wrong {
					op.ret = noReturn // and its answer was lost
					op.life.refused = ""
				}
			}
			in.leaves = append(in.leaves, notary.Leaf{Kind: notary.KindDispense, Commitment: x.wrong, Link: x.c1, Timestamp: f.base + 140})
			f.resign(in)
		},
		want: func(r *checkResult) []string {
			return saying(r.lifecycle, "only ever sent with a proof that does not open")
		},
	}, {
		name: "an allowance nobody gave with a prescription",
		break_: func(f *fabrication, in *checkInput, x rxFabricated) {
			var c notary.Commitment
			rand.Read(c[:])
			in.leaves = append(in.leaves, notary.Leaf{Kind: notary.KindAllowance, Commitment: notary.Allowance{Fills: 1}.Commitment(), Link: c, Timestamp: f.base + 140})
			f.resign(in)
		},
		want: func(r *checkResult) []string { return r.unexplained },
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFabrication(t)
			in, x := f.goodLifecycle()
			tt.break_(f, &in, x)
			res := check(in)
			if len(tt.want(res)) == 0 {
				t.Fatalf("the checker did not name the broken rule; it found:\n%s", strings.Join(res.violations(), "\n"))
			}
			t.Logf("rejected: %s", tt.want(res)[0])
		})
	}
}
