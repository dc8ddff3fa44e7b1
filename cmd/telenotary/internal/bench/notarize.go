package bench

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/telenotary/telenotary/cluster/notaryapi"
	"github.com/telenotary/telenotary/notary"
)

// NotarizeConfig is what one run of Notarize is asked to do. The command
// line checks the numbers before it calls Notarize.
type NotarizeConfig struct {
	// Nodes are the API URLs of the cluster's nodes, in any order.
	Nodes []string
	// Token is a submitter token of the cluster.
	Token string
	// HTTPClient carries the Go client's requests (its transport holds the
	// TLS settings and enough idle connections for Clients).
	HTTPClient *http.Client
	// Direct has each client keep one plain HTTP connection of its own to
	// the leader (see nodeConn); after a failure the Go client sends that
	// request and the next one dials again. Without it every request goes
	// through the Go client.
	Direct bool
	// Via, with Direct, is the API URL of the node every client's
	// connection goes to instead of the leader: a follower, to measure the
	// submissions it forwards.
	Via string
	// Clients is how many clients send at once (at least 1).
	Clients int
	// Batch is how many commitments go in one request: 1 uses
	// /v1/notarize, more /v1/notarize/batch (up to
	// notaryapi.MaxBatchRequest).
	Batch int
	// Duration is how long the run lasts.
	Duration time.Duration
	// Rate is how many requests a second to offer across all clients (open
	// loop: latency counts from when a request was due); 0 means each
	// client goes again as soon as it is answered (closed loop).
	Rate float64
	// VerifyShare is the share of receipts verified, 0 to 1 (1: all).
	VerifyShare float64
	// Signatures is how many nodes sign each receipt's checkpoint (0 or
	// 1: the answering node alone; notaryapi.Majority: a majority); the
	// receipts verified must carry that many.
	Signatures int
	// Trace has the report break the latency down into the write path's
	// stages, from the leader's metrics read before and after the run.
	Trace bool
	// Out receives a progress line a second and the report.
	Out io.Writer
}

// NotarizeResult is what a run of Notarize measured; the report printed
// to NotarizeConfig.Out says the same.
type NotarizeResult struct {
	// Elapsed is how long the run took.
	Elapsed time.Duration
	// Receipts counts the receipts received, Requests the requests answered
	// with them, Errors the requests that failed.
	Receipts, Requests, Errors uint64
	// Verified counts the receipts verified, VerifyFailures those that did
	// not verify.
	Verified, VerifyFailures uint64
	// OnDirect counts the requests answered on a client's own connection,
	// AfterFailure those the Go client answered after one failed.
	OnDirect, AfterFailure uint64
	// Latency percentiles and maximum, per request.
	P50, P90, P99, P999, Max time.Duration
	// Timeouts counts the requests that a node took and did not answer in
	// time (the load went on through another node or a later try), and
	// Stalls the seconds of the run in which no receipt came.
	Timeouts, Stalls uint64
	// LastError is the last failure seen, if any.
	LastError string
	// Stages, with NotarizeConfig.Trace, is the mean time of each stage
	// of the write path during the run, as Leader (its API URL) timed it.
	Stages []StageTime
	Leader string
}

// OK reports whether the run got receipts and every one it verified held.
func (r *NotarizeResult) OK() bool { return r.Receipts > 0 && r.VerifyFailures == 0 }

// Notarize submits fresh random commitments to the cluster for
// cfg.Duration (or until ctx ends), verifies receipts as it goes, prints a
// progress line a second and then the report to cfg.Out. It fails only
// when the run cannot start: when the cluster's keys cannot be fetched.
func Notarize(ctx context.Context, cfg NotarizeConfig) (*NotarizeResult, error) {
	client := notaryapi.NewClient(notaryapi.ClientConfig{Nodes: cfg.Nodes, Token: cfg.Token, HTTPClient: cfg.HTTPClient})
	verifier, err := clusterVerifier(ctx, client, cfg.Signatures)
	if err != nil {
		return nil, err
	}
	b := &notarizeRun{cfg: cfg, client: client, verifier: verifier}
	var trace *stageTrace
	if cfg.Trace {
		if trace, err = startTrace(ctx, client, cfg.HTTPClient); err != nil {
			return nil, err
		}
	}
	res := b.run(ctx)
	if trace != nil {
		if res.Stages, err = trace.stop(ctx); err != nil {
			return nil, err
		}
		res.Leader = trace.leader
	}
	res.print(cfg)
	return res, nil
}

