package cluster

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	"github.com/telenotary/telenotary/cluster/httpapi"
	"github.com/telenotary/telenotary/cluster/notaryapi"
	"github.com/telenotary/telenotary/notary"
)

// The FSM enforces a prescription's life after its issue (issue-time
// allowance, dispenses, revocation; docs/FORMATS.md "Dispensing and
// revocation") deterministically on every node, from the log alone: the
// book below is derived from the allowance, dispense and revocation leaves,
// rebuilt whenever a log is opened, so snapshots, heals and restarts carry
// it without a file of its own.

// rxState is what the log says of one prescription with an allowance.
type rxState struct {
	allowance   notary.Allowance
	allowanceAt uint64 // index of the allowance leaf
	// dispenses are the indexes of its dispense leaves, in order. Only the
	// FSM appends to it, and only past every length handed out, so a
	// reader's copy of the state keeps its view without copying it.
	dispenses []uint64
	revokedAt uint64 // index of its revocation leaf + 1; 0 when not revoked
	head      chainHead
}

// chainHead caches the chain value of the last fill accepted (the lock
// before the first), so the next fill's proof is checked with one chain
// step instead of one per fill: the same decision, since a value one step
// from the head is the only one (short of a hash collision) that many
// steps lead to the lock. The leaves do not hold proofs: a state derived
// from the log knows the head only until the first dispense.
type chainHead struct {
	value notary.ChainValue
	fill  int // the fills value opens; -1: unknown
}

// opens reports whether proof opens fill k of a, with the head's help.
func (h chainHead) opens(a notary.Allowance, k int, proof notary.ChainValue) bool {
	if h.fill >= 0 && h.fill == k-1 {
		return notary.ChainStep(proof) == h.value
	}
	return a.CheckDispense(k, proof)
}

// rxBook is the state of every prescription logged with an allowance.
type rxBook struct {
	mu sync.RWMutex // readers: status answers; the writer: the FSM
	m  rxMap
}

// rxMap maps a prescription's commitment to its state.
type rxMap map[notary.Commitment]*rxState

// get returns a copy of c's state; ok is false when c has no allowance.
func (b *rxBook) get(c notary.Commitment) (rxState, bool) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	st, ok := b.m[c]
	if !ok {
		return rxState{}, false
	}
	cp := *st
	return cp, true
}

// anyLifecycle reports whether any of logs is a notarize command with an
// allowance, a dispense or a revocation.
func anyLifecycle(logs []*raft.Log) bool {
	for _, l := range logs {
		if l.Type != raft.LogCommand || len(l.Data) == 0 || l.Data[0] != cmdNotarize {
			continue
		}
		_, leaves, extra, err := decodeNotarize(l.Data)
		if err != nil {
			continue // refused whole
		}
		if extra != nil {
			return true
		}
		for _, lf := range leaves {
			if lf.Kind == notary.KindAllowance {
				return true
			}
		}
	}
	return false
}

// rxScanChunk is how many leaves loadRx reads at a time.
const rxScanChunk = 4096

// loadRx derives the book from every leaf of l, each checked against the
// hash the log stored for it: a damaged leaf must not decide a dispense.
func loadRx(l *notary.Log) (rxMap, error) {
	m := rxMap{}
	size := l.Head().Size
	buf := make([]notary.Leaf, rxScanChunk)
	for start := uint64(0); start < size; start += rxScanChunk {
		chunk := buf[:min(rxScanChunk, size-start)]
		if err := l.Leaves(start, chunk); err != nil {
			return nil, err
		}
		if err := l.CheckLeaves(start, chunk); err != nil {
			return nil, err
		}
		for i, lf := range chunk {
			if err := m.add(lf, start+uint64(i)); err != nil {
				return nil, fmt.Errorf("leaf %d: %w", start+uint64(i), err)
			}
		}
	}
	return m, nil
}

