package e2e

import (
	"context"
	"crypto/rand"
	"errors"
	"math"
	mrand "math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/telenotary/telenotary/cluster/notaryapi"
	"github.com/telenotary/telenotary/notary"
	"golang.org/x/time/rate"
)

// opKind is what a recorded operation did.
type opKind uint8

const (
	opNotarize opKind = iota + 1 // POST /v1/notarize or /v1/notarize/batch
	opLookup                     // GET /v1/receipts/{commitment}
)

// noReturn is the return time of an operation whose outcome is unknown for
// ever: it may take effect at any time after its call.
const noReturn = time.Duration(math.MaxInt64 - 2)

// histOp is one operation of a history, as a client saw it. Times are
// from the history's start (monotonic clock).
type histOp struct {
	client      int
	kind        opKind
	commitments []notary.Commitment
	call, ret   time.Duration
	// ok: the operation answered. A notarize that failed (timeout, or an
	// error after its retries) has an unknown outcome: it may or may not
	// have logged its commitments. Its ret is when a retry of the same
	// commitments was acknowledged (by then it had taken effect or never
	// would), or noReturn.
	ok bool
	// indexes are the notarize's receipts' indexes, one per commitment,
	// or the index a lookup found.
	indexes []uint64
	// existing, for a single notarize: the answer said the commitment was
	// logged before. Batches do not say (existingKnown is false).
	existing, existingKnown bool
	// found, for a lookup that answered: the commitment has a receipt;
	// otherwise the node answered 404.
	found bool
	// retry marks a notarize that resends the commitments of one that
	// failed.
	retry bool
	// consistent marks a lookup made with ?consistent=1: it must never
	// miss a commitment acknowledged before it began.
	consistent bool
	// life is what a dispense or a revocation adds (history_lifecycle_test.go).
	life lifecycleOp
}

// history is what a campaign's clients did and saw: every operation with
// its invoke and complete times, every receipt they got, and every
// checkpoint they saw. It is safe for concurrent use.
type history struct {
	start time.Time

	mu          sync.Mutex
	ops         []histOp
	receipts    []*notary.Receipt // from acknowledgements and lookups
	checkpoints map[string]bool   // signed checkpoint notes seen
	submitted   map[notary.Commitment]bool
	foreign     map[notary.Commitment]bool // logged by others: consultations
	lookupErrs  int                        // lookups that failed (not 200 or 404)
}

func newHistory() *history {
	return &history{start: time.Now(), checkpoints: map[string]bool{}, submitted: map[notary.Commitment]bool{}, foreign: map[notary.Commitment]bool{}}
}

// now is the time since the history's start.
func (h *history) now() time.Duration { return time.Since(h.start) }

// add records an operation and returns its position.
func (h *history) add(op histOp) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ops = append(h.ops, op)
	return len(h.ops) - 1
}

// sawReceipt records a receipt and its checkpoint.
func (h *history) sawReceipt(r *notary.Receipt) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.receipts = append(h.receipts, r)
	h.checkpoints[string(r.Checkpoint)] = true
}

// sawCheckpoint records a signed checkpoint note.
func (h *history) sawCheckpoint(note []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.checkpoints[string(note)] = true
}

// workload drives a cluster with notarizations and lookups and records
// them in a history. Notarize workers send fresh commitments, one per
// request or in small batches, and retry a failed request with the same
// commitments until it is acknowledged (submissions are idempotent).
// Lookup workers ask any node for the receipt of a commitment in flight, of
// one acknowledged earlier, or of one never submitted.
//
// Every operation holds the read side of gate; taking its write side
// waits until no operation is in flight. Those quiet moments split the
// history into parts the checker takes one at a time.
type workload struct {
	h       *history
	client  *notaryapi.Client
	limiter *rate.Limiter
	gate    sync.RWMutex
	cancel  context.CancelFunc
	wg      sync.WaitGroup

	recentMu sync.Mutex
	recent   []notary.Commitment // ring of commitments submitted lately
	next     int
}

