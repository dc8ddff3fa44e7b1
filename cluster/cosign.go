package cluster

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/telenotary/telenotary/cluster/httpapi"
	"github.com/telenotary/telenotary/cluster/notaryapi"
	"github.com/telenotary/telenotary/notary"
)

// Every node signs the checkpoint of any size it has applied, and
// signatures over one size combine: see "Cosigning" in cluster/DESIGN.md.

// CheckpointAt signs the checkpoint of the first size leaves of the log.
func (f *fsm) CheckpointAt(size uint64) (notary.SignedCheckpoint, error) {
	f.metaMu.RLock()
	g := f.meta.Genesis
	f.metaMu.RUnlock()
	if g == nil {
		return notary.SignedCheckpoint{}, fmt.Errorf("%w: the cluster has no genesis yet", notaryapi.ErrNoLeader)
	}
	if cp := f.checkpoint.Load(); cp != nil && cp.Size == size {
		return *cp, nil
	}
	l, done := f.readLog()
	defer done()
	if head := l.Head().Size; size > head {
		return notary.SignedCheckpoint{}, httpapi.Field("size", "is beyond this node's log of %d leaves", head)
	}
	root, err := l.RootAt(size)
	if err != nil {
		return notary.SignedCheckpoint{}, err
	}
	var ts int64
	if size > 0 {
		newest, err := l.Leaf(size - 1)
		if err != nil {
			return notary.SignedCheckpoint{}, err
		}
		ts = newest.Timestamp
	}
	return notary.Checkpoint{Origin: g.Origin, Size: size, Root: root, Timestamp: ts}.Sign(f.signer)
}

// ledger is a node's log as its API reads it: the FSM's checkpoints and
// log, and the cosigning of checkpoints with the other members.
type ledger struct {
	*fsm
	self   string       // this node's ID
	client *http.Client // reaches the other members' APIs
}

// cosignWait bounds how long a node waits for its peers' signatures.
const cosignWait = 3 * time.Second

// Cosign gathers the signatures of other members over cp until want
// signatures are on it (this node's included) or ctx ends, and returns the
// combined note.
func (l ledger) Cosign(ctx context.Context, cp notary.SignedCheckpoint, want int) ([]byte, error) {
	note := cp.Note
	if want <= 1 {
		return note, nil
	}
	_, members := l.clusterInfo()
	if want > len(members) {
		return nil, httpapi.Field("signatures", "the cluster has %d nodes; it cannot give %d signatures", len(members), want)
	}
	ctx, cancel := context.WithTimeout(ctx, cosignWait)
	defer cancel()
	var mu sync.Mutex // guards note and have
	have := 1
	var wg sync.WaitGroup
	for _, m := range members {
		if m.ID == l.self {
			continue
		}
		wg.Go(func() {
			c := notaryapi.NewClient(notaryapi.ClientConfig{HTTPClient: l.client})
			// A peer that has not applied this size yet soon will: retry.
			wait := &backoff.ExponentialBackOff{InitialInterval: 5 * time.Millisecond, RandomizationFactor: 0.5, Multiplier: 2, MaxInterval: 200 * time.Millisecond}
			theirs, err := backoff.Retry(ctx, func() ([]byte, error) { return c.CheckpointOf(ctx, m.HTTPAddr, cp.Size) },
				backoff.WithBackOff(wait), backoff.WithMaxElapsedTime(0))
			if err != nil {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if combined, err := notary.CombineSignatures(note, theirs); err == nil {
				note, have = combined, have+1
			}
		})
	}
	wg.Wait()
	if have < want {
		return nil, fmt.Errorf("%w: %d of the %d signatures asked for", notaryapi.ErrNoLeader, have, want)
	}
	return note, nil
}
