package e2e

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/telenotary/telenotary/cluster/notaryapi"
	"github.com/telenotary/telenotary/notary"
)

// freshEntry returns an entry with a random commitment, never submitted
// before.
func freshEntry() notaryapi.Entry {
	e := notaryapi.Entry{Kind: notary.KindPrescription}
	rand.Read(e.Commitment[:])
	return e
}

// ack is a receipt the cluster returned, and when.
type ack struct {
	at      time.Time
	receipt *notary.Receipt
}

// load submits fresh commitments from several goroutines until stopped,
// remembering every commitment it submitted and every receipt it got.
type load struct {
	client     *notaryapi.Client
	reqTimeout time.Duration
	cancel     context.CancelFunc
	wg         sync.WaitGroup

	mu        sync.Mutex
	submitted map[notary.Commitment]bool   // every commitment sent
	acked     map[notary.Commitment]uint64 // acknowledged, with its index
	acks      []ack                        // every receipt returned, in arrival order
	failed    int                          // requests that returned an error
	errs      map[string]int               // their errors, by message
	anomalies []string                     // answers that contradict the API
}

// startLoad runs workers goroutines: even ones submit one commitment per
// request, odd ones batches of batch commitments. Each request may take up
// to reqTimeout (the client retries through elections meanwhile).
func startLoad(client *notaryapi.Client, workers, batch int, reqTimeout time.Duration) *load {
	ctx, cancel := context.WithCancel(context.Background())
	l := &load{client: client, reqTimeout: reqTimeout, cancel: cancel,
		submitted: map[notary.Commitment]bool{}, acked: map[notary.Commitment]uint64{}, errs: map[string]int{}}
	for w := range workers {
		size := 1
		if w%2 == 1 {
			size = batch
		}
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for ctx.Err() == nil {
				l.submit(ctx, size)
			}
		}()
	}
	return l
}

// submit sends one request of size fresh commitments and records the
// outcome.
func (l *load) submit(ctx context.Context, size int) {
	entries := make([]notaryapi.Entry, size)
	l.mu.Lock()
	for i := range entries {
		entries[i] = freshEntry()
		l.submitted[entries[i].Commitment] = true
	}
	l.mu.Unlock()
	rctx, cancel := context.WithTimeout(ctx, l.reqTimeout)
	defer cancel()
	var receipts []*notary.Receipt
	var err error
	if size == 1 {
		var resp *notaryapi.NotarizeResponse
		if resp, err = l.client.Notarize(rctx, entries[0]); err == nil {
			receipts = []*notary.Receipt{resp.Receipt}
		}
	} else {
		var resp *notaryapi.BatchResponse
		if resp, err = l.client.NotarizeBatch(rctx, entries); err == nil {
			receipts = resp.Receipts
		}
	}
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		l.failed++
		msg := err.Error()
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			msg = "context ended: " + context.Cause(rctx).Error()
		}
		l.errs[msg]++
		if !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
			// The client retries every error that may pass; what it
			// returns before its deadline the API should not answer.
			l.anomalies = append(l.anomalies, fmt.Sprintf("request of %d failed at once: %v", size, err))
		}
		return
	}
	if len(receipts) != len(entries) {
		l.anomalies = append(l.anomalies, fmt.Sprintf("%d receipts for %d entries", len(receipts), len(entries)))
		return
	}
	for i, r := range receipts {
		c := entries[i].Commitment
		if r == nil || r.Leaf.Commitment != c {
			l.anomalies = append(l.anomalies, fmt.Sprintf("receipt %d of a request of %d is not for its entry", i, size))
			continue
		}
		if idx, ok := l.acked[c]; ok && idx != r.Index {
			l.anomalies = append(l.anomalies, fmt.Sprintf("commitment %s acknowledged at index %d and at %d", c, idx, r.Index))
		}
		l.acked[c] = r.Index
		l.acks = append(l.acks, ack{at: now, receipt: r})
	}
}

// stop stops the load and waits for its requests to end.
func (l *load) stop() {
	l.cancel()
	l.wg.Wait()
}

// count returns how many receipts arrived so far.
func (l *load) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.acks)
}

// since returns the receipts that arrived after t.
func (l *load) since(t time.Time) []ack {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []ack
	for _, a := range l.acks {
		if a.at.After(t) {
			out = append(out, a)
		}
	}
	return out
}

// waitReceipts waits until n more receipts than after arrived.
func (l *load) waitReceipts(t testing.TB, what string, after time.Time, n int) []ack {
	t.Helper()
	var got []ack
	waitFor(t, readyTimeout, what, func() error {
		if got = l.since(after); len(got) < n {
			return fmt.Errorf("%d receipts since %s", len(got), after.Format(time.TimeOnly))
		}
		return nil
	})
	return got
}

// firstAt returns when the earliest of the receipts arrived.
func firstAt(acks []ack) time.Time {
	first := acks[0].at
	for _, a := range acks[1:] {
		if a.at.Before(first) {
			first = a.at
		}
	}
	return first
}

