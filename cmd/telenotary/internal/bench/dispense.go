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
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/telenotary/telenotary/cluster/httpapi"
	"github.com/telenotary/telenotary/cluster/notaryapi"
	"github.com/telenotary/telenotary/notary"
)

// DispenseConfig is what one run of Dispense is asked to do. The command
// line checks the numbers before it calls Dispense.
type DispenseConfig struct {
	// Nodes are the API URLs of the cluster's nodes, in any order.
	Nodes []string
	// Token is a submitter token of the cluster: it notarizes the
	// prescriptions the run dispenses.
	Token string
	// PharmacyToken is a pharmacy token of the cluster: it dispenses.
	PharmacyToken string
	// HTTPClient carries the Go client's requests.
	HTTPClient *http.Client
	// Direct has each client keep one plain HTTP connection of its own to
	// the leader, as NotarizeConfig.Direct does.
	Direct bool
	// Clients is how many pharmacies dispense at once (at least 1).
	Clients int
	// Prescriptions is how many prescriptions the run notarizes first, each
	// allowing Fills fills; the clients share them out, so none races
	// another for a fill, and the run ends early when every fill is spent.
	Prescriptions int
	// Fills is the fills each prescription allows (1 to notary.MaxFills).
	Fills int
	// Duration is how long the dispensing lasts at most.
	Duration time.Duration
	// Rate is how many dispenses a second to offer across all clients
	// (open loop: latency counts from when a dispense was due); 0 means
	// each client goes again as soon as it is answered (closed loop).
	Rate float64
	// VerifyShare is the share of dispense receipts verified, 0 to 1.
	VerifyShare float64
	// Signatures is how many nodes sign each receipt's checkpoint (0 or 1:
	// the answering node alone; notaryapi.Majority: a majority).
	Signatures int
	// Out receives the preparation, a progress line a second and the
	// report.
	// Trace has the report break the latency down into the write path's
	// stages, from the leader's metrics read before and after the run.
	Trace bool
	Out   io.Writer
}

// DispenseResult is what a run of Dispense measured; the report printed
// to DispenseConfig.Out says the same.
type DispenseResult struct {
	// Prepared is how long notarizing the prescriptions took.
	Prepared time.Duration
	// Elapsed is how long the dispensing took.
	Elapsed time.Duration
	// Dispenses counts the fills granted, Errors the requests that failed
	// (a refusal included: none is expected, as no two clients share a
	// prescription) and Refused the refusals by problem code.
	Dispenses, Errors uint64
	Refused           map[string]uint64
	// Exhausted says every fill of every prescription was dispensed before
	// the duration ran out.
	Exhausted bool
	// Verified counts the receipts verified, VerifyFailures those that did
	// not verify or were not of the fill asked.
	Verified, VerifyFailures uint64
	// OnDirect counts the dispenses answered on a client's own connection,
	// AfterFailure those the Go client answered after one failed.
	OnDirect, AfterFailure uint64
	// Latency percentiles and maximum, per dispense.
	P50, P90, P99, Max time.Duration
	// LastError is the last failure seen, if any.
	LastError string
	// Stages, with DispenseConfig.Trace, is the mean time of each stage
	// of the write path during the run, as Leader (its API URL) timed it.
	Stages []StageTime
	Leader string
}

// OK reports whether the run dispensed, every receipt it verified held and
// the cluster refused nothing.
func (r *DispenseResult) OK() bool {
	return r.Dispenses > 0 && r.VerifyFailures == 0 && len(r.Refused) == 0
}

// rx is one prescription of the run: its commitment, its dispense chain
// (chain[j] is the chain value j steps after the seed, so fill k's proof
// is chain[fills-k]) and the next fill to claim.
type rx struct {
	c     notary.Commitment
	chain []notary.ChainValue
	next  int
}

