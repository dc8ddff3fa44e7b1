package cluster

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/hashicorp/raft"
	"golang.org/x/mod/sumdb/note"

	"github.com/telenotary/telenotary/cluster/httpapi"
	"github.com/telenotary/telenotary/cluster/internal/raftfix"
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
	self    string         // this node's ID
	client  *http.Client   // reaches the other members' APIs
	cosigns *cosignCache   // gatherings of signatures, shared by the requests that want them
	streams *cosignStreams // the followers' signed checkpoints as they apply
	// counted counts a follower's signature that came by stream or by
	// request, or was refused (it did not verify).
	counted func(via string)
	// pushCommit has the followers learn at once what the leader has
	// applied (nil: they learn it in raft's own time).
	pushCommit func()
}

// streamWait is how long a gathering waits for a follower's signature on
// its stream before it asks for it.
const streamWait = 50 * time.Millisecond

// cosignWait bounds how long a node waits for its peers' signatures.
const cosignWait = 3 * time.Second

// Cosign returns cp's note with the signatures of want members on it
// (this node's included), gathered from the other members until want have
// signed or ctx ends. The requests whose receipts a batch proved into one
// checkpoint share one gathering: each peer is asked once per checkpoint.
func (l ledger) Cosign(ctx context.Context, cp notary.SignedCheckpoint, want int) ([]byte, error) {
	if want <= 1 {
		return cp.Note, nil
	}
	return l.cosigns.do(ctx, cosignKey{size: cp.Size, want: want}, func(ctx context.Context) ([]byte, error) {
		_, members := l.clusterInfo()
		if want > len(members) {
			return nil, httpapi.Field("signatures", "the cluster has %d nodes; it cannot give %d signatures", len(members), want)
		}
		return l.gather(ctx, cp, want, members)
	})
}

