package cluster

import (
	"errors"
	"fmt"

	"github.com/telenotary/telenotary/cluster/notaryapi"
	"github.com/telenotary/telenotary/notary"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
)

// A node never serves a receipt it has not checked: before a receipt
// leaves it, the node checks that the leaf hashes to the receipt's leaf
// hash and that the inclusion proof leads from it to the root of the
// checkpoint the receipt carries, which this node signed (a few µs:
// BenchmarkCheckServed). A damaged leaf or stored hash gives a proof that
// does not lead to the signed root; the node then marks itself damaged,
// alerts, and serves nothing from its log (503 damaged) until it has
// healed from its peers (heal.go) or an operator has replaced its data
// (see OPERATIONS.md).

// checkServed checks a receipt the node is about to serve, proven into cp.
func (f *fsm) checkServed(r *notary.Receipt, cp notary.SignedCheckpoint) error {
	if errp := f.damaged.Load(); errp != nil {
		return *errp
	}
	leafHash := r.Leaf.Hash()
	err := proof.VerifyInclusion(rfc6962.DefaultHasher, r.Index, cp.Size, leafHash[:], hashBytes(r.InclusionProof), cp.Root[:])
	if err == nil && leafHash != r.LeafHash {
		err = fmt.Errorf("leaf hash %s, the receipt says %s", leafHash, r.LeafHash)
	}
	if err != nil {
		return f.markDamaged(fmt.Errorf("the receipt for leaf %d does not lead to the root this node signed (%v): the log on disk is damaged", r.Index, err))
	}
	return nil
}

// markDamaged records that the node's log cannot be trusted, and why; from
// then on it serves nothing from it. It returns the error to answer with.
func (f *fsm) markDamaged(reason error) error {
	err := fmt.Errorf("%w: %w", notaryapi.ErrDamaged, reason)
	if f.damaged.CompareAndSwap(nil, &err) {
		f.logger.Error("damaged data: this node serves nothing from its log until it has healed", "error", err)
		select {
		case f.damageFound <- struct{}{}:
		default:
		}
	}
	return *f.damaged.Load()
}

// checked passes err on, marking the node damaged when it says the data
// read was damaged.
func (f *fsm) checked(err error) error {
	if errors.Is(err, notary.ErrDamaged) {
		return f.markDamaged(err)
	}
	return err
}

// Size is the number of leaves in the node's log.
func (l ledger) Size() uint64 { return l.size() }

// Leaves reads count leaves from index start, each checked against the
// leaf hash the log stored for it.
func (l ledger) Leaves(start, count uint64) ([]notary.Leaf, error) {
	leaves := make([]notary.Leaf, count)
	err := l.ReadLog(func(log *notary.Log) error {
		if err := log.Leaves(start, leaves); err != nil {
			return err
		}
		return log.CheckLeaves(start, leaves)
	})
	return leaves, l.checked(err)
}

// InclusionProof proves leaf index into the tree of size leaves, and
// checks the proof against that tree's root (the signed one when size is
// the checkpoint's) before it is served.
func (l ledger) InclusionProof(index, size uint64) (notary.Hash, []notary.Hash, error) {
	var leafHash notary.Hash
	var p []notary.Hash
	err := l.ReadLog(func(log *notary.Log) error {
		leaf, err := log.Leaf(index)
		if err != nil {
			return err
		}
		if err := log.CheckLeaves(index, []notary.Leaf{leaf}); err != nil {
			return err
		}
		if p, err = log.InclusionProof(index, size); err != nil {
			return err
		}
		root, err := l.rootAt(log, size)
		if err != nil {
			return err
		}
		leafHash = leaf.Hash()
		if err := proof.VerifyInclusion(rfc6962.DefaultHasher, index, size, leafHash[:], hashBytes(p), root[:]); err != nil {
			return fmt.Errorf("%w: the inclusion proof of leaf %d in %d does not lead to the root: %v", notary.ErrDamaged, index, size, err)
		}
		return nil
	})
	return leafHash, p, l.checked(err)
}

// ConsistencyProof proves the tree of from leaves a prefix of the tree of
// to, and checks the proof against both roots before it is served.
func (l ledger) ConsistencyProof(from, to uint64) ([]notary.Hash, error) {
	var p []notary.Hash
	err := l.ReadLog(func(log *notary.Log) error {
		var err error
		if p, err = log.ConsistencyProof(from, to); err != nil {
			return err
		}
		older, err := l.rootAt(log, from)
		if err != nil {
			return err
		}
		newer, err := l.rootAt(log, to)
		if err != nil {
			return err
		}
		if err := proof.VerifyConsistency(rfc6962.DefaultHasher, from, to, hashBytes(p), older[:], newer[:]); err != nil {
			return fmt.Errorf("%w: the consistency proof from %d to %d does not hold: %v", notary.ErrDamaged, from, to, err)
		}
		return nil
	})
	return p, l.checked(err)
}

// rootAt is the root of the first size leaves: the signed one for the
// latest checkpoint's size, else computed from the stored hashes.
func (l ledger) rootAt(log *notary.Log, size uint64) (notary.Hash, error) {
	if cp := l.Checkpoint(); cp != nil && cp.Size == size {
		return cp.Root, nil
	}
	return log.RootAt(size)
}

// hashBytes spells hashes as the merkle proof package takes them.
func hashBytes(hs []notary.Hash) [][]byte {
	out := make([][]byte, len(hs))
	for i := range hs {
		out[i] = hs[i][:]
	}
	return out
}

// Receipt returns the receipt of a commitment this node has applied,
// proven into its latest checkpoint and checked; nil when it has none.
func (l ledger) Receipt(c notary.Commitment) (*notary.Receipt, error) {
	cp := l.Checkpoint()
	if cp == nil {
		return nil, nil
	}
	return l.ReceiptIn(c, cp)
}

// ReceiptIn returns the receipt of a commitment among the first cp.Size
// leaves, proven into cp (a checkpoint this node signed) and checked; nil
// when it is not among them.
func (l ledger) ReceiptIn(c notary.Commitment, cp *notary.SignedCheckpoint) (*notary.Receipt, error) {
	var receipt *notary.Receipt
	err := l.ReadLog(func(log *notary.Log) error {
		i, found, err := log.Find(c)
		if err != nil || !found || i >= cp.Size {
			return err
		}
		receipt, err = log.Receipt(i, *cp)
		return err
	})
	if err != nil || receipt == nil {
		return nil, err
	}
	return receipt, l.checkServed(receipt, *cp)
}