// clusterVerifier fetches the keys the cluster publishes and returns a
// verifier of its receipts that needs signatures of them (a majority with
// notaryapi.Majority).
func clusterVerifier(ctx context.Context, client *notaryapi.Client, signatures int) (*notary.Verifier, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	keys, err := client.Keys(ctx)
	if err != nil {
		return nil, fmt.Errorf("cannot fetch the cluster's keys: %w", err)
	}
	if signatures == notaryapi.Majority {
		signatures = len(keys)/2 + 1
	}
	return notary.NewVerifier(notary.Policy{Verifiers: keys, MinSignatures: max(signatures, 1)})
}

// notarizeRun is one load test in progress.
type notarizeRun struct {
	cfg      NotarizeConfig
	client   *notaryapi.Client
	verifier *notary.Verifier

	receipts       atomic.Uint64
	onDirect       atomic.Uint64 // requests answered on a client's direct connection
	afterFailure   atomic.Uint64 // requests the Go client answered after a direct connection failed
	errors         atomic.Uint64
	timeouts       atomic.Uint64
	stalls         atomic.Uint64 // seconds without a receipt, counted by progress
	verified       atomic.Uint64
	verifyFailures atomic.Uint64
	lastErr        atomic.Pointer[string]

	mu        sync.Mutex // guards latencies and slowest
	latencies []time.Duration
	slowest   time.Duration // the slowest request since the last progress line
}

// run starts the clients, the pacer (open loop) and the progress line,
// and waits for all of them to stop at the end of the run.
func (b *notarizeRun) run(ctx context.Context) *NotarizeResult {
	ctx, cancel := context.WithTimeout(ctx, b.cfg.Duration)
	defer cancel()
	var wg sync.WaitGroup
	var due <-chan time.Time
	if b.cfg.Rate > 0 {
		due = pace(ctx, &wg, b.cfg.Rate, b.cfg.Clients)
	}
	start := time.Now()
	var clients sync.WaitGroup
	for range b.cfg.Clients {
		clients.Go(func() { b.client1(ctx, due) })
	}
	done := make(chan struct{})
	wg.Go(func() { b.progress(ctx, start, done) })
	clients.Wait()
	elapsed := time.Since(start)
	close(done)
	cancel() // the pacer stops with the run
	wg.Wait()
	return b.result(elapsed)
}

// pace hands out the due time of each request, rate a second, on the
// channel it returns, until ctx ends; then it closes the channel. Its
// goroutine is counted in wg.
func pace(ctx context.Context, wg *sync.WaitGroup, rate float64, buffer int) <-chan time.Time {
	due := make(chan time.Time, buffer)
	interval := time.Duration(float64(time.Second) / rate)
	wg.Go(func() {
		defer close(due)
		t := time.NewTimer(interval)
		defer t.Stop()
		for next := time.Now().Add(interval); ; next = next.Add(interval) {
			t.Reset(time.Until(next))
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			select {
			case due <- next:
			case <-ctx.Done():
				return
			}
		}
	})
	return due
}

// client1 is one client's loop: wait for the request's turn, make fresh
// commitments, send them, record the answer.
func (b *notarizeRun) client1(ctx context.Context, due <-chan time.Time) {
	// Commitments only need to be distinct: a seeded ChaCha8 per client is
	// as good and cheaper than the operating system's randomness.
	var seed [32]byte
	rand.Read(seed[:])
	rng := mrand.New(mrand.NewChaCha8(seed))
	entries := make([]notaryapi.Entry, b.cfg.Batch)
	dc := &directConn{client: b.client, token: b.cfg.Token, query: signaturesQuery(b.signatures()), via: b.cfg.Via}
	defer dc.close()
	for ctx.Err() == nil {
		start := time.Now()
		if due != nil {
			t, ok := <-due
			if !ok {
				return
			}
			start = t
		}
		fillEntries(rng, entries)
		receipts, err := b.send(ctx, dc, entries)
		took := time.Since(start)
		if err != nil {
			if ctx.Err() == nil {
				b.errors.Add(1)
				if timedOut(err) {
					b.timeouts.Add(1)
				}
				b.setLastErr(err.Error())
			}
			continue
		}
		b.receipts.Add(uint64(len(receipts)))
		b.mu.Lock()
		b.latencies = append(b.latencies, took)
		b.slowest = max(b.slowest, took)
		b.mu.Unlock()
		b.check(rng, entries, receipts)
	}
}

