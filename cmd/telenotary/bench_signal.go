package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/telenotary/telenotary/notary"
	"github.com/telenotary/telenotary/notary/fhirdata"
	"github.com/telenotary/telenotary/session/peer"
	"github.com/telenotary/telenotary/session/signalapi"
)

const benchSignalSynopsis = `bench signal --signal URL --api-key-file FILE [--rooms N] [--setup-parallel P] [--duration D] [--relay-rate R]

Runs N concurrent consultations through a signalling server with the Go
SDK (two pion peers each, on loopback): it creates each room, joins both
participants and times setup (join → data channel open → session-start
receipt, verified) with P setups at a time. With every consultation live,
each physician then sends R relayed messages a second for D (end-of-
candidates markers, which the server relays like any candidate) and the
relay latency from send to the patient's receipt of the message is
reported. Each physician then prescribes once and leaves; every receipt is
verified against the keys the server serves.`

func runBenchSignal(ctx context.Context, env *environment, args []string) int {
	fs := newFlagSet(env, "bench signal", benchSignalSynopsis)
	signalURL := fs.String("signal", "", "base URL of the signalling server, such as http://127.0.0.1:8443 (required)")
	keyFile := fs.String("api-key-file", "", "file holding an app (submitter) API key of the server (or set TELENOTARY_API_KEY)")
	rooms := fs.Int("rooms", 100, "concurrent consultations (two WebSocket peers each)")
	parallel := fs.Int("setup-parallel", 8, "consultations being set up at once")
	duration := fs.Duration("duration", 10*time.Second, "how long to relay messages once every consultation is live")
	relayRate := fs.Float64("relay-rate", 2, "relayed messages a second per consultation")
	pos, err := parseFlags(fs, env, args)
	if err != nil {
		return usageError(env.stderr, "bench", err)
	}
	fail := func(err error) int { return usageError(env.stderr, "bench signal", err) }
	switch {
	case len(pos) > 0:
		return fail(fmt.Errorf("unexpected argument %q", pos[0]))
	case *signalURL == "":
		return fail(errors.New("--signal is required"))
	case *rooms < 1 || *parallel < 1 || *duration < 0 || *relayRate <= 0:
		return fail(errors.New("need --rooms ≥ 1, --setup-parallel ≥ 1, --duration ≥ 0, --relay-rate above 0"))
	case *relayRate*duration.Seconds() > maxRelayMarkers:
		return fail(fmt.Errorf("--relay-rate × --duration is %.0f messages per consultation; the server relays at most 100 candidates per offer, so keep it under %d", *relayRate*duration.Seconds(), maxRelayMarkers))
	}
	key := env.getenv("TELENOTARY_API_KEY")
	if *keyFile != "" {
		b, err := readSecret(*keyFile, "--api-key-file", 1)
		if err != nil {
			return fail(err)
		}
		key = string(b)
	}
	if key == "" {
		return fail(errors.New("--api-key-file (or TELENOTARY_API_KEY) is required to create rooms"))
	}
	b := &signalBench{out: env.stdout, base: strings.TrimSuffix(*signalURL, "/"), key: key}
	b.ws = "ws" + strings.TrimPrefix(b.base, "http") + "/v1/signal"
	if err := b.run(ctx, *rooms, *parallel, *duration, *relayRate); err != nil {
		fmt.Fprintf(env.stderr, "telenotary bench signal: %v\n", err)
		return exitInvalid
	}
	return exitOK
}

// maxRelayMarkers keeps a consultation's relay markers under the server's
// limit of candidates per offer, with room for the real ones.
const maxRelayMarkers = 90

type signalBench struct {
	out        io.Writer
	base, ws   string
	key        string
	mu         sync.Mutex
	setups     []time.Duration
	relays     []time.Duration
	sent       map[string]time.Time // relay markers in flight, by id
	lost       atomic.Int64
	errors     atomic.Int64
	unverified atomic.Int64
	lastErr    atomic.Pointer[string]
}

type consultation struct {
	room     string
	pat, doc *peer.Peer
}

func (b *signalBench) failed(err error) {
	b.errors.Add(1)
	s := err.Error()
	b.lastErr.Store(&s)
}

