package e2e

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/telenotary/telenotary/notary"
	"golang.org/x/mod/sumdb/tlog"
)

// checkInput is everything the checker judges: the clients' history, and
// the log as the cluster holds it once every fault has healed.
type checkInput struct {
	ops         []histOp
	receipts    []*notary.Receipt // every receipt a client got
	checkpoints [][]byte          // every signed checkpoint note seen
	// submitted are the commitments the history's clients sent; foreign
	// those others (consultations) had logged.
	submitted, foreign map[notary.Commitment]bool
	// leaves is the whole final log, and final its signed checkpoint.
	leaves []notary.Leaf
	final  []byte
	policy notary.Policy
	// linearizeTimeout bounds porcupine on each part of the history.
	linearizeTimeout time.Duration
	// start is the wall-clock time the history's times count from, and
	// clockBound how far a leaf's timestamp may be from the time its
	// request was in flight.
	start      time.Time
	clockBound time.Duration
}

// checkResult is what the checker found. Each list holds violations, one
// sentence each; empty lists mean the history passed.
type checkResult struct {
	ops, parts, acked, lookups, staleReads, checkpoints int
	consistentLookups                                   int
	longestPart, receiptsChecked                        int

	linearizability []string // porcupine found no linearization (or timed out)
	lost            []string // an acknowledged receipt that the final log contradicts
	receipts        []string // a receipt that does not verify
	inconsistent    []string // a checkpoint that is not a prefix of the final log
	timestamps      []string // a leaf or checkpoint timestamp going backwards
	clock           []string // a leaf stamped outside the time its request was in flight
	duplicates      []string // a commitment logged twice
	unexplained     []string // a leaf nobody submitted, or a final checkpoint that does not match the log
	staleConsistent []string // a consistent lookup that missed a commitment acknowledged before it

	// The lifecycle rules (checker_lifecycle_test.go).
	overDispensed   []string // a prescription with more dispense leaves than its allowance
	afterRevocation []string // a dispense leaf after its prescription's revocation leaf
	lifecycle       []string // any other broken lifecycle rule
	// What the lifecycle check saw: prescriptions with an allowance in
	// the log, their dispense and revocation leaves, the dispenses and
	// revocations acknowledged, and the tries refused, by code.
	prescriptionsTracked, dispenseLeaves, revocations int
	dispensesAcked, revocationsAcked                  int
	refused                                           map[string]int
}

// violations returns every violation, each prefixed by its check.
func (r *checkResult) violations() []string {
	var out []string
	for _, c := range []struct {
		name string
		list []string
	}{
		{"linearizability", r.linearizability}, {"lost", r.lost}, {"receipt", r.receipts},
		{"checkpoint", r.inconsistent}, {"timestamp", r.timestamps}, {"clock", r.clock}, {"duplicate", r.duplicates}, {"log", r.unexplained},
		{"consistent read", r.staleConsistent},
		{"over-dispensed", r.overDispensed}, {"dispensed after revocation", r.afterRevocation}, {"lifecycle", r.lifecycle},
	} {
		for _, v := range c.list {
			out = append(out, c.name+": "+v)
		}
	}
	return out
}

// check runs every check over in.
func check(in checkInput) *checkResult {
	res := &checkResult{}
	log, final, ok := checkFinalLog(in, res)
	if !ok {
		return res
	}
	checkCheckpoints(in, res, log, final)
	checkReceipts(in, res, final)
	checkClock(in, res)
	checkLifecycle(in, res)
	checkLinearizable(in, res)
	return res
}