// fillEntries gives every entry a fresh random commitment.
func fillEntries(rng *mrand.Rand, entries []notaryapi.Entry) {
	for i := range entries {
		entries[i] = notaryapi.Entry{Kind: notary.KindPrescription}
		for j := 0; j < len(entries[i].Commitment); j += 8 {
			binary.LittleEndian.PutUint64(entries[i].Commitment[j:], rng.Uint64())
		}
	}
}

// send sends one request: on the client's direct connection if it has one
// that works, else through the Go client, which follows the leader and
// retries until ctx ends.
func (b *notarizeRun) send(ctx context.Context, dc *directConn, entries []notaryapi.Entry) ([]*notary.Receipt, error) {
	if b.cfg.Direct {
		receipts, err := dc.notarize(ctx, entries)
		if err == nil {
			b.onDirect.Add(1)
			return receipts, nil
		}
		if timedOut(err) && ctx.Err() == nil {
			b.timeouts.Add(1)
		}
	}
	receipts, err := receiptsOf(entries,
		func(e notaryapi.Entry) (*notaryapi.NotarizeResponse, error) {
			return b.client.NotarizeSigned(ctx, e, b.signatures())
		},
		func(es []notaryapi.Entry) (*notaryapi.BatchResponse, error) {
			return b.client.NotarizeBatchSigned(ctx, es, b.signatures())
		})
	if b.cfg.Direct && err == nil {
		b.afterFailure.Add(1)
	}
	return receipts, err
}

// signatures is the signatures asked of each receipt's checkpoint.
func (b *notarizeRun) signatures() int {
	if b.cfg.Signatures == 0 {
		return 1
	}
	return b.cfg.Signatures
}

// receiptsOf sends one entry with one, or a batch with many, and returns
// the receipts.
func receiptsOf(entries []notaryapi.Entry, one func(notaryapi.Entry) (*notaryapi.NotarizeResponse, error),
	many func([]notaryapi.Entry) (*notaryapi.BatchResponse, error)) ([]*notary.Receipt, error) {
	if len(entries) == 1 {
		r, err := one(entries[0])
		if err != nil {
			return nil, err
		}
		return []*notary.Receipt{r.Receipt}, nil
	}
	r, err := many(entries)
	if err != nil {
		return nil, err
	}
	return r.Receipts, nil
}

// directConn is one client's own connection to the leader (nodeConn): on
// a machine shared with the cluster, http.Client's per-request hand-offs
// between goroutines cost the cluster a share of the CPU. It dials the
// leader the cluster names and, after any failure, lets the Go client send
// that request and dials again for the next.
type directConn struct {
	client *notaryapi.Client // asks who leads
	token  string
	query  string // of each request: the signatures asked
	via    string // the node to connect to; "" for the leader
	conn   *nodeConn
}

// signaturesQuery is the query of a request for k signatures, without its
// "?" ("" for one).
func signaturesQuery(k int) string {
	switch k {
	case 1:
		return ""
	case notaryapi.Majority:
		return "signatures=" + notaryapi.SignaturesMajority
	}
	return fmt.Sprintf("signatures=%d", k)
}

// dial connects to the leader (or to via), unless connected.
func (d *directConn) dial(ctx context.Context) error {
	if d.conn != nil {
		return nil
	}
	target := d.via
	if target == "" {
		st, err := d.client.Status(ctx)
		if err != nil {
			return err
		}
		if st.Leader.HTTPAddr == "" {
			return errors.New("no leader known")
		}
		target = st.Leader.HTTPAddr
	}
	var err error
	if d.conn, err = dialNode(ctx, target, d.token); err != nil {
		return err
	}
	d.conn.query = d.query
	return nil
}

func (d *directConn) notarize(ctx context.Context, entries []notaryapi.Entry) ([]*notary.Receipt, error) {
	if err := d.dial(ctx); err != nil {
		return nil, err
	}
	receipts, err := receiptsOf(entries, d.conn.Notarize, d.conn.NotarizeBatch)
	if err != nil {
		d.close()
	}
	return receipts, err
}

func (d *directConn) close() {
	if d.conn != nil {
		d.conn.Close()
		d.conn = nil
	}
}

