package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	"github.com/telenotary/telenotary/cluster/notaryapi"
	"github.com/telenotary/telenotary/notary"
)

// batcher is the leader's group commit: it drains queued submissions into
// one raft entry per free apply slot, with no fixed linger (see "The write
// path" in cluster/DESIGN.md).
type batcher struct {
	raft        *raft.Raft
	fsm         *fsm
	now         func() time.Time
	maxEntries  int
	maxInFlight int
	timeout     time.Duration
	observe     func(entries int, took time.Duration) // batch metrics
	stage       func(name string, took time.Duration) // the write path's stages
	// admit says whether the leader may stamp now, with the log's newest
	// leaf stamped lastMillis (the time guard, room on the disk); nil
	// stamps always.
	admit func(lastMillis int64) error
	// cosign returns the checkpoint the FSM signed at size leaves with
	// the signatures of want members on its note; nil when submissions
	// never ask for more than one.
	cosign func(ctx context.Context, size uint64, want int) (notary.SignedCheckpoint, error)

	queue chan *submission
	slots chan struct{}  // one token per apply in flight
	wg    sync.WaitGroup // the loop and every apply in flight

	lastTime int64 // last timestamp stamped; owned by the loop
	// pendingSince is when the oldest batch still waiting to commit was
	// proposed (unix ns; 0 when none waits): a leader without a quorum
	// for writes waits for ever.
	pendingSince atomic.Int64
	// commitTimeout is how long a batch may wait to commit; stall closes
	// (and is replaced) when one waits longer, answering every submission
	// waiting then with no_quorum instead of a silent stall.
	commitTimeout time.Duration
	stallMu       sync.Mutex // guards stall
	stall         chan struct{}
}

// submission is one request's entries, waiting for their leaf indexes.
type submission struct {
	entries []notaryapi.Entry
	want    int               // signatures its receipts' checkpoint must carry
	done    chan submitResult // buffered: the batcher never blocks on it
	queued  time.Time
}

type submitResult struct {
	indexes  []uint64
	firstNew uint64  // indexes below it were logged before
	size     uint64  // the log's size after the batch that held them
	refused  []error // why the log's rules refused entries, at their positions; nil when none
	err      error
	applied  time.Time // when the FSM was done with the batch (zero on error)
	// cosigned, when the submission wanted more than one signature, is
	// the checkpoint of size leaves with them on its note, gathered at
	// ready.
	cosigned *notary.SignedCheckpoint
	ready    time.Time
}

// fresh counts the entries that were new to the log.
func (r submitResult) fresh() int {
	n := 0
	for _, i := range r.indexes {
		if i >= r.firstNew {
			n++
		}
	}
	return n
}

// errOverloaded means the queue is full: the client should back off.
var errOverloaded = fmt.Errorf("%w: too many submissions queued", notaryapi.ErrOverloaded)

func newBatcher(r *raft.Raft, f *fsm, cfg Config) *batcher {
	return &batcher{
		raft: r, fsm: f, now: cfg.Clock,
		maxEntries: cfg.MaxBatchEntries, maxInFlight: cfg.MaxInFlight, timeout: cfg.ApplyTimeout,
		observe:       func(int, time.Duration) {},
		stage:         func(string, time.Duration) {},
		queue:         make(chan *submission, cfg.QueueLength),
		slots:         make(chan struct{}, cfg.MaxInFlight),
		commitTimeout: cfg.CommitTimeout,
		stall:         make(chan struct{}),
	}
}

// submit queues entries and waits, for ctx or for the batcher to stop,
// until they are committed and applied.
func (b *batcher) submit(ctx context.Context, entries []notaryapi.Entry, want int) (submitResult, error) {
	s := &submission{entries: entries, want: want, done: make(chan submitResult, 1), queued: time.Now()}
	select {
	case b.queue <- s:
	default:
		return submitResult{}, errOverloaded
	}
	b.stallMu.Lock()
	stalled := b.stall
	b.stallMu.Unlock()
	select {
	case r := <-s.done:
		return r, r.err
	case <-stalled:
		// It may still commit; a retry is safe (idempotent).
		return submitResult{}, fmt.Errorf("%w: a batch has waited over %v to commit: the leader cannot reach a majority that takes writes", notaryapi.ErrNoQuorum, b.commitTimeout)
	case <-ctx.Done():
		return submitResult{}, ctx.Err()
	}
}

// watchStalls closes the stall channel whenever the oldest batch in flight
// has waited longer than commitTimeout, until ctx ends.
func (b *batcher) watchStalls(ctx context.Context) {
	tick := time.NewTicker(b.commitTimeout / 10)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if b.waiting() > b.commitTimeout {
			b.stallMu.Lock()
			close(b.stall)
			b.stall = make(chan struct{})
			b.stallMu.Unlock()
		}
	}
}

// run is the batching loop; it returns when ctx ends, after failing what is
// still queued and waiting for the applies in flight.
func (b *batcher) run(ctx context.Context) {
	defer func() {
		b.wg.Wait()
		for {
			select {
			case s := <-b.queue:
				s.done <- submitResult{err: ErrClosed}
			default:
				return
			}
		}
	}()
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		b.watchStalls(ctx)
	}()
	var held *submission // one that did not fit in the last batch
	for {
		first := held
		held = nil
		if first == nil {
			select {
			case first = <-b.queue:
			case <-ctx.Done():
				return
			}
		}
		select {
		case b.slots <- struct{}{}:
		case <-ctx.Done():
			first.done <- submitResult{err: ErrClosed}
			return
		}
		batch := []*submission{first}
		n := len(first.entries)
	drain:
		for n < b.maxEntries {
			select {
			case s := <-b.queue:
				if n+len(s.entries) > b.maxEntries {
					held = s
					break drain
				}
				batch = append(batch, s)
				n += len(s.entries)
			default:
				break drain
			}
		}
		b.apply(batch, n)
	}
}