// waitNewLeader waits until n receipts arrived after t (a kill) for
// commitments a new leader sequenced: their leaf's timestamp is after t,
// and their checkpoint is not signed by the killed node. (A receipt the
// killed leader sent may still be read after its death, and a follower
// answers a resubmission of what it has applied with its own signature.)
// It returns when the first of them arrived.
func (l *load) waitNewLeader(tb testing.TB, what string, t time.Time, p notary.Policy, killed string, n int) time.Time {
	tb.Helper()
	signedBy := map[string][]string{} // checkpoint note → signers
	var first time.Time
	waitFor(tb, readyTimeout, what, func() error {
		var good []ack
		for _, a := range l.since(t) {
			note := string(a.receipt.Checkpoint)
			names, ok := signedBy[note]
			if !ok {
				cp, err := notary.OpenCheckpoint(a.receipt.Checkpoint, p)
				if err != nil {
					tb.Fatalf("receipt %d: %v", a.receipt.Index, err)
				}
				names = cp.Signers
				signedBy[note] = names
			}
			if a.receipt.Leaf.Timestamp > t.UnixMilli() && !slices.Contains(names, killed) {
				good = append(good, a)
			}
		}
		if len(good) < n {
			return fmt.Errorf("%d receipts sequenced since %s without %s", len(good), t.Format(time.TimeOnly), killed)
		}
		first = firstAt(good)
		return nil
	})
	return first
}

// audit checks, after the load has stopped and the nodes have converged at
// cp, what the cluster acknowledged against what it logged:
//   - every receipt ever returned verifies under the cluster's keys;
//   - a fresh receipt for each acknowledged commitment has the index the
//     first one had (no receipt lost or moved);
//   - the log holds each commitment once, only commitments the load
//     submitted, and every acknowledged one at its index; its size is the
//     acknowledged commitments plus those whose request failed yet were
//     logged (up to cp: a cancelled request may still land after it);
//   - timestamps never decrease with the index.
func audit(t *testing.T, c *procCluster, l *load, cp notary.Checkpoint) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, a := range l.anomalies {
		t.Errorf("load: %s", a)
	}
	policy := c.policy()
	if len(policy.Verifiers) != len(c.nodes) {
		t.Errorf("/v1/keys lists %d keys for %d nodes", len(policy.Verifiers), len(c.nodes))
	}
	v, err := notary.NewVerifier(policy)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range l.acks {
		if _, err := v.Verify(notary.Claim{Receipt: a.receipt, Commitment: a.receipt.Leaf.Commitment}); err != nil {
			t.Errorf("receipt %d of %s: %v", a.receipt.Index, a.at.Format(time.StampMilli), err)
		}
	}

	// Fresh receipts, fetched by a few goroutines.
	type job struct {
		c     notary.Commitment
		index uint64
	}
	jobs := make(chan job)
	errs := make(chan error, len(l.acked))
	var wg sync.WaitGroup
	client := c.client()
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				r, err := client.Receipt(ctx, j.c)
				cancel()
				switch {
				case err != nil:
					errs <- fmt.Errorf("fresh receipt of %s (index %d): %w", j.c, j.index, err)
				case r.Index != j.index || r.Leaf.Commitment != j.c:
					errs <- fmt.Errorf("commitment %s was acknowledged at index %d, its fresh receipt says %d", j.c, j.index, r.Index)
				default:
					if _, err := v.Verify(notary.Claim{Receipt: r, Commitment: j.c}); err != nil {
						errs <- fmt.Errorf("fresh receipt %d: %w", r.Index, err)
					}
				}
			}
		}()
	}
	for cm, idx := range l.acked {
		jobs <- job{cm, idx}
	}
	close(jobs)
	wg.Wait()
	close(errs)
	n := 0
	for err := range errs {
		if n++; n <= 10 {
			t.Error(err)
		}
	}
	if n > 10 {
		t.Errorf("... and %d more receipt errors", n-10)
	}

	// The whole log, page by page.
	at := map[notary.Commitment]uint64{}
	var lastTime int64
	failedLogged := 0
	for start := uint64(0); start < cp.Size; {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		page, err := client.Leaves(ctx, start, notaryapi.MaxLeavesPage)
		cancel()
		if err != nil {
			t.Fatalf("leaves from %d: %v", start, err)
		}
		if len(page) == 0 {
			t.Fatalf("no leaves from %d, the log's size is %d", start, cp.Size)
		}
		for _, lf := range page {
			if lf.Index != start {
				t.Fatalf("leaf %d came as index %d", start, lf.Index)
			}
			if lf.Index >= cp.Size {
				// A request the load gave up on may still be committed
				// after the nodes converged: its leaves come after cp.
				break
			}
			if prev, dup := at[lf.Commitment]; dup {
				t.Errorf("commitment %s is logged twice: at %d and %d", lf.Commitment, prev, lf.Index)
			}
			at[lf.Commitment] = lf.Index
			if !l.submitted[lf.Commitment] {
				t.Errorf("leaf %d holds commitment %s, which nobody submitted", lf.Index, lf.Commitment)
			} else if _, ok := l.acked[lf.Commitment]; !ok {
				failedLogged++
			}
			if lf.Timestamp < lastTime {
				t.Errorf("leaf %d has timestamp %d, before its predecessor's %d", lf.Index, lf.Timestamp, lastTime)
			}
			lastTime = lf.Timestamp
			start++
		}
	}
	for cm, idx := range l.acked {
		if got, ok := at[cm]; !ok {
			t.Errorf("acknowledged commitment %s (index %d) is not in the log", cm, idx)
		} else if got != idx {
			t.Errorf("acknowledged commitment %s was at index %d, the log has it at %d", cm, idx, got)
		}
	}
	if want := uint64(len(l.acked) + failedLogged); cp.Size != want {
		t.Errorf("log size %d, want %d acknowledged + %d failed but logged = %d", cp.Size, len(l.acked), failedLogged, want)
	}
	t.Logf("audit: %d commitments submitted, %d acknowledged (%d receipts), %d requests failed, %d of their commitments logged anyway; log size %d",
		len(l.submitted), len(l.acked), len(l.acks), l.failed, failedLogged, cp.Size)
	for msg, k := range l.errs {
		t.Logf("  %d× %s", k, msg)
	}
}