func (b *signalBench) run(ctx context.Context, rooms, parallel int, duration time.Duration, rate float64) error {
	b.sent = map[string]time.Time{}
	fmt.Fprintf(b.out, "setting up %d consultations (%d WebSocket peers), %d at a time\n", rooms, 2*rooms, parallel)
	var cons []*consultation
	var consMu sync.Mutex
	defer func() {
		for _, c := range cons {
			c.pat.Close()
			c.doc.Close()
		}
	}()
	start := time.Now()
	work := make(chan int)
	var wg sync.WaitGroup
	for range parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				c, err := b.setup(ctx, i)
				if err != nil {
					b.failed(err)
					continue
				}
				consMu.Lock()
				cons = append(cons, c)
				n := len(cons)
				consMu.Unlock()
				if n%100 == 0 {
					fmt.Fprintf(b.out, "  %d live after %.1f s\n", n, time.Since(start).Seconds())
				}
			}
		}()
	}
	for i := range rooms {
		if ctx.Err() != nil {
			break
		}
		work <- i
	}
	close(work)
	wg.Wait()
	setupTime := time.Since(start)
	if len(cons) == 0 {
		return fmt.Errorf("no consultation could be set up: %s", b.lastError())
	}
	p50, p90, p99, max := quantiles(b.setups)
	fmt.Fprintf(b.out, "\nsetup:   %d consultations in %.1f s (%.1f setups/s), %d failed\n", len(cons), setupTime.Seconds(), float64(len(cons))/setupTime.Seconds(), rooms-len(cons))
	fmt.Fprintf(b.out, "         join → data channel open → verified session-start receipt: p50 %s  p90 %s  p99 %s  max %s\n", millis(p50), millis(p90), millis(p99), millis(max))

	if duration > 0 {
		b.relay(ctx, cons, duration, rate)
		p50, p90, p99, max = quantiles(b.relays)
		fmt.Fprintf(b.out, "relay:   %d messages among %d live consultations (%d peers) in %.0f s (%.0f/s), %d lost\n", len(b.relays), len(cons), 2*len(cons), duration.Seconds(), float64(len(b.relays))/duration.Seconds(), b.lost.Load())
		fmt.Fprintf(b.out, "         physician → server → patient: p50 %s  p90 %s  p99 %s  max %s\n", millis(p50), millis(p90), millis(p99), millis(max))
	}

	// Each consultation prescribes once and ends; receipts are verified.
	_, examples := fhirdata.MedicationRequests()
	prescription := examples[0]
	endStart := time.Now()
	var rx atomic.Int64
	var ewg sync.WaitGroup
	sem := make(chan struct{}, parallel*4)
	for _, c := range cons {
		ewg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; ewg.Done() }()
			cctx, cancel := context.WithTimeout(ctx, time.Minute)
			defer cancel()
			r, err := c.doc.Prescribe(cctx, "bench-rx", prescription)
			if err != nil {
				b.failed(err)
				return
			}
			if r.Err != nil {
				b.unverified.Add(1)
			}
			rx.Add(1)
			end, err := c.doc.Leave(cctx, "bench over")
			if err != nil {
				b.failed(err)
				return
			}
			if end == nil || end.Err != nil {
				b.unverified.Add(1)
			}
			c.pat.WaitEnd(cctx)
		}()
	}
	ewg.Wait()
	for _, c := range cons {
		for _, p := range []*peer.Peer{c.pat, c.doc} {
			for _, e := range p.Errors() {
				b.failed(e)
			}
		}
	}
	fmt.Fprintf(b.out, "end:     %d prescriptions and session ends notarized in %.1f s\n", rx.Load(), time.Since(endStart).Seconds())
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fmt.Fprintf(b.out, "errors:  %d; receipts failing verification: %d; load generator heap %d MiB\n", b.errors.Load(), b.unverified.Load(), ms.HeapInuse>>20)
	if e := b.lastError(); e != "" {
		fmt.Fprintf(b.out, "last error: %s\n", e)
	}
	if b.errors.Load() > 0 || b.unverified.Load() > 0 || b.lost.Load() > 0 {
		return errors.New("errors, lost messages or receipts that do not verify (see above)")
	}
	return nil
}

func (b *signalBench) lastError() string {
	if p := b.lastErr.Load(); p != nil {
		return *p
	}
	return ""
}

