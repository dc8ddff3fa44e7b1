package e2e

import (
	"fmt"
	"slices"
	"time"

	"github.com/telenotary/telenotary/cluster/notaryapi"
	"github.com/telenotary/telenotary/notary"
)

// The lifecycle rules: what the log's state machine promises about a
// prescription's dispenses and revocation, judged from the final log and
// from what the tills were told.
//
// From the final log alone (every leaf, grouped by the prescription it
// links to):
//   - no prescription has more dispense leaves than its allowance allows
//     (an over-dispense);
//   - none has a dispense leaf after its revocation leaf;
//   - every allowance, dispense and revocation links to a prescription
//     logged before it; a dispense comes after the prescription's
//     allowance; a prescription has at most one allowance and one
//     revocation, and a revocation's commitment is the one derived from
//     the prescription's.
//
// From the history, against the final log:
//   - every acknowledged dispense and revocation is in the log, once, as a
//     leaf of its kind linked to its prescription;
//   - a dispense acknowledged as fill k is the k-th dispense leaf of its
//     prescription, and no two dispenses were acknowledged as the same
//     fill (exactly one wins a race);
//   - every refusal is borne out by the final log: revoked needs the
//     revocation, fully_dispensed every fill taken, fill_taken for fill k
//     at least k dispenses; a right proof is never refused as bad_proof,
//     nor an acknowledged prescription as unknown; a dispense refused
//     every time it was sent is not in the log, nor is one sent only with
//     a proof that does not open its fill.

// rxLog is one prescription's life in the final log: the index of each
// leaf that links to it.
type rxLog struct {
	prescription int64 // -1 when the log has no prescription leaf
	allowance    int64 // -1 when none
	fills        int
	dispenses    []uint64
	revocation   int64 // -1 when none
}

// lifecycleLog groups the final log's lifecycle leaves by the
// prescription they link to, and checks the rules that need nothing else.
func lifecycleLog(in checkInput, res *checkResult) map[notary.Commitment]*rxLog {
	rxs := map[notary.Commitment]*rxLog{}
	var links []notary.Commitment // in the order of their first lifecycle leaf
	prescribed := map[notary.Commitment]int64{}
	of := func(c notary.Commitment) *rxLog {
		r := rxs[c]
		if r == nil {
			r = &rxLog{prescription: -1, allowance: -1, revocation: -1}
			if i, ok := prescribed[c]; ok {
				r.prescription = i
			}
			rxs[c] = r
			links = append(links, c)
		}
		return r
	}
	bad := func(format string, args ...any) { res.lifecycle = append(res.lifecycle, fmt.Sprintf(format, args...)) }
	for i, l := range in.leaves {
		switch l.Kind {
		case notary.KindPrescription:
			if _, seen := prescribed[l.Commitment]; !seen {
				prescribed[l.Commitment] = int64(i)
			}
			continue
		case notary.KindAllowance, notary.KindDispense, notary.KindRevocation:
		default:
			continue
		}
		r := of(l.Link)
		if r.prescription < 0 {
			bad("leaf %d, a %s, links to %s, which is no prescription logged before it", i, l.Kind, l.Link)
		}
		switch l.Kind {
		case notary.KindAllowance:
			a, err := notary.ParseAllowance(l.Commitment)
			switch {
			case err != nil:
				bad("leaf %d, the allowance of %s: %v", i, l.Link, err)
			case r.allowance >= 0:
				bad("prescription %s has two allowances, at %d and %d", l.Link, r.allowance, i)
			default:
				r.allowance, r.fills = int64(i), a.Fills
			}
		case notary.KindDispense:
			r.dispenses = append(r.dispenses, uint64(i))
			if r.allowance < 0 {
				bad("leaf %d dispenses %s, which has no allowance before it", i, l.Link)
			}
			if r.revocation >= 0 {
				res.afterRevocation = append(res.afterRevocation, fmt.Sprintf("leaf %d dispenses %s, revoked at leaf %d", i, l.Link, r.revocation))
			}
		case notary.KindRevocation:
			switch {
			case r.revocation >= 0:
				bad("prescription %s has two revocations, at %d and %d", l.Link, r.revocation, i)
			case l.Commitment != notary.RevocationCommitment(l.Link):
				bad("leaf %d revokes %s with commitment %s, not the one derived from it", i, l.Link, l.Commitment)
			default:
				r.revocation = int64(i)
			}
		}
	}
	for _, c := range links {
		r := rxs[c]
		if n := len(r.dispenses); r.allowance >= 0 && n > r.fills {
			res.overDispensed = append(res.overDispensed, fmt.Sprintf("prescription %s allows %d fills; the log holds %d dispenses of it, at %v", c, r.fills, n, r.dispenses))
		}
		if r.allowance >= 0 {
			res.prescriptionsTracked++
		}
		res.dispenseLeaves += len(r.dispenses)
		if r.revocation >= 0 {
			res.revocations++
		}
	}
	return rxs
}