// add records leaf lf at index i; the leaves of other kinds are not
// the book's.
func (m rxMap) add(lf notary.Leaf, i uint64) error {
	switch lf.Kind {
	case notary.KindAllowance:
		a, err := notary.ParseAllowance(lf.Commitment)
		if err != nil {
			return err
		}
		if _, ok := m[lf.Link]; ok {
			return errors.New("a second allowance for one prescription")
		}
		m[lf.Link] = &rxState{allowance: a, allowanceAt: i, head: chainHead{value: a.Lock}}
	case notary.KindDispense:
		st, ok := m[lf.Link]
		if !ok || st.revokedAt != 0 || len(st.dispenses) >= st.allowance.Fills {
			return errors.New("a dispense the log's rules refuse")
		}
		st.dispenses = append(st.dispenses, i)
		st.head.fill = -1 // its proof is not in the leaf
	case notary.KindRevocation:
		st, ok := m[lf.Link]
		if !ok || st.revokedAt != 0 {
			return errors.New("a revocation the log's rules refuse")
		}
		st.revokedAt = i + 1
	}
	return nil
}

// rxPlan is what one batch plan changes in the book, decided entry by
// entry in log order; commit makes it the book's.
type rxPlan struct {
	// changed holds the planned state of each prescription the plan
	// touched: leaf indexes of leaves already logged, or -(position+1) in
	// the plan's leaves for the planned ones (resolved at commit).
	changed map[notary.Commitment]*plannedRx
	// pending maps the commitments of the plan's first indexed leaves to
	// their positions (built as find needs it).
	pending map[notary.Commitment]int
	indexed int
}

// plannedRx is a prescription's state while a plan is built.
type plannedRx struct {
	allowance   notary.Allowance
	allowanceAt int64
	logged      []uint64 // the dispenses in the log (the book's, shared)
	planned     []int    // and those in the plan, by position
	revoked     bool
	revokedAt   int64 // as allowanceAt, when revoked
	head        chainHead
}

// used is the number of fills dispensed, in the log and in the plan.
func (st *plannedRx) used() int { return len(st.logged) + len(st.planned) }

// dispense is the planned index of dispense k (from 0).
func (st *plannedRx) dispense(k int) int64 {
	if k < len(st.logged) {
		return int64(st.logged[k])
	}
	return position(st.planned[k-len(st.logged)])
}

// position encodes plan position p as a planned index.
func position(p int) int64 { return -int64(p) - 1 }

// state returns c's state as the plan sees it (the book's, then the
// plan's changes), to be changed in place.
func (p *rxPlan) state(book *rxBook, c notary.Commitment) *plannedRx {
	if st, ok := p.changed[c]; ok {
		return st
	}
	cur, ok := book.get(c)
	if !ok {
		return nil
	}
	st := &plannedRx{allowance: cur.allowance, allowanceAt: int64(cur.allowanceAt), revoked: cur.revokedAt != 0, revokedAt: int64(cur.revokedAt) - 1, head: cur.head}
	st.logged = cur.dispenses
	if p.changed == nil {
		p.changed = map[notary.Commitment]*plannedRx{}
	}
	p.changed[c] = st
	return st
}

// fresh adds c's new allowance to the plan.
func (p *rxPlan) fresh(c notary.Commitment, a notary.Allowance, pos int) {
	if p.changed == nil {
		p.changed = map[notary.Commitment]*plannedRx{}
	}
	p.changed[c] = &plannedRx{allowance: a, allowanceAt: position(pos), head: chainHead{value: a.Lock}}
}