// workloadConfig sizes a workload.
type workloadConfig struct {
	notarizers, lookers int
	batch               int           // entries of odd notarizers' requests
	rate                float64       // requests per second, all workers together
	quiet               time.Duration // how often to wait for a moment without operations
	reqTimeout          time.Duration // one request, retries through elections included
	seed                uint64
}

// startWorkload starts the workers; stop ends them.
func startWorkload(h *history, nodes []string, token string, cfg workloadConfig) *workload {
	ctx, cancel := context.WithCancel(context.Background())
	// One attempt on one node gives up after a while, so that a stopped or
	// cut-off node does not hold a request; the client then tries another.
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64, IdleConnTimeout: 30 * time.Second}}
	w := &workload{h: h, cancel: cancel, limiter: rate.NewLimiter(rate.Limit(cfg.rate), 1), recent: make([]notary.Commitment, 0, 256),
		client: notaryapi.NewClient(notaryapi.ClientConfig{Nodes: nodes, Token: token, HTTPClient: hc, MaxBackoff: 100 * time.Millisecond})}
	id := 0
	for i := range cfg.notarizers {
		size := 1
		if i%2 == 1 {
			size = cfg.batch
		}
		w.wg.Add(1)
		go w.notarizer(ctx, id, size, cfg.reqTimeout)
		id++
	}
	for range cfg.lookers {
		w.wg.Add(1)
		go w.looker(ctx, id, mrand.New(mrand.NewPCG(cfg.seed, uint64(id))))
		id++
	}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		t := time.NewTicker(cfg.quiet)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				w.gate.Lock() // every operation has returned
				w.gate.Unlock()
			}
		}
	}()
	return w
}

// stop ends the workload and waits for its workers.
func (w *workload) stop() {
	w.cancel()
	w.wg.Wait()
}

// notarizer submits fresh commitments until ctx ends.
func (w *workload) notarizer(ctx context.Context, client, size int, reqTimeout time.Duration) {
	defer w.wg.Done()
	for ctx.Err() == nil {
		if w.limiter.Wait(ctx) != nil {
			return
		}
		entries := make([]notaryapi.Entry, size)
		commitments := make([]notary.Commitment, size)
		for i := range entries {
			entries[i] = freshEntry()
			commitments[i] = entries[i].Commitment
		}
		w.h.mu.Lock()
		for _, c := range commitments {
			w.h.submitted[c] = true
		}
		w.h.mu.Unlock()
		w.remember(commitments)
		w.gate.RLock()
		var failed []int // this request's failed tries, awaiting their end
		for ctx.Err() == nil {
			op, receipts := w.notarize(ctx, client, entries, commitments, reqTimeout)
			op.retry = len(failed) > 0
			pos := w.h.add(op)
			for _, r := range receipts {
				w.h.sawReceipt(r)
			}
			if op.ok {
				// The earlier tries took effect by now, or never will.
				w.h.mu.Lock()
				for _, f := range failed {
					w.h.ops[f].ret = op.ret
				}
				w.h.mu.Unlock()
				break
			}
			failed = append(failed, pos)
		}
		w.gate.RUnlock()
	}
}

// notarize sends one request and returns it as an operation.
func (w *workload) notarize(ctx context.Context, client int, entries []notaryapi.Entry, commitments []notary.Commitment, reqTimeout time.Duration) (histOp, []*notary.Receipt) {
	return w.notarizeWith(ctx, w.client, client, entries, commitments, reqTimeout)
}

