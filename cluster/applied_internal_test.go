package cluster

import (
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/hashicorp/raft"
	"github.com/telenotary/telenotary/cluster/notaryapi"
	"github.com/telenotary/telenotary/notary"
)

// TestAppliedNeverAheadOfTheCheckpoint: whoever reads the FSM's applied
// index, then its checkpoint (as a consistent read does once the read
// barrier saw the index), gets a checkpoint that holds every leaf applied
// up to that index. A reader spins beside the applies of one-leaf raft
// entries; storing the applied index before signing the new head (as the
// FSM once did) is seen within a few hundred applies here.
func TestAppliedNeverAheadOfTheCheckpoint(t *testing.T) {
	f := testFSM(t, t.TempDir())
	grow(t, f, 7, 1)
	index0, size0 := f.applied.Load(), f.log.Head().Size

	var (
		stop    atomic.Bool
		wg      sync.WaitGroup
		reads   atomic.Int64
		mu      sync.Mutex
		behind  int
		example string
	)
	wg.Go(func() {
		for !stop.Load() {
			applied := f.applied.Load()
			cp := f.checkpoint.Load()
			reads.Add(1)
			if want := size0 + (applied - index0); cp == nil || cp.Size < want {
				mu.Lock()
				if behind++; behind == 1 {
					example = fmtBehind(applied, want, cp)
				}
				mu.Unlock()
			}
		}
	})
	const applies = 3000
	for k := uint64(1); k <= applies; k++ {
		var e notaryapi.Entry
		e.Kind = notary.KindDocument
		e.Commitment[0] = 8
		binary.BigEndian.PutUint64(e.Commitment[1:], k)
		res := f.ApplyBatch([]*raft.Log{{Index: index0 + k, Type: raft.LogCommand, Data: encodeNotarize(1795262400000+int64(k), []notaryapi.Entry{e})}})
		if r := res[0].(*applyResult); r.err != nil {
			t.Fatal(r.err)
		}
	}
	stop.Store(true)
	wg.Wait()
	if behind > 0 {
		t.Fatalf("%d of %d reads saw an applied index ahead of the checkpoint, such as %s", behind, reads.Load(), example)
	}
	if got := f.log.Head().Size; got != size0+applies {
		t.Fatalf("the log holds %d leaves, want %d", got, size0+applies)
	}
}

func fmtBehind(applied, want uint64, cp *notary.SignedCheckpoint) string {
	if cp == nil {
		return fmt.Sprintf("applied index %d (%d leaves) with no checkpoint", applied, want)
	}
	return fmt.Sprintf("applied index %d (%d leaves) with a checkpoint of %d", applied, want, cp.Size)
}