// commit resolves the plan's positions to the leaf indexes the log gave
// them and writes its changes into the book.
func (p *rxPlan) commit(book *rxBook, indexes []uint64) {
	if len(p.changed) == 0 {
		return
	}
	resolve := func(i int64) uint64 {
		if i < 0 {
			return indexes[-i-1]
		}
		return uint64(i)
	}
	book.mu.Lock()
	defer book.mu.Unlock()
	for c, st := range p.changed {
		next := &rxState{allowance: st.allowance, allowanceAt: resolve(st.allowanceAt), head: st.head}
		next.dispenses = st.logged
		for _, pos := range st.planned {
			next.dispenses = append(next.dispenses, indexes[pos])
		}
		if st.revoked {
			next.revokedAt = resolve(st.revokedAt) + 1
		}
		book.m[c] = next
	}
}

// refusal codes name a refused lifecycle entry in events and metrics.
func refusalCode(err error) string {
	for _, code := range []*httpapi.Code{notaryapi.ErrFillTaken, notaryapi.ErrFullyDispensed, notaryapi.ErrRevoked, notaryapi.ErrBadProof, notaryapi.ErrUnknownPrescription} {
		if errors.Is(err, code) {
			return code.Name
		}
	}
	return "malformed"
}

// entryLeaf is where one entry of a command with lifecycle members went.
type entryLeaf struct {
	pos   int    // its leaf's position in the plan; -1 when index or err says
	index uint64 // the leaf already logged that answers it
	err   error  // why the log's rules refused it
}

// push adds leaf lf to the plan and returns its position.
func (p *batchPlan) push(lf notary.Leaf) int {
	p.leaves = append(p.leaves, lf)
	return len(p.leaves) - 1
}

// addLifecycle plans the entries of command i, some with lifecycle
// members (extra, in entry order), one by one against the book as the
// plan has changed it so far.
func (p *batchPlan) addLifecycle(f *fsm, i int, batch []notary.Leaf, extra []lifecycle) error {
	sp := span{result: i, entries: make([]entryLeaf, len(batch))}
	x := 0
	for j, lf := range batch {
		var ex *lifecycle
		if x < len(extra) && extra[x].entry == j {
			ex = &extra[x]
			x++
		}
		e, err := p.decide(f, lf, ex)
		if err != nil {
			return err // the log cannot be read: the FSM fails
		}
		if e.err != nil {
			if p.refused == nil {
				p.refused = map[string]int{}
			}
			p.refused[refusalCode(e.err)]++
		}
		sp.entries[j] = e
	}
	p.spans = append(p.spans, sp)
	return nil
}

// malformedEntry refuses an entry no API would have sent.
func malformedEntry(format string, args ...any) entryLeaf {
	return entryLeaf{pos: -1, err: fmt.Errorf("%w: %s", notaryapi.ErrBadRequest, fmt.Sprintf(format, args...))}
}

// decide plans one entry; ex holds its lifecycle members, if any.
func (p *batchPlan) decide(f *fsm, lf notary.Leaf, ex *lifecycle) (entryLeaf, error) {
	switch lf.Kind {
	case notary.KindAllowance:
		return malformedEntry("allowance leaves are logged by the cluster, with their prescription"), nil
	case notary.KindDispense:
		return p.dispense(f, lf, ex)
	case notary.KindRevocation:
		return p.revoke(f, lf, ex)
	}
	if ex != nil && (ex.proof != nil || lf.Kind != notary.KindPrescription) {
		return malformedEntry("a %s carries no allowance or proof", lf.Kind), nil
	}
	if ex == nil {
		return entryLeaf{pos: p.push(lf)}, nil
	}
	// A prescription issued with an allowance: the allowance leaf follows
	// it, once, and only at the prescription's first logging.
	c, a := lf.Commitment, *ex.allowance
	_, seen, err := p.find(f, c)
	if err != nil {
		return entryLeaf{}, err
	}
	pos := p.push(lf)
	if seen || a.Fills < 1 || a.Fills > notary.MaxFills || p.rx.state(&f.rx, c) != nil {
		return entryLeaf{pos: pos}, nil
	}
	apos := p.push(notary.Leaf{Kind: notary.KindAllowance, Commitment: a.Commitment(), Link: c, Timestamp: lf.Timestamp})
	p.rx.fresh(c, a, apos)
	return entryLeaf{pos: pos}, nil
}