// checkClock checks that every leaf the history's clients submitted (a
// notarization, a dispense or a revocation) is stamped with the true time: no earlier than its first request was sent
// and no later than its first acknowledgement came, within clockBound. A
// leader whose clock is off must not stamp (the time guard).
func checkClock(in checkInput, res *checkResult) {
	first, acked := map[notary.Commitment]time.Duration{}, map[notary.Commitment]time.Duration{}
	for _, op := range in.ops {
		if op.kind != opNotarize && op.kind != opDispense && op.kind != opRevoke {
			continue
		}
		for _, c := range op.commitments {
			if t, ok := first[c]; !ok || op.call < t {
				first[c] = op.call
			}
			if t, ok := acked[c]; op.ok && op.ret != noReturn && (!ok || op.ret < t) {
				acked[c] = op.ret
			}
		}
	}
	for i, l := range in.leaves {
		sent, ok := first[l.Commitment]
		if !ok {
			continue // a consultation's, or unexplained (checked elsewhere)
		}
		ts := time.UnixMilli(l.Timestamp)
		if lo := in.start.Add(sent - in.clockBound); ts.Before(lo) {
			res.clock = append(res.clock, fmt.Sprintf("leaf %d is stamped %s, %v before its request was sent", i, ts.UTC().Format(time.RFC3339Nano), in.start.Add(sent).Sub(ts)))
		}
		if ret, ok := acked[l.Commitment]; ok {
			if hi := in.start.Add(ret + in.clockBound); ts.After(hi) {
				res.clock = append(res.clock, fmt.Sprintf("leaf %d is stamped %s, %v after its request was acknowledged", i, ts.UTC().Format(time.RFC3339Nano), ts.Sub(in.start.Add(ret))))
			}
		}
	}
}

// merkleLog is the final log's Merkle tree, rebuilt from its leaves with
// tlog as they are, even when they break the log's rules (a fabricated
// history's duplicate or backwards timestamp), so it hashes to the root the
// cluster signed.
type merkleLog struct {
	hashes []tlog.Hash // tlog's stored hashes
	size   int64
}

func (m *merkleLog) reader() tlog.HashReader {
	return tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(indexes))
		for i, x := range indexes {
			if x < 0 || x >= int64(len(m.hashes)) {
				return nil, fmt.Errorf("stored hash %d of %d", x, len(m.hashes))
			}
			out[i] = m.hashes[x]
		}
		return out, nil
	})
}

// add appends a leaf.
func (m *merkleLog) add(l notary.Leaf) error {
	hs, err := tlog.StoredHashesForRecordHash(m.size, tlog.Hash(l.Hash()), m.reader())
	if err != nil {
		return err
	}
	m.hashes = append(m.hashes, hs...)
	m.size++
	return nil
}

// root is the root of the tree of the first n leaves.
func (m *merkleLog) root(n uint64) (notary.Hash, error) {
	h, err := tlog.TreeHash(int64(n), m.reader())
	return notary.Hash(h), err
}

// consistency is the proof that the tree of from leaves is a prefix of the
// tree of to leaves.
func (m *merkleLog) consistency(from, to uint64) ([]notary.Hash, error) {
	p, err := tlog.ProveTree(int64(to), int64(from), m.reader())
	if err != nil {
		return nil, err
	}
	out := make([]notary.Hash, len(p))
	for i := range p {
		out[i] = notary.Hash(p[i])
	}
	return out, nil
}

// inclusion is the proof of leaf index in the tree of size leaves.
func (m *merkleLog) inclusion(index, size uint64) ([]notary.Hash, error) {
	p, err := tlog.ProveRecord(int64(size), int64(index), m.reader())
	if err != nil {
		return nil, err
	}
	out := make([]notary.Hash, len(p))
	for i := range p {
		out[i] = notary.Hash(p[i])
	}
	return out, nil
}