// checkLifecycle applies the lifecycle rules to the final log and to the
// history's dispenses and revocations.
func checkLifecycle(in checkInput, res *checkResult) {
	rxs := lifecycleLog(in, res)
	at := map[notary.Commitment][]uint64{} // every leaf's index, by commitment
	for i, l := range in.leaves {
		at[l.Commitment] = append(at[l.Commitment], uint64(i))
	}
	bad := func(format string, args ...any) { res.lifecycle = append(res.lifecycle, fmt.Sprintf(format, args...)) }
	res.refused = map[string]int{}

	// Every try of each dispense and revocation, by its commitment.
	type tries struct {
		ops                       []histOp
		acked, unknown, rightOnce bool
	}
	byEntry := map[notary.Commitment]*tries{}
	var order []notary.Commitment
	prescribedAt := map[notary.Commitment]time.Duration{} // acknowledgement of each prescription
	for _, op := range in.ops {
		if op.kind == opNotarize && op.ok {
			for _, c := range op.commitments {
				if t, ok := prescribedAt[c]; !ok || op.ret < t {
					prescribedAt[c] = op.ret
				}
			}
		}
		if op.kind != opDispense && op.kind != opRevoke {
			continue
		}
		c := op.commitments[0]
		t := byEntry[c]
		if t == nil {
			t = &tries{}
			byEntry[c] = t
			order = append(order, c)
		}
		t.ops = append(t.ops, op)
		switch {
		case op.ok:
			t.acked = true
		case op.life.refused != "":
			res.refused[op.life.refused]++
		default:
			t.unknown = true
		}
		if !op.life.wrongProof {
			t.rightOnce = true
		}
	}
	fillOf := map[notary.Commitment]map[int]notary.Commitment{} // acknowledged fills, by prescription
	for _, c := range order {
		t := byEntry[c]
		kind := t.ops[0].kind
		link := t.ops[0].life.link
		r := rxs[link]
		logged := at[c]
		if kind == opDispense && t.acked {
			res.dispensesAcked++
		}
		if kind == opRevoke && t.acked {
			res.revocationsAcked++
		}
		switch {
		case t.acked && len(logged) == 0:
			bad("the %s %s of %s was acknowledged; the final log does not hold it", kindName(kind), c, link)
			continue
		case len(logged) > 1:
			bad("the %s %s is in the log %d times, at %v", kindName(kind), c, len(logged), logged)
		case len(logged) == 1:
			l := in.leaves[logged[0]]
			want := notary.KindDispense
			if kind == opRevoke {
				want = notary.KindRevocation
			}
			if l.Kind != want || l.Link != link {
				bad("the %s %s of %s is leaf %d, a %s linked to %s", kindName(kind), c, link, logged[0], l.Kind, l.Link)
				continue
			}
		}
		if len(logged) > 0 && !t.acked && !t.unknown {
			bad("the %s %s of %s was refused every time it was sent (%s); the log holds it at %d", kindName(kind), c, link, refusals(t.ops), logged[0])
		}
		if len(logged) > 0 && !t.rightOnce {
			bad("the dispense %s of %s was only ever sent with a proof that does not open its fill; the log holds it at %d", c, link, logged[0])
		}
		for _, op := range t.ops {
			switch {
			case op.ok && kind == opDispense && op.life.fill > 0:
				k := op.life.fill
				if r == nil || k > len(r.dispenses) || r.dispenses[k-1] != logged[0] {
					bad("the dispense %s was acknowledged as fill %d of %s; it is not that prescription's dispense leaf %d (at %d)", c, k, link, k, logged[0])
				}
				if fillOf[link] == nil {
					fillOf[link] = map[int]notary.Commitment{}
				}
				if other, dup := fillOf[link][k]; dup && other != c {
					bad("fill %d of %s was acknowledged to two dispenses, %s and %s", k, link, other, c)
				}
				fillOf[link][k] = c
			case op.life.refused != "":
				if why := unborne(op, r, prescribedAt); why != "" {
					bad("client %d's %s %s of %s at %v was refused %s, %s", op.client, kindName(kind), c, link, op.call.Round(time.Millisecond), op.life.refused, why)
				}
			}
		}
	}
}

// unborne says why the final log does not bear out a refusal, or "".
func unborne(op histOp, r *rxLog, prescribedAt map[notary.Commitment]time.Duration) string {
	used, fills, revoked := 0, 0, false
	if r != nil {
		used, fills, revoked = len(r.dispenses), r.fills, r.revocation >= 0
	}
	acked, ok := prescribedAt[op.life.link]
	known := ok && acked < op.call
	switch op.life.refused {
	case notaryapi.ErrRevoked.Name:
		if !revoked {
			return "but the final log holds no revocation of it"
		}
	case notaryapi.ErrFullyDispensed.Name:
		if used < fills || fills == 0 {
			return fmt.Sprintf("but the final log holds %d dispenses of its %d fills", used, fills)
		}
	case notaryapi.ErrFillTaken.Name:
		if used < op.life.claim {
			return fmt.Sprintf("claiming fill %d, but the final log holds %d dispenses of it", op.life.claim, used)
		}
	case notaryapi.ErrBadProof.Name:
		if !op.life.wrongProof {
			return "but its proof opens the fill"
		}
	case notaryapi.ErrUnknownPrescription.Name:
		if known {
			return fmt.Sprintf("but the prescription was acknowledged at %v, before", acked.Round(time.Millisecond))
		}
	default:
		return "a refusal the API does not define"
	}
	return ""
}

// refusals lists the refusals of ops.
func refusals(ops []histOp) string {
	var out []string
	for _, op := range ops {
		if op.life.refused != "" {
			out = append(out, op.life.refused)
		}
	}
	return fmt.Sprint(slices.Compact(out))
}

// kindName names a lifecycle operation in messages.
func kindName(k opKind) string {
	if k == opRevoke {
		return "revocation"
	}
	return "dispense"
}
