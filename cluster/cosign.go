package cluster

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/telenotary/telenotary/notary"
)

// Cosigning. A checkpoint's body is a function of the log alone: the origin,
// a size, the root of the first size leaves, and the timestamp of the newest
// of them. So every node can sign the checkpoint of any size it has applied,
// and signatures of several nodes over one size combine into one note
// (notary.CombineSignatures): a receipt that carries k of them satisfies a
// verifier's k-of-n policy. A node signs only what its own log says.

// signAt signs the checkpoint of the first size leaves of the log.
func (f *fsm) signAt(size uint64) (notary.SignedCheckpoint, error) {
	f.metaMu.RLock()
	g := f.meta.Genesis
	f.metaMu.RUnlock()
	if g == nil {
		return notary.SignedCheckpoint{}, fmt.Errorf("%w: the cluster has no genesis yet", ErrNoLeader)
	}
	if cp := f.checkpoint.Load(); cp != nil && cp.Size == size {
		return *cp, nil
	}
	l, done := f.readLog()
	defer done()
	if head := l.Head().Size; size > head {
		return notary.SignedCheckpoint{}, fieldError("size", "is beyond this node's log of %d leaves", head)
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

// cosignWait bounds how long a node waits for its peers' signatures.
const cosignWait = 3 * time.Second

// cosign gathers the signatures of other members over cp until want
// signatures are on it (this node's included) or ctx ends, and returns the
// combined note.
func (n *Node) cosign(ctx context.Context, cp notary.SignedCheckpoint, want int) ([]byte, int, error) {
	note := cp.Note
	have := 1
	if want <= 1 {
		return note, have, nil
	}
	_, members := n.fsm.clusterInfo()
	if want > len(members) {
		return note, have, fieldError("signatures", "the cluster has %d nodes; it cannot give %d signatures", len(members), want)
	}
	ctx, cancel := context.WithTimeout(ctx, cosignWait)
	defer cancel()
	var mu sync.Mutex // guards note and have
	var wg sync.WaitGroup
	for _, m := range members {
		if m.ID == n.cfg.ID {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := NewClient(ClientConfig{Nodes: []string{m.HTTPAddr}, HTTPClient: n.forward})
			// A peer that has not applied this size yet soon will: retry.
			for backoff := 5 * time.Millisecond; ; backoff = min(2*backoff, 200*time.Millisecond) {
				theirs, err := c.checkpointAt(ctx, cp.Size)
				if err == nil {
					mu.Lock()
					if combined, err := notary.CombineSignatures(note, theirs); err == nil {
						note, have = combined, have+1
					}
					mu.Unlock()
					return
				}
				select {
				case <-ctx.Done():
					return
				case <-time.After(backoff):
				}
			}
		}()
	}
	wg.Wait()
	if have < want {
		return note, have, fmt.Errorf("%w: %d of the %d signatures asked for", ErrNoLeader, have, want)
	}
	return note, have, nil
}

// signaturesParam reads ?signatures=K (default 1).
func signaturesParam(r *http.Request) (int, error) {
	s := r.URL.Query().Get("signatures")
	if s == "" {
		return 1, nil
	}
	k, err := strconv.Atoi(s)
	if err != nil || k < 1 || k > 100 {
		return 0, fieldError("signatures", "must be a whole number from 1 to 100")
	}
	return k, nil
}