// checkFinalLog rebuilds the final log from its leaves and checks it
// against the final checkpoint: the same size and root, no commitment
// twice, timestamps that never decrease with the index, and only
// commitments someone submitted (an allowance leaf, which the cluster
// logs, only for a prescription someone submitted).
func checkFinalLog(in checkInput, res *checkResult) (*merkleLog, notary.Checkpoint, bool) {
	log := &merkleLog{}
	at := make(map[notary.Commitment]uint64, len(in.leaves))
	explained := map[notary.Commitment]bool{} // prescriptions someone submitted, as far as read
	var last int64
	for i, l := range in.leaves {
		if prev, dup := at[l.Commitment]; dup {
			res.duplicates = append(res.duplicates, fmt.Sprintf("commitment %s is at index %d and at %d", l.Commitment, prev, i))
		} else {
			at[l.Commitment] = uint64(i)
		}
		if l.Timestamp < last {
			res.timestamps = append(res.timestamps, fmt.Sprintf("leaf %d has timestamp %d, before its predecessor's %d", i, l.Timestamp, last))
		}
		last = l.Timestamp
		switch {
		case l.Kind == notary.KindAllowance:
			// The cluster logs it with its prescription, from the
			// allowance given with it.
			if !explained[l.Link] {
				res.unexplained = append(res.unexplained, fmt.Sprintf("leaf %d is an allowance of %s, which nobody submitted before it", i, l.Link))
			}
		case !in.submitted[l.Commitment] && !in.foreign[l.Commitment]:
			res.unexplained = append(res.unexplained, fmt.Sprintf("leaf %d holds commitment %s, which nobody submitted", i, l.Commitment))
		case l.Kind == notary.KindPrescription:
			explained[l.Commitment] = true
		}
		if err := log.add(l); err != nil {
			res.unexplained = append(res.unexplained, fmt.Sprintf("leaf %d: %v", i, err))
			return nil, notary.Checkpoint{}, false
		}
	}
	sc, err := notary.OpenCheckpoint(in.final, in.policy)
	if err != nil {
		res.unexplained = append(res.unexplained, fmt.Sprintf("the final checkpoint: %v", err))
		return nil, notary.Checkpoint{}, false
	}
	final := sc.Checkpoint
	root, err := log.root(uint64(len(in.leaves)))
	switch {
	case err != nil:
		res.unexplained = append(res.unexplained, err.Error())
		return nil, notary.Checkpoint{}, false
	case final.Size != uint64(len(in.leaves)) || final.Root != root:
		res.unexplained = append(res.unexplained, fmt.Sprintf("the final checkpoint is for size %d, root %s; the %d leaves read hash to %s", final.Size, final.Root, len(in.leaves), root))
		return nil, notary.Checkpoint{}, false
	}
	return log, final, true
}

// checkCheckpoints checks every checkpoint seen against the final one: its
// signatures, and a consistency proof from it to the final log (so every
// two checkpoints seen are consistent with each other: both are prefixes
// of one log); and that checkpoint timestamps never decrease with the size.
func checkCheckpoints(in checkInput, res *checkResult, log *merkleLog, final notary.Checkpoint) {
	seen := map[string]bool{}
	var cps []notary.Checkpoint
	for _, note := range in.checkpoints {
		if seen[string(note)] {
			continue
		}
		seen[string(note)] = true
		sc, err := notary.OpenCheckpoint(note, in.policy)
		if err != nil {
			res.inconsistent = append(res.inconsistent, fmt.Sprintf("a checkpoint seen does not verify: %v", err))
			continue
		}
		cps = append(cps, sc.Checkpoint)
	}
	res.checkpoints = len(cps)
	for _, cp := range cps {
		if cp.Size > final.Size {
			res.inconsistent = append(res.inconsistent, fmt.Sprintf("checkpoint of size %d is beyond the final log's %d: its entries were lost", cp.Size, final.Size))
			continue
		}
		var proof []notary.Hash
		var err error
		if cp.Size > 0 { // the empty tree is a prefix of every tree; tlog proves none
			proof, err = log.consistency(cp.Size, final.Size)
		}
		if err == nil {
			err = notary.CheckConsistency(cp, final, proof)
		}
		if err != nil {
			res.inconsistent = append(res.inconsistent, fmt.Sprintf("checkpoint of size %d (root %s) is not a prefix of the final log: %v", cp.Size, cp.Root, err))
		}
	}
	slices.SortFunc(cps, func(a, b notary.Checkpoint) int {
		return cmp.Or(cmp.Compare(a.Size, b.Size), cmp.Compare(a.Timestamp, b.Timestamp))
	})
	for i := 1; i < len(cps); i++ {
		if a, b := cps[i-1], cps[i]; a.Size < b.Size && a.Timestamp > b.Timestamp {
			res.timestamps = append(res.timestamps, fmt.Sprintf("checkpoint of size %d has timestamp %d, before the %d of size %d", b.Size, b.Timestamp, a.Timestamp, a.Size))
		}
	}
}