// apply proposes one batch and, in its own goroutine, waits for it to be
// committed and applied, then answers each submission.
func (b *batcher) apply(batch []*submission, n int) {
	entries := make([]notaryapi.Entry, 0, n)
	for _, s := range batch {
		entries = append(entries, s.entries...)
	}
	// Stamp only with a clock the cluster agrees with: a wrong one would
	// freeze the log's time or push it forward for every later receipt.
	if b.admit != nil {
		if err := b.admit(max(b.lastTime, b.fsm.lastTime.Load())); err != nil {
			for _, s := range batch {
				s.done <- submitResult{err: err}
			}
			<-b.slots
			return
		}
	}
	// Never behind the newest leaf, so timestamps do not go back when
	// leadership moves (the new leader's FSM has applied its
	// predecessor's entries before it accepts submissions).
	ts := max(b.now().UnixMilli(), b.lastTime, b.fsm.lastTime.Load())
	b.lastTime = ts
	start := time.Now()
	for _, s := range batch {
		b.stage("queue", start.Sub(s.queued))
	}
	future := b.raft.Apply(encodeNotarize(ts, entries), b.timeout)
	b.pendingSince.Store(start.UnixNano())
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		defer b.pendingSince.Store(0)
		defer func() { <-b.slots }()
		res := submitResult{err: future.Error()}
		if res.err == nil {
			r, _ := future.Response().(*applyResult)
			switch {
			case r == nil:
				res.err = errors.New("cluster: raft entry applied without a result")
			case r.err != nil:
				res.err = r.err
			case len(r.indexes) != n:
				res.err = fmt.Errorf("cluster: %d indexes for %d entries", len(r.indexes), n)
			default:
				res.indexes, res.firstNew, res.size, res.refused = r.indexes, r.firstNew, r.size, r.refused
				res.applied = r.timing.end
				b.stage("commit", r.timing.start.Sub(start))
				b.stage("apply", r.timing.end.Sub(r.timing.start))
				b.stage("sign", r.timing.sign)
			}
		}
		res.err = raftError(res.err)
		b.observe(n, time.Since(start))
		var cosigned []pendingCosign
		off := 0
		for _, s := range batch {
			r := submitResult{err: res.err, firstNew: res.firstNew, size: res.size, applied: res.applied}
			if res.err == nil {
				r.indexes = res.indexes[off : off+len(s.entries)]
				if res.refused != nil {
					// A lifecycle entry is submitted alone: its refusal
					// is the submission's answer.
					for _, e := range res.refused[off : off+len(s.entries)] {
						if e != nil {
							r.err = e
							break
						}
					}
				}
			}
			off += len(s.entries)
			if r.err == nil && s.want > 1 && b.cosign != nil {
				cosigned = append(cosigned, pendingCosign{s, r})
				continue
			}
			s.done <- r
		}
		if len(cosigned) > 0 {
			// The apply slot is free again while the followers sign.
			b.wg.Add(1)
			go func() {
				defer b.wg.Done()
				b.answerCosigned(res.size, cosigned)
			}()
		}
	}()
}

// pendingCosign is a submission's result waiting for the signatures it
// asked for.
type pendingCosign struct {
	s *submission
	r submitResult
}

// answerCosigned gathers, once per count wanted, the signatures over the
// checkpoint of size leaves that the submissions of one batch asked for,
// then answers them: a request is woken once, with its signatures, rather
// than for its indexes and again for the signatures.
func (b *batcher) answerCosigned(size uint64, pending []pendingCosign) {
	type gathered struct {
		cp  notary.SignedCheckpoint
		err error
	}
	byWant := map[int]gathered{}
	for _, p := range pending {
		g, ok := byWant[p.s.want]
		if !ok {
			g.cp, g.err = b.cosign(context.Background(), size, p.s.want)
			byWant[p.s.want] = g
		}
		ready := time.Now()
		if g.err != nil {
			p.r.err = g.err
		} else {
			p.r.cosigned, p.r.ready = &g.cp, ready
			b.stage("cosign", ready.Sub(p.r.applied))
		}
		p.s.done <- p.r
	}
}

// raftError maps raft's errors to the package's.
func raftError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipLost), errors.Is(err, raft.ErrLeadershipTransferInProgress):
		return fmt.Errorf("%w: %w", notaryapi.ErrNotLeader, err)
	case errors.Is(err, raft.ErrRaftShutdown):
		return fmt.Errorf("%w: %w", ErrClosed, err)
	case errors.Is(err, raft.ErrEnqueueTimeout):
		return fmt.Errorf("%w: %w", notaryapi.ErrNoLeader, err)
	}
	return err
}

// waiting returns how long the oldest batch in flight has waited to
// commit; 0 when none waits.
func (b *batcher) waiting() time.Duration {
	if since := b.pendingSince.Load(); since != 0 {
		return time.Since(time.Unix(0, since))
	}
	return 0
}
