package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/telenotary/telenotary/cluster/notaryapi"
	"github.com/telenotary/telenotary/notary"
)

const benchSynopsis = `bench notarize --nodes URL[,URL...] [--clients N] [--batch B] [--duration D] [--rate R]

Submits fresh random commitments from N concurrent clients (one per request,
or B per batch request) for D, or at R requests per second (open loop:
latency is measured from when each request was due), and reports
receipts/s, latency percentiles and errors. It verifies the receipts it gets
against the cluster's keys: all of them, or a sample (--verify).`

func runBench(ctx context.Context, env *environment, args []string) int {
	switch {
	case len(args) > 0 && args[0] == "notarize":
		return runBenchNotarize(ctx, env, args)
	case len(args) > 0 && args[0] == "signal":
		return runBenchSignal(ctx, env, args[1:])
	case len(args) > 0 && (args[0] == "-h" || args[0] == "--help"):
		fmt.Fprintf(env.stdout, "Usage: telenotary %s\n\n   or: telenotary %s\n", benchSynopsis, benchSignalSynopsis)
		return exitOK
	}
	return usageError(env.stderr, "bench", errors.New("unknown benchmark; try telenotary bench notarize --help or telenotary bench signal --help"))
}

func runBenchNotarize(ctx context.Context, env *environment, args []string) int {
	fs := newFlagSet(env, "bench notarize", benchSynopsis)
	nodes := fs.String("nodes", "", "comma-separated API URLs of the cluster's nodes (required)")
	clients := fs.Int("clients", 16, "concurrent clients")
	batch := fs.Int("batch", 1, "commitments per request: 1 uses /v1/notarize, more /v1/notarize/batch")
	duration := fs.Duration("duration", 10*time.Second, "how long to run")
	rate := fs.Float64("rate", 0, "requests per second to offer across all clients (0: as fast as they go)")
	tokenFile := fs.String("token-file", "", "file holding a submitter token (or set TELENOTARY_TOKEN)")
	verify := fs.Float64("verify", 0.01, "share of receipts to verify, 0 to 1 (1: all)")
	caFile := fs.String("tls-ca", "", "CA certificates (PEM) of the nodes' API certificates")
	cpuProfile := fs.String("cpuprofile", "", "write the load generator's own CPU profile to this file")
	httpMode := fs.String("http", "direct", "direct: each client keeps one connection to the leader and drives it on its own goroutine (plain HTTP; the Go client takes over after a failure); client: every request through the Go client's http.Client")
	pos, err := parseFlags(fs, env, args[1:])
	if err != nil {
		return usageError(env.stderr, "bench", err)
	}
	fail := func(err error) int { return usageError(env.stderr, "bench", err) }
	switch {
	case len(pos) > 0:
		return fail(fmt.Errorf("unexpected argument %q", pos[0]))
	case *nodes == "":
		return fail(errors.New("--nodes is required"))
	case *clients < 1 || *batch < 1 || *batch > notaryapi.MaxBatchRequest || *duration <= 0 || *rate < 0 || *verify < 0 || *verify > 1:
		return fail(fmt.Errorf("need --clients ≥ 1, --batch 1 to %d, --duration > 0, --rate ≥ 0, --verify 0 to 1", notaryapi.MaxBatchRequest))
	case *httpMode != "direct" && *httpMode != "client":
		return fail(fmt.Errorf("--http is direct or client, not %q", *httpMode))
	case *httpMode == "direct" && strings.Contains(*nodes, "https://"):
		*httpMode = "client" // direct connections speak plain HTTP
	}
	token := env.getenv("TELENOTARY_TOKEN")
	if *tokenFile != "" {
		b, err := os.ReadFile(*tokenFile)
		if err != nil {
			return fail(err)
		}
		token = strings.TrimSpace(string(b))
	}
	transport := &http.Transport{MaxIdleConnsPerHost: *clients + 8, IdleConnTimeout: 90 * time.Second}
	if *caFile != "" {
		pool, err := loadCA(*caFile, "--tls-ca")
		if err != nil {
			return fail(err)
		}
		transport.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	client := notaryapi.NewClient(notaryapi.ClientConfig{Nodes: strings.Split(*nodes, ","), Token: token, HTTPClient: &http.Client{Transport: transport}})
	keysCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	keys, err := client.Keys(keysCtx)
	cancel()
	if err != nil {
		return fail(fmt.Errorf("cannot fetch the cluster's keys: %w", err))
	}
	verifier, err := notary.NewVerifier(notary.Policy{Verifiers: keys})
	if err != nil {
		return fail(err)
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return fail(err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fail(err)
		}
		defer pprof.StopCPUProfile()
	}
	if env.getenv("GOGC") == "" {
		// The load generator's heap is small and short-lived: collecting it
		// less often leaves more of a shared machine to the cluster.
		debug.SetGCPercent(400)
	}
	b := &benchRun{client: client, token: token, direct: *httpMode == "direct", verifier: verifier, batch: *batch, verifyShare: *verify, out: env.stdout}
	res := b.run(ctx, *clients, *duration, *rate)
	res.print(env.stdout, *clients, *batch, *rate, *httpMode)
	if res.verifyFailures > 0 || res.receipts == 0 {
		return exitInvalid
	}
	return exitOK
}

// benchRun is one load test.
type benchRun struct {
	client      *notaryapi.Client
	token       string
	direct      bool // clients drive their own connection to the leader (see directConn)
	verifier    *notary.Verifier
	batch       int
	verifyShare float64
	out         io.Writer

	receipts       atomic.Uint64
	onDirect       atomic.Uint64 // requests answered on a client's direct connection
	afterFailure   atomic.Uint64 // requests the Go client answered after a direct connection failed
	errors         atomic.Uint64
	verified       atomic.Uint64
	verifyFailures atomic.Uint64
	lastErr        atomic.Pointer[string]

	mu        sync.Mutex // guards latencies
	latencies []time.Duration
}

type benchResult struct {
	elapsed                  time.Duration
	receipts, requests, errs uint64
	verified, verifyFailures uint64
	onDirect, afterFailure   uint64
	p50, p90, p99, max       time.Duration
	lastErr                  string
}

func (b *benchRun) run(ctx context.Context, clients int, duration time.Duration, rate float64) benchResult {
	ctx, cancel := context.WithTimeout(ctx, duration)
	defer cancel()
	// Open loop: a ticker hands out due times; closed loop: each client
	// goes again as soon as it is answered.
	var due chan time.Time
	if rate > 0 {
		due = make(chan time.Time, clients)
		go func() {
			defer close(due)
			interval := time.Duration(float64(time.Second) / rate)
			next := time.Now()
			for {
				next = next.Add(interval)
				select {
				case <-ctx.Done():
					return
				case <-time.After(time.Until(next)):
				}
				select {
				case due <- next:
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	start := time.Now()
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b.client1(ctx, due)
		}()
	}
	done := make(chan struct{})
	go b.progress(ctx, start, done)
	wg.Wait()
	close(done)
	return b.result(time.Since(start))
}

// client1 is one client's loop.
func (b *benchRun) client1(ctx context.Context, due <-chan time.Time) {
	// Commitments only need to be distinct: a seeded ChaCha8 per client is
	// as good and cheaper than the operating system's randomness.
	var seed [32]byte
	rand.Read(seed[:])
	rng := mrand.New(mrand.NewChaCha8(seed))
	entries := make([]notaryapi.Entry, b.batch)
	dc := &directConn{b: b}
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
		for i := range entries {
			entries[i] = notaryapi.Entry{Kind: notary.KindPrescription}
			for j := 0; j < len(entries[i].Commitment); j += 8 {
				binary.LittleEndian.PutUint64(entries[i].Commitment[j:], rng.Uint64())
			}
		}
		var receipts []*notary.Receipt
		var err error
		if b.direct {
			if receipts, err = dc.notarize(ctx, entries); err == nil {
				b.onDirect.Add(1)
			}
		}
		if !b.direct || err != nil {
			// The Go client follows the leader and retries until ctx ends.
			receipts, err = b.viaClient(ctx, entries)
			if b.direct && err == nil {
				b.afterFailure.Add(1)
			}
		}
		took := time.Since(start)
		if err != nil {
			if ctx.Err() == nil {
				b.errors.Add(1)
				msg := err.Error()
				b.lastErr.Store(&msg)
			}
			continue
		}
		b.receipts.Add(uint64(len(receipts)))
		b.mu.Lock()
		b.latencies = append(b.latencies, took)
		b.mu.Unlock()
		b.check(rng, entries, receipts)
	}
}

// viaClient sends one request through the Go client.
func (b *benchRun) viaClient(ctx context.Context, entries []notaryapi.Entry) ([]*notary.Receipt, error) {
	return receiptsOf(entries,
		func(e notaryapi.Entry) (*notaryapi.NotarizeResponse, error) { return b.client.Notarize(ctx, e) },
		func(es []notaryapi.Entry) (*notaryapi.BatchResponse, error) { return b.client.NotarizeBatch(ctx, es) })
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

// directConn is one client's own connection to the leader (cluster.Conn):
// on a machine shared with the cluster, http.Client's per-request hand-offs
// between goroutines cost the cluster a share of the CPU. It dials the
// leader the cluster names and, after any failure, lets the Go client send
// that request and dials again for the next.
type directConn struct {
	b    *benchRun
	conn *nodeConn
}

func (d *directConn) notarize(ctx context.Context, entries []notaryapi.Entry) ([]*notary.Receipt, error) {
	if d.conn == nil {
		st, err := d.b.client.Status(ctx)
		if err != nil {
			return nil, err
		}
		if st.Leader.HTTPAddr == "" {
			return nil, errors.New("no leader known")
		}
		if d.conn, err = dialNode(ctx, st.Leader.HTTPAddr, d.b.token); err != nil {
			return nil, err
		}
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
func (b *benchRun) check(rng *mrand.Rand, entries []notaryapi.Entry, receipts []*notary.Receipt) {
	for i, r := range receipts {
		if b.verifyShare < 1 && rng.Float64() >= b.verifyShare {
			continue
		}
		b.verified.Add(1)
		if _, err := b.verifier.Verify(notary.Claim{Receipt: r, Commitment: entries[i].Commitment}); err != nil {
			b.verifyFailures.Add(1)
			msg := "receipt does not verify: " + err.Error()
			b.lastErr.Store(&msg)
		}
	}
}

// progress prints the rate every second.
func (b *benchRun) progress(ctx context.Context, start time.Time, done <-chan struct{}) {
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
			fmt.Fprintf(b.out, "  %4.0fs  %8d receipts/s  %d errors\n", now.Sub(start).Seconds(), n-last, b.errors.Load())
			last = n
		}
	}
}

func (b *benchRun) result(elapsed time.Duration) benchResult {
	b.mu.Lock()
	lat := slices.Clone(b.latencies)
	b.mu.Unlock()
	r := benchResult{
		elapsed: elapsed, receipts: b.receipts.Load(), requests: uint64(len(lat)), errs: b.errors.Load(),
		verified: b.verified.Load(), verifyFailures: b.verifyFailures.Load(),
		onDirect: b.onDirect.Load(), afterFailure: b.afterFailure.Load(),
	}
	r.p50, r.p90, r.p99, r.max = quantiles(lat)
	if p := b.lastErr.Load(); p != nil {
		r.lastErr = *p
	}
	return r
}

func (r benchResult) print(w io.Writer, clients, batch int, rate float64, httpMode string) {
	mode := "closed loop"
	if rate > 0 {
		mode = fmt.Sprintf("open loop at %.0f requests/s", rate)
	}
	fmt.Fprintf(w, "\n%d clients, %d commitment(s) per request, %s, HTTP %s, %.1f s\n", clients, batch, mode, httpMode, r.elapsed.Seconds())
	fmt.Fprintf(w, "receipts:   %d (%.0f receipts/s), %d requests\n", r.receipts, float64(r.receipts)/r.elapsed.Seconds(), r.requests)
	fmt.Fprintf(w, "latency:    p50 %s  p90 %s  p99 %s  max %s (per request)\n", millis(r.p50), millis(r.p90), millis(r.p99), millis(r.max))
	fmt.Fprintf(w, "errors:     %d\n", r.errs)
	if httpMode == "direct" {
		fmt.Fprintf(w, "direct:     %d requests on the clients' own connections, %d through the Go client after one failed\n", r.onDirect, r.afterFailure)
	}
	fmt.Fprintf(w, "verified:   %d receipts, %d failed\n", r.verified, r.verifyFailures)
	if r.lastErr != "" {
		fmt.Fprintf(w, "last error: %s\n", r.lastErr)
	}
}

// quantiles sorts lat and returns its p50, p90, p99 and maximum.
func quantiles(lat []time.Duration) (p50, p90, p99, max time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	q := func(p float64) time.Duration { return lat[min(int(p*float64(len(lat))), len(lat)-1)] }
	return q(0.50), q(0.90), q(0.99), lat[len(lat)-1]
}

// millis formats a duration in milliseconds.
func millis(d time.Duration) string {
	return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
}
