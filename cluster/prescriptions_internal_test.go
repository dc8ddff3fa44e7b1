package cluster

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/hashicorp/raft"
	"github.com/telenotary/telenotary/cluster/notaryapi"
	"github.com/telenotary/telenotary/notary"
)

// lifecycleHistory returns raft entries (from index 2, after a genesis at
// 1) of issues, dispenses right and wrong, retries, revocations and plain
// entries that reuse their commitments, in a random order a leader could
// have proposed them.
func lifecycleHistory(t *testing.T, rng *rand.Rand, n int) []*raft.Log {
	t.Helper()
	type rx struct {
		salt  notary.Salt
		c     notary.Commitment
		a     notary.Allowance
		fills int // fills proposed so far
	}
	var issued []*rx
	commit := func(tag string, i int) notary.Commitment {
		return notary.Commitment(sha256.Sum256(fmt.Appendf(nil, "%s %d", tag, i)))
	}
	logs := []*raft.Log{}
	ts := int64(1795262400000)
	for i := range n {
		var entries []notaryapi.Entry
		switch op := rng.IntN(10); {
		case op < 2 || len(issued) == 0: // issue, sometimes twice in one command
			p := &rx{salt: notary.NewSalt(), c: commit("rx", i)}
			p.a, _ = notary.NewAllowance(p.salt, p.c, 1+rng.IntN(4))
			issued = append(issued, p)
			e := notaryapi.Entry{Kind: notary.KindPrescription, Commitment: p.c, Allowance: &p.a}
			entries = append(entries, e)
			if rng.IntN(3) == 0 {
				entries = append(entries, e)
			}
		case op < 7: // dispense: the next fill, a stale one, or one too far
			p := issued[rng.IntN(len(issued))]
			k := min(p.fills+1, p.a.Fills)
			if rng.IntN(4) == 0 {
				k = 1 + rng.IntN(p.a.Fills)
			}
			proof, err := notary.DispenseProof(p.salt, p.c, p.a, k)
			if err != nil {
				t.Fatal(err)
			}
			if rng.IntN(10) == 0 {
				proof[3] ^= 1
			}
			p.fills++
			d := commit("dispense", i)
			if rng.IntN(8) == 0 {
				d = commit("dispense", i-1) // a retry of the one before, or a plain entry's
			}
			entries = append(entries, notaryapi.Entry{Kind: notary.KindDispense, Commitment: d, Link: p.c, Fill: k, Proof: &proof})
		case op < 8: // revoke, right or wrong
			p := issued[rng.IntN(len(issued))]
			seed := notary.DispenseSeed(p.salt, p.c)
			if rng.IntN(4) == 0 {
				seed[0] ^= 1
			}
			entries = append(entries, notaryapi.Entry{Kind: notary.KindRevocation, Commitment: notary.RevocationCommitment(p.c), Link: p.c, Proof: &seed})
		default: // plain entries, one of them a future dispense's commitment
			entries = append(entries, notaryapi.Entry{Kind: notary.KindDocument, Commitment: commit("dispense", i+1)},
				notaryapi.Entry{Kind: notary.KindDocument, Commitment: commit("doc", i)})
		}
		ts += int64(rng.IntN(3))
		logs = append(logs, &raft.Log{Index: uint64(2 + i), Type: raft.LogCommand, Data: encodeNotarize(ts, entries)})
	}
	return logs
}

// outcome sums up what applying a raft entry answered: the leaf indexes,
// and the problem code of each refusal.
func outcome(r any) string {
	res := r.(*applyResult)
	if res.err != nil {
		return "error " + res.err.Error()
	}
	var b bytes.Buffer
	for i, idx := range res.indexes {
		if res.refused != nil && res.refused[i] != nil {
			fmt.Fprintf(&b, "refused %s; ", refusalCode(res.refused[i]))
			continue
		}
		fmt.Fprintf(&b, "%d; ", idx)
	}
	return b.String()
}