// dispense plans a dispense: fill ex.fill of the prescription lf links
// to, opened by ex.proof.
func (p *batchPlan) dispense(f *fsm, lf notary.Leaf, ex *lifecycle) (entryLeaf, error) {
	if ex == nil || ex.proof == nil || ex.allowance != nil {
		return malformedEntry("a dispense carries a fill and its proof, and no allowance"), nil
	}
	c, d := lf.Link, lf.Commitment
	// The same dispense again (a retry) answers with its leaf.
	if at, found, err := p.find(f, d); err != nil || found {
		if at < 0 {
			return entryLeaf{pos: int(-at - 1)}, err
		}
		return entryLeaf{pos: -1, index: uint64(at)}, err
	}
	st := p.rx.state(&f.rx, c)
	if st == nil {
		return entryLeaf{pos: -1, err: fmt.Errorf("%w: the log holds no allowance for prescription %s: it was never logged, or logged without one", notaryapi.ErrUnknownPrescription, c)}, nil
	}
	if st.revoked {
		return entryLeaf{pos: -1, err: fmt.Errorf("%w: prescription %s was revoked at %s", notaryapi.ErrRevoked, c, p.leafTime(f, st.revokedAt))}, nil
	}
	used, n := st.used(), st.allowance.Fills
	switch {
	case used >= n:
		return entryLeaf{pos: -1, err: fmt.Errorf("%w: all %d fills of prescription %s were dispensed, the last at %s", notaryapi.ErrFullyDispensed, n, c, p.leafTime(f, st.dispense(used-1)))}, nil
	case ex.fill <= used:
		return entryLeaf{pos: -1, err: fmt.Errorf("%w: fill %d of %d was dispensed at %s; the next is fill %d", notaryapi.ErrFillTaken, ex.fill, n, p.leafTime(f, st.dispense(ex.fill-1)), used+1)}, nil
	case ex.fill > used+1:
		return entryLeaf{pos: -1, err: fmt.Errorf("%w: fill %d is not the next one: %d of %d are used, the next is fill %d", notaryapi.ErrBadProof, ex.fill, used, n, used+1)}, nil
	case !st.head.opens(st.allowance, ex.fill, *ex.proof):
		return entryLeaf{pos: -1, err: fmt.Errorf("%w: the proof does not open fill %d of prescription %s", notaryapi.ErrBadProof, ex.fill, c)}, nil
	}
	pos := p.push(lf)
	st.planned = append(st.planned, pos)
	st.head = chainHead{value: *ex.proof, fill: ex.fill}
	return entryLeaf{pos: pos}, nil
}

// revoke plans the revocation of the prescription lf links to, proven
// with the chain's seed ex.proof.
func (p *batchPlan) revoke(f *fsm, lf notary.Leaf, ex *lifecycle) (entryLeaf, error) {
	c := lf.Link
	if ex == nil || ex.proof == nil || ex.allowance != nil || lf.Commitment != notary.RevocationCommitment(c) {
		return malformedEntry("a revocation commits to notary.RevocationCommitment of its prescription and carries its proof"), nil
	}
	st := p.rx.state(&f.rx, c)
	switch {
	case st == nil:
		return entryLeaf{pos: -1, err: fmt.Errorf("%w: the log holds no allowance for prescription %s: it was never logged, or logged without one", notaryapi.ErrUnknownPrescription, c)}, nil
	case !st.allowance.CheckRevocation(*ex.proof):
		return entryLeaf{pos: -1, err: fmt.Errorf("%w: the proof does not open prescription %s", notaryapi.ErrBadProof, c)}, nil
	case st.revoked: // revoked already: its revocation answers
		if st.revokedAt < 0 {
			return entryLeaf{pos: int(-st.revokedAt - 1)}, nil
		}
		return entryLeaf{pos: -1, index: uint64(st.revokedAt)}, nil
	}
	pos := p.push(lf)
	st.revoked, st.revokedAt = true, position(pos)
	return entryLeaf{pos: pos}, nil
}