// Dispense notarizes cfg.Prescriptions prescriptions with allowances of
// cfg.Fills fills, then has cfg.Clients clients dispense them as fast as
// the cluster answers, for cfg.Duration or until every fill is spent, and
// reports dispenses/s and latency. It fails only when the run cannot
// start: the cluster's keys cannot be fetched, or the prescriptions cannot
// be notarized.
func Dispense(ctx context.Context, cfg DispenseConfig) (*DispenseResult, error) {
	submitter := notaryapi.NewClient(notaryapi.ClientConfig{Nodes: cfg.Nodes, Token: cfg.Token, HTTPClient: cfg.HTTPClient})
	pharmacy := notaryapi.NewClient(notaryapi.ClientConfig{Nodes: cfg.Nodes, Token: cfg.PharmacyToken, HTTPClient: cfg.HTTPClient})
	verifier, err := clusterVerifier(ctx, submitter, cfg.Signatures)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	rxs, err := prepare(ctx, submitter, cfg)
	if err != nil {
		return nil, fmt.Errorf("notarizing the prescriptions to dispense: %w", err)
	}
	prepared := time.Since(start)
	fmt.Fprintf(cfg.Out, "prepared %d prescriptions of %d fills each in %.1f s; %d clients dispense them\n", len(rxs), cfg.Fills, prepared.Seconds(), cfg.Clients)
	b := &dispenseRun{cfg: cfg, client: pharmacy, verifier: verifier, refused: map[string]uint64{}}
	var trace *stageTrace
	if cfg.Trace {
		if trace, err = startTrace(ctx, submitter, cfg.HTTPClient); err != nil {
			return nil, err
		}
	}
	res := b.run(ctx, rxs)
	if trace != nil {
		if res.Stages, err = trace.stop(ctx); err != nil {
			return nil, err
		}
		res.Leader = trace.leader
	}
	res.Prepared = prepared
	res.print(cfg)
	return res, nil
}

// prepareBatch is the prescriptions notarized per batch request.
const prepareBatch = 1000

// prepare notarizes the run's prescriptions, with fresh salts and random
// commitments (the cluster sees nothing else of a prescription), and
// computes their dispense chains.
func prepare(ctx context.Context, client *notaryapi.Client, cfg DispenseConfig) ([]*rx, error) {
	rxs := make([]*rx, cfg.Prescriptions)
	entries := make([]notaryapi.Entry, 0, prepareBatch)
	flush := func() error {
		if len(entries) == 0 {
			return nil
		}
		ctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		_, err := client.NotarizeBatch(ctx, entries)
		entries = entries[:0]
		return err
	}
	for i := range rxs {
		salt := notary.NewSalt()
		var c notary.Commitment
		rand.Read(c[:])
		a, err := notary.NewAllowance(salt, c, cfg.Fills)
		if err != nil {
			return nil, err
		}
		r := &rx{c: c, chain: make([]notary.ChainValue, cfg.Fills), next: 1}
		r.chain[0] = notary.DispenseSeed(salt, c)
		for j := 1; j < cfg.Fills; j++ {
			r.chain[j] = notary.ChainStep(r.chain[j-1])
		}
		rxs[i] = r
		entries = append(entries, notaryapi.Entry{Kind: notary.KindPrescription, Commitment: c, Allowance: &a})
		if len(entries) == prepareBatch {
			if err := flush(); err != nil {
				return nil, err
			}
		}
	}
	return rxs, flush()
}

// dispenseRun is one dispensing load test in progress.
type dispenseRun struct {
	cfg      DispenseConfig
	client   *notaryapi.Client
	verifier *notary.Verifier

	dispenses      atomic.Uint64
	errors         atomic.Uint64
	onDirect       atomic.Uint64
	afterFailure   atomic.Uint64
	verified       atomic.Uint64
	verifyFailures atomic.Uint64
	exhausted      atomic.Int64 // clients that ran out of fills
	lastErr        atomic.Pointer[string]

	mu        sync.Mutex // guards latencies and refused
	latencies []time.Duration
	refused   map[string]uint64
}