// checkReceipts checks every receipt a client got: it verifies under the
// cluster's keys, and the final log holds its very leaf at its index (its
// checkpoint, checked above, is then consistent with the final one, so the
// receipt verifies against the final checkpoint too).
func checkReceipts(in checkInput, res *checkResult, final notary.Checkpoint) {
	v, err := notary.NewVerifier(in.policy)
	if err != nil {
		res.receipts = append(res.receipts, err.Error())
		return
	}
	for _, r := range in.receipts {
		res.receiptsChecked++
		if _, err := v.Verify(notary.Claim{Receipt: r, Commitment: r.Leaf.Commitment}); err != nil {
			res.receipts = append(res.receipts, fmt.Sprintf("receipt %d for %s: %v", r.Index, r.Leaf.Commitment, err))
			continue
		}
		if r.Index >= final.Size {
			res.lost = append(res.lost, fmt.Sprintf("receipt %d for %s: the final log has %d leaves", r.Index, r.Leaf.Commitment, final.Size))
			continue
		}
		if got := in.leaves[r.Index]; got != r.Leaf {
			res.lost = append(res.lost, fmt.Sprintf("receipt %d is for %s at %d, the final log has %s there at %d", r.Index, r.Leaf.Commitment, r.Leaf.Timestamp, got.Commitment, got.Timestamp))
		}
	}
}

// The model: an append-only log with dedup. notarize(c...) appends each
// commitment not yet in the log and returns every commitment's index;
// lookup(c) returns c's index, or not-found.
//
// Its state is the log's length. The final log is the witness of the order
// of appends: a linearization that ends in it appends its entries in index
// order, the entry at index i when the length is i, so a log of length n
// is its first n entries and the length says everything. Entries the
// history did not write (consultations') are left out of the numbering:
// they may go in at any moment, which changes nothing the history's
// operations can see. So each commitment has a rank (its position among
// the history's entries in the final log) and:
//   - an acknowledged notarize needs each index to be its commitment's
//     index in the final log, and each rank below or at the length (at:
//     the operation appends it, and the length grows by one); an answer
//     that says "new" needs the rank at the length (an answer that says
//     "existing" may come from the client's retry of its own request);
//   - a notarize whose outcome is unknown appends each of its
//     commitments whose rank is the length, and otherwise does nothing;
//   - a lookup that found c needs c's final index and a rank below the
//     length; a lookup that found nothing is legal in every state: reads
//     are answered from the receiving node's own log (docs/API.md), which
//     may lag; the checker counts such stale reads instead;
//   - an end marker after each part of the history needs the length the
//     acknowledgements before it imply (see checkLinearizable).

// modelInput is an operation as the model sees it.
type modelInput struct {
	kind  opKind
	ranks []int // per commitment: its rank, or -1 when not in the final log
	index []int64
	end   int // for the end marker: the length wanted
}

// modelOutput is an operation's answer.
type modelOutput struct {
	ok       bool
	found    bool
	existing int8 // 1 existing, 0 new, -1 not said
	indexes  []uint64
}

const opEnd opKind = 99 // the end marker of a part of the history