// gather asks every other member for its signature over cp, each until it
// answers or the wait ends, and returns as soon as want are on the note.
// The members not needed then are left to answer, unheard, within the
// wait: cancelling a request in flight would close its connection, and the
// next gathering would open another (a TLS handshake, with TLS).
func (l ledger) gather(ctx context.Context, cp notary.SignedCheckpoint, want int, members []notaryapi.MemberInfo) ([]byte, error) {
	if l.pushCommit != nil {
		// A follower signs only what it has applied, and may not know
		// yet that the leader committed it.
		l.pushCommit()
	}
	var others []notaryapi.MemberInfo
	for _, m := range members {
		if m.ID != l.self {
			others = append(others, m)
		}
	}
	ask, cancel := context.WithTimeout(context.WithoutCancel(ctx), cosignWait)
	theirs := make(chan []byte, len(others)) // an asker never blocks on it
	var askers sync.WaitGroup
	for _, m := range others {
		askers.Go(func() {
			if note, ok := l.streams.wait(ask, m.ID, m.HTTPAddr, cp.Size, streamWait); ok {
				if line, err := signatureBy(note, cp, m); err == nil {
					l.count("stream")
					theirs <- line
					return
				}
				l.count("refused") // then ask: the stream may be stale
			}
			c := notaryapi.NewClient(notaryapi.ClientConfig{HTTPClient: l.client})
			// A peer that has not applied this size yet soon will: retry.
			wait := &backoff.ExponentialBackOff{InitialInterval: time.Millisecond, RandomizationFactor: 0.5, Multiplier: 2, MaxInterval: 100 * time.Millisecond}
			note, err := backoff.Retry(ask, func() ([]byte, error) { return c.CheckpointOf(ask, m.HTTPAddr, cp.Size) },
				backoff.WithBackOff(wait), backoff.WithMaxElapsedTime(0))
			if err == nil {
				if note, err = signatureBy(note, cp, m); err != nil {
					l.count("refused")
				}
			}
			if err != nil {
				note = nil
			} else {
				l.count("request")
			}
			theirs <- note
		})
	}
	go func() {
		askers.Wait()
		cancel() // the last asker's end ends the wait
	}()
	note, have := cp.Note, 1
	for range others {
		var t []byte
		select {
		case t = <-theirs:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if t != nil {
			if combined, err := notary.CombineSignatures(note, t); err == nil {
				note, have = combined, have+1
			}
		}
		if have >= want {
			return note, nil
		}
	}
	return nil, fmt.Errorf("%w: %d of the %d signatures asked for", notaryapi.ErrNoLeader, have, want)
}

// count counts a follower's signature by how it came (counted may be nil).
func (l ledger) count(via string) {
	if l.counted != nil {
		l.counted(via)
	}
}

// signatureBy returns cp's body signed by member m alone, taken from
// theirs, a note m sent: the leader serves a member's signature only once
// it verifies with the member's current key over the leader's own
// checkpoint, and no other line of what m sent.
func signatureBy(theirs []byte, cp notary.SignedCheckpoint, m notaryapi.MemberInfo) ([]byte, error) {
	v, err := note.NewVerifier(m.VerifierKey)
	if err != nil {
		return nil, fmt.Errorf("member %s's key: %w", m.ID, err)
	}
	n, err := note.Open(theirs, note.VerifierList(v))
	if err != nil {
		return nil, fmt.Errorf("member %s's note: %w", m.ID, err)
	}
	body, _, ok := bytes.Cut(cp.Note, []byte("\n\n"))
	if !ok || n.Text != string(body)+"\n" {
		return nil, fmt.Errorf("member %s signed another checkpoint of size %d", m.ID, cp.Size)
	}
	return []byte(n.Text + "\n\u2014 " + n.Sigs[0].Name + " " + n.Sigs[0].Base64 + "\n"), nil
}

// cosignCache runs one gathering of signatures per checkpoint size and
// count wanted, shared by every request that wants it, and keeps the
// recent results for the requests that come after.
type cosignCache struct {
	mu    sync.Mutex
	calls map[cosignKey]*cosignCall
}

type cosignKey struct {
	size uint64
	want int
}

type cosignCall struct {
	done chan struct{}
	note []byte
	err  error
}

// cosignKeep bounds the gatherings a cosignCache remembers.
const cosignKeep = 256

func newCosignCache() *cosignCache { return &cosignCache{calls: map[cosignKey]*cosignCall{}} }

// do returns the result of gather for key, running it unless a run for
// key is under way or succeeded; a failed run is forgotten, so the next
// request tries again. gather runs on the first caller's goroutine but not
// under its cancellation: the others wait on it.
func (c *cosignCache) do(ctx context.Context, key cosignKey, gather func(context.Context) ([]byte, error)) ([]byte, error) {
	c.mu.Lock()
	call, ok := c.calls[key]
	if !ok {
		call = &cosignCall{done: make(chan struct{})}
		if len(c.calls) >= cosignKeep {
			c.evictOldest()
		}
		c.calls[key] = call
	}
	c.mu.Unlock()
	if !ok {
		call.note, call.err = gather(context.WithoutCancel(ctx))
		if call.err != nil {
			c.mu.Lock()
			delete(c.calls, key)
			c.mu.Unlock()
		}
		close(call.done)
	}
	select {
	case <-call.done:
		return call.note, call.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// evictOldest forgets the finished gathering of the smallest size.
func (c *cosignCache) evictOldest() {
	var oldest *cosignKey
	for k, call := range c.calls {
		select {
		case <-call.done:
		default:
			continue
		}
		if oldest == nil || k.size < oldest.size {
			oldest = &k
		}
	}
	if oldest != nil {
		delete(c.calls, *oldest)
	}
}

// cosignAt returns the checkpoint the FSM signed at size leaves (or its
// latest, when that one is gone) with the signatures of want members on
// its note.
func (n *Node) cosignAt(ctx context.Context, size uint64, want int) (notary.SignedCheckpoint, error) {
	cp := n.fsm.checkpointOf(size)
	if cp == nil {
		return notary.SignedCheckpoint{}, fmt.Errorf("%w: no checkpoint yet", notaryapi.ErrNoLeader)
	}
	note, err := n.ledger.Cosign(ctx, *cp, want)
	if err != nil {
		return notary.SignedCheckpoint{}, err
	}
	cosigned := *cp
	cosigned.Note = note
	return cosigned, nil
}

// pushCommit has a leader tell its followers now the commit index of what
// it has applied (raftfix.Transport.PushCommit), rather than with its next
// entry or raft's CommitTimeout later.
func (n *Node) pushCommit() { n.pushCommitted(n.fsm.applied.Load()) }

// pushCommitted has a leader tell its followers that index is committed,
// as soon as raft hands the entries up to it to the FSM: the followers
// then apply them while the leader does, and a follower asked for its
// signature over the new checkpoint has it ready sooner.
func (n *Node) pushCommitted(index uint64) {
	if t, ok := n.trans.(*raftfix.Transport); ok && n.raft.State() == raft.Leader {
		t.PushCommit(index)
	}
}