// check verifies a share of the receipts against their commitments.
func (b *notarizeRun) check(rng *mrand.Rand, entries []notaryapi.Entry, receipts []*notary.Receipt) {
	for i, r := range receipts {
		if b.cfg.VerifyShare < 1 && rng.Float64() >= b.cfg.VerifyShare {
			continue
		}
		b.verified.Add(1)
		if _, err := b.verifier.Verify(notary.Claim{Receipt: r, Commitment: entries[i].Commitment}); err != nil {
			b.verifyFailures.Add(1)
			b.setLastErr("receipt does not verify: " + err.Error())
		}
	}
}

func (b *notarizeRun) setLastErr(msg string) { b.lastErr.Store(&msg) }

// timedOut reports whether err is a request that ran out of time.
func timedOut(err error) bool {
	var te interface{ Timeout() bool }
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &te) && te.Timeout()
}

// progress prints the rate every second until done is closed or ctx ends.
func (b *notarizeRun) progress(ctx context.Context, start time.Time, done <-chan struct{}) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	last := uint64(0)
	for {
		select {
		case <-done:
			return
		case <-ctx.Done():
			return
		case now := <-tick.C:
			n := b.receipts.Load()
			stalled := ""
			if n == last {
				b.stalls.Add(1)
				stalled = "  STALLED"
			}
			b.mu.Lock()
			slowest := b.slowest
			b.slowest = 0
			b.mu.Unlock()
			fmt.Fprintf(b.cfg.Out, "  %4.0fs  %8d receipts/s  slowest %6.1f ms  %d errors  %d timeouts%s\n", now.Sub(start).Seconds(), n-last, float64(slowest)/float64(time.Millisecond), b.errors.Load(), b.timeouts.Load(), stalled)
			last = n
		}
	}
}

func (b *notarizeRun) result(elapsed time.Duration) *NotarizeResult {
	b.mu.Lock()
	lat := slices.Clone(b.latencies)
	b.mu.Unlock()
	r := &NotarizeResult{
		Elapsed: elapsed, Receipts: b.receipts.Load(), Requests: uint64(len(lat)), Errors: b.errors.Load(),
		Verified: b.verified.Load(), VerifyFailures: b.verifyFailures.Load(),
		OnDirect: b.onDirect.Load(), AfterFailure: b.afterFailure.Load(),
		Timeouts: b.timeouts.Load(), Stalls: b.stalls.Load(),
	}
	r.P50, r.P90, r.P99, r.Max = quantiles(lat)
	r.P999 = quantile(lat, 0.999) // sorted by quantiles
	if p := b.lastErr.Load(); p != nil {
		r.LastError = *p
	}
	return r
}

// print writes the report of a run with cfg to cfg.Out.
func (r *NotarizeResult) print(cfg NotarizeConfig) {
	w := cfg.Out
	mode := "closed loop"
	if cfg.Rate > 0 {
		mode = fmt.Sprintf("open loop at %.0f requests/s", cfg.Rate)
	}
	httpMode := "client"
	if cfg.Direct {
		httpMode = "direct"
	}
	fmt.Fprintf(w, "\n%d clients, %d commitment(s) per request, %s, HTTP %s, %.1f s\n", cfg.Clients, cfg.Batch, mode, httpMode, r.Elapsed.Seconds())
	fmt.Fprintf(w, "receipts:   %d (%.0f receipts/s), %d requests\n", r.Receipts, float64(r.Receipts)/r.Elapsed.Seconds(), r.Requests)
	fmt.Fprintf(w, "latency:    p50 %s  p90 %s  p99 %s  p99.9 %s  max %s (per request)\n", millis(r.P50), millis(r.P90), millis(r.P99), millis(r.P999), millis(r.Max))
	fmt.Fprintf(w, "errors:     %d\n", r.Errors)
	fmt.Fprintf(w, "timeouts:   %d requests a node took and did not answer in time\n", r.Timeouts)
	fmt.Fprintf(w, "stalls:     %d s with no receipt\n", r.Stalls)
	if cfg.Direct {
		fmt.Fprintf(w, "direct:     %d requests on the clients' own connections, %d through the Go client after one failed\n", r.OnDirect, r.AfterFailure)
	}
	fmt.Fprintf(w, "verified:   %d receipts, %d failed\n", r.Verified, r.VerifyFailures)
	if r.LastError != "" {
		fmt.Fprintf(w, "last error: %s\n", r.LastError)
	}
	if r.Stages != nil {
		printStages(w, r.Leader, r.Stages)
	}
}