// logModel is the model above for porcupine.
var logModel = porcupine.Model{
	Init: func() any { return 0 },
	Step: func(state, input, output any) (bool, any) {
		n, in, out := state.(int), input.(modelInput), output.(modelOutput)
		switch in.kind {
		case opEnd:
			return n == in.end, n
		case opLookup:
			if !out.found {
				return true, n
			}
			return in.ranks[0] >= 0 && int64(out.indexes[0]) == in.index[0] && in.ranks[0] < n, n
		}
		if !out.ok {
			for _, r := range in.ranks {
				if r == n {
					n++
				}
			}
			return true, n
		}
		for i, r := range in.ranks {
			switch {
			case r < 0 || int64(out.indexes[i]) != in.index[i]:
				return false, n
			case r < n:
				if out.existing == 0 {
					return false, n // it said new, but it was in
				}
			case r == n:
				// It appends the entry. Even "existing" is legal here:
				// the client retries a request whose answer it lost, and
				// the retry finds what the first try logged.
				n++
			default:
				return false, n // appended past entries not yet in
			}
		}
		return true, n
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(modelInput), output.(modelOutput)
		switch in.kind {
		case opEnd:
			return fmt.Sprintf("end(len=%d)", in.end)
		case opLookup:
			if out.found {
				return fmt.Sprintf("lookup(rank %d) -> %d", in.ranks[0], out.indexes[0])
			}
			return fmt.Sprintf("lookup(rank %d) -> not found", in.ranks[0])
		}
		if !out.ok {
			return fmt.Sprintf("notarize(ranks %v) -> ?", in.ranks)
		}
		return fmt.Sprintf("notarize(ranks %v) -> %v", in.ranks, out.indexes)
	},
}