// TestLifecycleDeterministic: the same raft entries, applied one at a time,
// all at once, or in random groups (as raft hands them to different
// nodes), give the same answers, the same log and the same prescriptions'
// state; a reopened log derives that state again.
func TestLifecycleDeterministic(t *testing.T) {
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 18))
		history := lifecycleHistory(t, rng, 300)
		genesisCmd := &raft.Log{Index: 1, Type: raft.LogCommand, Data: encodeJSONCommand(cmdGenesis, genesis{ClusterID: "c", Origin: "o.test/log"})}
		run := func(group func() int) (*fsm, []string, string) {
			dir := t.TempDir()
			f := testFSM(t, dir)
			f.ApplyBatch([]*raft.Log{genesisCmd})
			var answers []string
			for i := 0; i < len(history); {
				n := min(group(), len(history)-i)
				for _, r := range f.ApplyBatch(history[i : i+n]) {
					answers = append(answers, outcome(r))
				}
				i += n
			}
			return f, answers, dir
		}
		one, a1, dir := run(func() int { return 1 })
		all, a2, _ := run(func() int { return len(history) })
		mixed, a3, _ := run(func() int { return 1 + rng.IntN(20) })
		for i := range a1 {
			if a1[i] != a2[i] || a1[i] != a3[i] {
				t.Fatalf("seed %d: entry %d answered %q one by one, %q all at once, %q in groups", seed, i+2, a1[i], a2[i], a3[i])
			}
		}
		h := one.log.Head()
		if !reflect.DeepEqual(all.log.Head(), h) || !reflect.DeepEqual(mixed.log.Head(), h) {
			t.Fatalf("seed %d: heads %+v, %+v, %+v", seed, h, all.log.Head(), mixed.log.Head())
		}
		if !reflect.DeepEqual(one.rx.m, all.rx.m) || !reflect.DeepEqual(one.rx.m, mixed.rx.m) {
			// The heads too: each FSM saw every proof.
			t.Fatalf("seed %d: the prescriptions' state differs", seed)
		}
		if len(one.rx.m) == 0 {
			t.Fatalf("seed %d: no prescription tracked", seed)
		}
		// A node that restarts halfway derives the state from its log,
		// without the chain heads, and answers the rest the same.
		dirH := t.TempDir()
		half := testFSM(t, dirH)
		half.ApplyBatch([]*raft.Log{genesisCmd})
		var a4 []string
		for _, r := range half.ApplyBatch(history[:len(history)/2]) {
			a4 = append(a4, outcome(r))
		}
		half.close()
		half = testFSM(t, dirH)
		for _, r := range half.ApplyBatch(history[len(history)/2:]) {
			a4 = append(a4, outcome(r))
		}
		for i := range a1 {
			if a1[i] != a4[i] {
				t.Fatalf("seed %d: entry %d answered %q without a restart, %q after one", seed, i+2, a1[i], a4[i])
			}
		}
		// The log alone gives the state back.
		one.close()
		again := testFSM(t, dir)
		if !reflect.DeepEqual(withoutHeads(again.rx.m), withoutHeads(all.rx.m)) {
			t.Fatalf("seed %d: the state derived from the reopened log differs", seed)
		}
	}
}

// FuzzNotarizeCommand: any bytes decode to a command or errBadCommand,
// never a panic, and a decoded command encodes back to the same bytes.
func FuzzNotarizeCommand(f *testing.F) {
	proof := notary.ChainValue{1, 2, 3}
	f.Add(encodeNotarize(1, []notaryapi.Entry{{Kind: notary.KindDocument, Commitment: notary.Commitment{1}}}))
	f.Add(encodeNotarize(2, []notaryapi.Entry{{Kind: notary.KindPrescription, Commitment: notary.Commitment{1}, Link: notary.Commitment{2}, Allowance: &notary.Allowance{Fills: 3}}}))
	f.Add(encodeNotarize(3, []notaryapi.Entry{{Kind: notary.KindDispense, Commitment: notary.Commitment{1}, Link: notary.Commitment{2}, Fill: 2, Proof: &proof}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		ts, leaves, extra, err := decodeNotarize(b)
		if err != nil {
			if !errors.Is(err, errBadCommand) {
				t.Fatalf("error %v", err)
			}
			return
		}
		entries := make([]notaryapi.Entry, len(leaves))
		for i, l := range leaves {
			entries[i] = notaryapi.Entry{Kind: l.Kind, Commitment: l.Commitment, Link: l.Link}
		}
		for _, x := range extra {
			entries[x.entry].Allowance, entries[x.entry].Fill, entries[x.entry].Proof = x.allowance, x.fill, x.proof
		}
		if again := encodeNotarize(ts, entries); !bytes.Equal(again, b) {
			// A link of 32 zero bytes is spelled without it; a count may
			// have a longer uvarint spelling. Both decode the same.
			ts2, leaves2, extra2, err := decodeNotarize(again)
			if err != nil || ts2 != ts || !reflect.DeepEqual(leaves2, leaves) || !reflect.DeepEqual(extra2, extra) {
				t.Fatalf("re-encoded %x decodes differently", again)
			}
		}
	})
}

// withoutHeads is the state without the cached chain heads, which a state
// derived from the log has only until a prescription's first dispense.
func withoutHeads(m rxMap) map[notary.Commitment]rxState {
	out := map[notary.Commitment]rxState{}
	for c, st := range m {
		cp := *st
		cp.head = chainHead{}
		out[c] = cp
	}
	return out
}