// notarizeWith is notarize through the API client c.
func (w *workload) notarizeWith(ctx context.Context, c *notaryapi.Client, client int, entries []notaryapi.Entry, commitments []notary.Commitment, reqTimeout time.Duration) (histOp, []*notary.Receipt) {
	op := histOp{client: client, kind: opNotarize, commitments: commitments}
	rctx, cancel := context.WithTimeout(ctx, reqTimeout)
	defer cancel()
	var receipts []*notary.Receipt
	op.call = w.h.now()
	var err error
	if len(entries) == 1 {
		var resp *notaryapi.NotarizeResponse
		if resp, err = c.Notarize(rctx, entries[0]); err == nil {
			receipts = []*notary.Receipt{resp.Receipt}
			op.existing, op.existingKnown = resp.Existing, true
		}
	} else {
		var resp *notaryapi.BatchResponse
		if resp, err = c.NotarizeBatch(rctx, entries); err == nil {
			receipts = resp.Receipts
		}
	}
	op.ret = w.h.now()
	if err != nil || len(receipts) != len(entries) {
		op.ret = noReturn
		return op, nil
	}
	op.ok = true
	for _, r := range receipts {
		if r == nil {
			// An answer without a receipt: keep the operation, with an
			// index no log has, for the checker to reject.
			op.indexes = append(op.indexes, math.MaxUint64)
			continue
		}
		op.indexes = append(op.indexes, r.Index)
	}
	return op, receipts
}

// remember adds commitments to the ring lookups draw from.
func (w *workload) remember(cs []notary.Commitment) {
	w.recentMu.Lock()
	defer w.recentMu.Unlock()
	for _, c := range cs {
		if len(w.recent) < cap(w.recent) {
			w.recent = append(w.recent, c)
		} else {
			w.recent[w.next] = c
			w.next = (w.next + 1) % len(w.recent)
		}
	}
}

// pick returns a commitment to look up: mostly one submitted lately
// (perhaps still in flight), sometimes one never submitted.
func (w *workload) pick(rng *mrand.Rand) notary.Commitment {
	w.recentMu.Lock()
	defer w.recentMu.Unlock()
	if len(w.recent) == 0 || rng.IntN(5) == 0 {
		var c notary.Commitment
		rand.Read(c[:])
		return c
	}
	// The newest are the likeliest to race with their notarization.
	newest := (w.next - 1 + len(w.recent)) % len(w.recent)
	if rng.IntN(2) == 0 {
		return w.recent[(newest-rng.IntN(min(8, len(w.recent)))+len(w.recent))%len(w.recent)]
	}
	return w.recent[rng.IntN(len(w.recent))]
}

// looker looks up receipts until ctx ends.
func (w *workload) looker(ctx context.Context, client int, rng *mrand.Rand) {
	defer w.wg.Done()
	for ctx.Err() == nil {
		if w.limiter.Wait(ctx) != nil {
			return
		}
		c := w.pick(rng)
		w.gate.RLock()
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		// Every other lookup is a consistent one, which must never be
		// stale; the others measure how far followers lag.
		op := histOp{client: client, kind: opLookup, commitments: []notary.Commitment{c}, consistent: rng.IntN(2) == 0, call: w.h.now()}
		lookup := w.client.Receipt
		if op.consistent {
			lookup = w.client.ReceiptConsistent
		}
		r, err := lookup(rctx, c)
		op.ret = w.h.now()
		cancel()
		switch {
		case err == nil && r != nil:
			op.ok, op.found, op.indexes = true, true, []uint64{r.Index}
			w.h.sawReceipt(r)
			w.h.add(op)
		case errors.Is(err, notaryapi.ErrNotFound):
			op.ok = true
			w.h.add(op)
		default:
			// A lookup that failed changed nothing: it is left out.
			w.h.mu.Lock()
			w.h.lookupErrs++
			w.h.mu.Unlock()
		}
		w.gate.RUnlock()
	}
}

// pollCheckpoints reads every node's checkpoint every interval until ctx
// ends, recording each one seen.
func pollCheckpoints(ctx context.Context, h *history, urls []string, interval time.Duration) {
	hc := &http.Client{Timeout: time.Second}
	clients := make([]*notaryapi.Client, len(urls))
	for i, u := range urls {
		clients[i] = notaryapi.NewClient(notaryapi.ClientConfig{Nodes: []string{u}, HTTPClient: hc})
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		for _, c := range clients {
			rctx, cancel := context.WithTimeout(ctx, time.Second)
			if note, err := c.Checkpoint(rctx); err == nil {
				h.sawCheckpoint(note)
			}
			cancel()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