// checkLinearizable checks the history against the model with porcupine,
// one part at a time. A part ends where no operation is in flight (the
// workload makes such moments): the length of the log there is then the
// highest rank acknowledged so far plus one, so the parts are independent
// once each ends with a marker that checks that length.
func checkLinearizable(in checkInput, res *checkResult) {
	index := map[notary.Commitment]int64{}
	for i, l := range in.leaves {
		if _, dup := index[l.Commitment]; !dup {
			index[l.Commitment] = int64(i)
		}
	}
	// Keep the operations that can matter: a notarize whose outcome is
	// unknown and whose commitments are not in the log did nothing.
	var ops []histOp
	owned := map[notary.Commitment]bool{}
	for _, op := range in.ops {
		if op.kind != opNotarize && op.kind != opLookup {
			continue // dispenses and revocations: the lifecycle rules judge them
		}
		if op.kind == opNotarize && !op.ok && !slices.ContainsFunc(op.commitments, func(c notary.Commitment) bool { _, in := index[c]; return in }) {
			continue
		}
		ops = append(ops, op)
		if op.kind == opNotarize {
			for _, c := range op.commitments {
				if _, in := index[c]; in {
					owned[c] = true
				}
			}
		}
		res.ops++
		if op.kind == opNotarize && op.ok {
			res.acked += len(op.commitments)
		}
		if op.kind == opLookup {
			res.lookups++
		}
	}
	// Ranks: positions among the history's own entries in the final log.
	rank := map[notary.Commitment]int{}
	for _, l := range in.leaves {
		if owned[l.Commitment] {
			if _, dup := rank[l.Commitment]; !dup {
				rank[l.Commitment] = len(rank)
			}
		}
	}
	total := len(rank)
	toModel := func(op histOp) porcupine.Operation {
		mi := modelInput{kind: op.kind}
		for _, c := range op.commitments {
			r, ok := rank[c]
			if !ok {
				r = -1
			}
			idx, ok := index[c]
			if !ok {
				idx = -1
			}
			mi.ranks, mi.index = append(mi.ranks, r), append(mi.index, idx)
		}
		mo := modelOutput{ok: op.ok, found: op.found, existing: -1, indexes: op.indexes}
		if op.existingKnown {
			mo.existing = 0
			if op.existing {
				mo.existing = 1
			}
		}
		return porcupine.Operation{ClientId: op.client, Input: mi, Output: mo, Call: int64(op.call), Return: int64(op.ret)}
	}

	// Stale reads: not found, though acknowledged before the lookup began.
	ackedAt := map[notary.Commitment]time.Duration{}
	for _, op := range ops {
		if op.kind == opNotarize && op.ok {
			for _, c := range op.commitments {
				if t, seen := ackedAt[c]; !seen || op.ret < t {
					ackedAt[c] = op.ret
				}
			}
		}
	}
	for _, op := range ops {
		if op.kind == opLookup && op.consistent {
			res.consistentLookups++
		}
		if op.kind == opLookup && op.ok && !op.found {
			if t, ok := ackedAt[op.commitments[0]]; ok && t < op.call {
				if op.consistent {
					res.staleConsistent = append(res.staleConsistent, fmt.Sprintf("client %d: a consistent lookup at %v found no %s, acknowledged at %v", op.client, op.call, op.commitments[0], t))
				} else {
					res.staleReads++
				}
			}
		}
	}

	slices.SortStableFunc(ops, func(a, b histOp) int { return cmp.Compare(a.call, b.call) })
	length := 0 // the log's length where the part starts
	for start := 0; start < len(ops); {
		end, reach := start, ops[start].ret
		for end+1 < len(ops) && ops[end+1].call <= reach {
			end++
			reach = max(reach, ops[end].ret)
		}
		part := ops[start : end+1]
		// The length where the part ends: past every rank acknowledged
		// in it or before it.
		want := length
		for _, op := range part {
			if op.ok && (op.kind == opNotarize || op.found) {
				for _, c := range op.commitments {
					if r, ok := rank[c]; ok {
						want = max(want, r+1)
					}
				}
			}
		}
		if end == len(ops)-1 {
			want = total // the last part leaves the whole log
		}
		history := make([]porcupine.Operation, 0, len(part)+1)
		for _, op := range part {
			history = append(history, toModel(op))
		}
		endAt := reach + 1
		if reach >= noReturn {
			endAt = noReturn + 1
		}
		history = append(history, porcupine.Operation{ClientId: -1, Input: modelInput{kind: opEnd, end: want}, Output: modelOutput{ok: true}, Call: int64(endAt), Return: int64(endAt)})
		model := logModel
		model.Init = func() any { return length }
		timeout := in.linearizeTimeout
		if timeout == 0 {
			timeout = time.Minute
		}
		result, info := porcupine.CheckOperationsVerbose(model, history, timeout)
		if result != porcupine.Ok {
			res.linearizability = append(res.linearizability, describeNonLinearizable(result, part, length, want, info, model))
		}
		res.parts++
		res.longestPart = max(res.longestPart, len(part))
		length = want
		start = end + 1
	}
}

// describeNonLinearizable says which part of the history failed and the
// longest linearizable prefix porcupine found.
func describeNonLinearizable(result porcupine.CheckResult, part []histOp, from, to int, info porcupine.LinearizationInfo, model porcupine.Model) string {
	what := "not linearizable"
	if result == porcupine.Unknown {
		what = "porcupine timed out"
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "%s: %d operations from %v to %v, log length %d to %d", what, len(part), part[0].call.Round(time.Millisecond), lastReturn(part), from, to)
	if result == porcupine.Illegal {
		partials := info.PartialLinearizations()
		longest := []int(nil)
		for _, p := range partials {
			for _, l := range p {
				if len(l) > len(longest) {
					longest = l
				}
			}
		}
		fmt.Fprintf(&sb, "; the longest linearizable prefix has %d operations", len(longest))
	}
	return sb.String()
}

// lastReturn is when the last operation of part returned, for messages.
func lastReturn(part []histOp) string {
	var last time.Duration
	for _, op := range part {
		if op.ret > last {
			last = op.ret
		}
	}
	if last >= noReturn {
		return "never"
	}
	return last.Round(time.Millisecond).String()
}