// setup creates a room and connects its two participants; it returns once
// both hold a verified session-start receipt.
func (b *signalBench) setup(ctx context.Context, i int) (*consultation, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	room, err := b.createRoom(ctx, i)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	pat, doc, err := peer.Pair(ctx,
		peer.Config{URL: b.ws, Token: room.Tokens[signalapi.RolePatient], Loopback: true, OnSignal: b.onSignal},
		peer.Config{URL: b.ws, Token: room.Tokens[signalapi.RolePhysician], Loopback: true})
	if err != nil {
		return nil, err
	}
	c := &consultation{room: room.Room, pat: pat, doc: doc}
	for _, p := range []*peer.Peer{pat, doc} {
		if err := waitStart(ctx, p); err != nil {
			pat.Close()
			doc.Close()
			return nil, err
		}
	}
	b.mu.Lock()
	b.setups = append(b.setups, time.Since(start))
	b.mu.Unlock()
	return c, nil
}

// waitStart waits for a peer's verified session-start receipt.
func waitStart(ctx context.Context, p *peer.Peer) error {
	for {
		select {
		case r := <-p.Receipts():
			if r.Err != nil {
				return fmt.Errorf("%s receipt does not verify: %w", r.Kind, r.Err)
			}
			if r.Kind == notary.KindSessionStart {
				return nil
			}
		case <-ctx.Done():
			return fmt.Errorf("no session-start receipt: %w", ctx.Err())
		}
	}
}

func (b *signalBench) createRoom(ctx context.Context, i int) (*signalapi.CreateRoomResponse, error) {
	return createRoom(ctx, b.base, b.key, fmt.Sprintf("bench-patient-%d", i), fmt.Sprintf("bench-physician-%d", i))
}

// createRoom asks the signalling server at base for a room for two
// pseudonymous subjects, with an app API key.
func createRoom(ctx context.Context, base, key, patient, physician string) (*signalapi.CreateRoomResponse, error) {
	c := signalapi.NewClient(signalapi.Config{Base: base, Key: key})
	return c.CreateRoom(ctx, signalapi.CreateRoomRequest{Patient: patient, Physician: physician})
}

// onSignal times the relay markers a patient receives.
func (b *signalBench) onSignal(m *signalapi.Message) {
	if m.Type != signalapi.TypeCandidate || m.Candidate == nil || m.Candidate.Candidate != "" || m.Candidate.SDPMid == nil {
		return
	}
	now := time.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	if sent, ok := b.sent[*m.Candidate.SDPMid]; ok {
		b.relays = append(b.relays, now.Sub(sent))
		delete(b.sent, *m.Candidate.SDPMid)
	}
}

// relay has every physician send rate markers a second for d, spread
// evenly, and waits for them to arrive.
func (b *signalBench) relay(ctx context.Context, cons []*consultation, d time.Duration, rate float64) {
	fmt.Fprintf(b.out, "relaying %.0f messages/s per consultation for %s\n", rate, d)
	interval := time.Duration(float64(time.Second) / rate)
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var wg sync.WaitGroup
	var seq atomic.Int64
	for i, c := range cons {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Stagger the consultations over one interval.
			first := time.NewTimer(time.Duration(int64(interval) * int64(i) / int64(len(cons))))
			select {
			case <-first.C:
			case <-ctx.Done():
				return
			}
			t := time.NewTicker(interval)
			defer t.Stop()
			for {
				id := strconv.FormatInt(seq.Add(1), 10)
				b.mu.Lock()
				b.sent[id] = time.Now()
				b.mu.Unlock()
				if err := c.doc.SendSignal(ctx, &signalapi.Message{Type: signalapi.TypeCandidate, Candidate: &signalapi.Candidate{SDPMid: &id}}); err != nil {
					b.mu.Lock()
					delete(b.sent, id)
					b.mu.Unlock()
					if ctx.Err() == nil {
						b.failed(err)
					}
				}
				select {
				case <-t.C:
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	wg.Wait()
	// Give markers in flight a moment to land, then count the rest lost.
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		b.mu.Lock()
		left := len(b.sent)
		b.mu.Unlock()
		if left == 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	b.mu.Lock()
	b.lost.Add(int64(len(b.sent)))
	b.mu.Unlock()
}