// run shares the prescriptions out among the clients and runs them until
// the duration ends or every client has spent its fills.
func (b *dispenseRun) run(ctx context.Context, rxs []*rx) *DispenseResult {
	ctx, cancel := context.WithTimeout(ctx, b.cfg.Duration)
	defer cancel()
	var wg sync.WaitGroup
	var due <-chan time.Time
	if b.cfg.Rate > 0 {
		due = pace(ctx, &wg, b.cfg.Rate, b.cfg.Clients)
	}
	start := time.Now()
	var clients sync.WaitGroup
	for c := range b.cfg.Clients {
		var mine []*rx
		for i := c; i < len(rxs); i += b.cfg.Clients {
			mine = append(mine, rxs[i])
		}
		clients.Go(func() { b.client1(ctx, mine, due) })
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

// client1 is one pharmacy's loop: the next fill of its current
// prescription, with a fresh dispense commitment, until its prescriptions
// are spent or the run ends. A dispense that fails is sent again, the same
// (the cluster answers a logged one with its receipt), until it is granted
// or refused; a request the cluster refuses as malformed or unauthorized
// stops the client. In an open loop (due not nil) each new dispense waits
// for its due time, and its latency counts from then.
func (b *dispenseRun) client1(ctx context.Context, mine []*rx, due <-chan time.Time) {
	var seed [32]byte
	rand.Read(seed[:])
	rng := mrand.New(mrand.NewChaCha8(seed))
	dc := &directConn{client: b.client, token: b.cfg.PharmacyToken, query: signaturesQuery(b.signatures())}
	defer dc.close()
	var e notaryapi.Entry
	var proof notary.ChainValue
	var r *rx
	var start time.Time
	for again := false; ctx.Err() == nil; {
		if !again {
			start = time.Now()
			if due != nil {
				t, ok := <-due
				if !ok {
					return
				}
				start = t
			}
			for len(mine) > 0 && mine[0].next > b.cfg.Fills {
				mine = mine[1:]
			}
			if len(mine) == 0 {
				b.exhausted.Add(1)
				return
			}
			r = mine[0]
			proof = r.chain[b.cfg.Fills-r.next]
			e = notaryapi.Entry{Kind: notary.KindDispense, Link: r.c, Fill: r.next, Proof: &proof}
			for j := 0; j < len(e.Commitment); j += 8 {
				binary.LittleEndian.PutUint64(e.Commitment[j:], rng.Uint64())
			}
		}
		resp, err := b.send(ctx, dc, e)
		took := time.Since(start) // a dispense sent again counts from its first try
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			b.errors.Add(1)
			b.setLastErr(err.Error())
			var p *httpapi.Problem
			switch {
			case errors.As(err, &p) && p.Status == http.StatusConflict:
				b.mu.Lock()
				b.refused[p.Code]++
				b.mu.Unlock()
				r.next, again = b.cfg.Fills+1, false // leave this prescription
			case errors.As(err, &p) && p.Status >= 400 && p.Status < 500:
				return // a retry would get the same
			default:
				again = true
			}
			continue
		}
		again = false
		r.next++
		b.dispenses.Add(1)
		b.mu.Lock()
		b.latencies = append(b.latencies, took)
		b.mu.Unlock()
		b.check(rng, e, resp)
	}
}

// send sends one dispense: on the client's direct connection if it has
// one that works, else through the Go client.
func (b *dispenseRun) send(ctx context.Context, dc *directConn, e notaryapi.Entry) (*notaryapi.NotarizeResponse, error) {
	if b.cfg.Direct {
		resp, err := dc.dispense(ctx, e)
		if err == nil {
			b.onDirect.Add(1)
			return resp, nil
		}
		var p *httpapi.Problem
		if errors.As(err, &p) && p.Status == http.StatusConflict {
			return nil, err // a refusal: the Go client would hear the same
		}
	}
	var resp *notaryapi.NotarizeResponse
	var err error
	if k := b.signatures(); k == 1 {
		resp, err = b.client.Notarize(ctx, e)
	} else {
		resp, err = b.client.NotarizeSigned(ctx, e, k)
	}
	if b.cfg.Direct && err == nil {
		b.afterFailure.Add(1)
	}
	return resp, err
}

// dispense sends one dispense on the direct connection, dialing the
// leader first if needed.
func (d *directConn) dispense(ctx context.Context, e notaryapi.Entry) (*notaryapi.NotarizeResponse, error) {
	if err := d.dial(ctx); err != nil {
		return nil, err
	}
	resp, err := d.conn.Notarize(e)
	if err != nil {
		var p *httpapi.Problem
		if !errors.As(err, &p) || p.Status != http.StatusConflict {
			d.close()
		}
	}
	return resp, err
}

// signatures is the signatures asked of each receipt's checkpoint.
func (b *dispenseRun) signatures() int {
	if b.cfg.Signatures == 0 {
		return 1
	}
	return b.cfg.Signatures
}

// check verifies a share of the receipts: of the commitment sent, a
// dispense linked to the prescription, for the fill claimed.
func (b *dispenseRun) check(rng *mrand.Rand, e notaryapi.Entry, resp *notaryapi.NotarizeResponse) {
	if b.cfg.VerifyShare < 1 && rng.Float64() >= b.cfg.VerifyShare {
		return
	}
	b.verified.Add(1)
	r := resp.Receipt
	if r == nil {
		b.verifyFailures.Add(1)
		b.setLastErr("a dispense answered without a receipt")
		return
	}
	if _, err := b.verifier.Verify(notary.Claim{Receipt: r, Commitment: e.Commitment}); err != nil {
		b.verifyFailures.Add(1)
		b.setLastErr("receipt does not verify: " + err.Error())
		return
	}
	if r.Leaf.Kind != notary.KindDispense || r.Leaf.Link != e.Link || resp.Fill != 0 && resp.Fill != e.Fill {
		b.verifyFailures.Add(1)
		b.setLastErr(fmt.Sprintf("a receipt of a %s linked to %s, fill %d, for fill %d of %s", r.Leaf.Kind, r.Leaf.Link, resp.Fill, e.Fill, e.Link))
	}
}

func (b *dispenseRun) setLastErr(msg string) { b.lastErr.Store(&msg) }

// progress prints the rate every second until done is closed or ctx ends.
func (b *dispenseRun) progress(ctx context.Context, start time.Time, done <-chan struct{}) {
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
			n := b.dispenses.Load()
			fmt.Fprintf(b.cfg.Out, "  %4.0fs  %8d dispenses/s  %d errors\n", now.Sub(start).Seconds(), n-last, b.errors.Load())
			last = n
		}
	}
}