// find looks c up among the leaves the log holds and then those the plan
// adds before them: the same decision on every node, however raft groups
// the entries it applies. at is a planned index (see position).
func (p *batchPlan) find(f *fsm, c notary.Commitment) (at int64, found bool, err error) {
	if i, ok, err := f.log.Find(c); err != nil || ok {
		return int64(i), ok, err
	}
	if p.rx.pending == nil {
		p.rx.pending = map[notary.Commitment]int{}
	}
	for ; p.rx.indexed < len(p.leaves); p.rx.indexed++ {
		if _, dup := p.rx.pending[p.leaves[p.rx.indexed].Commitment]; !dup {
			p.rx.pending[p.leaves[p.rx.indexed].Commitment] = p.rx.indexed
		}
	}
	if pos, ok := p.rx.pending[c]; ok {
		return position(pos), true, nil
	}
	return 0, false, nil
}

// leafTime is the time of a leaf the plan knows by planned index, for
// messages.
func (p *batchPlan) leafTime(f *fsm, i int64) string {
	var ms int64
	if i < 0 {
		ms = p.leaves[-i-1].Timestamp
	} else if lf, err := f.log.Leaf(uint64(i)); err == nil {
		ms = lf.Timestamp
	} else {
		return fmt.Sprintf("leaf %d", i)
	}
	return time.UnixMilli(ms).UTC().Format("2006-01-02 15:04:05.000 UTC")
}

// Fill says which fill of prescription c the dispense leaf at index is,
// and of how many; ok is false when it is none of c's dispenses.
func (l ledger) Fill(c notary.Commitment, index uint64) (fill, fills int, ok bool) {
	st, tracked := l.fsm.rx.get(c)
	if !tracked {
		return 0, 0, false
	}
	for k, d := range st.dispenses {
		if d == index {
			return k + 1, st.allowance.Fills, true
		}
	}
	return 0, 0, false
}

// PrescriptionStatus returns the status of prescription c among the first
// cp.Size leaves: the receipts of the leaves that decide it, proven into
// cp (a checkpoint this node signed) and checked; nil when c is not a
// prescription among them.
func (l ledger) PrescriptionStatus(c notary.Commitment, cp *notary.SignedCheckpoint) (*notary.PrescriptionStatus, error) {
	st, tracked := l.fsm.rx.get(c)
	var out *notary.PrescriptionStatus
	err := l.ReadLog(func(log *notary.Log) error {
		i, found, err := log.Find(c)
		if err != nil || !found || i >= cp.Size {
			return err
		}
		receipt := func(i uint64) (*notary.Receipt, error) {
			r, err := log.Receipt(i, *cp)
			if err != nil {
				return nil, err
			}
			return r, l.checkServed(r, *cp)
		}
		pres, err := receipt(i)
		if err != nil || pres.Leaf.Kind != notary.KindPrescription {
			return err
		}
		s := &notary.PrescriptionStatus{Commitment: c, Prescription: pres}
		// The book may be ahead of cp: what cp does not cover is left out.
		if tracked && st.allowanceAt < cp.Size {
			if s.Allowance, err = receipt(st.allowanceAt); err != nil {
				return err
			}
			for _, d := range st.dispenses {
				if d >= cp.Size {
					break
				}
				r, err := receipt(d)
				if err != nil {
					return err
				}
				s.Dispenses = append(s.Dispenses, r)
			}
			if st.revokedAt != 0 && st.revokedAt-1 < cp.Size {
				if s.Revocation, err = receipt(st.revokedAt - 1); err != nil {
					return err
				}
			}
		}
		out = s
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
