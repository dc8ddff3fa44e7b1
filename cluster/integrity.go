package cluster

import (
	"fmt"

	"github.com/telenotary/telenotary/cluster/notaryapi"
	"github.com/telenotary/telenotary/notary"
)

// A node never serves a receipt it has not checked: before a receipt
// leaves it, the node verifies it, with its own key, against the
// checkpoint it carries (about 5 µs once the checkpoint's signature is
// known). A damaged leaf or stored hash gives a proof that does not lead to
// the signed root; the node then marks itself damaged, alerts, and serves
// nothing from its log (503 damaged) until an operator repairs it (see
// OPERATIONS.md).

// checkServed verifies a receipt the node is about to serve.
func (f *fsm) checkServed(r *notary.Receipt) error {
	if errp := f.damaged.Load(); errp != nil {
		return *errp
	}
	if _, err := f.selfCheck.Verify(notary.Claim{Receipt: r, Commitment: r.Leaf.Commitment}); err != nil {
		err = fmt.Errorf("%w: the receipt for leaf %d does not verify against this node's own checkpoint (%v): the log on disk is damaged", notaryapi.ErrDamaged, r.Index, err)
		if f.damaged.CompareAndSwap(nil, &err) {
			f.logger.Error("damaged data: this node serves nothing from its log until it is repaired", "error", err)
		}
		return err
	}
	return nil
}

// Receipt returns the receipt of a commitment this node has applied,
// proven into its latest checkpoint and checked; nil when it has none.
func (l ledger) Receipt(c notary.Commitment) (*notary.Receipt, error) {
	cp := l.Checkpoint()
	if cp == nil {
		return nil, nil
	}
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
	return receipt, l.checkServed(receipt)
}