func (b *dispenseRun) result(elapsed time.Duration) *DispenseResult {
	b.mu.Lock()
	lat := slices.Clone(b.latencies)
	refused := make(map[string]uint64, len(b.refused))
	for k, v := range b.refused {
		refused[k] = v
	}
	b.mu.Unlock()
	r := &DispenseResult{
		Elapsed: elapsed, Dispenses: b.dispenses.Load(), Errors: b.errors.Load(), Refused: refused,
		Exhausted: b.exhausted.Load() == int64(b.cfg.Clients),
		Verified:  b.verified.Load(), VerifyFailures: b.verifyFailures.Load(),
		OnDirect: b.onDirect.Load(), AfterFailure: b.afterFailure.Load(),
	}
	r.P50, r.P90, r.P99, r.Max = quantiles(lat)
	if p := b.lastErr.Load(); p != nil {
		r.LastError = *p
	}
	return r
}

// print writes the report of a run with cfg to cfg.Out.
func (r *DispenseResult) print(cfg DispenseConfig) {
	w := cfg.Out
	httpMode := "client"
	if cfg.Direct {
		httpMode = "direct"
	}
	mode := "closed loop"
	if cfg.Rate > 0 {
		mode = fmt.Sprintf("open loop at %.0f dispenses/s", cfg.Rate)
	}
	fmt.Fprintf(w, "\n%d clients dispensing %d prescriptions of %d fills, %s, HTTP %s, %.1f s\n", cfg.Clients, cfg.Prescriptions, cfg.Fills, mode, httpMode, r.Elapsed.Seconds())
	fmt.Fprintf(w, "dispenses:  %d (%.0f dispenses/s)\n", r.Dispenses, float64(r.Dispenses)/r.Elapsed.Seconds())
	if r.Exhausted {
		fmt.Fprintln(w, "            every fill was spent before the duration ran out: give more --prescriptions for a longer run")
	}
	fmt.Fprintf(w, "latency:    p50 %s  p90 %s  p99 %s  max %s (per dispense)\n", millis(r.P50), millis(r.P90), millis(r.P99), millis(r.Max))
	fmt.Fprintf(w, "errors:     %d\n", r.Errors)
	if len(r.Refused) > 0 {
		var parts []string
		for code, n := range r.Refused {
			parts = append(parts, fmt.Sprintf("%s %d", code, n))
		}
		sort.Strings(parts)
		fmt.Fprintf(w, "refused:    %s (none expected: no two clients share a prescription)\n", strings.Join(parts, ", "))
	}
	if cfg.Direct {
		fmt.Fprintf(w, "direct:     %d dispenses on the clients' own connections, %d through the Go client after one failed\n", r.OnDirect, r.AfterFailure)
	}
	fmt.Fprintf(w, "verified:   %d receipts, %d failed\n", r.Verified, r.VerifyFailures)
	if r.LastError != "" {
		fmt.Fprintf(w, "last error: %s\n", r.LastError)
	}
	if r.Stages != nil {
		printStages(w, r.Leader, r.Stages)
	}
}
